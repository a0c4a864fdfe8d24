//! Redirects from the pages back to a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_1_2_the_query_of_a_registered_uri_is_kept() {
        assert_eq!(append_query("https://a.example/cb", [("state", "a b")]), "https://a.example/cb?state=a+b");
        assert_eq!(
            append_query("https://a.example/cb?x=1", [("code", "c"), ("state", "&")]),
            "https://a.example/cb?x=1&code=c&state=%26"
        );
        assert_eq!(append_query("https://a.example/cb", []), "https://a.example/cb");
    }
}
