//! Redirect URIs as registered by a client (requirements R4.1, RFC 6749 §3.1.2, RFC 8252 §7).

use std::fmt;

/// A redirect URI that passed registration rules. Matching against requests is by exact string
/// comparison (OAuth 2.1 §4.1.1), so the original text is kept untouched.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Validates a URI for registration:
    /// - absolute, with no fragment (RFC 6749 §3.1.2) and no user-info;
    /// - never `javascript:`, `data:`, `vbscript:` or `file:`;
    /// - `https`, or `http` only on a loopback IP literal (RFC 8252 §7.3, §8.3), or a private-use
    ///   scheme in reverse-domain form for native apps (RFC 8252 §7.1).
    pub fn parse_for_registration(raw: &str) -> Result<Self, String> {
        if raw.contains('#') {
            return Err(format!(
                "`{raw}` has a fragment; redirect URIs must not (RFC 6749 §3.1.2)"
            ));
        }
        let url = url::Url::parse(raw).map_err(|e| {
            format!("`{raw}` is not an absolute URI ({e}); relative URIs are refused")
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{raw}` carries user-info; redirect URIs must not"));
        }
        match url.scheme() {
            "https" => {}
            "http" => match url.host() {
                Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {}
                Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {}
                _ => {
                    return Err(format!(
                        "`{raw}` uses plain http; only https or http on 127.0.0.1 / [::1] is \
                         allowed (RFC 8252 §7.3; `localhost` is not recommended, §8.3)"
                    ));
                }
            },
            "javascript" | "data" | "vbscript" | "file" => {
                return Err(format!("`{raw}` uses a forbidden scheme"));
            }
            scheme if scheme.contains('.') => {}
            scheme => {
                return Err(format!(
                    "`{raw}` uses the scheme `{scheme}`; use https, loopback http, or a \
                     private-use scheme in reverse-domain form such as `com.example.app` \
                     (RFC 8252 §7.1)"
                ));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a `redirect_uri` from a request matches this registered one: the exact string
    /// (OAuth 2.1 §4.1.1), except that for `http` on a loopback IP literal the port may differ
    /// (RFC 8252 §7.3: native apps listen on an ephemeral port).
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        let (Ok(registered), Ok(parsed)) = (url::Url::parse(&self.0), url::Url::parse(requested))
        else {
            return false;
        };
        let loopback = |u: &url::Url| {
            u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                }
        };
        // The requested text must already be in canonical form, so that dot-segments, case or
        // encoding tricks cannot make a different string parse equal.
        if !loopback(&registered) || !loopback(&parsed) || parsed.as_str() != requested {
            return false;
        }
        let without_port = |mut u: url::Url| {
            let _ = u.set_port(None);
            u.to_string()
        };
        without_port(registered) == without_port(parsed)
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> bool {
        RedirectUri::parse_for_registration(raw).is_ok()
    }

    #[test]
    fn r4_1_https_and_loopback_http_are_accepted() {
        assert!(ok("https://app.example.com/callback"));
        assert!(ok("http://127.0.0.1:8400/cb"));
        assert!(ok("http://[::1]/cb"));
        assert!(ok("com.example.app:/oauth2redirect"));
    }

    #[test]
    fn oauth21_4_1_1_redirect_uris_match_exactly() {
        let r = RedirectUri::parse_for_registration("https://app.example/cb").unwrap();
        assert!(r.matches("https://app.example/cb"));
        for attack in [
            "https://app.example/cb/",
            "https://app.example/cb/extra",
            "https://app.example/cb?x=1",
            "https://app.example/c",
            "https://app.example:444/cb",
            "https://evil.example/cb",
            "https://app.example@evil.example/cb",
            "https://APP.example/cb",
            "https://app.example/CB",
            "https://app.example/%63b",
            "https://app.example/cb#",
            "http://app.example/cb",
        ] {
            assert!(!r.matches(attack), "{attack}");
        }
    }

    #[test]
    fn rfc8252_7_3_loopback_redirects_match_on_any_port_only() {
        let r = RedirectUri::parse_for_registration("http://127.0.0.1/cb").unwrap();
        assert!(r.matches("http://127.0.0.1:53124/cb"));
        assert!(!r.matches("http://127.0.0.1:53124/cb2"));
        assert!(!r.matches("http://127.0.0.2:53124/cb"));
        assert!(!r.matches("http://localhost:53124/cb"));
        assert!(!r.matches("http://127.0.0.1:53124/%63b"));
        assert!(!r.matches("https://127.0.0.1:53124/cb"));
        assert!(!r.matches("http://127.0.0.1:53124/x/../cb"));
    }

    #[test]
    fn rfc6749_3_1_2_fragments_are_refused() {
        assert!(!ok("https://app.example.com/cb#frag"));
        assert!(!ok("https://app.example.com/cb#"));
    }

    #[test]
    fn r4_1_dangerous_schemes_relative_uris_and_plain_http_are_refused() {
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok("data:text/html,hi"));
        assert!(!ok("/callback"));
        assert!(!ok("callback"));
        assert!(!ok("http://app.example.com/cb"));
        assert!(!ok("http://localhost:8080/cb"));
        assert!(!ok("ftp://example.com/cb"));
        assert!(!ok("https://good.example@evil.example/cb"));
    }
}
