#!/usr/bin/env bash
# Publishes the visitor page and the control panel (shared/web) to the stack's page bucket,
# which CloudFront serves as its default behaviour. Files that no longer exist are removed.
# Pages are sent with max-age=60, so edges and browsers pick up a new version within a minute.
# Usage: infra/upload-web.sh [stack-name]   (default: waiting-room)
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-waiting-room}

output() {
    aws cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
bucket=$(output WebBucketName)
page=$(output VisitorPageUrl)
panel=$(output ControlPanelUrl)
if [ -z "$bucket" ] || [ "$bucket" = None ]; then
    echo "stack $stack has no WebBucketName output" >&2
    exit 1
fi

aws s3 sync shared/web "s3://$bucket" --delete --no-progress --cache-control "public, max-age=60"
echo "visitor page:  $page"
echo "control panel: $panel"
