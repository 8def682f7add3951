// The operator control panel: sign in with the admin key, watch one event's counters every
// 2 s, move the serving counter, pause/resume, change the strategy, reset, create events.
// Plain JS and hand-drawn SVG charts: the panel must work with no internet and no build step.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var WINDOW_MS = 5 * 60 * 1000; // both charts show the last five minutes
  var BUCKET_MS = 15000;         // admissions are summed per 15 s bar
  var KEY_STORE = "wr:admin-key";

  var API = apiBase();
  var adminKey = "";
  var events = [];          // configs from GET /admin/events
  var selected = "";        // event id on screen
  var config = null;        // its config, as last read
  var series = {};          // event id -> [{t, waiting}] gathered by this tab
  var timer = 0;
  var ticks = 0;
  var busy = false;

  var $ = function (id) { return document.getElementById(id); };
  // The panel speaks English and Japanese: the link's `lang`, else the browser's languages.
  var lang = window.WR_LANG.pick([new URLSearchParams(location.search).get("lang")]
    .concat(navigator.languages || [navigator.language]), window.WR_LANG.PANEL);
  var P = {}; // its words (assets/i18n/panel-<lang>.json); the HTML holds the English ones
  var numbers = new Intl.NumberFormat(lang);

  // A word with its placeholders ({n}) filled.
  function tr(key, vars) {
    return String(P[key] || "").replace(/\{(\w+)\}/g, function (_, name) {
      return vars && name in vars ? vars[name] : "";
    });
  }

  function time(ms) {
    return new Date(ms).toLocaleTimeString(lang);
  }

  // Same origin, or the API the deploy-time <meta name="wr-api"> names. Never an address from
  // the URL: the panel signs in with the saved key on load, so a crafted link would hand the
  // key to whoever it named. The sign-in form shows a foreign API's address.
  function apiBase() {
    var meta = document.querySelector('meta[name="wr-api"]');
    var raw = (meta && meta.content) || "";
    try {
      var url = raw ? new URL(raw, location.href) : null;
      return url && /^https?:$/.test(url.protocol) ? url.href.replace(/\/+$/, "") : "";
    } catch (e) {
      return "";
    }
  }

  // ---- API -----------------------------------------------------------------------------

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype.toString = function () {
    return this.message + (this.code ? " (" + this.code + ")" : "");
  };

  // Every admin call goes through here: bearer key, JSON both ways, errors as ApiError.
  function api(method, path, body) {
    var init = { method: method, cache: "no-store", headers: { Authorization: "Bearer " + adminKey } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) return data;
        var err = new ApiError(res.status, data && data.code, (data && data.error) || "HTTP " + res.status);
        if (res.status === 401) signOut(P.key_refused);
        throw err;
      });
    }, function () {
      throw new ApiError(0, "unreachable", P.unreachable);
    });
  }

  function eventPath(id, suffix) {
    return "/admin/events/" + encodeURIComponent(id) + (suffix || "");
  }

  // ---- sign in / out -------------------------------------------------------------------

  function signIn(key) {
    adminKey = key;
    return api("GET", "/admin/events").then(function (list) {
      // Kept per tab only (sessionStorage), never in a URL or a cookie.
      sessionStorage.setItem(KEY_STORE, key);
      document.body.setAttribute("data-view", "dashboard");
      $("login").hidden = true;
      $("app").hidden = false;
      $("session").hidden = false;
      showEvents(list);
      var fromHash = decodeURIComponent((location.hash.match(/event=([^&]+)/) || [])[1] || "");
      select(list.some(function (e) { return e.event_id === fromHash; }) ? fromHash : (list[0] || {}).event_id || "");
    });
  }

  function signOut(message) {
    clearTimeout(timer);
    adminKey = "";
    sessionStorage.removeItem(KEY_STORE);
    document.body.setAttribute("data-view", "login");
    $("app").hidden = true;
    $("session").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("admin-key").value = "";
    $("admin-key").focus();
  }

  // ---- events list ---------------------------------------------------------------------

  function showEvents(list) {
    var sorted = list.slice().sort(function (a, b) { return a.event_id < b.event_id ? -1 : 1; });
    // Rebuild only on change, so keyboard focus in the list survives the periodic refresh.
    if (JSON.stringify(sorted) === JSON.stringify(events) && $("event-list").childElementCount) return;
    events = sorted;
    var ul = $("event-list");
    ul.textContent = "";
    events.forEach(function (e) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "event-item";
      b.setAttribute("data-event", e.event_id);
      if (e.event_id === selected) b.setAttribute("aria-current", "true");
      var name = document.createElement("span");
      name.className = "event-item-name";
      name.textContent = e.name || e.event_id;
      var meta = document.createElement("span");
      meta.className = "event-item-meta";
      meta.textContent = e.event_id + " · " + strategyText(e.strategy);
      var badge = document.createElement("span");
      badge.className = "badge " + (e.paused ? "paused" : "open");
      badge.textContent = e.paused ? P.state_paused : P.state_open;
      b.append(name, badge, meta);
      b.addEventListener("click", function () { select(e.event_id); });
      li.append(b);
      ul.append(li);
    });
  }

  function strategyText(s) {
    if (!s || s.type === "Manual") return P.s_manual;
    if (s.type === "MaxSize") return tr("strategy_maxsize", { n: numbers.format(s.max_active) });
    if (s.type === "Periodic") return tr("strategy_periodic", { n: numbers.format(s.increment_by), s: numbers.format(s.interval_secs) });
    return s.type;
  }

  function select(id) {
    selected = id;
    config = null;
    hideError();
    history.replaceState(null, "", id ? "#event=" + encodeURIComponent(id) : location.pathname + location.search);
    var items = document.querySelectorAll(".event-item");
    for (var i = 0; i < items.length; i++) {
      if (items[i].getAttribute("data-event") === id) items[i].setAttribute("aria-current", "true");
      else items[i].removeAttribute("aria-current");
    }
    $("dash").hidden = !id;
    if (!id) return;
    var visitor = "waiting-room.html?event_id=" + encodeURIComponent(id);
    $("ev-visitor-link").href = visitor;
    $("audit").textContent = "";
    refresh(true);
  }

  // ---- polling -------------------------------------------------------------------------

  // One pass: metrics every time, the audit trail and the events list less often.
  function refresh(full) {
    clearTimeout(timer);
    if (!selected || !adminKey) return;
    var id = selected;
    ticks += 1;
    var calls = [api("GET", eventPath(id, "/metrics"))];
    if (full || ticks % 2 === 0) calls.push(api("GET", eventPath(id, "/audit?limit=25")).then(showAudit));
    if (full || ticks % 5 === 0) calls.push(api("GET", "/admin/events").then(showEvents));
    Promise.all(calls).then(function (results) {
      if (id !== selected) return; // the operator switched events meanwhile
      showMetrics(results[0], full);
      var time = document.createElement("span");
      time.className = "wide-only";
      time.textContent = " · " + new Date().toLocaleTimeString(lang);
      $("live").replaceChildren(P.live, time);
      $("live").className = "live ok";
    }, function (err) {
      if (!adminKey) return;
      $("live").textContent = P.connection_problem;
      $("live").className = "live bad";
      showError(err);
    }).then(function () {
      if (adminKey) timer = setTimeout(refresh, POLL_MS);
    });
  }

  function showMetrics(m, full) {
    var c = m.counters;
    config = m.config;
    $("ev-name").textContent = config.name || config.event_id;
    var state = $("ev-state");
    state.textContent = P["state_" + m.state] || m.state;
    state.className = "badge " + (m.state === "open" ? "open" : "paused");
    $("ev-summary").textContent = config.event_id + " · " + strategyText(config.strategy) +
      " · " + tr("summary_target", { url: config.target_url || P.target_none });
    set("m-waiting", m.waiting);
    set("m-serving", c.serving_counter);
    set("m-queue", c.queue_counter);
    $("m-rate").textContent = numbers.format(m.admission_rate_per_min);
    set("m-active", m.active_tokens);
    set("m-pending", m.pending_claims);
    set("m-completed", c.tokens_completed);
    set("m-abandoned", c.tokens_abandoned);
    set("m-expired", c.tokens_expired);
    set("m-pos-expired", c.positions_expired);
    var ch = m.challenges || { issued: 0, solved: 0, refused: 0 };
    $("m-challenges").textContent = [ch.issued, ch.solved, ch.refused].map(function (n) {
      return numbers.format(n);
    }).join(" / ");
    $("pause-toggle").textContent = config.paused ? P.resume : P.pause;
    $("pause-toggle").className = "button " + (config.paused ? "primary" : "");
    $("close-toggle").textContent = config.closed ? P.reopen_event : P.close_event;
    var draw = config.draw;
    $("draw-info").hidden = !draw;
    if (draw) {
      $("draw-info").textContent = tr("draw_info", {
        n: numbers.format(draw.size), time: new Date(draw.drawn_at_ms).toLocaleString(lang), seed: draw.seed
      });
    }
    // Only fill the form when the event is (re)opened, never under the operator's fingers.
    if (full) fillConfig(config);
    // Keep the list's badge in step with a pause or rename made here or elsewhere.
    var at = events.findIndex(function (e) { return e.event_id === config.event_id; });
    if (at >= 0 && JSON.stringify(events[at]) !== JSON.stringify(config)) {
      var copy = events.slice();
      copy[at] = config;
      showEvents(copy);
    }

    var points = series[config.event_id] || (series[config.event_id] = []);
    points.push({ t: m.at_ms, waiting: m.waiting });
    while (points.length && points[0].t < m.at_ms - WINDOW_MS) points.shift();
    drawWaiting(points, m.at_ms);
    drawAdmitted(m.recent_admissions || [], m.at_ms);
  }

  function set(id, n) {
    $(id).textContent = typeof n === "number" ? numbers.format(n) : "–";
  }

  function showAudit(entries) {
    var body = $("audit");
    body.textContent = "";
    if (!entries.length) {
      var empty = body.insertRow();
      var cell = empty.insertCell();
      cell.colSpan = 4;
      cell.className = "muted";
      cell.textContent = P.audit_empty;
      return;
    }
    entries.forEach(function (e) {
      var row = body.insertRow();
      var when = new Date(e.at_ms);
      row.insertCell().textContent = time(e.at_ms);
      row.cells[0].title = when.toISOString();
      row.insertCell().textContent = e.actor;
      row.insertCell().textContent = e.action.replace(/_/g, " ");
      // Details can be long (whole configs): clamped by CSS, full text on hover.
      var detail = document.createElement("div");
      detail.className = "detail";
      detail.textContent = e.detail || "";
      detail.title = e.detail || "";
      row.insertCell().append(detail);
    });
  }

  // ---- charts (hand-drawn SVG) ---------------------------------------------------------

  // Drawing units of the viewBox; the SVG scales to its card, text included.
  var W = 420, H = 170, PAD_L = 46, PAD_R = 8, PAD_T = 10, PAD_B = 22;

  function svgEl(name, attrs, text) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // Whole-number gridlines at a readable step (1, 2, 5 × 10^n), at most five of them.
  function axis(v) {
    if (v <= 4) return { step: 1, max: 4 };
    var raw = v / 4;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * p; }).find(function (s) { return s >= raw; });
    return { step: step, max: Math.ceil(v / step) * step };
  }

  // Axes shared by both charts; returns x/y scale functions.
  function frame(svg, now, peak) {
    svg.textContent = "";
    var a = axis(peak);
    var max = a.max;
    var x = function (t) { return PAD_L + (W - PAD_L - PAD_R) * (1 - (now - t) / WINDOW_MS); };
    var y = function (v) { return PAD_T + (H - PAD_T - PAD_B) * (1 - v / max); };
    for (var v = 0; v <= max; v += a.step) {
      svg.append(svgEl("line", { x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(svgEl("text", { x: PAD_L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, numbers.format(v)));
    }
    [5, 4, 3, 2, 1, 0].forEach(function (min) {
      var label = min ? tr("axis_min", { n: min }) : P.axis_now;
      svg.append(svgEl("text", { x: x(now - min * 60000), y: H - 6, class: "axis", "text-anchor": min === 5 ? "start" : min ? "middle" : "end" }, label));
    });
    return { x: x, y: y };
  }

  function drawWaiting(points, now) {
    var svg = $("chart-waiting");
    var peak = Math.max.apply(null, points.map(function (p) { return p.waiting; }).concat([0]));
    var s = frame(svg, now, peak);
    if (!points.length) return;
    var line = points.map(function (p, i) { return (i ? "L" : "M") + s.x(p.t).toFixed(1) + " " + s.y(p.waiting).toFixed(1); }).join(" ");
    var area = line + " L" + s.x(points[points.length - 1].t).toFixed(1) + " " + s.y(0) + " L" + s.x(points[0].t).toFixed(1) + " " + s.y(0) + " Z";
    svg.append(svgEl("path", { d: area, class: "area" }));
    svg.append(svgEl("path", { d: line, class: "line" }));
    var lastP = points[points.length - 1];
    svg.append(svgEl("circle", { cx: s.x(lastP.t), cy: s.y(lastP.waiting), r: 4, class: "dot" }));
    svg.setAttribute("aria-label", tr("chart_waiting_now", { n: numbers.format(lastP.waiting) }));
  }

  function drawAdmitted(admissions, now) {
    var svg = $("chart-admitted");
    var buckets = new Array(WINDOW_MS / BUCKET_MS).fill(0);
    var total = 0;
    admissions.forEach(function (a) {
      var age = now - a.at_ms;
      if (age < 0 || age >= WINDOW_MS) return;
      var n = Math.max(0, a.serving_counter - a.previous);
      buckets[buckets.length - 1 - Math.floor(age / BUCKET_MS)] += n;
      total += n;
    });
    var s = frame(svg, now, Math.max.apply(null, buckets));
    var bw = (W - PAD_L - PAD_R) / buckets.length;
    buckets.forEach(function (n, i) {
      if (!n) return;
      var top = s.y(n);
      svg.append(svgEl("rect", {
        x: (PAD_L + i * bw + 1.5).toFixed(1), y: top.toFixed(1),
        width: (bw - 3).toFixed(1), height: (s.y(0) - top).toFixed(1), class: "bar", rx: 2
      }, undefined));
      svg.lastChild.append(svgEl("title", {}, tr("admitted_bar", { n: numbers.format(n) })));
    });
    svg.setAttribute("aria-label", tr("chart_admitted_total", { n: numbers.format(total) }));
  }

  // ---- actions -------------------------------------------------------------------------

  // Runs one operator action: disables double clicks, shows the API's error, refreshes.
  function act(button, work) {
    if (busy) return Promise.resolve();
    busy = true;
    // A disabled button loses the focus: a keyboard user gets it back when it is enabled again.
    var focused = button && document.activeElement === button;
    if (button) button.disabled = true;
    hideError();
    return work().then(function (result) {
      refresh(false);
      return result;
    }, showError).then(function (result) {
      busy = false;
      if (button) button.disabled = false;
      if (focused) button.focus();
      return result;
    });
  }

  function admit(event) {
    event.preventDefault();
    var n = parseInt($("admit-count").value, 10);
    if (!(n >= 1)) return showError(new ApiError(0, "invalid_request", P.admit_invalid));
    act($("admit"), function () {
      return api("POST", "/increment_serving_counter", { event_id: selected, increment_by: n }).then(function (r) {
        $("admit-result").textContent = tr("admitted_result", { n: numbers.format(n), serving: numbers.format(r.serving_num) });
      });
    });
  }

  function toggleClosed() {
    if (!config) return;
    var verb = config.closed ? "/reopen" : "/close";
    act($("close-toggle"), function () { return api("POST", eventPath(selected, verb)); });
  }

  function createCodes(event) {
    event.preventDefault();
    var f = event.target.elements;
    var body = { count: parseInt(f.count.value, 10), uses: parseInt(f.uses.value, 10) };
    act(event.target.querySelector("[type=submit]"), function () {
      return api("POST", eventPath(selected, "/codes"), body).then(function (codes) {
        $("codes-out").value = codes.map(function (c) { return c.code; }).join("\n");
        $("codes-out").hidden = false;
      });
    });
  }

  // datetime-local inputs hold local time without a zone; the API takes ms since the epoch.
  function toLocalInput(ms) {
    if (ms == null) return "";
    var d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  }

  function fromLocalInput(value) {
    return value ? new Date(value).getTime() : null;
  }

  function togglePause() {
    if (!config) return;
    var verb = config.paused ? "/resume" : "/pause";
    act($("pause-toggle"), function () { return api("POST", eventPath(selected, verb)); });
  }

  // Reads the strategy fields of a form (config or create) into the API's tagged shape.
  function strategyFrom(form) {
    var type = form.elements.type.value;
    var int = function (name) { return parseInt(form.elements[name].value, 10); };
    if (type === "MaxSize") return { type: type, max_active: int("max_active") };
    if (type === "Periodic") return { type: type, increment_by: int("increment_by"), interval_secs: int("interval_secs") };
    return { type: "Manual" };
  }

  var STRATEGY_HELP = { Manual: "help_manual", MaxSize: "help_maxsize", Periodic: "help_periodic" };

  // Shows only the fields of the chosen strategy, and what it does.
  function syncStrategyFields(form) {
    var type = form.elements.type.value;
    form.querySelector(".strategy-help").textContent = P[STRATEGY_HELP[type]] || "";
    var labels = form.querySelectorAll("[data-for]");
    for (var i = 0; i < labels.length; i++) {
      var on = labels[i].getAttribute("data-for") === type;
      labels[i].hidden = !on;
      labels[i].querySelector("input").required = on;
    }
  }

  function fillConfig(c) {
    var f = $("config-form").elements;
    f.name.value = c.name || "";
    f.type.value = c.strategy.type;
    f.max_active.value = c.strategy.max_active || 100;
    f.increment_by.value = c.strategy.increment_by || 10;
    f.interval_secs.value = c.strategy.interval_secs || 30;
    f.token_ttl_secs.value = c.token_ttl_secs;
    f.position_expiry_secs.value = c.position_expiry_secs;
    f.target_url.value = c.target_url || "";
    f.message.value = c.message || "";
    var look = c.appearance || {};
    f.page_title.value = look.title || "";
    f.logo_url.value = look.logo_url || "";
    f.accent_color.value = look.accent_color || "";
    f.rate_limit_per_min.value = c.rate_limit_per_min || "";
    f.safety_net.checked = !!c.safety_net;
    var challenge = c.challenge || { mode: "off", difficulty: 18, pressure_joins_per_sec: 50 };
    f.challenge_mode.value = challenge.mode;
    f.challenge_difficulty.value = challenge.difficulty;
    f.challenge_pressure.value = challenge.pressure_joins_per_sec;
    var sch = c.schedule || {};
    f.prequeue_at.value = toLocalInput(sch.prequeue_at_ms);
    f.start_at.value = toLocalInput(sch.start_at_ms);
    f.end_at.value = toLocalInput(sch.end_at_ms);
    syncStrategyFields($("config-form"));
    $("config-result").textContent = "";
  }

  function saveConfig(event) {
    event.preventDefault();
    if (!config) return;
    var form = event.target;
    var f = form.elements;
    // PUT takes the full config: start from what the server last said, change the form fields.
    var next = Object.assign({}, config, {
      name: f.name.value.trim(),
      strategy: strategyFrom(form),
      token_ttl_secs: parseInt(f.token_ttl_secs.value, 10),
      position_expiry_secs: parseInt(f.position_expiry_secs.value, 10),
      target_url: f.target_url.value.trim(),
      message: f.message.value.trim(),
      appearance: {
        title: f.page_title.value.trim(),
        logo_url: f.logo_url.value.trim(),
        accent_color: f.accent_color.value.trim()
      },
      rate_limit_per_min: f.rate_limit_per_min.value ? parseInt(f.rate_limit_per_min.value, 10) : null,
      safety_net: f.safety_net.checked,
      challenge: {
        mode: f.challenge_mode.value,
        difficulty: parseInt(f.challenge_difficulty.value, 10),
        pressure_joins_per_sec: parseInt(f.challenge_pressure.value, 10)
      },
      schedule: {
        prequeue_at_ms: fromLocalInput(f.prequeue_at.value),
        start_at_ms: fromLocalInput(f.start_at.value),
        end_at_ms: fromLocalInput(f.end_at.value)
      }
    });
    act(form.querySelector("[type=submit]"), function () {
      return api("PUT", eventPath(selected), next).then(function (saved) {
        fillConfig(saved);
        $("config-result").textContent = tr("saved_at", { time: time(Date.now()) });
      });
    });
  }

  function askReset() {
    fillWith($("reset-dialog-title"), P.reset_dialog_title, "{name}", $("reset-name"));
    $("reset-name").textContent = (config && config.name) || selected;
    $("reset-dialog").returnValue = "";
    $("reset-dialog").showModal();
  }

  function onResetClosed() {
    if ($("reset-dialog").returnValue !== "confirm") return;
    var id = selected;
    act($("reset"), function () {
      return api("POST", "/reset_initial_state", { event_id: id }).then(function () {
        series[id] = []; // the old curve would now be misleading
      });
    });
  }

  function openCreate() {
    var form = $("create-form");
    form.reset();
    syncStrategyFields(form);
    $("create-error").textContent = "";
    $("create-dialog").showModal();
  }

  function create(event) {
    event.preventDefault(); // keep the dialog open until the API said yes
    var form = event.target;
    var f = form.elements;
    var body = { event_id: f.event_id.value.trim(), strategy: strategyFrom(form) };
    if (f.name.value.trim()) body.name = f.name.value.trim();
    if (f.target_url.value.trim()) body.target_url = f.target_url.value.trim();
    $("create-error").textContent = "";
    api("POST", "/admin/events", body).then(function (created) {
      $("create-dialog").close();
      return api("GET", "/admin/events").then(function (list) {
        showEvents(list);
        select(created.event_id);
      });
    }).catch(function (err) {
      $("create-error").textContent = String(err);
    });
  }

  // ---- errors --------------------------------------------------------------------------

  function showError(err) {
    if (err && err.status === 401) return; // already back at the sign-in form
    $("error-text").textContent = String(err && err.message ? err : tr("unexpected", { error: err }));
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
  }

  // ---- start ---------------------------------------------------------------------------

  // Loads the panel's words, then starts; on failure it stays in English (the HTML's words).
  function start() {
    fetch("assets/i18n/panel-" + lang + ".json").then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (words) {
      P = words;
    }, function () {
      lang = "en";
      return fetch("assets/i18n/panel-en.json").then(function (res) { return res.json(); }).then(function (words) { P = words; });
    }).catch(function () { /* the HTML's English words stay */ }).then(translate).then(init);
  }

  function translate() {
    document.documentElement.lang = lang;
    document.title = P.page_title || document.title;
    var nodes = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < nodes.length; i++) {
      var word = P[nodes[i].getAttribute("data-i18n")];
      if (word) nodes[i].textContent = word;
    }
    ["aria-label", "placeholder"].forEach(function (attr) {
      var marked = document.querySelectorAll("[data-i18n-" + attr + "]");
      for (var j = 0; j < marked.length; j++) {
        var text = P[marked[j].getAttribute("data-i18n-" + attr)];
        if (text) marked[j].setAttribute(attr, text);
      }
    });
    var help = $("login-help");
    if (P.login_help) fillWith(help, P.login_help, "{command}", help.querySelector("code"));
  }

  // Sets `el`'s text to `text` with the element `node` where `slot` stands (a command or a
  // name inside a sentence, in whichever place the language puts it).
  function fillWith(el, text, slot, node) {
    var at = text.indexOf(slot);
    if (at < 0) return;
    el.replaceChildren(text.slice(0, at), node, text.slice(at + slot.length));
  }

  function init() {
    $("login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var key = $("admin-key").value.trim();
      $("login-error").textContent = "";
      $("sign-in").disabled = true;
      signIn(key).catch(function (err) {
        if (err.status !== 401) $("login-error").textContent = String(err);
      }).then(function () { $("sign-in").disabled = false; });
    });
    $("sign-out").addEventListener("click", function () { signOut(""); });
    $("admit-form").addEventListener("submit", admit);
    $("pause-toggle").addEventListener("click", togglePause);
    $("close-toggle").addEventListener("click", toggleClosed);
    $("codes-form").addEventListener("submit", createCodes);
    $("config-form").addEventListener("submit", saveConfig);
    $("config-form").elements.type.addEventListener("change", function () { syncStrategyFields($("config-form")); });
    $("create-form").elements.type.addEventListener("change", function () { syncStrategyFields($("create-form")); });
    $("reset").addEventListener("click", askReset);
    $("reset-dialog").addEventListener("close", onResetClosed);
    $("new-event").addEventListener("click", openCreate);
    $("create-form").addEventListener("submit", create);
    $("create-cancel").addEventListener("click", function () { $("create-dialog").close(); });
    $("error-close").addEventListener("click", hideError);

    if (API) $("login-api").textContent = tr("api_at", { api: API });
    var saved = sessionStorage.getItem(KEY_STORE);
    if (saved) {
      signIn(saved).catch(function (err) {
        if (err.status !== 401) signOut(String(err));
      });
    } else {
      $("admin-key").focus();
    }
  }

  start();
})();
