//! Pushed authorization requests (RFC 9126): `/par` authenticates the client and validates the
//! request; `/authorize` takes a `request_uri` once, before it expires, and only for its client.

use crate::common::flow::{self, Browser, page_text, redirect_params};
use crate::common::*;
use axum::http::StatusCode;
use tessera_core::client::ClientRegistration;
use tessera_server::config::RawConfig;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

async fn setup(registration: ClientRegistration) -> (TestApp, String) {
    let app = spawn_app().await;
    flow::create_user(&app).await;
    let secret = app.register(registration).await.unwrap();
    (app, secret)
}

async fn push(app: &TestApp, secret: &str, extra: &str) -> Response {
    let form = format!("{}{extra}", flow::authorize_query("web", ""));
    app.post_form("/par", Some(("web", secret)), &form).await
}

fn authorize_path(request_uri: &str) -> String {
    format!("/authorize?client_id=web&request_uri={}", urlencode(request_uri))
}

/// RFC 9126 §2.2 and §4: a pushed request gets a `request_uri` (201, at most 60 s), which
/// `/authorize` accepts with the client_id and leads to a code bound to the pushed PKCE
/// challenge; presented again, it is refused.
#[tokio::test]
async fn rfc9126_4_request_uri_is_used_once() {
    let (app, secret) = setup(flow::web_client("web")).await;
    let res = push(&app, &secret, "").await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", page_text(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with(PREFIX) && request_uri.len() > PREFIX.len() + 40);
    assert!(body["expires_in"].as_i64().unwrap() <= 60);

    let mut browser = Browser::default();
    // RFC 9126 §4: only the pushed parameters count; these would otherwise be refused.
    let path =
        format!("{}&scope=admin&redirect_uri=https://evil.example/", authorize_path(&request_uri));
    let page = browser.get(&app, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
    let mut done = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    if done.status == StatusCode::OK {
        done = browser.decide(&app, &done, "approve").await;
    }
    let params = redirect_params(&done);
    assert_eq!(params["state"], "xyz");
    let res = flow::exchange(&app, ("web", &secret), &params["code"], "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));

    let replay = Browser::default().get(&app, &authorize_path(&request_uri)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(page_text(&replay).contains("already used"));
    assert!(replay.header("location").is_none(), "never redirected");
}

/// RFC 9126 §2.2: the `request_uri` expires; an expired one is refused.
#[tokio::test]
async fn rfc9126_2_2_expired_request_uri_is_refused() {
    let (app, secret) = setup(flow::web_client("web")).await;
    let request_uri =
        push(&app, &secret, "").await.json()["request_uri"].as_str().unwrap().to_owned();
    app.clock.advance(60);
    let res = Browser::default().get(&app, &authorize_path(&request_uri)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(page_text(&res).contains("expired"));
}

/// RFC 9126 §4: a `request_uri` works only with the client that pushed it.
#[tokio::test]
async fn rfc9126_4_request_uri_of_another_client_is_refused() {
    let (app, secret) = setup(flow::web_client("web")).await;
    app.register(flow::web_client("other")).await.unwrap();
    let request_uri =
        push(&app, &secret, "").await.json()["request_uri"].as_str().unwrap().to_owned();
    let path = format!("/authorize?client_id=other&request_uri={}", urlencode(&request_uri));
    assert_eq!(Browser::default().get(&app, &path).await.status, StatusCode::BAD_REQUEST);
    // The other client's attempt did not use it up.
    let page = Browser::default().get(&app, &authorize_path(&request_uri)).await;
    assert_eq!(page.status, StatusCode::OK);
}

/// RFC 9126 §2.1 and §2.3: the push authenticates the client and is validated as an
/// authorization request, with JSON errors.
#[tokio::test]
async fn rfc9126_2_3_push_is_authenticated_and_validated() {
    let (app, secret) = setup(flow::web_client("web")).await;
    let res = push(&app, "wrong-secret-wrong-secret-wrong", "").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
    let res = push(&app, &secret, "&request_uri=urn:x").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_request");
    let form = flow::authorize_query("web", "")
        .replace("https%3A%2F%2Fapp.example%2Fcb", "https%3A%2F%2Fevil.example%2F");
    let res = app.post_form("/par", Some(("web", &secret)), &form).await;
    assert_eq!(res.json()["error"], "invalid_request");
    let form =
        flow::authorize_query("web", "").replace("scope=openid+profile+email", "scope=admin");
    let res = app.post_form("/par", Some(("web", &secret)), &form).await;
    assert_eq!(res.json()["error"], "invalid_scope");
    let form = flow::authorize_query("web", "").replace("client_id=web", "client_id=other");
    let res = app.post_form("/par", Some(("web", &secret)), &form).await;
    assert_eq!(res.json()["error"], "invalid_request");
}

/// RFC 9126 §6: a client registered with `require_pushed_authorization_requests` gets no code
/// for a request sent through the browser.
#[tokio::test]
async fn rfc9126_6_client_requiring_pushed_requests_is_refused_without_one() {
    let registration = ClientRegistration {
        require_pushed_authorization_requests: true,
        ..flow::web_client("web")
    };
    let (app, secret) = setup(registration).await;
    let direct = format!("/authorize?{}", flow::authorize_query("web", ""));
    let res = Browser::default().get(&app, &direct).await;
    assert_eq!(res.status, StatusCode::FOUND);
    let params = redirect_params(&res);
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("request_uri"));
    let request_uri =
        push(&app, &secret, "").await.json()["request_uri"].as_str().unwrap().to_owned();
    let page = Browser::default().get(&app, &authorize_path(&request_uri)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
}

/// RFC 9126 §5: discovery names the endpoint when the feature is on, and nothing when off.
#[tokio::test]
async fn rfc9126_5_discovery_advertises_par_only_when_enabled() {
    let app = spawn_app().await;
    let doc = app.get("/.well-known/oauth-authorization-server").await.json();
    assert_eq!(doc["pushed_authorization_request_endpoint"], format!("{ISSUER}/par"));
    assert_eq!(doc["require_pushed_authorization_requests"], false);
    let off = spawn_app_configured(RawConfig {
        disabled_features: Some(vec!["pushed_authorization".into()]),
        ..Default::default()
    })
    .await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let doc = off.get(path).await.json();
        assert_eq!(doc.get("pushed_authorization_request_endpoint"), None);
        assert_eq!(doc.get("require_pushed_authorization_requests"), None);
    }
    let res = off.post_form("/par", None, "client_id=web").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}
