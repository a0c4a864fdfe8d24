//! The one registry of HTTP endpoints: each path with the feature it belongs to and the
//! metadata member that advertises it. The router ([`mount`]) and the metadata document
//! ([`advertised`] → `endpoints::discovery::render`) are both built from [`ENDPOINTS`], so a
//! disabled feature is neither mounted nor advertised, and nothing is advertised that is not
//! served.

use axum::Router;
use axum::routing::{MethodRouter, get, post};

use crate::endpoints::{self, discovery::Advertised, discovery::ClientAuthentication};
use crate::features::{Feature, Features};
use crate::state::AppState;

/// One path of the server.
pub struct Endpoint {
    pub path: &'static str,
    /// The feature it belongs to; `None`: always served.
    pub feature: Option<Feature>,
    /// The metadata member naming its URL (RFC 8414 §2, OIDC Discovery 1.0 §3, RFC 8628 §4),
    /// and the client authentication it accepts, for endpoints that are advertised.
    pub advertised_as: Option<(&'static str, Option<ClientAuthentication>)>,
    /// Its handlers, by method.
    pub handlers: fn() -> MethodRouter<AppState>,
}

impl Endpoint {
    fn is_on(&self, features: &Features) -> bool {
        self.feature.is_none_or(|f| features.is_on(f))
    }
}

/// Every path the main listener can serve. `/metrics` is not here: it is mounted on the main
/// listener or its own ([`crate::app::metrics_router`]), by `metrics_listen`.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/authorize",
        feature: None,
        advertised_as: Some(("authorization_endpoint", None)),
        handlers: || get(endpoints::authorize::authorize),
    },
    Endpoint {
        path: "/login",
        feature: None,
        advertised_as: None,
        handlers: || post(endpoints::authorize::login),
    },
    Endpoint {
        path: "/consent",
        feature: None,
        advertised_as: None,
        handlers: || post(endpoints::authorize::consent),
    },
    Endpoint {
        path: "/token",
        feature: None,
        advertised_as: Some(("token_endpoint", Some(ClientAuthentication::AnyMethod))),
        handlers: || post(endpoints::token::token),
    },
    Endpoint {
        path: "/par",
        feature: Some(Feature::PushedAuthorization),
        // RFC 9126 §2: client authentication as at the token endpoint (whose advertised
        // methods apply, §5); no member of its own.
        advertised_as: Some(("pushed_authorization_request_endpoint", None)),
        handlers: || post(endpoints::par::push),
    },
    Endpoint {
        path: "/device_authorization",
        feature: Some(Feature::DeviceFlow),
        advertised_as: Some(("device_authorization_endpoint", None)),
        handlers: || post(endpoints::device::device_authorization),
    },
    Endpoint {
        path: "/device",
        feature: Some(Feature::DeviceFlow),
        advertised_as: None,
        handlers: || get(endpoints::device::entry).post(endpoints::device::submit_code),
    },
    Endpoint {
        path: "/device/login",
        feature: Some(Feature::DeviceFlow),
        advertised_as: None,
        handlers: || post(endpoints::device::login),
    },
    Endpoint {
        path: "/device/decide",
        feature: Some(Feature::DeviceFlow),
        advertised_as: None,
        handlers: || post(endpoints::device::decide),
    },
    Endpoint {
        path: "/revoke",
        feature: Some(Feature::Revocation),
        // RFC 7009 §2.1: the same client authentication as at /token (confidential clients).
        advertised_as: Some(("revocation_endpoint", Some(ClientAuthentication::Confidential))),
        handlers: || post(endpoints::revoke::revoke_token),
    },
    Endpoint {
        path: "/introspect",
        feature: Some(Feature::Introspection),
        // RFC 7662 §2.1: the caller authenticates; public clients cannot introspect.
        advertised_as: Some(("introspection_endpoint", Some(ClientAuthentication::Confidential))),
        handlers: || post(endpoints::introspect::introspect_token),
    },
    Endpoint {
        path: "/userinfo",
        feature: Some(Feature::Userinfo),
        advertised_as: Some(("userinfo_endpoint", None)),
        handlers: || get(endpoints::userinfo::userinfo).post(endpoints::userinfo::userinfo),
    },
    Endpoint {
        path: "/logout",
        feature: Some(Feature::Logout),
        advertised_as: Some(("end_session_endpoint", None)),
        handlers: || get(endpoints::logout::logout).post(endpoints::logout::logout),
    },
    Endpoint {
        path: "/register",
        feature: Some(Feature::Registration),
        advertised_as: Some(("registration_endpoint", None)),
        handlers: || post(endpoints::register::register),
    },
    Endpoint {
        path: "/register/{client_id}",
        feature: Some(Feature::Registration),
        // RFC 7592 §3: a client learns it from its registration answer.
        advertised_as: None,
        handlers: || {
            get(endpoints::register::read)
                .put(endpoints::register::update)
                .delete(endpoints::register::delete)
        },
    },
    Endpoint {
        path: "/jwks.json",
        feature: None,
        advertised_as: Some(("jwks_uri", None)),
        handlers: || get(endpoints::jwks::jwks),
    },
    Endpoint {
        path: "/assets/tessera.css",
        feature: None,
        advertised_as: None,
        handlers: || get(endpoints::authorize::stylesheet),
    },
    Endpoint {
        path: "/.well-known/oauth-authorization-server",
        feature: None,
        advertised_as: None,
        handlers: || get(endpoints::discovery::metadata),
    },
    Endpoint {
        path: "/.well-known/openid-configuration",
        feature: None,
        advertised_as: None,
        handlers: || get(endpoints::discovery::metadata),
    },
    Endpoint {
        path: "/healthz",
        feature: None,
        advertised_as: None,
        handlers: || get(endpoints::health::healthz),
    },
    Endpoint {
        path: "/readyz",
        feature: None,
        advertised_as: None,
        handlers: || get(endpoints::health::readyz),
    },
];

/// The routes of the endpoints whose feature is on.
pub fn mount(features: &Features) -> Router<AppState> {
    ENDPOINTS
        .iter()
        .filter(|e| e.is_on(features))
        .fold(Router::new(), |router, e| router.route(e.path, (e.handlers)()))
}

/// What the metadata document advertises: the endpoints whose feature is on.
pub fn advertised(features: &Features) -> impl Iterator<Item = Advertised> + '_ {
    ENDPOINTS.iter().filter(|e| e.is_on(features)).filter_map(|e| {
        e.advertised_as.map(|(member, client_auth)| Advertised {
            member,
            path: e.path,
            client_auth,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_registered_once() {
        let mut paths: Vec<&str> = ENDPOINTS.iter().map(|e| e.path).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), before);
    }

    #[test]
    fn a_disabled_feature_advertises_nothing() {
        let features = Features::without([Feature::DeviceFlow, Feature::Logout]);
        let members: Vec<&str> = advertised(&features).map(|a| a.member).collect();
        assert!(!members.contains(&"device_authorization_endpoint"));
        assert!(!members.contains(&"end_session_endpoint"));
        assert!(members.contains(&"revocation_endpoint") && members.contains(&"token_endpoint"));
    }
}
