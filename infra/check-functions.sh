#!/usr/bin/env bash
# Checks that template.yaml and functions/ agree: every function in the template is built by
# cargo-lambda from a package functions/<binary>/ that has that binary, its logical id is the
# binary's name in CamelCase plus "Function", and every package in functions/ (but local/, the
# local server, which is no Lambda) has its binaries in the template. Non-zero on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import cfnlint' 2>/dev/null || python3 -m pip install --quiet cfn-lint

python3 - <<'PY'
import pathlib
import sys
import tomllib

from cfnlint.decode import cfn_yaml

NOT_LAMBDAS = {"local"}
problems = []


def camel(binary):
    return "".join(part.capitalize() for part in binary.replace("_", "-").split("-"))


def binaries_of(package_dir):
    """The binaries a package builds: its [[bin]] targets, else the package name."""
    manifest = tomllib.loads((package_dir / "Cargo.toml").read_text())
    bins = [b["name"] for b in manifest.get("bin", []) if "name" in b]
    if not bins and (package_dir / "src" / "main.rs").exists():
        bins = [manifest["package"]["name"]]
    return bins


template = cfn_yaml.load("template.yaml")
in_template = {}
for logical_id, resource in template["Resources"].items():
    if resource.get("Type") != "AWS::Serverless::Function":
        continue
    metadata = resource.get("Metadata", {})
    binary = metadata.get("BuildProperties", {}).get("Binary")
    if metadata.get("BuildMethod") != "rust-cargolambda" or not binary:
        problems.append(f"{logical_id}: needs Metadata BuildMethod rust-cargolambda and BuildProperties Binary")
        continue
    in_template[binary] = logical_id
    if logical_id != camel(binary) + "Function":
        problems.append(f"{logical_id}: builds {binary}, so it should be named {camel(binary)}Function")
    package_dir = pathlib.Path("functions") / binary
    if not (package_dir / "Cargo.toml").exists():
        problems.append(f"{logical_id}: no package functions/{binary}/Cargo.toml")
    elif binary not in binaries_of(package_dir):
        problems.append(f"{logical_id}: functions/{binary} has no binary named {binary}")

for manifest in sorted(pathlib.Path("functions").glob("*/Cargo.toml")):
    package_dir = manifest.parent
    if package_dir.name in NOT_LAMBDAS:
        continue
    for binary in binaries_of(package_dir):
        if binary not in in_template:
            problems.append(f"functions/{package_dir.name}: binary {binary} is not in template.yaml")

for binary, logical_id in sorted(in_template.items()):
    print(f"  {logical_id:<24} functions/{binary}")
for problem in problems:
    print(f"MISMATCH: {problem}")
print(f"functions: {len(in_template)} in template, {len(problems)} mismatches")
sys.exit(1 if problems else 0)
PY
