#!/usr/bin/env bash
# The deployment, checked offline: the SAM template passes cfn-lint and `sam validate`, every
# function in it has a package and every Lambda package is in it, and every function builds
# for arm64 as a zip (sizes printed). Run by .ci/run after the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

printf '\n== SAM template: cfn-lint and sam validate\n'
bash infra/validate-template.sh

printf '\n== template and functions/ agree\n'
bash infra/check-functions.sh

printf '\n== arm64 release build of every Lambda (cargo lambda)\n'
start=$(date +%s)
bash infra/build-lambdas.sh
echo "lambda build: $(( $(date +%s) - start )) s"
echo "deploy checks: 3 passed, 0 failed"
