//! The waiting page for browsers without JavaScript, rendered by the room in the visitor's
//! language: a form joins the line (`POST /wait`, or the script page's own address, which its
//! `<noscript>` form posts to); then `GET /wait` shows the place and the people ahead and
//! reloads itself (a `Refresh` header; a `<meta>` refresh is one a screen reader cannot stop,
//! and a link here turns the reloads off and on) at the pace the room sets for the
//! visitor's distance to the front, never faster than every [`MIN_REFRESH_SECS`]; at the
//! visitor's turn it claims the token and sends them on as the script page does (to the
//! target with the token, or through the gate's hand-over), or shows the pass to copy.
//!
//! Every answer is this visitor's own (`no-store`): each refresh is one request to the room
//! (one read of the request, the event from the in-process cache), where a script page reads
//! the CDN's shared document instead. README ("Without JavaScript") gives the cost.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::Params;
use crate::domain::{EventId, EventState, RequestId};
use crate::error::Error;
use crate::i18n::{self, Words};
use crate::service::QueueStatus;
use crate::service::WaitingRoom;

/// The shortest pause between two reloads: each one is a whole page and a request to the room.
pub const MIN_REFRESH_SECS: u64 = 5;
/// The longest: a visitor far back still sees the line move.
pub const MAX_REFRESH_SECS: u64 = 30;
/// While the request waits for its place, or its turn is a moment away: the room places a
/// request within a second.
const SOON_REFRESH_SECS: u64 = 2;

/// Where the page lives (the join form's answer sends the visitor here).
pub const PATH: &str = "/wait";

type Room = State<Arc<WaitingRoom>>;

/// The page's query: which event, the visitor's request once joined, the language asked for
/// and the gate's address to return to. Kept as text: a bad value is shown as a page, not as
/// a JSON error.
#[derive(Deserialize, Default)]
pub struct PageQuery {
    event_id: Option<String>,
    request_id: Option<String>,
    lang: Option<String>,
    #[serde(rename = "return")]
    back: Option<String>,
    /// `off`: the visitor stopped the page refreshing on its own (they refresh it themselves).
    auto: Option<String>,
}

impl PageQuery {
    /// The page's address for `request_id` (none: the join form), keeping the language and the
    /// return address.
    fn link(&self, event_id: &EventId, request_id: Option<&RequestId>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("event_id", event_id.as_str());
        if let Some(id) = request_id {
            query.append_pair("request_id", &id.to_string());
        }
        if let Some(lang) = self.lang.as_deref().filter(|l| !l.is_empty()) {
            query.append_pair("lang", lang);
        }
        if let Some(back) = self.return_path() {
            query.append_pair("return", back);
        }
        format!("{PATH}?{}", query.finish())
    }

    /// The visitor asked the page not to refresh on its own.
    fn manual(&self) -> bool {
        self.auto.as_deref() == Some("off")
    }

    /// The address the gate sent the visitor from: a path on the gate, nothing else.
    fn return_path(&self) -> Option<&str> {
        self.back.as_deref().filter(|back| {
            let bytes = back.as_bytes();
            bytes.first() == Some(&b'/')
                && !matches!(bytes.get(1), Some(b'/' | b'\\'))
                && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
        })
    }
}

/// `POST /wait` and `POST /waiting-room.html`: joins the line and sends the visitor to their
/// page (303, so a reload never joins twice).
pub async fn join(State(room): Room, headers: HeaderMap, Params(q): Params<PageQuery>) -> Response {
    let words = words(&q, &headers);
    let Some(event_id) = event(&q) else {
        return unknown(words, words.text("missing_event"));
    };
    match room.enqueue(&event_id).await {
        Ok(request_id) => Redirect::to(&q.link(&event_id, Some(&request_id))).into_response(),
        Err(error) => trouble(&q, words, &event_id, error),
    }
}

/// `GET /wait`: the join form, or the visitor's standing; at their turn, on to the event.
pub async fn page(State(room): Room, headers: HeaderMap, Params(q): Params<PageQuery>) -> Response {
    let words = words(&q, &headers);
    let Some(event_id) = event(&q) else {
        return unknown(words, words.text("missing_event"));
    };
    let Some(request_id) = q.request_id.as_deref().filter(|id| !id.is_empty()) else {
        return entry(&room, &q, words, &event_id).await;
    };
    let Ok(request_id) = RequestId::parse(request_id) else {
        return entry(&room, &q, words, &event_id).await;
    };
    match room.status(&event_id, &request_id).await {
        Ok(status) => standing(&room, &q, words, &event_id, &request_id, status).await,
        Err(Error::UnknownRequest) => entry(&room, &q, words, &event_id).await,
        Err(error) => trouble(&q, words, &event_id, error),
    }
}

fn words(q: &PageQuery, headers: &HeaderMap) -> Words {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    i18n::negotiate(q.lang.as_deref(), accept)
}

fn event(q: &PageQuery) -> Option<EventId> {
    q.event_id.as_deref().and_then(|id| EventId::parse(id).ok())
}

/// Before joining: the form, or why there is none yet (not open, over, unknown).
async fn entry(room: &WaitingRoom, q: &PageQuery, words: Words, event_id: &EventId) -> Response {
    let view = match room.view(event_id).await {
        Ok(view) => view,
        Err(error) => return trouble(q, words, event_id, error),
    };
    let config = &view.config;
    let now = room.now_ms();
    match config.state(now) {
        EventState::Closed => closed(words, &config.name),
        EventState::NotOpen => {
            let opens = config
                .schedule
                .prequeue_at_ms
                .or(config.schedule.start_at_ms);
            let until = opens.map_or(MAX_REFRESH_SECS, |at| {
                ((at - now).max(0) as u64).div_ceil(1000)
            });
            let mut page = not_open(words, until);
            page.name.clone_from(&config.name);
            page.look(&config.appearance);
            page.respond(StatusCode::OK)
        }
        _ => {
            let mut page = join_page(q, words, event_id);
            page.name.clone_from(&config.name);
            page.look(&config.appearance);
            page.respond(StatusCode::OK)
        }
    }
}

fn join_page(q: &PageQuery, words: Words, event_id: &EventId) -> Page {
    let mut page = Page::new(words, "join", "");
    page.title = words.text("join_title").into();
    page.lead = words.text("join_body").into();
    page.form(&q.link(event_id, None), words.text("join"));
    page
}

fn not_open(words: Words, until_secs: u64) -> Page {
    let mut page = Page::new(words, "not_open", "");
    page.title = words.text("not_open_title").into();
    page.lead = words.text("not_open_body_unknown").into();
    page.refresh(until_secs);
    page
}

/// A known request: placed or not yet, waiting, served (claim and go on), or done.
async fn standing(
    room: &WaitingRoom,
    q: &PageQuery,
    words: Words,
    event_id: &EventId,
    request_id: &RequestId,
    status: QueueStatus,
) -> Response {
    let view = match room.view(event_id).await {
        Ok(view) => view,
        Err(error) => return trouble(q, words, event_id, error),
    };
    let name = &status.name;
    let mut page = Page::new(words, "waiting", name);
    page.look(&view.config.appearance);
    page.message = view.config.message.clone();
    if status.state == EventState::Closed {
        return closed(words, name);
    }
    if status.position_expired {
        page.state = "expired";
        page.title = words.text("expired_title").into();
        page.lead = words.text("expired_body").into();
        page.form(&q.link(event_id, None), words.text("rejoin"));
        return page.respond(StatusCode::OK);
    }
    if status.served {
        return claim(room, q, words, event_id, request_id, page, &status).await;
    }
    if !status.assigned {
        page.state = "joining";
        page.title = words.text("joining_title").into();
        page.lead = words.text("joining_body").into();
        page.refresh_secs = Some(SOON_REFRESH_SECS);
        return page.respond(StatusCode::OK);
    }
    let refresh = status.next_poll_ms.div_ceil(1000);
    let Some(place) = status.queue_number else {
        page.state = "prequeue";
        page.title = words.text("prequeue_title").into();
        page.lead = words.text("prequeue_body_unknown").into();
        page.refresh(refresh);
        return page.respond(StatusCode::OK);
    };
    let paused = status.state == EventState::Paused;
    page.state = if paused { "paused" } else { "waiting" };
    page.title = words
        .text(if paused {
            "paused_title"
        } else {
            "waiting_title"
        })
        .into();
    page.lead = words
        .text(if paused { "paused_body" } else { "intro" })
        .into();
    let ahead = status.ahead.unwrap_or(0);
    page.place = Some(Place {
        number: words.number(place),
        ahead: words.number(ahead),
        eta: eta_text(words, status.eta_seconds),
        serving: if status.serving_counter > 0 {
            words.fill(
                "serving_value",
                &[("n", &words.number(status.serving_counter))],
                None,
            )
        } else {
            words.text("serving_none").into()
        },
    });
    // Screen readers and slow readers may not want the page to reload under them: a link turns
    // the reloads off (and on again), the page then says to refresh it by hand.
    let here = q.link(event_id, Some(request_id));
    if q.manual() {
        page.manual = Some((here, false));
    } else {
        page.refresh(refresh);
        page.manual = Some((format!("{here}&auto=off"), true));
    }
    page.respond(StatusCode::OK)
}

/// The visitor's turn: the token (the same one again on a reload), then on to the event.
async fn claim(
    room: &WaitingRoom,
    q: &PageQuery,
    words: Words,
    event_id: &EventId,
    request_id: &RequestId,
    mut page: Page,
    status: &QueueStatus,
) -> Response {
    let outcome = match room.generate_token(event_id, request_id).await {
        Ok(outcome) => outcome,
        Err(Error::NotServed) => {
            // This instance's counter ran ahead of the serving moves it has seen: soon.
            page.state = "joining";
            page.title = words.text("admitted_title").into();
            page.refresh_secs = Some(SOON_REFRESH_SECS);
            return page.respond(StatusCode::OK);
        }
        Err(error) => return trouble(q, words, event_id, error),
    };
    let token = &outcome.token.access_token;
    let target = status.target_url.as_str();
    if target.starts_with("https://") || target.starts_with("http://") {
        // As the script page: the gate on CloudFront takes the room's edge pass, any other
        // target the token.
        let handoff = is_handoff(target);
        let mut url = match outcome.edge_pass.as_ref().filter(|_| handoff) {
            Some(pass) => with_param(target, "wr_pass", &pass.value),
            None => with_param(target, "wr_token", token),
        };
        if let Some(back) = q.return_path().filter(|_| handoff) {
            url = with_param(&url, "return", back);
        }
        return Redirect::to(&url).into_response();
    }
    let minutes = outcome.expires_in.div_ceil(60).max(1);
    page.state = "admitted";
    page.title = words.text("admitted_in_title").into();
    page.lead = words.fill(
        "admitted_in_body",
        &[(
            "minutes",
            &words.fill("minutes", &[("n", &words.number(minutes))], Some(minutes)),
        )],
        None,
    );
    page.message.clear();
    page.pass = Some(token.clone());
    page.respond(StatusCode::OK)
}

/// What an error means to the visitor, as the script page shows it.
fn trouble(q: &PageQuery, words: Words, event_id: &EventId, error: Error) -> Response {
    match error {
        Error::UnknownEvent => unknown(words, words.text("unknown_body")),
        Error::Closed => closed(words, ""),
        Error::NotOpen => not_open(words, MAX_REFRESH_SECS).respond(StatusCode::OK),
        // Forgotten by the room (a reset, or lost long ago), or a bad id: join afresh.
        Error::UnknownRequest | Error::Invalid(_) => {
            join_page(q, words, event_id).respond(StatusCode::OK)
        }
        Error::PositionExpired | Error::SessionEnded => {
            let ended = matches!(error, Error::SessionEnded);
            let mut page = Page::new(words, if ended { "ended" } else { "expired" }, "");
            let key = if ended { "ended" } else { "expired" };
            page.title = words.text(&format!("{key}_title")).into();
            page.lead = words.text(&format!("{key}_body")).into();
            page.form(&q.link(event_id, None), words.text("rejoin"));
            page.respond(StatusCode::GONE)
        }
        other => {
            // Busy or unreachable: the errors' own mapping says how long to wait.
            let api = ApiError::from(other);
            let mut page = Page::new(words, "offline", "");
            page.title = words.text("offline_title").into();
            page.lead = words.text("offline_body").into();
            page.refresh(api.retry_after.unwrap_or(MIN_REFRESH_SECS));
            page.respond(api.status)
        }
    }
}

fn unknown(words: Words, lead: &str) -> Response {
    let mut page = Page::new(words, "unknown", "");
    page.title = words.text("unknown_title").into();
    page.lead = lead.into();
    page.respond(StatusCode::NOT_FOUND)
}

fn closed(words: Words, name: &str) -> Response {
    let mut page = Page::new(words, "closed", name);
    page.title = words.text("closed_title").into();
    page.lead = words.text("closed_body").into();
    page.respond(StatusCode::GONE)
}

/// The wait in words, as the script page writes it.
fn eta_text(words: Words, seconds: Option<u64>) -> String {
    match seconds {
        None => words.text("eta_estimating").into(),
        Some(s) if s < 60 => words.text("eta_soon").into(),
        Some(s) => {
            let minutes = s.div_ceil(60);
            if minutes < 90 {
                words.fill(
                    "eta_minutes",
                    &[("n", &words.number(minutes))],
                    Some(minutes),
                )
            } else {
                words.fill(
                    "eta_hours",
                    &[
                        ("h", &(minutes / 60).to_string()),
                        ("m", &(minutes % 60).to_string()),
                    ],
                    None,
                )
            }
        }
    }
}

/// The gate's hand-over address: it sets the pass as a cookie and sends the visitor back.
fn is_handoff(target: &str) -> bool {
    let after_scheme = target.split_once("://").map_or("", |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    path == "/__wr/pass"
}

/// `target` with `name=value` added to its query, its fragment kept at the end.
fn with_param(target: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match target.find('#') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{base}{separator}{name}={value}{fragment}")
}

/// The numbers of a place in line, formatted for the language.
struct Place {
    number: String,
    ahead: String,
    eta: String,
    serving: String,
}

/// One rendering of the page: the same card as the script page, filled on the server. Every
/// value is escaped: the operator's words and the URL's are text, never markup.
struct Page {
    words: Words,
    state: &'static str,
    name: String,
    brand: String,
    logo_url: String,
    title: String,
    lead: String,
    message: String,
    place: Option<Place>,
    pass: Option<String>,
    /// (address, button) of the form that joins the line.
    form: Option<(String, String)>,
    refresh_secs: Option<u64>,
    /// The link that stops the reloads (`true`), or turns them on again (`false`).
    manual: Option<(String, bool)>,
}

impl Page {
    fn new(words: Words, state: &'static str, name: &str) -> Self {
        Self {
            words,
            state,
            name: name.into(),
            brand: words.text("brand").into(),
            logo_url: String::new(),
            title: String::new(),
            lead: String::new(),
            message: String::new(),
            place: None,
            pass: None,
            form: None,
            refresh_secs: None,
            manual: None,
        }
    }

    fn look(&mut self, appearance: &crate::domain::Appearance) {
        if !appearance.title.is_empty() {
            self.brand.clone_from(&appearance.title);
        }
        self.logo_url.clone_from(&appearance.logo_url);
    }

    fn form(&mut self, action: &str, button: &str) {
        self.form = Some((action.into(), button.into()));
    }

    /// Reloads after `secs`, within the page's bounds.
    fn refresh(&mut self, secs: u64) {
        self.refresh_secs = Some(secs.clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS));
    }

    fn respond(self, status: StatusCode) -> Response {
        let refresh = self.refresh_secs;
        let mut response = (status, self.html()).into_response();
        let headers = response.headers_mut();
        crate::web::page_headers(headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = refresh {
            headers.insert(header::REFRESH, HeaderValue::from(secs));
        }
        response
    }

    fn html(&self) -> String {
        let w = self.words;
        let e = escape;
        let mut out = String::with_capacity(4096);
        let tab_title = if self.name.is_empty() {
            self.brand.clone()
        } else {
            w.fill("page_title_event", &[("event", &self.name)], None)
        };
        out.push_str(&format!(
            "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n",
            w.tag()
        ));
        out.push_str(&format!(
            "<title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
             <link rel=\"stylesheet\" href=\"/assets/room.css\">\n</head>\n\
             <body class=\"room\" data-state=\"{}\">\n<header class=\"topbar\">\n<div class=\"brand\">\n",
            e(&tab_title),
            self.state
        ));
        if self.logo_url.is_empty() {
            out.push_str(ROOM_LOGO);
        } else {
            out.push_str(&format!(
                "<img class=\"logo operator-logo\" src=\"{}\" alt=\"\">\n",
                e(&self.logo_url)
            ));
        }
        out.push_str(&format!(
            "<span>{}</span>\n</div>\n</header>\n\
             <main class=\"card\" id=\"main\" aria-labelledby=\"title\">\n",
            e(&self.brand)
        ));
        if !self.name.is_empty() {
            out.push_str(&format!(
                "<p class=\"event-name\" id=\"event-name\">{}</p>\n",
                e(&self.name)
            ));
        }
        out.push_str(&format!(
            "<div class=\"headline\"><h1 id=\"title\">{}</h1></div>\n",
            e(&self.title)
        ));
        if !self.lead.is_empty() {
            out.push_str(&format!(
                "<p class=\"lead\" id=\"lead\">{}</p>\n",
                e(&self.lead)
            ));
        }
        if !self.message.is_empty() {
            out.push_str(&format!(
                "<p class=\"message\" id=\"message\">{}</p>\n",
                e(&self.message)
            ));
        }
        if let Some(place) = &self.place {
            out.push_str(&format!(
                "<section id=\"place\">\n<div class=\"ticket\">\
                 <span class=\"ticket-label\">{}</span>\
                 <span class=\"ticket-number\" id=\"position\">{}</span></div>\n\
                 <dl class=\"stats\">\n\
                 <div><dt>{}</dt><dd id=\"ahead\">{}</dd></div>\n\
                 <div><dt>{}</dt><dd id=\"eta\">{}</dd></div>\n\
                 <div><dt>{}</dt><dd id=\"serving\">{}</dd></div>\n</dl>\n</section>\n",
                e(w.text("position_label")),
                e(&place.number),
                e(w.text("ahead_label")),
                e(&place.ahead),
                e(w.text("eta_label")),
                e(&place.eta),
                e(w.text("serving_label")),
                e(&place.serving),
            ));
        }
        if let Some(pass) = &self.pass {
            out.push_str(&format!(
                "<section id=\"token-box\">\n<label for=\"token\">{}</label>\n\
                 <textarea id=\"token\" readonly rows=\"4\" spellcheck=\"false\">{}</textarea>\n</section>\n",
                e(w.text("admitted_token_label")),
                e(pass)
            ));
        }
        if let Some((action, button)) = &self.form {
            out.push_str(&format!(
                "<form class=\"actions\" method=\"post\" action=\"{}\">\
                 <button type=\"submit\" class=\"button primary\" id=\"join\">{}</button></form>\n",
                e(action),
                e(button)
            ));
        }
        let said = match (self.refresh_secs, &self.manual) {
            (Some(secs), _) => Some(w.fill("refresh_every", &[("s", &w.number(secs))], Some(secs))),
            (None, Some(_)) => Some(w.text("refresh_off").to_owned()),
            (None, None) => None,
        };
        if let Some(said) = said {
            out.push_str(&format!(
                "<p class=\"note\" id=\"note\">{} <a href=\"\">{}</a>",
                e(&said),
                e(w.text("refresh_now"))
            ));
            if let Some((link, on)) = &self.manual {
                let key = if *on {
                    "refresh_stop"
                } else {
                    "refresh_resume"
                };
                out.push_str(&format!(
                    " · <a href=\"{}\" id=\"auto\">{}</a>",
                    e(link),
                    e(w.text(key))
                ));
            }
            out.push_str("</p>\n");
        }
        out.push_str(&format!(
            "</main>\n<footer class=\"foot\"><p>{}</p></footer>\n</body>\n</html>\n",
            e(w.text("footer"))
        ));
        out
    }
}

/// The room's own logo, as on the script page.
const ROOM_LOGO: &str = "<svg class=\"logo\" viewBox=\"0 0 32 32\" aria-hidden=\"true\" \
     focusable=\"false\"><rect width=\"32\" height=\"32\" rx=\"8\"></rect>\
     <circle cx=\"10\" cy=\"16\" r=\"3\"></circle><circle cx=\"16\" cy=\"16\" r=\"3\" \
     opacity=\".7\"></circle><circle cx=\"22\" cy=\"16\" r=\"3\" opacity=\".4\"></circle></svg>\n";

/// Text as HTML text or attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_any_value_is_text() {
        assert_eq!(
            escape("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn the_token_is_added_to_the_target_and_the_return_only_to_the_gate() {
        assert_eq!(
            with_param("https://shop.example/a?x=1#top", "wr_token", "t.k+n"),
            "https://shop.example/a?x=1&wr_token=t.k%2Bn#top"
        );
        assert_eq!(
            with_param("https://shop.example", "wr_token", "t"),
            "https://shop.example?wr_token=t"
        );
        assert!(is_handoff("https://gate.example/__wr/pass?x=1"));
        assert!(!is_handoff("https://gate.example/__wr/pass/x"));
        assert!(!is_handoff("https://gate.example/shop"));
        let q = |back: &str| PageQuery {
            back: Some(back.into()),
            ..PageQuery::default()
        };
        assert_eq!(q("/shop/item?x=1").return_path(), Some("/shop/item?x=1"));
        for bad in [
            "//evil.example/",
            "/\\evil",
            "https://evil.example/",
            "/a b",
        ] {
            assert_eq!(q(bad).return_path(), None, "{bad}");
        }
    }
}
