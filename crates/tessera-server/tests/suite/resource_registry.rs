//! The registry of resource servers (issue 15 item 3): what dynamic and metadata-document
//! clients may ask for, and that operator-registered clients keep their own audiences.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tessera_core::resource_registry::RegisteredResource;
use tessera_core::scope::ScopeSet;
use tessera_core::store::ResourceStore;
use tessera_server::config::RawConfig;

use crate::common::flow::{self, Browser, REDIRECT};
use crate::common::*;

const MCP: &str = "https://mcp.example/mcp";
const BILLING: &str = "https://billing.example";

/// An app with open registration and two resources: the MCP server open to dynamic clients,
/// billing not.
async fn app_with_registry() -> TestApp {
    let app = spawn_app_configured(RawConfig {
        registration_policy: Some("open".into()),
        ..Default::default()
    })
    .await;
    let resource = |id: &str, scope: &str, open: bool| {
        RegisteredResource::new(id, ScopeSet::parse(scope).unwrap(), open, t0()).unwrap()
    };
    app.store.create_resource(&resource(MCP, "mcp:tools mcp:read", true)).await.unwrap();
    app.store.create_resource(&resource(BILLING, "billing:read", false)).await.unwrap();
    flow::create_user(&app).await;
    app
}

async fn register(app: &TestApp, scope: &str) -> Response {
    let metadata = json!({
        "client_name": "Agent",
        "redirect_uris": [REDIRECT],
        "application_type": "web",
        "scope": scope,
    });
    let request = Request::builder()
        .method("POST")
        .uri("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(metadata.to_string()))
        .unwrap();
    app.request(request).await
}

/// Registers a dynamic client that may use the MCP server's scopes; its id and secret.
async fn dynamic_client(app: &TestApp) -> (String, String) {
    let res = register(app, "openid mcp:tools mcp:read").await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", flow::page_text(&res));
    let body = res.json();
    (body["client_id"].as_str().unwrap().into(), body["client_secret"].as_str().unwrap().into())
}

/// The error of an authorization request that is redirected back at once.
async fn authorize_error(app: &TestApp, client_id: &str, scope: &str, extra: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT),
        urlencode(scope),
        flow::CHALLENGE
    );
    let res = Browser::default().get(app, &format!("/authorize?{query}")).await;
    flow::redirect_params(&res).get("error").cloned().unwrap_or_default()
}

/// The code of an authorization request of `client_id` for `openid mcp:tools` (plus `extra`
/// parameters), signed in and approved in the browser flow.
async fn approved_code(app: &TestApp, client_id: &str, extra: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&scope=openid+mcp%3Atools&state=s&code_challenge={}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT),
        flow::CHALLENGE
    );
    let mut browser = Browser::default();
    let page = browser.get(app, &format!("/authorize?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", flow::page_text(&page));
    let page = browser.login(app, &page, flow::USERNAME, flow::PASSWORD).await;
    let done = browser.decide(app, &page, "approve").await;
    flow::redirect_params(&done)["code"].clone()
}

#[tokio::test]
async fn rfc8707_2_dynamic_client_gets_a_token_for_a_registered_resource_in_canonical_form() {
    let app = app_with_registry().await;
    let (id, secret) = dynamic_client(&app).await;
    // Another spelling of the same resource: uppercase host, trailing slash.
    let extra = format!("&resource={}", urlencode("https://MCP.EXAMPLE/mcp/"));
    let code = approved_code(&app, &id, &extra).await;
    let res = flow::exchange(&app, (&id, &secret), &code, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let body: Value = res.json();
    assert_eq!(body["scope"], "mcp:tools openid");
    let (_, claims) = verify_jwt(&app, body["access_token"].as_str().unwrap(), MCP).await;
    assert_eq!(claims["aud"], MCP, "the canonical identifier is the audience");
}

#[tokio::test]
async fn rfc8707_2_unknown_resource_is_invalid_target_for_a_dynamic_client() {
    let app = app_with_registry().await;
    let (id, _) = dynamic_client(&app).await;
    let extra = format!("&resource={}", urlencode("https://elsewhere.example/mcp"));
    assert_eq!(authorize_error(&app, &id, "openid", &extra).await, "invalid_target");
    // A fragment makes it no resource identifier at all.
    let extra = format!("&resource={}", urlencode("https://mcp.example/mcp#x"));
    assert_eq!(authorize_error(&app, &id, "openid", &extra).await, "invalid_target");
}

#[tokio::test]
async fn rfc8707_2_resource_closed_to_dynamic_clients_is_invalid_target() {
    let app = app_with_registry().await;
    let (id, _) = dynamic_client(&app).await;
    let extra = format!("&resource={}", urlencode(BILLING));
    assert_eq!(authorize_error(&app, &id, "openid", &extra).await, "invalid_target");
}

#[tokio::test]
async fn issue15_dynamic_client_gets_only_the_scopes_of_the_resources_it_names() {
    let app = app_with_registry().await;
    let (id, _) = dynamic_client(&app).await;
    // mcp:tools belongs to the MCP server, which this request does not name.
    assert_eq!(authorize_error(&app, &id, "openid mcp:tools", "").await, "invalid_scope");
}

#[tokio::test]
async fn issue15_registration_may_use_only_scopes_of_resources_open_to_dynamic_clients() {
    let app = app_with_registry().await;
    let res = register(&app, "openid billing:read").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_client_metadata");
    // Without a scope, it is given every open one.
    let res = register(&app, "openid").await;
    assert_eq!(res.status, StatusCode::CREATED);
    let metadata = json!({ "client_name": "Any", "redirect_uris": [REDIRECT] });
    let request = Request::builder()
        .method("POST")
        .uri("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(metadata.to_string()))
        .unwrap();
    let body = app.request(request).await.json();
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains("mcp:tools") && !scope.contains("billing:read"), "{scope}");
}

#[tokio::test]
async fn issue15_operator_registered_clients_keep_their_own_audience_lists() {
    let app = app_with_registry().await;
    let secret = app
        .register(tessera_core::client::ClientRegistration {
            audience: vec!["https://api.example/orders".into()],
            ..flow::web_client("operator-app")
        })
        .await
        .unwrap();
    // A registered resource is no target for a client whose audience list omits it.
    let extra = format!("&resource={}", urlencode(MCP));
    assert_eq!(authorize_error(&app, "operator-app", "openid", &extra).await, "invalid_target");
    // Its own audience works, also written with a trailing slash.
    let extra = format!("&resource={}", urlencode("https://api.example/orders/"));
    let code = flow::code_for(&app, "operator-app", &extra).await;
    let res = flow::exchange(&app, ("operator-app", &secret), &code, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = verify_jwt(&app, &token, "https://api.example/orders").await;
    assert_eq!(claims["aud"], "https://api.example/orders");
}

/// Serves one client ID metadata document on a loopback port; returns its URL (the client_id)
/// and the server task.
async fn metadata_document_client() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/agent.json", listener.local_addr().unwrap().port());
    let document = json!({
        "client_id": url,
        "client_name": "MCP agent",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "scope": "openid mcp:tools",
    })
    .to_string();
    let router = axum::Router::new()
        .route("/agent.json", axum::routing::get(move || async move { document }));
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (url, task)
}

#[tokio::test]
async fn rfc8707_2_metadata_document_client_gets_only_registered_open_resources() {
    let app = spawn_app_configured(RawConfig {
        client_id_metadata_documents: Some(true),
        // Loopback documents, as in the CIMD tests (off by default).
        outbound_allow_private_networks: Some(true),
        ..Default::default()
    })
    .await;
    let resource = |id: &str, scope: &str, open: bool| {
        RegisteredResource::new(id, ScopeSet::parse(scope).unwrap(), open, t0()).unwrap()
    };
    app.store.create_resource(&resource(MCP, "mcp:tools", true)).await.unwrap();
    app.store.create_resource(&resource(BILLING, "billing:read", false)).await.unwrap();
    flow::create_user(&app).await;
    let (client_id, task) = metadata_document_client().await;
    let id = urlencode(&client_id);
    let closed = format!("&resource={}", urlencode(BILLING));
    assert_eq!(authorize_error(&app, &id, "openid", &closed).await, "invalid_target");
    let open = format!("&resource={}", urlencode(MCP));
    let code = approved_code(&app, &id, &open).await;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}&client_id={id}",
        urlencode(&code),
        urlencode(REDIRECT),
        flow::VERIFIER
    );
    let res = app.token(None, &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = verify_jwt(&app, &token, MCP).await;
    assert_eq!(claims["aud"], MCP);
    task.abort();
}
