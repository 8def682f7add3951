#!/usr/bin/env bash
# Every test of the waiting room: formatting, lints, unit and end-to-end tests, and the README
# walk-through against a real local server. Installs what it needs; needs no AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit and end-to-end tests"
cargo test --workspace

step "README walk-through against a local server"
cargo build -p waiting-room
bash infra/walkthrough.sh

step "browser: visitor page and control panel in headless Chromium"
WR_BIN=target/debug/waiting-room bash tests/browser/run.sh
