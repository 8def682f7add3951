#!/usr/bin/env bash
# Durable joins: the release server with --data-dir against the same server in memory, same run,
# same wrk settings (joins/s, latency, the ratio); then the restart time of a data directory
# holding 1,000,000 positions. Traffic goes to 127.0.0.1 only and every run stops by itself.
#
#   bash infra/load/durable-bench.sh
#   WR_BENCH_SECS=5 WR_BENCH_FILL=100000 bash infra/load/durable-bench.sh   # a quick run
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${WR_BENCH_PORT:-18220}
SECS=${WR_BENCH_SECS:-10}
CONNECTIONS=${WR_BENCH_CONNECTIONS:-256}
FILL=${WR_BENCH_FILL:-1000000}
KEY=bench-key
OUT=${WR_BENCH_OUT:-target/load/durable-bench-$(date -u +%Y%m%dT%H%M%SZ)}
DATA=$OUT/data
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p waiting-room >&2
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PID=
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap 'kill -9 $PID 2>/dev/null || true' EXIT

start() { # log, then serve's own flags
  local log=$1; shift
  RUST_LOG=info target/release/waiting-room serve --listen "127.0.0.1:$PORT" --admin-key "$KEY" \
    --join-rate 0 --lookup-rate 0 --event demo "$@" >"$log" 2>&1 &
  PID=$!
  for _ in $(seq 1200); do
    curl -sf "http://127.0.0.1:$PORT/serving_num?event_id=demo" >/dev/null && return 0
    sleep 0.05
  done
  echo "the server did not start; see $log" >&2
  exit 1
}

placed() {
  curl -s -H "authorization: Bearer $KEY" "http://127.0.0.1:$PORT/admin/events/demo/metrics" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['queue_counter'])"
}

burst() { # name seconds
  WR_EVENT=demo timeout $(($2 + 30)) wrk -t2 -c"$CONNECTIONS" -d"${2}s" \
    -s infra/load/enqueue.lua "http://127.0.0.1:$PORT/assign_queue_num" | grep '^{' >"$OUT/$1.json"
}

echo "wrk -t2 -c$CONNECTIONS -d${SECS}s; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
start "$OUT/memory.log"
burst memory "$SECS"
stop
rm -rf "$DATA"
start "$OUT/durable.log" --data-dir "$DATA"
burst durable "$SECS"
echo "load at the end of the bursts $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Fill the directory to FILL positions through the same route, then kill -9 and time the restart.
while [ "$(placed)" -lt "$FILL" ]; do
  burst fill 20
done
for _ in $(seq 600); do
  before=$(placed); sleep 0.5; [ "$(placed)" = "$before" ] && break
done
positions=$(placed)
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
journal=$(du -sh "$DATA" | cut -f1)
t0=$(date +%s.%N)
start "$OUT/restart.log" --data-dir "$DATA"
t1=$(date +%s.%N)
after=$(placed)
stop

python3 - "$OUT" "$positions" "$after" "$t0" "$t1" "$journal" <<'PY'
import json, re, sys
out, positions, after, t0, t1, journal = sys.argv[1:]
def show(name):
    r = json.load(open(f"{out}/{name}.json"))
    errors = r["unexpected"] + r["socket_errors"]
    print(f"{name:<8} {r['rps']:>10,.0f} joins/s  p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms"
          f"  p99 {r['p99_ms']:.2f} ms  ({r['accepted']:,} answered 202, {errors} errors)")
    return r["rps"]
memory, durable = show("memory"), show("durable")
print(f"durable : memory = {durable / memory:.2f}   (goal: durable >= 20,000 joins/s)")
log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{out}/restart.log").read())
replayed = re.search(r"took_ms=(\d+)", log)
print(f"restart with {int(positions):,} positions ({journal} on disk): answering after "
      f"{float(t1) - float(t0):.1f} s (replay {int(replayed.group(1)) / 1000 if replayed else '?'} s), "
      f"{int(after):,} positions after it")
PY
