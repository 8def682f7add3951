"""A bot taking places in line as fast as it can, against a room on 127.0.0.1 only.

It joins from one address or from many (each join carrying an `X-Forwarded-For` address, which
the room believes only with `--trusted-proxy 127.0.0.1/32`), and either solves the join
challenge (SHA-256 in Python's hashlib, one core: what a script costs its owner) or not. It
runs for a bounded time and prints one JSON line: places gained (distinct request ids
answered 202), the answers by status, its own CPU seconds, and places per CPU-second.

  python3 infra/load/bot.py --base http://127.0.0.1:18330 --event bot --addresses 100 \
      --solve --seconds 10

Standard library only; several connections in threads (the hashing holds the interpreter's
lock, so the bot uses about one core however many threads it has).
"""

import argparse
import hashlib
import http.client
import json
import threading
import time
import urllib.parse


def solve(challenge, bits):
    """The first nonce whose SHA-256 of "<challenge>:<nonce>" starts with `bits` zero bits."""
    prefix = hashlib.sha256((challenge + ":").encode())
    shift = 256 - bits
    nonce = 0
    while True:
        h = prefix.copy()
        h.update(str(nonce).encode())
        if int.from_bytes(h.digest(), "big") >> shift == 0:
            return str(nonce)
        nonce += 1


class Bot:
    def __init__(self, args):
        self.args = args
        url = urllib.parse.urlparse(args.base)
        self.host, self.port = url.hostname, url.port
        # 127.0.0.1 only: this script never sends traffic anywhere else.
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("bot.py only runs against a room on this machine")
        self.lock = threading.Lock()
        self.places = set()
        self.statuses = {}
        self.solved = 0
        self.next_address = 0
        self.stop_at = time.monotonic() + args.seconds

    def address(self):
        with self.lock:
            n = self.next_address % self.args.addresses
            self.next_address += 1
        return f"198.18.{n // 256}.{n % 256}"

    def post(self, conn, body, address):
        headers = {"content-type": "application/json"}
        if self.args.addresses > 1:
            headers["x-forwarded-for"] = address
        conn.request("POST", "/assign_queue_num", json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data or b"null") or {}
        except ValueError:
            parsed = {}
        return response.status, parsed

    def count(self, status):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def run_one(self):
        conn = self.connect()
        while time.monotonic() < self.stop_at:
            try:
                self.join_once(conn)
            except (http.client.HTTPException, OSError):
                # The room closes a connection whose body it did not read (a refused join):
                # open another, as a bot would.
                self.count("reconnect")
                conn.close()
                conn = self.connect()
        conn.close()

    def join_once(self, conn):
        """One join, solving the challenge it is answered with when the bot solves."""
        event = self.args.event
        address = self.address()
        status, body = self.post(conn, {"event_id": event}, address)
        self.count(status)
        if status == 403 and self.args.solve and "challenge" in body:
            offered = body["challenge"]
            nonce = solve(offered["challenge"], offered["difficulty"])
            with self.lock:
                self.solved += 1
            if time.monotonic() >= self.stop_at:
                return
            proof = {"event_id": event, "challenge": offered["challenge"], "solution": nonce}
            status, body = self.post(conn, proof, address)
            self.count(status)
        if status == 202:
            with self.lock:
                self.places.add(body.get("api_request_id"))

    def run(self):
        cpu0, wall0 = time.process_time(), time.monotonic()
        threads = [threading.Thread(target=self.run_one) for _ in range(self.args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        places = len(self.places)
        return {
            "addresses": self.args.addresses,
            "solve": self.args.solve,
            "seconds": round(wall, 2),
            "places": places,
            "places_per_s": round(places / wall, 1),
            "bot_cpu_s": round(cpu, 2),
            "places_per_cpu_s": round(places / cpu, 1) if cpu > 0 else None,
            "challenges_solved": self.solved,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("--addresses", type=int, default=1)
    parser.add_argument("--solve", action="store_true")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    print(json.dumps(Bot(parser.parse_args()).run()))


if __name__ == "__main__":
    main()
