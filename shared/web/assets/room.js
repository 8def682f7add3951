// The visitor page: join the line once, ask for the position until it has one, keep both
// across reloads, then poll only the event's shared document (/event_state, which the CDN
// answers for every visitor at once) at a pace that slows with the distance to the front. The
// page works out its place, the people ahead, the wait and its turn itself (queue.js), and when
// its turn comes claims the token and goes on to the event's site.
// Plain JS on purpose: this page is loaded by every visitor of a burst, so it stays tiny.
(function () {
  "use strict";

  var Q = window.WR_QUEUE;
  var params = new URLSearchParams(location.search);
  // The page's language: the link's `lang`, else the browser's own order of languages.
  var lang = window.WR_LANG.pick([params.get("lang")].concat(navigator.languages || [navigator.language]),
    window.WR_LANG.VISITOR);
  var S = null; // its strings (assets/i18n/<lang>.json), loaded before anything is drawn
  var eventId = params.get("event_id") || "";
  var API = apiBase();

  // Every route this page calls. infra/edge.py checks that the template routes each of them
  // (an API route and a CloudFront behaviour), so the page cannot call what AWS does not serve.
  var ROUTES = {
    join: "/assign_queue_num",
    position: "/queue_num",
    state: "/event_state",
    claim: "/generate_token"
  };

  // Backoff on errors: 1 s, 2 s, 4 s ... capped, so a struggling API is not stampeded.
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  // A single failed poll is not worth alarming the visitor; two in a row are.
  var OFFLINE_AFTER_FAILURES = 2;
  // Screen readers hear position updates at most this often, state changes at once.
  var ANNOUNCE_EVERY_MS = 30000;

  var storageKey = "wr:" + API + ":" + eventId;
  // The visitor's own record, kept across reloads: {id, joinedAt, arrival, entryMs,
  // firstAhead, claimed}. `arrival` is its number in order of arrival (its place unless a
  // pre-queue draw shuffles it); once known, the page never asks the room for it again.
  var place = load();
  var last = null;    // what was last shown, kept so "offline" still shows the numbers
  var failures = 0;
  var asks = 0;       // position look-ups of an unplaced request, for their backoff
  var offsetMs = null; // the room's clock minus this device's, from the answers' Date header
  var inFlight = false; // one request at a time: a second join would cost a second place
  var timer = 0;
  var countdown = 0; // ticks the "next try in N seconds" line while offline
  var state = "";
  var announced = { text: "", at: 0 };
  var numbers = new Intl.NumberFormat(lang);
  var plurals = new Intl.PluralRules(lang);
  var turnNotified = false; // the background nudges (title, sound, notification) go off once

  var $ = function (id) { return document.getElementById(id); };

  // ---- configuration -------------------------------------------------------------------

  // Same origin, or the API the deploy-time <meta name="wr-api"> names (pages and API on
  // different origins). Never an address from the URL: a crafted link must not send a visitor
  // to a look-alike API that redirects them anywhere with their token.
  function apiBase() {
    var meta = document.querySelector('meta[name="wr-api"]');
    var raw = (meta && meta.content) || "";
    if (!raw) return "";
    try {
      var url = new URL(raw, location.href);
      if (url.protocol !== "https:" && url.protocol !== "http:") return "";
      return url.href.replace(/\/+$/, "");
    } catch (e) {
      return "";
    }
  }

  // ---- the saved place -----------------------------------------------------------------

  // localStorage can be unavailable (privacy modes): the page then still works for this visit.
  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(storageKey) || "null");
      return saved && typeof saved.id === "string" ? saved : null;
    } catch (e) {
      return null;
    }
  }

  function save() {
    try {
      localStorage.setItem(storageKey, JSON.stringify(place));
    } catch (e) { /* kept in memory only */ }
  }

  function forget() {
    place = null;
    try {
      localStorage.removeItem(storageKey);
    } catch (e) { /* nothing saved */ }
  }

  // ---- text ----------------------------------------------------------------------------

  function t(key, vars, count) {
    var value = S[key];
    if (value && typeof value === "object") value = value[plurals.select(count)] || value.other;
    return String(value).replace(/\{(\w+)\}/g, function (_, name) {
      return vars && name in vars ? vars[name] : "";
    });
  }

  function num(n) {
    return numbers.format(n);
  }

  function etaText(seconds) {
    if (seconds === null || seconds === undefined) return S.eta_estimating;
    if (seconds < 60) return S.eta_soon;
    var minutes = Math.ceil(seconds / 60);
    if (minutes < 90) return t("eta_minutes", { n: num(minutes) }, minutes);
    return t("eta_hours", { h: Math.floor(minutes / 60), m: minutes % 60 });
  }

  // ---- the room's clock ----------------------------------------------------------------

  // Countdowns and the claim deadline run on the room's clock. Each answer's Date (plus the
  // Age a cache adds) is at most the room's time when it arrived, so the largest offset seen is
  // the best estimate (within the Date header's one second).
  function learnClock(res) {
    var date = Date.parse(res.headers.get("Date") || "");
    if (isNaN(date)) return;
    var sample = date + (Number(res.headers.get("Age")) || 0) * 1000 - Date.now();
    if (offsetMs === null || sample > offsetMs) offsetMs = sample;
  }

  function roomNow() {
    return Date.now() + (offsetMs || 0);
  }

  // ---- talking to the API --------------------------------------------------------------

  // Resolves with {status, data, retryAfter}; rejects only when the network itself failed.
  // `shared`: an answer every visitor of the event shares, which the browser and the CDN may
  // keep briefly (it says for how long); every other answer is this visitor's own.
  function call(method, path, body, shared) {
    var init = { method: method, cache: shared ? "default" : "no-store", headers: {} };
    if (body) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (res) {
      learnClock(res);
      return res.json().catch(function () { return null; }).then(function (data) {
        return {
          status: res.status,
          data: data || {},
          retryAfter: Number(res.headers.get("Retry-After")) || 0
        };
      });
    });
  }

  function eventQuery() {
    return "?event_id=" + encodeURIComponent(eventId);
  }

  // Anything but a clear answer (5xx, 429, garbage) is treated like a network failure.
  function Transient(retryAfter) {
    this.retryAfter = retryAfter || 0;
  }

  function schedule(ms) {
    clearTimeout(timer);
    // Jitter spreads a crowd that loaded the page at the same moment.
    timer = setTimeout(tick, Math.round(ms * (0.85 + Math.random() * 0.3)));
  }

  // One step: join once, ask for the position until there is one, then watch the shared
  // document only.
  function tick() {
    if (inFlight) return; // a tab switch or a button press while a request is out
    clearTimeout(timer);
    if (!eventId) {
      render("unknown", null, { lead: S.missing_event });
      return;
    }
    inFlight = true;
    var step = !place ? join() : typeof place.arrival !== "number" ? locate() : watch();
    step.then(function () {
      failures = 0;
    }, offline).then(function () {
      inFlight = false;
    });
  }

  // Joins; when the room asks for a solved challenge, solves it in a worker and joins with
  // it (a refused or expired solution comes back with a fresh challenge: a few rounds at most).
  function join(proof, rounds) {
    render("joining");
    var body = { event_id: eventId };
    if (proof) {
      body.challenge = proof.challenge;
      body.solution = proof.solution;
    }
    return call("POST", ROUTES.join, body).then(function (r) {
      if (r.status === 202 && r.data.api_request_id) {
        place = { id: r.data.api_request_id, joinedAt: Date.now(), arrival: null, entryMs: null, firstAhead: null, claimed: false };
        save();
        asks = 0;
        schedule(Q.unplacedDelayMs(0)); // the position is assigned within a fraction of a second
      } else if (r.status === 403 && r.data.challenge && (rounds || 0) < 3) {
        var challenge = r.data.challenge;
        return solve(challenge).then(function (solution) {
          return join({ challenge: challenge.challenge, solution: solution }, (rounds || 0) + 1);
        });
      } else if (r.status === 404 || r.status === 400) {
        render("unknown"); // no such event, or an id no event could have
      } else if (r.status === 409 && r.data.code === "event_not_open") {
        return notOpen();
      } else if (r.status === 410) {
        render("closed");
      } else {
        throw new Transient(r.retryAfter);
      }
    });
  }

  // The challenge's nonce, found by a worker (assets/solve.js) so the page stays responsive.
  function solve(challenge) {
    return new Promise(function (resolve, reject) {
      var worker = new Worker("assets/solve.js");
      worker.onmessage = function (event) {
        worker.terminate();
        if (event.data && typeof event.data.solution === "string") resolve(event.data.solution);
        else reject(new Transient(0));
      };
      worker.onerror = function () {
        worker.terminate();
        reject(new Transient(0));
      };
      worker.postMessage({ challenge: challenge.challenge, difficulty: challenge.difficulty });
    });
  }

  // Before the line opens: show when, count down, and try joining again at the opening.
  function notOpen() {
    return readState().then(function (doc) {
      if (!doc) return;
      render("not_open", shown(doc, null), {
        lead: doc.opens_at_ms != null ? t("not_open_body", { time: clockTime(doc.opens_at_ms) }) : S.not_open_body_unknown
      });
      if (doc.opens_at_ms != null) startCountdown(Date.now() + (doc.opens_at_ms - roomNow()), "opens_in");
      schedule(Q.untilDelayMs(doc.opens_at_ms, roomNow(), doc.poll));
    });
  }

  function clockTime(ms) {
    return new Date(ms - (offsetMs || 0)).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }

  // Asks for the request's position until the room has assigned one. The room answers "not
  // yet" (202) until then and "unknown" (404) once it never will (a reset, or a request lost
  // longer ago than it waits for any), so the page never gives up on a request sooner.
  function locate() {
    var query = eventQuery() + "&request_id=" + encodeURIComponent(place.id);
    return call("GET", ROUTES.position + query).then(function (r) {
      var placed = r.status === 200 || (r.status === 202 && r.data.code === "awaiting_draw");
      if (placed && typeof r.data.arrival === "number") {
        place.arrival = r.data.arrival;
        place.entryMs = r.data.entry_time_ms;
        save();
        return watch();
      }
      if (r.status === 202) {
        render("joining");
        asks += 1;
        return schedule(Q.unplacedDelayMs(asks));
      }
      if (r.status === 404 && r.data.code === "unknown_event") return render("unknown");
      if (r.status === 404 || r.status === 400) {
        // Forgotten by the room, or an id it never made (corrupted storage): start afresh.
        forget();
        return join();
      }
      if (r.status === 410) return render("closed");
      throw new Transient(r.retryAfter);
    });
  }

  // The shared event document, or null once the page has shown that the event is unknown.
  function readState() {
    return call("GET", ROUTES.state + eventQuery(), null, true).then(function (r) {
      if (r.status === 200) {
        brand(r.data);
        return r.data;
      }
      if (r.status === 404 && r.data.code === "unknown_event") {
        render("unknown");
        return null;
      }
      throw new Transient(r.retryAfter);
    });
  }

  // A placed visitor polls the shared document only, and works out its standing itself.
  function watch() {
    return readState().then(function (doc) {
      if (!doc || !place) return;
      if (place.entryMs != null && doc.reset_at_ms > place.entryMs) {
        // The room was reset since this visitor joined: that place is gone, take a new one.
        forget();
        return join();
      }
      var s = Q.standing(doc, place.arrival, roomNow(), place.claimed);
      if (s.kind === "closed") return render("closed", shown(doc, s));
      if (s.kind === "expired") return render("expired", shown(doc, s));
      if (s.kind === "served") {
        // In a background tab the visitor would land on the site without seeing it and spend
        // their session away: the page calls them back instead and goes in when they look.
        if (document.visibilityState === "hidden" && !place.claimed) return yourTurn(doc, s);
        return admit(doc);
      }
      if (s.kind === "prequeue") {
        // The order is drawn at the start, so arriving early buys nothing.
        render("prequeue", shown(doc, s), {
          lead: doc.starts_at_ms != null ? t("prequeue_body", { time: clockTime(doc.starts_at_ms) }) : S.prequeue_body_unknown
        });
        if (doc.starts_at_ms != null) startCountdown(Date.now() + (doc.starts_at_ms - roomNow()), "starts_in");
        return schedule(s.nextPollMs);
      }
      if (place.firstAhead == null) {
        place.firstAhead = s.ahead;
        save();
      }
      render(s.kind, shown(doc, s));
      schedule(s.nextPollMs);
    });
  }

  // The visitor's turn came while the tab was in the background: say so in the tab's title,
  // with a sound and a notification when the visitor asked for them, and count down the time
  // left to go in. Looking at the tab again (or "Go in now") claims the token.
  function yourTurn(doc, s) {
    var name = doc.name || eventId;
    var deadline = s.deadlineMs;
    render("turn", shown(doc, null), {
      lead: deadline != null ? t("turn_waiting_body", { time: clockTime(deadline) }) : "",
      go: true
    });
    if (deadline != null) startCountdown(Date.now() + (deadline - roomNow()), "claim_left");
    if (!turnNotified) {
      turnNotified = true;
      if (soundOn()) chime();
      if (window.Notification && Notification.permission === "granted") {
        try {
          var note = new Notification(S.notify_title, { body: t("notify_body", { event: name }), tag: "wr-turn:" + eventId });
          note.onclick = function () { window.focus(); note.close(); };
        } catch (e) { /* notifications from a page are refused on some phones: the title stays */ }
      }
    }
    // Until the deadline passes: the next poll then shows "expired".
    schedule(deadline != null ? Math.max(1000, Math.min(30000, deadline - roomNow())) : 30000);
  }

  // ---- the visitor's nudges ------------------------------------------------------------

  var SOUND_KEY = "wr:sound";
  var audio = null;

  function soundOn() {
    try {
      return localStorage.getItem(SOUND_KEY) === "1";
    } catch (e) {
      return $("sound").checked;
    }
  }

  // Two soft tones, synthesised (no file to fetch). The audio context is made when the visitor
  // ticks the box: browsers let a page play sound only after a gesture.
  function chime() {
    if (!audio) return;
    var at = audio.currentTime;
    [[660, 0], [880, 0.22]].forEach(function (tone) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, at + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.2, at + tone[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + tone[1] + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start(at + tone[1]);
      osc.stop(at + tone[1] + 0.4);
    });
  }

  function setSound(on) {
    try {
      localStorage.setItem(SOUND_KEY, on ? "1" : "0");
    } catch (e) { /* the checkbox holds it for this visit */ }
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (on && !audio && Ctx) audio = new Ctx();
    if (on && audio) chime(); // what it will sound like
  }

  function showNotifyChoice() {
    var can = !!window.Notification;
    $("notify").hidden = !can || Notification.permission !== "default";
    $("notify-state").hidden = !can || Notification.permission !== "granted";
  }

  // ---- the operator's words ------------------------------------------------------------

  // The event's own title, logo and colour, as text and checked values only: nothing the
  // operator types is ever read as HTML.
  function brand(doc) {
    $("brand").textContent = doc.title || S.brand;
    var logo = /^https:\/\//i.test(doc.logo_url || "") ? doc.logo_url : "";
    if (logo && $("brand-logo").getAttribute("src") !== logo) $("brand-logo").src = logo;
    $("brand-logo").hidden = !logo;
    document.querySelector(".brand svg").style.display = logo ? "none" : "";
    var accent = /^#[0-9a-f]{6}$/i.test(doc.accent_color || "") ? doc.accent_color : "";
    if (accent) document.documentElement.style.setProperty("--accent", accent);
    else document.documentElement.style.removeProperty("--accent");
  }

  // What the page shows, from the document and the visitor's standing in it.
  function shown(doc, s) {
    return {
      name: doc.name,
      title: doc.title || "",
      message: doc.message || "",
      assigned: !!(s && s.place != null),
      queue_number: s ? s.place : null,
      ahead: s ? s.ahead : null,
      serving_counter: doc.serving_counter,
      eta_seconds: s ? s.etaSeconds : null
    };
  }

  // The admission step: claim the token set (idempotent: a reload after admission gets the
  // same tokens back), then go on to the event's site with it, or show it as a pass to copy.
  function admit(doc) {
    var name = doc.name || eventId;
    render("admitted", shown(doc, null), { lead: t("admitted_redirect", { event: name }) });
    return call("POST", ROUTES.claim, { event_id: eventId, request_id: place.id }).then(function (r) {
      if (r.status === 202) return schedule(1000); // our copy of the counter ran ahead of the room's
      if (r.status === 410 && r.data.code === "event_closed") return render("closed", shown(doc, null));
      if (r.status === 410) return render(r.data.code === "session_ended" ? "ended" : "expired", shown(doc, null));
      if (r.status === 404 && r.data.code === "unknown_event") return render("unknown");
      if (r.status === 404) {
        // The room was reset since we joined: our request is gone, take a new place.
        forget();
        return join();
      }
      if (r.status !== 200 || !r.data.access_token) throw new Transient(r.retryAfter);
      place.claimed = true;
      save();
      var target = doc.target_url || "";
      if (/^https?:\/\//i.test(target)) {
        // A gate's hand-over sets the pass as a cookie and sends the visitor on to the address
        // the gate turned them away from (a path on the gate: the gate checks it again). The
        // gate on CloudFront takes the room's edge pass instead of the token.
        var handoff = isHandoff(target);
        var url = handoff && r.data.pass
          ? withParam(target, "wr_pass", r.data.pass)
          : withParam(target, "wr_token", r.data.access_token);
        var back = returnPath();
        if (back && handoff) url = withParam(url, "return", back);
        $("continue").href = url;
        render("admitted", shown(doc, null), { lead: t("admitted_redirect", { event: name }), link: true });
        // replace(): the Back button should not land on a page that sends the visitor on again.
        location.replace(url);
        return;
      }
      $("token").value = r.data.access_token;
      var minutes = Math.max(1, Math.round((r.data.expires_in || 0) / 60));
      render("admitted", shown(doc, null), {
        title: S.admitted_in_title,
        lead: t("admitted_in_body", { minutes: t("minutes", { n: num(minutes) }, minutes) }),
        token: true
      });
    });
  }

  // The address the gate sent the visitor here from: a path on the gate, nothing else.
  function returnPath() {
    var back = params.get("return") || "";
    return /^\/(?![\/\\])[\x21-\x7e]*$/.test(back) ? back : "";
  }

  function isHandoff(target) {
    try {
      return new URL(target).pathname === "/__wr/pass";
    } catch (e) {
      return false;
    }
  }

  // Appends name=value to the target, keeping its own query and fragment intact.
  function withParam(target, name, value) {
    var hash = "";
    var at = target.indexOf("#");
    if (at >= 0) {
      hash = target.slice(at);
      target = target.slice(0, at);
    }
    var sep = target.indexOf("?") >= 0 ? (/[?&]$/.test(target) ? "" : "&") : "?";
    return target + sep + name + "=" + encodeURIComponent(value) + hash;
  }

  function offline(error) {
    if (!(error instanceof Transient) && !(error instanceof TypeError)) {
      // A bug, not the network: surface it for developers but keep the visitor's place.
      setTimeout(function () { throw error; });
    }
    failures += 1;
    var wait = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, failures - 1));
    if (error && error.retryAfter) wait = Math.max(wait, error.retryAfter * 1000);
    schedule(wait);
    if (failures >= OFFLINE_AFTER_FAILURES) {
      render("offline", last);
      startCountdown(Date.now() + wait, "retry_in");
    }
  }

  // Ticks a countdown in the note line (next retry, opening, start), so a wait never looks
  // stuck. It stops by itself when the page moves to another state.
  function startCountdown(at, key) {
    var owner = state;
    var paint = function () {
      var s = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      if (state !== owner) return clearInterval(countdown);
      $("note").textContent = s > 0 ? t(key, { s: s, left: duration(s) }, s) : S.retrying;
      if (s <= 0) clearInterval(countdown);
    };
    clearInterval(countdown);
    countdown = setInterval(paint, 1000);
    paint();
  }

  function duration(s) {
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h > 0 ? h + ":" + two(m) + ":" + two(sec) : m + ":" + two(sec);
  }

  // ---- drawing -------------------------------------------------------------------------

  var TITLES = {
    turn: "admitted_title",
    joining: "joining_title", waiting: "waiting_title", paused: "paused_title",
    admitted: "admitted_title", expired: "expired_title", ended: "ended_title",
    unknown: "unknown_title", offline: "offline_title", not_open: "not_open_title",
    prequeue: "prequeue_title", closed: "closed_title"
  };
  var LEADS = {
    joining: "joining_body", waiting: "intro", turn: "", paused: "paused_body", expired: "expired_body",
    ended: "ended_body", unknown: "unknown_body", offline: "offline_body", admitted: "",
    not_open: "not_open_body_unknown", prequeue: "prequeue_body_unknown", closed: "closed_body"
  };

  // One function paints every state, so the page can never show two states at once.
  function render(next, st, extra) {
    extra = extra || {};
    state = next;
    if (st) last = st;
    document.body.setAttribute("data-state", next);
    // The spinner turns while the page is doing something on its own.
    var busy = next === "joining" || next === "offline" || (next === "admitted" && !extra.token);
    document.body.classList.toggle("busy", busy);

    var name = (st && st.name) || (last && last.name) || "";
    $("event-name").textContent = name;
    // The operator's note to everyone waiting, as the room last gave it.
    var message = (st || last || {}).message || "";
    $("message").textContent = message;
    $("message").hidden = !message || next === "unknown";
    var title = (st && st.title) || (last && last.title) || "";
    document.title = next === "turn" ? t("turn_tab_title", { event: name || title || S.brand })
      : name ? t("page_title_event", { event: name }) : title || S.page_title;
    $("title").textContent = extra.title || S[TITLES[next]];
    var lead = next === "offline" && !place ? "offline_body_new" : LEADS[next];
    $("lead").textContent = extra.lead !== undefined ? extra.lead : (lead ? S[lead] : "");

    // Numbers stay visible while paused or reconnecting: the place is not lost.
    var showPlace = st && st.assigned && (next === "waiting" || next === "paused" || next === "offline");
    $("place").hidden = !showPlace;
    if (showPlace) drawPlace(st);

    $("token-box").hidden = !extra.token;
    $("copy").hidden = !extra.token;
    $("continue").hidden = !extra.link;
    $("go-in").hidden = !extra.go;
    $("rejoin").hidden = !(next === "expired" || next === "ended");
    $("retry").hidden = next !== "offline";
    $("note").textContent = extra.note || (showPlace && next !== "offline" ? S.keep_open : "");
    $("updated").textContent = st && next !== "offline" && next !== "unknown"
      ? t("updated", { time: new Date().toLocaleTimeString(lang) }) : "";

    announce(next, st);
  }

  function drawPlace(st) {
    var ahead = st.ahead || 0;
    $("position").textContent = num(st.queue_number);
    $("ahead").textContent = num(ahead);
    $("serving").textContent = st.serving_counter > 0
      ? t("serving_value", { n: num(st.serving_counter) }) : S.serving_none;
    $("eta").textContent = etaText(st.eta_seconds);
    // "estimating…" is not a number: shown quieter than a real estimate.
    $("eta").classList.toggle("soft", st.eta_seconds === null || st.eta_seconds === undefined);
    // Progress from where the visitor first stood to the front (their own turn included).
    var first = (place && place.firstAhead != null ? place.firstAhead : ahead) + 1;
    var pct = Math.max(0, Math.min(100, Math.round(((first - (ahead + 1)) / first) * 100)));
    // A sliver even at 0 % so the bar reads as a bar that will fill.
    $("progress-fill").style.width = Math.max(pct, 2) + "%";
    $("progress").setAttribute("aria-valuenow", String(pct));
  }

  function announce(next, st) {
    var text = "";
    if (next === "waiting" && st) {
      var ahead = st.ahead || 0;
      text = ahead === 0
        ? t("announce_front", { position: num(st.queue_number) })
        : t("announce_waiting", { position: num(st.queue_number), ahead: num(ahead) }, ahead);
    } else if (next === "paused") text = S.announce_paused;
    else if (next === "admitted" || next === "turn") text = S.announce_admitted;
    else if (next === "expired") text = S.announce_expired;
    else if (next === "offline") text = S.announce_offline;
    else if (next !== "joining") text = $("title").textContent;
    if (!text || text === announced.text) return;
    // Position updates are throttled; a change of state is always spoken.
    var sameState = announced.state === next;
    if (sameState && Date.now() - announced.at < ANNOUNCE_EVERY_MS) return;
    announced = { text: text, at: Date.now(), state: next };
    $("announce").textContent = text;
  }

  // ---- buttons and lifecycle -----------------------------------------------------------

  // The strings of the page's language, else English's; a page that cannot load either (the
  // network went as the page came) tries again shortly.
  function start() {
    strings(lang).catch(function () {
      lang = "en";
      return strings(lang);
    }).then(function (loaded) {
      S = loaded;
      numbers = new Intl.NumberFormat(lang);
      plurals = new Intl.PluralRules(lang);
      init();
    }, function () {
      setTimeout(start, 3000);
    });
  }

  function strings(tag) {
    return fetch("assets/i18n/" + tag + ".json").then(function (res) {
      if (!res.ok) throw new Error("strings for " + tag + ": HTTP " + res.status);
      return res.json();
    });
  }

  function init() {
    document.documentElement.lang = lang;
    var nodes = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = S[nodes[i].getAttribute("data-i18n")];
    $("continue").textContent = S.admitted_link;
    $("copy").textContent = S.copy;
    $("rejoin").textContent = S.rejoin;
    $("retry").textContent = S.retry_now;
    $("main").hidden = false;
    $("foot").hidden = false;

    $("sound").checked = soundOn();
    $("sound").addEventListener("change", function () { setSound($("sound").checked); });
    showNotifyChoice();
    $("notify").addEventListener("click", function () {
      Notification.requestPermission().then(showNotifyChoice, showNotifyChoice);
    });
    $("go-in").addEventListener("click", tick);

    $("rejoin").addEventListener("click", function () {
      forget();
      last = null;
      tick();
    });
    $("retry").addEventListener("click", tick);
    $("copy").addEventListener("click", copyToken);

    // Browsers slow timers in background tabs: catch up as soon as the visitor looks again.
    document.addEventListener("visibilitychange", function () {
      var live = state === "waiting" || state === "paused" || state === "offline" || state === "joining" ||
        state === "not_open" || state === "prequeue" || state === "turn";
      if (document.visibilityState === "visible" && live) tick();
    });
    tick();
  }

  function copyToken() {
    var box = $("token");
    var done = function () { $("copy").textContent = S.copied; };
    var fallback = function () {
      box.focus();
      box.select();
      try {
        if (document.execCommand("copy")) return done();
      } catch (e) { /* fall through */ }
      $("copy").textContent = S.copy_failed;
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(box.value).then(done, fallback);
    } else {
      fallback();
    }
  }

  start();
})();
