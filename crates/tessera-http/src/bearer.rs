//! Reading a bearer access token from a request (RFC 6750 §2).

use axum::http::{HeaderMap, header};

/// An access token as presented, not yet verified.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    // A token is a credential: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// Why the presented credentials are not a usable bearer token. Each is `invalid_request`
/// (RFC 6750 §3.1), answered with a `Bearer` challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// More than one `Authorization` header.
    SeveralHeaders,
    /// The `Bearer` credentials are not a `b64token` (RFC 6750 §2.1).
    Malformed,
    /// RFC 6750 §2: the token was sent in the header and in the form body.
    SeveralMethods,
}

impl BearerError {
    /// A description for `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::SeveralHeaders => "more than one Authorization header",
            Self::Malformed => "the Bearer credentials are malformed (RFC 6750 §2.1)",
            Self::SeveralMethods => "the access token was sent in more than one way (RFC 6750 §2)",
        }
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    // One table lookup per byte: a token is checked on every request, and JWTs are long.
    !body.is_empty() && body.iter().all(|&b| B64TOKEN_CHAR[usize::from(b)])
}

/// The `b64token` characters other than `=` (RFC 6750 §2.1), by byte value.
static B64TOKEN_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

impl BearerToken {
    /// RFC 6750 §2.1: `Authorization: Bearer <b64token>` (the scheme is case-insensitive,
    /// RFC 9110 §11.1). `Ok(None)` when the request carries no bearer credentials at all (no
    /// header, or another scheme): RFC 6750 §3.1 answers that with a challenge without error.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, BearerError> {
        Self::from_headers_with_scheme(headers, "bearer")
    }

    /// The token of an `Authorization` header with another token-carrying scheme of the same
    /// syntax, such as RFC 9449 §7.1 `DPoP` (compared without case). `Ok(None)` when the
    /// header is absent or names another scheme.
    pub fn from_headers_with_scheme(
        headers: &HeaderMap,
        wanted: &str,
    ) -> Result<Option<Self>, BearerError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(BearerError::SeveralHeaders);
        }
        // Read as bytes: a b64token is visible ASCII, so the token's own check is the only
        // pass over it (no separate `to_str` scan of the whole value first).
        let bytes = value.as_bytes();
        let (scheme, credentials) = match bytes.iter().position(|&b| b == b' ') {
            Some(space) => (&bytes[..space], &bytes[space + 1..]),
            None => (bytes, &[][..]),
        };
        if !scheme.eq_ignore_ascii_case(wanted.as_bytes()) {
            // A value that is not visible ASCII is malformed whatever its scheme.
            return match value.to_str() {
                Ok(_) => Ok(None),
                Err(_) => Err(BearerError::Malformed),
            };
        }
        let start = credentials.iter().position(|&b| b != b' ').unwrap_or(credentials.len());
        let end = credentials.iter().rposition(|&b| b != b' ').map_or(start, |last| last + 1);
        let token = &credentials[start..end];
        if !is_b64token(token) {
            return Err(BearerError::Malformed);
        }
        // Every byte is a b64token character: ASCII, so UTF-8.
        match std::str::from_utf8(token) {
            Ok(token) => Ok(Some(Self(token.to_owned()))),
            Err(_) => Err(BearerError::Malformed),
        }
    }

    /// RFC 6750 §2.1 and §2.2, for a resource that accepts the form-encoded body parameter:
    /// `form_token` is the `access_token` parameter of an `application/x-www-form-urlencoded`
    /// body the caller has parsed. A client MUST NOT use more than one method (§2).
    pub fn from_headers_or_form(
        headers: &HeaderMap,
        form_token: Option<&str>,
    ) -> Result<Option<Self>, BearerError> {
        match (Self::from_headers(headers)?, form_token) {
            (Some(_), Some(_)) => Err(BearerError::SeveralMethods),
            (Some(token), None) => Ok(Some(token)),
            (None, Some(token)) if is_b64token(token.as_bytes()) => {
                Ok(Some(Self(token.to_owned())))
            }
            (None, Some(_)) => Err(BearerError::Malformed),
            (None, None) => Ok(None),
        }
    }

    /// The token string, for verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn rfc6750_2_1_bearer_scheme_is_case_insensitive() {
        let token = BearerToken::from_headers(&headers(&["bEaReR abc.DEF-_~+/=="])).unwrap();
        assert_eq!(token.unwrap().as_str(), "abc.DEF-_~+/==");
    }

    #[test]
    fn rfc6750_3_1_no_bearer_credentials_is_not_an_error() {
        assert_eq!(BearerToken::from_headers(&headers(&[])).unwrap(), None);
        assert_eq!(BearerToken::from_headers(&headers(&["Basic YTpi"])).unwrap(), None);
    }

    #[test]
    fn rfc6750_2_1_token_must_be_a_b64token() {
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer =abc", "Bearer \"x\""]
        {
            assert_eq!(
                BearerToken::from_headers(&headers(&[bad])),
                Err(BearerError::Malformed),
                "{bad}"
            );
        }
    }

    // RFC 6750 §2.1 / RFC 9110 §5.5: obs-text and control bytes are no token characters, and a
    // value holding them is malformed whatever its scheme.
    #[test]
    fn rfc6750_2_1_non_ascii_credentials_are_malformed() {
        for bad in
            [&b"Bearer abc\xff"[..], b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer a\tb", b"Basic \xff"]
        {
            let mut map = HeaderMap::new();
            map.insert(header::AUTHORIZATION, HeaderValue::from_bytes(bad).unwrap());
            assert_eq!(BearerToken::from_headers(&map), Err(BearerError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn rfc6750_2_1_two_authorization_headers_are_invalid_request() {
        assert_eq!(
            BearerToken::from_headers(&headers(&["Bearer a", "Bearer b"])),
            Err(BearerError::SeveralHeaders)
        );
    }

    #[test]
    fn rfc6750_2_token_in_header_and_form_is_invalid_request() {
        assert_eq!(
            BearerToken::from_headers_or_form(&headers(&["Bearer a"]), Some("a")),
            Err(BearerError::SeveralMethods)
        );
        let from_form = BearerToken::from_headers_or_form(&headers(&[]), Some("tok")).unwrap();
        assert_eq!(from_form.unwrap().as_str(), "tok");
        assert_eq!(BearerToken::from_headers_or_form(&headers(&[]), None).unwrap(), None);
    }

    #[test]
    fn rfc9449_7_1_dpop_scheme_carries_a_token_of_the_same_syntax() {
        let dpop = BearerToken::from_headers_with_scheme(&headers(&["DPoP abc.def"]), "dpop");
        assert_eq!(dpop.unwrap().unwrap().as_str(), "abc.def");
        assert_eq!(BearerToken::from_headers(&headers(&["DPoP abc.def"])).unwrap(), None);
        assert_eq!(
            BearerToken::from_headers_with_scheme(&headers(&["dpop a b"]), "dpop"),
            Err(BearerError::Malformed)
        );
    }

    #[test]
    fn bearer_token_debug_hides_the_token() {
        let token = BearerToken::from_headers(&headers(&["Bearer secret"])).unwrap().unwrap();
        assert_eq!(format!("{token:?}"), "BearerToken(..)");
    }
}
