//! RFC 9728 protected resource metadata: what a client (an MCP client first of all) reads to
//! learn which authorization server issues tokens for this API and which scopes it knows.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::validator::TokenValidator;

/// RFC 9728 §3: the well-known suffix.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The path of the metadata of `resource`: RFC 9728 §3.1 inserts the well-known suffix between
/// the host and the resource's path (`/.well-known/oauth-protected-resource/orders` for
/// `https://api.example/orders`).
pub(crate) fn metadata_path(resource: &str) -> String {
    let path = url::Url::parse(resource)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{WELL_KNOWN}{path}")
}

/// The absolute URL of the metadata of `resource` (checked to parse by the configuration).
pub(crate) fn metadata_url(resource: &str) -> String {
    match url::Url::parse(resource) {
        Ok(mut url) => {
            url.set_path(&metadata_path(resource));
            url.set_query(None);
            url.to_string()
        }
        Err(_) => format!("{}{WELL_KNOWN}", resource.trim_end_matches('/')),
    }
}

impl TokenValidator {
    /// The metadata document (RFC 9728 §2), built from the configuration.
    pub fn metadata_document(&self) -> serde_json::Value {
        let inner = &self.0;
        let mut document = json!({
            "resource": inner.resource,
            "authorization_servers": inner.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            // RFC 6750 §2.1 only: the form body and the query are not read.
            "bearer_methods_supported": ["header"],
        });
        // RFC 9728 §2 `dpop_signing_alg_values_supported`, when DPoP proofs are checked here.
        if let Some(algs) = &inner.dpop_algs {
            document["dpop_signing_alg_values_supported"] =
                json!(algs.split(' ').collect::<Vec<_>>());
        }
        if !inner.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(inner.scopes_supported);
        }
        document
    }

    /// A router serving the metadata at `/.well-known/oauth-protected-resource` and, when the
    /// resource identifier has a path, at the path-suffixed form of RFC 9728 §3.1 too. Merge it
    /// into the application outside the authentication layer (it is public).
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let document = self.metadata_document().to_string();
        let serve = move || {
            let document = document.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    document,
                )
                    .into_response()
            }
        };
        let suffixed = metadata_path(&self.0.resource);
        let router = Router::new().route(WELL_KNOWN, get(serve.clone()));
        if suffixed == WELL_KNOWN { router } else { router.route(&suffixed, get(serve)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9728_3_1_metadata_path_inserts_the_suffix_before_the_resource_path() {
        assert_eq!(metadata_path("https://api.example"), WELL_KNOWN);
        assert_eq!(metadata_path("https://api.example/"), WELL_KNOWN);
        assert_eq!(
            metadata_url("https://api.example/orders/"),
            "https://api.example/.well-known/oauth-protected-resource/orders"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
    }
}
