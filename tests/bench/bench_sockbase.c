/* SPDX-License-Identifier: MIT */
/*
 * Socket-exporter baseline (issue 7 §4): the conventional path, an
 * in-process exporter that encodes batches with protobuf-c and sends them
 * to a local collector process that decodes them.
 *
 *   bench_sockbase --transport tcp|unix [--spans N] [--rate SPANS/S]
 *                  [--batch 512] [--json]
 *
 * The process forks: the child is the receiver (accepts one connection,
 * reads 4-byte-length-framed ExportTraceServiceRequests, unpacks each with
 * protobuf-c and counts the spans), the parent the sender. Per span the
 * sender does what an SDK does before export: two clock reads (start,
 * end), a random span id, and it keeps the span's data (name, kind,
 * parent, 4 attributes, status) until the batch is full; then it builds
 * the protobuf-c message tree of the batch (ExportTraceServiceRequest /
 * ResourceSpans / ScopeSpans / Span ...), packs it and writes it. This is
 * favourable to the baseline: no per-span allocation (the message structs
 * are reused), no string copies, no HTTP or gRPC framing, no response.
 * TCP is 127.0.0.1 only; the unix socket lives in a private temp dir.
 *
 * Output: the CPU time (getrusage, user + system) of each side, spans
 * received, and CPU ns per span of the sender, the receiver and both.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static long nspans = 1000000, rate, batch = 512;

static uint64_t now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int read_full(int fd, void *b, size_t n)
{
	uint8_t *p = b;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_full(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Receiver: decode every request, count spans. */
static void receiver(int fd, int out)
{
	double c0 = cpu_s();
	uint64_t spans = 0, bytes = 0, reqs = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;
	for (;;) {
		uint32_t len;
		if (read_full(fd, &len, 4))
			break;
		if (len > cap) {
			cap = len;
			buf = realloc(buf, cap);
		}
		if (read_full(fd, buf, len))
			break;
		Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
			opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
				NULL, len, buf);
		if (!req) {
			fprintf(stderr, "bench_sockbase: receiver: undecodable request\n");
			_exit(1);
		}
		for (size_t i = 0; i < req->n_resource_spans; i++)
			for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++)
				spans += req->resource_spans[i]->scope_spans[j]->n_spans;
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
			req, NULL);
		bytes += len;
		reqs++;
	}
	double c = cpu_s() - c0;
	dprintf(out, "%llu %llu %llu %.6f\n", (unsigned long long)spans, (unsigned long long)bytes,
		(unsigned long long)reqs, c);
	_exit(0);
}

/* What the SDK holds for a finished span until export. */
struct rec {
	uint8_t trace_id[16], span_id[8], parent_id[8];
	uint64_t start, end;
};

static uint64_t rng[2] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull};
static uint64_t xrand(void)
{
	uint64_t s1 = rng[0], s0 = rng[1];
	rng[0] = s0;
	s1 ^= s1 << 23;
	rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rng[1] + s0;
}

int main(int argc, char **argv)
{
	const char *transport = "tcp";
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--transport") && i + 1 < argc)
			transport = argv[++i];
		else if (!strcmp(argv[i], "--spans") && i + 1 < argc)
			nspans = atol(argv[++i]);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atol(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: see tests/bench/bench_sockbase.c\n");
			return 2;
		}
	}
	int unix_sock = !strcmp(transport, "unix");
	if (batch < 1 || nspans < 1 || (!unix_sock && strcmp(transport, "tcp"))) {
		fprintf(stderr, "bench_sockbase: bad arguments\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Listening socket first, so that the connect cannot race the child. */
	int ls;
	struct sockaddr_storage ss;
	socklen_t sl;
	char dir[] = "/tmp/sr-sockbase.XXXXXX";
	if (unix_sock) {
		if (!mkdtemp(dir))
			return 1;
		struct sockaddr_un *u = (struct sockaddr_un *)&ss;
		memset(u, 0, sizeof(*u));
		u->sun_family = AF_UNIX;
		snprintf(u->sun_path, sizeof(u->sun_path), "%s/s", dir);
		sl = sizeof(*u);
		ls = socket(AF_UNIX, SOCK_STREAM, 0);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		memset(in, 0, sizeof(*in));
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*in);
		ls = socket(AF_INET, SOCK_STREAM, 0);
	}
	if (ls < 0 || bind(ls, (struct sockaddr *)&ss, sl) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&ss, &sl)) {
		perror("bench_sockbase: listen");
		return 1;
	}
	int pfd[2];
	if (pipe(pfd))
		return 1;
	pid_t child = fork();
	if (child == 0) {
		close(pfd[0]);
		int fd = accept(ls, NULL, NULL);
		close(ls);
		receiver(fd, pfd[1]);
	}
	close(pfd[1]);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		perror("bench_sockbase: connect");
		return 1;
	}
	close(ls);
	if (!unix_sock) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}

	/* The message tree of one batch, built once and refilled. */
	Opentelemetry__Proto__Common__V1__KeyValue rkv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	AnyValue rval = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	rval.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	rval.string_value = "bench-sockbase";
	rkv.key = "service.name";
	rkv.value = &rval;
	KeyValue *rkvs[1] = {&rkv};
	Opentelemetry__Proto__Resource__V1__Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	res.n_attributes = 1;
	res.attributes = rkvs;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
		OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	scope.name = "bench";
	scope.version = "1.0";
	Opentelemetry__Proto__Trace__V1__ScopeSpans ssp = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
	ssp.scope = &scope;
	Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
	rs.resource = &res;
	Opentelemetry__Proto__Trace__V1__ScopeSpans *sspp[1] = {&ssp};
	rs.n_scope_spans = 1;
	rs.scope_spans = sspp;
	Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[1] = {&rs};
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
		OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.n_resource_spans = 1;
	req.resource_spans = rsp;

	struct rec *recs = calloc((size_t)batch, sizeof(*recs));
	Span *spans = calloc((size_t)batch, sizeof(*spans));
	Span **spp = calloc((size_t)batch, sizeof(*spp));
	KeyValue *kvs = calloc((size_t)batch * 4, sizeof(*kvs));
	KeyValue **kvp = calloc((size_t)batch * 4, sizeof(*kvp));
	AnyValue *avs = calloc((size_t)batch * 4, sizeof(*avs));
	Opentelemetry__Proto__Trace__V1__Status *sts = calloc((size_t)batch, sizeof(*sts));
	uint8_t *out = NULL;
	size_t out_cap = 0;
	static const uint8_t parent[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
	static const uint8_t trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
					  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};

	double c0 = cpu_s();
	uint64_t t0 = now(CLOCK_MONOTONIC);
	long sent = 0, n = 0;
	uint64_t bytes = 0;
	while (sent < nspans) {
		/* The spans of one batch, as the application ends them. */
		n = 0;
		while (n < batch && sent + n < nspans) {
			struct rec *r = &recs[n];
			r->start = now(CLOCK_REALTIME);
			memcpy(r->trace_id, trace, 16);
			uint64_t id = xrand();
			memcpy(r->span_id, &id, 8);
			memcpy(r->parent_id, parent, 8);
			r->end = now(CLOCK_REALTIME);
			n++;
		}
		/* Export: build, pack, send. */
		for (long i = 0; i < n; i++) {
			Span *s = &spans[i];
			opentelemetry__proto__trace__v1__span__init(s);
			s->trace_id = (ProtobufCBinaryData){16, recs[i].trace_id};
			s->span_id = (ProtobufCBinaryData){8, recs[i].span_id};
			s->parent_span_id = (ProtobufCBinaryData){8, recs[i].parent_id};
			s->flags = 0x301;
			s->name = "GET /api/users/:id";
			s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
			s->start_time_unix_nano = recs[i].start;
			s->end_time_unix_nano = recs[i].end;
			KeyValue *kv = &kvs[i * 4];
			AnyValue *av = &avs[i * 4];
			static const char *keys[4] = {"http.request.method", "url.path",
						      "http.response.status_code", "cache.hit"};
			for (int k = 0; k < 4; k++) {
				opentelemetry__proto__common__v1__key_value__init(&kv[k]);
				opentelemetry__proto__common__v1__any_value__init(&av[k]);
				kv[k].key = (char *)keys[k];
				kv[k].value = &av[k];
				kvp[i * 4 + k] = &kv[k];
			}
			av[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			av[0].string_value = "GET";
			av[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			av[1].string_value = "/api/users/12345";
			av[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
			av[2].int_value = 200;
			av[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
			av[3].bool_value = 1;
			s->n_attributes = 4;
			s->attributes = &kvp[i * 4];
			opentelemetry__proto__trace__v1__status__init(&sts[i]);
			sts[i].code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
			s->status = &sts[i];
			spp[i] = s;
		}
		ssp.n_spans = (size_t)n;
		ssp.spans = spp;
		size_t len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
		if (len > out_cap) {
			out_cap = len;
			out = realloc(out, out_cap);
		}
		opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
		uint32_t l32 = (uint32_t)len;
		struct iovec iov[2] = {{&l32, 4}, {out, len}};
		if (write_full(fd, iov, 2)) {
			perror("bench_sockbase: write");
			return 1;
		}
		sent += n;
		bytes += len;
		if (rate > 0) {
			uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / (double)rate);
			uint64_t t = now(CLOCK_MONOTONIC);
			if (due > t) {
				struct timespec ts = {(time_t)((due - t) / 1000000000ull), (long)((due - t) % 1000000000ull)};
				nanosleep(&ts, NULL);
			}
		}
	}
	double csend = cpu_s() - c0;
	close(fd);
	double wall = (double)(now(CLOCK_MONOTONIC) - t0) / 1e9;
	char line[256] = {0};
	FILE *f = fdopen(pfd[0], "r");
	unsigned long long rspans = 0, rbytes = 0, rreqs = 0;
	double crecv = 0;
	if (!f || !fgets(line, sizeof(line), f) ||
	    sscanf(line, "%llu %llu %llu %lf", &rspans, &rbytes, &rreqs, &crecv) != 4) {
		fprintf(stderr, "bench_sockbase: no result from the receiver\n");
		return 1;
	}
	int st;
	waitpid(child, &st, 0);
	if (unix_sock) {
		char p[64];
		snprintf(p, sizeof(p), "%s/s", dir);
		unlink(p);
		rmdir(dir);
	}
	if (rspans != (unsigned long long)sent) {
		fprintf(stderr, "bench_sockbase: sent %ld spans, received %llu\n", sent, rspans);
		return 1;
	}
	double ps = (double)sent;
	if (json)
		printf("{\"transport\":\"%s\",\"spans\":%ld,\"batch\":%ld,\"rate\":%ld,\"wall_s\":%.4f,"
		       "\"bytes\":%llu,\"requests\":%llu,\"sender_cpu_s\":%.6f,\"receiver_cpu_s\":%.6f,"
		       "\"sender_ns_per_span\":%.1f,\"receiver_ns_per_span\":%.1f,\"total_ns_per_span\":%.1f}\n",
		       transport, sent, batch, rate, wall, (unsigned long long)bytes, rreqs, csend, crecv,
		       csend * 1e9 / ps, crecv * 1e9 / ps, (csend + crecv) * 1e9 / ps);
	else
		printf("transport=%s spans=%ld sender_ns=%.1f receiver_ns=%.1f total_ns=%.1f wall_s=%.3f\n",
		       transport, sent, csend * 1e9 / ps, crecv * 1e9 / ps, (csend + crecv) * 1e9 / ps, wall);
	return 0;
}
