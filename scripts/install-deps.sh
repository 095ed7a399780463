#!/usr/bin/env bash
# Installs the system packages Rill's build and tests need (bindgen for
# librocksdb-sys, cmake for librdkafka; iproute2 and socat for the test of
# a job across network namespaces; prometheus for promtool and the scrape
# test). Idempotent: does nothing when they are
# present.
set -euo pipefail
need=()
for pkg in libclang-dev cmake pkg-config strace iproute2 socat prometheus; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: all installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
echo "install-deps: done"
