#!/usr/bin/env bash
# make install into a DESTDIR and into a PREFIX; a program built against the
# installed header with pkg-config links the installed shared library and
# produces spans; only the API is exported.
set -uo pipefail
fail() { echo "FAIL: $*"; exit 1; }
src=${SPANRING_TEST_SRC:?}
build=${SPANRING_TEST_BUILD:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$build" in *asan*|*tsan*) echo "skip under sanitizers"; exit 77 ;; esac
cd "$src" || fail "cd $src"
make -s B="$build" install DESTDIR="$tmp/root" PREFIX=/usr/local >/dev/null || fail "make install DESTDIR"
lib="$tmp/root/usr/local/lib"
for f in "$lib/libspanring.so.0" "$lib/libspanring.a" "$tmp/root/usr/local/include/spanring/spanring.h" \
	"$tmp/root/usr/local/include/spanring/ring_abi.h"; do
	test -f "$f" || fail "not installed: $f"
done
pc="$lib/pkgconfig/spanring.pc"
grep -q '^Libs: -L${libdir} -lspanring' "$pc" || fail "bad $pc: $(cat "$pc")"
grep -q '^prefix=/usr/local$' "$pc" || fail "DESTDIR baked into $pc"
# Only the public API is exported from the shared library.
extra=$(nm -D --defined-only "$lib/libspanring.so.0" | awk '{print $3}' | grep -v -e '^spanring_' -e '^SPANRING_')
[ -z "$extra" ] || fail "non-API symbols exported: $extra"
cat > "$tmp/app.c" <<'C'
#include <spanring/spanring.h>
#include <stdio.h>
int main(void)
{
	spanring_tracer *t = spanring_tracer_get("install-test", "1", NULL);
	spanring_span *s = spanring_span_start(t, "installed", SPANRING_KIND_INTERNAL);
	spanring_span_set_int(s, "answer", 42);
	spanring_span_set_str(s, "inline.front.end", "literal lengths");
	int r = spanring_span_end(s);
	spanring_stats st;
	spanring_get_stats(&st);
	printf("spans=%llu\n", (unsigned long long)st.spans);
	if (r != 0)
		fprintf(stderr, "span end: %d\n", r);
	return r == 0 && st.spans == 1 ? 0 : 1;
}
C
# A real prefix, used through pkg-config as an application would.
make -s B="$build" install PREFIX="$tmp/prefix" >/dev/null || fail "make install PREFIX"
lib="$tmp/prefix/lib"
flags=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --cflags --libs spanring) || fail "pkg-config"
cc -o "$tmp/app" "$tmp/app.c" $flags || fail "cc against the installed library"
out=$(SPANRING_SOCKET="$tmp/none.sock" SPANRING_EXIT_TIMEOUT_MS=0 LD_LIBRARY_PATH="$lib" "$tmp/app" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "spans=1" ] || fail "app: rc=$rc output: $out"
# The program really uses the installed shared library.
deps=$(LD_LIBRARY_PATH="$lib" ldd "$tmp/app")
grep -q "$lib/libspanring.so.0" <<<"$deps" || fail "app not linked to the installed library: $deps"
echo "install ok: $out"
