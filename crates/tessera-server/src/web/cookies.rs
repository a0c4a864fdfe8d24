//! Cookies of the server's own pages: the login session and the CSRF token.
//!
//! Both are HttpOnly; `Secure` whenever the issuer is https (requirements R2.7). The session
//! cookie is `SameSite=Lax` so that it travels on the top-level navigation from a client to
//! `/authorize`; the CSRF cookie is `SameSite=Strict`, as only our own forms post it back.

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;
use tessera_core::secret::Secret;

pub const SESSION_COOKIE: &str = "tessera_session";
pub const CSRF_COOKIE: &str = "tessera_csrf";

/// The value of a cookie in the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` header value.
pub fn set(name: &str, value: &str, max_age: i64, same_site: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    // Names and values are ours: base64url and fixed ASCII, always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", 0, "Lax", secure)
}

/// The CSRF token of this browser: the cookie's value if it has one, else a new one that the
/// response must set.
pub fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match get(headers, CSRF_COOKIE) {
        Some(v) if v.len() == 43 => (v.to_owned(), false),
        _ => (Secret::generate().expose().to_owned(), true),
    }
}

/// Whether a form's CSRF token equals the cookie's (double-submit, compared in constant time).
pub fn csrf_matches(headers: &HeaderMap, form_token: Option<&str>) -> bool {
    match (get(headers, CSRF_COOKIE), form_token) {
        (Some(cookie), Some(form)) if !cookie.is_empty() => {
            cookie.len() == form.len() && bool::from(cookie.as_bytes().ct_eq(form.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; tessera_csrf=xyz"));
        headers.append(header::COOKIE, HeaderValue::from_static("tessera_session=s"));
        assert_eq!(get(&headers, CSRF_COOKIE), Some("xyz"));
        assert_eq!(get(&headers, SESSION_COOKIE), Some("s"));
        assert_eq!(get(&headers, "missing"), None);
    }

    #[test]
    fn r4_5_csrf_requires_the_cookie_and_the_same_form_value() {
        let mut headers = HeaderMap::new();
        assert!(!csrf_matches(&headers, Some("t")));
        headers.insert(header::COOKIE, HeaderValue::from_static("tessera_csrf=token"));
        assert!(csrf_matches(&headers, Some("token")));
        assert!(!csrf_matches(&headers, Some("other")));
        assert!(!csrf_matches(&headers, None));
    }

    #[test]
    fn r2_7_session_cookies_are_httponly_and_secure_outside_dev() {
        let v = set(SESSION_COOKIE, "abc", 60, "Lax", true);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("Secure") && v.contains("SameSite=Lax"));
    }
}
