//! Request parameters from an `application/x-www-form-urlencoded` body (RFC 6749 §3.2,
//! Appendix B), parsed strictly: non-UTF-8 input and repeated parameters are errors instead of
//! being replaced or silently picking one value.
//!
//! Parsing is linear in the input and bounded (issue 17 finding 12): at most
//! [`MAX_INPUT_BYTES`] and [`MAX_PARAMETERS`], far above any OAuth request, so that a crafted
//! query cannot hold an async worker.

use crate::error::{Error, Result};

/// The longest query or form body parsed.
pub const MAX_INPUT_BYTES: usize = 32 * 1024;

/// The most parameters (pieces between `&`) in one query or form body.
pub const MAX_PARAMETERS: usize = 100;

/// The parameters of one request. Parameters sent without a value are treated as omitted
/// (RFC 6749 §3.1, §3.2).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a form body or query string.
    pub fn parse_form(body: &[u8]) -> Result<Self> {
        if body.len() > MAX_INPUT_BYTES {
            return Err(Error::MalformedRequest(
                format!("the request parameters exceed {MAX_INPUT_BYTES} bytes").into(),
            ));
        }
        let pieces = body.split(|b| *b == b'&').filter(|p| !p.is_empty());
        if pieces.clone().count() > MAX_PARAMETERS {
            return Err(Error::MalformedRequest(
                format!("more than {MAX_PARAMETERS} request parameters").into(),
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in pieces {
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &[][..]),
            };
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if value.is_empty() {
                continue;
            }
            // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
            // RFC 8707 §2 makes `resource` the exception: it may be repeated.
            // A scan, not a set: at most MAX_PARAMETERS² / 2 short comparisons, cheaper than
            // hashing and copying every name of the typical four-parameter request.
            if name != "resource" && pairs.iter().any(|(n, _)| *n == name) {
                return Err(Error::DuplicateParameter(name));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// Every value of a repeatable parameter (`resource`, RFC 8707 §2).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of a parameter, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of a required parameter.
    pub fn require(&self, name: &'static str) -> Result<&str> {
        self.get(name).ok_or(Error::MissingParameter(name))
    }

    /// The parameters as a form-encoded query string, without those named in `skip`.
    pub fn to_query(&self, skip: &[&str]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.0.iter().filter(|(n, _)| !skip.contains(&n.as_str())) {
            query.append_pair(name, value);
        }
        query.finish()
    }
}

fn decode_component(raw: &[u8]) -> Result<String> {
    let spaced: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded)
        .map_err(|_| Error::MalformedRequest("the form body is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_2_repeated_parameters_are_refused() {
        let err = Params::parse_form(b"grant_type=a&scope=x&scope=y").unwrap_err();
        assert!(matches!(err, Error::DuplicateParameter(ref n) if n == "scope"));
    }

    #[test]
    fn rfc8707_2_resource_may_be_repeated() {
        let p = Params::parse_form(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(p.get_all("resource").collect::<Vec<_>>(), ["https://a", "https://b"]);
    }

    #[test]
    fn rfc6749_3_2_parameters_without_value_are_omitted() {
        let p = Params::parse_form(b"grant_type=client_credentials&scope=&state").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), None);
        assert!(Params::parse_form(b"scope=&scope=a").is_ok());
    }

    #[test]
    fn appendix_b_form_encoding_is_decoded() {
        let p = Params::parse_form(b"scope=orders%3Aread+orders%3Awrite").unwrap();
        assert_eq!(p.get("scope"), Some("orders:read orders:write"));
    }

    #[test]
    fn issue17_12_too_many_parameters_are_an_invalid_request() {
        // 10,000 distinct names: a quadratic duplicate check would compare 5 × 10^7 pairs.
        let query: String = (0..10_000).map(|i| format!("p{i}=v&")).collect();
        let err = Params::parse_form(&query.as_bytes()[..MAX_INPUT_BYTES]).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidRequest);
        assert!(matches!(err, Error::MalformedRequest(ref m) if m.contains("parameters")), "{err}");
        let at_cap: String = (0..MAX_PARAMETERS).map(|i| format!("p{i}=v&")).collect();
        assert_eq!(Params::parse_form(at_cap.as_bytes()).unwrap().get("p99"), Some("v"));
        let over: String = (0..=MAX_PARAMETERS).map(|i| format!("p{i}=v&")).collect();
        assert!(Params::parse_form(over.as_bytes()).is_err());
        // Empty pieces (`&&&`) are not parameters.
        let padded = format!("{}{at_cap}", "&".repeat(1000));
        assert!(Params::parse_form(padded.as_bytes()).is_ok());
    }

    #[test]
    fn issue17_12_overlong_input_is_an_invalid_request() {
        let long = format!("scope={}", "a".repeat(MAX_INPUT_BYTES));
        let err = Params::parse_form(long.as_bytes()).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidRequest);
        assert!(err.to_string().contains("bytes"), "{err}");
    }

    #[test]
    fn rfc6749_3_2_a_duplicate_is_found_among_many_parameters() {
        let mut query: String = (0..MAX_PARAMETERS - 1).map(|i| format!("p{i}=v&")).collect();
        query.push_str("p0=again");
        let err = Params::parse_form(query.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::DuplicateParameter(ref n) if n == "p0"));
    }

    #[test]
    fn non_utf8_bodies_are_invalid_requests() {
        assert!(Params::parse_form(b"scope=%FF%FE").is_err());
        assert!(Params::parse_form(b"scope=\xff").is_err());
    }
}
