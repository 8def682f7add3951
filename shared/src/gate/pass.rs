//! The pass: the room's access token, kept by the browser as an HttpOnly cookie on the gate's
//! origin and checked on every request, with the same decision `/authorize` makes.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

use super::{GateError, GateSettings};
use crate::cache::TtlCache;
use crate::domain::EventId;
use crate::service::WaitingRoom;
use crate::token::{Claims, MAX_TOKEN_LEN, TokenError};

/// The cookie that carries the pass.
pub const PASS_COOKIE: &str = "wr_pass";

/// Checks passes for one event: signature, issuer, time, use, audience and session, as
/// [`WaitingRoom::authorize`] decides, with accepted passes kept for a short while so a page
/// and its dozens of assets cost one session look-up.
pub struct Passes {
    room: Arc<WaitingRoom>,
    event_id: EventId,
    accepted: TtlCache<String, Claims>,
}

impl Passes {
    pub fn new(room: Arc<WaitingRoom>, settings: &GateSettings) -> Self {
        Self {
            accepted: TtlCache::new(settings.pass_cache, room.clock().clone()),
            room,
            event_id: settings.event_id.clone(),
        }
    }

    /// The claims of a valid pass, with the seconds it has left.
    pub async fn check(&self, token: &str) -> Result<(Arc<Claims>, u64), GateError> {
        if token.is_empty() {
            return Err(GateError::NoPass(TokenError::Missing));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(GateError::NoPass(TokenError::Malformed));
        }
        let claims = self
            .accepted
            .get_or_load(&token.to_owned(), || {
                self.room.authorize(Some(token), Some(&self.event_id))
            })
            .await?;
        // A pass kept in the cache may have expired since it was checked.
        let left = claims.exp - self.room.now_ms() / 1000;
        if left <= 0 {
            return Err(GateError::NoPass(TokenError::Expired));
        }
        Ok((claims, left as u64))
    }
}

/// The pass among a request's cookies.
pub fn pass_from(headers: &HeaderMap) -> Option<String> {
    cookies(headers)
        .find(|c| c.name() == PASS_COOKIE)
        .map(|c| c.value().to_owned())
}

/// Removes the pass from a request's cookies: the application has no use for it, and a
/// pass that leaks from its logs would let someone else in.
pub fn strip_pass(headers: &mut HeaderMap) {
    if !cookies(headers).any(|c| c.name() == PASS_COOKIE) {
        return;
    }
    let kept: Vec<String> = cookies(headers)
        .filter(|c| c.name() != PASS_COOKIE)
        .map(|c| c.to_string())
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'_>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
}

/// `Set-Cookie` for a pass valid `max_age` more seconds.
pub fn set_pass(token: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let cookie = Cookie::build((PASS_COOKIE, token))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age).unwrap_or(i64::MAX),
        ));
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// `Set-Cookie` that forgets a pass the gate refused.
pub fn clear_pass(secure: bool) -> HeaderValue {
    let cookie = Cookie::build((PASS_COOKIE, ""))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO);
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("wr_pass=; Path=/; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_is_taken_out_of_the_cookies_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; wr_pass=abc.def.ghi; cart=3"),
        );
        assert_eq!(pass_from(&headers).as_deref(), Some("abc.def.ghi"));
        strip_pass(&mut headers);
        assert_eq!(headers[header::COOKIE], "theme=dark; cart=3");
        assert_eq!(pass_from(&headers), None);

        let mut only = HeaderMap::new();
        only.insert(header::COOKIE, HeaderValue::from_static("wr_pass=x"));
        strip_pass(&mut only);
        assert!(only.get(header::COOKIE).is_none());
    }

    #[test]
    fn the_pass_cookie_is_http_only_lax_and_secure_on_https() {
        let plain = set_pass("t", 300, false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("wr_pass=t"), "{plain}");
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300"] {
            assert!(plain.contains(part), "{part} missing from {plain}");
        }
        assert!(!plain.contains("Secure"), "{plain}");
        let secure = set_pass("t", 300, true).unwrap();
        assert!(secure.to_str().unwrap().contains("Secure"));
        assert!(clear_pass(false).to_str().unwrap().contains("Max-Age=0"));
    }
}
