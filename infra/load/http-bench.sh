#!/usr/bin/env bash
# Cached reads against a bare axum hello-world, same machine, same run, same wrk settings and
# the same URLs (the hello-world answers every path): requests/s of GET /serving_num and GET
# /event_state on the room divided by requests/s of the hello-world on that path (goal: at least
# 0.85). Both servers run on 127.0.0.1 and wrk stops by itself.
#
#   bash infra/load/http-bench.sh                    # 3 rounds of 10 s each, alternating
#   WR_BENCH_SECS=5 WR_BENCH_ROUNDS=1 bash infra/load/http-bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${WR_BENCH_SECS:-10}
ROUNDS=${WR_BENCH_ROUNDS:-3}
THREADS=${WR_BENCH_THREADS:-1}
CONNECTIONS=${WR_BENCH_CONNECTIONS:-50}
ROOM_PORT=${WR_BENCH_PORT:-18180}
HELLO_PORT=$((ROOM_PORT + 1))
OUT=${WR_BENCH_OUT:-target/load/http-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p waiting-room -p waiting-room-core --bins --example hello >&2

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
RUST_LOG=warn target/release/waiting-room serve --listen "127.0.0.1:$ROOM_PORT" \
  --admin-key bench --event demo >"$OUT/room.log" 2>&1 &
PIDS+=($!)
target/release/examples/hello "127.0.0.1:$HELLO_PORT" >"$OUT/hello.log" 2>&1 &
PIDS+=($!)
for url in "http://127.0.0.1:$ROOM_PORT/serving_num?event_id=demo" "http://127.0.0.1:$HELLO_PORT/"; do
  for _ in $(seq 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
done

run() { # name url
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECS}s" -s infra/load/get.lua "$2" |
    grep '^{' | tee -a "$OUT/$1.jsonl" >&2
}
echo "wrk -t$THREADS -c$CONNECTIONS -d${SECS}s, $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  for route in serving_num event_state; do
    run "hello-$route" "http://127.0.0.1:$HELLO_PORT/$route?event_id=demo"
    run "$route" "http://127.0.0.1:$ROOM_PORT/$route?event_id=demo"
  done
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def runs(name):
    return [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
def line(label, rs):
    r = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
    each = ", ".join(format(x["rps"], ",.0f") for x in rs)
    errors = sum(x["unexpected"] + x["socket_errors"] for x in rs)
    median = statistics.median(x["rps"] for x in rs)
    print(f"{label:<26} median {median:>10,.0f} req/s  (runs: {each}; median run p50 "
          f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; errors {errors})")
    return median
for route in ("serving_num", "event_state"):
    hello = line(f"hello-world /{route}", runs(f"hello-{route}"))
    room = line(f"room /{route}", runs(route))
    print(f"ratio /{route} : hello-world = {room / hello:.2f}  (goal >= 0.85)")
PY
