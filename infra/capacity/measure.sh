#!/usr/bin/env bash
# Measures the room's per-item DynamoDB costs on the wire and writes the capacity model's input,
# infra/capacity/measured/dynamodb.json (checked in; `waiting-room simulate` compiles it in).
# Run it again whenever the DynamoDB store's calls change: the capacity tests fail until then.
#
#   bash infra/capacity/measure.sh [VISITORS]     # default 300; MOTO_PORT picks moto's port
#
# Starts moto if it is not running (and stops it again). moto slows as its table grows, so the
# run stays at a few hundred visitors; per-visitor costs do not depend on the crowd's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
VISITORS="${1:-300}"
PORT="${MOTO_PORT:-4566}"
started=""
if ! curl -s -o /dev/null "http://127.0.0.1:${PORT}/moto-api/"; then
    bash infra/moto.sh start
    started=yes
fi
trap '[[ -n "$started" ]] && bash infra/moto.sh stop >/dev/null 2>&1 || true' EXIT
cargo run -p waiting-room-capacity --bin store-calls -- "$VISITORS" \
    --arrivals-per-sec 50 --dynamodb "http://127.0.0.1:${PORT}" \
    --write infra/capacity/measured/dynamodb.json
