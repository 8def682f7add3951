// Which language a page speaks: the `lang` the link asks for, else the first of the browser's
// languages (navigator.languages, the same list its Accept-Language header sends) that the page
// has strings for (assets/i18n/<tag>.json), else English. The room picks the same way for the
// page it renders itself (shared/src/i18n.rs); tests/web checks the two lists and the strings.
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.WR_LANG = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var VISITOR = ["en", "ja", "zh-Hans", "zh-Hant", "ko", "es", "fr", "de", "pt"];
  var PANEL = ["en", "ja"];

  // The tag of `available` that serves `tag`, or null. Chinese goes by script: Traditional for
  // an explicit Hant and for Taiwan, Hong Kong and Macau, Simplified otherwise.
  function match(tag, available) {
    var parts = String(tag || "").trim().toLowerCase().replace(/_/g, "-").split("-");
    var base = parts[0];
    if (!base) return null;
    var want = base;
    if (base === "zh") {
      var hant = parts.indexOf("hant") > 0 ||
        (parts.indexOf("hans") < 0 && (parts.indexOf("tw") > 0 || parts.indexOf("hk") > 0 || parts.indexOf("mo") > 0));
      want = hant ? "zh-hant" : "zh-hans";
    }
    for (var i = 0; i < available.length; i++) {
      if (available[i].toLowerCase() === want) return available[i];
    }
    return null;
  }

  // The first of `wanted` (most wanted first; empty entries skipped) found in `available`.
  function pick(wanted, available) {
    for (var i = 0; i < wanted.length; i++) {
      var found = match(wanted[i], available);
      if (found) return found;
    }
    return available[0];
  }

  return { VISITOR: VISITOR, PANEL: PANEL, pick: pick };
});
