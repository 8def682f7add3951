#!/usr/bin/env bash
# The gate's cost: requests/s of a bare axum hello-world (the application) reached through the
# gate with a valid pass, divided by requests/s of the same application reached directly, same
# machine, same run, same wrk settings, rounds alternating (goal: at least 0.7). Everything on
# 127.0.0.1; wrk stops by itself; any answer other than the application's (a refused pass, a
# 502) is counted as an error.
#
#   bash infra/load/gate-bench.sh                       # 3 rounds of 10 s each
#   WR_BENCH_SECS=5 WR_BENCH_ROUNDS=1 bash infra/load/gate-bench.sh
#
# Ports: the room on WR_GATE_BENCH_PORT (default 18800), the gate on +1, the application on +2.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${WR_BENCH_SECS:-10}
ROUNDS=${WR_BENCH_ROUNDS:-3}
THREADS=${WR_BENCH_THREADS:-1}
CONNECTIONS=${WR_BENCH_CONNECTIONS:-50}
ROOM_PORT=${WR_GATE_BENCH_PORT:-18800}
GATE_PORT=$((ROOM_PORT + 1))
APP_PORT=$((ROOM_PORT + 2))
ROOM=http://127.0.0.1:$ROOM_PORT
OUT=${WR_BENCH_OUT:-target/load/gate-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Two builds: `--example` would limit a combined one to the example alone.
cargo build --release -p waiting-room >&2
cargo build --release -p waiting-room-core --example hello >&2

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
target/release/examples/hello "127.0.0.1:$APP_PORT" >"$OUT/app.log" 2>&1 &
PIDS+=($!)
RUST_LOG=warn target/release/waiting-room serve --listen "127.0.0.1:$ROOM_PORT" \
  --admin-key bench --event demo --strategy-every 1 \
  --gate-listen "127.0.0.1:$GATE_PORT" --upstream "http://127.0.0.1:$APP_PORT" \
  >"$OUT/room.log" 2>&1 &
PIDS+=($!)
for url in "$ROOM/serving_num?event_id=demo" "http://127.0.0.1:$APP_PORT/"; do
  for _ in $(seq 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
done

# One visitor through the room as the page would: join, wait for a place, be let in, claim.
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
id=$(curl -sf -X POST "$ROOM/assign_queue_num" -d '{"event_id":"demo"}' \
  -H 'content-type: application/json' | json "['api_request_id']")
for _ in $(seq 100); do
  curl -sf "$ROOM/queue_num?event_id=demo&request_id=$id" >/dev/null && break
  sleep 0.1
done
curl -sf -X POST "$ROOM/increment_serving_counter" -H 'authorization: Bearer bench' \
  -H 'content-type: application/json' -d '{"event_id":"demo","increment_by":1}' >/dev/null
token=$(curl -sf -X POST "$ROOM/generate_token" -H 'content-type: application/json' \
  -d "{\"event_id\":\"demo\",\"request_id\":\"$id\"}" | json "['access_token']")
# The pass opens the gate; without it the gate turns the request away.
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: wr_pass=$token" "http://127.0.0.1:$GATE_PORT/")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GATE_PORT/")" = 503 ]

run() { # name url [header]
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECS}s" -s infra/load/get.lua ${3:+-H "$3"} "$2" |
    grep '^{' | tee -a "$OUT/$1.jsonl" >&2
}
echo "wrk -t$THREADS -c$CONNECTIONS -d${SECS}s, $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for _ in $(seq "$ROUNDS"); do
  run app "http://127.0.0.1:$APP_PORT/shop/item?x=1"
  run gate "http://127.0.0.1:$GATE_PORT/shop/item?x=1" "cookie: wr_pass=$token"
done
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def line(label, name):
    rs = [json.loads(l) for l in open(f"{out}/{name}.jsonl")]
    r = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
    each = ", ".join(format(x["rps"], ",.0f") for x in rs)
    errors = sum(x["unexpected"] + x["socket_errors"] for x in rs)
    median = statistics.median(x["rps"] for x in rs)
    print(f"{label:<28} median {median:>10,.0f} req/s  (runs: {each}; median run p50 "
          f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; errors {errors})")
    return median
app = line("application alone", "app")
gate = line("through the gate, with pass", "gate")
print(f"ratio gate : application = {gate / app:.2f}  (goal >= 0.7)")
PY
