//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): an https
//! client_id whose document is fetched through the SSRF-guarded fetcher, validated, cached per
//! its `Cache-Control`, and shown to the user as a client nobody vouched for.
//!
//! The documents are served by a real HTTP server on a loopback port. The SSRF guard refuses
//! loopback addresses and plain http, so these tests turn on `outbound_allow_private_networks`
//! (off by default, on only with `--dev`), the one switch that admits them; the test
//! `cimd_a_private_address_is_never_fetched` shows the guard with the switch off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use tessera_server::config::RawConfig;

use crate::common::flow::{self, Browser, CHALLENGE, REDIRECT, VERIFIER};
use crate::common::*;

/// A loopback HTTP server publishing documents, counting the requests for each.
struct DocumentServer {
    base: String,
    hits: Arc<[AtomicUsize; 6]>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PATHS: [&str; 6] =
    ["/good.json", "/nocache.json", "/mismatch.json", "/big.json", "/moved.json", "/loopback.json"];

impl DocumentServer {
    async fn start() -> DocumentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let hits: Arc<[AtomicUsize; 6]> = Arc::new(Default::default());
        let mut router = axum::Router::new();
        for (i, path) in PATHS.into_iter().enumerate() {
            let (base, hits) = (base.clone(), hits.clone());
            router = router.route(
                path,
                axum::routing::get(move || async move {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                    document(&base, path).into_response()
                }),
            );
        }
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        DocumentServer { base, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits[PATHS.iter().position(|p| *p == path).unwrap()].load(Ordering::SeqCst)
    }
}

fn document(base: &str, path: &str) -> axum::response::Response {
    let doc = |client_id: String, redirect: &str| {
        json!({
            "client_id": client_id,
            "client_name": "Research Agent",
            "client_uri": "https://agent.example",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile email",
        })
        .to_string()
    };
    let cached = [(header::CACHE_CONTROL, "public, max-age=600")];
    match path {
        "/good.json" => (cached, doc(format!("{base}{path}"), REDIRECT)).into_response(),
        "/nocache.json" => {
            ([(header::CACHE_CONTROL, "no-store")], doc(format!("{base}{path}"), REDIRECT))
                .into_response()
        }
        "/mismatch.json" => (cached, doc(format!("{base}/good.json"), REDIRECT)).into_response(),
        "/big.json" => {
            let mut padded: serde_json::Value =
                serde_json::from_str(&doc(format!("{base}{path}"), REDIRECT)).unwrap();
            padded["padding"] = "x".repeat(6 * 1024).into();
            (cached, padded.to_string()).into_response()
        }
        "/moved.json" => {
            (StatusCode::FOUND, [(header::LOCATION, format!("{base}/good.json"))]).into_response()
        }
        _ => (cached, doc(format!("{base}{path}"), "http://127.0.0.1:9/cb")).into_response(),
    }
}

async fn app_with(raw: RawConfig) -> TestApp {
    spawn_app_configured(RawConfig {
        client_id_metadata_documents: Some(true),
        outbound_allow_private_networks: Some(true),
        ..raw
    })
    .await
}

fn authorize_path(client_id: &str, redirect: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        urlencode(client_id),
        urlencode(redirect)
    )
}

#[tokio::test]
async fn cimd_support_is_advertised_only_when_enabled() {
    let off = spawn_app().await;
    let metadata = off.get("/.well-known/oauth-authorization-server").await.json();
    assert!(metadata.get("client_id_metadata_document_supported").is_none());
    let on = app_with(RawConfig::default()).await;
    let metadata = on.get("/.well-known/openid-configuration").await.json();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
}

#[tokio::test]
async fn cimd_a_client_from_its_document_completes_the_code_flow_with_an_unverified_consent() {
    let docs = DocumentServer::start().await;
    let app = app_with(RawConfig::default()).await;
    flow::create_user(&app).await;
    let client_id = docs.url("/good.json");
    let mut browser = Browser::default();
    let page = browser.get(&app, &authorize_path(&client_id, REDIRECT)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", flow::page_text(&page));
    let page = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    let html = flow::page_text(&page);
    // The document's name, the host the answer goes to, and that nobody vouched for it.
    assert!(html.contains("<strong id=\"client-name\">Research Agent</strong>"), "{html}");
    assert!(html.contains("<strong id=\"redirect-host\">app.example</strong>"), "{html}");
    assert!(html.contains("id=\"unverified\""), "{html}");
    let done = browser.decide(&app, &page, "approve").await;
    let code = flow::redirect_params(&done)["code"].clone();
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}",
        urlencode(&code),
        urlencode(REDIRECT),
        urlencode(&client_id)
    );
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let claims = verify_with_jwks_of(&app, res.json()["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], client_id.as_str());
    // RFC 9111 §5.2.2.1: `max-age=600` was honoured: one fetch for the whole flow.
    assert_eq!(docs.hits("/good.json"), 1);
}

#[tokio::test]
async fn cimd_no_store_documents_are_fetched_again() {
    let docs = DocumentServer::start().await;
    let app = app_with(RawConfig::default()).await;
    let client_id = docs.url("/nocache.json");
    for _ in 0..2 {
        let page = app.get(&authorize_path(&client_id, REDIRECT)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", flow::page_text(&page));
    }
    assert_eq!(docs.hits("/nocache.json"), 2);
}

#[tokio::test]
async fn cimd_a_redirect_uri_the_document_does_not_list_is_refused_without_redirecting() {
    let docs = DocumentServer::start().await;
    let app = app_with(RawConfig::default()).await;
    let page = app.get(&authorize_path(&docs.url("/good.json"), "https://evil.example/cb")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.header("location").is_none());
}

#[tokio::test]
async fn cimd_mismatched_oversized_and_redirected_documents_are_refused() {
    let docs = DocumentServer::start().await;
    let app = app_with(RawConfig::default()).await;
    for path in ["/mismatch.json", "/big.json", "/moved.json"] {
        let page = app.get(&authorize_path(&docs.url(path), REDIRECT)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.header("location").is_none(), "{path}");
        assert_eq!(docs.hits(path), 1, "{path} was fetched once");
    }
    // No redirect was followed.
    assert_eq!(docs.hits("/good.json"), 0);
}

#[tokio::test]
async fn cimd_a_loopback_redirect_uri_is_flagged_on_the_consent_page() {
    let docs = DocumentServer::start().await;
    let app = app_with(RawConfig::default()).await;
    flow::create_user(&app).await;
    let mut browser = Browser::default();
    let page = browser
        .get(&app, &authorize_path(&docs.url("/loopback.json"), "http://127.0.0.1:9/cb"))
        .await;
    let page = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    let html = flow::page_text(&page);
    assert!(html.contains("<strong id=\"redirect-host\">127.0.0.1</strong>"), "{html}");
    assert!(html.contains("id=\"loopback\""), "{html}");
}

#[tokio::test]
async fn cimd_a_private_address_is_never_fetched() {
    let docs = DocumentServer::start().await;
    // The guard as deployed: no private networks. An https client_id on a loopback address
    // is refused before any connection (and an http one is not a document URL at all).
    let app = spawn_app_configured(RawConfig {
        client_id_metadata_documents: Some(true),
        ..Default::default()
    })
    .await;
    let https = docs.url("/good.json").replacen("http://", "https://", 1);
    for client_id in [https, docs.url("/good.json")] {
        let page = app.get(&authorize_path(&client_id, REDIRECT)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client_id}");
    }
    assert_eq!(docs.hits("/good.json"), 0);
}

#[tokio::test]
async fn cimd_the_operator_domain_policy_decides_which_hosts_are_fetched() {
    let docs = DocumentServer::start().await;
    let denied = app_with(RawConfig {
        client_id_metadata_document_denied_hosts: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    })
    .await;
    let page = denied.get(&authorize_path(&docs.url("/good.json"), REDIRECT)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let elsewhere = app_with(RawConfig {
        client_id_metadata_document_hosts: Some(vec!["agents.example".into()]),
        ..Default::default()
    })
    .await;
    let page = elsewhere.get(&authorize_path(&docs.url("/good.json"), REDIRECT)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(docs.hits("/good.json"), 0, "neither fetched it");
    let allowed = app_with(RawConfig {
        client_id_metadata_document_hosts: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    })
    .await;
    let page = allowed.get(&authorize_path(&docs.url("/good.json"), REDIRECT)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", flow::page_text(&page));
}
