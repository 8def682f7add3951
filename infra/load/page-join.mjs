// How long the real visitor page takes to join with the join challenge on: headless Chromium
// opens the page N times, each in a fresh context (no saved place), and times from the start
// of the navigation to the page showing its place. Prints one JSON line.
//
//   node infra/load/page-join.mjs http://127.0.0.1:18330 EVENT [N]
//
// playwright-core comes from tests/browser (npm ci there); Chromium from /usr/bin/chromium.

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/browser/package.json"));
const { chromium } = require("playwright-core");

const [base, eventId, runs = "10"] = process.argv.slice(2);
if (!base || !eventId || !/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(base)) {
  console.error("usage: node infra/load/page-join.mjs http://127.0.0.1:PORT EVENT [N]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.WR_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const times = [];
try {
  for (let i = 0; i < Number(runs); i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const started = performance.now();
    await page.goto(`${base}/waiting-room.html?event_id=${encodeURIComponent(eventId)}`);
    await page.waitForFunction(() => {
      const shown = document.getElementById("position");
      return document.body.getAttribute("data-state") === "waiting" && shown && /\d/.test(shown.textContent);
    }, null, { timeout: 60_000 });
    times.push(performance.now() - started);
    await context.close();
  }
} finally {
  await browser.close();
}
times.sort((a, b) => a - b);
const at = (q) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]);
console.log(JSON.stringify({ runs: times.length, p50_ms: at(0.5), p90_ms: at(0.9), max_ms: Math.round(times[times.length - 1]), all_ms: times.map(Math.round) }));
