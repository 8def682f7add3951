// The join challenge, solved off the page's thread: finds a nonce such that the SHA-256 of
// "<challenge>:<nonce>" starts with `difficulty` zero bits (shared/src/challenge.rs checks it).
//
// The hashing is done here rather than by WebCrypto: `crypto.subtle.digest` costs a round trip
// to the browser per call, which made it about three times slower than this code on the same
// machine (BENCHMARKS.md), and it is missing where a page is not a secure context (plain HTTP
// from another host than localhost). The challenge's whole 64-byte blocks are hashed once; each
// try hashes only the last block or two.
"use strict";

var K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);
var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
var W = new Int32Array(64);

// One 64-byte block of `bytes` at `off` into the state `h` (FIPS 180-4).
function compress(h, bytes, off) {
  var t;
  for (t = 0; t < 16; t++) {
    var i = off + 4 * t;
    W[t] = (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
  }
  for (t = 16; t < 64; t++) {
    var x = W[t - 15], y = W[t - 2];
    var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
  }
  var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (t = 0; t < 64; t++) {
    var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    var t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
    var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
}

// Hashes "<challenge>:<nonce>" for many nonces, the challenge's whole blocks hashed once.
function Hasher(challenge) {
  var prefix = new TextEncoder().encode(challenge + ":");
  var whole = prefix.length - (prefix.length % 64);
  this.length = prefix.length;
  this.mid = Int32Array.from(IV);
  for (var off = 0; off < whole; off += 64) compress(this.mid, prefix, off);
  this.rest = prefix.subarray(whole);
  this.tail = new Uint8Array(192);
  this.state = new Int32Array(8);
}

// The digest of `nonce` (a string of ASCII digits), as eight 32-bit words.
Hasher.prototype.digest = function (nonce) {
  var rest = this.rest, tail = this.tail, state = this.state;
  var used = rest.length + nonce.length;
  var blocks = (used + 9 + 63) >> 6;
  tail.fill(0, 0, blocks * 64);
  tail.set(rest);
  for (var j = 0; j < nonce.length; j++) tail[rest.length + j] = nonce.charCodeAt(j);
  tail[used] = 0x80;
  var bits = (this.length + nonce.length) * 8;
  var end = blocks * 64;
  tail[end - 4] = bits >>> 24; tail[end - 3] = bits >>> 16; tail[end - 2] = bits >>> 8; tail[end - 1] = bits;
  state.set(this.mid);
  for (var off = 0; off < end; off += 64) compress(state, tail, off);
  return state;
};

// Whether a digest (eight 32-bit words) starts with `bits` zero bits.
function enough(words, bits) {
  for (var i = 0; i < 8 && bits > 0; i++, bits -= 32) {
    if (bits >= 32 ? words[i] !== 0 : words[i] >>> (32 - bits) !== 0) return false;
  }
  return true;
}

function solve(challenge, bits) {
  var hasher = new Hasher(challenge);
  for (var n = 0; ; n++) {
    if (enough(hasher.digest(String(n)), bits)) return { solution: String(n), tries: n + 1 };
  }
}

if (typeof module === "object") module.exports = { Hasher: Hasher, enough: enough, solve: solve };

self.onmessage = function (event) {
  self.postMessage(solve(String(event.data.challenge), Number(event.data.difficulty)));
};
