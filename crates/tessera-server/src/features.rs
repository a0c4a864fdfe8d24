//! The optional features of the server. A feature that is off does not exist: its routes are
//! not mounted and its metadata is not advertised (node-oidc-provider's model), because the
//! router and the metadata document are both built from one registry (`routes::ENDPOINTS`).

use std::collections::BTreeSet;
use std::fmt;

/// A part of the server that the configuration can turn off (`disabled_features`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// RFC 8628: `/device_authorization`, the `/device` verification pages and the
    /// `urn:ietf:params:oauth:grant-type:device_code` grant.
    DeviceFlow,
    /// RFC 7662: `/introspect`.
    Introspection,
    /// RFC 7009: `/revoke`.
    Revocation,
    /// OIDC Core §5.3: `/userinfo`.
    Userinfo,
    /// OIDC RP-Initiated Logout 1.0: `/logout` (`end_session_endpoint`).
    Logout,
    /// RFC 7591 / RFC 7592: `/register` (`registration_endpoint`). Not in [`Feature::ALL`]:
    /// it is off unless `registration_policy` opens it, never by `disabled_features`.
    Registration,
    /// RFC 8693: the `urn:ietf:params:oauth:grant-type:token-exchange` grant.
    TokenExchange,
    /// RFC 9126: `/par`, and `request_uri` at `/authorize`.
    PushedAuthorization,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Self::DeviceFlow,
        Self::Introspection,
        Self::Revocation,
        Self::Userinfo,
        Self::Logout,
        Self::TokenExchange,
        Self::PushedAuthorization,
    ];

    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceFlow => "device_flow",
            Self::Introspection => "introspection",
            Self::Revocation => "revocation",
            Self::Userinfo => "userinfo",
            Self::Logout => "logout",
            Self::Registration => "registration",
            Self::TokenExchange => "token_exchange",
            Self::PushedAuthorization => "pushed_authorization",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which optional features are on: all of them unless the configuration turns some off, and
/// registration only when its policy is not `off`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    disabled: BTreeSet<Feature>,
    registration: bool,
}

impl Features {
    /// Every feature on except `disabled`.
    pub fn without(disabled: impl IntoIterator<Item = Feature>) -> Self {
        Self { disabled: disabled.into_iter().collect(), registration: false }
    }

    /// These features with `/register` served or not (`registration_policy`).
    pub fn with_registration(self, on: bool) -> Self {
        Self { registration: on, ..self }
    }

    /// Parses the configured names of the features to turn off; `Err` names the unknown one
    /// and lists the valid names.
    pub fn parse_disabled<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut disabled = BTreeSet::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let Some(feature) = Feature::parse(name) else {
                let valid: Vec<&str> = Feature::ALL.iter().map(|f| f.as_str()).collect();
                return Err(format!(
                    "`{name}` is not a feature; the features are {}",
                    valid.join(", ")
                ));
            };
            disabled.insert(feature);
        }
        Ok(Self { disabled, registration: false })
    }

    pub fn is_on(&self, feature: Feature) -> bool {
        match feature {
            Feature::Registration => self.registration,
            other => !self.disabled.contains(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_is_on_by_default_and_names_round_trip() {
        let all = Features::default();
        for feature in Feature::ALL {
            assert!(all.is_on(feature));
            assert_eq!(Feature::parse(feature.as_str()), Some(feature));
        }
    }

    #[test]
    fn disabled_features_are_parsed_and_unknown_names_refused() {
        let f = Features::parse_disabled(["device_flow", " introspection", ""]).unwrap();
        assert!(!f.is_on(Feature::DeviceFlow) && !f.is_on(Feature::Introspection));
        assert!(f.is_on(Feature::Revocation));
        let e = Features::parse_disabled(["registration"]).unwrap_err();
        assert!(e.contains("`registration`") && e.contains("device_flow"), "{e}");
    }
}
