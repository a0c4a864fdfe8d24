//! Optional features (`disabled_features`): a feature that is off is neither mounted nor
//! advertised; one that is on is both (the router and the metadata come from one registry).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tessera_server::config::RawConfig;

use crate::common::*;

const METADATA_PATHS: [&str; 2] =
    ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"];

/// A feature as seen from outside: its configured name, a request to each of its paths, and
/// the metadata members it advertises.
struct Exposed {
    name: &'static str,
    requests: Vec<(&'static str, &'static str)>,
    members: Vec<&'static str>,
}

fn features() -> Vec<Exposed> {
    let exposed = |name, requests, members| Exposed { name, requests, members };
    vec![
        exposed(
            "device_flow",
            vec![
                ("POST", "/device_authorization"),
                ("GET", "/device"),
                ("POST", "/device"),
                ("POST", "/device/login"),
                ("POST", "/device/decide"),
            ],
            vec!["device_authorization_endpoint"],
        ),
        exposed(
            "introspection",
            vec![("POST", "/introspect")],
            vec![
                "introspection_endpoint",
                "introspection_endpoint_auth_methods_supported",
                "introspection_endpoint_auth_signing_alg_values_supported",
            ],
        ),
        exposed(
            "revocation",
            vec![("POST", "/revoke")],
            vec![
                "revocation_endpoint",
                "revocation_endpoint_auth_methods_supported",
                "revocation_endpoint_auth_signing_alg_values_supported",
            ],
        ),
        exposed(
            "userinfo",
            vec![("GET", "/userinfo"), ("POST", "/userinfo")],
            vec!["userinfo_endpoint"],
        ),
        exposed(
            "logout",
            vec![("GET", "/logout"), ("POST", "/logout")],
            vec!["end_session_endpoint"],
        ),
    ]
}

async fn send(app: &TestApp, method: &str, path: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    app.request(request).await.status
}

async fn metadata_documents(app: &TestApp) -> Vec<serde_json::Value> {
    let mut documents = Vec::new();
    for path in METADATA_PATHS {
        documents.push(app.get(path).await.json());
    }
    documents
}

#[tokio::test]
async fn a_disabled_feature_answers_404_and_is_absent_from_both_metadata_documents() {
    for Exposed { name, requests, members } in features() {
        let app = spawn_app_configured(RawConfig {
            disabled_features: Some(vec![name.to_owned()]),
            ..Default::default()
        })
        .await;
        for (method, path) in &requests {
            assert_eq!(
                send(&app, method, path).await,
                StatusCode::NOT_FOUND,
                "{name}: {method} {path}"
            );
        }
        for doc in metadata_documents(&app).await {
            for member in &members {
                assert!(doc.get(*member).is_none(), "{name}: {member} still advertised");
            }
            // The other features are untouched.
            for other in features() {
                if other.name != name {
                    let other_name = other.name;
                    assert!(doc.get(other.members[0]).is_some(), "{name} off removed {other_name}");
                }
            }
        }
    }
}

#[tokio::test]
async fn enabled_features_are_mounted_and_advertised_in_both_metadata_documents() {
    let app = spawn_app().await;
    for Exposed { name, requests, members } in features() {
        for (method, path) in &requests {
            assert_ne!(
                send(&app, method, path).await,
                StatusCode::NOT_FOUND,
                "{name}: {method} {path}"
            );
        }
        for doc in metadata_documents(&app).await {
            for member in &members {
                assert!(doc.get(*member).is_some(), "{name}: {member} not advertised");
            }
        }
    }
    let doc = app.get(METADATA_PATHS[0]).await.json();
    assert_eq!(doc["device_authorization_endpoint"], format!("{ISSUER}/device_authorization"));
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
}

#[tokio::test]
async fn rfc8628_without_the_device_flow_the_device_code_grant_is_unsupported() {
    let app = spawn_app_configured(RawConfig {
        disabled_features: Some(vec!["device_flow".into()]),
        ..Default::default()
    })
    .await;
    let secret =
        app.client("tv", tessera_core::client::AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let res = app
        .token(
            Some(("tv", &secret)),
            "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x",
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "unsupported_grant_type");
    for doc in metadata_documents(&app).await {
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
    }
}

#[test]
fn an_unknown_feature_name_is_a_configuration_error_naming_the_key() {
    let raw = RawConfig {
        issuer: Some(ISSUER.into()),
        key_encryption_key: Some(tessera_core::keys::KeyEncryptionKey::generate_encoded()),
        disabled_features: Some(vec!["registration".into()]),
        ..Default::default()
    };
    let message = tessera_server::Settings::validate(raw, false).unwrap_err().to_string();
    assert!(
        message.contains("`disabled_features`") && message.contains("device_flow"),
        "{message}"
    );
}
