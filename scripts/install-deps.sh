#!/usr/bin/env bash
# Installs the system packages Rill's build needs (bindgen for librocksdb-sys,
# cmake for librdkafka). Idempotent: does nothing when they are present.
set -euo pipefail
need=()
for pkg in libclang-dev cmake pkg-config strace; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: libclang-dev, cmake, pkg-config already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
echo "install-deps: done"
