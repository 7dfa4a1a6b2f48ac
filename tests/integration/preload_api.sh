#!/usr/bin/env bash
# The API through the shim. A program built against spanring.h and linked
# with the no-op stub libspanring-api.so.0 runs untraced (non-recording
# spans, nothing registered, a few ns per span) without the shim, and
# traced with it preloaded, its spans under the process span in every
# thread. Linked with the full libspanring.so instead, the shim still
# takes over: one producer per process. Exports: the stub has exactly
# libspanring's API; the shim exports only the API and what it interposes.
. "$(dirname "$0")/preload_lib.sh"
command -v cc >/dev/null || { echo "SKIP: cc needed"; exit 77; }
[ -f "$APISTUB" ] || fail "$APISTUB not built"

api() { nm -D --defined-only "$1" | awk '{print $3}' | sed 's/@.*//' | grep '^spanring_' | sort; }
diff <(api "$APISTUB") <(api "$BUILD/libspanring.so") || fail "the stub's API differs from libspanring's"
nm -D --defined-only "$APISTUB" | awk '{print $3}' | grep -v '^spanring_\|^SPANRING_' && fail "stub exports more"
allowed=$(sed -n 's/^\t\t\(.*\);$/\1/p' "$SRC/lib/preload/preload.map" | tr -d ' ' | tr ';' '\n' | sort)
extra=$(nm -D --defined-only "$SHIM" | awk '{print $3}' | grep -v '^spanring_' | sort | comm -23 - <(echo "$allowed"))
[ -z "$extra" ] || fail "the shim exports $extra"

cat >"$T/app.c" <<'C'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <spanring/spanring.h>

static spanring_tracer *tr;

static void *worker(void *arg)
{
	(void)arg;
	spanring_span *s = spanring_span_start(tr, "in-thread", SPANRING_KIND_INTERNAL);
	spanring_span_end(s);
	return NULL;
}

int main(void)
{
	tr = spanring_tracer_get("api-test", "1", NULL);
	int init = spanring_init();
	spanring_span *w = spanring_span_start(tr, "work", SPANRING_KIND_SERVER);
	spanring_span_set_int(w, "answer", 42);
	spanring_span *st = spanring_span_start_ref(tr, "step", SPANRING_KIND_INTERNAL);
	spanring_span_end(st);
	int rec = spanring_span_is_recording(w);
	spanring_span_end(w);
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, NULL);
	spanring_span_data d = {.name = "emitted", .kind = SPANRING_KIND_CLIENT};
	spanring_span_emit(tr, &d);
	spanring_span_context cur;
	int cc = spanring_current_context(&cur);
	/* Cost of a span that records nothing: an unsampled parent. */
	struct timespec a, b;
	spanring_span_context unsampled = {.trace_id = {1}, .span_id = {1}};
	spanring_span_opts un = {.parent = &unsampled};
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 100000; i++)
		spanring_span_end(spanring_span_start_ex(NULL, "loop", &un));
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 100000;
	printf("recording=%d init=%d current=%d\n", rec, init, cc);
	fprintf(stderr, "%.1f ns per start+end\n", ns);
	return 0;
}
C
cc -O2 -I"$SRC/include" -o "$T/app-stub" "$T/app.c" "$APISTUB" -Wl,-rpath,"$BUILD" -lpthread \
	|| fail "build against the stub"
mkdir -p "$T/lib" && ln -s "$BUILD/libspanring.so" "$T/lib/libspanring.so.0"
cc -O2 -I"$SRC/include" -o "$T/app-full" "$T/app.c" "$T/lib/libspanring.so.0" -Wl,-rpath,"$T/lib" \
	-lpthread || fail "build against libspanring"
ldd "$T/app-stub" >"$T/ldd.txt"
grep -q "libspanring-api.so.0 => $BUILD" "$T/ldd.txt" || fail "app-stub does not use the stub"
agent_start

out=$(LD_PRELOAD=$SANRT "$T/app-stub" 2>"$T/cost") || fail "untraced run"
[ "$out" = "recording=0 init=-125 current=-2" ] || fail "untraced output '$out'"
echo "untraced: $(cat "$T/cost")"
awk '{ exit !($1 < 100) }' "$T/cost" || fail "a no-op span costs $(cat "$T/cost")"
OTEL_TRACES_SAMPLER=parentbased_always_off SPANRING_TRACE=process,exec traced "$T/app-stub" \
	>/dev/null 2>&1 || fail "unsampled run"
out=$(traced "$T/app-stub" 2>"$T/cost") || fail "traced run (stub)"
[ "$out" = "recording=1 init=0 current=0" ] || fail "traced output '$out'"
echo "traced, unsampled spans: $(cat "$T/cost")"
out=$(traced "$T/app-full" 2>/dev/null) || fail "traced run (libspanring)"
[ "$out" = "recording=1 init=0 current=0" ] || fail "traced output (libspanring) '$out'"
agent_stop

grep -c ") released: " "$T/agent.log" >"$T/nreg"
check "$(cat "$T/nreg")" <<'PY'
from preload_check import *
nreg = int(sys.argv[2])
apps = [s for s in S.procs() if s["name"].startswith("app-")]
print([(a["name"], len(S.children(a))) for a in apps])
# The run with parentbased_always_off records nothing (its process span
# is unsampled too); the two others one process span each.
expect(sorted(a["name"] for a in apps) == ["app-full", "app-stub"], "traced runs: %s" %
       [a["name"] for a in apps])
expect(nreg == 3, "one producer (ring) per traced process: %d registrations" % nreg)
for a in apps:
    kids = S.children(a)
    loops = [k for k in kids if k["name"] == "loop"]
    if a["flags"] & 1 == 0:
        expect(False, "process span recorded although unsampled")
    named = {k["name"]: k for k in kids if k["name"] != "loop"}
    expect(set(named) == {"work", "in-thread", "emitted"}, "top-level API spans: %s" % sorted(named))
    expect(named["work"]["scope"] == "api-test" and named["work"]["attrs"]["answer"] == 42, "work")
    steps = S.children(named["work"])
    expect([s["name"] for s in steps] == ["step"], "step under work")
    expect(not loops, "unsampled spans are not recorded")
    expect(a["start"] <= named["work"]["start"] <= named["work"]["end"] <= a["end"], "timing")
PY
echo "ok: API through the shim"
