//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592): the
//! policies, the metadata rules shared with the CLI, spam limits, stale-client pruning, and
//! what a dynamic client may and may not do afterwards.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tessera_core::client::InitialAccessToken;
use tessera_core::client_id::ClientId;
use tessera_core::secret::Secret;
use tessera_core::store::{ClientStore, InitialAccessTokenStore};
use tessera_server::config::RawConfig;

use crate::common::flow::{self, Browser, REDIRECT};
use crate::common::*;

async fn app_with_policy(policy: &str) -> TestApp {
    spawn_app_configured(RawConfig {
        registration_policy: Some(policy.into()),
        ..Default::default()
    })
    .await
}

/// A web client's registration document.
fn web_metadata(name: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": [REDIRECT],
        "application_type": "web",
        "scope": "openid profile email",
        "client_uri": "https://app.example",
    })
}

async fn send_json(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    app.request(request.body(body).unwrap()).await
}

async fn register(app: &TestApp, token: Option<&str>, metadata: &Value) -> Response {
    send_json(app, "POST", "/register", token, Some(metadata)).await
}

/// The path of a registration's management URI.
fn management_path(registered: &Value) -> String {
    let uri = registered["registration_client_uri"].as_str().unwrap();
    uri.strip_prefix(ISSUER).unwrap().to_owned()
}

#[tokio::test]
async fn rfc7591_registration_is_neither_served_nor_advertised_when_the_policy_is_off() {
    let app = spawn_app().await;
    let res = register(&app, None, &web_metadata("App")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let metadata = app.get("/.well-known/oauth-authorization-server").await.json();
    assert!(metadata.get("registration_endpoint").is_none(), "{metadata}");
}

#[tokio::test]
async fn rfc7591_3_open_policy_registers_a_client_and_discovery_advertises_the_endpoint() {
    let app = app_with_policy("open").await;
    for document in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
    {
        let metadata = app.get(document).await.json();
        assert_eq!(metadata["registration_endpoint"], format!("{ISSUER}/register"));
    }
    // RFC 7591 §2: members the server does not know are ignored, `first_party` included.
    let mut document = web_metadata("Travel Planner");
    document["first_party"] = true.into();
    document["software_id"] = "4NRB1-0XZABZI9E6-5SM3R".into();
    let res = register(&app, None, &document).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", flow::page_text(&res));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    // RFC 7591 §3.2.1: the client's identity, its credentials and its metadata.
    let client_id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    let token = body["registration_access_token"].as_str().unwrap();
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].is_i64());
    assert_eq!(body["client_name"], "Travel Planner");
    assert_eq!(body["redirect_uris"], json!([REDIRECT]));
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["application_type"], "web");
    assert_eq!(body["registration_client_uri"], format!("{ISSUER}/register/{client_id}"));
    assert!(body.get("software_id").is_none());

    let stored = app.store.find_client(&ClientId::parse(client_id).unwrap()).await.unwrap();
    let stored = stored.unwrap();
    assert!(stored.is_dynamic() && !stored.first_party, "never first-party");
    assert!(stored.secret_hash.unwrap().verify(secret));
    assert!(stored.dynamic.unwrap().access_token_hash.verify(token), "only the hash is stored");
}

#[tokio::test]
async fn rfc7591_3_initial_access_token_policy_requires_a_live_token() {
    let app = app_with_policy("initial_access_token").await;
    let document = web_metadata("App");
    // RFC 7591 §3 with RFC 6750 §3.1: no token is a bare Bearer challenge, a wrong one
    // `invalid_token`.
    let res = register(&app, None, &document).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.header("www-authenticate").unwrap().starts_with("Bearer"));
    let res = register(&app, Some("not-a-token-we-made"), &document).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_token");

    let single = Secret::generate();
    let reusable = Secret::generate();
    for (secret, single_use) in [(&single, true), (&reusable, false)] {
        let token = InitialAccessToken {
            hash: secret.hash(),
            single_use,
            expires_at: None,
            created_at: t0(),
        };
        app.store.create_initial_access_token(&token).await.unwrap();
    }
    // Bad metadata does not spend a single-use token.
    let res = register(&app, Some(single.expose()), &json!({"client_name": "App"})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = register(&app, Some(single.expose()), &document).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", flow::page_text(&res));
    let res = register(&app, Some(single.expose()), &document).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "a single-use token is spent");
    assert_eq!(res.json()["error"], "invalid_token");
    for _ in 0..2 {
        let res = register(&app, Some(reusable.expose()), &document).await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn rfc7591_3_2_2_bad_metadata_is_refused_with_the_registration_error_codes() {
    let app = app_with_policy("open").await;
    let refused = |res: Response, code: &str| {
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", flow::page_text(&res));
        let body = res.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    };
    let with = |member: &str, value: Value| {
        let mut doc = web_metadata("App");
        doc[member] = value;
        doc
    };
    // Redirect URIs: plain http off loopback, a fragment, loopback for a web application.
    for uri in ["http://app.example/cb", "https://app.example/cb#x", "http://127.0.0.1/cb"] {
        refused(
            register(&app, None, &with("redirect_uris", json!([uri]))).await,
            "invalid_redirect_uri",
        );
    }
    refused(register(&app, None, &with("redirect_uris", json!([]))).await, "invalid_redirect_uri");
    // Other members.
    for (member, value) in [
        ("grant_types", json!(["client_credentials"])),
        ("grant_types", json!(["password"])),
        ("scope", json!("openid admin:write")),
        ("token_endpoint_auth_method", json!("client_secret_jwt")),
        ("jwks_uri", json!("http://app.example/jwks")),
        ("logo_uri", json!("javascript:alert(1)")),
        ("application_type", json!("desktop")),
        ("redirect_uris", json!("https://app.example/cb")),
        ("client_name", json!("")),
    ] {
        refused(register(&app, None, &with(member, value)).await, "invalid_client_metadata");
    }
    let mut both = web_metadata("App");
    both["jwks"] = json!({"keys": []});
    both["jwks_uri"] = json!("https://app.example/jwks");
    refused(register(&app, None, &both).await, "invalid_client_metadata");
    // Not JSON at all, or not sent as JSON.
    let request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    refused(app.request(request).await, "invalid_client_metadata");
    let request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("client_name=App"))
        .unwrap();
    refused(app.request(request).await, "invalid_request");
}

#[tokio::test]
async fn rfc8252_native_clients_register_loopback_and_private_use_redirects_as_public_clients() {
    let app = app_with_policy("open").await;
    let res = register(
        &app,
        None,
        &json!({
            "client_name": "Desktop Agent",
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1:33418/callback", "com.example.agent:/cb"],
        }),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", flow::page_text(&res));
    let body = res.json();
    assert!(body.get("client_secret").is_none(), "a public client has no secret");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    // RFC 7591 §2: the scope it did not ask for is assigned: the open registration scopes.
    assert_eq!(body["scope"], "email offline_access openid profile");
}

#[tokio::test]
async fn registration_spam_is_limited_per_source() {
    let app = spawn_app_configured(RawConfig {
        registration_policy: Some("open".into()),
        registrations_per_source: Some(2),
        ..Default::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(register(&app, None, &web_metadata("App")).await.status, StatusCode::CREATED);
    }
    let res = register(&app, None, &web_metadata("App")).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.header("retry-after").is_some());
    // Refused attempts count too: spam with bad documents is limited alike.
    assert_eq!(list_dynamic(&app).await, 2);
}

async fn list_dynamic(app: &TestApp) -> usize {
    app.store.list_clients().await.unwrap().iter().filter(|c| c.is_dynamic()).count()
}

#[tokio::test]
async fn rfc7592_read_update_and_delete_need_the_registration_access_token() {
    let app = app_with_policy("open").await;
    let first = register(&app, None, &web_metadata("First")).await.json();
    let second = register(&app, None, &web_metadata("Second")).await.json();
    let path = management_path(&first);
    let token = first["registration_access_token"].as_str().unwrap();
    let other_token = second["registration_access_token"].as_str().unwrap();

    // RFC 7592 §2.1: read.
    let res = send_json(&app, "GET", &path, Some(token), None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.json()["client_name"], "First");
    // RFC 7592 §2: no token, a wrong one, another client's, or an unknown client: 401.
    for (p, t) in [
        (path.as_str(), None),
        (path.as_str(), Some("wrong")),
        (path.as_str(), Some(other_token)),
        ("/register/no-such-client", Some(token)),
    ] {
        let res = send_json(&app, "GET", p, t, None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{p} {t:?}");
        assert!(res.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    // An operator's client is not managed through this protocol.
    app.client("operator", tessera_core::client::AuthMethod::ClientSecretBasic, "a:read", "").await;
    let res = send_json(&app, "GET", "/register/operator", Some(token), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // RFC 7592 §2.2: update replaces the metadata; the body names the client.
    let mut changed = web_metadata("First, renamed");
    changed["client_id"] = first["client_id"].clone();
    changed["client_secret"] = first["client_secret"].clone();
    let res = send_json(&app, "PUT", &path, Some(other_token), Some(&changed)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = send_json(&app, "PUT", &path, Some(token), Some(&changed)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    assert_eq!(res.json()["client_name"], "First, renamed");
    assert!(res.json().get("client_secret").is_none(), "the secret is kept, not reissued");
    let mut wrong_id = changed.clone();
    wrong_id["client_id"] = second["client_id"].clone();
    let res = send_json(&app, "PUT", &path, Some(token), Some(&wrong_id)).await;
    assert_eq!(res.json()["error"], "invalid_client_metadata");
    let mut wrong_secret = changed.clone();
    wrong_secret["client_secret"] = "not-the-secret".into();
    let res = send_json(&app, "PUT", &path, Some(token), Some(&wrong_secret)).await;
    assert_eq!(res.json()["error"], "invalid_client_metadata");
    let mut bad_redirect = changed.clone();
    bad_redirect["redirect_uris"] = json!(["http://app.example/cb"]);
    let res = send_json(&app, "PUT", &path, Some(token), Some(&bad_redirect)).await;
    assert_eq!(res.json()["error"], "invalid_redirect_uri");

    // RFC 7592 §2.3: delete; the token no longer opens anything.
    let res = send_json(&app, "DELETE", &path, Some(other_token), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = send_json(&app, "DELETE", &path, Some(token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = send_json(&app, "GET", &path, Some(token), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn r4_4_registrations_updates_and_deletions_are_audited_without_secrets() {
    use tessera_core::store::AuditStore;
    let app = spawn_app_configured(RawConfig {
        registration_policy: Some("open".into()),
        audit_to_database: Some(true),
        ..Default::default()
    })
    .await;
    let body = register(&app, None, &web_metadata("Audited")).await.json();
    let id = body["client_id"].as_str().unwrap();
    let token = body["registration_access_token"].as_str().unwrap();
    let mut changed = web_metadata("Audited, renamed");
    changed["client_id"] = id.into();
    let path = management_path(&body);
    assert_eq!(
        send_json(&app, "PUT", &path, Some(token), Some(&changed)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send_json(&app, "DELETE", &path, Some(token), None).await.status,
        StatusCode::NO_CONTENT
    );
    let wanted = ["client_registered", "client_updated", "client_deleted"];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let events = loop {
        let events = app.store.recent_audit_events(100).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        if wanted.iter().all(|w| kinds.contains(w)) {
            break events;
        }
        assert!(std::time::Instant::now() < deadline, "audit events missing: {events:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for event in events.iter().filter(|e| wanted.contains(&e.event.as_str())) {
        assert_eq!(event.client_id.as_deref(), Some(id));
        let text = format!("{event:?}");
        assert!(!text.contains(token) && !text.contains(body["client_secret"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn a_deleted_dynamic_client_is_invalid_client_at_the_token_endpoint() {
    let app = app_with_policy("open").await;
    let body = register(&app, None, &web_metadata("Gone soon")).await.json();
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    let form = "grant_type=refresh_token&refresh_token=unknown";
    // Authenticated, so the refusal is about the grant.
    assert_eq!(app.token(Some((id, secret)), form).await.json()["error"], "invalid_grant");
    let token = body["registration_access_token"].as_str().unwrap();
    let res = send_json(&app, "DELETE", &management_path(&body), Some(token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    // Issue 15: `invalid_client`, so that the client knows to register again.
    let res = app.token(Some((id, secret)), form).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
}

#[tokio::test]
async fn dynamic_clients_always_get_a_consent_page_naming_them_unverified_with_the_redirect_host() {
    let app = app_with_policy("open").await;
    flow::create_user(&app).await;
    let body = register(&app, None, &web_metadata("Travel Planner")).await.json();
    let id = body["client_id"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let query = flow::authorize_query(&id, "");
    let page = browser.get(&app, &format!("/authorize?{query}")).await;
    let page = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "consent is asked");
    let html = flow::page_text(&page);
    assert!(html.contains("<strong id=\"client-name\">Travel Planner</strong>"), "{html}");
    assert!(html.contains("id=\"unverified\""), "{html}");
    assert!(html.contains("<strong id=\"redirect-host\">app.example</strong>"), "{html}");
    assert!(!html.contains("id=\"loopback\""));
    let done = browser.decide(&app, &page, "approve").await;
    assert!(flow::redirect_params(&done).contains_key("code"));
    // Asked again: a remembered consent does not skip it for a client nobody vouched for.
    let again = browser.get(&app, &format!("/authorize?{query}")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(flow::page_text(&again).contains("id=\"unverified\""));
}

#[tokio::test]
async fn stale_dynamic_clients_are_pruned_after_the_configured_times() {
    let app = spawn_app_configured(RawConfig {
        registration_policy: Some("open".into()),
        dynamic_client_unused_days: Some(30),
        dynamic_client_unfinished_hours: Some(24),
        ..Default::default()
    })
    .await;
    flow::create_user(&app).await;
    let used = register(&app, None, &web_metadata("Used")).await.json();
    let unused = register(&app, None, &web_metadata("Never finished")).await.json();
    let client = (used["client_id"].as_str().unwrap(), used["client_secret"].as_str().unwrap());
    let tokens = flow::tokens_for(&app, client).await;
    assert!(tokens["access_token"].is_string());
    let exists = |v: &Value| ClientId::parse(v["client_id"].as_str().unwrap()).unwrap();

    app.clock.advance(23 * 3600);
    app.state.prune_expired().await.unwrap();
    assert!(app.store.find_client(&exists(&unused)).await.unwrap().is_some(), "not yet");
    app.clock.advance(2 * 3600);
    app.state.prune_expired().await.unwrap();
    assert!(app.store.find_client(&exists(&unused)).await.unwrap().is_none());
    assert!(app.store.find_client(&exists(&used)).await.unwrap().is_some(), "it completed a flow");
    app.clock.advance(30 * 86_400);
    app.state.prune_expired().await.unwrap();
    assert!(app.store.find_client(&exists(&used)).await.unwrap().is_none(), "unused for 30 days");
}

/// OIDC Registration §2 / §3.2: `id_token_signed_response_alg` is registered and echoed (RS256
/// when omitted, as the default is part of the registered metadata); an algorithm the server
/// does not sign with is `invalid_client_metadata` (RFC 7591 §3.2.2).
#[tokio::test]
async fn oidc_registration_2_id_token_signed_response_alg_is_registered_and_echoed() {
    let app = app_with_policy("open").await;
    let res = register(&app, None, &web_metadata("Default Alg")).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["id_token_signed_response_alg"], "RS256");
    let mut metadata = web_metadata("Edwards App");
    metadata["id_token_signed_response_alg"] = "EdDSA".into();
    let res = register(&app, None, &metadata).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    let registered = res.json();
    assert_eq!(registered["id_token_signed_response_alg"], "EdDSA");
    let client_id = ClientId::parse(registered["client_id"].as_str().unwrap()).unwrap();
    let stored = app.store.find_client(&client_id).await.unwrap().unwrap();
    assert_eq!(stored.id_token_signed_response_alg, tessera_core::keys::SigningAlg::EdDSA);
    metadata["id_token_signed_response_alg"] = "HS256".into();
    let res = register(&app, None, &metadata).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_client_metadata");
}
