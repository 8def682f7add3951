#!/usr/bin/env bash
# Creates the token signing key in AWS Secrets Manager, or rotates it.
#
#   infra/create-signing-secret.sh create [name]   a new secret (default name: waiting-room/signing-key)
#   infra/create-signing-secret.sh rotate <arn>    a new current key; the old one stays valid
#
# The key is a PKCS#8 PEM made by `waiting-room keygen` (RS256), or by openssl when that binary
# is not built. A new secret's value is the bare PEM. A rotated secret's value is
# {"current": "<new PEM>", "previous": ["<old PEM>"]}: tokens signed with the old key keep
# verifying (both keys are in the JWKS) until they expire; run `rotate` again later to drop
# it. Functions pick the new key up when their key cache expires or at their next cold start.
# Pass the printed ARN to the stack as SigningKeySecretArn.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"

# Writes a fresh RS256 (RSA 2048) private key, PKCS#8 PEM, to $workdir/key.pem.
new_key() {
    local keygen=""
    for candidate in "${WAITING_ROOM:-}" "$(command -v waiting-room || true)" \
        target/release/waiting-room target/debug/waiting-room; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then keygen=$candidate; break; fi
    done
    if [ -n "$keygen" ]; then
        "$keygen" keygen --algorithm RS256 --out "$workdir/key.pem" >&2
    else
        echo "waiting-room not built: generating the key with openssl" >&2
        (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out "$workdir/key.pem" 2>/dev/null)
    fi
}

case "${1:-}" in
    create)
        name=${2:-waiting-room/signing-key}
        new_key
        aws secretsmanager create-secret --name "$name" \
            --description "Waiting room token signing key (PKCS#8 PEM)" \
            --secret-string "file://$workdir/key.pem" --query ARN --output text
        ;;
    rotate)
        arn=${2:-}
        [ -n "$arn" ] || usage
        new_key
        aws secretsmanager get-secret-value --secret-id "$arn" \
            --query SecretString --output text >"$workdir/old"
        # The old value is a PEM or {"current", "previous"}: its current key becomes previous.
        python3 - "$workdir/key.pem" "$workdir/old" >"$workdir/new.json" <<'PY'
import json
import sys

new = open(sys.argv[1]).read()
old = open(sys.argv[2]).read().strip()
try:
    old_current = json.loads(old)["current"]
except (ValueError, KeyError, TypeError):
    old_current = old + "\n"
print(json.dumps({"current": new, "previous": [old_current]}))
PY
        aws secretsmanager put-secret-value --secret-id "$arn" \
            --secret-string "file://$workdir/new.json" --query ARN --output text
        ;;
    *)
        usage
        ;;
esac
