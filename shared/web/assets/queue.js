// What a waiting page works out for itself from the shared event document (/event_state) and
// its own arrival number: its place (the pre-queue draw replayed), the people ahead, the
// estimated wait, when to poll next, whether it may claim its token and until when.
//
// Plain functions that never touch the page, so node runs the very same code: the unit tests
// (tests/web) check the draw on the frozen vectors the Rust tests read, and the load suite's
// simulated crowd (infra/load/cdn.mjs) polls at exactly this pace. The rules mirror
// shared/src/domain (shuffle.rs, eta.rs, event.rs).
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.WR_QUEUE = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  // ---- the pre-queue draw: a keyed Feistel permutation (shuffle.rs) --------------------------

  var MASK64 = (BigInt(1) << BigInt(64)) - BigInt(1);
  var ROUNDS = 6;

  // SplitMix64's finaliser, in 64-bit wrapping arithmetic.
  function mix(x) {
    x = (x + BigInt("0x9E3779B97F4A7C15")) & MASK64;
    x = ((x ^ (x >> BigInt(30))) * BigInt("0xBF58476D1CE4E5B9")) & MASK64;
    x = ((x ^ (x >> BigInt(27))) * BigInt("0x94D049BB133111EB")) & MASK64;
    return x ^ (x >> BigInt(31));
  }

  function feistel(value, halfBits, seed) {
    var mask = (BigInt(1) << halfBits) - BigInt(1);
    var left = value >> halfBits;
    var right = value & mask;
    for (var round = 0; round < ROUNDS; round++) {
      var f = mix(seed ^ mix(right ^ (BigInt(round) << BigInt(56)))) & mask;
      var next = left ^ f;
      left = right;
      right = next;
    }
    return (left << halfBits) | right;
  }

  // The place (0..size-1) drawn for arrival number `index` (0..size-1). `seed` is the draw's
  // seed as the document gives it: a decimal string (64 bits do not fit a JS number).
  function permute(index, size, seed) {
    var n = BigInt(size);
    if (n <= BigInt(1)) return Number(index);
    var bits = (n - BigInt(1)).toString(2).length;
    var half = BigInt(Math.max(1, Math.ceil(bits / 2)));
    var key = BigInt(seed);
    var value = BigInt(index);
    do {
      value = feistel(value, half, key);
    } while (value >= n);
    return Number(value);
  }

  // The place in line of the visitor who arrived `arrival`-th: shuffled within the pre-queue,
  // in arrival order after it (event.rs, EventConfig::place).
  function place(arrival, draw) {
    if (draw && arrival >= 1 && arrival <= draw.size) return 1 + permute(arrival - 1, draw.size, draw.seed);
    return arrival;
  }

  // A pre-queue was held and its order is not drawn yet.
  function awaitsDraw(doc) {
    return doc.opens_at_ms != null && !doc.draw;
  }

  // ---- pace and estimates (eta.rs) -----------------------------------------------------------

  var RATE_WINDOW_MS = 5 * 60 * 1000;

  // Visitors let in per second over the window ending at `nowMs`, from the serving moves.
  function admissionRate(moves, nowMs) {
    var since = nowMs - RATE_WINDOW_MS;
    var first = null;
    var admitted = 0;
    for (var i = 0; i < moves.length; i++) {
      if (moves[i].at_ms <= since) continue;
      if (first === null) first = moves[i].at_ms;
      admitted += moves[i].to - moves[i].from;
    }
    if (first === null) return 0;
    return (admitted * 1000) / Math.max(nowMs - first, 10000);
  }

  // Seconds until `ahead` visitors have been let in; null while nobody is let in.
  function etaSeconds(ahead, rate) {
    if (ahead === 0) return 0;
    return rate > 0 ? Math.ceil(ahead / rate) : null;
  }

  function clamp(n, lo, hi) {
    return Math.min(Math.max(n, lo), hi);
  }

  // When to poll again: often near the front, rarely far back, well before the estimated turn.
  function pollDelayMs(ahead, eta, policy) {
    var byDistance = policy.min_ms + ahead * policy.ms_per_place;
    var byEta = eta === null || eta === undefined ? Infinity : Math.floor((eta * 1000) / policy.eta_divisor);
    return clamp(Math.min(byDistance, byEta), policy.min_ms, policy.max_ms);
  }

  // Until a time (opening, start): wake up at it, never sleeping past the longest pause in case
  // the schedule moves.
  function untilDelayMs(atMs, nowMs, policy) {
    return atMs == null ? policy.max_ms : clamp(atMs - nowMs, policy.min_ms, policy.max_ms);
  }

  // The pause before asking again for the position of a request not placed yet: quick at first
  // (the consumer assigns within a second), then backing off.
  function unplacedDelayMs(attempt) {
    return Math.min(500 * Math.pow(2, attempt), 8000);
  }

  // Until when a served place may claim its token: its serving move's deadline (its time plus
  // the claim window, when the room sends no deadline); null when the move is older than the
  // document's list (the room then decides).
  function claimDeadlineMs(doc, myPlace) {
    var moves = doc.serving_moves || [];
    for (var i = 0; i < moves.length; i++) {
      if (myPlace > moves[i].from && myPlace <= moves[i].to) {
        return moves[i].claim_by_ms != null ? moves[i].claim_by_ms : moves[i].at_ms + doc.position_expiry_secs * 1000;
      }
    }
    return null;
  }

  // Where a visitor with arrival number `arrival` stands, from the document, at `nowMs` (the
  // room's clock). `claimed`: it already holds a token (its place can no longer expire).
  //   {kind: "closed"} | {kind: "prequeue", nextPollMs}
  //   | {kind: "served", place, deadlineMs} | {kind: "expired", place}
  //   | {kind: "waiting" | "paused", place, ahead, etaSeconds, nextPollMs}
  function standing(doc, arrival, nowMs, claimed) {
    if (doc.state === "closed") return { kind: "closed" };
    if (awaitsDraw(doc)) {
      // Nothing moves before the start; then the draw comes within a pass of the room.
      return { kind: "prequeue", nextPollMs: untilDelayMs(doc.starts_at_ms, nowMs, doc.poll) };
    }
    var mine = place(arrival, doc.draw);
    if (mine <= doc.serving_counter) {
      var deadline = claimDeadlineMs(doc, mine);
      if (!claimed && deadline !== null && nowMs >= deadline) return { kind: "expired", place: mine };
      return { kind: "served", place: mine, deadlineMs: deadline };
    }
    var ahead = mine - doc.serving_counter - 1;
    var eta = etaSeconds(ahead + 1, admissionRate(doc.serving_moves || [], nowMs));
    return {
      kind: doc.state === "paused" ? "paused" : "waiting",
      place: mine,
      ahead: ahead,
      etaSeconds: eta,
      nextPollMs: pollDelayMs(ahead, eta, doc.poll)
    };
  }

  return {
    permute: permute,
    place: place,
    awaitsDraw: awaitsDraw,
    admissionRate: admissionRate,
    etaSeconds: etaSeconds,
    pollDelayMs: pollDelayMs,
    untilDelayMs: untilDelayMs,
    unplacedDelayMs: unplacedDelayMs,
    claimDeadlineMs: claimDeadlineMs,
    standing: standing
  };
});
