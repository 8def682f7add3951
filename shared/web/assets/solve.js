// The join challenge, solved off the page's thread: finds a nonce such that the SHA-256 of
// "<challenge>:<nonce>" starts with `difficulty` zero bits (shared/src/challenge.rs checks it).
// Digests are asked of WebCrypto many at a time, which keeps its per-call cost small. Where
// WebCrypto is missing (a page served over plain HTTP from another host than localhost is not a
// secure context), the SHA-256 below does the same work, a few times slower.
"use strict";

var BATCH = 512;

var K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);
var W = new Uint32Array(64);

function rotr(x, n) {
  return (x >>> n) | (x << (32 - n));
}

// SHA-256 of a byte array (FIPS 180-4), as an ArrayBuffer like WebCrypto's.
function sha256(bytes) {
  var padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  var view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bytes.length / 0x20000000));
  view.setUint32(padded.length - 4, (bytes.length * 8) >>> 0);
  var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  for (var off = 0; off < padded.length; off += 64) {
    var t;
    for (t = 0; t < 16; t++) W[t] = view.getUint32(off + 4 * t);
    for (t = 16; t < 64; t++) {
      var s0 = rotr(W[t - 15], 7) ^ rotr(W[t - 15], 18) ^ (W[t - 15] >>> 3);
      var s1 = rotr(W[t - 2], 17) ^ rotr(W[t - 2], 19) ^ (W[t - 2] >>> 10);
      W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (t = 0; t < 64; t++) {
      var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
      var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
  }
  var out = new DataView(new ArrayBuffer(32));
  for (var i = 0; i < 8; i++) out.setUint32(4 * i, h[i] >>> 0);
  return out.buffer;
}

function enough(digest, bits) {
  var bytes = new Uint8Array(digest);
  var whole = bits >> 3;
  for (var i = 0; i < whole; i++) if (bytes[i] !== 0) return false;
  var rest = bits & 7;
  return rest === 0 || bytes[whole] >> (8 - rest) === 0;
}

if (typeof module === "object") module.exports = { sha256: sha256, enough: enough };

self.onmessage = function (event) {
  var challenge = String(event.data.challenge);
  var bits = Number(event.data.difficulty);
  var subtle = self.crypto && self.crypto.subtle;
  var digest = subtle
    ? function (input) { return subtle.digest("SHA-256", input); }
    : function (input) { return Promise.resolve(sha256(input)); };
  var prefix = new TextEncoder().encode(challenge + ":");
  var next = 0;

  function round() {
    var first = next;
    var digests = [];
    for (var i = 0; i < BATCH; i++) {
      var nonce = String(first + i);
      var input = new Uint8Array(prefix.length + nonce.length);
      input.set(prefix);
      for (var j = 0; j < nonce.length; j++) input[prefix.length + j] = nonce.charCodeAt(j);
      digests.push(digest(input));
    }
    next += BATCH;
    return Promise.all(digests).then(function (done) {
      for (var k = 0; k < done.length; k++) {
        if (enough(done[k], bits)) {
          self.postMessage({ solution: String(first + k), tries: first + k + 1 });
          return null;
        }
      }
      return round();
    });
  }

  round().catch(function (error) {
    self.postMessage({ error: String(error) });
  });
};
