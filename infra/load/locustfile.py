"""Load scenarios for the waiting room, against a local server on 127.0.0.1 only.

Each scenario is one user class; infra/load/run.sh runs them one at a time, bounded in time:

  BurstEnqueue     visitors arriving as fast as the generator can send them
  PollingStorm     tens of thousands of visitors, each joined once, polling /status and
                   /serving_num (with If-None-Match) with think time
  TokenBurst       visitors with a position wait for the counter; one jump lets them all in
                   and they claim their tokens at the same moment
  AuthorizerBurst  the main app checking admitted visitors' tokens on every request
  Mix              70% good traffic, 30% bad: malformed JSON, unknown events, forged tokens

An answer counts as an error only when its status is not the one the API promises for that
request (a bad request answered with its 4xx is a success), or on a timeout or a 5xx.

Settings come from the environment (run.sh sets them): WR_EVENT, WR_ADMIN_KEY, WR_RATE (requests
per second per user, 0 = as fast as possible), WR_THINK_MIN/WR_THINK_MAX (seconds, the polling
storm), WR_TOKENS (tokens prepared for the authorizer and mix scenarios), WR_TOKEN_FILE (where
they are kept between runs), WR_POOL (connections the polling storm's visitors share).
"""

import base64
import json
import os
import random
import secrets

import gevent
import gevent.event
from gevent.lock import Semaphore
from geventhttpclient import HTTPClient, URL
from geventhttpclient.client import HTTPClientPool
from locust import between, constant, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

EVENT = os.environ.get("WR_EVENT", "demo")
ADMIN_KEY = os.environ.get("WR_ADMIN_KEY", "change-me")
RATE = float(os.environ.get("WR_RATE", "0"))
THINK_MIN = float(os.environ.get("WR_THINK_MIN", "5"))
THINK_MAX = float(os.environ.get("WR_THINK_MAX", "15"))
TOKENS = int(os.environ.get("WR_TOKENS", "200"))
POOL = int(os.environ.get("WR_POOL", "256"))
TIMEOUT = 5.0


def paced():
    return constant_throughput(RATE) if RATE > 0 else constant(0)


def expect(response, *statuses):
    """Marks the answer a success only with one of the promised statuses."""
    if response.status_code in statuses:
        response.success()
    else:
        response.failure(f"status {response.status_code}, expected {statuses}")


def expect_error(response, status, *codes):
    """A bad request must get its 4xx and the JSON error shape with one of `codes`."""
    if response.status_code != status:
        response.failure(f"status {response.status_code}, expected {status}")
        return
    try:
        code = json.loads(response.text or "{}").get("code")
    except ValueError:
        code = None
    if code in codes:
        response.success()
    else:
        response.failure(f"error code {code!r}, expected one of {codes}")


_setup_clients = {}


def setup_call(host, method, path, body=None, admin=False):
    """A request made to set a scenario up, outside its statistics, on a small pool of
    keep-alive connections of its own."""
    if host not in _setup_clients:
        _setup_clients[host] = HTTPClient.from_url(
            URL(host), concurrency=64, network_timeout=30, connection_timeout=30
        )
    headers = {"content-type": "application/json"}
    if admin:
        headers["authorization"] = f"Bearer {ADMIN_KEY}"
    data = json.dumps(body) if body is not None else None
    response = _setup_clients[host].request(method, path, body=data, headers=headers)
    raw = response.read()
    return response.status_code, json.loads(raw or b"null")


def join(host):
    status, body = setup_call(host, "POST", "/assign_queue_num", {"event_id": EVENT})
    return body["api_request_id"] if status == 202 else None


def wait_for_position(host, request_id):
    for _ in range(600):
        status, body = setup_call(
            host, "GET", f"/queue_num?event_id={EVENT}&request_id={request_id}"
        )
        if status == 200:
            return body["queue_number"]
        gevent.sleep(0.2)
    return None


def admit(host, n):
    setup_call(
        host,
        "POST",
        "/increment_serving_counter",
        {"event_id": EVENT, "increment_by": n},
        admin=True,
    )


class Room(FastHttpUser):
    abstract = True
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    # One keep-alive connection per visitor, as a browser has.
    concurrency = 1

    def enqueue(self):
        with self.client.post(
            "/assign_queue_num",
            json={"event_id": EVENT},
            name="POST /assign_queue_num",
            catch_response=True,
        ) as response:
            expect(response, 202)

    def poll_status(self):
        """What the page polls: the visitor's whole status (uncacheable)."""
        with self.client.get(
            f"/status?event_id={EVENT}&request_id={self.request_id}",
            name="GET /status",
            catch_response=True,
        ) as response:
            expect(response, 200)

    def poll_serving_num(self):
        """The cacheable counter, revalidated with the last ETag (needs `self.etag`)."""
        headers = {"if-none-match": self.etag} if self.etag else {}
        with self.client.get(
            f"/serving_num?event_id={EVENT}",
            headers=headers,
            name="GET /serving_num",
            catch_response=True,
        ) as response:
            expect(response, 200, 304)
            self.etag = response.headers.get("etag") or self.etag


# ---- tokens shared by the authorizer and mix scenarios ---------------------------------------

_tokens = []
_tokens_lock = Semaphore()


def prepare_tokens(host):
    """The first user to ask admits WR_TOKENS visitors and claims their tokens; the others wait.
    With WR_TOKEN_FILE, tokens are kept there for the next run on the same event."""
    token_file = os.environ.get("WR_TOKEN_FILE")
    with _tokens_lock:
        if _tokens:
            return _tokens
        if token_file and os.path.exists(token_file):
            with open(token_file) as f:
                _tokens.extend(line.strip() for line in f if line.strip())
            return _tokens
        ids = [i for i in (join(host) for _ in range(TOKENS)) if i]
        for request_id in ids:
            wait_for_position(host, request_id)
        admit(host, len(ids))
        for request_id in ids:
            status, body = setup_call(
                host,
                "POST",
                "/generate_token",
                {"event_id": EVENT, "request_id": request_id},
            )
            if status == 200:
                _tokens.append(body["access_token"])
        if not _tokens:
            raise RuntimeError("no token could be prepared")
        if token_file:
            with open(token_file, "w") as f:
                f.write("\n".join(_tokens) + "\n")
        return _tokens


def forged(token):
    """A token that must be refused: its claims changed (signature no longer matches), or the
    signature swapped for garbage, or an unsigned header."""
    header, payload, signature = token.split(".")
    kind = random.randrange(3)
    if kind == 0:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["queue_position"] = 1
        claims["exp"] = claims["exp"] + 86_400
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{payload}.{signature}"
    if kind == 1:
        junk = base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode()
        return f"{header}.{payload}.{junk}"
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{none}.{payload}."


# ---- scenarios --------------------------------------------------------------------------------


class BurstEnqueue(Room):
    """Visitors arriving: each user sends enqueue after enqueue as fast as it can (or WR_RATE/s)."""

    wait_time = paced()

    @task
    def join(self):
        self.enqueue()


class PollingStorm(Room):
    """One visitor per user: joins once, then polls with think time, as the page does. The
    visitors share WR_POOL keep-alive connections, as CloudFront and API Gateway pool theirs
    to the origin (and so tens of thousands of visitors fit in one process's file limit)."""

    wait_time = between(THINK_MIN, THINK_MAX)
    client_pool = HTTPClientPool(
        concurrency=POOL, network_timeout=TIMEOUT, connection_timeout=TIMEOUT
    )

    def on_start(self):
        self.request_id = join(self.host)
        self.etag = None

    @task(3)
    def status(self):
        if not self.request_id:
            return
        self.poll_status()

    @task(1)
    def serving_num(self):
        self.poll_serving_num()


_burst = {"ready": 0}
_jump = gevent.event.Event()
_burst_lock = Semaphore()


class TokenBurst(Room):
    """Everyone gets a position and waits; when all are placed, one counter jump lets them all
    in and every visitor claims its token at once. Each user claims exactly once."""

    wait_time = constant(3600)

    def on_start(self):
        self.request_id = join(self.host)
        if self.request_id:
            wait_for_position(self.host, self.request_id)
        with _burst_lock:
            _burst["ready"] += 1
            everyone = self.environment.runner.target_user_count
            last = _burst["ready"] >= everyone
        if last:
            admit(self.host, everyone)
            _jump.set()

    @task
    def claim(self):
        _jump.wait(timeout=120)
        if not self.request_id:
            return
        with self.client.post(
            "/generate_token",
            json={"event_id": EVENT, "request_id": self.request_id},
            name="POST /generate_token",
            catch_response=True,
        ) as response:
            expect(response, 200)


class AuthorizerBurst(Room):
    """The main app asking the room about each request of its admitted visitors."""

    wait_time = paced()

    def on_start(self):
        self.tokens = prepare_tokens(self.host)

    @task
    def authorize(self):
        token = random.choice(self.tokens)
        with self.client.get(
            f"/authorize?event_id={EVENT}",
            headers={"authorization": f"Bearer {token}"},
            name="GET /authorize",
            catch_response=True,
        ) as response:
            expect(response, 200)


class Mix(Room):
    """70% of requests good (join, status, counter, authorize), 30% bad."""

    wait_time = paced()

    def on_start(self):
        self.tokens = prepare_tokens(self.host)
        self.request_id = join(self.host) or secrets.token_hex(32)
        self.etag = None

    # -- good: 70 ----------------------------------------------------------------------------

    @task(15)
    def join(self):
        self.enqueue()

    @task(25)
    def status(self):
        self.poll_status()

    @task(20)
    def serving_num(self):
        self.poll_serving_num()

    @task(10)
    def authorize(self):
        with self.client.get(
            f"/authorize?event_id={EVENT}",
            headers={"authorization": f"Bearer {random.choice(self.tokens)}"},
            name="GET /authorize",
            catch_response=True,
        ) as response:
            expect(response, 200)

    # -- bad: 30 -----------------------------------------------------------------------------

    @task(10)
    def malformed_json(self):
        with self.client.post(
            "/assign_queue_num",
            data='{"event_id": "' + EVENT + '",',
            headers={"content-type": "application/json"},
            name="[bad] POST /assign_queue_num malformed JSON",
            catch_response=True,
        ) as response:
            expect_error(response, 400, "malformed_json")

    @task(10)
    def unknown_event(self):
        if random.random() < 0.5:
            with self.client.post(
                "/assign_queue_num",
                json={"event_id": f"no-such-{random.randrange(10**6)}"},
                name="[bad] POST /assign_queue_num unknown event",
                catch_response=True,
            ) as response:
                expect_error(response, 404, "unknown_event")
        else:
            with self.client.get(
                f"/status?event_id=no-such-event&request_id={secrets.token_hex(32)}",
                name="[bad] GET /status unknown event",
                catch_response=True,
            ) as response:
                expect_error(response, 404, "unknown_event")

    @task(10)
    def forged_token(self):
        with self.client.get(
            f"/authorize?event_id={EVENT}",
            headers={"authorization": f"Bearer {forged(random.choice(self.tokens))}"},
            name="[bad] GET /authorize forged token",
            catch_response=True,
        ) as response:
            expect_error(
                response,
                401,
                "token_bad_signature",
                "token_malformed",
                "token_unknown_key",
            )
