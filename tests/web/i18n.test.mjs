// The page's words (shared/web/assets/i18n/<tag>.json) and how a page picks its language
// (shared/web/assets/lang.js): every language has every key, with the same placeholders, and
// the page, the room (shared/src/i18n.rs) and the files agree on which languages there are.
// Run: node --test tests/web/
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import test from "node:test";

const require = createRequire(import.meta.url);
const L = require("../../shared/web/assets/lang.js");
const dir = new URL("../../shared/web/assets/i18n/", import.meta.url);
const read = (name) => JSON.parse(readFileSync(new URL(name, dir), "utf8"));
const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
const visitor = files.filter((f) => !f.startsWith("panel-")).map((f) => f.replace(/\.json$/, ""));
const panel = files.filter((f) => f.startsWith("panel-")).map((f) => f.replace(/^panel-|\.json$/g, ""));

const placeholders = (text) => [...String(text).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
// A counted word's placeholders: those of its `other` form (a `one` form may spell the number).
const expected = (value) => placeholders(typeof value === "object" ? value.other : value);

function sameKeys(reference, tags, prefix) {
  const english = read(`${prefix}en.json`);
  for (const tag of tags) {
    const words = read(`${prefix}${tag}.json`);
    for (const key of Object.keys(english)) {
      assert.ok(key in words, `${prefix}${tag}.json lacks "${key}"`);
      const value = words[key];
      if (typeof english[key] === "object") {
        assert.equal(typeof value, "object", `${prefix}${tag}.json "${key}" is counted (an object of plural forms)`);
        assert.ok(typeof value.other === "string" && value.other, `${prefix}${tag}.json "${key}" has an "other" form`);
        const categories = new Intl.PluralRules(tag).resolvedOptions().pluralCategories;
        for (const form of Object.keys(value)) {
          assert.ok(categories.includes(form), `${prefix}${tag}.json "${key}": ${tag} has no plural form "${form}"`);
          for (const name of placeholders(value[form])) {
            assert.ok(expected(english[key]).includes(name), `${prefix}${tag}.json "${key}".${form} has an unknown {${name}}`);
          }
        }
      } else {
        assert.equal(typeof value, "string", `${prefix}${tag}.json "${key}" is text`);
        assert.ok(value.trim(), `${prefix}${tag}.json "${key}" is empty`);
      }
      assert.deepEqual(expected(value), expected(english[key]), `${prefix}${tag}.json "${key}" placeholders`);
    }
    for (const key of Object.keys(words)) assert.ok(key in english, `${prefix}${tag}.json has "${key}", which English lacks`);
  }
}

test("every language of the visitor page has every word, with the same placeholders", () => {
  assert.ok(visitor.length >= 9, `languages: ${visitor}`);
  sameKeys(read("en.json"), visitor, "");
});

test("every language of the control panel has every word, with the same placeholders", () => {
  assert.deepEqual(panel.sort(), [...L.PANEL].sort());
  sameKeys(read("panel-en.json"), panel, "panel-");
});

test("the page, the room and the files name the same languages", () => {
  assert.deepEqual([...L.VISITOR].sort(), [...visitor].sort());
  const rust = readFileSync(new URL("../../shared/src/i18n.rs", import.meta.url), "utf8");
  const listed = [...rust.matchAll(/\("([A-Za-z-]+)", include_str!/g)].map((m) => m[1]);
  assert.deepEqual(listed.sort(), [...visitor].sort());
  for (const tag of ["ja", "en", "zh-Hans", "zh-Hant", "ko", "es", "fr", "de", "pt"]) assert.ok(visitor.includes(tag), tag);
});

test("the link's lang, then the browser's languages, then English", () => {
  const pick = (wanted) => L.pick(wanted, L.VISITOR);
  assert.equal(pick(["ja-JP", "en-US"]), "ja");
  assert.equal(pick([null, "ja-JP"]), "ja", "no lang in the link");
  assert.equal(pick(["de", "ja-JP"]), "de");
  assert.equal(pick(["xx", "ko-KR"]), "ko", "an unknown lang is passed over");
  assert.equal(pick(["zh-TW"]), "zh-Hant");
  assert.equal(pick(["zh-Hant-HK"]), "zh-Hant");
  assert.equal(pick(["zh-Hans-HK"]), "zh-Hans");
  assert.equal(pick(["zh-CN"]), "zh-Hans");
  assert.equal(pick(["zh"]), "zh-Hans");
  assert.equal(pick(["pt-BR"]), "pt");
  assert.equal(pick(["nl", "sv"]), "en");
  assert.equal(L.pick(["fr-FR", "ja"], L.PANEL), "ja");
  assert.equal(L.pick(["fr-FR"], L.PANEL), "en");
});

test("Japanese reads as Japanese: no English word left in any visitor string", () => {
  const ja = read("ja.json");
  for (const [key, value] of Object.entries(ja)) {
    const texts = typeof value === "object" ? Object.values(value) : [value];
    for (const text of texts) {
      const bare = text.replace(/\{\w+\}/g, "");
      assert.ok(!/[A-Za-z]{2,}/.test(bare), `ja.json "${key}" has Latin words: ${text}`);
    }
  }
});
