#!/usr/bin/env bash
# Load scenarios against the waiting room on this machine: installs locust (in a venv under
# target/) and wrk, builds the release binary, starts the server on 127.0.0.1, runs each
# scenario for a bounded time, stops everything and prints a table. Traffic goes to 127.0.0.1
# only and every run stops by itself.
#
#   bash infra/load/run.sh              # the full run, about 10 minutes
#   WR_LOAD_QUICK=1 bash infra/load/run.sh   # a smoke run: every scenario for a few seconds
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PORT=${WR_LOAD_PORT:-18080}
EDDSA_PORT=$((PORT + 1))
QUICK=${WR_LOAD_QUICK:-0}
ADMIN_KEY=load-test-key
OUT=${WR_LOAD_OUT:-target/load/$(date -u +%Y%m%dT%H%M%SZ)}
VENV=target/load-venv
mkdir -p "$OUT"
RUNS=$OUT/runs.jsonl
: >"$RUNS"

step() { printf '\n== %s\n' "$*" >&2; }

step "tools"
if [ ! -x "$VENV/bin/locust" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'locust>=2.30,<3'
fi
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
  else
    sudo apt-get install -y -qq wrk >/dev/null
  fi
fi
"$VENV/bin/locust" --version >&2
cargo build --release -p waiting-room >&2

# 20k open files at most here: the polling storm's visitors share pooled connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVERS=()
stop() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

start_server() { # port algorithm log
  # Every simulated visitor comes from 127.0.0.1: the per-address limits are off.
  RUST_LOG=warn target/release/waiting-room serve --listen "127.0.0.1:$1" --admin-key "$ADMIN_KEY" \
    --join-rate 0 --lookup-rate 0 \
    --algorithm "$2" --event burst --event wrkburst --event poll --event token --event auth \
    --event mix >"$3" 2>&1 &
  SERVERS+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/serving_num?event_id=burst" >/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start; see $3" >&2
  exit 1
}

step "servers: RS256 on $PORT, EdDSA on $EDDSA_PORT"
start_server "$PORT" RS256 "$OUT/server.log"
SERVER_PID=${SERVERS[0]}
start_server "$EDDSA_PORT" EdDSA "$OUT/server-eddsa.log"
EDDSA_PID=${SERVERS[1]}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# record SCENARIO TOOL FIGURES USERS TARGET STEP PID T0 CPU0 LOAD [GENERATOR_CPU]
record() {
  local secs ticks pct
  secs=$(python3 -c "import time; print(max(time.time() - $8, 0.001))")
  ticks=$(( $(cpu_ticks "$7") - $9 ))
  pct=$(python3 -c "print(round($ticks / $(getconf CLK_TCK) / $secs * 100, 1))")
  python3 - "$pct" "$@" >>"$RUNS" <<'PY'
import json, sys
pct, a = sys.argv[1], sys.argv[2:]
print(json.dumps({"scenario": a[0], "tool": a[1], "figures": a[2], "users": a[3],
                  "target_rps": float(a[4]) if a[4] != "-" else None, "step": a[5] == "step",
                  "load": a[9], "server_cpu_pct": float(pct),
                  "generator_cpu_pct": float(a[10]) if len(a) > 10 else None}))
PY
}

# locust_run NAME CLASS EVENT USERS SPAWN SECS TARGET KIND PORT [VAR=value...]
locust_run() {
  local name=$1 class=$2 event=$3 users=$4 spawn=$5 secs=$6 target=$7 kind=$8 port=$9
  shift 9
  local pid=$SERVER_PID
  [ "$port" = "$EDDSA_PORT" ] && pid=$EDDSA_PID
  step "$name: $users users, ${secs}s (load $(load1))"
  local load t0 cpu0
  load=$(load1); t0=$(date +%s.%N); cpu0=$(cpu_ticks "$pid")
  # The generator's own CPU (user + system seconds over wall seconds), to tell its limits
  # from the server's.
  local TIMEFORMAT="%U %S %R"
  { time env WR_EVENT="$event" WR_ADMIN_KEY="$ADMIN_KEY" "$@" \
    timeout $((secs + 120)) "$VENV/bin/locust" -f infra/load/locustfile.py --headless \
    --host "http://127.0.0.1:$port" -u "$users" -r "$spawn" -t "${secs}s" --stop-timeout 5 \
    --csv "$OUT/$name" --only-summary --loglevel WARNING "$class" >"$OUT/$name.log" 2>&1 ||
    true; } 2>"$OUT/$name.time"
  record "$name" locust "$OUT/$name" "$users" "$target" "$kind" "$pid" "$t0" "$cpu0" "$load" \
    "$(awk '{printf "%.0f", ($1 + $2) / $3 * 100}' "$OUT/$name.time")"
}

# wrk_burst NAME SECS CONNECTIONS
wrk_burst() {
  step "$1: wrk, $3 connections, ${2}s (load $(load1))"
  local load t0 cpu0
  load=$(load1); t0=$(date +%s.%N); cpu0=$(cpu_ticks "$SERVER_PID")
  WR_EVENT=wrkburst timeout $(($2 + 30)) wrk -t2 -c"$3" -d"${2}s" -s infra/load/enqueue.lua \
    "http://127.0.0.1:$PORT/assign_queue_num" >"$OUT/$1.wrk" 2>&1 || true
  record "$1" wrk "$OUT/$1.wrk" "$3" - once "$SERVER_PID" "$t0" "$cpu0" "$load"
  # Every accepted visitor must get a position: wait for the consumer to catch up.
  local accepted assigned=0
  accepted=$(python3 -c "import json,sys; print(next(json.loads(l) for l in open(sys.argv[1]) if l.startswith('{'))['accepted'])" "$OUT/$1.wrk")
  for _ in $(seq 300); do
    assigned=$(curl -s -H "authorization: Bearer $ADMIN_KEY" \
      "http://127.0.0.1:$PORT/admin/events/wrkburst/metrics" |
      python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['queue_counter'])")
    [ "$assigned" -ge "$accepted" ] && break
    sleep 0.2
  done
  # (wrk counts only answers it read before stopping, so a few more may have been assigned.)
  echo "$1: $accepted accepted answers counted by wrk, $assigned given a position" |
    tee "$OUT/$1.assigned" >&2
}

if [ "$QUICK" = 1 ]; then
  S=3; POLL_LADDER="500"; RS256_LADDER="50"; EDDSA_LADDER="50"; STEPS="10"; STEP_SECS=5
else
  # Ladders: each scenario at rising sizes, to find the highest one that meets the targets.
  S=10; POLL_LADDER="5000 10000 20000 30000"; RS256_LADDER="100 200 300 500"
  EDDSA_LADDER="500 1000"; STEPS="5 10 20 30 40"; STEP_SECS=20
fi

ONLY=${WR_LOAD_ONLY:-}   # e.g. "polling-storm": run only scenarios whose name contains it
want() { [ -z "$ONLY" ] || [[ "$1" == *"$ONLY"* ]]; }

want burst-enqueue-wrk && wrk_burst burst-enqueue-wrk "$S" 128
want burst-enqueue && locust_run burst-enqueue BurstEnqueue burst 100 100 "$S" - once "$PORT"
# Visitors poll every 5-15 s (10 s on average), so N visitors aim at N/10 polls/s. Two locust
# processes share them: one process juggling tens of thousands of greenlets bunches their
# wake-ups and adds its own queueing to the latencies it reports.
for users in $POLL_LADDER; do
  want polling-storm && locust_run "polling-storm-$users" PollingStorm poll "$users" 2000 $((S * 4)) \
    $((users / 10)) step "$PORT" WR_THINK_MIN=5 WR_THINK_MAX=15 WR_POOL=128 LOCUST_PROCESSES=2
done
# One counter jump lets N visitors in at once; they all claim their token set (3 signatures).
for users in $RS256_LADDER; do
  want token-burst && locust_run "token-burst-rs256-$users" TokenBurst token "$users" 250 $((S * 3)) \
    - step "$PORT"
done
for users in $EDDSA_LADDER; do
  want token-burst && locust_run "token-burst-eddsa-$users" TokenBurst token "$users" 250 $((S * 3)) \
    - step "$EDDSA_PORT"
done
want authorizer && locust_run authorizer-burst AuthorizerBurst auth 100 100 $((S * 2)) - once "$PORT" WR_TOKENS=200
want mix || STEPS=""
# The mix at rising rates (100 users, WR_RATE requests/s each); its tokens are made once, by a
# warm-up run that is not in the table.
[ -n "$STEPS" ] && step "mix warm-up: tokens for the mix"
[ -n "$STEPS" ] && WR_EVENT=mix WR_ADMIN_KEY="$ADMIN_KEY" WR_RATE=1 WR_TOKENS=100 WR_TOKEN_FILE="$OUT/mix-tokens.txt" \
  timeout 120 "$VENV/bin/locust" -f infra/load/locustfile.py --headless \
  --host "http://127.0.0.1:$PORT" -u 1 -r 1 -t 5s --only-summary --loglevel WARNING Mix \
  >"$OUT/mix-warmup.log" 2>&1 || true
for rate in $STEPS; do
  locust_run "mix-$((rate * 100))rps" Mix mix 100 100 "$STEP_SECS" $((rate * 100)) step "$PORT" \
    WR_RATE="$rate" WR_TOKENS=100 WR_TOKEN_FILE="$OUT/mix-tokens.txt"
done

step "results ($OUT), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 infra/load/summarize.py "$RUNS" | tee "$OUT/table.md"
