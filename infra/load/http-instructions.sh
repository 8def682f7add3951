#!/usr/bin/env bash
# CPU instructions per request of the cached reads, against the same bare axum hello-world as
# http-bench.sh: each server runs under valgrind's callgrind, counters are zeroed after a warm-up,
# wrk sends requests for a few seconds, and the instructions counted are divided by the requests
# answered. Unlike requests/s, the count barely moves when other work shares the machine, so it
# tells what the room's request path costs beyond the hello-world's (kernel time not included).
#
#   bash infra/load/http-instructions.sh            # 8 s of wrk per server and route
#   WR_BENCH_SECS=4 bash infra/load/http-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${WR_BENCH_SECS:-8}
PORT=${WR_BENCH_PORT:-18180}
OUT=${WR_BENCH_OUT:-target/load/http-instructions-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release -p waiting-room -p waiting-room-core --bins --example hello >&2

PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT
# name path server-command...: prints "name instructions-per-request"
count() {
  local name=$1 path=$2
  shift 2
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.%p" "$@" \
    >"$OUT/$name.log" 2>&1 &
  PID=$!
  local url="http://127.0.0.1:$PORT$path"
  for _ in $(seq 300); do curl -sf "$url" >/dev/null && break; sleep 0.2; done
  for _ in $(seq 50); do curl -sf "$url" >/dev/null; done
  callgrind_control --zero "$PID" >/dev/null
  wrk -t1 -c10 -d"${SECS}s" "$url" >"$OUT/$name.wrk"
  callgrind_control --dump "$PID" >/dev/null
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  local requests instructions
  requests=$(awk '/requests in/ {print $1}' "$OUT/$name.wrk")
  instructions=$(callgrind_annotate "$(ls -t "$OUT/$name".*.1 | head -1)" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "$name $((instructions / requests))"
}
{
  for route in serving_num event_state; do
    count "hello-$route" "/$route?event_id=demo" target/release/examples/hello "127.0.0.1:$PORT"
    count "$route" "/$route?event_id=demo" target/release/waiting-room serve \
      --listen "127.0.0.1:$PORT" --admin-key bench --event demo
  done
} | tee "$OUT/counts.txt" >&2
python3 - "$OUT/counts.txt" <<'PY'
import sys
counts = dict(line.split() for line in open(sys.argv[1]))
for route in ("serving_num", "event_state"):
    hello, room = int(counts[f"hello-{route}"]), int(counts[route])
    print(f"/{route}: room {room:,} instructions/request, hello-world {hello:,}: "
          f"room / hello-world = {room / hello:.2f}")
PY
