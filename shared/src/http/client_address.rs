//! Where a request comes from. The connection's peer (on Lambda, the source address API
//! Gateway saw) unless that peer is a proxy the operator trusts; then the address that proxy
//! reports: CloudFront's `CloudFront-Viewer-Address` on Lambda, or the rightmost
//! `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends the address
//! it was reached from, so everything left of the first untrusted entry is the client's own
//! say). A header from an untrusted peer is never read: a visitor cannot choose its address.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use ipnet::IpNet;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The client's address, as decided here; set on every request that has a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// `X-Forwarded-For` entries looked at, from the right: more proxies than any real chain.
const MAX_HOPS: usize = 16;

/// The proxies whose word about the client is taken.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    /// Read CloudFront's `CloudFront-Viewer-Address` from a trusted peer (on Lambda, where
    /// CloudFront is the proxy; a local server's proxies would pass a visitor's copy on).
    cloudfront_viewer: bool,
}

impl TrustedProxies {
    /// Proxies given as CIDR blocks (`10.0.0.0/8`) or single addresses.
    pub fn parse<S: AsRef<str>>(blocks: &[S]) -> Result<Self, String> {
        let nets = blocks
            .iter()
            .map(|block| block.as_ref().trim())
            .filter(|block| !block.is_empty())
            .map(|block| {
                IpNet::from_str(block)
                    .or_else(|_| IpAddr::from_str(block).map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("{block:?} is not an address or a CIDR block"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            nets,
            cloudfront_viewer: false,
        })
    }

    /// Also reads `CloudFront-Viewer-Address` from a trusted peer.
    pub fn with_cloudfront_viewer_address(mut self) -> Self {
        self.cloudfront_viewer = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.nets.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        if self.cloudfront_viewer
            && let Some(viewer) = headers
                .get("cloudfront-viewer-address")
                .and_then(|value| value.to_str().ok())
                .and_then(address_with_port)
        {
            return viewer;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev().take(MAX_HOPS) {
            // Garbage where an address should be: the last hop that could be read stands.
            let Some(address) = forwarded_address(entry.trim()) else {
                return client;
            };
            client = address;
            if !self.trusts(address) {
                return address;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:port`, `v4:port`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    IpAddr::from_str(entry)
        .ok()
        .or_else(|| SocketAddr::from_str(entry).ok().map(|s| s.ip()))
}

/// CloudFront's `address:port`, the IPv6 form without brackets (`2001:db8::1:443`).
fn address_with_port(value: &str) -> Option<IpAddr> {
    let (address, port) = value.trim().rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    IpAddr::from_str(address.trim_start_matches('[').trim_end_matches(']')).ok()
}

/// The peer of a request: the TCP connection's (local server), or the source address API
/// Gateway reports (Lambda).
fn peer(request: &Request) -> Option<IpAddr> {
    if let Some(ConnectInfo(address)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return Some(address.ip());
    }
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref(),
        _ => None,
    }
    .and_then(|source| IpAddr::from_str(source).ok())
}

/// `router` with every request's [`ClientAddress`] set (requests without a peer, such as
/// in-process tests, get none).
pub fn resolve(router: Router, proxies: TrustedProxies) -> Router {
    let proxies = Arc::new(proxies);
    router.layer(axum::middleware::from_fn(
        move |mut request: Request, next: Next| {
            let proxies = proxies.clone();
            async move {
                if let Some(peer) = peer(&request) {
                    let client = proxies.client(peer, request.headers());
                    request.extensions_mut().insert(ClientAddress(client));
                }
                next.run(request).await
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_str(name).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(none.client(ip("198.51.100.1"), &forged), ip("198.51.100.1"));
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // The visitor wrote "1.2.3.4"; the first proxy appended what it saw, the second too.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &chain), ip("203.0.113.9"));
        // Two header lines read as one list, in order.
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9:5555, 10.1.1.1"),
        ]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &split), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // Garbage left of trusted hops: the last trusted hop read.
        let garbage = headers(&[("x-forwarded-for", "not-an-address, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &garbage), ip("10.1.1.1"));
        // A mapped IPv4 peer is the same peer.
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &chain),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn cloudfront_viewer_address_is_read_only_where_asked_and_from_a_trusted_peer() {
        let viewer = headers(&[
            ("cloudfront-viewer-address", "2001:db8::7:443"),
            ("x-forwarded-for", "198.51.100.3"),
        ]);
        let plain = TrustedProxies::parse(&["130.176.0.0/16"]).unwrap();
        assert_eq!(plain.client(ip("130.176.1.1"), &viewer), ip("198.51.100.3"));
        let cloudfront = plain.clone().with_cloudfront_viewer_address();
        assert_eq!(
            cloudfront.client(ip("130.176.1.1"), &viewer),
            ip("2001:db8::7")
        );
        assert_eq!(cloudfront.client(ip("192.0.2.1"), &viewer), ip("192.0.2.1"));
    }

    #[test]
    fn bad_blocks_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
        assert!(TrustedProxies::parse(&["::1", "fd00::/8"]).is_ok());
    }
}
