//! The issuer identifier (RFC 8414 §2). A value passed through the code, never a global, so
//! that a later multi-tenant deployment can select it per request.

use std::fmt;
use std::sync::Arc;

/// An issuer URL: `https` (or `http` on a loopback address), no query, no fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer(Arc<str>);

/// How strict [`Issuer::parse`] is about plain `http`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpIssuers {
    /// Plain `http` only on loopback addresses (production).
    LoopbackOnly,
    /// Plain `http` anywhere (`serve --dev`).
    Allowed,
}

impl Issuer {
    pub fn parse(raw: &str, http: HttpIssuers) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
        if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
            return Err(format!("`{raw}` must have no query and no fragment (RFC 8414 §2)"));
        }
        match url.scheme() {
            "https" => {}
            "http" if http == HttpIssuers::Allowed || is_loopback(&url) => {}
            "http" => {
                return Err(format!(
                    "`{raw}` uses plain http on a non-loopback host; use an https issuer \
                     (RFC 8414 §2), or `serve --dev` for local experiments"
                ));
            }
            other => return Err(format!("`{raw}` has the scheme `{other}`; use https")),
        }
        Ok(Self(raw.into()))
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An endpoint URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0.trim_end_matches('/'))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_2_issuer_is_https_without_query_or_fragment() {
        let strict = HttpIssuers::LoopbackOnly;
        assert!(Issuer::parse("https://auth.example.com", strict).is_ok());
        assert!(Issuer::parse("https://auth.example.com/tenant-a", strict).is_ok());
        assert!(Issuer::parse("http://127.0.0.1:8080", strict).is_ok());
        assert!(Issuer::parse("http://auth.example.com", strict).is_err());
        assert!(Issuer::parse("https://auth.example.com?x=1", strict).is_err());
        assert!(Issuer::parse("https://auth.example.com#x", strict).is_err());
        assert!(Issuer::parse("http://auth.example.com", HttpIssuers::Allowed).is_ok());
    }

    #[test]
    fn endpoint_joins_without_double_slash() {
        let issuer = Issuer::parse("https://a.example/", HttpIssuers::LoopbackOnly).unwrap();
        assert_eq!(issuer.endpoint("/token"), "https://a.example/token");
    }
}
