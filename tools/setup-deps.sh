#!/usr/bin/env bash
# Install the Debian packages spanring's build and tests need, when missing.
set -euo pipefail
pkgs=(build-essential clang libck-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
      protobuf-compiler pkg-config valgrind libclang-rt-14-dev python3 nodejs
      libnghttp2-dev libhttp-parser-dev zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
