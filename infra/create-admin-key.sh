#!/usr/bin/env bash
# Makes a control panel admin key and prints it with its SHA-256 digest.
#
#   infra/create-admin-key.sh
#
# Keep the key (a password manager); deploy only the digest, as the stack's AdminKeySha256
# parameter (sam deploy --parameter-overrides AdminKeySha256=<digest>). The stack never holds
# the key itself, so nothing in AWS can reveal it; to change it, make a new one and update the
# parameter.
set -euo pipefail
key=$(openssl rand -hex 24)
digest=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
echo "admin key (sign in with it):            $key"
echo "AdminKeySha256 (deploy this):           $digest"
