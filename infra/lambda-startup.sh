#!/usr/bin/env bash
# Start-to-ready time, memory and size of each Lambda function's release binary, started as
# Lambda starts it against a stand-in Runtime API, with DynamoDB, SQS and Secrets Manager on
# moto (infra/lambda_startup.py says what is measured). A benchmark: not part of the tests.
#
#   bash infra/lambda-startup.sh [RUNS]     # default 5 starts per function
set -euo pipefail
cd "$(dirname "$0")/.."
functions=(assign-position public-reads token-issue authorizer admin-api queue-consumer strategy-runner)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
cargo build --release "${packages[@]}"
export MOTO_PORT=${MOTO_PORT:-4568}
bash infra/moto.sh start
trap 'bash infra/moto.sh stop >/dev/null 2>&1 || true' EXIT
python3 infra/lambda_startup.py "http://127.0.0.1:$MOTO_PORT" target/release "${1:-5}"
