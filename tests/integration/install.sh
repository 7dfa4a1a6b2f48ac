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
# FHS layout: programs (not the demo), unit, example config, man pages.
r="$tmp/root/usr/local"
for f in "$r/bin/spanring-agent" "$r/bin/spanring-dump" "$r/lib/systemd/system/spanring-agent.service" \
	"$r/share/doc/spanring/agent.conf.example" "$r/etc/spanring/agent.conf" \
	"$r/share/man/man8/spanring-agent.8" "$r/share/man/man1/spanring-dump.1" \
	"$r/share/man/man3/libspanring.3" "$r/share/man/man8/libspanring-preload.8" \
	"$r/lib/libspanring-preload.so"; do
	test -f "$f" || fail "not installed: $f"
done
test ! -e "$r/bin/spanring-example" || fail "the demo program was installed to bin/"
unit="$r/lib/systemd/system/spanring-agent.service"
grep -q '^Type=notify$' "$unit" || fail "unit is not Type=notify"
grep -q '^ExecStart=/usr/local/bin/spanring-agent -c /usr/local/etc/spanring/agent.conf$' "$unit" ||
	fail "unit paths do not follow PREFIX: $(grep ExecStart "$unit")"
! grep -q '@[A-Z]*@' "$unit" || fail "unfilled placeholder in the unit"
# PREFIX=/usr: configuration in /etc, units in /usr/lib/systemd/system
make -s B="$build" install DESTDIR="$tmp/usr" PREFIX=/usr >/dev/null || fail "make install PREFIX=/usr"
grep -q '^ExecStart=/usr/bin/spanring-agent -c /etc/spanring/agent.conf$' \
	"$tmp/usr/usr/lib/systemd/system/spanring-agent.service" || fail "PREFIX=/usr unit paths"
test -f "$tmp/usr/etc/spanring/agent.conf" || fail "PREFIX=/usr: no /etc/spanring/agent.conf"
# The example configuration is valid; every installed binary has --version.
"$r/bin/spanring-agent" -c "$r/share/doc/spanring/agent.conf.example" --check-config >/dev/null ||
	fail "the example configuration does not pass --check-config"
for b in "$r/bin/spanring-agent" "$r/bin/spanring-dump" "$build/bin/spanring-example"; do
	v=$("$b" --version) || fail "$b --version"
	grep -q ' 0\.1\.0' <<<"$v" || fail "$b --version: $v"
done
# The installed man pages render without warnings.
if command -v man >/dev/null; then
	for m in "$r"/share/man/man*/*; do
		w=$(MANWIDTH=80 man -l "$m" 2>&1 >/dev/null)
		[ -z "$w" ] || fail "man -l $m: $w"
		MANWIDTH=80 man -l "$m" 2>/dev/null | grep -q NAME || fail "man -l $m: no NAME section"
	done
else
	echo "man not installed (tools/setup-deps.sh installs man-db): pages not rendered"
fi
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
