#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the build's system
# packages, installs and starts the test broker (Tansu), runs every test
# against it, and stops the broker it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}"
bash scripts/install-deps.sh
started_broker=0
if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
  bash scripts/test-broker.sh start
  started_broker=1
  eval "$(bash scripts/test-broker.sh env)"
fi
cleanup() { if [ "$started_broker" = 1 ]; then bash scripts/test-broker.sh stop; fi; }
trap cleanup EXIT
echo "test.sh: KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP"
cargo test --workspace "$@"
