#!/usr/bin/env bash
# The polling crowd behind a CDN: nginx configured from template.yaml's CloudFront behaviours
# and cache policies (infra/edge.py) in front of the local server, real visitor pages in
# headless Chromium, then a simulated crowd polling at the page's own pace (infra/load/cdn.mjs).
# Reports origin requests per waiting visitor-minute, the edge's hit ratio and origin requests
# per second per event. Installs nginx, Chromium and playwright-core when missing; 127.0.0.1
# only; bounded in time (about 3 minutes with the defaults).
#
#   bash infra/load/cdn.sh                                   # 30 pages, then 3,000 simulated visitors, 60 s each
#   WR_CDN_PAGES=10 WR_CDN_CROWD=500 WR_CDN_SECS=20 bash infra/load/cdn.sh   # a quick run
#   WR_BIN=path/to/waiting-room WR_CDN_CROWD=0 bash infra/load/cdn.sh        # another build's page
#
# Ports: the edge on WR_CDN_PORT (default 18750), the origin's door on +1, the room on +2.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BASE=${WR_CDN_PORT:-18750}
EDGE_PORT=$BASE
DOOR_PORT=$((BASE + 1))
ORIGIN_PORT=$((BASE + 2))
ADMIN_KEY=cdn-load-key
OUT=${WR_CDN_OUT:-target/load/cdn-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

step() { printf '\n== %s\n' "$*" >&2; }
install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq "$@" >/dev/null
  fi
}

step "tools"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || install nginx
[ -x /usr/bin/chromium ] || install chromium
python3 -c 'import yaml' 2>/dev/null || install python3-yaml
[ -f tests/browser/node_modules/playwright-core/package.json ] || (cd tests/browser && npm ci --no-audit --no-fund)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -z "${WR_BIN:-}" ]; then
  cargo build --release -p waiting-room >&2
  WR_BIN=target/release/waiting-room
fi

step "edge: nginx from template.yaml"
# nginx's workers run unprivileged: the folder must be readable and writable by them.
mkdir -p "$OUT/nginx"
chmod 777 "$OUT/nginx"
python3 infra/edge.py nginx --listen "$EDGE_PORT" --origin "127.0.0.1:$ORIGIN_PORT" \
  --counter-port "$DOOR_PORT" --dir "$OUT/nginx" >&2

PIDS=()
stop() {
  "$NGINX" -c "$OUT/nginx/nginx.conf" -s quit 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

step "origin: $WR_BIN on $ORIGIN_PORT; edge on $EDGE_PORT"
RUST_LOG=warn "$WR_BIN" serve --listen "127.0.0.1:$ORIGIN_PORT" --admin-key "$ADMIN_KEY" \
  --join-rate 0 --lookup-rate 0 --strategy-every 1 >"$OUT/room.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ORIGIN_PORT/serving_num?event_id=demo" >/dev/null && break
  sleep 0.1
done
"$NGINX" -c "$OUT/nginx/nginx.conf"
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$EDGE_PORT/serving_num?event_id=demo" >/dev/null && break
  sleep 0.1
done

step "scenario (load $(cut -d' ' -f1-3 /proc/loadavg))"
WR_CDN_EDGE="http://127.0.0.1:$EDGE_PORT" WR_CDN_ORIGIN="http://127.0.0.1:$ORIGIN_PORT" \
  WR_CDN_ADMIN_KEY="$ADMIN_KEY" WR_CDN_OUT="$OUT" \
  timeout 900 node infra/load/cdn.mjs | tee "$OUT/table.md"
echo "(load $(cut -d' ' -f1-3 /proc/loadavg); logs and report.json in $OUT)" >&2
