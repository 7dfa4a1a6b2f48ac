/* SPDX-License-Identifier: MIT */
/*
 * preload_errno: call every function the LD_PRELOAD shim interposes, in
 * ways that succeed and ways that fail, and print for each call its
 * result and errno (set to a sentinel before the call). The shim's test
 * runs this with and without the shim (all categories on) and requires
 * the same transcript: return values and errno are the program's own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SENTINEL 4242
#define CALL(name, expr)                                                        \
	do {                                                                    \
		errno = SENTINEL;                                               \
		long r_ = (long)(expr);                                         \
		int e_ = errno;                                                 \
		printf("%-28s ret=%ld errno=%s\n", name, r_,                    \
		       e_ == SENTINEL ? "unchanged" : strerrorname_np(e_));     \
	} while (0)

static void on_usr1(int sig)
{
	(void)sig;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int lsn = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	bind(lsn, (struct sockaddr *)&sa, sizeof(sa));
	listen(lsn, 8);
	socklen_t sl = sizeof(sa);
	getsockname(lsn, (struct sockaddr *)&sa, &sl);
	struct sockaddr_in dead = sa;
	int d = socket(AF_INET, SOCK_STREAM, 0);
	dead.sin_port = 0;
	bind(d, (struct sockaddr *)&dead, sizeof(dead));
	sl = sizeof(dead);
	getsockname(d, (struct sockaddr *)&dead, &sl);
	close(d);

	int s = socket(AF_INET, SOCK_STREAM, 0);
	CALL("connect ok", connect(s, (struct sockaddr *)&sa, sizeof(sa)));
	close(s);
	s = socket(AF_INET, SOCK_STREAM, 0);
	CALL("connect refused", connect(s, (struct sockaddr *)&dead, sizeof(dead)));
	close(s);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CALL("connect nonblocking", connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -1);
	close(s);
	CALL("connect bad fd", connect(-1, (struct sockaddr *)&sa, sizeof(sa)));
	CALL("connect NULL addr", connect(lsn, NULL, 0));

	struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	CALL("getaddrinfo localhost", getaddrinfo("localhost", "80", &hints, &ai));
	if (ai)
		freeaddrinfo(ai);
	ai = NULL;
	CALL("getaddrinfo bad service", getaddrinfo("localhost", "no-such-service", &hints, &ai));
	CALL("getaddrinfo NULL NULL", getaddrinfo(NULL, NULL, &hints, &ai));

	int fd = open("/dev/null", O_RDONLY);
	CALL("close ok", close(fd));
	CALL("close -1", close(-1));
	CALL("close unopened", close(4000));
	CALL("close_range empty", close_range(3000, 3100, 0));
	CALL("close_range inverted", close_range(10, 5, 0));
	errno = SENTINEL;
	closefrom(3000);
	printf("%-28s errno=%s\n", "closefrom", errno == SENTINEL ? "unchanged" : strerrorname_np(errno));

	char *argv[] = {"x", NULL};
	CALL("execve missing", execve("/nonexistent/prog", argv, environ));
	char plain[] = "/tmp/preload_errno.XXXXXX";
	int pf = mkstemp(plain); /* mode 0600: not executable */
	close(pf);
	CALL("execve not executable", execve(plain, argv, environ));
	unlink(plain);
	CALL("execvp missing", execvp("no-such-program-here", argv));
	CALL("execv missing", execv("/nonexistent/prog", argv));
	CALL("execl missing", execl("/nonexistent/prog", "x", (char *)NULL));
	CALL("execlp missing", execlp("no-such-program-here", "x", (char *)NULL));
	CALL("execle missing", execle("/nonexistent/prog", "x", (char *)NULL, environ));
	CALL("execvpe missing", execvpe("no-such-program-here", argv, environ));
	CALL("fexecve bad fd", fexecve(-1, argv, environ));

	pid_t pid;
	CALL("posix_spawn missing", posix_spawn(&pid, "/nonexistent/prog", NULL, NULL, argv, environ));
	char *targv[] = {"true", NULL};
	int r = posix_spawnp(&pid, "true", NULL, NULL, targv, environ);
	CALL("posix_spawnp true", r);
	int st = 0;
	CALL("waitpid child", waitpid(pid, &st, 0) == pid);
	printf("%-28s status=%d\n", "child status", st);
	CALL("waitpid no child", waitpid(-1, &st, 0));
	CALL("waitpid WNOHANG", waitpid(-1, &st, WNOHANG));
	CALL("wait no child", wait(&st));
	CALL("wait4 no child", wait4(-1, &st, 0, NULL));
	siginfo_t si;
	CALL("waitid no child", waitid(P_ALL, 0, &si, WEXITED));
	CALL("system exit 3", system("exit 3"));
	FILE *p = popen("exit 4", "r");
	CALL("popen", p != NULL);
	CALL("pclose", p ? pclose(p) : -1);

	fd = open("/tmp", O_RDONLY);
	CALL("fsync dir", fsync(fd));
	CALL("fdatasync dir", fdatasync(fd));
	close(fd);
	CALL("fsync -1", fsync(-1));
	CALL("fdatasync -1", fdatasync(-1));

	struct sigaction act = {0}, old;
	act.sa_handler = on_usr1;
	CALL("sigaction query", sigaction(SIGUSR1, NULL, &old));
	CALL("sigaction set", sigaction(SIGUSR1, &act, &old));
	CALL("sigaction SIGKILL", sigaction(SIGKILL, &act, NULL));
	CALL("sigaction bad signal", sigaction(0, &act, NULL));
	CALL("sigaction SIGSEGV query", sigaction(SIGSEGV, NULL, &old));
	printf("%-28s %s\n", "SIGSEGV disposition", old.sa_handler == SIG_DFL ? "default" : "other");
	CALL("signal SIGKILL", signal(SIGKILL, on_usr1) == SIG_ERR);
	CALL("signal SIGTERM dfl", signal(SIGTERM, SIG_DFL) == SIG_DFL);
	CALL("signal SIGTERM ign", signal(SIGTERM, SIG_IGN) == SIG_DFL);
	CALL("signal SIGTERM back", signal(SIGTERM, SIG_DFL) == SIG_IGN);
	CALL("raise SIGUSR1", raise(SIGUSR1));

	CALL("unshare 0", unshare(0));
	CALL("unshare bad", unshare(-1));
	CALL("setns bad fd", setns(-1, 0));
	return 0;
}
