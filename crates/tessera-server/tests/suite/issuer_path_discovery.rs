//! Discovery for an issuer with a path (issue 15 item 4): RFC 8414 §3.1 path insertion and the
//! OIDC Discovery form both answer the metadata of that issuer.

use axum::http::StatusCode;
use tessera_server::config::RawConfig;

use crate::common::*;

const ISSUER_WITH_PATH: &str = "https://example.com/auth";

#[tokio::test]
async fn rfc8414_3_1_metadata_is_served_at_the_path_inserted_well_known_uri() {
    let app = spawn_app_configured(RawConfig {
        issuer: Some(ISSUER_WITH_PATH.into()),
        ..Default::default()
    })
    .await;
    for path in [
        // RFC 8414 §3.1: the well-known segment between host and path.
        "/.well-known/oauth-authorization-server/auth",
        // The MCP specification's OIDC form with path insertion.
        "/.well-known/openid-configuration/auth",
        // OIDC Discovery §4, reached through a proxy that strips `/auth` …
        "/.well-known/openid-configuration",
        // … or one that forwards it.
        "/auth/.well-known/openid-configuration",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        let document = res.json();
        // RFC 8414 §3.3: the issuer in the document is the issuer the client asked about.
        assert_eq!(document["issuer"], ISSUER_WITH_PATH, "{path}");
        assert_eq!(document["token_endpoint"], "https://example.com/auth/token", "{path}");
    }
}

#[tokio::test]
async fn rfc8414_3_1_issuer_without_path_serves_no_inserted_paths() {
    let app = spawn_app().await;
    assert_eq!(app.get("/.well-known/oauth-authorization-server").await.status, StatusCode::OK);
    let res = app.get("/.well-known/oauth-authorization-server/auth").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}
