//! RFC 9728 protected resource metadata.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn rfc9728_3_metadata_document_is_served_at_both_well_known_paths() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer.validator().await);
    for path in
        ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/api"]
    {
        let answer = call(&app, "GET", path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        let document: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        // RFC 9728 §2 members, from the validator's configuration; §3.3: `resource` is the
        // identifier the client asked about.
        assert_eq!(
            document,
            json!({
                "resource": RESOURCE,
                "authorization_servers": [issuer.issuer],
                "scopes_supported": ["orders:read", "orders:write"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
