#!/usr/bin/env bash
# MSG_ZEROCOPY on a non-loopback path: the agent sends to the receiver in a
# network namespace of this test (veth pair, 10.213.x test addresses).
# Every span arrives exactly once, the completions were read from the
# error queue (one per zerocopy send), the batches were held until then,
# and span iovecs came from ring memory. On a veth path the kernel reports
# the sends as copied, and the exporter then stops asking for zerocopy on
# that connection (counted). Needs root and iproute2 (else skipped).
. "$(dirname "$0")/otlp-lib.sh"
[ "$(id -u)" = 0 ] && command -v ip >/dev/null || { echo "skip: needs root and ip(8)"; exit 77; }
ns=sr-zct-$$
a="zt$$a" b="zt$$b"
net_cleanup() {
	ip link del "$a" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	otlp_cleanup
}
trap net_cleanup EXIT
ip netns add "$ns" || { echo "skip: cannot create a network namespace"; exit 77; }
ip link add "$a" type veth peer name "$b"
ip link set "$b" netns "$ns"
sub=$((200 + $$ % 50))
ip addr add "10.213.$sub.1/24" dev "$a"
ip link set "$a" up
ip netns exec "$ns" ip addr add "10.213.$sub.2/24" dev "$b"
ip netns exec "$ns" ip link set "$b" up
ip netns exec "$ns" ip link set lo up

say "OTLP/HTTP with MSG_ZEROCOPY (otlp.zerocopy_min=4K) to a receiver in a namespace"
RECV_NETNS=$ns RECV_HOST="10.213.$sub.2" start_receiver ""
start_agent --exporter "otlp_http:http://10.213.$sub.2:$HTTP_PORT/v1/traces" --otlp.zerocopy-min=4K
SPANRING_SLOT_SIZE=8M produce a svc -n 300 -t 2 -b 2000
total=$(expected_count)
wait_settled otlp_http "$total"
zs=$(stat exp.otlp_http.zc_sends)
expect_ge "zerocopy sends" "$zs" 1
expect_eq "completions read from the error queue" "$(stat exp.otlp_http.zc_completions)" "$zs"
echo "completions the kernel reports as copied: $(stat exp.otlp_http.zc_copied)"
expect_eq "failures" "$(stat exp.otlp_http.failures)" 0
check_zero_copy
stop_agent
check_spans --file "$T/s.pb"
echo "otlp_zerocopy: all checks passed"
