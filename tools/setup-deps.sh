#!/usr/bin/env bash
# Install the Debian packages spanring's build and tests need, when missing.
set -euo pipefail
pkgs=(build-essential clang libck-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
      protobuf-compiler pkg-config valgrind libclang-rt-14-dev python3 nodejs
      libnghttp2-dev libhttp-parser-dev zlib1g-dev libssl-dev openssl man-db groff-base)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm packages of the OTLP receiver the exporter tests run (the lock file
# pins them; node_modules is not committed).
npm_deps() {
	local d
	d="$(cd "$(dirname "$0")/.." && pwd)/tests/otlp-receiver"
	[ -f "$d/package-lock.json" ] || return 0
	if ! command -v npm >/dev/null; then # Debian's nodejs comes without npm
		local S=""
		[ "$(id -u)" -eq 0 ] || S="sudo"
		DEBIAN_FRONTEND=noninteractive $S apt-get install -y -qq npm >/dev/null
	fi
	if [ ! -f "$d/node_modules/.package-lock.json" ] ||
	   [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
		echo "setup-deps: npm ci in tests/otlp-receiver" >&2
		(cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
}
[ ${#missing[@]} -eq 0 ] && { npm_deps; exit 0; }
echo "setup-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
npm_deps
