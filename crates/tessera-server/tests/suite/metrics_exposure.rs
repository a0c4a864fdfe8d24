//! Who may read `/metrics`: anyone on the main listener by default; only bearers of
//! `metrics_token` when it is set; only clients of `metrics_listen` when that is set.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_server::config::RawConfig;
use tower::ServiceExt;

use crate::common::*;

const TOKEN: &str = "a-metrics-token-of-at-least-32-characters";

async fn metrics_with(app: &TestApp, authorization: Option<&str>) -> Response {
    let mut request = Request::get("/metrics");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    app.request(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn rfc6750_2_1_metrics_token_is_required_when_configured() {
    let app =
        spawn_app_configured(RawConfig { metrics_token: Some(TOKEN.into()), ..Default::default() })
            .await;
    for refused in [None, Some("Bearer wrong"), Some(&*format!("Basic {TOKEN}"))] {
        let res = metrics_with(&app, refused).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{refused:?}");
        assert!(res.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        assert!(!String::from_utf8_lossy(&res.body).contains("tessera_http"));
    }
    let res = metrics_with(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[test]
fn a_short_metrics_token_is_a_configuration_error() {
    let raw = RawConfig {
        issuer: Some(ISSUER.into()),
        key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
        metrics_token: Some("short".into()),
        ..Default::default()
    };
    let message = tessera_server::Settings::validate(raw, false).unwrap_err().to_string();
    assert!(message.contains("`metrics_token`"), "{message}");
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    // A free port for the metrics listener (released before the server binds it).
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (db_path, url) = temp_db();
    let store = tessera_store::Store::connect(&url).await.unwrap();
    let settings = settings_from(
        SigningAlg::ES256,
        &url,
        &KeyEncryptionKey::generate_encoded(),
        RawConfig { metrics_listen: Some(format!("127.0.0.1:{port}")), ..Default::default() },
    );
    let clock = Arc::new(tessera_core::clock::SystemClock);
    let state = tessera_server::build_state(settings, store, clock).await.unwrap();

    // Not on the main listener's routes, on the metrics listener's.
    let main = tessera_server::router(state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let main_port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(tessera_server::serve(state, listener));
    let http = reqwest::Client::new();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let mut answered = None;
    // Up to 10 s: on a loaded CI machine the server may take more than a second to start.
    for _ in 0..500 {
        if let Ok(res) = http.get(&metrics_url).send().await {
            answered = Some(res.status());
            break;
        }
        // A serve that returned could not bind (the probed port was taken meanwhile).
        assert!(!server.is_finished(), "the server stopped before answering on {metrics_url}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(answered, Some(reqwest::StatusCode::OK));
    let main = http.get(format!("http://127.0.0.1:{main_port}/metrics")).send().await.unwrap();
    assert_eq!(main.status(), reqwest::StatusCode::NOT_FOUND);
    let health = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::NOT_FOUND, "only /metrics there");
    server.abort();
    remove_db(&db_path);
}
