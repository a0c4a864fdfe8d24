//! Cookies of the server's own pages: the login session and the browser's CSRF binding.
//!
//! Both are HttpOnly; `Secure` whenever the issuer is https (requirements R2.7), and then
//! named with the `__Host-` prefix (RFC 6265bis §4.1.3.2): a browser accepts such a cookie only
//! from this exact origin, with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain or a
//! plain-http page cannot plant one. The session cookie is `SameSite=Lax` so that it travels on
//! the top-level navigation from a client to `/authorize`; the CSRF cookie is `SameSite=Strict`,
//! as only our own forms post it back.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Settings;

/// The cookies the pages set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCookie {
    /// The login session (its value is the session secret).
    Session,
    /// A random value that binds the CSRF token of a browser without a session (`web::csrf`).
    Csrf,
}

/// How long the CSRF cookie lives: longer than anyone keeps a sign-in page open.
pub const CSRF_COOKIE_MAX_AGE_SECONDS: i64 = 3600;

impl PageCookie {
    /// The cookie's name: `__Host-` prefixed when cookies are `Secure`.
    pub fn name(self, secure: bool) -> &'static str {
        match (self, secure) {
            (Self::Session, true) => "__Host-tessera_session",
            (Self::Session, false) => "tessera_session",
            (Self::Csrf, true) => "__Host-tessera_csrf",
            (Self::Csrf, false) => "tessera_csrf",
        }
    }

    fn same_site(self) -> &'static str {
        match self {
            Self::Session => "Lax",
            Self::Csrf => "Strict",
        }
    }

    /// This cookie's value in the request, if present.
    pub fn get<'a>(self, settings: &Settings, headers: &'a HeaderMap) -> Option<&'a str> {
        get(headers, self.name(settings.secure_cookies()))
    }

    /// A `Set-Cookie` value that sets this cookie for `max_age` seconds.
    pub fn set(self, settings: &Settings, value: &str, max_age: i64) -> HeaderValue {
        let secure = settings.secure_cookies();
        set_cookie(self.name(secure), value, max_age, self.same_site(), secure)
    }

    /// A `Set-Cookie` value that deletes this cookie.
    pub fn clear(self, settings: &Settings) -> HeaderValue {
        self.set(settings, "", 0)
    }
}

/// The value of a cookie in the request, if present.
fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` header value. `Path=/` and no `Domain`, as the `__Host-` prefix requires.
fn set_cookie(name: &str, value: &str, max_age: i64, same_site: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    // Names and values are ours: base64url and fixed ASCII, always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; tessera_csrf=xyz"));
        headers.append(header::COOKIE, HeaderValue::from_static("tessera_session=s"));
        assert_eq!(get(&headers, "tessera_csrf"), Some("xyz"));
        assert_eq!(get(&headers, "tessera_session"), Some("s"));
        assert_eq!(get(&headers, "missing"), None);
    }

    #[test]
    fn r2_7_session_cookies_are_httponly_and_secure_outside_dev() {
        let v = set_cookie(PageCookie::Session.name(true), "abc", 60, "Lax", true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("Secure") && v.contains("SameSite=Lax"));
    }

    #[test]
    fn rfc6265bis_4_1_3_2_secure_cookies_have_the_host_prefix_and_its_attributes() {
        for cookie in [PageCookie::Session, PageCookie::Csrf] {
            assert!(cookie.name(true).starts_with("__Host-"));
            assert!(!cookie.name(false).starts_with("__Host-"));
            let v = set_cookie(cookie.name(true), "v", 60, cookie.same_site(), true);
            let v = v.to_str().unwrap();
            assert!(v.contains("; Path=/;") && v.contains("; Secure") && !v.contains("Domain"));
        }
    }
}
