#!/usr/bin/env bash
# Runs the README's curl walk-throughs, verbatim, against fresh local servers, and checks that
# they admitted the visitor: the token it got must be accepted by /authorize, and the gate must
# let it (and nobody else) reach the application behind it.
#
#   infra/walkthrough.sh                 # on the in-memory store
#   infra/walkthrough.sh dynamodb URL    # on DynamoDB and SQS at URL (moto: infra/moto.sh start)
#   infra/walkthrough.sh tls             # over HTTPS with HTTP/2 (a self-signed pair made here)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WR_BIN:-target/debug/waiting-room}
port=${WR_WALKTHROUGH_PORT:-18181}
# The gated walk-through: the room on this port, the gate on +1, the application on +2.
gate_port=${WR_GATE_WALKTHROUGH_PORT:-18184}
store=${1:-memory}
store_args=()
scheme=http
work=$(mktemp -d)
if [[ $store == tls ]]; then
  # A self-signed pair for 127.0.0.1, trusted by curl (its config file) and Python (SSL_CERT_FILE)
  # only for this run. curl asks for HTTP/2 on every request of the walk-through.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  printf 'cacert = "%s"\nhttp2\n' "$work/cert.pem" >"$work/.curlrc"
  export CURL_HOME=$work SSL_CERT_FILE=$work/cert.pem
  store_args=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --header-timeout 2s)
  scheme=https
elif [[ $store == dynamodb ]]; then
  endpoint=${2:?usage: walkthrough.sh dynamodb ENDPOINT_URL}
  name="walkthrough-$RANDOM$RANDOM"
  export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  store_args=(--store dynamodb --table "$name" --queue-url "$endpoint/123456789012/$name" --create-resources)
fi
log=$work/server.log
"$bin" serve --listen "127.0.0.1:$port" --admin-key change-me "${store_args[@]}" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "$scheme://127.0.0.1:$port/serving_num?event_id=demo" && break
  sleep 0.1
done
script=$(sed -n '/<!-- walkthrough -->/,/<!-- \/walkthrough -->/p' README.md | sed '1,2d;$d' | sed '$d')
output=$(BASE="$scheme://127.0.0.1:$port" bash -euo pipefail -c "$script")
echo "$output"
grep -q '^generate_token before: 202$' <<<"$output"
grep -q '"serving_num":1' <<<"$output"
grep -q '^authorize: 200$' <<<"$output"

# A second, independent JWT library accepts the token given only the published JWKS.
python3 -c 'import jwt' 2>/dev/null || pip install -q --root-user-action=ignore 'pyjwt[crypto]'
token=$(sed -n 's/^access token: //p' <<<"$output")
python3 - "$scheme" "$port" "$token" <<'PY'
import sys, jwt
scheme, port, token = sys.argv[1], sys.argv[2], sys.argv[3]
key = jwt.PyJWKClient(f"{scheme}://127.0.0.1:{port}/.well-known/jwks.json").get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="demo")
assert claims["token_use"] == "access" and claims["queue_position"] == 1, claims
print("PyJWT verified the token with the published JWKS")
PY
# Over TLS: HTTP/2, HSTS, the header timeout and certificate renewal (the gate below too).
if [[ $store == tls ]]; then
  # The same requests negotiate HTTP/2 by ALPN, and browsers are told to stay on HTTPS.
  headers=$(curl -s -D - -o /dev/null -w 'version %{http_version}\n' "$scheme://127.0.0.1:$port/serving_num?event_id=demo")
  grep -q '^version 2$' <<<"$headers"
  grep -qi '^strict-transport-security: max-age=31536000' <<<"$headers"
  echo "HTTP/2 over TLS negotiated, HSTS sent"

  # An HTTP/2 connection that never sends a request is closed at the header timeout (2 s here).
  python3 - "$port" "$work/cert.pem" <<'PY'
import socket, ssl, sys, time
port, cafile = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=cafile)
context.set_alpn_protocols(["h2"])
conn = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
assert conn.selected_alpn_protocol() == "h2", conn.selected_alpn_protocol()
conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
conn.settimeout(10)
start = time.monotonic()
try:
    while conn.recv(4096):
        pass
except (ConnectionResetError, ssl.SSLError):
    pass
waited = time.monotonic() - start
assert 1.5 <= waited <= 5, f"a silent HTTP/2 connection was closed after {waited:.1f} s"
print(f"a silent HTTP/2 connection closed after {waited:.1f} s")
PY

  # A renewed pair is served without a restart. curl now trusts only the new certificate, so
  # it connects once the server has loaded it: first from a change of the files...
  renew() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$work/new-key.pem" -out "$work/new-cert.pem" 2>/dev/null
    if [[ ${1:-} == same-times ]]; then
      touch -r "$work/key.pem" "$work/new-key.pem"
      touch -r "$work/cert.pem" "$work/new-cert.pem"
    fi
    mv "$work/new-key.pem" "$work/key.pem"
    mv "$work/new-cert.pem" "$work/cert.pem"
  }
  serves_new_pair() {
    for _ in $(seq 1 "$1"); do
      curl -s -o /dev/null "$scheme://127.0.0.1:$port/serving_num?event_id=demo" && return 0
      sleep 0.2
    done
    return 1
  }
  renew
  serves_new_pair 50 || { echo "the renewed files were not loaded within 10 s" >&2; exit 1; }
  # ...then on SIGHUP, for files renewed with their old times (which a poll would not notice).
  renew same-times
  kill -HUP "$server"
  serves_new_pair 10 || { echo "SIGHUP did not reload the pair within 2 s" >&2; exit 1; }
  echo "renewed certificates served after a file change and after SIGHUP"
fi
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
trap 'kill $server $app 2>/dev/null || true; rm -rf "$work" "$site" "$site.log"' EXIT
for url in "$scheme://127.0.0.1:$gate_port/serving_num?event_id=demo" "http://127.0.0.1:$((gate_port + 2))/"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done
: >"$site.log" # the readiness probe above is not a visitor
script=$(sed -n '/<!-- gate-walkthrough -->/,/<!-- \/gate-walkthrough -->/p' README.md | sed '1,2d;$d' | sed '$d')
output=$(BASE="$scheme://127.0.0.1:$gate_port" GATE="$scheme://127.0.0.1:$((gate_port + 1))" \
  bash -euo pipefail -c "$script")
echo "$output"
grep -q "^page without a pass: 303 $scheme://127.0.0.1:$gate_port/waiting-room.html?event_id=demo&return=%2Fshop%2Fitem%3Fx%3D1$" <<<"$output"
grep -q '^api without a pass: 503$' <<<"$output"
grep -q "^hand-over: 303 $scheme://127.0.0.1:$((gate_port + 1))/shop/item?x=1$" <<<"$output"
grep -q '^the shop$' <<<"$output"
grep -q '^with the pass: 200$' <<<"$output"
grep -q '^after the session ended: 503$' <<<"$output"
# The application heard one request: the visitor's, with the pass, and no token in it.
requests=$(grep -c '"GET ' "$site.log" || true)
[[ $requests == 1 ]] || { echo "the application received $requests requests:"; cat "$site.log"; exit 1; }
grep -q '"GET /shop/item?x=1 HTTP/1.1" 200' "$site.log"
if [[ $store == tls ]]; then
  # Over TLS the gate's pass cookie is Secure: a second visitor, let in, handed over.
  rid=$(curl -s -X POST "$scheme://127.0.0.1:$gate_port/assign_queue_num" -H 'content-type: application/json' \
    -d '{"event_id":"demo"}' | sed 's/.*"api_request_id":"\([^"]*\)".*/\1/')
  sleep 1
  curl -s -o /dev/null -X POST "$scheme://127.0.0.1:$gate_port/increment_serving_counter" \
    -H 'authorization: Bearer change-me' -H 'content-type: application/json' \
    -d '{"event_id":"demo","increment_by":1}'
  token=$(curl -s -X POST "$scheme://127.0.0.1:$gate_port/generate_token" -H 'content-type: application/json' \
    -d "{\"event_id\":\"demo\",\"request_id\":\"$rid\"}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  cookie=$(curl -s -D - -o /dev/null "$scheme://127.0.0.1:$((gate_port + 1))/__wr/pass?wr_token=$token&return=%2F" |
    grep -i '^set-cookie: wr_pass=')
  grep -qi '; *secure' <<<"$cookie" || { echo "the gate's pass cookie over TLS is not Secure: $cookie" >&2; exit 1; }
  echo "the gate over TLS sets its pass cookie Secure"
fi
echo "walkthrough ($store): passed"
