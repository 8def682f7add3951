#!/usr/bin/env bash
# Browser test of the visitor page and the control panel (Debian Chromium + playwright-core).
# Builds nothing: build the binary first, e.g.
#   cargo build -p waiting-room && tests/browser/run.sh
# Env: WR_BIN (binary), WR_SCREENSHOTS (folder), see run.mjs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Chromium from Debian: playwright's own browser download needs the internet.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  $sudo apt-get install -y chromium
fi

# A Japanese font, so the Japanese screenshots can be read (the page uses the system's fonts).
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get install -y -qq fonts-ipafont-gothic >/dev/null || $sudo sh -c 'apt-get update -qq && apt-get install -y -qq fonts-ipafont-gothic >/dev/null'
fi

# playwright-core and axe-core at the versions pinned in package-lock.json (no browser download).
if [ ! -f "$here/node_modules/playwright-core/package.json" ] || [ ! -f "$here/node_modules/axe-core/axe.min.js" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

exec node "$here/run.mjs"
