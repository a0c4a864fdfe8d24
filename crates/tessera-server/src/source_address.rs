//! The address a request comes from, as the key of the per-source limits (issue 17 finding 4).
//!
//! Behind a reverse proxy every request arrives from the proxy's address, so every user would
//! share one bucket. With `trusted_proxies` configured, a request whose socket peer is one of
//! them is attributed to the address its forwarding header names: the **rightmost address that
//! is not itself a trusted proxy** (each proxy appends the address it received the request
//! from, so everything left of that is whatever the client chose to send). Only the header the
//! proxies write is read (`forwarded_header`: `X-Forwarded-For`, or `Forwarded` of RFC 7239): a
//! proxy that appends to one passes the other through unchanged from the client. A request from
//! any other peer is attributed to the peer, whatever its headers say.
//!
//! IPv6 sources are keyed by their /64: one subscriber usually holds a whole /64 (RFC 6177), so
//! keying single addresses would give each attacker 2^64 buckets.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/len` or a single address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text.trim(), None),
        };
        let network: IpAddr =
            addr.parse().map_err(|_| format!("{text:?} is not an address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0 … {max}")),
            },
        };
        Ok(Self { network, prefix })
    }

    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which forwarding header the trusted proxies write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedHeader {
    XForwardedFor,
    /// RFC 7239.
    Forwarded,
}

/// The proxies whose forwarding header is believed, and which header that is.
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    pub blocks: Vec<Cidr>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// No proxy is trusted: the socket peer is the source.
    pub fn none() -> Self {
        Self { blocks: Vec::new(), header: ForwardedHeader::XForwardedFor }
    }

    /// Whether a socket peer is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// The source of a request from `peer` with `headers`.
    pub fn source(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => header_list(headers, "x-forwarded-for")
                .map(|hop| parse_hop(hop.trim()))
                .collect::<Vec<_>>(),
            ForwardedHeader::Forwarded => {
                header_list(headers, "forwarded").map(forwarded_for).collect::<Vec<_>>()
            }
        };
        // Right to left: skip our own proxies; the first other hop is the client as the
        // outermost trusted proxy saw it. A hop we cannot read (`unknown`, an obfuscated
        // identifier, garbage) is keyed by the trusted proxy that reported it.
        let mut nearest_trusted = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => nearest_trusted = ip,
                Some(ip) => return ip,
                None => return nearest_trusted,
            }
        }
        nearest_trusted
    }
}

/// The comma-separated elements of every `name` header line, in order.
fn header_list<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_outside_quotes)
        .filter(|s| !s.trim().is_empty())
}

/// Splits on commas that are not inside a quoted string (RFC 7230 §3.2.6).
fn split_outside_quotes(text: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// RFC 7239 §4: the `for` parameter of one forwarded-element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_hop(value.trim().trim_matches('"')))?
    })
}

/// An address, possibly with a port (`192.0.2.43:47011`, `[2001:db8::17]:4711`, RFC 7239 §6).
fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    // RFC 7239 §6: an IPv6 address without a port is still bracketed.
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// Where a request comes from, for throttling; `None` when the server was not started with
/// connection info (as in router tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceAddr(pub Option<IpAddr>);

impl SourceAddr {
    /// The source as a throttling key: an IPv4 address, or the /64 of an IPv6 one (also what
    /// `Display` writes, so a longer key is formatted in one allocation).
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// `namespace:key` as a rate-limit key. Client authentication makes one per request, so an
    /// IPv4 address is written digit by digit (a tenth of the cost of `format!`).
    pub fn key_in(&self, namespace: &str) -> String {
        let mut key = String::with_capacity(namespace.len() + 1 + 24);
        key.push_str(namespace);
        key.push(':');
        match self.0 {
            Some(IpAddr::V4(ip)) => push_ipv4(&mut key, ip),
            _ => {
                use std::fmt::Write;
                let _ = write!(key, "{self}");
            }
        }
        key
    }
}

impl std::fmt::Display for SourceAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("unknown"),
            Some(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Some(IpAddr::V6(ip)) => {
                let s = ip.segments();
                write!(f, "{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl FromRequestParts<AppState> for SourceAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let proxies = &state.settings().trusted_proxies;
        Ok(Self(peer.map(|peer| proxies.source(peer, &parts.headers))))
    }
}

/// Appends `ip` in dotted decimal, as `Display` writes it, without the formatting machinery
/// (it runs once per request: rate-limit keys here, `X-Forwarded-For` in the gateway).
pub fn push_ipv4(text: &mut String, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_ipv4_writes_dotted_decimal() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.200.9.255", "255.255.255.255", "1.10.100.0"] {
            let mut text = String::new();
            push_ipv4(&mut text, ip.parse().unwrap());
            assert_eq!(text, ip);
        }
    }

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        let blocks = ["10.0.0.0/8", "fd00::/8"].iter().map(|b| Cidr::parse(b).unwrap()).collect();
        TrustedProxies { blocks, header }
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn issue17_4_forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let xff = headers("x-forwarded-for", &["198.51.100.1"]);
        let p = proxies(ForwardedHeader::XForwardedFor);
        assert_eq!(p.source(ip("203.0.113.9"), &xff), ip("203.0.113.9"));
        // And with no trusted proxies at all.
        assert_eq!(TrustedProxies::none().source(ip("10.0.0.1"), &xff), ip("10.0.0.1"));
    }

    #[test]
    fn issue17_4_a_trusted_proxy_is_believed_up_to_the_rightmost_untrusted_hop() {
        let p = proxies(ForwardedHeader::XForwardedFor);
        // The client claims 1.1.1.1; our proxies saw 198.51.100.7.
        let xff = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(p.source(ip("10.0.0.2"), &xff), ip("198.51.100.7"));
        let xff = headers("x-forwarded-for", &["[2001:db8::1]:443"]);
        assert_eq!(p.source(ip("10.0.0.2"), &xff), ip("2001:db8::1"));
        // An unreadable hop is keyed by the proxy that reported it.
        let xff = headers("x-forwarded-for", &["198.51.100.7, garbage"]);
        assert_eq!(p.source(ip("10.0.0.2"), &xff), ip("10.0.0.2"));
        // No header: the proxy itself.
        assert_eq!(p.source(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }

    #[test]
    fn rfc7239_4_the_for_parameter_of_forwarded_is_read_only_when_configured() {
        let p = proxies(ForwardedHeader::Forwarded);
        let fwd = headers(
            "forwarded",
            &[r#"for=1.1.1.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.9"#],
        );
        assert_eq!(p.source(ip("10.0.0.2"), &fwd), ip("2001:db8:cafe::17"));
        let fwd = headers("forwarded", &["for=unknown"]);
        assert_eq!(p.source(ip("10.0.0.2"), &fwd), ip("10.0.0.2"));
        // X-Forwarded-For is passed through by a proxy that writes Forwarded: not read.
        let xff = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(p.source(ip("10.0.0.2"), &xff), ip("10.0.0.2"));
        let p = proxies(ForwardedHeader::XForwardedFor);
        let fwd = headers("forwarded", &["for=198.51.100.1"]);
        assert_eq!(p.source(ip("10.0.0.2"), &fwd), ip("10.0.0.2"));
    }

    #[test]
    fn issue17_4_ipv6_sources_are_keyed_by_their_64() {
        let a = SourceAddr(Some(ip("2001:db8:1:2:aaaa::1")));
        let b = SourceAddr(Some(ip("2001:db8:1:2:bbbb::2")));
        let c = SourceAddr(Some(ip("2001:db8:1:3::1")));
        assert_eq!(a.key(), "2001:db8:1:2::/64");
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(SourceAddr(Some(ip("192.0.2.1"))).key(), "192.0.2.1");
        for v4 in ["0.0.0.0", "10.9.99.100", "192.0.2.1", "255.255.255.255"] {
            let source = SourceAddr(Some(ip(v4)));
            assert_eq!(source.key_in("n"), format!("n:{source}"));
        }
        assert_eq!(a.key_in("n"), "n:2001:db8:1:2::/64");
        assert_eq!(SourceAddr(None).key_in("n"), "n:unknown");
    }

    #[test]
    fn issue17_4_cidr_blocks_parse_and_match() {
        let block = Cidr::parse("192.168.0.0/16").unwrap();
        assert!(block.contains(ip("192.168.4.5")));
        assert!(block.contains(ip("::ffff:192.168.4.5")), "IPv4-mapped");
        assert!(!block.contains(ip("192.169.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }
}
