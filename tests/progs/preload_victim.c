/* SPDX-License-Identifier: MIT */
/*
 * preload_victim MODE [ARGS]: the behaviours the LD_PRELOAD shim must
 * survive, one per mode, for tests/integration/preload_*.sh. It uses no
 * spanring API: it is the "unmodified program".
 *
 *   exit N | _exit N | _Exit N | quick N   end that way with status N
 *   segv | abort | term                    die by that signal
 *   sleep MS                               wait to be killed
 *   own-handler                            its own SIGSEGV handler, then a fault
 *   sigquery                               print what sigaction() reports
 *   threads-fork PORT                      threads connect; one forks a child
 *                                          that connects and exits 5
 *   closeall PORT                          close every descriptor, then connect
 *   daemon FILE                            daemon(); the daemon writes FILE
 *   vfork-exec                             vfork() + execl("/bin/true")
 *   spawn                                  posix_spawn with explicit
 *                                          environments, system, popen
 *   exec-missing                           execvp() of a missing program, then
 *                                          exec /bin/true
 *   fork-exit N                            fork; the child exits N without exec
 *   threads-fork-_exit                     a thread runs; fork; the child _exit(3)s
 *   fork-storm N PATH MS                   4 threads allocate and connect (to the
 *                                          unix socket PATH, refused) without
 *                                          pause while the main thread forks N
 *                                          children, one after the other; each
 *                                          child connects to PATH and exit(5)s;
 *                                          a child not reaped within MS ms is a
 *                                          hang: "hang at fork I", exit 3
 *   connect-unshare PORT                   connect (the shim's registration thread
 *                                          starts), unshare(CLONE_NEWUSER), connect
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storm.h"

extern char **environ;

static int tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	int r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	close(s);
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void on_segv(int sig)
{
	(void)sig;
	static const char msg[] = "handled\n";
	ssize_t w = write(1, msg, sizeof(msg) - 1);
	(void)w;
	_exit(42);
}

/* A write through a pointer the compiler cannot see is bad (not NULL:
 * UBSan would report a null store before the fault happens). */
static volatile int *volatile bad_ptr;

static void fault(void)
{
	bad_ptr = (volatile int *)(uintptr_t)16;
	*bad_ptr = 1;
}

static int port_arg;

static void *conn_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		tcp_connect(port_arg);
	return NULL;
}

static void *busy_thread(void *arg)
{
	conn_thread(arg);
	sleep_ms(300); /* alive across the fork */
	return NULL;
}

static void *fork_thread(void *arg)
{
	(void)arg;
	pid_t p = fork();
	if (p == 0) {
		/* Child of a threaded process: only this thread exists here. */
		tcp_connect(port_arg);
		exit(5);
	}
	int st = 0;
	waitpid(p, &st, 0);
	return (void *)(long)(WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* fork-storm (storm.h): threads inside the allocator and the shim's
 * interposed calls whenever the main thread forks. */
static const char *storm_path;

static void unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		return;
	(void)connect(s, (struct sockaddr *)&sa, sizeof(sa));
	close(s);
}

static void storm_step(unsigned i)
{
	/* Interposed calls: close() always (no span), connect() (a span,
	 * a refused one) now and then. */
	int fd = dup(2);
	if (fd >= 0)
		close(fd);
	if (i % 64 == 0)
		unix_connect(storm_path);
}

static void storm_child(int i)
{
	(void)i;
	unix_connect(storm_path);
	exit(5);
}

static int spawn_print(char *const envp[])
{
	pid_t pid;
	char *argv[] = {"sh", "-c", "echo \"TP=${TRACEPARENT:-none}\"", NULL};
	int r = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp);
	if (r)
		return r;
	int st;
	waitpid(pid, &st, 0);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 0;
	setvbuf(stdout, NULL, _IONBF, 0);

	if (!strcmp(mode, "connect-unshare")) {
		tcp_connect(n);
		int r = unshare(CLONE_NEWUSER);
		int e = r ? errno : 0;
		tcp_connect(n);
		printf("unshare %d\n", e);
		return 0;
	}
	if (!strcmp(mode, "exit"))
		exit(n);
	if (!strcmp(mode, "_exit"))
		_exit(n);
	if (!strcmp(mode, "_Exit"))
		_Exit(n);
	if (!strcmp(mode, "quick"))
		quick_exit(n);
	if (!strcmp(mode, "segv")) {
		fault();
		return 0;
	}
	if (!strcmp(mode, "abort"))
		abort();
	if (!strcmp(mode, "term")) {
		raise(SIGTERM);
		return 0;
	}
	if (!strcmp(mode, "sleep")) {
		printf("ready\n");
		sleep_ms(n);
		return 0;
	}
	if (!strcmp(mode, "own-handler")) {
		struct sigaction old;
		sigaction(SIGSEGV, NULL, &old);
		printf("before: %s\n", old.sa_handler == SIG_DFL ? "default" : "other");
		signal(SIGSEGV, on_segv);
		fault();
		return 0;
	}
	if (!strcmp(mode, "sigquery")) {
		static const int sigs[] = {SIGSEGV, SIGABRT, SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct sigaction sa;
			sigaction(sigs[i], NULL, &sa);
			printf("%d:%s:%#x ", sigs[i],
			       sa.sa_handler == SIG_DFL ? "dfl" : sa.sa_handler == SIG_IGN ? "ign" : "fn",
			       (unsigned)(sa.sa_flags & ~0x04000000 /* SA_RESTORER */));
		}
		/* Set and read back. */
		sighandler_t o1 = signal(SIGTERM, SIG_IGN);
		sighandler_t o2 = signal(SIGTERM, SIG_DFL);
		struct sigaction sa;
		sigaction(SIGTERM, NULL, &sa);
		printf("\nset: %s %s %s\n", o1 == SIG_DFL ? "dfl" : "?", o2 == SIG_IGN ? "ign" : "?",
		       sa.sa_handler == SIG_DFL ? "dfl" : "?");
		return 0;
	}
	if (!strcmp(mode, "fork-storm") && argc > 4) {
		storm_path = argv[3];
		return storm_run(n, atol(argv[4]), storm_step, storm_child);
	}
	if (!strcmp(mode, "threads-fork")) {
		port_arg = n;
		pthread_t t[4], f;
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, conn_thread, NULL);
		pthread_create(&f, NULL, fork_thread, NULL);
		void *rc;
		pthread_join(f, &rc);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		printf("child exit %ld\n", (long)rc);
		return (long)rc == 5 ? 0 : 1;
	}
	if (!strcmp(mode, "closeall")) {
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
		close_range(3, ~0u, 0);
		closefrom(3);
		int r = tcp_connect(n);
		printf("connect %d\n", r);
		return r == 0 ? 0 : 1;
	}
	if (!strcmp(mode, "daemon")) {
		const char *file = argv[2];
		if (daemon(1, 0) != 0)
			return 1;
		/* The daemon: stdio are /dev/null now. */
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		FILE *f = fopen(file, "w");
		if (!f)
			return 2;
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
		return 0;
	}
	if (!strcmp(mode, "vfork-exec")) {
		pid_t p = vfork();
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(p, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (!strcmp(mode, "spawn")) {
		char *empty[] = {NULL};
		char *foreign[] = {"TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				   NULL};
		spawn_print(environ);
		spawn_print(empty);
		spawn_print(foreign);
		fflush(stdout);
		if (system("echo \"system TP=${TRACEPARENT:-none}\""))
			return 3;
		FILE *p = popen("echo \"popen TP=${TRACEPARENT:-none}\"", "r");
		char line[256];
		while (p && fgets(line, sizeof(line), p))
			fputs(line, stdout);
		if (!p || pclose(p) != 0)
			return 4;
		/* The caller's arrays are untouched. */
		return empty[0] == NULL && !strcmp(foreign[0] + 12, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") ? 0 : 5;
	}
	if (!strcmp(mode, "exec-missing")) {
		char *a[] = {"no-such-program-here", NULL};
		execvp(a[0], a);
		printf("execvp failed: %d\n", errno);
		tcp_connect(1); /* refused; traced in the continuing image */
		execl("/bin/true", "true", (char *)NULL);
		return 9;
	}
	if (!strcmp(mode, "threads-fork-_exit")) {
		pthread_t t;
		port_arg = 1;
		pthread_create(&t, NULL, busy_thread, NULL);
		pid_t p = fork();
		if (p == 0)
			_exit(3);
		int st;
		waitpid(p, &st, 0);
		pthread_join(t, NULL);
		printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return 0;
	}
	if (!strcmp(mode, "fork-exit")) {
		pid_t p = fork();
		if (p == 0)
			exit(n);
		int st;
		waitpid(p, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	fprintf(stderr, "unknown mode %s\n", mode);
	return 2;
}
