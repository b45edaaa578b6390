//! The address a request came from, for the per-address rate limit (`rc_login.address`).
//!
//! On a listener with Synapse's `x_forwarded: true` (it is behind a reverse proxy), the
//! client is the address in `X-Forwarded-For`: the **rightmost** entry, the one the proxy in
//! front added or set. Synapse takes the leftmost, which the client itself can write
//! (`X-Forwarded-For: <anything>` is passed along by a proxy that appends), so a client could
//! rotate it and escape the per-address limit; the rightmost one it cannot choose. homekey
//! differs from Synapse there on purpose (README, "Behind a reverse proxy"). Without
//! `x_forwarded` the header is ignored: the client is the connection's peer.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::serve::IncomingStream;

/// The client's IP address, as text: the connection's peer, or behind a proxy the address
/// it forwarded ("unknown" when the server runs without connection info, as in a router
/// driven directly).
pub struct ClientAddress(pub String);

/// The connection info of a listener with `x_forwarded: true`: the peer is the proxy.
#[derive(Debug, Clone, Copy)]
pub struct BehindProxy(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for BehindProxy {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> BehindProxy {
        BehindProxy(*stream.remote_addr())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress::of(parts))
    }
}

impl ClientAddress {
    /// The address the request of `parts` came from.
    pub fn of(parts: &Parts) -> ClientAddress {
        let address = if let Some(ConnectInfo(proxy)) =
            parts.extensions.get::<ConnectInfo<BehindProxy>>()
        {
            forwarded_for(&parts.headers).unwrap_or_else(|| proxy.0.ip())
        } else if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            peer.ip()
        } else {
            return ClientAddress("unknown".to_owned());
        };
        ClientAddress(address.to_string())
    }
}

/// The rightmost entry of `X-Forwarded-For` (of the last such header: a proxy that appends
/// adds to the end), if it is an IP address (with or without a port, IPv6 in brackets or
/// not). Anything else counts as no header: the client is then the proxy itself.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<IpAddr>().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(values: &[&str]) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        forwarded_for(&headers)
    }

    #[test]
    fn the_rightmost_entry_is_the_client() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(client(&["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(client(&["6.6.6.6, 203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(client(&["6.6.6.6,203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(
            client(&["6.6.6.6", "198.51.100.1, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(client(&["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(client(&["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(client(&["[2001:db8::1]:4711"]), ip("2001:db8::1"));
        assert_eq!(client(&["203.0.113.7:4711"]), ip("203.0.113.7"));
    }

    #[test]
    fn no_usable_entry_is_no_header() {
        assert_eq!(client(&[]), None);
        for value in [
            "",
            "unknown",
            "203.0.113.7, ",
            "203.0.113.7, unknown",
            "a.b.c.d",
        ] {
            assert_eq!(client(&[value]), None, "{value:?}");
        }
    }
}
