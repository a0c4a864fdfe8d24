//! Scopes (RFC 6749 §3.3) and Tessera's `resource:operation` naming rule (requirements R3.4).

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};

/// Scope values defined by OpenID Connect Core §5.4 and §11; they are exempt from the
/// `resource:operation` rule.
pub const OIDC_SCOPES: [&str; 5] = ["openid", "profile", "email", "address", "phone"];

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Parses one scope token with the RFC 6749 §3.3 syntax only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("a scope must not be empty".into());
        }
        if let Some(bad) =
            raw.chars().find(|c| !matches!(*c as u32, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
        {
            return Err(format!(
                "the scope `{}` contains the character {bad:?}",
                raw.escape_debug()
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Parses a scope a client may be registered with: an OIDC scope or `resource:operation`
    /// (lowercase letters, digits, `_`, `-`, `.`; optional further `:` segments for
    /// parameterized scopes such as `document:read:doc-123`).
    pub fn parse_registered(raw: &str) -> Result<Self, String> {
        let scope = Self::parse(raw)?;
        if OIDC_SCOPES.contains(&raw) || raw == "offline_access" {
            return Ok(scope);
        }
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
                })
        };
        let segments: Vec<&str> = raw.split(':').collect();
        if segments.len() < 2 || !segments.iter().all(|s| segment_ok(s)) {
            return Err(format!(
                "the scope `{raw}` must have the form `resource:operation` (e.g. `orders:write`) \
                 in lowercase letters, digits, `_`, `-` and `.`"
            ));
        }
        Ok(scope)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, kept sorted so that equal sets print equally.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses the space-delimited `scope` parameter (RFC 6749 §3.3). Repeated tokens collapse.
    pub fn parse(raw: &str) -> Result<Self, String> {
        // RFC 6749 §3.3: scope-tokens are separated by single spaces.
        if raw.is_empty() || raw.split(' ').any(str::is_empty) {
            return Err("scope tokens must be separated by single spaces".into());
        }
        raw.split(' ').map(Scope::parse).collect::<Result<BTreeSet<_>, _>>().map(Self)
    }

    /// Builds a set from individually parsed scopes.
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// The first scope of `self` that `allowed` does not contain, if any.
    pub fn first_outside(&self, allowed: &ScopeSet) -> Option<&Scope> {
        self.0.iter().find(|s| !allowed.0.contains(*s))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&scope.0)?;
        }
        Ok(())
    }
}

/// RFC 6749 §3.3: the requested scope must lie within the allowed set; an omitted scope means
/// the client's default set, and with no default the request fails.
pub fn granted_scope(
    requested: Option<&str>,
    allowed: &ScopeSet,
    default: &ScopeSet,
) -> Result<ScopeSet> {
    let scope = match requested {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| Error::MalformedScope(e.into()))?,
        None if default.is_empty() => return Err(Error::NoScope),
        None => return Ok(default.clone()),
    };
    if let Some(outside) = scope.first_outside(allowed) {
        return Err(Error::ScopeNotAllowed(outside.as_str().to_owned()));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_3_scope_is_space_delimited_and_order_free() {
        let set = ScopeSet::parse("orders:write orders:read orders:write").unwrap();
        assert_eq!(set.to_string(), "orders:read orders:write");
    }

    #[test]
    fn rfc6749_3_3_scope_token_refuses_quote_backslash_and_controls() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse("a\tb").is_err());
        assert!(ScopeSet::parse("a  b").is_err());
        assert!(ScopeSet::parse(" a").is_err());
        assert!(ScopeSet::parse("").is_err());
    }

    #[test]
    fn r3_4_registered_scopes_follow_resource_operation() {
        assert!(Scope::parse_registered("orders:write").is_ok());
        assert!(Scope::parse_registered("document:read:doc-123").is_ok());
        assert!(Scope::parse_registered("openid").is_ok());
        assert!(Scope::parse_registered("orders").is_err());
        assert!(Scope::parse_registered("Orders:Write").is_err());
        assert!(Scope::parse_registered("orders:").is_err());
        assert!(Scope::parse_registered("*").is_err());
    }

    #[test]
    fn first_outside_finds_the_scope_not_allowed() {
        let allowed = ScopeSet::parse("a:r a:w").unwrap();
        assert_eq!(ScopeSet::parse("a:r").unwrap().first_outside(&allowed), None);
        let asked = ScopeSet::parse("a:r b:r").unwrap();
        assert_eq!(asked.first_outside(&allowed).map(Scope::as_str), Some("b:r"));
    }
}
