#!/usr/bin/env bash
# Every test of the waiting room: formatting, lints, unit tests, the store and buffer contracts
# on memory and on moto (DynamoDB and SQS wire protocol), end-to-end tests, the README
# walk-through against a real local server and the browser test. Installs what it needs
# (moto, Chromium, playwright-core, PyYAML); needs no AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "pages and template: every API path the pages call is routed (API route + CloudFront behaviour)"
python3 -c 'import yaml' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-yaml >/dev/null; }
python3 infra/edge.py routes
# The check itself: a path the template does not route must fail it.
if python3 infra/edge.py routes --also /not_routed >/dev/null; then
  echo "infra/edge.py routes accepted a path the template does not route" >&2
  exit 1
fi

step "node test runner: the visitor page's own reckoning; the gate on CloudFront (its function, read from template.yaml)"
node --test tests/web/ tests/edge/

step "build: the local server and every Lambda function"
cargo build --workspace

step "moto: the AWS wire protocol for the DynamoDB and SQS contract suites"
bash infra/moto.sh start
trap 'bash infra/moto.sh stop >/dev/null 2>&1 || true' EXIT
export WR_TEST_AWS_ENDPOINT=http://127.0.0.1:${MOTO_PORT:-4566}

step "unit, contract (memory and moto) and end-to-end tests"
# The local server's slow-client test holds 3,000 connections open in the test and the server.
ulimit -n 16384
cargo test --workspace

step "README walk-through against a local server, on memory, on DynamoDB + SQS (moto), over HTTPS + HTTP/2"
bash infra/walkthrough.sh
bash infra/walkthrough.sh dynamodb "$WR_TEST_AWS_ENDPOINT"
bash infra/walkthrough.sh tls

step "capacity model: waiting-room simulate (per-item costs measured on moto, checked in)"
report=$(target/debug/waiting-room simulate --visitors 20000 --arrival uniform:600 \
  --strategy periodic:100:5)
grep -E '^everyone let in after +0h16m4[0-9]s$' <<<"$report"  # 20,000 at 1,200/min
grep -E '^total +[0-9.]+$' <<<"$report"
# A million visitors (50,000 joins/s, 20,000 admitted/s): no item or partition above half its
# budget (stripes from the code, claims spread over the page's poll interval, moves every
# second), the quotas to raise named with their defaults, and an idle month under $1 as
# deployed by default (no monitoring, one secret) and $6.10 with monitoring on.
million=$(target/debug/waiting-room simulate --preset million)
grep -E '^items and partitions: busiest .* at [0-9]+% of its budget .*, within half of it$' <<<"$million"
grep -E '^ok +DynamoDB transactions on one item +peak +0 tx/s' <<<"$million"
grep -E '^ok +DynamoDB busiest item, writes +peak +211 WCU/s .*\(stripe item\)' <<<"$million"
grep -E '^raise API Gateway requests/s \(account, Region\) +to +[0-9,]+ \(default +10,000\)' <<<"$million"
grep -E '^raise Lambda concurrent executions \(account, Region\) +to +[0-9,]+ \(default +1,000\)' <<<"$million"
grep -E '^raise ConsumerMaxConcurrency \(queue-consumer\) +to +30 \(default +20\)' <<<"$million"
grep -E '^idle cost per month, Monitoring=false \(USD\) +0\.98$' <<<"$million"
grep -E '^-- Monitoring=false \(the template.s default\)$' <<<"$million"
grep -E '^idle cost per month, Monitoring=true \(USD\) +6\.10$' <<<"$million"

step "browser: visitor page and control panel in headless Chromium"
WR_BIN=target/debug/waiting-room bash tests/browser/run.sh
