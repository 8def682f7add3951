//! Passing a request on to the application and its answer back, bodies streamed both ways,
//! through hyper-util's pooled client.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri, Version, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{GateError, REQUEST_ID_HEADER};

/// A connection the application does not accept within this is reported as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections to the application kept per host (keep-alive: no handshake per request).
const IDLE_PER_HOST: usize = 256;

/// Headers that describe one connection, not the request (RFC 9110 section 7.6.1): never
/// passed on in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Who asked, as the application is told in `X-Forwarded-*`.
pub struct Forwarded {
    pub client: Option<IpAddr>,
    /// `http` or `https`: how the visitor reached the gate.
    pub proto: &'static str,
}

/// The application behind the gate.
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    scheme: Scheme,
    authority: Authority,
    /// Prepended to every path (without its trailing slash).
    base: String,
}

impl Proxy {
    /// `upstream`: `http://host:port`, optionally with a base path.
    pub fn new(upstream: &str) -> Result<Self, GateError> {
        let bad = |why: &str| GateError::Config(format!("--upstream {upstream:?}: {why}"));
        let uri: Uri = upstream.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(bad(
                "must be an http:// address (the application's own, behind the gate)",
            ));
        }
        let authority = uri.authority().cloned().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("must not carry a query"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(connector);
        Ok(Self {
            client,
            scheme: Scheme::HTTP,
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `request` on, with `request_id` (the pass's, if any) for the application.
    pub async fn forward(
        &self,
        request: Request<Body>,
        forwarded: &Forwarded,
        request_id: Option<&str>,
    ) -> Result<Response<Body>, GateError> {
        let (mut parts, body) = request.into_parts();
        // The host the visitor asked for: `Host`, or the authority of an HTTP/2 request.
        let asked_host = parts.headers.remove(header::HOST).or_else(|| {
            let authority = parts.uri.authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        let path = parts
            .uri
            .path_and_query()
            .map(PathAndQuery::as_str)
            .unwrap_or("/");
        let path_and_query: PathAndQuery = format!("{}{path}", self.base)
            .parse()
            .map_err(|_| GateError::Config(format!("cannot append {path:?} to the upstream")))?;
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| GateError::Config(e.to_string()))?;
        // The client speaks HTTP/1.1 to the application whatever the visitor spoke to the gate.
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        remove_hop_by_hop(headers);
        super::pass::strip_pass(headers);
        headers.remove(REQUEST_ID_HEADER);
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            headers.insert(REQUEST_ID_HEADER, id);
        }
        set_forwarded(headers, forwarded, asked_host, &self.authority);
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await?;
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// Drops the hop-by-hop headers and those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// `X-Forwarded-For` (the visitor appended to what earlier proxies said), `-Proto` and
/// `-Host` (the host the visitor asked for; `Host` becomes the application's own).
fn set_forwarded(
    headers: &mut HeaderMap,
    forwarded: &Forwarded,
    asked_host: Option<HeaderValue>,
    upstream: &Authority,
) {
    const FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    const PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    if let Some(client) = forwarded.client {
        let chain = match headers.get(&FOR).and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {client}"),
            None => client.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(FOR, value);
        }
    }
    headers.insert(PROTO, HeaderValue::from_static(forwarded.proto));
    match asked_host {
        Some(host) => headers.insert(HOST, host),
        None => headers.remove(HOST),
    };
    if let Ok(host) = HeaderValue::from_str(upstream.as_str()) {
        headers.insert(header::HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_upstreams_without_a_query_are_accepted() {
        assert!(Proxy::new("http://127.0.0.1:3000").is_ok());
        assert!(Proxy::new("http://app.internal:8080/base/").is_ok());
        for bad in [
            "https://app",
            "ftp://app",
            "app:3000",
            "http://app/?x=1",
            "",
        ] {
            assert!(
                matches!(Proxy::new(bad), Err(GateError::Config(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn connection_headers_and_the_ones_they_name_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
