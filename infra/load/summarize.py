"""Prints the table of a load run from the runs file that run.sh writes (one JSON object a
line: scenario, tool, users, seconds, load average, server CPU, and where the figures are).

Errors are unexpected answers only: a status the API does not promise for that request, a 5xx
or a timeout; bad requests answered with their correct 4xx count as successes.
Targets: p95 < 500 ms, p99 < 1 s, errors < 0.1 %.
"""

import csv
import json
import re
import sys

P95_MS, P99_MS, MAX_ERRORS = 500.0, 1000.0, 0.001


def locust_row(prefix):
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    total = next(r for r in rows if r["Name"] == "Aggregated")

    def number(key):
        try:
            return float(total[key])
        except ValueError:  # "N/A": no request finished
            return float("nan")

    return {
        "requests": int(total["Request Count"]),
        "errors": int(total["Failure Count"]),
        "rps": number("Requests/s"),
        "p50": number("50%"),
        "p95": number("95%"),
        "p99": number("99%"),
    }


def wrk_row(path):
    with open(path) as f:
        line = next(line for line in f if line.startswith("{"))
    w = json.loads(line)
    return {
        "requests": w["requests"],
        "errors": w["unexpected"] + w["socket_errors"],
        "rps": w["rps"],
        "p50": w["p50_ms"],
        "p95": w["p95_ms"],
        "p99": w["p99_ms"],
    }


def verdict(row):
    """Latency and error targets (the rate reached is reported beside them)."""
    rate = row["errors"] / row["requests"] if row["requests"] else 1.0
    ok = row["requests"] > 0 and row["p95"] < P95_MS and row["p99"] < P99_MS and rate < MAX_ERRORS
    return ok, rate


def main(runs_path):
    with open(runs_path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    header = (
        "| scenario | tool | users | target req/s | requests | req/s | p50 ms | p95 ms | p99 ms "
        "| errors | error % | p95/p99/errors targets met | reached % of target | server CPU % "
        "| generator CPU % | load avg (1 min) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    # Per ladder (runs of one scenario at rising sizes, in that order): the largest step that
    # meets every target.
    sustained = {}
    for run in runs:
        row = wrk_row(run["figures"]) if run["tool"] == "wrk" else locust_row(run["figures"])
        target = run.get("target_rps")
        ok, rate = verdict(row)
        reached = f"{row['rps'] / target * 100:.0f}" if target else ""
        if run.get("step"):
            family = re.sub(r"-\d+(rps)?$", "", run["scenario"])
            sustained.setdefault(family, None)
            if ok:
                sustained[family] = (row["rps"], run["scenario"])
        generator = run.get("generator_cpu_pct")
        print(
            f"| {run['scenario']} | {run['tool']} | {run.get('users', '')} | {target or ''} "
            f"| {row['requests']:,} | {row['rps']:,.0f} | {row['p50']:.1f} | {row['p95']:.1f} "
            f"| {row['p99']:.1f} | {row['errors']:,} | {rate * 100:.3f} | {'yes' if ok else 'NO'} "
            f"| {reached} | {run.get('server_cpu_pct', 0):.0f} "
            f"| {'' if generator is None else f'{generator:.0f}'} | {run.get('load', '')} |"
        )
    print()
    print("Largest step meeting p95 < 500 ms, p99 < 1 s and errors < 0.1 %, per ladder (where the")
    print("rate reached falls short of the target while latency holds, the generator is the limit):")
    for family, best in sustained.items():
        if best is None:
            print(f"- {family}: no step met every target")
        else:
            print(f"- {family}: {best[0]:,.0f} req/s ({best[1]})")


if __name__ == "__main__":
    main(sys.argv[1])
