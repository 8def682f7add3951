"""Start-to-ready time and memory of each Lambda function's release binary, run as Lambda runs it:
the binary starts, builds its room from the environment (DynamoDB, SQS and Secrets Manager on
moto), creates the default event if missing, and asks the Runtime API for its first invocation.
That request is "ready". The Runtime API here is a stand-in that records the moment and answers
nothing; the process is then stopped.

    python3 infra/lambda_startup.py ENDPOINT BIN_DIR [RUNS]

Prints one Markdown row per function: median and worst start-to-ready over RUNS starts, resident
memory when ready, the host binary's size, and the arm64 zip's size when `cargo lambda build
--output-format zip` has made it (target/lambda/<function>/bootstrap.zip).
"""

import http.server
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time

import boto3

FUNCTIONS = [
    "assign-position",
    "public-reads",
    "token-issue",
    "authorizer",
    "admin-api",
    "queue-consumer",
    "strategy-runner",
]


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Records when the function first asks for an invocation, and keeps it waiting."""

    ready = threading.Event()

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            RuntimeApi.ready.set()
            time.sleep(2)  # the function is stopped meanwhile
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def resources(endpoint):
    """The table, queue and secrets the functions read at start, on moto."""
    session = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    suffix = str(os.getpid())
    table = f"startup-{suffix}"
    boto3.client("dynamodb", **session).create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    queue = boto3.client("sqs", **session).create_queue(QueueName=table)["QueueUrl"]
    secrets = boto3.client("secretsmanager", **session)
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    signing = secrets.create_secret(Name=f"signing-{suffix}", SecretString=pem)["ARN"]
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "WR_TABLE": table,
        "WR_QUEUE_URL": queue,
        "WR_SIGNING_KEY_SECRET": signing,
        # The SHA-256 digest of the admin key "startup-admin-key".
        "WR_ADMIN_KEY_SHA256": hashlib.sha256(b"startup-admin-key").hexdigest(),
        "WR_ISSUER": "https://room.example",
        "WR_EVENT_ID": "demo",
        "WR_DEFAULT_EVENT_ID": "demo",
        "WR_DEFAULT_EVENT_STRATEGY": "MaxSize",
        "WR_DEFAULT_EVENT_MAX_ACTIVE": "100",
        "RUST_LOG": "warn",
    }


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, env, port):
    """One cold start: seconds until the first `next` request, and the RSS then (KiB)."""
    RuntimeApi.ready.clear()
    env = dict(
        env,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
        AWS_LAMBDA_FUNCTION_NAME=os.path.basename(binary),
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_STREAM_NAME="startup",
        AWS_LAMBDA_LOG_GROUP_NAME="startup",
    )
    t0 = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not RuntimeApi.ready.wait(timeout=30):
            raise RuntimeError(f"{binary} was not ready in 30 s: {process.stderr.read1().decode()}")
        elapsed = time.perf_counter() - t0
        return elapsed, rss_kib(process.pid)
    finally:
        process.kill()
        process.wait()


def main():
    endpoint, bin_dir = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    env = resources(endpoint)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    print(
        "| function | start-to-ready median ms | worst ms | RSS when ready MiB "
        "| host binary MiB | arm64 zip KiB |"
    )
    print("|---|---|---|---|---|---|")
    for function in FUNCTIONS:
        binary = os.path.join(bin_dir, function)
        times, rss = [], []
        for _ in range(runs):
            elapsed, kib = start(binary, env, port)
            times.append(elapsed * 1000)
            rss.append(kib)
        zip_path = os.path.join("target", "lambda", function, "bootstrap.zip")
        zip_kib = f"{os.path.getsize(zip_path) / 1024:,.0f}" if os.path.exists(zip_path) else ""
        print(
            f"| {function} | {statistics.median(times):.1f} | {max(times):.1f} "
            f"| {statistics.median(rss) / 1024:.1f} | {os.path.getsize(binary) / 2**20:.1f} "
            f"| {zip_kib} |"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
