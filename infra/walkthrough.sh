#!/usr/bin/env bash
# Runs the README's curl walk-through, verbatim, against a fresh local server, and checks that
# it admitted the visitor: the token it got must be accepted by /authorize.
#
#   infra/walkthrough.sh                 # on the in-memory store
#   infra/walkthrough.sh dynamodb URL    # on DynamoDB and SQS at URL (moto: infra/moto.sh start)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WR_BIN:-target/debug/waiting-room}
port=${WR_WALKTHROUGH_PORT:-18181}
store=${1:-memory}
store_args=()
if [[ $store == dynamodb ]]; then
  endpoint=${2:?usage: walkthrough.sh dynamodb ENDPOINT_URL}
  name="walkthrough-$RANDOM$RANDOM"
  export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  store_args=(--store dynamodb --table "$name" --queue-url "$endpoint/123456789012/$name" --create-resources)
fi
log=$(mktemp)
"$bin" serve --listen "127.0.0.1:$port" --admin-key change-me "${store_args[@]}" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/serving_num?event_id=demo" && break
  sleep 0.1
done
script=$(sed -n '/<!-- walkthrough -->/,/<!-- \/walkthrough -->/p' README.md | sed '1,2d;$d' | sed '$d')
output=$(BASE="http://127.0.0.1:$port" bash -euo pipefail -c "$script")
echo "$output"
grep -q '^generate_token before: 202$' <<<"$output"
grep -q '"serving_num":1' <<<"$output"
grep -q '^authorize: 200$' <<<"$output"

# A second, independent JWT library accepts the token given only the published JWKS.
python3 -c 'import jwt' 2>/dev/null || pip install -q --root-user-action=ignore 'pyjwt[crypto]'
token=$(sed -n 's/^access token: //p' <<<"$output")
python3 - "$port" "$token" <<'PY'
import sys, jwt
port, token = sys.argv[1], sys.argv[2]
key = jwt.PyJWKClient(f"http://127.0.0.1:{port}/.well-known/jwks.json").get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="demo")
assert claims["token_use"] == "access" and claims["queue_position"] == 1, claims
print("PyJWT verified the token with the published JWKS")
PY
echo "walkthrough ($store): 2 passed, 0 failed"
