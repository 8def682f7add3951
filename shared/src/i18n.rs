//! The visitor page's words in every language it speaks, from the very files the page loads
//! (`shared/web/assets/i18n/<tag>.json`), which of them a request asks for, and numbers and
//! plurals for each: what the room needs to render the waiting page itself for browsers without
//! JavaScript. The page picks its language the same way (`assets/lang.js`); `tests/web` checks
//! that the two lists agree and that no language lacks a key.

use std::sync::LazyLock;

use serde_json::{Map, Value};

/// Every language of the visitor page, English first (the fallback for a missing word), with its
/// strings file.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", include_str!("../web/assets/i18n/en.json")),
    ("ja", include_str!("../web/assets/i18n/ja.json")),
    ("zh-Hans", include_str!("../web/assets/i18n/zh-Hans.json")),
    ("zh-Hant", include_str!("../web/assets/i18n/zh-Hant.json")),
    ("ko", include_str!("../web/assets/i18n/ko.json")),
    ("es", include_str!("../web/assets/i18n/es.json")),
    ("fr", include_str!("../web/assets/i18n/fr.json")),
    ("de", include_str!("../web/assets/i18n/de.json")),
    ("pt", include_str!("../web/assets/i18n/pt.json")),
];

/// The files parsed once; a test below proves each one parses, so an empty map never ships.
static PARSED: LazyLock<Vec<Map<String, Value>>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|(_, json)| serde_json::from_str(json).unwrap_or_default())
        .collect()
});

/// The language tag of `LANGUAGES` that serves `tag`, if any. Chinese goes by script:
/// Traditional for an explicit Hant and for Taiwan, Hong Kong and Macau, Simplified otherwise.
fn matching(tag: &str) -> Option<usize> {
    let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
    let parts: Vec<&str> = tag.split('-').collect();
    let base = *parts.first()?;
    let want = if base == "zh" {
        let has = |p: &str| parts[1..].contains(&p);
        let hant = has("hant") || (!has("hans") && (has("tw") || has("hk") || has("mo")));
        if hant { "zh-hant" } else { "zh-hans" }
    } else {
        base
    };
    LANGUAGES
        .iter()
        .position(|(t, _)| t.eq_ignore_ascii_case(want))
}

/// The language for a request: the link's `lang` when the page speaks it, else the first
/// language of `Accept-Language` (by quality, then order) it speaks, else English.
pub fn negotiate(lang: Option<&str>, accept_language: Option<&str>) -> Words {
    let mut wanted: Vec<(f32, usize, &str)> = accept_language
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut fields = item.split(';');
            let tag = fields.next()?.trim();
            let quality = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (quality > 0.0 && !tag.is_empty() && tag != "*").then_some((quality, order, tag))
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let index = lang
        .and_then(matching)
        .or_else(|| wanted.iter().find_map(|(_, _, tag)| matching(tag)))
        .unwrap_or(0);
    Words { index }
}

/// One language's words.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    index: usize,
}

impl Words {
    /// The BCP 47 tag, for `<html lang>` and links.
    pub fn tag(&self) -> &'static str {
        LANGUAGES[self.index].0
    }

    fn value(&self, key: &str) -> Option<&'static Value> {
        PARSED[self.index].get(key).or_else(|| PARSED[0].get(key))
    }

    /// A word with no count, placeholders left as they are.
    pub fn text(&self, key: &str) -> &'static str {
        self.value(key).and_then(Value::as_str).unwrap_or("")
    }

    /// A word with its placeholders (`{name}`) filled; a counted word in the plural form for
    /// `count` (the forms each file gives, else its `other`).
    pub fn fill(&self, key: &str, vars: &[(&str, &str)], count: Option<u64>) -> String {
        let raw = match self.value(key) {
            Some(Value::Object(forms)) => {
                let category = self.plural(count.unwrap_or(0));
                forms
                    .get(category)
                    .or_else(|| forms.get("other"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            }
            Some(Value::String(text)) => text,
            _ => "",
        };
        let mut out = String::with_capacity(raw.len() + 16);
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    if let Some((_, value)) = vars.iter().find(|(n, _)| *n == name) {
                        out.push_str(value);
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The CLDR plural category of a whole number in this language (cardinal): what
    /// `Intl.PluralRules` answers in the browser.
    fn plural(&self, n: u64) -> &'static str {
        match self.tag() {
            "en" | "de" | "es" if n == 1 => "one",
            "fr" | "pt" if n <= 1 => "one",
            _ => "other",
        }
    }

    /// A whole number with the language's grouping, as `Intl.NumberFormat` writes it: 1,234
    /// (English, Japanese, Chinese, Korean), 1.234 (German, Portuguese; Spanish from five
    /// digits), 1 234 with a narrow no-break space (French).
    pub fn number(&self, n: u64) -> String {
        let (separator, min_digits) = match self.tag() {
            "de" | "pt" => (".", 4),
            "es" => (".", 5),
            "fr" => ("\u{202f}", 4),
            _ => (",", 4),
        };
        let digits = n.to_string();
        if digits.len() < min_digits {
            return digits;
        }
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strings_file_parses_with_every_key_of_english() {
        let english = &PARSED[0];
        assert!(english.len() > 50, "the English file has its words");
        for ((tag, json), parsed) in LANGUAGES.iter().zip(PARSED.iter()) {
            let fresh: Map<String, Value> =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{tag}.json: {e}"));
            assert_eq!(&fresh, parsed);
            for key in english.keys() {
                assert!(parsed.contains_key(key), "{tag}.json lacks {key}");
            }
        }
    }

    #[test]
    fn the_link_then_the_browser_choose_the_language() {
        let tag = |lang, accept| negotiate(lang, accept).tag();
        assert_eq!(tag(None, Some("ja-JP,ja;q=0.9,en-US;q=0.8")), "ja");
        assert_eq!(tag(Some("de"), Some("ja-JP")), "de");
        assert_eq!(
            tag(Some("xx"), Some("ko-KR")),
            "ko",
            "an unknown lang is ignored"
        );
        assert_eq!(tag(None, Some("zh-TW,zh;q=0.9")), "zh-Hant");
        assert_eq!(tag(None, Some("zh-Hant-HK")), "zh-Hant");
        assert_eq!(tag(None, Some("zh-CN")), "zh-Hans");
        assert_eq!(tag(None, Some("zh")), "zh-Hans");
        assert_eq!(tag(None, Some("nl;q=1, fr;q=0.4, pt-BR;q=0.7")), "pt");
        assert_eq!(tag(None, Some("fr;q=0, es")), "es", "q=0 means not wanted");
        assert_eq!(tag(None, Some("nl, *")), "en");
        assert_eq!(tag(None, None), "en");
    }

    #[test]
    fn numbers_and_plurals_as_intl_writes_them() {
        let words = |tag| negotiate(Some(tag), None);
        assert_eq!(words("ja").number(1_234_567), "1,234,567");
        assert_eq!(words("de").number(1_234), "1.234");
        assert_eq!(words("es").number(1_234), "1234");
        assert_eq!(words("es").number(12_345), "12.345");
        assert_eq!(words("fr").number(1_234), "1\u{202f}234");
        assert_eq!(words("en").number(999), "999");
        let en = words("en");
        assert_eq!(
            en.fill("retry_in", &[("s", "1")], Some(1)),
            "Next try in 1 second."
        );
        assert_eq!(
            en.fill("retry_in", &[("s", "5")], Some(5)),
            "Next try in 5 seconds."
        );
        assert_eq!(
            words("ja").fill("retry_in", &[("s", "1")], Some(1)),
            "1秒後に再試行します。"
        );
        assert_eq!(
            words("fr").fill("minutes", &[("n", "0")], Some(0)),
            "0 minute",
            "French counts 0 as one"
        );
    }
}
