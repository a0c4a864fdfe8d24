//! Request parameters from an `application/x-www-form-urlencoded` body (RFC 6749 §3.2,
//! Appendix B), parsed strictly: non-UTF-8 input and repeated parameters are errors instead of
//! being replaced or silently picking one value.

use crate::error::{Error, Result};

/// The parameters of one request. Parameters sent without a value are treated as omitted
/// (RFC 6749 §3.1, §3.2).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a form body.
    pub fn parse_form(body: &[u8]) -> Result<Self> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
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
    fn non_utf8_bodies_are_invalid_requests() {
        assert!(Params::parse_form(b"scope=%FF%FE").is_err());
        assert!(Params::parse_form(b"scope=\xff").is_err());
    }
}
