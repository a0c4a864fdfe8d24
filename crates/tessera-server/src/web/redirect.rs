//! Redirects from the pages back to a client.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{Error, ErrorCode};

/// `uri` with `pairs` form-encoded and appended to its query (RFC 6749 §3.1.2: a registered
/// redirect URI's own query component is kept).
pub fn append_query<'a>(uri: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query: String =
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    if query.is_empty() {
        return uri.to_owned();
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

/// A redirect to `location` with `status` (`302` or `303`), not to be cached; `None` when
/// `location` cannot be a header value.
pub fn to(status: StatusCode, location: &str) -> Option<Response> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut response = status.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// The `error_description` of an error redirected to the client (RFC 6749 §4.1.2.1). It is
/// shown by the client's page and travels in the user's browser, so it never carries text of
/// the request, which whoever built the link chose (a phishing message, markup): a fixed
/// sentence per error, naming at most one of our own parameter names. Server faults leave as
/// a bare `server_error`.
pub fn error_description(error: &Error) -> Option<Cow<'static, str>> {
    Some(match error {
        Error::Internal(_) => return None,
        Error::MissingParameter(name) => format!("the `{name}` parameter is required").into(),
        Error::MalformedParameter { name, .. } => {
            format!("the `{name}` parameter is malformed or not supported").into()
        }
        Error::DuplicateParameter(_) => "a parameter is included more than once".into(),
        other => match other.code() {
            ErrorCode::UnauthorizedClient => "the client may not use this grant type",
            ErrorCode::InvalidScope => "the scope is malformed or not allowed for this client",
            ErrorCode::UnsupportedResponseType => "the response type is not supported; use `code`",
            ErrorCode::InvalidTarget => "a requested resource is not allowed for this client",
            ErrorCode::AccessDenied => "the user denied the request",
            ErrorCode::LoginRequired => "the user is not signed in and prompt=none forbids asking",
            ErrorCode::ConsentRequired => "consent is needed and prompt=none forbids asking",
            ErrorCode::TemporarilyUnavailable => "the server is unavailable; try again shortly",
            _ => "the authorization request was refused",
        }
        .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_4_1_2_1_redirected_descriptions_are_fixed_text() {
        let echo = "<b>call +1 555 0100</b>";
        for error in [
            Error::UnsupportedResponseType(echo.into()),
            Error::ScopeNotAllowed(echo.into()),
            Error::MalformedScope(echo.to_owned().into()),
            Error::InvalidTarget(echo.into()),
            Error::DuplicateParameter(echo.into()),
            Error::MalformedParameter { name: "prompt", reason: echo.to_owned().into() },
        ] {
            let description = error_description(&error).unwrap();
            assert!(!description.contains("555"), "{description}");
        }
        let missing = error_description(&Error::MissingParameter("response_type")).unwrap();
        assert!(missing.contains("`response_type`"));
    }

    #[test]
    fn rfc6749_3_1_2_the_query_of_a_registered_uri_is_kept() {
        assert_eq!(
            append_query("https://a.example/cb", [("state", "a b")]),
            "https://a.example/cb?state=a+b"
        );
        assert_eq!(
            append_query("https://a.example/cb?x=1", [("code", "c"), ("state", "&")]),
            "https://a.example/cb?x=1&code=c&state=%26"
        );
        assert_eq!(append_query("https://a.example/cb", []), "https://a.example/cb");
    }
}
