#!/usr/bin/env bash
# Starts or stops moto, the AWS wire-protocol emulator the DynamoDB and SQS contract tests run
# against. Local only: it listens on 127.0.0.1.
#
#   infra/moto.sh start    # installs moto[server] if missing, starts it, waits until it answers
#   infra/moto.sh stop
#   WR_TEST_AWS_ENDPOINT=http://127.0.0.1:4566 cargo test -p waiting-room-tests
#
# MOTO_PORT (default 4566) picks the port; the pid is kept in ${MOTO_PID_FILE}.
#
# By default moto serves one request at a time. `moto_server` itself is threaded, and moto
# checks a condition and writes the item in separate Python steps without a lock, so two
# concurrent conditional writes to one item can both succeed (seen: two winners of one token
# claim). DynamoDB makes every single-item write and every transaction atomic; serving requests
# one by one restores that, while the tests still send them concurrently. MOTO_THREADED=1 runs
# the stock threaded `moto_server` instead.
set -euo pipefail

PORT="${MOTO_PORT:-4566}"
HOST=127.0.0.1
PID_FILE="${MOTO_PID_FILE:-${TMPDIR:-/tmp}/waiting-room-moto-${PORT}.pid}"
LOG_FILE="${MOTO_LOG_FILE:-${TMPDIR:-/tmp}/waiting-room-moto-${PORT}.log}"
URL="http://${HOST}:${PORT}"

running() {
    [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

answers() {
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "${URL}/moto-api/" 2>/dev/null)" == 200 ]]
}

# The Python that has moto installed (pip installs it for python3 below).
moto_python() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import moto.server' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    echo "no Python with moto installed found" >&2
    return 1
}

start() {
    if running && answers; then
        echo "moto already running at ${URL} (pid $(cat "$PID_FILE"))"
        return 0
    fi
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "installing moto[server]..."
        python3 -m pip install --quiet 'moto[server]'
        command -v pyenv >/dev/null 2>&1 && pyenv rehash
        hash -r
    fi
    local python
    python="$(moto_python)"
    if answers; then
        echo "something else already answers at ${URL}; not starting another moto" >&2
        return 1
    fi
    if [[ "${MOTO_THREADED:-0}" == 1 ]]; then
        nohup moto_server -H "$HOST" -p "$PORT" >"$LOG_FILE" 2>&1 &
    else
        # moto_server's own entry point, with werkzeug's threading turned off.
        MOTO_PORT="$PORT" nohup "$python" -c '
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False)
' "$HOST" "$PORT" >"$LOG_FILE" 2>&1 &
    fi
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        if answers; then
            echo "moto running at ${URL} (pid $(cat "$PID_FILE"), log ${LOG_FILE})"
            return 0
        fi
        if ! running; then
            echo "moto exited; see ${LOG_FILE}" >&2
            tail -n 20 "$LOG_FILE" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    echo "moto did not answer at ${URL} within 20 s; see ${LOG_FILE}" >&2
    return 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "$PID_FILE")"
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"
        fi
        echo "moto stopped (pid $pid)"
    else
        echo "moto not running"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
