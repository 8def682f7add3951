#!/usr/bin/env bash
# Checks template.yaml offline, with no AWS account:
#   1. cfn-lint on the SAM template;
#   2. sam validate: the SAM transform itself (bad events, authorizers, globals...);
#   3. sam validate --lint: SAM's own cfn-lint run;
#   4. cfn-lint on the transformed CloudFormation, where the rules that skip SAM templates
#      (IAM action names, for one) see the roles, permissions and APIs SAM generates.
# Installs cfn-lint and aws-sam-cli with pip when missing. Any error or warning fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export SAM_CLI_TELEMETRY=0

command -v cfn-lint >/dev/null || python3 -m pip install --quiet cfn-lint
command -v sam >/dev/null || python3 -m pip install --quiet aws-sam-cli

passed=0
failed=0
check() {
    local name=$1
    shift
    printf '\n== %s\n' "$name"
    if "$@"; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        echo "FAILED: $name"
    fi
}

# The SAM transform as CloudFormation runs it, written out as JSON. Local CodeUri paths are
# swapped for a placeholder S3 URI (the transform only accepts S3 code locations).
transformed=$(mktemp --suffix=.json)
trap 'rm -f "$transformed"' EXIT
transform() {
    python3 - "$transformed" <<'PY'
import json
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no managed policy, so the transform never asks IAM for one."""

    def load(self):
        return {}


template = json.loads(json.dumps(cfn_yaml.load("template.yaml")))
template.setdefault("Globals", {}).setdefault("Function", {})
template["Globals"]["Function"]["CodeUri"] = "s3://validation-only/code.zip"
for resource in template["Resources"].values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.get("Properties", {}).pop("CodeUri", None)
try:
    transformed = transform(template, {}, NoManagedPolicies())
except Exception as error:  # the transform's own message says what is wrong
    sys.exit(f"SAM transform failed: {error}")
with open(sys.argv[1], "w") as out:
    json.dump(transformed, out, indent=1)
PY
}
lint_transformed() { transform && cfn-lint "$transformed"; }

echo "cfn-lint $(cfn-lint --version | awk '{print $2}'), $(sam --version)"
check "cfn-lint template.yaml" cfn-lint template.yaml
check "sam validate (SAM transform)" sam validate -t template.yaml
check "sam validate --lint" sam validate --lint -t template.yaml
check "cfn-lint on the transformed template" lint_transformed

echo
echo "template: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
