#!/usr/bin/env bash
# The bot scenario: a script taking places as fast as it can, from one address and from 100
# (forwarded through a trusted proxy), with the join challenge off and on, solving it or not;
# then the real page in headless Chromium joining at the default difficulty. Against the
# release binary on 127.0.0.1 with default limits and --trusted-proxy 127.0.0.1/32; every run
# is bounded in time. Prints a table (Markdown) of places gained per second and per bot
# CPU-second.
#
#   bash infra/load/bot.sh                 # 10 s per scenario, 10 page joins
#   WR_BOT_SECONDS=3 WR_PAGE_RUNS=3 bash infra/load/bot.sh   # a quick run
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${WR_LOAD_PORT:-18330}
SECS=${WR_BOT_SECONDS:-10}
PAGE_RUNS=${WR_PAGE_RUNS:-10}
KEY=bot-test-key
BASE=http://127.0.0.1:$PORT
OUT=${WR_LOAD_OUT:-target/load/bot-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

cargo build --release -p waiting-room >&2
SERVER=""
stop_server() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }
  SERVER=""
}
trap stop_server EXIT
# A fresh room per scenario: the join pressure and the addresses' counts of one scenario must
# not raise the next one's difficulty.
start_server() { # LOG
  stop_server
  RUST_LOG=warn target/release/waiting-room serve --listen "127.0.0.1:$PORT" --admin-key "$KEY" \
    --trusted-proxy 127.0.0.1/32 >"$1" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do
    curl -sf "$BASE/serving_num?event_id=demo" >/dev/null && return 0
    sleep 0.1
  done
  echo "the room did not start; see $1" >&2
  exit 1
}

event() { # ID MODE
  curl -sf -X POST "$BASE/admin/events" -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' \
    -d "{\"event_id\": \"$1\", \"challenge\": {\"mode\": \"$2\"}}" >/dev/null
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }

printf '| challenge | addresses | bot | places | places/s | bot CPU s | places per bot CPU-s | server CPU s | answers |\n' >"$OUT/table.md"
printf '|---|---|---|---|---|---|---|---|---|\n' >>"$OUT/table.md"
n=0
for mode in off on; do
  for addresses in 1 100; do
    for solve in no yes; do
      [ "$mode" = off ] && [ "$solve" = yes ] && continue
      n=$((n + 1))
      id="bot$n-$mode-$addresses-$solve"
      start_server "$OUT/$id.log"
      event "$id" "$mode"
      flag=""; [ "$solve" = yes ] && flag=--solve
      echo "== $id" >&2
      before=$(cpu_ticks)
      python3 infra/load/bot.py --base "$BASE" --event "$id" --addresses "$addresses" $flag \
        --seconds "$SECS" | tee "$OUT/$id.json" >&2
      server_cpu=$(python3 -c "print(round(($(cpu_ticks) - $before) / $(getconf CLK_TCK), 2))")
      python3 - "$OUT/$id.json" "$mode" "$solve" "$server_cpu" >>"$OUT/table.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bot = "solves" if sys.argv[3] == "yes" else "joins only"
answers = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
print(f"| {sys.argv[2]} | {r['addresses']} | {bot} | {r['places']} | {r['places_per_s']} | "
      f"{r['bot_cpu_s']} | {r['places_per_cpu_s']} | {sys.argv[4]} | {answers} |")
PY
    done
  done
done

echo "== the page in headless Chromium, challenge on at the default difficulty" >&2
start_server "$OUT/page-join.log"
event page-join on
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund) >&2
fi
node infra/load/page-join.mjs "$BASE" page-join "$PAGE_RUNS" | tee "$OUT/page-join.json" >&2
curl -sf -H "authorization: Bearer $KEY" "$BASE/admin/events/page-join/metrics" |
  python3 -c "import json,sys; m=json.load(sys.stdin); print('page-join challenges:', m['challenges'], 'places:', m['counters']['queue_counter'])" >&2

echo >&2
echo "results in $OUT ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))" >&2
cat "$OUT/table.md"
echo
echo "page join at the default difficulty: $(cat "$OUT/page-join.json")"
