#!/usr/bin/env bash
# Runs the README's curl walk-throughs, verbatim, against fresh local servers, and checks that
# they admitted the visitor: the token it got must be accepted by /authorize, and the gate must
# let it (and nobody else) reach the application behind it.
#
#   infra/walkthrough.sh                 # on the in-memory store
#   infra/walkthrough.sh dynamodb URL    # on DynamoDB and SQS at URL (moto: infra/moto.sh start)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WR_BIN:-target/debug/waiting-room}
port=${WR_WALKTHROUGH_PORT:-18181}
# The gated walk-through: the room on this port, the gate on +1, the application on +2.
gate_port=${WR_GATE_WALKTHROUGH_PORT:-18184}
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
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true

# The gate, in front of a folder served by Python, exactly as the README's second block.
site=$(mktemp -d)
mkdir -p "$site/shop" && echo 'the shop' >"$site/shop/item"
python3 -m http.server "$((gate_port + 2))" --bind 127.0.0.1 -d "$site" >/dev/null 2>"$site.log" &
app=$!
"$bin" serve --listen "127.0.0.1:$gate_port" --admin-key change-me "${store_args[@]}" \
  --gate-listen "127.0.0.1:$((gate_port + 1))" --upstream "http://127.0.0.1:$((gate_port + 2))" \
  >"$log" 2>&1 &
server=$!
trap 'kill $server $app 2>/dev/null || true; rm -rf "$log" "$site" "$site.log"' EXIT
for url in "http://127.0.0.1:$gate_port/serving_num?event_id=demo" "http://127.0.0.1:$((gate_port + 2))/"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done
: >"$site.log" # the readiness probe above is not a visitor
script=$(sed -n '/<!-- gate-walkthrough -->/,/<!-- \/gate-walkthrough -->/p' README.md | sed '1,2d;$d' | sed '$d')
output=$(BASE="http://127.0.0.1:$gate_port" GATE="http://127.0.0.1:$((gate_port + 1))" \
  bash -euo pipefail -c "$script")
echo "$output"
grep -q "^page without a pass: 303 http://127.0.0.1:$gate_port/waiting-room.html?event_id=demo&return=%2Fshop%2Fitem%3Fx%3D1$" <<<"$output"
grep -q '^api without a pass: 503$' <<<"$output"
grep -q "^hand-over: 303 http://127.0.0.1:$((gate_port + 1))/shop/item?x=1$" <<<"$output"
grep -q '^the shop$' <<<"$output"
grep -q '^with the pass: 200$' <<<"$output"
grep -q '^after the session ended: 503$' <<<"$output"
# The application heard one request: the visitor's, with the pass, and no token in it.
requests=$(grep -c '"GET ' "$site.log" || true)
[[ $requests == 1 ]] || { echo "the application received $requests requests:"; cat "$site.log"; exit 1; }
grep -q '"GET /shop/item?x=1 HTTP/1.1" 200' "$site.log"
echo "walkthrough ($store): 3 passed, 0 failed"
