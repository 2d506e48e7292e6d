#!/usr/bin/env bash
# Installs the Debian packages nuvom needs. Idempotent: does nothing when
# every package is already installed (no apt-get update either).
set -eu
PKGS="build-essential cmake pkg-config liburcu-dev libck-dev libjemalloc-dev
libcmocka-dev libsqlite3-dev libjansson-dev libicu-dev tzdata clang-14
libclang-rt-14-dev python3"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
