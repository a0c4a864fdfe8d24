//! The `WWW-Authenticate` value of a 401 or 403 (RFC 9110 §11.6.1): the `Bearer` challenge of
//! RFC 6750 §3 for protected resources, `Basic` (RFC 7617) for client authentication.

use axum::http::HeaderValue;

use crate::ErrorCode;

/// One challenge, built up and rendered as a header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    scheme: &'static str,
    realm: Option<String>,
    algs: Option<String>,
    error: Option<ErrorCode>,
    description: Option<String>,
    scope: Option<String>,
    resource_metadata: Option<String>,
}

impl Challenge {
    /// RFC 6750 §3: `Bearer`, to be answered with an access token.
    pub fn bearer() -> Self {
        Self::with_scheme("Bearer")
    }

    /// RFC 7617: `Basic`, to be answered with client credentials (RFC 6749 §2.3.1).
    pub fn basic() -> Self {
        Self::with_scheme("Basic")
    }

    /// RFC 9449 §7.1: `DPoP`, to be answered with a DPoP-bound token and its proof.
    pub fn dpop() -> Self {
        Self::with_scheme("DPoP")
    }

    fn with_scheme(scheme: &'static str) -> Self {
        Self {
            scheme,
            realm: None,
            algs: None,
            error: None,
            description: None,
            scope: None,
            resource_metadata: None,
        }
    }

    /// RFC 6750 §3 / RFC 7617 §2: the protection space.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// RFC 9449 §7.1: the proof algorithms the resource accepts, space-separated.
    pub fn algs(mut self, algs: impl Into<String>) -> Self {
        self.algs = Some(algs.into());
        self
    }

    /// RFC 6750 §3.1: the error code, with an optional human-readable description. A request
    /// without any credentials gets a challenge without an error (RFC 6750 §3.1).
    pub fn error(mut self, code: ErrorCode, description: Option<&str>) -> Self {
        self.error = Some(code);
        self.description = description.map(str::to_owned);
        self
    }

    /// RFC 6750 §3: the scope the resource needs (useful with `insufficient_scope`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// RFC 9728 §5.1: where the protected resource's metadata document is, so that a client
    /// learns which authorization server to ask for a token.
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// The header value: `Bearer realm="…", error="…", error_description="…", scope="…"`.
    /// Attribute values are quoted strings whose characters RFC 6750 §3 limits to
    /// %x20-21 / %x23-5B / %x5D-7E; anything else is replaced, so the value is always valid.
    pub fn to_header_value(&self) -> HeaderValue {
        let mut params = Vec::new();
        if let Some(realm) = &self.realm {
            params.push(format!("realm=\"{}\"", quoted_safe(realm)));
        }
        if let Some(algs) = &self.algs {
            params.push(format!("algs=\"{}\"", quoted_safe(algs)));
        }
        if let Some(code) = self.error {
            params.push(format!("error=\"{}\"", code.as_str()));
        }
        if let Some(description) = &self.description {
            params.push(format!("error_description=\"{}\"", quoted_safe(description)));
        }
        if let Some(scope) = &self.scope {
            params.push(format!("scope=\"{}\"", quoted_safe(scope)));
        }
        if let Some(url) = &self.resource_metadata {
            params.push(format!("resource_metadata=\"{}\"", quoted_safe(url)));
        }
        let value = if params.is_empty() {
            self.scheme.to_owned()
        } else {
            format!("{} {}", self.scheme, params.join(", "))
        };
        // Every character is visible ASCII or a space after `quoted_safe`, so this holds; the
        // bare scheme is the fallback that cannot fail.
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"))
    }
}

/// RFC 6749 §5.2 / RFC 6750 §3: `error_description` and `scope` are limited to
/// %x20-21 / %x23-5B / %x5D-7E (no `"` and no `\`, so no escaping is ever needed).
pub(crate) fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| if matches!(c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e) { c } else { '\'' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_3_challenge_without_credentials_has_no_error() {
        let value = Challenge::bearer().realm("tessera").to_header_value();
        assert_eq!(value, "Bearer realm=\"tessera\"");
    }

    #[test]
    fn rfc6750_3_challenge_names_error_description_and_scope() {
        let value = Challenge::bearer()
            .realm("tessera")
            .error(ErrorCode::InsufficientScope, Some("needs \"openid\""))
            .scope("openid")
            .to_header_value();
        assert_eq!(
            value,
            "Bearer realm=\"tessera\", error=\"insufficient_scope\", \
             error_description=\"needs 'openid'\", scope=\"openid\""
        );
    }

    #[test]
    fn rfc9449_7_1_dpop_challenge_names_the_algorithms_and_the_error() {
        let value = Challenge::dpop()
            .algs("ES256 EdDSA")
            .error(ErrorCode::InvalidDpopProof, Some("no DPoP proof"))
            .to_header_value();
        assert_eq!(
            value,
            "DPoP algs=\"ES256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"no DPoP proof\""
        );
    }

    #[test]
    fn rfc6750_3_challenge_values_never_break_the_quoted_string() {
        let value = Challenge::bearer()
            .error(ErrorCode::InvalidToken, Some("a\\b\"c\r\nd é"))
            .to_header_value();
        assert_eq!(value, "Bearer error=\"invalid_token\", error_description=\"a'b'c''d '\"");
    }

    #[test]
    fn rfc9728_5_1_challenge_carries_resource_metadata() {
        let value = Challenge::bearer()
            .error(ErrorCode::InvalidToken, None)
            .resource_metadata("https://api.example/.well-known/oauth-protected-resource")
            .to_header_value();
        assert_eq!(
            value,
            "Bearer error=\"invalid_token\", \
             resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\""
        );
    }

    #[test]
    fn rfc7617_basic_challenge() {
        assert_eq!(
            Challenge::basic().realm("tessera").to_header_value(),
            "Basic realm=\"tessera\""
        );
    }
}
