//! The algorithm allow-list: asymmetric JWS algorithms only (RFC 7518 §3.1, RFC 8037 §3.1).
//!
//! `none` is no signature, and an HMAC algorithm would let anyone holding the "public" key
//! forge tokens (the classic RS256→HS256 confusion), so neither has a variant: a token naming
//! one cannot match any key.

use std::fmt;

/// A JWS algorithm this crate verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    /// Every allowed algorithm, for metadata (`*_signing_alg_values_supported`).
    pub const ALL: [Algorithm; 7] =
        [Self::RS256, Self::RS384, Self::RS512, Self::PS256, Self::ES256, Self::ES384, Self::EdDSA];

    /// [`Self::ALL`] by name.
    pub const NAMES: [&'static str; 7] =
        ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The allowed algorithm named `raw` (case-sensitive, RFC 7515 §4.1.1); `None` for
    /// `none`, HMAC and anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::RS384 => jsonwebtoken::Algorithm::RS384,
            Self::RS512 => jsonwebtoken::Algorithm::RS512,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::ES384 => jsonwebtoken::Algorithm::ES384,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8725_3_1_none_and_hmac_are_not_allowed() {
        for refused in ["none", "None", "HS256", "HS384", "HS512", "rs256", ""] {
            assert_eq!(Algorithm::parse(refused), None, "{refused}");
        }
        for (alg, name) in Algorithm::ALL.into_iter().zip(Algorithm::NAMES) {
            assert_eq!(Algorithm::parse(name), Some(alg));
        }
    }
}
