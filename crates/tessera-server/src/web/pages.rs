//! Page templates and the headers every page carries (requirements R4.5).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_name: &'a str,
    pub csrf_token: &'a str,
    /// Where the form posts: `/login` (authorization flow) or `/device/login`.
    pub action: &'a str,
    /// What the form carries through: the authorization request's query string (`request`),
    /// or the device's user code (`user_code`); validated again when posted.
    pub carry_name: &'a str,
    pub carry_value: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// A scope line on the consent page; scopes without a configured description show their name.
pub struct ScopeLine {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub csrf_token: &'a str,
    /// As for [`LoginPage`]: `/consent` or `/device/decide`, and what the form carries.
    pub action: &'a str,
    pub carry_name: &'a str,
    pub carry_value: &'a str,
    /// The device's user code, shown so the user can compare it (RFC 8628 §5.4).
    pub user_code: Option<&'a str>,
    /// Who gets the answer: the redirect URI's host, and whether it is a loopback address
    /// (an application on the user's own device).
    pub redirect: Option<RedirectHost>,
    /// The client registered itself: nobody the operator vouched for.
    pub unverified: bool,
}

/// The host a consent's answer goes to, as the consent page shows it.
pub struct RedirectHost {
    pub host: String,
    pub loopback: bool,
}

impl RedirectHost {
    /// The host of `redirect_uri`; `None` for a private-use scheme without one.
    pub fn of(redirect_uri: &str) -> Option<Self> {
        let url = url::Url::parse(redirect_uri).ok()?;
        let loopback = match url.host()? {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        };
        Some(Self { host: url.host_str()?.to_owned(), loopback })
    }
}

/// The consent page's lines for a scope set, with configured descriptions.
pub fn scope_lines(
    descriptions: &std::collections::BTreeMap<String, String>,
    scope: &tessera_core::scope::ScopeSet,
) -> Vec<ScopeLine> {
    scope
        .iter()
        .map(|s| ScopeLine {
            name: s.as_str().to_owned(),
            description: descriptions.get(s.as_str()).cloned(),
        })
        .collect()
}

/// The page where a user enters a device's code (RFC 8628 §3.3).
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub csrf_token: &'a str,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

/// The page asking whether to sign out (OIDC RP-Initiated Logout 1.0 §2), when the logout
/// request does not show that it comes from the user's relying party.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    /// The relying party asking, when it is known.
    pub client_name: Option<&'a str>,
    pub csrf_token: &'a str,
    /// The name of the submit button's field that confirms.
    pub confirm_field: &'a str,
    /// The request's parameters the form posts back, checked again there.
    pub carried: Vec<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// The stylesheet, served from `/assets/tessera.css` so that the CSP needs no inline styles.
pub const STYLESHEET: &str = include_str!("../../assets/tessera.css");

/// Renders a page with its security headers. `form_target` is the origin a form on this page
/// may end up at after the server's redirect (the client's redirect URI), added to CSP
/// `form-action`, which browsers also apply to redirects after a form submission.
pub fn render(status: StatusCode, page: &impl Template, form_target: Option<&str>) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "server_error").into_response();
        }
    };
    let mut response = (status, axum::response::Html(body)).into_response();
    let form_action = match form_target.and_then(origin_of) {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: the page's URL (the authorization request) still never
    // leaves for another site, and our own form posts keep their `Origin` — under
    // `no-referrer` browsers send `Origin: null` (Fetch §3.1), which the CSRF check refuses.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// A message page (errors that must not be redirected, sign-out confirmation).
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &MessagePage { title, message }, None)
}

/// The title of the page of a request that cannot go on.
pub const REFUSED_TITLE: &str = "This request cannot continue";

/// The `400` page of a request that cannot go on (and must not be redirected).
pub fn refused(message: &str) -> Response {
    self::message(StatusCode::BAD_REQUEST, REFUSED_TITLE, message)
}

/// The `429` page of a throttled form, with `Retry-After` in seconds (RFC 6585 §4, RFC 9110
/// §10.2.3). A plain function of its inputs, so that whichever layer refuses the attempt can
/// build this answer.
pub fn too_many_attempts(message: &str, retry_after_secs: u64) -> Response {
    let mut response = self::message(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// `scheme://host[:port]` of a URL, for CSP; `None` for schemes a CSP source cannot name.
fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "https" | "http" => Some(url.origin().ascii_serialization()),
        // Private-use schemes (RFC 8252 §7.1) are named by their scheme alone.
        scheme => Some(format!("{scheme}:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_5_pages_carry_csp_frame_and_cache_headers() {
        let r = render(
            StatusCode::OK,
            &MessagePage { title: "t", message: "m" },
            Some("https://app.example/cb?x=1"),
        );
        let h = r.headers();
        let csp = h.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("form-action 'self' https://app.example;"));
        assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }

    #[test]
    fn rfc6585_4_the_429_page_says_when_to_retry() {
        let r = too_many_attempts("Wait.", 42);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "42");
        assert_eq!(r.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
    }

    #[test]
    fn templates_escape_html() {
        let html =
            MessagePage { title: "<b>", message: "<script>alert(1)</script>" }.render().unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&#60;script&#62;"));
    }
}
