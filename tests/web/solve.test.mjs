// The page's challenge solver (shared/web/assets/solve.js), in node's test runner: its SHA-256
// against node's for challenges of every length around the block boundaries, and the nonce it
// finds checked as the room checks it. Run: node --test tests/web/
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import test from "node:test";

const require = createRequire(import.meta.url);
globalThis.self = {};
const W = require("../../shared/web/assets/solve.js");

function hex(words) {
  return Array.from(words, (w) => (w >>> 0).toString(16).padStart(8, "0")).join("");
}

function zeroBits(digest) {
  const bits = BigInt("0x" + digest).toString(2).padStart(256, "0");
  return bits.indexOf("1") === -1 ? 256 : bits.indexOf("1");
}

test("its SHA-256 of <challenge>:<nonce> equals node's across the block boundaries", () => {
  for (let length = 0; length < 200; length++) {
    const challenge = "c".repeat(length);
    const hasher = new W.Hasher(challenge);
    for (const nonce of ["0", "7", "123456789", "98765432101234567890"]) {
      const expected = createHash("sha256").update(`${challenge}:${nonce}`).digest("hex");
      assert.equal(hex(hasher.digest(nonce)), expected, `challenge of ${length}, nonce ${nonce}`);
    }
  }
});

test("zero bits are counted across words", () => {
  assert.ok(W.enough([0, 0x0fffffff, 1, 1, 1, 1, 1, 1], 36));
  assert.ok(!W.enough([0, 0x0fffffff, 1, 1, 1, 1, 1, 1], 37));
  assert.ok(W.enough([0x00ffffff, 1, 1, 1, 1, 1, 1, 1], 8));
  assert.ok(!W.enough([0x01ffffff, 1, 1, 1, 1, 1, 1, 1], 8));
});

test("the worker answers with a nonce the room accepts", () => {
  const posted = [];
  self.postMessage = (message) => posted.push(message);
  const challenge = "19b3a1c2e00.12.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210";
  self.onmessage({ data: { challenge, difficulty: 12 } });
  assert.equal(posted.length, 1);
  assert.match(posted[0].solution, /^[0-9]+$/);
  const digest = createHash("sha256").update(`${challenge}:${posted[0].solution}`).digest("hex");
  assert.ok(zeroBits(digest) >= 12, `${digest} has ${zeroBits(digest)} leading zero bits`);
});
