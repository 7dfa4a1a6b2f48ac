# Sourced by the tests of issue 14's agent findings (tests/integration/sec_*.sh,
# docs/SECURITY.md "Outside review findings"); not a test itself. Adds to
# agent-lib.sh: running as another uid (nobody) and the agent's memory.
. "$(dirname "$0")/agent-lib.sh"
chmod 755 "$T"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# nobody_ok=1 when this run can act as uid 65534 (root, setpriv, a build
# the other uid can reach, /usr/bin/python3 for the Python helpers).
nobody_ok=0
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
	as_nobody "$PROGS/sr-testprod" -n 0 -w 0 -d 0 >/dev/null 2>&1 && nobody_ok=1
fi
# need_nobody WHAT: skip the test (77) when it cannot run as another uid.
need_nobody() {
	[ $nobody_ok = 1 ] && return 0
	echo "SKIP: $1 needs root and setpriv (to act as uid 65534)"
	exit 77
}
# rss_kib PID FIELD: VmRSS or RssAnon of PID in KiB.
rss_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
