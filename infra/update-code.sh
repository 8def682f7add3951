#!/usr/bin/env bash
# Ships new code to the functions of a deployed stack without CloudFormation: uploads each
# target/lambda/<binary>/bootstrap.zip (from infra/build-lambdas.sh) to the stack's function
# <Binary>Function. Configuration (environment, memory, IAM) stays the stack's.
# Usage: infra/update-code.sh [stack-name]   (default: waiting-room)
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-waiting-room}

updated=0
for zip in target/lambda/*/bootstrap.zip; do
    [ -e "$zip" ] || { echo "no zips: run infra/build-lambdas.sh first" >&2; exit 1; }
    binary=$(basename "$(dirname "$zip")")
    # assign-position -> AssignPositionFunction (the template's naming rule).
    logical_id=$(sed -E 's/(^|-)([a-z])/\U\2/g' <<<"$binary")Function
    if ! function=$(aws cloudformation describe-stack-resource --stack-name "$stack" \
        --logical-resource-id "$logical_id" \
        --query StackResourceDetail.PhysicalResourceId --output text 2>/dev/null); then
        echo "skip $binary: $stack has no $logical_id"
        continue
    fi
    aws lambda update-function-code --function-name "$function" \
        --zip-file "fileb://$zip" --query '[FunctionName, CodeSize]' --output text
    aws lambda wait function-updated --function-name "$function"
    updated=$((updated + 1))
done
echo "updated $updated functions of $stack"
