// The CloudFront Function that gates the application's own distribution (PassGateFunction in
// template.yaml, read from the template as it deploys), run under node with CloudFront's
// viewer-request event shapes and a KeyValueStore stand-in: valid, tampered, expired, other
// event's, rotated-out and unknown-key passes, the hand-over, and the frozen passes the room
// signs (shared/src/gate/edge-pass-vectors.json). Run: node --test tests/edge/
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import test from "node:test";

const ROOM = "https://room.example.net/waiting-room.html";
const EVENT = "sale";
const vectors = JSON.parse(readFileSync(new URL("../../shared/src/gate/edge-pass-vectors.json", import.meta.url)));

// The function's code as CloudFormation deploys it: the FunctionCode block of the template,
// with !Sub's parameters filled in.
function functionCode(event) {
  const lines = readFileSync(new URL("../../template.yaml", import.meta.url), "utf8").split("\n");
  const start = lines.findIndex((l) => /^\s+FunctionCode: !Sub \|$/.test(l));
  assert.ok(start > 0, "template.yaml has the function's code");
  const indent = lines[start + 1].length - lines[start + 1].trimStart().length;
  const body = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== "" && line.length - line.trimStart().length < indent) break;
    body.push(line.slice(indent));
  }
  const code = body.join("\n")
    .replaceAll("${EventId}", event)
    .replaceAll("${Distribution.DomainName}", "room.example.net");
  assert.ok(!code.includes("${"), "every !Sub parameter is known to the test");
  return code;
}

const CODE = functionCode(EVENT);

// A KeyValueStore as the function sees it: get() of a missing key throws.
function store(entries) {
  return {
    kvs: () => ({
      get: async (key) => {
        if (!Object.hasOwn(entries, key)) throw new Error("KeyNotFound");
        return entries[key];
      },
    }),
  };
}

// The handler of `event`'s gate over `entries`, at `now` (unix seconds). The code's imports
// are the runtime's modules, handed in here.
function gate(entries, now, event = EVENT) {
  const body = functionCode(event).replace(/^import \w+ from '[^']+';$/gm, "");
  const clock = { now: () => now * 1000 };
  return new Function("crypto", "cf", "Date", `${body}\nreturn handler;`)(crypto, store(entries), clock);
}

function sign(key, kid, event, request, exp) {
  const signed = ["v1", kid, event, request, exp].join(".");
  return `${signed}.${crypto.createHmac("sha256", key).update(signed).digest("hex")}`;
}

const KID = "20424-aaaa0001";
const KEY = "current-key-0123456789abcdefghijklmnopqrstu";
const REQUEST = "0000019ae0c3a5f00000000000000001c0ffee00000000000000000000000042";
const NOW = 1764700000;
const KEYS = { [`pass_key_${KID}`]: KEY };

// A viewer request as CloudFront hands it to a function.
function viewerRequest({ uri = "/shop/item", query = { x: { value: "1" } }, cookies = {}, accept = "text/html,application/xhtml+xml", method = "GET" } = {}) {
  return {
    version: "1.0",
    context: { distributionDomainName: "d111111abcdef8.cloudfront.net", distributionId: "EDFDVBD6EXAMPLE", eventType: "viewer-request", requestId: "r1" },
    viewer: { ip: "198.51.100.11" },
    request: {
      method,
      uri,
      querystring: query,
      headers: { host: { value: "shop.example.com" }, accept: { value: accept } },
      cookies,
    },
  };
}

const withPass = (pass, rest = {}) => viewerRequest({ ...rest, cookies: { theme: { value: "dark" }, wr_pass: { value: pass } } });
const roomFor = (back) => `${ROOM}?event_id=${EVENT}&return=${encodeURIComponent(back)}`;

test("the code uses only what cloudfront-js-2.0 offers: the crypto and cloudfront modules", () => {
  const imports = [...CODE.matchAll(/^import (\w+) from '([^']+)';$/gm)].map((m) => m[2]);
  assert.deepEqual(imports.sort(), ["cloudfront", "crypto"]);
  for (const banned of ["require(", "process.", "setTimeout", "setInterval", "fetch(", "eval(", "export ", "new Function"]) {
    assert.ok(!CODE.includes(banned), `${banned} is not available to CloudFront Functions`);
  }
  assert.ok(/^async function handler\(event\)/m.test(CODE), "the entry point is handler(event)");
  assert.ok(Buffer.byteLength(CODE) < 10240, "within CloudFront's 10 KB function size");
});

test("a valid pass goes on to the origin without the cookie, with the request id", async () => {
  const out = await gate(KEYS, NOW)(withPass(sign(KEY, KID, EVENT, REQUEST, NOW + 600)));
  assert.equal(out.uri, "/shop/item");
  assert.deepEqual(out.querystring, { x: { value: "1" } });
  assert.deepEqual(Object.keys(out.cookies), ["theme"]);
  assert.equal(out.headers["x-waiting-room-request-id"].value, REQUEST);
});

test("without a pass a page load goes to the room with its address, an API call gets 503", async () => {
  const handler = gate(KEYS, NOW);
  const page = await handler(viewerRequest());
  assert.equal(page.statusCode, 303);
  assert.equal(page.headers.location.value, roomFor("/shop/item?x=1"));
  assert.equal(page.headers["cache-control"].value, "no-store");
  assert.deepEqual(page.cookies, {});

  const api = await handler(viewerRequest({ uri: "/api/cart", query: {}, accept: "application/json", method: "POST" }));
  assert.equal(api.statusCode, 503);
  assert.equal(api.headers["retry-after"].value, "30");
  const body = JSON.parse(api.body.data);
  assert.equal(api.body.encoding, "text");
  assert.equal(body.code, "pass_required");
  assert.equal(body.reason, "token_missing");
  assert.equal(body.waiting_room, roomFor("/api/cart"));
});

test("refused passes: tampered, expired, another event's, unknown key; the cookie is dropped", async () => {
  const handler = gate(KEYS, NOW);
  const good = sign(KEY, KID, EVENT, REQUEST, NOW + 600);
  const flipped = good.slice(0, -1) + (good.endsWith("0") ? "1" : "0");
  const cases = {
    token_bad_signature: [flipped, good.replace(REQUEST, REQUEST.replace("42", "43")), good.replace(`${NOW + 600}`, `${NOW + 6000}`)],
    token_expired: [sign(KEY, KID, EVENT, REQUEST, NOW), sign(KEY, KID, EVENT, REQUEST, NOW - 1)],
    token_wrong_event: [sign(KEY, KID, "other", REQUEST, NOW + 600)],
    token_unknown_key: [sign(KEY, "20425-bbbb0002", EVENT, REQUEST, NOW + 600)],
    token_malformed: ["", "v1.x", good.replace("v1.", "v2."), `${good}.extra`, good.replace(/\.[0-9a-f]{64}$/, ".zz")],
  };
  for (const [reason, passes] of Object.entries(cases)) {
    for (const pass of passes) {
      const api = await handler(withPass(pass, { accept: "application/json" }));
      assert.equal(api.statusCode, 503, pass);
      assert.equal(JSON.parse(api.body.data).reason, reason, pass);
      assert.match(api.cookies.wr_pass.attributes, /Max-Age=0/);
      const page = await handler(withPass(pass));
      assert.equal(page.statusCode, 303, pass);
      assert.equal(page.headers.location.value, roomFor("/shop/item?x=1"));
      assert.equal(page.cookies.wr_pass.value, "");
    }
  }
});

test("a rotation keeps yesterday's passes valid while its key is kept, and refuses them after", async () => {
  const previous = { kid: "20423-aaaa0001", key: "previous-key-0123456789abcdefghijklmnopqrs" };
  const pass = sign(previous.key, previous.kid, EVENT, REQUEST, NOW + 600);
  const rotated = { ...KEYS, [`pass_key_${previous.kid}`]: previous.key };
  const kept = await gate(rotated, NOW)(withPass(pass));
  assert.equal(kept.headers["x-waiting-room-request-id"].value, REQUEST);
  const dropped = await gate(KEYS, NOW)(withPass(pass, { accept: "*/*" }));
  assert.equal(JSON.parse(dropped.body.data).reason, "token_unknown_key");
  // A pass signed with one day's key under another day's name is forged.
  const forged = sign(previous.key, KID, EVENT, REQUEST, NOW + 600);
  const refused = await gate(rotated, NOW)(withPass(forged, { accept: "*/*" }));
  assert.equal(JSON.parse(refused.body.data).reason, "token_bad_signature");
});

test("the hand-over sets the pass as an HttpOnly cookie and goes on to the return address", async () => {
  const handler = gate(KEYS, NOW);
  const pass = sign(KEY, KID, EVENT, REQUEST, NOW + 600);
  const handoff = (ret, p = pass) => handler(viewerRequest({ uri: "/__wr/pass", query: { wr_pass: { value: p }, return: { value: encodeURIComponent(ret) } } }));
  const out = await handoff("/shop/item?x=1");
  assert.equal(out.statusCode, 303);
  assert.equal(out.headers.location.value, "/shop/item?x=1");
  assert.equal(out.headers["referrer-policy"].value, "no-referrer");
  assert.equal(out.cookies.wr_pass.value, pass);
  assert.equal(out.cookies.wr_pass.attributes, "Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600");
  for (const offsite of ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example", "/__wr/pass?wr_pass=x"]) {
    assert.equal((await handoff(offsite)).headers.location.value, "/", offsite);
  }
  const bad = await handoff("/shop/item?x=1", pass.slice(0, -1) + "0");
  assert.equal(bad.headers.location.value, roomFor("/shop/item?x=1"));
  assert.deepEqual(bad.cookies, {});
});

test("repeated query parameters come back as the browser sent them", async () => {
  const query = { tag: { value: "a", multiValue: [{ value: "a" }, { value: "b%20c" }] }, flag: { value: "" } };
  const page = await gate(KEYS, NOW)(viewerRequest({ query }));
  assert.equal(page.headers.location.value, roomFor("/shop/item?tag=a&tag=b%20c&flag"));
});

test("the room's frozen passes open the gate until they expire", async () => {
  assert.ok(vectors.passes.length >= 2);
  for (const v of vectors.passes) {
    const at = (now) => gate({ [`pass_key_${v.kid}`]: v.key }, now, v.event_id);
    const open = await at(v.exp - 1)(withPass(v.pass));
    assert.equal(open.headers["x-waiting-room-request-id"].value, v.request_id);
    const closed = await at(v.exp)(withPass(v.pass));
    assert.equal(closed.statusCode, 303);
  }
});
