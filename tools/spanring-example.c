/* SPDX-License-Identifier: MIT */
/*
 * spanring-example: an instrumented toy service, for the README's demo and
 * the integration tests.
 *
 * Each "request" is a SERVER span with DB and rendering children, an
 * event, and now and then an error. The process then starts a copy of
 * itself as a child process (fork + exec) that continues the same trace
 * through the TRACEPARENT environment variable, like a worker would.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "otlp_trace.pb-c.h"
#include "pbwire.h"
#include "spanring/spanring.h"

static int requests = 5, threads = 1, print = 0, no_child = 0, child_mode = 0;
static long busy_us = 200;
static spanring_tracer *tracer;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: spanring-example [options]\n"
		"  -n, --requests N   requests per thread (default 5)\n"
		"  -t, --threads N    threads (default 1)\n"
		"  -b, --busy-us N    simulated work per step in microseconds (default 200)\n"
		"  -p, --print        decode and print this process's ring before exiting\n"
		"                     (useful without an agent)\n"
		"      --no-child     do not start the worker child process\n"
		"      --child        run as the worker (reads TRACEPARENT)\n"
		"  -h, --help         this text\n"
		"  -V, --version      the version\n"
		"Environment: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],\n"
		"SPANRING_SOCKET (agent socket), SPANRING_SLOTS, SPANRING_SLOT_SIZE.\n");
}

static void work(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static void handle_request(long id)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/users/%ld", 1000 + id);
	spanring_span *srv = spanring_span_start(tracer, "GET /api/users/:id", SPANRING_KIND_SERVER);
	spanring_span_set_str(srv, "http.request.method", "GET");
	spanring_span_set_str(srv, "url.path", path);
	spanring_span_set_str(srv, "url.scheme", "http");
	spanring_span_set_int(srv, "server.port", 8080);

	spanring_span *db = spanring_span_start(tracer, "SELECT users", SPANRING_KIND_CLIENT);
	spanring_span_set_str(db, "db.system", "postgresql");
	spanring_span_set_str(db, "db.query.text", "SELECT * FROM users WHERE id = $1");
	work(busy_us);
	spanring_span_end(db);

	spanring_span *render = spanring_span_start(tracer, "render", SPANRING_KIND_INTERNAL);
	spanring_attr ev[] = {SPANRING_ATTR_INT("bytes", 512 + id)};
	spanring_span_add_event(render, "template.loaded", ev, 1);
	work(busy_us / 2);
	spanring_span_end(render);

	bool failed = id % 4 == 3;
	spanring_span_set_int(srv, "http.response.status_code", failed ? 500 : 200);
	spanring_span_set_bool(srv, "cache.hit", id % 2 == 0);
	if (failed) {
		spanring_span_record_exception(srv, "TimeoutError", "upstream timed out", NULL);
		spanring_span_set_status(srv, SPANRING_STATUS_ERROR, "upstream timed out");
	}
	spanring_span_end(srv);
}

static void *thread_main(void *arg)
{
	long base = (long)(intptr_t)arg * requests;
	for (long i = 0; i < requests; i++)
		handle_request(base + i);
	return NULL;
}

/* Start a copy of ourselves as a worker, its trace continuing ours. */
static int run_child(const char *self)
{
	spanring_span *s = spanring_span_start(tracer, "spawn worker", SPANRING_KIND_PRODUCER);
	spanring_span_context ctx;
	spanring_span_get_context(s, &ctx);
	pid_t pid = fork();
	if (pid == 0) {
		spanring_context_to_env(&ctx);
		execl(self, self, "--child", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, 0);
	spanring_span_set_int(s, "process.exit.code", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	spanring_span_end(s);
	return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int child_main(void)
{
	spanring_span_context parent;
	spanring_span_opts o = {.kind = SPANRING_KIND_CONSUMER};
	if (spanring_context_from_env(&parent) == 0)
		o.parent = &parent;
	spanring_span *s = spanring_span_start_ex(tracer, "worker job", &o);
	spanring_span_set_str(s, "messaging.operation.type", "process");
	work(busy_us);
	spanring_span_end(s);
	return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void print_span(const uint8_t *payload, size_t len)
{
	Opentelemetry__Proto__Trace__V1__Span *s =
		opentelemetry__proto__trace__v1__span__unpack(NULL, len, payload);
	if (!s) {
		printf("  <undecodable record>\n");
		return;
	}
	char tid[33] = "", sid[17] = "", pid[17] = "-";
	hex(s->trace_id.data, s->trace_id.len < 16 ? s->trace_id.len : 16, tid);
	hex(s->span_id.data, s->span_id.len < 8 ? s->span_id.len : 8, sid);
	if (s->parent_span_id.len == 8)
		hex(s->parent_span_id.data, 8, pid);
	double ms = (double)(s->end_time_unix_nano - s->start_time_unix_nano) / 1e6;
	printf("  trace %.8s span %s parent %-16s %8.3f ms  %-22s", tid, sid, pid, ms, s->name);
	for (size_t i = 0; i < s->n_attributes && i < 4; i++) {
		Opentelemetry__Proto__Common__V1__AnyValue *v = s->attributes[i]->value;
		if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			printf(" %s=%s", s->attributes[i]->key, v->string_value);
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
			printf(" %s=%lld", s->attributes[i]->key, (long long)v->int_value);
	}
	if (s->status && s->status->code == 2)
		printf("  ERROR(%s)", s->status->message);
	printf("\n");
	opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
}

/* Walk the committed records of every slot, read-only, without releasing. */
static int print_own_ring(void)
{
	if (sr_proc_ready() != SR_PROC_ACTIVE) {
		fprintf(stderr, "spanring-example: tracing is disabled, nothing to print\n");
		return 1;
	}
	const struct sr_map *m = &sr_g.map;
	printf("pid %d: spans committed to this process's ring (decoded with protobuf-c):\n",
	       (int)getpid());
	for (uint32_t i = 0; i < m->l.slot_count; i++) {
		/* As a reader (docs/ABI.md §10): tail pairs with the agent's
		 * store-release (D), head with the producer's (B, commit.h). */
		uint64_t tail = sr_load_acquire_64(&sr_cons(m, i)->tail);
		uint64_t head = sr_load_acquire_64(&sr_prod(m, i)->head);
		const uint8_t *p = sr_slot_data(m, i) + (tail & (m->l.slot_size - 1));
		const uint8_t *end = p + (head - tail);
		while (p < end) {
			uint32_t field, wt;
			const uint8_t *payload, *next;
			uint64_t v;
			if (pb_next_field(p, end, &field, &wt, &payload, &next, &v))
				return 1;
			if (field == SPANRING_SPAN_FIELD && wt == SPANRING_WT_LEN)
				print_span(payload, (size_t)v);
			p = next;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"requests", required_argument, 0, 'n'}, {"threads", required_argument, 0, 't'},
		{"busy-us", required_argument, 0, 'b'},  {"print", no_argument, 0, 'p'},
		{"no-child", no_argument, 0, 'C'},       {"child", no_argument, 0, 'c'},
		{"help", no_argument, 0, 'h'},           {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:t:b:phV", opts, NULL)) != -1) {
		switch (c) {
		case 'n': requests = atoi(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'b': busy_us = atol(optarg); break;
		case 'p': print = 1; break;
		case 'C': no_child = 1; break;
		case 'c': child_mode = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V':
			printf("spanring-example %d.%d.%d\n", SPANRING_VERSION_MAJOR,
			       SPANRING_VERSION_MINOR, SPANRING_VERSION_PATCH);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (requests < 0 || threads < 1 || threads > 256 || busy_us < 0) {
		usage(stderr);
		return 2;
	}
	tracer = spanring_tracer_get("spanring-example", "0.1.0", NULL);
	int rc = 0;
	if (child_mode) {
		rc = child_main();
	} else {
		pthread_t t[256];
		for (int i = 0; i < threads; i++)
			pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i);
		for (int i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
		if (!no_child)
			rc = run_child("/proc/self/exe");
	}
	if (print)
		rc |= print_own_ring();
	return rc;
}
