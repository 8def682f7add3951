// The polling crowd behind a CDN. infra/load/cdn.sh starts the room (the origin) and nginx
// configured as the template's CloudFront distribution (infra/edge.py), then runs this script:
//
//   1. real visitor pages: WR_CDN_PAGES headless Chromium pages join one event through the edge
//      and wait; once all are placed, WR_CDN_SECS seconds are measured;
//   2. a simulated crowd: WR_CDN_CROWD visitors join another event through the edge and poll at
//      the visitor page's own pace, with the page's own code (shared/web/assets/queue.js) and
//      the browser's cache behaviour (reuse for max-age, then revalidate with If-None-Match);
//      once all are placed, WR_CDN_SECS seconds are measured.
//
// Each event has a line of WR_CDN_AHEAD visitors in front and lets one in every 2 s, so the
// shared document changes while everyone waits. Origin requests are read from the log of the
// origin's door (every request the edge sends on), edge requests from the edge's log. Prints a
// table and writes report.json into WR_CDN_OUT. Traffic goes to 127.0.0.1 only; every phase is
// bounded in time.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const require = createRequire(path.join(root, "tests/browser/package.json"));
const { chromium } = require("playwright-core");
const Q = require(path.join(root, "shared/web/assets/queue.js"));

const EDGE = process.env.WR_CDN_EDGE;
const ORIGIN = process.env.WR_CDN_ORIGIN;
const ADMIN_KEY = process.env.WR_CDN_ADMIN_KEY;
const OUT = process.env.WR_CDN_OUT;
const PAGES = Number(process.env.WR_CDN_PAGES || 30);
const CROWD = Number(process.env.WR_CDN_CROWD || 3000);
const SECS = Number(process.env.WR_CDN_SECS || 60);
const AHEAD = Number(process.env.WR_CDN_AHEAD || 200);
const LABEL = process.env.WR_CDN_LABEL || "";
const PLACE_TIMEOUT_MS = 120_000;
const PER_VISITOR = new Set(["/assign_queue_num", "/queue_num", "/status", "/generate_token", "/queue_pos_expiry"]);
const SHARED = new Set(["/event_state", "/serving_num", "/waiting_num", "/event_info"]);

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function log(line) {
  process.stderr.write(line + "\n");
}

async function admin(method, route, body) {
  const res = await fetch(ORIGIN + route, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return res.json().catch(() => null);
}

// An event that lets one visitor in every 2 s, with AHEAD visitors already in line (joined at
// the origin, outside the measurement), so everyone measured waits the whole window.
async function prepare(eventId) {
  await admin("POST", "/admin/events", {
    event_id: eventId,
    name: `CDN ${eventId}`,
    strategy: { type: "Periodic", increment_by: 1, interval_secs: 2 },
  });
  for (let i = 0; i < AHEAD; i++) {
    const res = await fetch(`${ORIGIN}/assign_queue_num`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event_id: eventId }),
    });
    if (res.status !== 202) throw new Error(`joining ahead: ${res.status}`);
    await res.arrayBuffer();
  }
}

// One nginx log line: `$msec "METHOD URI" status cache_status upstream`.
function readLog(file) {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const rows = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^(\d+\.\d+) "(\S+) (\S+)[^"]*" (\d+) (\S+) (\S+)/);
    if (!m) continue;
    const url = new URL(m[3], "http://edge");
    rows.push({
      at: Number(m[1]) * 1000, method: m[2], path: url.pathname, event: url.searchParams.get("event_id"),
      status: Number(m[4]), cache: m[5],
    });
  }
  return rows;
}

// The figures of one phase: what reached the origin and what the edge answered, in the window.
function figures(name, eventId, visitors, phaseStart, from, to) {
  const mine = (r) => r.event === eventId || (r.event === null && PER_VISITOR.has(r.path));
  const origin = readLog(path.join(OUT, "nginx/origin.log")).filter(mine);
  const edge = readLog(path.join(OUT, "nginx/edge.log")).filter(mine);
  const inWindow = (r) => r.at >= from && r.at < to;
  const secs = (to - from) / 1000;
  const visitorMinutes = (visitors * secs) / 60;
  const originWindow = origin.filter(inWindow);
  const edgeWindow = edge.filter(inWindow);
  const perVisitor = originWindow.filter((r) => PER_VISITOR.has(r.path)).length;
  const shared = originWindow.filter((r) => SHARED.has(r.path)).length;
  const byPath = {};
  for (const r of originWindow) byPath[r.path] = (byPath[r.path] || 0) + 1;
  const edgeByPath = {};
  for (const r of edgeWindow) edgeByPath[r.path] = (edgeByPath[r.path] || 0) + 1;
  const before = origin.filter((r) => r.at >= phaseStart && r.at < from && PER_VISITOR.has(r.path));
  const cached = new Set(["HIT", "UPDATING", "STALE"]);
  return {
    phase: name,
    label: LABEL,
    event: eventId,
    visitors,
    window_secs: Math.round(secs),
    edge_requests: edgeWindow.length,
    origin_requests: originWindow.length,
    origin_by_path: byPath,
    edge_by_path: edgeByPath,
    per_visitor_origin_per_visitor_minute: perVisitor / visitorMinutes,
    shared_origin_per_sec: shared / secs,
    origin_per_sec: originWindow.length / secs,
    hit_ratio: edgeWindow.length ? edgeWindow.filter((r) => cached.has(r.cache)).length / edgeWindow.length : 0,
    edge_per_visitor_minute: edgeWindow.length / visitorMinutes,
    origin_requests_per_visitor_before_window: before.length / visitors,
  };
}

// ---- phase 1: real pages ------------------------------------------------------------------

async function pagesPhase() {
  const eventId = "cdn-pages";
  await prepare(eventId);
  const browser = await chromium.launch({
    executablePath: process.env.WR_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // Every page is a visitor looking at it: no background-tab timer throttling.
      "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows"],
  });
  const phaseStart = Date.now();
  try {
    const pages = [];
    for (let i = 0; i < PAGES; i++) {
      // A context per visitor: its own storage (saved place) and its own HTTP cache, as
      // separate people's browsers have.
      const context = await browser.newContext();
      const page = await context.newPage();
      pages.push(page);
      await page.goto(`${EDGE}/waiting-room.html?event_id=${eventId}`);
    }
    const deadline = Date.now() + PLACE_TIMEOUT_MS;
    for (const page of pages) {
      await page.waitForFunction(() => ["waiting", "paused"].includes(document.body.getAttribute("data-state")),
        null, { timeout: Math.max(1000, deadline - Date.now()) });
    }
    const from = Date.now();
    log(`pages: ${PAGES} placed, measuring ${SECS} s`);
    await sleep(SECS * 1000);
    const to = Date.now();
    const states = await Promise.all(pages.map((p) => p.evaluate(() => document.body.getAttribute("data-state"))));
    const result = figures("real pages (Chromium)", eventId, PAGES, phaseStart, from, to);
    result.states_at_end = states.reduce((m, s) => ({ ...m, [s]: (m[s] || 0) + 1 }), {});
    return result;
  } finally {
    await Promise.race([browser.close().catch(() => {}), sleep(10000)]);
  }
}

// ---- phase 2: the simulated crowd ---------------------------------------------------------

// One simulated visitor: the page's steps (join, ask for the position until placed, then poll
// the shared document at queue.js's pace with the page's jitter) and a browser's cache (reuse
// a document for its max-age, then revalidate it with If-None-Match).
class Poller {
  // `until.at`: when to stop (set once everyone is placed and the window is known).
  constructor(eventId, until) {
    this.eventId = eventId;
    this.until = until;
    this.arrival = null;
    this.doc = null;
    this.etag = null;
    this.freshUntil = 0;
    this.errors = 0;
  }

  async run() {
    const join = await fetch(`${EDGE}/assign_queue_num`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ event_id: this.eventId }),
    });
    const joined = await join.json().catch(() => ({}));
    if (join.status !== 202) return this.fail();
    const id = joined.api_request_id;
    for (let asks = 0; this.arrival === null; asks++) {
      await sleep(Q.unplacedDelayMs(asks));
      if (Date.now() > this.until.at) return;
      const r = await fetch(`${EDGE}/queue_num?event_id=${this.eventId}&request_id=${id}`);
      const body = await r.json().catch(() => ({}));
      if (typeof body.arrival === "number" && (r.status === 200 || body.code === "awaiting_draw")) this.arrival = body.arrival;
      else if (r.status !== 202) return this.fail();
    }
    while (Date.now() < this.until.at) {
      const doc = await this.read();
      if (!doc) return this.fail();
      const s = Q.standing(doc, this.arrival, Date.now(), false);
      if (s.kind === "served") {
        await fetch(`${EDGE}/generate_token`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ event_id: this.eventId, request_id: id }),
        }).then((r) => r.arrayBuffer());
        return;
      }
      if (s.kind !== "waiting" && s.kind !== "paused" && s.kind !== "prequeue") return this.fail();
      await sleep(Math.round(s.nextPollMs * (0.85 + Math.random() * 0.3)));
    }
  }

  async read() {
    if (this.doc && Date.now() < this.freshUntil) return this.doc;
    const headers = this.etag ? { "if-none-match": this.etag } : {};
    const r = await fetch(`${EDGE}/event_state?event_id=${this.eventId}`, { headers });
    if (r.status === 304 && this.doc) {
      await r.arrayBuffer();
    } else if (r.status === 200) {
      this.doc = await r.json();
      this.etag = r.headers.get("etag");
    } else {
      await r.arrayBuffer();
      return null;
    }
    const maxAge = /max-age=(\d+)/.exec(r.headers.get("cache-control") || "");
    this.freshUntil = Date.now() + (maxAge ? Number(maxAge[1]) * 1000 : 0);
    return this.doc;
  }

  fail() {
    this.errors += 1;
  }
}

async function crowdPhase() {
  const eventId = "cdn-crowd";
  await prepare(eventId);
  const phaseStart = Date.now();
  // Everyone joins over 10 s; the window opens once (nearly) all are placed.
  const rampMs = 10_000;
  const until = { at: Infinity };
  const pollers = [];
  const runs = [];
  for (let i = 0; i < CROWD; i++) {
    const poller = new Poller(eventId, until);
    pollers.push(poller);
    runs.push(sleep((rampMs * i) / CROWD).then(() => poller.run()).catch(() => poller.fail()));
  }
  const placedCount = () => pollers.filter((p) => p.arrival !== null).length;
  const giveUp = Date.now() + PLACE_TIMEOUT_MS;
  await sleep(rampMs);
  while (placedCount() < CROWD * 0.99 && Date.now() < giveUp) await sleep(500);
  const placedBy = Date.now();
  const placed = placedCount();
  const stopAt = placedBy + SECS * 1000;
  until.at = stopAt;
  log(`crowd: ${placed} of ${CROWD} placed after ${Math.round((placedBy - phaseStart) / 1000)} s, measuring ${SECS} s`);
  await Promise.race([Promise.all(runs), sleep(stopAt - Date.now() + 35_000)]);
  const result = figures("simulated crowd (queue.js)", eventId, placed, phaseStart, placedBy, stopAt);
  result.errors = pollers.reduce((n, p) => n + p.errors, 0);
  return result;
}

// ---- main ---------------------------------------------------------------------------------

function table(results) {
  const rows = [
    "| run | visitors | window s | per-visitor origin req / visitor-minute | shared origin req/s (event) | origin req/s (event) | edge req / visitor-minute | hit ratio | origin req per visitor before the window | origin requests by path |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    rows.push(`| ${[r.label, r.phase].filter(Boolean).join(", ")} | ${r.visitors} | ${r.window_secs} | ` +
      `${r.per_visitor_origin_per_visitor_minute.toFixed(2)} | ${r.shared_origin_per_sec.toFixed(2)} | ` +
      `${r.origin_per_sec.toFixed(2)} | ${r.edge_per_visitor_minute.toFixed(1)} | ${(r.hit_ratio * 100).toFixed(1)}% | ` +
      `${r.origin_requests_per_visitor_before_window.toFixed(2)} | ${JSON.stringify(r.origin_by_path).replace(/"/g, "")} |`);
  }
  return rows.join("\n");
}

const overall = setTimeout(() => {
  log("cdn scenario: overall time limit reached");
  process.exit(1);
}, (SECS * 2 + 600) * 1000);

const results = [];
if (PAGES > 0) results.push(await pagesPhase());
if (CROWD > 0) results.push(await crowdPhase());
clearTimeout(overall);
writeFileSync(path.join(OUT, "report.json"), JSON.stringify(results, null, 2));
console.log(table(results));
for (const r of results) {
  const pv = r.per_visitor_origin_per_visitor_minute;
  console.log(`${r.phase}: per-visitor origin requests ${pv.toFixed(2)}/visitor-minute (goal <= 0.5): ` +
    `${pv <= 0.5 ? "met" : "NOT met"}; shared reads ${r.shared_origin_per_sec.toFixed(2)}/s for the event ` +
    `(goal <= 1.5): ${r.shared_origin_per_sec <= 1.5 ? "met" : "NOT met"}`);
}
process.exit(0);
