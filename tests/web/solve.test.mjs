// The page's challenge solver (shared/web/assets/solve.js), in node's test runner: its own
// SHA-256 (used where WebCrypto is missing) against node's, and the nonce the worker finds,
// with WebCrypto and without, checked as the room checks it. Run: node --test tests/web/
import assert from "node:assert/strict";
import { createHash, randomBytes, webcrypto } from "node:crypto";
import { createRequire } from "node:module";
import test from "node:test";

const require = createRequire(import.meta.url);
const posted = [];
globalThis.self = { crypto: webcrypto, postMessage: (message) => posted.push(message) };
const W = require("../../shared/web/assets/solve.js");

function zeroBits(hex) {
  const bits = BigInt("0x" + hex).toString(2).padStart(256, "0");
  return bits.indexOf("1") === -1 ? 256 : bits.indexOf("1");
}

test("its SHA-256 equals node's on every padding boundary", () => {
  for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 1000]) {
    const bytes = randomBytes(length);
    const ours = Buffer.from(W.sha256(new Uint8Array(bytes))).toString("hex");
    assert.equal(ours, createHash("sha256").update(bytes).digest("hex"), `${length} bytes`);
  }
});

async function solveWith(crypto, challenge, difficulty) {
  self.crypto = crypto;
  posted.length = 0;
  self.onmessage({ data: { challenge, difficulty } });
  while (posted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  return posted[0];
}

for (const [name, crypto] of [["WebCrypto", webcrypto], ["its own SHA-256", undefined]]) {
  test(`the worker finds a nonce the room accepts, with ${name}`, async () => {
    const challenge = "19b3a1c2e00.12.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210";
    const answer = await solveWith(crypto, challenge, 12);
    assert.equal(typeof answer.solution, "string", JSON.stringify(answer));
    assert.match(answer.solution, /^[0-9]+$/);
    const hex = createHash("sha256").update(`${challenge}:${answer.solution}`).digest("hex");
    assert.ok(zeroBits(hex) >= 12, `${hex} has ${zeroBits(hex)} leading zero bits`);
  });
}
