#!/usr/bin/env bash
# Builds every Lambda of the waiting room for arm64 (Graviton) as ready-to-upload zips:
# target/lambda/<binary>/bootstrap.zip. Only the packages under functions/ other than local/
# (the local server, which is no Lambda) are built. Installs cargo-lambda (with zig, from
# PyPI) and the aarch64 Rust target when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
    || rustup target add aarch64-unknown-linux-gnu

packages=()
binaries=()
for manifest in functions/*/Cargo.toml; do
    name=$(basename "$(dirname "$manifest")")
    [ "$name" = local ] && continue
    packages+=(--package "$name")
    binaries+=("$name")
done
if [ ${#packages[@]} -eq 0 ]; then
    echo "no Lambda packages under functions/" >&2
    exit 1
fi

cargo lambda build --release --arm64 --output-format zip "${packages[@]}"

echo
for binary in "${binaries[@]}"; do
    zip=target/lambda/$binary/bootstrap.zip
    printf '%-18s %8s KiB  %s\n' "$binary" "$(( $(stat -c %s "$zip") / 1024 ))" "$zip"
done
