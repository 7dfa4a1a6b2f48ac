#!/usr/bin/env bash
# The README's first command (via `make demo`): run instrumented example
# programs end to end and show their spans.
#
# With the agent built, it starts spanring-agent on a private socket with
# the console exporter (human-readable lines) and a protobuf file exporter,
# runs the examples (which register with it), stops the agent with SIGTERM
# (it drains every ring and flushes before exiting) and shows the spans.
# Without an agent binary it falls back to the example printing its own
# ring, decoded.
set -euo pipefail
B=${B:-build/gcc}
bin="$B/bin"
dir=$(mktemp -d /tmp/spanring-demo.XXXXXX)
agent_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

export OTEL_SERVICE_NAME=checkout-demo
if [ ! -x "$bin/spanring-agent" ]; then
	echo "== spanring-agent not built: the example prints its own ring"
	SPANRING_SOCKET="$dir/none.sock" "$bin/spanring-example" --requests 3 --print
	exit 0
fi

export SPANRING_SOCKET="$dir/agent.sock"
echo "== starting spanring-agent (console + file exporters) on $SPANRING_SOCKET"
"$bin/spanring-agent" --socket "$SPANRING_SOCKET" --exporter console \
	--exporter "file:$dir/spans.pb" >"$dir/console.txt" 2>"$dir/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$SPANRING_SOCKET" ] && break; sleep 0.05; done
[ -S "$SPANRING_SOCKET" ] || { cat "$dir/agent.log"; echo "agent did not start"; exit 1; }

echo "== running spanring-example (2 threads x 3 requests, plus a worker child process)"
"$bin/spanring-example" --threads 2 --requests 3
OTEL_SERVICE_NAME=billing-demo "$bin/spanring-example" --requests 2 --no-child

shim="$B/libspanring-preload.so"
pipeline_trace=""
if [ -f "$shim" ]; then
	# An unmodified shell pipeline, traced through the LD_PRELOAD shim. A
	# known parent context (as a CI system or a caller would pass it) makes
	# its trace easy to find afterwards.
	pipeline_trace=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	echo "== tracing an unmodified pipeline with LD_PRELOAD=$shim:"
	echo "   sh -c 'echo hello spanring | tr a-z A-Z | wc -c; ls / | sort | head -n 3'"
	TRACEPARENT="00-$pipeline_trace-00f067aa0ba902b7-01" LD_PRELOAD="$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")" \
		OTEL_SERVICE_NAME=shell-demo sh -c 'echo hello spanring | tr a-z A-Z | wc -c; ls / | sort | head -n 3'
fi

echo "== stopping the agent (SIGTERM: drain, flush, exit)"
kill -TERM "$agent_pid"
wait "$agent_pid" || { cat "$dir/agent.log"; exit 1; }
agent_pid=""
echo "== spans, as the console exporter printed them:"
cat "$dir/console.txt"
echo "== protobuf file written: $(stat -c %s "$dir/spans.pb") bytes (length-delimited ExportTraceServiceRequest)"
if [ -x "$bin/spanring-dump" ]; then
	# The trace that crosses processes: the worker's span is a child of the
	# parent's "spawn worker" span.
	trace=$(sed -n 's/.*"spawn worker" trace=\([0-9a-f]*\).*/\1/p' "$dir/console.txt" | head -n 1)
	echo "== the file read back by spanring-dump, as a waterfall of the cross-process trace $trace:"
	COLUMNS=${COLUMNS:-100} "$bin/spanring-dump" read --trace "$trace" "$dir/spans.pb"
	if [ -n "$pipeline_trace" ]; then
		echo "== the traced pipeline: its process tree, from the shim's process spans:"
		COLUMNS=${COLUMNS:-100} "$bin/spanring-dump" read --trace "$pipeline_trace" "$dir/spans.pb"
	fi
	echo "== and one request of the checkout service as a waterfall:"
	trace=$(sed -n 's/.*checkout-demo.*"GET \/api\/users\/:id" trace=\([0-9a-f]*\).*ERROR.*/\1/p' "$dir/console.txt" | head -n 1)
	[ -n "$trace" ] && COLUMNS=${COLUMNS:-100} "$bin/spanring-dump" read --trace "$trace" "$dir/spans.pb"
fi
echo "== agent log:"
cat "$dir/agent.log"
