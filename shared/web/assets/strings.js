// Every word the visitor page shows, in one object, so a translation is one file.
// Placeholders in braces ({position}) are filled by room.js. A value may be an object keyed by
// plural category (Intl.PluralRules: zero, one, two, few, many, other) for counted phrases.
window.WR_STRINGS = {
  lang: "en",
  page_title: "Waiting room",
  page_title_event: "{event} · Waiting room",
  brand: "Waiting room",
  intro: "Lots of people want in at the same time, so we let everyone in fairly, in the order they arrived. When it's your turn, this page takes you in on its own.",

  joining_title: "Finding your place in line…",
  joining_body: "This takes a second.",

  waiting_title: "You're in line",
  position_label: "Your number",
  ahead_label: "People ahead of you",
  serving_label: "Now letting in",
  serving_value: "up to no. {n}",
  serving_none: "not started",
  eta_label: "Estimated wait",
  eta_estimating: "estimating…",
  eta_soon: "less than a minute",
  eta_minutes: { one: "about 1 minute", other: "about {n} minutes" },
  eta_hours: "about {h} h {m} min",
  progress_label: "Your progress to the front",
  keep_open: "Your place is saved on this device. You can reload or come back to this page without losing it.",

  paused_title: "The line is paused",
  paused_body: "Entry is on hold for a moment. You keep your place and the line moves on as soon as it resumes.",

  admitted_title: "It's your turn!",
  admitted_redirect: "Taking you to {event}…",
  admitted_link: "Continue",
  admitted_in_title: "You're in",
  admitted_in_body: "Use this access pass to continue. It is valid for {minutes}.",
  admitted_token_label: "Your access pass",
  copy: "Copy access pass",
  copied: "Copied",
  copy_failed: "Select the text and copy it",
  minutes: { one: "1 minute", other: "{n} minutes" },

  expired_title: "Your turn has passed",
  expired_body: "You were let in but didn't continue in time, so your place went to the next person. You can join the line again.",
  ended_title: "Your visit has ended",
  ended_body: "The access you were given is no longer valid. You can join the line again.",
  rejoin: "Join the line again",

  not_open_title: "The waiting room opens soon",
  not_open_body: "The line opens at {time}. Keep this page open: it joins the line for you at the opening.",
  not_open_body_unknown: "The line isn't open yet. Keep this page open: it joins the line for you as soon as it opens.",
  opens_in: "Opens in {left}",

  prequeue_title: "You're in the pre-queue",
  prequeue_body: "Everyone who joins before {time} gets a random place in line at the start, so there's no need to rush or refresh. Your place is drawn then.",
  prequeue_body_unknown: "Everyone who joins before the start gets a random place in line, so there's no need to rush or refresh.",
  starts_in: "The draw is in {left}",

  closed_title: "This event is over",
  closed_body: "The waiting room for this event has closed. Thank you for your patience.",

  unknown_title: "We can't find this waiting room",
  unknown_body: "The link may be wrong or the event may be over. Check the address you were given.",
  missing_event: "This link doesn't say which event to wait for.",

  offline_title: "Reconnecting…",
  offline_body: "We can't reach the waiting room right now. Your place is kept; we keep trying on our own.",
  offline_body_new: "We can't reach the waiting room right now. We keep trying on our own: stay on this page.",
  retry_in: { one: "Next try in 1 second.", other: "Next try in {s} seconds." },
  retrying: "Trying now…",
  retry_now: "Try now",

  announce_waiting: { one: "You are number {position}. 1 person ahead of you.", other: "You are number {position}. {ahead} people ahead of you." },
  announce_front: "You are number {position}. You are next.",
  announce_paused: "The line is paused. You keep your place.",
  announce_admitted: "It's your turn.",
  announce_expired: "Your turn has passed.",
  announce_offline: "Connection lost, retrying.",
  updated: "Updated {time}",
  footer: "One place per visitor: more tabs or reloads won't move you faster, and won't lose your place either."
};
