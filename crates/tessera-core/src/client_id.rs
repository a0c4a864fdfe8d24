//! `ClientId`: RFC 6749 §2.2 client identifiers, parsed at the edge.

use std::fmt;

/// A client identifier: 1–255 visible ASCII characters (RFC 6749 Appendix A.1 `VSCHAR`),
/// without spaces, so it survives forms, Basic credentials and log lines unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Longest client_id accepted.
    pub const MAX_LEN: usize = 255;

    /// Parses a client identifier, refusing empty, over-long or non-visible-ASCII values.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("must not be empty");
        }
        if raw.len() > Self::MAX_LEN {
            return Err("must be at most 255 characters");
        }
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err("must be visible ASCII characters without spaces");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_a_1_client_id_is_visible_ascii() {
        assert!(ClientId::parse("billing-service_01.prod").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("has space").is_err());
        assert!(ClientId::parse("caf\u{e9}").is_err());
        assert!(ClientId::parse(&"a".repeat(256)).is_err());
    }
}
