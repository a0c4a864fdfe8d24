//! Discovery for an issuer with a path, such as `https://example.com/auth` (issue 15 item 4).
//!
//! Tessera serves its endpoints at the root of its listener, behind a proxy that maps
//! `https://example.com/auth/…` onto it, so `{issuer}/.well-known/openid-configuration`
//! (OIDC Discovery 1.0 §4) already arrives as `/.well-known/openid-configuration`. The forms
//! that put the issuer's path *after* the well-known segment do not: RFC 8414 §3.1 inserts it,
//! `https://example.com/.well-known/oauth-authorization-server/auth`, and the MCP authorization
//! specification also tries `/.well-known/openid-configuration/auth`. A proxy forwards those
//! unchanged, so they are served here too; and so is `/auth/.well-known/openid-configuration`
//! (and the RFC 8414 name under the path) for a proxy that forwards the issuer's path instead
//! of stripping it. Nothing is added for an issuer without a path.

use axum::Router;
use axum::routing::get;

use crate::config::Settings;
use crate::endpoints::discovery::metadata;
use crate::routes::ENDPOINTS;
use crate::state::AppState;

/// The extra discovery paths of the configured issuer.
pub fn paths(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else { return Vec::new() };
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        return Vec::new();
    }
    let mut paths = vec![
        format!("/.well-known/oauth-authorization-server{path}"),
        format!("/.well-known/openid-configuration{path}"),
        format!("{path}/.well-known/openid-configuration"),
        format!("{path}/.well-known/oauth-authorization-server"),
    ];
    // A path the router would read as a parameter, or one the endpoints use already, is left
    // out rather than risking a route conflict at start.
    paths.retain(|p| !p.contains(['{', '}', '*']) && !ENDPOINTS.iter().any(|e| e.path == p));
    paths
}

/// The routes of [`paths`], each answering the metadata document.
pub fn routes(settings: &Settings) -> Router<AppState> {
    paths(settings.issuer.as_str())
        .into_iter()
        .fold(Router::new(), |router, path| router.route(&path, get(metadata)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_3_1_issuer_without_path_adds_nothing() {
        assert!(paths("https://example.com").is_empty());
        assert!(paths("https://example.com/").is_empty());
    }

    #[test]
    fn rfc8414_3_1_path_is_inserted_after_the_well_known_segment() {
        let p = paths("https://example.com/auth/");
        assert!(p.contains(&"/.well-known/oauth-authorization-server/auth".to_owned()), "{p:?}");
        assert!(p.contains(&"/.well-known/openid-configuration/auth".to_owned()), "{p:?}");
        assert!(p.contains(&"/auth/.well-known/openid-configuration".to_owned()), "{p:?}");
        let p = paths("https://example.com/tenants/a");
        assert!(p.contains(&"/.well-known/oauth-authorization-server/tenants/a".to_owned()));
    }
}
