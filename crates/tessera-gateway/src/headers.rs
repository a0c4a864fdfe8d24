//! Header rewriting between client and upstream: hop-by-hop fields (RFC 9110 §7.6.1),
//! client-sent identity fields, the forwarding fields (RFC 7239 `Forwarded`, `X-Forwarded-*`).

use std::net::SocketAddr;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// The prefix of every header the gateway itself sets for upstreams.
pub const IDENTITY_PREFIX: &str = "x-tessera-";
pub const SUBJECT: HeaderName = HeaderName::from_static("x-tessera-sub");
pub const CLIENT_ID: HeaderName = HeaderName::from_static("x-tessera-client-id");
pub const SCOPE: HeaderName = HeaderName::from_static("x-tessera-scope");
pub const IDENTITY_JWT: HeaderName = HeaderName::from_static("x-tessera-identity");

// The forwarding fields, named once (`from_static` at run time would parse a name per call).
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// RFC 9449 §4.1: the proof of possession a DPoP-bound token travels with.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");

/// How many fields [`HOP_BY_HOP`] lists.
const HOP_BY_HOP_FIELDS: usize = 8;

/// RFC 9110 §7.6.1: fields that describe one connection and must not be forwarded, beside
/// those the `Connection` field names. `Proxy-Connection` and `Keep-Alive` are the historical
/// ones proxies also drop.
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_FIELDS] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes the hop-by-hop fields, and `Upgrade` unless `keep_upgrade` (a WebSocket handshake
/// the route allows, whose `Connection: upgrade` is then set again by the caller).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One look at the names the message has (comparisons of known names, no hashing) finds
    // the hop-by-hop ones present; only those are removed. Most requests carry none; most
    // answers carry only `Connection: keep-alive`.
    // The hop-by-hop fields and `Upgrade`.
    let mut present: [Option<HeaderName>; HOP_BY_HOP_FIELDS + 1] = Default::default();
    let mut count = 0;
    for name in headers.keys() {
        let hop = HOP_BY_HOP.contains(name) || (!keep_upgrade && name == header::UPGRADE);
        // Several values of one field are one name in `keys()`.
        if hop && count < present.len() {
            present[count] = Some(name.clone());
            count += 1;
        }
    }
    if count == 0 {
        return;
    }
    // RFC 9110 §7.6.1: "a proxy MUST … remove any header or trailer field … listed in the
    // Connection header field".
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in present.into_iter().flatten() {
        headers.remove(name);
    }
}

/// Removes every field a client could use to pose as someone: the gateway's own
/// `X-Tessera-*` and the configured `extra` names (lowercase).
pub fn strip_identity(headers: &mut HeaderMap, extra: &[String]) {
    let ours: Vec<HeaderName> =
        headers.keys().filter(|k| k.as_str().starts_with(IDENTITY_PREFIX)).cloned().collect();
    for name in ours {
        headers.remove(name);
    }
    for name in extra {
        headers.remove(name.as_str());
    }
}

/// Sets `Forwarded` (RFC 7239 §4) and `X-Forwarded-For/-Host/-Proto` for this hop. The gateway
/// is the edge: values a client sent are replaced, not extended, so an upstream cannot be told
/// a false client address.
pub fn set_forwarded(headers: &mut HeaderMap, peer: SocketAddr, host: Option<&str>, proto: &str) {
    let ip = match peer {
        SocketAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            tessera_server::source_address::push_ipv4(&mut text, *v4.ip());
            text
        }
        SocketAddr::V6(v6) => v6.ip().to_string(),
    };
    // RFC 7239 §6: IPv6 addresses are quoted and bracketed.
    let mut forwarded = String::with_capacity(64);
    forwarded.push_str("for=");
    match peer {
        SocketAddr::V4(_) => forwarded.push_str(&ip),
        SocketAddr::V6(_) => {
            forwarded.push_str("\"[");
            forwarded.push_str(&ip);
            forwarded.push_str("]\"");
        }
    }
    forwarded.push_str(";proto=");
    forwarded.push_str(proto);
    if let Some(host) = host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')) {
        forwarded.push_str(";host=\"");
        forwarded.push_str(host);
        forwarded.push('"');
    }
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(headers, FORWARDED, &forwarded);
    set(headers, X_FORWARDED_FOR, &ip);
    // The public URL's scheme: one of two constants, not copied per request.
    match proto {
        "http" | "https" => {
            let value = HeaderValue::from_static(if proto == "http" { "http" } else { "https" });
            headers.insert(X_FORWARDED_PROTO, value);
        }
        other => set(headers, X_FORWARDED_PROTO, other),
    }
    match host {
        Some(host) => set(headers, X_FORWARDED_HOST, host),
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

/// Whether a request asks to switch protocols (RFC 9110 §7.8), e.g. a WebSocket handshake.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_7_6_1_hop_by_hop_and_connection_named_fields_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, X-Secret-Hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-end-to-end"));
    }

    // RFC 9110 §7.6.1 on a typical answer (only `Connection: keep-alive`), and on a WebSocket
    // handshake the route allows (RFC 9110 §7.8: `Upgrade` is kept, the rest removed).
    #[test]
    fn rfc9110_7_6_1_only_hop_by_hop_fields_go_and_upgrade_stays_when_kept() {
        let mut answer = HeaderMap::new();
        answer.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        answer.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        answer.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        remove_hop_by_hop(&mut answer, false);
        assert_eq!(answer.len(), 2, "{answer:?}");
        assert!(!answer.contains_key(header::CONNECTION));

        let mut handshake = HeaderMap::new();
        handshake.insert(header::CONNECTION, HeaderValue::from_static("Upgrade, X-Hop"));
        handshake.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        handshake.insert("x-hop", HeaderValue::from_static("1"));
        handshake.insert(header::TE, HeaderValue::from_static("trailers"));
        handshake.insert("sec-websocket-key", HeaderValue::from_static("k"));
        remove_hop_by_hop(&mut handshake, true);
        let mut left: Vec<&str> = handshake.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["sec-websocket-key", "upgrade"]);
    }

    #[test]
    fn client_identity_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert("x-tessera-sub", HeaderValue::from_static("admin"));
        h.insert("X-Tessera-Anything", HeaderValue::from_static("x"));
        h.insert("x-remote-user", HeaderValue::from_static("admin"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_identity(&mut h, &["x-remote-user".into()]);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn rfc7239_forwarded_replaces_client_values() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        set_forwarded(&mut h, "[::1]:5000".parse().unwrap(), Some("api.example"), "https");
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=https;host=\"api.example\"");
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }
}
