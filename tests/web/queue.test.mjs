// The visitor page's own reckoning (shared/web/assets/queue.js), in node's test runner: the
// pre-queue draw on the frozen vectors the Rust tests read too, and the pace and standing
// rules that mirror shared/src/domain. Run: node --test tests/web/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import test from "node:test";

const require = createRequire(import.meta.url);
const Q = require("../../shared/web/assets/queue.js");
const vectors = JSON.parse(readFileSync(new URL("../../shared/src/domain/shuffle-vectors.json", import.meta.url)));

const POLICY = { min_ms: 1000, max_ms: 30000, ms_per_place: 20, eta_divisor: 4 };

test("the draw replays every frozen vector exactly as the room draws it", () => {
  assert.ok(vectors.length >= 5, "the vectors file has the vectors");
  for (const v of vectors) {
    const indices = v.indices || [...Array(v.size).keys()];
    const places = indices.map((i) => Q.permute(i, v.size, v.seed));
    assert.deepEqual(places, v.places, `size ${v.size}, seed ${v.seed}`);
  }
});

test("places are shuffled within the draw and in arrival order after it", () => {
  const draw = { size: 100, seed: "7" };
  const places = Array.from({ length: 100 }, (_, i) => Q.place(i + 1, draw));
  assert.notDeepEqual(places, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual([...places].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(Q.place(101, draw), 101);
  assert.equal(Q.place(5, null), 5);
});

test("the pace follows the room's rule: slower far back, bounded, quicker near the turn", () => {
  assert.equal(Q.pollDelayMs(0, 0, POLICY), 1000);
  assert.ok(Q.pollDelayMs(1000, null, POLICY) > Q.pollDelayMs(10, null, POLICY));
  assert.equal(Q.pollDelayMs(50000, null, POLICY), 30000);
  assert.equal(Q.pollDelayMs(50000, 8, POLICY), 2000);
  assert.equal(Q.unplacedDelayMs(0), 500);
  assert.equal(Q.unplacedDelayMs(10), 8000);
});

test("the admission rate counts only the window, over at least 10 s", () => {
  const now = 1_000_000;
  const moves = [
    { from: 0, to: 500, at_ms: now - 300_001 },
    { from: 500, to: 600, at_ms: now - 100_000 },
    { from: 600, to: 700, at_ms: now - 50_000 },
  ];
  assert.equal(Q.admissionRate(moves, now), 2);
  assert.equal(Q.admissionRate([], now), 0);
  assert.equal(Q.etaSeconds(10, 0), null);
  assert.equal(Q.etaSeconds(10, 4), 3);
});

function doc(fields) {
  return Object.assign({
    state: "open", opens_at_ms: null, starts_at_ms: null, draw: null, serving_counter: 0,
    serving_moves: [], position_expiry_secs: 60, poll: POLICY,
  }, fields);
}

test("a page knows from the document alone whether it waits, may claim, or is too late", () => {
  const moves = [{ from: 0, to: 10, at_ms: 100_000 }];
  const waiting = Q.standing(doc({ serving_counter: 10, serving_moves: moves }), 15, 110_000, false);
  assert.equal(waiting.kind, "waiting");
  assert.equal(waiting.ahead, 4);
  assert.equal(waiting.etaSeconds, 5, "10 let in over 10 s: 5 places take 5 s");
  const served = Q.standing(doc({ serving_counter: 10, serving_moves: moves }), 7, 110_000, false);
  assert.deepEqual(served, { kind: "served", place: 7, deadlineMs: 160_000 });
  assert.equal(Q.standing(doc({ serving_counter: 10, serving_moves: moves }), 7, 160_000, false).kind, "expired");
  assert.equal(Q.standing(doc({ serving_counter: 10, serving_moves: moves }), 7, 160_000, true).kind, "served",
    "a claimed place never expires");
  assert.equal(Q.standing(doc({ state: "paused", serving_counter: 10 }), 15, 0, false).kind, "paused");
  assert.equal(Q.standing(doc({ state: "closed" }), 1, 0, false).kind, "closed");
  const pre = Q.standing(doc({ state: "pre_queue", opens_at_ms: 0, starts_at_ms: 20_000 }), 3, 5_000, false);
  assert.deepEqual(pre, { kind: "prequeue", nextPollMs: 15_000 });
  const drawn = Q.standing(doc({ opens_at_ms: 0, draw: { size: 10, seed: "42" }, serving_counter: 0 }), 1, 0, false);
  assert.equal(drawn.place, 1 + Q.permute(0, 10, "42"));
});
