/* SPDX-License-Identifier: MIT */
/*
 * spanring-dump: inspect live rings and exported files.
 *
 *   list            the agent's producers and exporters (control socket)
 *   show PID...     a ring's header, slots and committed-but-unreleased
 *                   spans, read-only, with or without an agent
 *   follow [PID...] spans as producers commit them, like tail -f
 *   read FILE...    the agent's protobuf or OTLP/JSON export files
 *
 * The pieces live in tools/dump/: out.c (filters and output forms),
 * ring.c (read-only ring access), agent.c (control socket), file.c.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump.h"
#include "spanring/ring_abi.h"
#include "spanring/spanring.h"

static const char usage_text[] =
	"usage: spanring-dump [options] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  list               producers and exporters of the running agent: pid, service.name,\n"
	"                     state (quarantine), slots, fill per slot, producer-side drops,\n"
	"                     spans and bytes drained, exporters' counters\n"
	"  show PID...        each ring of process PID: header, ABI version, per-slot head, tail,\n"
	"                     fill and drops, then the spans committed but not yet released.\n"
	"                     Read-only: nothing is consumed or changed. Works without an agent\n"
	"                     (through /proc/PID/fd, for root or the process's owner); asks the\n"
	"                     agent (ringfd) when /proc is refused. A ring is named by its\n"
	"                     producer (the process that maps it writable), also when read\n"
	"                     through the agent's pid\n"
	"  follow [PID...]    print spans as they are committed, read-only, like tail -f; without\n"
	"                     PID every producer (the agent's, or all of /proc without one),\n"
	"                     picking up producers that start and dropping those that exit\n"
	"                     (without an agent each ring through its producer only)\n"
	"  read FILE...       decode the agent's export files ('-': standard input): the file\n"
	"                     exporter's varint-delimited ExportTraceServiceRequest records, or\n"
	"                     OTLP/JSON lines (detected, or --format)\n"
	"\n"
	"Output (one line per span by default: time, service, trace and span id (short),\n"
	"duration, kind, name, status, attributes):\n"
	"  -j, --json           one line per span: an ExportTraceServiceRequest with its\n"
	"                       resource and scope, in the OTLP/JSON mapping (hex ids, 64-bit\n"
	"                       integers as strings, enums as integers, lowerCamelCase names)\n"
	"  -W, --waterfall      per trace, an indented tree of spans with duration bars scaled\n"
	"                       to the terminal width (TIOCGWINSZ, else $COLUMNS, else 100);\n"
	"                       the default with --trace (follow draws it when it stops)\n"
	"      --lines          one line per span even with --trace\n"
	"  -v, --verbose        full times and ids, all attributes, events and links\n"
	"      --utc            times in UTC (default: local time)\n"
	"      --ascii          no Unicode block characters in the waterfall\n"
	"\n"
	"Filters (all must match):\n"
	"  -s, --service GLOB   service.name matches the shell pattern GLOB\n"
	"  -n, --name TEXT      the span name contains TEXT\n"
	"  -t, --trace ID       the trace id starts with the hex digits ID\n"
	"  -d, --min-duration D the span lasts at least D (units ns, us, ms, s, m, h: 5ms, 1.5s)\n"
	"\n"
	"follow:\n"
	"      --from-tail      first print what the rings hold unreleased (default: new spans\n"
	"                       only; a producer that appears later is read from its first\n"
	"                       span on, as long as the ring has not wrapped since)\n"
	"      --interval D     poll interval (default 10ms)\n"
	"      --rescan D       look for new and exited producers this often (default 250ms;\n"
	"                       a process that lives shorter may be missed: its spans are\n"
	"                       in the agent's output files)\n"
	"      --count N        print N spans, then stop\n"
	"      --for D          stop after D\n"
	"\n"
	"Sources:\n"
	"  -S, --socket PATH    the agent's socket (default: $SPANRING_SOCKET, else\n"
	"                       /run/spanring/agent.sock for root or when it exists, else\n"
	"                       $XDG_RUNTIME_DIR/spanring.sock or /tmp/spanring-<uid>/agent.sock);\n"
	"                       its control socket is PATH.ctl. Given here, it must answer\n"
	"                       (else exit 3); only the default falls back to /proc when no\n"
	"                       agent answers\n"
	"  -C, --control PATH   the control socket itself (must answer, as --socket)\n"
	"      --no-agent       show, follow: never ask the agent, only /proc\n"
	"      --via-agent      show, follow: ring fds only from the agent (ringfd), not /proc\n"
	"      --format F       read: pb or json (default: detect from the first bytes)\n"
	"  -h, --help           this text\n"
	"  -V, --version        the version\n"
	"\n"
	"Exit status (the highest when several occur):\n"
	"  0  success                       5  permission denied (ring, /proc, socket, file)\n"
	"  1  other error (I/O, memory)     6  ABI mismatch: the ring's ABI major or a required\n"
	"  2  usage error                      feature is not supported by this tool\n"
	"  3  no agent (list; show, follow  7  corrupt ring: header, indices, framing or span\n"
	"     with --via-agent, --socket or    bytes break the ABI (what was valid is printed)\n"
	"     --control)                    8  truncated or corrupt file (read; what was valid\n"
	"  4  no such process, or it has       before is printed)\n"
	"     no spanring ring\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

struct opts {
	enum dump_format fmt;
	bool fmt_set, lines, waterfall, verbose, utc, ascii;
	struct dump_filter flt;
	struct dump_ring_opts ro;
	enum dump_file_kind file_kind;
	bool from_tail;
	uint64_t interval_ns, rescan_ns, for_ns;
	uint64_t count;
	bool socket_given; /* --socket or --control: the agent must answer there */
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT32_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

static void out_setup(struct dump_out *o, const struct opts *op)
{
	enum dump_format fmt = op->fmt;
	if (fmt == DUMP_FMT_LINES && (op->waterfall || (op->flt.trace_len && !op->lines)))
		fmt = DUMP_FMT_WATERFALL;
	dump_out_init(o, stdout, fmt);
	o->flt = op->flt;
	o->verbose = op->verbose;
	o->utc = op->utc;
	if (op->ascii)
		o->utf8 = false;
	o->width = dump_term_width(STDOUT_FILENO);
}

/*
 * A --socket or --control given on the command line must be reachable: a
 * typo must not fall back to /proc in silence (only the default socket
 * does, as documented). An exit code (3, or 5 when refused), 0 when it
 * answers or none was given.
 */
static int check_given_socket(const struct opts *op)
{
	if (!op->socket_given || !op->ro.use_agent)
		return DUMP_EXIT_OK;
	char err[512];
	int rc = dump_agent_check(&op->ro, err, sizeof(err));
	if (rc)
		fprintf(stderr, "spanring-dump: %s\n", err);
	return rc;
}

/* ---- show ------------------------------------------------------------------- */

static int cmd_show(const struct opts *op, int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "spanring-dump: show needs a PID\n");
		return DUMP_EXIT_USAGE;
	}
	for (int a = 0; a < argc; a++) {
		pid_t pid;
		if (parse_pid(argv[a], &pid)) {
			fprintf(stderr, "spanring-dump: show: not a pid: %s\n", argv[a]);
			return DUMP_EXIT_USAGE;
		}
	}
	int rc = check_given_socket(op);
	if (rc)
		return rc;
	struct dump_out o;
	out_setup(&o, op);
	for (int a = 0; a < argc; a++) {
		pid_t pid;
		if (parse_pid(argv[a], &pid)) {
			fprintf(stderr, "spanring-dump: show: not a pid: %s\n", argv[a]);
			return DUMP_EXIT_USAGE;
		}
		struct dump_ring **rings;
		size_t n;
		char err[512];
		int r = dump_ring_open_pid(pid, &op->ro, &rings, &n, err, sizeof(err));
		if (r)
			fprintf(stderr, "spanring-dump: %s\n", err);
		rc = dump_exit_merge(rc, r);
		for (size_t i = 0; i < n; i++) {
			if (i || a)
				fputc('\n', o.fmt == DUMP_FMT_JSON ? stderr : stdout);
			rc = dump_exit_merge(rc, dump_ring_show(rings[i], &o, true));
			dump_ring_close(rings[i]);
		}
		free(rings);
	}
	dump_out_finish(&o);
	return rc;
}

/* ---- follow ----------------------------------------------------------------- */

struct follow {
	const struct opts *op;
	struct dump_out o;
	struct dump_ring **rings;
	size_t n, cap;
	pid_t *want; /* explicit PIDs, or NULL */
	int n_want;
	bool *want_gone;
	pid_t *warned;
	size_t n_warned;
	bool agent_ok;
	bool agent_lost; /* the --socket agent stopped answering (said once) */
	int rc;
};

/* The process exists and is not a zombie (whose fds are gone already). */
static bool pid_alive(pid_t pid)
{
	char p[48], buf[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return errno != ENOENT && errno != ESRCH;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *e = strrchr(buf, ')'); /* the name may contain anything */
	return !(e && e[1] == ' ' && (e[2] == 'Z' || e[2] == 'X'));
}

static void warn_once(struct follow *fw, pid_t pid, const char *msg)
{
	for (size_t i = 0; i < fw->n_warned; i++)
		if (fw->warned[i] == pid)
			return;
	pid_t *n = realloc(fw->warned, (fw->n_warned + 1) * sizeof(*n));
	if (n) {
		fw->warned = n;
		fw->warned[fw->n_warned++] = pid;
	}
	fprintf(stderr, "spanring-dump: %s\n", msg);
}

static bool following(const struct follow *fw, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < fw->n; i++)
		if (dump_ring_same(fw->rings[i], dev, ino))
			return true;
	return false;
}

static bool following_pid(const struct follow *fw, pid_t pid)
{
	for (size_t i = 0; i < fw->n; i++)
		if (dump_ring_holder(fw->rings[i]) == pid)
			return true;
	return false;
}

static void follow_add(struct follow *fw, struct dump_ring *r, bool initial)
{
	if (fw->n == fw->cap) {
		size_t nc = fw->cap ? fw->cap * 2 : 16;
		struct dump_ring **a = realloc(fw->rings, nc * sizeof(*a));
		if (!a) {
			dump_ring_close(r);
			return;
		}
		fw->rings = a;
		fw->cap = nc;
	}
	/* A process found after the start is new: all of its spans are, even
	 * those the agent has already released (while not overwritten). */
	dump_ring_follow_start(r, !initial ? DUMP_FOLLOW_START
				  : fw->op->from_tail ? DUMP_FOLLOW_TAIL : DUMP_FOLLOW_HEAD);
	fw->rings[fw->n++] = r;
	char svc[200];
	snprintf(svc, sizeof(svc), "%s", dump_ring_service(r));
	for (char *c = svc; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	pid_t pid = dump_ring_pid(r), holder = dump_ring_holder(r);
	if (pid == holder)
		dump_note(&fw->o, "following pid %d (%s)", (int)pid, svc);
	else if (pid)
		dump_note(&fw->o, "following pid %d (%s), read through pid %d", (int)pid, svc,
			  (int)holder);
	else
		dump_note(&fw->o, "following a ring of an exited producer (%s), read through pid %d",
			  svc, (int)holder);
}

/* Open the rings of pid we do not follow yet. */
static void follow_pid(struct follow *fw, pid_t pid, bool initial, bool explicit_pid, bool via_agent)
{
	struct dump_proc_ring pr[16];
	char skipped[200] = "";
	int k = fw->op->ro.no_proc ? 0 : dump_proc_rings(pid, pr, 16, skipped, sizeof(skipped));
	char err[512];
	if (k >= 0 && skipped[0] && explicit_pid) {
		char m[300];
		snprintf(m, sizeof(m), "pid %d: %s", (int)pid, skipped);
		warn_once(fw, pid, m);
	}
	for (int i = 0; i < k; i++) {
		/* Scanning (not a pid asked for): a ring is followed through its
		 * producer only, never through the agent's (or a reader's) copy,
		 * which would name the agent as the producer, and would bring
		 * the ring back as new once the producer has exited. */
		if (following(fw, pr[i].dev, pr[i].ino) || (!explicit_pid && !pr[i].writer)) {
			close(pr[i].fd);
			continue;
		}
		struct dump_ring *r;
		int rc = dump_ring_from_fd(pr[i].fd, pid, &r, err, sizeof(err));
		if (rc) {
			char m[600];
			snprintf(m, sizeof(m), "pid %d: %s", (int)pid, err);
			warn_once(fw, pid, m);
			fw->rc = dump_exit_merge(fw->rc, rc);
			continue;
		}
		if (!pr[i].writer)
			dump_ring_set_producer(r, dump_proc_ring_writer(pr[i].dev, pr[i].ino,
									(pid_t)dump_ring_creator(r)));
		follow_add(fw, r, initial);
	}
	if (k > 0 || following_pid(fw, pid))
		return;
	if ((explicit_pid || via_agent || fw->op->ro.no_proc) && fw->op->ro.use_agent && fw->agent_ok) {
		struct dump_ring_opts ro = fw->op->ro;
		ro.no_proc = true;
		struct dump_ring **rings;
		size_t n;
		int rc = dump_ring_open_pid(pid, &ro, &rings, &n, err, sizeof(err));
		for (size_t i = 0; i < n; i++)
			follow_add(fw, rings[i], initial);
		free(rings);
		if (rc == DUMP_EXIT_OK)
			return;
		if (explicit_pid || rc == DUMP_EXIT_PERM || rc == DUMP_EXIT_CORRUPT || rc == DUMP_EXIT_ABI) {
			warn_once(fw, pid, err);
			fw->rc = dump_exit_merge(fw->rc, rc);
		}
		return;
	}
	if (explicit_pid && k < 0 && k != -ENOENT) {
		snprintf(err, sizeof(err), "pid %d: permission denied (%s)", (int)pid, strerror(-k));
		warn_once(fw, pid, err);
		fw->rc = dump_exit_merge(fw->rc, DUMP_EXIT_PERM);
	}
}

static void follow_rescan(struct follow *fw, bool initial)
{
	/* Drop rings whose process is gone, after a last read. */
	for (size_t i = 0; i < fw->n;) {
		struct dump_ring *r = fw->rings[i];
		pid_t pid = dump_ring_holder(r);
		dev_t dev;
		ino_t ino;
		dump_ring_id(r, &dev, &ino);
		bool alive = pid_alive(pid);
		/* exec closes the ring (close-on-exec) while the pid lives on. */
		bool closed = alive && dump_proc_has_ring(pid, dev, ino) == 0;
		if (alive && !closed && !dump_ring_dead(r)) {
			i++;
			continue;
		}
		fw->rc = dump_exit_merge(fw->rc, dump_ring_follow_poll(r, &fw->o));
		if (!dump_ring_dead(r))
			dump_note(&fw->o, closed ? "pid %d closed its ring" : "pid %d exited", (int)pid);
		dump_ring_close(r);
		fw->rings[i] = fw->rings[--fw->n];
	}
	if (fw->want) {
		for (int i = 0; i < fw->n_want; i++) {
			if (fw->want_gone[i])
				continue;
			if (!pid_alive(fw->want[i]) && !following_pid(fw, fw->want[i])) {
				fw->want_gone[i] = true;
				continue;
			}
			follow_pid(fw, fw->want[i], initial, true, false);
		}
		return;
	}
	if (fw->op->ro.use_agent) {
		pid_t *pids;
		int code;
		int n = dump_agent_pids(&fw->op->ro, &pids, &code);
		fw->agent_ok = n >= 0;
		if (n >= 0) {
			for (int i = 0; i < n; i++)
				follow_pid(fw, pids[i], initial, false, true);
			free(pids);
			fw->agent_lost = false;
			return;
		}
		if (fw->op->socket_given) {
			/* The agent asked for by name is gone (restarting?): keep
			 * to the rings already open rather than turn into a
			 * /proc scan nobody asked for; its return is noticed. */
			if (!fw->agent_lost) {
				char path[128];
				fprintf(stderr, "spanring-dump: the agent at %s stopped answering; "
						"following the rings already open\n",
					dump_ctl_path(&fw->op->ro, path, sizeof(path)) ? path : "?");
				fw->agent_lost = true;
			}
			return;
		}
	}
	/* No agent: every process we may look at. */
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	pid_t self = getpid();
	while ((de = readdir(d))) {
		pid_t pid;
		if (parse_pid(de->d_name, &pid) || pid == self)
			continue;
		follow_pid(fw, pid, initial, false, false);
	}
	closedir(d);
}

/* The processes named on the command line: each a pid, each alive. */
static int follow_want(struct follow *fw, int argc, char **argv)
{
	fw->want = calloc((size_t)argc, sizeof(pid_t));
	fw->want_gone = calloc((size_t)argc, sizeof(bool));
	if (!fw->want || !fw->want_gone)
		return DUMP_EXIT_ERROR;
	for (int i = 0; i < argc; i++)
		if (parse_pid(argv[i], &fw->want[i])) {
			fprintf(stderr, "spanring-dump: follow: not a pid: %s\n", argv[i]);
			return DUMP_EXIT_USAGE;
		}
	fw->n_want = argc;
	for (int i = 0; i < argc; i++)
		if (!pid_alive(fw->want[i])) {
			fprintf(stderr, "spanring-dump: no such process: %d\n", (int)fw->want[i]);
			return DUMP_EXIT_NOPID;
		}
	return DUMP_EXIT_OK;
}

/* Look for new rings (and gone processes). False when following is over. */
static bool follow_scan(struct follow *fw, bool initial)
{
	follow_rescan(fw, initial);
	if (initial && !fw->want && fw->op->ro.no_proc && !fw->agent_ok) {
		fprintf(stderr, "spanring-dump: follow --via-agent: no agent answers\n");
		fw->rc = DUMP_EXIT_NOAGENT;
		return false;
	}
	if (initial && fw->want && fw->n == 0) {
		/* Explicit PIDs and none could be opened: the warnings said why. */
		return false;
	}
	if (fw->want) {
		bool all_gone = true;
		for (int i = 0; i < fw->n_want; i++)
			all_gone &= fw->want_gone[i];
		if (all_gone && fw->n == 0) {
			dump_note(&fw->o, "every followed process has exited");
			return false;
		}
	}
	return true;
}

/* A last read so that --for/--count/SIGINT do not cut a burst short; then
 * close everything. Returns the exit code. */
static int follow_finish(struct follow *fw, bool initial)
{
	const struct opts *op = fw->op;
	for (size_t i = 0; i < fw->n && !(op->count && fw->o.shown >= op->count); i++)
		fw->rc = dump_exit_merge(fw->rc, dump_ring_follow_poll(fw->rings[i], &fw->o));
	dump_out_finish(&fw->o);
	for (size_t i = 0; i < fw->n; i++)
		dump_ring_close(fw->rings[i]);
	int rc = fw->rc;
	if (fw->want && fw->n == 0 && rc == DUMP_EXIT_OK && initial)
		rc = DUMP_EXIT_NOPID;
	free(fw->rings);
	free(fw->want);
	free(fw->want_gone);
	free(fw->warned);
	return rc;
}

static int cmd_follow(const struct opts *op, int argc, char **argv)
{
	struct follow fw = {.op = op};
	for (int i = 0; i < argc; i++)
		if (parse_pid(argv[i], &(pid_t){0})) {
			fprintf(stderr, "spanring-dump: follow: not a pid: %s\n", argv[i]);
			return DUMP_EXIT_USAGE;
		}
	int crc = check_given_socket(op);
	if (crc)
		return crc;
	out_setup(&fw.o, op);
	fw.o.limit = op->count;
	if (argc) {
		int wrc = follow_want(&fw, argc, argv);
		if (wrc) {
			free(fw.want);
			free(fw.want_gone);
			return wrc;
		}
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fw.agent_ok = true;
	uint64_t t0 = now_ns(), next_scan = 0;
	bool initial = true;
	while (!g_stop) {
		uint64_t now = now_ns();
		if (now >= next_scan) {
			if (!follow_scan(&fw, initial))
				break;
			initial = false;
			next_scan = now + op->rescan_ns;
		}
		for (size_t i = 0; i < fw.n; i++)
			fw.rc = dump_exit_merge(fw.rc, dump_ring_follow_poll(fw.rings[i], &fw.o));
		fflush(stdout);
		if (op->count && fw.o.shown >= op->count)
			break;
		if (op->for_ns && now_ns() - t0 >= op->for_ns)
			break;
		struct timespec ts = {.tv_sec = (time_t)(op->interval_ns / 1000000000ull),
				      .tv_nsec = (long)(op->interval_ns % 1000000000ull)};
		nanosleep(&ts, NULL);
	}
	return follow_finish(&fw, initial);
}

/* ---- read / list -------------------------------------------------------------- */

static int cmd_read(const struct opts *op, int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "spanring-dump: read needs a FILE ('-' for standard input)\n");
		return DUMP_EXIT_USAGE;
	}
	struct dump_out o;
	out_setup(&o, op);
	int rc = DUMP_EXIT_OK;
	for (int i = 0; i < argc; i++)
		rc = dump_exit_merge(rc, dump_read_file(argv[i], op->file_kind, &o));
	dump_out_finish(&o);
	return rc;
}

static int cmd_list(const struct opts *op, int argc, char **argv)
{
	(void)argv;
	if (argc) {
		fprintf(stderr, "spanring-dump: list takes no arguments\n");
		return DUMP_EXIT_USAGE;
	}
	char err[512];
	int rc = dump_list(&op->ro, op->fmt == DUMP_FMT_JSON, stdout, err, sizeof(err));
	if (rc)
		fprintf(stderr, "spanring-dump: %s\n", err);
	return rc;
}

enum { O_LINES = 256, O_UTC, O_ASCII, O_FROM_TAIL, O_INTERVAL, O_RESCAN, O_COUNT, O_FOR,
       O_NO_AGENT, O_FORMAT, O_VIA_AGENT };

/* Apply one option; 0, 1 (help printed) or -1 (usage error, reported). */
static int apply_opt(struct opts *op, int c, const char *arg)
{
	switch (c) {
	case 'j': op->fmt = DUMP_FMT_JSON; return 0;
	case 'W': op->waterfall = true; return 0;
	case O_LINES: op->lines = true; return 0;
	case 'v': op->verbose = true; return 0;
	case O_UTC: op->utc = true; return 0;
	case O_ASCII: op->ascii = true; return 0;
	case 's': op->flt.service = arg; return 0;
	case 'n': op->flt.name = arg; return 0;
	case 't':
		if (dump_parse_trace(arg, &op->flt)) {
			fprintf(stderr, "spanring-dump: --trace: not a hex trace id (or prefix): %s\n", arg);
			return -1;
		}
		return 0;
	case 'd':
		if (dump_parse_duration(arg, &op->flt.min_ns)) {
			fprintf(stderr, "spanring-dump: --min-duration: not a duration "
					"(e.g. 5ms, 250us, 1.5s): %s\n", arg);
			return -1;
		}
		return 0;
	case O_FROM_TAIL: op->from_tail = true; return 0;
	case O_INTERVAL:
	case O_RESCAN:
	case O_FOR: {
		uint64_t ns;
		if (dump_parse_duration(arg, &ns) || (c != O_FOR && ns < 100000)) {
			fprintf(stderr, "spanring-dump: not a duration (at least 100us): %s\n", arg);
			return -1;
		}
		*(c == O_INTERVAL ? &op->interval_ns : c == O_RESCAN ? &op->rescan_ns : &op->for_ns) = ns;
		return 0;
	}
	case O_COUNT: {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || !v || arg[0] == '-') {
			fprintf(stderr, "spanring-dump: --count: not a positive number: %s\n", arg);
			return -1;
		}
		op->count = v;
		return 0;
	}
	case 'S': op->ro.agent_socket = arg; op->socket_given = true; return 0;
	case 'C': op->ro.ctl_socket = arg; op->socket_given = true; return 0;
	case O_NO_AGENT: op->ro.use_agent = false; return 0;
	case O_VIA_AGENT: op->ro.no_proc = true; return 0;
	case O_FORMAT:
		if (strcmp(arg, "pb") == 0 || strcmp(arg, "protobuf") == 0) {
			op->file_kind = DUMP_FILE_PB;
			return 0;
		}
		if (strcmp(arg, "json") == 0) {
			op->file_kind = DUMP_FILE_JSON;
			return 0;
		}
		fprintf(stderr, "spanring-dump: --format: pb or json, not %s\n", arg);
		return -1;
	case 'h':
		usage(stdout);
		return 1;
	case 'V':
		printf("spanring-dump %d.%d.%d (ring ABI %u.%u)\n", SPANRING_VERSION_MAJOR,
		       SPANRING_VERSION_MINOR, SPANRING_VERSION_PATCH, SPANRING_ABI_MAJOR,
		       SPANRING_ABI_MINOR);
		return 1;
	default:
		usage(stderr);
		return -1;
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"json", no_argument, 0, 'j'},
		{"waterfall", no_argument, 0, 'W'},
		{"lines", no_argument, 0, O_LINES},
		{"verbose", no_argument, 0, 'v'},
		{"utc", no_argument, 0, O_UTC},
		{"ascii", no_argument, 0, O_ASCII},
		{"service", required_argument, 0, 's'},
		{"name", required_argument, 0, 'n'},
		{"trace", required_argument, 0, 't'},
		{"min-duration", required_argument, 0, 'd'},
		{"from-tail", no_argument, 0, O_FROM_TAIL},
		{"interval", required_argument, 0, O_INTERVAL},
		{"rescan", required_argument, 0, O_RESCAN},
		{"count", required_argument, 0, O_COUNT},
		{"for", required_argument, 0, O_FOR},
		{"no-agent", no_argument, 0, O_NO_AGENT},
		{"format", required_argument, 0, O_FORMAT},
		{"via-agent", no_argument, 0, O_VIA_AGENT},
		{"socket", required_argument, 0, 'S'},
		{"control", required_argument, 0, 'C'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	struct opts op = {
		.fmt = DUMP_FMT_LINES,
		.interval_ns = 10000000ull,
		.rescan_ns = 250000000ull,
	};
	op.ro.use_agent = true;
	int c;
	/* GNU getopt permutes: options may come before or after the command. */
	while ((c = getopt_long(argc, argv, "jWvs:n:t:d:S:C:hV", lopts, NULL)) != -1) {
		int r = apply_opt(&op, c, optarg);
		if (r)
			return r > 0 ? DUMP_EXIT_OK : DUMP_EXIT_USAGE;
	}
	if (op.socket_given && !op.ro.use_agent) {
		fprintf(stderr, "spanring-dump: --no-agent contradicts --socket/--control: "
				"give one or the other\n");
		return DUMP_EXIT_USAGE;
	}
	if (optind >= argc) {
		usage(stderr);
		return DUMP_EXIT_USAGE;
	}
	const char *cmd = argv[optind++];
	int nargs = argc - optind;
	char **args = argv + optind;
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "ls") == 0)
		return cmd_list(&op, nargs, args);
	if (strcmp(cmd, "show") == 0)
		return cmd_show(&op, nargs, args);
	if (strcmp(cmd, "follow") == 0)
		return cmd_follow(&op, nargs, args);
	if (strcmp(cmd, "read") == 0)
		return cmd_read(&op, nargs, args);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return DUMP_EXIT_OK;
	}
	fprintf(stderr, "spanring-dump: unknown command '%s' (list, show, follow, read)\n", cmd);
	return DUMP_EXIT_USAGE;
}
