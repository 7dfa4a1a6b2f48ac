#!/usr/bin/env bash
# OTLP/HTTP (https://) and OTLP/gRPC (TLS, ALPN h2) against the test
# receiver with TLS (node https / grpc-js), with a CA, server and client
# certificates made here by the openssl command. For both protocols:
#   - verified against a CA file (otlp.tls_ca_file): every span arrives,
#     decoded by the receiver over TLS; mode logged and exported as a metric
#   - the same through OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE; mTLS through
#     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/_CLIENT_KEY; a server name
#     override; minimum version 1.3; insecure-skip-verify (with its warning)
#   - clear errors naming exporter and endpoint: unknown CA, host name
#     mismatch, expired certificate, client certificate required but not
#     given, TLS to a cleartext server, cleartext to a TLS server
#   - verification failures are configuration errors (let go, not retried
#     at the backoff of an unavailable backend); TLS to a cleartext server
#     is retried
#   - TLS settings with a cleartext endpoint are refused (never ignored);
#     gRPC refuses a TLS server that does not select ALPN h2
#   - kernel TLS: tested when the kernel has the tls ULP, skipped otherwise
. "$(dirname "$0")/otlp-lib.sh"
command -v openssl >/dev/null || fail "openssl not installed (tools/setup-deps.sh)"

# ---- certificates ----------------------------------------------------------
P=$T/pki
mkdir -p "$P"
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
mkca() {
	newkey "$P/$1.key"
	openssl req -x509 -new -key "$P/$1.key" -subj "/CN=$1" -days 2 -out "$P/$1.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign 2>/dev/null ||
		fail "openssl: CA $1"
}
# mkleaf NAME CA SAN DAYS EKU
mkleaf() {
	newkey "$P/$1.key"
	openssl req -new -key "$P/$1.key" -subj "/CN=$1" -out "$P/$1.csr" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$3" "$5" >"$P/$1.ext"
	openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial \
		-days "$4" -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null || fail "openssl: $1"
}
mkca ca
mkca otherca
mkleaf server ca "DNS:localhost,IP:127.0.0.1" 2 serverAuth
mkleaf wronghost ca "DNS:wrong.example" 2 serverAuth
mkleaf expired ca "DNS:localhost,IP:127.0.0.1" -1 serverAuth
mkleaf unknown otherca "DNS:localhost,IP:127.0.0.1" 2 serverAuth
mkleaf client ca "DNS:agent.example" 2 clientAuth

# ---- receivers: one per server certificate, HTTP and gRPC ports each ------
declare -A HP GP RP
start_rx() { # NAME ARGS...
	local n=$1
	shift
	node "$rdir/receiver.js" --out "$T/recv-$n.jsonl" --http-port 0 --grpc-port 0 \
		--port-file "$T/ports-$n.json" --max-seconds 240 --quiet "$@" 2>>"$T/recv.err" &
	RP[$n]=$!
}
start_rx good --tls-cert "$P/server.pem" --tls-key "$P/server.key"
start_rx wronghost --tls-cert "$P/wronghost.pem" --tls-key "$P/wronghost.key"
start_rx expired --tls-cert "$P/expired.pem" --tls-key "$P/expired.key"
start_rx unknown --tls-cert "$P/unknown.pem" --tls-key "$P/unknown.key"
start_rx mtls --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-client-ca "$P/ca.pem"
start_rx clear
start_rx tls12 --tls-cert "$P/server.pem" --tls-key "$P/server.key" --tls-max12 --h2-port 0
stop_all_rx() { for p in "${RP[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_all_rx; otlp_cleanup' EXIT
for n in "${!RP[@]}"; do
	for _ in $(seq 200); do [ -f "$T/ports-$n.json" ] && break; sleep 0.05; done
	[ -f "$T/ports-$n.json" ] || fail "receiver $n did not start"
	HP[$n]=$(node -e 'console.log(require(process.argv[1]).http)' "$T/ports-$n.json")
	GP[$n]=$(node -e 'console.log(require(process.argv[1]).grpc)' "$T/ports-$n.json")
done
# gRPC over TLS 1.2: the raw HTTP/2 endpoint (grpc-js cannot limit the version)
GP[tls12]=$(node -e 'console.log(require(process.argv[1]).h2)' "$T/ports-tls12.json")

# url PROTO RX [SCHEME]: the endpoint of receiver RX
url() {
	local s=${3:-https}
	if [ "$1" = http ]; then echo "$s://127.0.0.1:${HP[$2]}/v1/traces"; else echo "$s://127.0.0.1:${GP[$2]}"; fi
}
kind() { [ "$1" = http ] && echo otlp_http || echo otlp_grpc; }

# ok_case PROTO RX SVC AGENT-ARGS...: spans arrive exactly, over TLS
ok_case() {
	local pr=$1 rx=$2 svc=$3
	shift 3
	rm -f "$T"/exp-*.jsonl
	: >"$T/recv-$rx.jsonl" # the receiver appends (O_APPEND): one case's spans only
	start_agent --shutdown-timeout=5s "$@"
	produce "$svc" "$svc" -n 150 -t 2
	local total
	total=$(expected_count)
	wait_settled "$(kind "$pr")" "$total" 20
	expect_eq "$pr $svc: delivered" "$(stat "exp.$(kind "$pr").spans")" "$total"
	check_zero_copy
	stop_agent
	node "$rdir/check.js" --recv "$T/recv-$rx.jsonl" --expect "$T/exp-$svc.jsonl" --service "$svc" \
		--proto "$pr" || fail "$pr $svc: span check"
	grep '"t":"req"' "$T/recv-$rx.jsonl" | grep "\"proto\":\"$pr\"" | grep -q '"tls":true' ||
		fail "$pr $svc: the receiver saw no request over TLS"
}

# err_case PROTO AGENT-ARGS... -- PATTERN: the exporter fails with PATTERN
# in a line that names the exporter and the endpoint
err_case() {
	local pr=$1 k
	k=$(kind "$pr")
	shift
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	local pat=$2
	: >"$T/agent.log"
	rm -f "$T"/exp-*.jsonl
	start_agent --shutdown-timeout=300ms "${args[@]}"
	produce e e -n 20 -t 1
	local i
	for i in $(seq 100); do grep -q -- "$pat" "$T/agent.log" && break; sleep 0.1; done
	grep -- "$pat" "$T/agent.log" | grep -q "exporter $k" || fail "$pr: no '$pat' naming exporter $k"
	grep -- "$pat" "$T/agent.log" | grep -q "127.0.0.1:" || fail "$pr: '$pat' does not name the endpoint"
	echo "ok: $pr: $(grep -m1 -- "$pat" "$T/agent.log" | cut -c1-220)"
	stop_agent
}

for pr in http grpc; do
	k=$(kind "$pr")
	say "$pr: TLS verified against otlp.tls_ca_file"
	ok_case "$pr" good "tls-$pr" --exporter "$k:$(url "$pr" good)" --otlp.tls_ca_file "$P/ca.pem"
	grep -q "exporter $k: https://127.0.0.1:.*TLSv1.3 .*userspace mode (TLS 1.3 records sealed" \
		"$T/agent.log" || fail "$pr: TLS mode not logged"

	say "$pr: the mode as a metric, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
	mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE="$P/ca.pem" OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent \
		ok_case "$pr" good "env-$pr" --exporter "$k:$(url "$pr" good)" --metrics_port "$mport"
	# (the metric is read while the agent runs: once more, briefly)
	OTEL_EXPORTER_OTLP_CERTIFICATE="$P/ca.pem" start_agent --exporter "$k:$(url "$pr" good)" \
		--metrics_port "$mport"
	produce m m -n 10 -t 1
	wait_settled "$k" 10 20
	m=$(curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null ||
		python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" \
			"http://127.0.0.1:$mport/metrics")
	grep -q "^spanring_exporter_tls{exporter=\"$k\",mode=\"userspace\"} 1$" <<<"$m" ||
		fail "$pr: no TLS mode metric: $(grep tls <<<"$m")"
	# TLS 1.3: records sealed from the ring iovecs, nothing gathered
	[ "$(stat "exp.$k.tls.sealed_bytes")" -gt 0 ] || fail "$pr: sealed_bytes not counted"
	expect_eq "$pr: bytes copied before the cipher" "$(stat "exp.$k.tls.copied_bytes")" 0
	stop_agent

	say "$pr: mTLS with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY"
	OTEL_EXPORTER_OTLP_CERTIFICATE="$P/ca.pem" OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE="$P/client.pem" \
	OTEL_EXPORTER_OTLP_CLIENT_KEY="$P/client.key" \
		ok_case "$pr" mtls "mtls-$pr" --exporter "$k:$(url "$pr" mtls)"

	say "$pr: TLS 1.2 server: the copying SSL_write path"
	: >"$T/agent.log"
	ok_case "$pr" tls12 "tls12-$pr" --exporter "$k:$(url "$pr" tls12)" --otlp.tls_ca_file "$P/ca.pem"
	grep -q "exporter $k: https://127.0.0.1:.*TLSv1.2 .*userspace-copy mode" "$T/agent.log" ||
		fail "$pr: TLS 1.2 mode not logged: $(grep mode "$T/agent.log")"

	say "$pr: server name override, minimum version 1.3"
	ok_case "$pr" wronghost "sni-$pr" --exporter "$k:$(url "$pr" wronghost)" --otlp.tls_ca_file "$P/ca.pem" \
		--otlp.tls_server_name wrong.example --otlp.tls_min_version 1.3

	say "$pr: insecure-skip-verify (warned at start)"
	ok_case "$pr" unknown "insec-$pr" --exporter "$k:$(url "$pr" unknown)" \
		--otlp.tls_insecure_skip_verify=true
	grep -q "exporter $k: https://127.0.0.1:.*verification is OFF" "$T/agent.log" ||
		fail "$pr: no insecure warning"

	say "$pr: errors"
	err_case "$pr" --exporter "$k:$(url "$pr" unknown)" --otlp.tls_ca_file "$P/ca.pem" -- "unknown CA"
	grep -q "TLS configuration error (not retryable)" "$T/agent.log" || fail "$pr: not a configuration error"
	[ "$(grep -c "unknown CA" "$T/agent.log")" -le 2 ] || fail "$pr: configuration error logged too often"
	err_case "$pr" --exporter "$k:$(url "$pr" unknown)" -- "unknown CA" # the system store
	err_case "$pr" --exporter "$k:$(url "$pr" wronghost)" --otlp.tls_ca_file "$P/ca.pem" -- \
		"does not match the host name '127.0.0.1'"
	err_case "$pr" --exporter "$k:$(url "$pr" expired)" --otlp.tls_ca_file "$P/ca.pem" -- \
		"server certificate has expired"
	err_case "$pr" --exporter "$k:$(url "$pr" mtls)" --otlp.tls_ca_file "$P/ca.pem" -- \
		"requires a client certificate"
	err_case "$pr" --exporter "$k:$(url "$pr" tls12)" --otlp.tls_ca_file "$P/ca.pem" \
		--otlp.tls_min_version 1.3 -- "no TLS version in common"
	err_case "$pr" --exporter "$k:$(url "$pr" clear)" --otlp.tls_ca_file "$P/ca.pem" -- \
		"is it a cleartext server"
	grep -q "retry in" "$T/agent.log" || fail "$pr: TLS to a cleartext server is not retried"
	# a TLS server answers cleartext with an alert, or (node) closes at once
	err_case "$pr" --exporter "$k:$(url "$pr" good http)" -- "TLS server, use https://"

	say "$pr: TLS settings with a cleartext endpoint are refused"
	for set in "--otlp.tls_ca_file=$P/ca.pem" "--otlp.tls_server_name=x" "--otlp.tls_min_version=1.3" \
		"--otlp.tls_insecure_skip_verify=true"; do
		if out=$("$bin/spanring-agent" --socket "$T/c.sock" --exporter "$k:$(url "$pr" clear http)" \
			"$set" --check-config 2>&1); then
			fail "$pr: $set accepted with http://: $out"
		fi
		grep -q "is cleartext" <<<"$out" || fail "$pr: $set: $out"
	done
	if out=$(OTEL_EXPORTER_OTLP_CERTIFICATE="$P/ca.pem" "$bin/spanring-agent" --socket "$T/c.sock" \
		--exporter "$k:$(url "$pr" clear http)" --check-config 2>&1); then
		fail "$pr: OTEL_EXPORTER_OTLP_CERTIFICATE accepted with http://"
	fi
	grep -q "OTEL_EXPORTER_OTLP_CERTIFICATE is set but the endpoint .* is cleartext" <<<"$out" ||
		fail "$pr: $out"
done

say "grpc: a TLS server that does not select ALPN h2 (the receiver's HTTP/1.1 port)"
err_case grpc --exporter "otlp_grpc:https://127.0.0.1:${HP[good]}" --otlp.tls_ca_file "$P/ca.pem" -- \
	"HTTP/2 over TLS (ALPN h2)"

say "grpc: host:port without scheme is TLS unless OTEL_EXPORTER_OTLP_INSECURE=true"
"$bin/spanring-agent" --socket "$T/c.sock" --exporter "otlp_grpc:127.0.0.1:1" \
	--otlp.tls_ca_file "$P/ca.pem" --check-config >/dev/null || fail "host:port with a CA file refused"
out=$(OTEL_EXPORTER_OTLP_INSECURE=true "$bin/spanring-agent" --socket "$T/c.sock" \
	--exporter "otlp_grpc:127.0.0.1:1" --otlp.tls_ca_file "$P/ca.pem" --check-config 2>&1) &&
	fail "INSECURE=true with a CA file accepted"
grep -q "is cleartext" <<<"$out" || fail "INSECURE=true: $out"

say "kernel TLS"
if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
	: >"$T/agent.log"
	ok_case http good "ktls" --exporter "otlp_http:$(url http good)" --otlp.tls_ca_file "$P/ca.pem"
	grep -q "ktls mode" "$T/agent.log" || fail "the kernel has the tls ULP but kTLS was not used"
	[ "$(stat exp.otlp_http.tls.copied_bytes)" = 0 ] || fail "kTLS mode copied bytes"
else
	echo "SKIP kTLS: the kernel has no tls ULP (/proc/sys/net/ipv4/tcp_available_ulp:" \
		"'$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null)'; modprobe tls needs the module):" \
		"the user-space mode was tested above"
fi
echo "otlp_tls: all checks passed"
