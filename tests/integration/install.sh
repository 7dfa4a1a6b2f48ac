#!/usr/bin/env bash
# make install into a DESTDIR; a program built against the installed header
# with pkg-config links the installed shared library and produces spans.
set -euo pipefail
src=${SPANRING_TEST_SRC:?}
build=${SPANRING_TEST_BUILD:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$build" in *asan*|*tsan*) echo "skip under sanitizers"; exit 77 ;; esac
cd "$src"
make -s B="$build" install DESTDIR="$tmp/root" PREFIX=/usr/local >/dev/null
lib="$tmp/root/usr/local/lib"
test -f "$lib/libspanring.so.0" && test -f "$lib/libspanring.a"
test -f "$tmp/root/usr/local/include/spanring/spanring.h"
test -f "$tmp/root/usr/local/include/spanring/ring_abi.h"
pc="$lib/pkgconfig/spanring.pc"
grep -q '^Libs: -L${libdir} -lspanring' "$pc"
# Only the public API is exported from the shared library.
nm -D --defined-only "$lib/libspanring.so.0" | awk '{print $3}' | grep -v '^spanring_' \
	| grep -v '^SPANRING_' && { echo "non-API symbols exported"; exit 1; }
cat > "$tmp/app.c" <<'C'
#include <spanring/spanring.h>
#include <stdio.h>
int main(void)
{
	spanring_tracer *t = spanring_tracer_get("install-test", "1", NULL);
	spanring_span *s = spanring_span_start(t, "installed", SPANRING_KIND_INTERNAL);
	spanring_span_set_int(s, "answer", 42);
	if (spanring_span_end(s) != 0)
		return 1;
	spanring_stats st;
	spanring_get_stats(&st);
	printf("spans=%llu\n", (unsigned long long)st.spans);
	return st.spans == 1 ? 0 : 1;
}
C
grep -q '^prefix=/usr/local$' "$pc"   # DESTDIR is not baked into the .pc
# A real prefix, used through pkg-config as an application would.
make -s B="$build" install PREFIX="$tmp/prefix" >/dev/null
lib="$tmp/prefix/lib"
flags=$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --cflags --libs spanring)
cc -o "$tmp/app" "$tmp/app.c" $flags
out=$(SPANRING_SOCKET="$tmp/none.sock" SPANRING_EXIT_TIMEOUT_MS=0 LD_LIBRARY_PATH="$lib" "$tmp/app")
test "$out" = "spans=1"
# The program really uses the installed shared library.
LD_LIBRARY_PATH="$lib" ldd "$tmp/app" | grep -q "$lib/libspanring.so.0"
echo "install ok: $out"
