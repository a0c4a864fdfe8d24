//! The admin HTTP API (issue 15 item 5, requirements R6.2): every route refuses a request
//! without a token (401) and one whose token lacks the route's `admin:*` scope (403
//! `insufficient_scope`), and works with it; only clients flagged first-party admin can be
//! granted those scopes; every change is audited; bad input is a JSON 400, never a 500.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tessera_core::admin_scope;
use tessera_core::client_id::ClientId;
use tessera_core::scope::ScopeSet;
use tessera_core::store::{
    AdminStore, AuditStore, Consent, ConsentStore, Grant, GrantStore, UserStore,
};
use tessera_server::admin::operations::{NewClient, create_client};
use tessera_server::config::RawConfig;

use crate::common::flow;
use crate::common::*;

/// An app that writes audit events to its database, with user alice and an admin client
/// `ops` (client credentials); returns the app and the client's secret.
async fn admin_app() -> (TestApp, String) {
    let app =
        spawn_app_configured(RawConfig { audit_to_database: Some(true), ..Default::default() })
            .await;
    flow::create_user(&app).await;
    let new = NewClient {
        client_id: Some("ops".into()),
        client_name: "Operations console".into(),
        admin: true,
        ..Default::default()
    };
    let (_, secret, _) = create_client(&app.store, new, t0()).await.unwrap();
    (app, secret.unwrap().expose().to_owned())
}

/// A client-credentials access token of `ops` with `scope`.
async fn token(app: &TestApp, secret: &str, scope: &str) -> String {
    let form = format!("grant_type=client_credentials&scope={}", urlencode(scope));
    let res = app.token(Some(("ops", secret)), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    res.json()["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
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

/// Every route: method, path, the scope it needs, and a body it accepts.
fn routes() -> Vec<(&'static str, &'static str, &'static str, Option<Value>)> {
    let client = json!({
        "client_name": "Batch job",
        "client_id": "batch",
        "scope": "orders:read",
        "default_scope": "orders:read",
    });
    let update = json!({
        "client_name": "Nightly batch",
        "scope": "orders:read orders:write",
        "default_scope": "orders:read",
    });
    let user = json!({ "username": "bob", "password": "a long password" });
    let resource = json!({ "resource": "https://mcp.example/mcp", "scope": "mcp:tools" });
    vec![
        ("GET", "/admin/v1/clients", admin_scope::CLIENTS, None),
        ("POST", "/admin/v1/clients", admin_scope::CLIENTS, Some(client)),
        ("GET", "/admin/v1/clients/batch", admin_scope::CLIENTS, None),
        ("PUT", "/admin/v1/clients/batch", admin_scope::CLIENTS, Some(update)),
        ("POST", "/admin/v1/clients/batch/secret", admin_scope::CLIENTS, None),
        ("DELETE", "/admin/v1/clients/batch", admin_scope::CLIENTS, None),
        ("GET", "/admin/v1/users", admin_scope::USERS, None),
        ("POST", "/admin/v1/users", admin_scope::USERS, Some(user)),
        ("GET", "/admin/v1/users/bob", admin_scope::USERS, None),
        (
            "POST",
            "/admin/v1/users/bob/password",
            admin_scope::USERS,
            Some(json!({ "password": "another long one" })),
        ),
        ("POST", "/admin/v1/users/bob/disable", admin_scope::USERS, None),
        ("POST", "/admin/v1/users/bob/enable", admin_scope::USERS, None),
        ("GET", "/admin/v1/grants?username=alice&client_id=ops", admin_scope::GRANTS, None),
        ("DELETE", "/admin/v1/grants/grant-1", admin_scope::GRANTS, None),
        ("GET", "/admin/v1/users/alice/consents", admin_scope::GRANTS, None),
        ("DELETE", "/admin/v1/users/alice/consents/ops", admin_scope::GRANTS, None),
        ("DELETE", "/admin/v1/users/bob", admin_scope::USERS, None),
        ("GET", "/admin/v1/keys", admin_scope::KEYS, None),
        ("POST", "/admin/v1/keys/rotate", admin_scope::KEYS, Some(json!({ "alg": "ES256" }))),
        ("GET", "/admin/v1/resources", admin_scope::RESOURCES, None),
        ("POST", "/admin/v1/resources", admin_scope::RESOURCES, Some(resource)),
        (
            "DELETE",
            "/admin/v1/resources?resource=https%3A%2F%2Fmcp.example%2Fmcp%2F",
            admin_scope::RESOURCES,
            None,
        ),
        ("GET", "/admin/v1/audit-events?limit=100", admin_scope::AUDIT, None),
    ]
}

#[tokio::test]
async fn rfc6750_3_1_every_admin_route_without_a_token_is_401_with_a_bearer_challenge() {
    let (app, _) = admin_app().await;
    for (method, path, _, body) in routes() {
        let res = call(&app, method, path, None, body).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            res.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")),
            "{method} {path}"
        );
        let res = call(&app, method, path, Some("not-a-token"), None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(res.json()["error"], "invalid_token", "{method} {path}");
    }
}

#[tokio::test]
async fn rfc6750_3_1_every_admin_route_without_its_scope_is_403_insufficient_scope() {
    let (app, secret) = admin_app().await;
    for scope in admin_scope::ALL {
        // Every admin scope but this one.
        let others: Vec<&str> = admin_scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let token = token(&app, &secret, &others.join(" ")).await;
        for (method, path, needed, body) in routes().into_iter().filter(|r| r.2 == scope) {
            let res = call(&app, method, path, Some(&token), body).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(res.json()["error"], "insufficient_scope", "{method} {path}");
            let challenge = res.header("www-authenticate").unwrap_or_default().to_owned();
            assert!(challenge.contains(needed), "names the scope: {challenge}");
        }
    }
}

#[tokio::test]
async fn r6_2_every_admin_route_works_with_its_scope_and_every_change_is_audited() {
    let (app, secret) = admin_app().await;
    let token = token(&app, &secret, &admin_scope::ALL.join(" ")).await;
    // A consent of alice for `ops`, for the consent routes.
    let alice = app.store.find_user_by_username(flow::USERNAME).await.unwrap().unwrap();
    let consent = Consent {
        user_id: alice.id.clone(),
        client_id: ClientId::parse("ops").unwrap(),
        scope: ScopeSet::parse("openid").unwrap(),
        granted_at: t0(),
    };
    app.store.save_consent(&consent).await.unwrap();
    // A grant of alice to `ops`, for the grant routes.
    let grant = Grant {
        id: "grant-1".into(),
        client_id: ClientId::parse("ops").unwrap(),
        user_id: alice.id.clone(),
        scope: ScopeSet::parse("openid").unwrap(),
        auth_time: t0(),
        sid: None,
        audience: vec![],
        created_at: t0(),
        expires_at: t0() + 86_400,
        dpop_jkt: None,
    };
    app.store.insert_grant(&grant).await.unwrap();
    let mut batch_secret = String::new();
    for (method, path, _, body) in routes() {
        let res = call(&app, method, path, Some(&token), body).await;
        assert!(
            res.status.is_success(),
            "{method} {path}: {} {}",
            res.status,
            flow::page_text(&res)
        );
        match (method, path) {
            ("POST", "/admin/v1/clients") => {
                assert_eq!(res.status, StatusCode::CREATED);
                batch_secret = res.json()["client_secret"].as_str().unwrap().to_owned();
                assert_eq!(res.header("cache-control"), Some("no-store"));
            }
            ("PUT", "/admin/v1/clients/batch") => {
                let updated = res.json();
                assert_eq!(updated["client_name"], "Nightly batch");
                assert_eq!(updated["scope"], "orders:read orders:write");
                assert!(updated["client_secret"].is_null(), "the secret is kept");
                let form = "grant_type=client_credentials&scope=orders%3Awrite";
                let res = app.token(Some(("batch", &batch_secret)), form).await;
                assert_eq!(res.status, StatusCode::OK, "the new scope, the same secret");
            }
            ("POST", "/admin/v1/clients/batch/secret") => {
                let rotated = res.json()["client_secret"].as_str().unwrap().to_owned();
                assert_ne!(rotated, batch_secret, "a new secret");
                // The old secret stops working; the new one works.
                let form = "grant_type=client_credentials";
                let old = app.token(Some(("batch", &batch_secret)), form).await;
                assert_eq!(old.status, StatusCode::UNAUTHORIZED);
                assert_eq!(app.token(Some(("batch", &rotated)), form).await.status, StatusCode::OK);
            }
            ("GET", "/admin/v1/grants?username=alice&client_id=ops") => {
                let listed = res.json();
                assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
                assert_eq!(listed[0]["id"], "grant-1");
                assert_eq!(listed[0]["sub"], alice.id.as_str());
                assert_eq!(listed[0]["revoked"], false);
            }
            ("DELETE", "/admin/v1/grants/grant-1") => {
                assert_eq!(res.status, StatusCode::NO_CONTENT);
                let revoked = app.store.find_grant("grant-1").await.unwrap().unwrap();
                assert!(revoked.revoked_at.is_some(), "revoked");
            }
            ("GET", "/admin/v1/users/alice/consents") => {
                assert_eq!(res.json()[0]["client_id"], "ops");
            }
            ("GET", "/admin/v1/resources") => assert_eq!(res.json(), json!([])),
            ("POST", "/admin/v1/resources") => {
                assert_eq!(res.json()["resource"], "https://mcp.example/mcp");
            }
            _ => {}
        }
    }
    assert!(app.store.list_consents(&alice.id).await.unwrap().is_empty(), "revoked");
    assert!(app.store.find_user_by_username("bob").await.unwrap().is_none(), "deleted");
    // R4.4: each change is an `admin_*` event naming the caller (written in the background).
    let wanted = [
        "admin_client_created",
        "admin_client_updated",
        "admin_client_secret_rotated",
        "admin_client_deleted",
        "admin_user_created",
        "admin_user_password_reset",
        "admin_user_disabled",
        "admin_user_enabled",
        "admin_grant_revoked",
        "admin_consent_revoked",
        "admin_user_deleted",
        "admin_key_rotated",
        "admin_resource_created",
        "admin_resource_deleted",
    ];
    let mut events = Vec::new();
    for _ in 0..50 {
        events = app.store.recent_audit_events(500).await.unwrap();
        if wanted.iter().all(|w| events.iter().any(|e| e.event == *w)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for w in wanted {
        let event = events.iter().find(|e| e.event == w).unwrap_or_else(|| panic!("no {w} event"));
        assert!(event.actor.as_deref().is_some_and(|a| a.contains("client=ops")), "{event:?}");
    }
    let res =
        call(&app, "GET", "/admin/v1/audit-events?event=admin_user_created", Some(&token), None)
            .await;
    let listed = res.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn r6_2_a_client_not_flagged_admin_is_refused_admin_scopes_with_invalid_scope() {
    let (app, _) = admin_app().await;
    // An operator client given an admin scope directly in the database, without the flag.
    let secret = app
        .client(
            "intruder",
            tessera_core::client::AuthMethod::ClientSecretBasic,
            "admin:users orders:read",
            "",
        )
        .await;
    let res = app
        .token(Some(("intruder", &secret)), "grant_type=client_credentials&scope=admin%3Ausers")
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_scope");
    // Its other scopes still work.
    let res = app
        .token(Some(("intruder", &secret)), "grant_type=client_credentials&scope=orders%3Aread")
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // An admin client that is unflagged loses the API at once, whatever tokens it holds.
    let (app, secret) = admin_app().await;
    let token = token(&app, &secret, admin_scope::USERS).await;
    assert_eq!(
        call(&app, "GET", "/admin/v1/users", Some(&token), None).await.status,
        StatusCode::OK
    );
    app.store.set_admin_client(&ClientId::parse("ops").unwrap(), false).await.unwrap();
    let res = call(&app, "GET", "/admin/v1/users", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = app
        .token(Some(("ops", &secret)), "grant_type=client_credentials&scope=admin%3Ausers")
        .await;
    assert_eq!(res.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn r6_2_bad_input_is_a_json_400_and_unknown_records_a_json_404() {
    let (app, secret) = admin_app().await;
    let token = token(&app, &secret, &admin_scope::ALL.join(" ")).await;
    let send_raw = |body: &'static str, content_type: &'static str| {
        Request::post("/admin/v1/clients")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    for (body, content_type) in [
        ("{not json", "application/json"),
        (r#"{"client_name": 7}"#, "application/json"),
        (r#"{"client_name": "x", "surprise": true}"#, "application/json"),
        (r#"{"client_name": "x"}"#, "text/plain"),
        (r#"{"client_name": "x", "redirect_uris": ["javascript:alert(1)"]}"#, "application/json"),
        (r#"{"client_name": "x", "scope": "admin:keys"}"#, "application/json"),
    ] {
        let res = app.request(send_raw(body, content_type)).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}: {}", flow::page_text(&res));
        assert_eq!(res.json()["error"], "invalid_request", "{body}");
        assert!(res.json()["error_description"].is_string());
    }
    for (method, path, body) in [
        ("POST", "/admin/v1/users", Some(json!({ "username": "x", "password": "short" }))),
        ("POST", "/admin/v1/keys/rotate", Some(json!({ "alg": "HS256" }))),
        ("POST", "/admin/v1/resources", Some(json!({ "resource": "no-uri", "scope": "a:b" }))),
        ("GET", "/admin/v1/audit-events?limit=0", None),
        ("GET", "/admin/v1/audit-events?limit=lots", None),
        ("GET", "/admin/v1/clients/bad%20id", None),
        ("GET", "/admin/v1/grants?limit=0", None),
        ("GET", "/admin/v1/grants?client_id=bad%20id", None),
        ("GET", "/admin/v1/grants?username=alice&sub=x", None),
    ] {
        let res = call(&app, method, path, Some(&token), body).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            flow::page_text(&res)
        );
        assert_eq!(res.json()["error"], "invalid_request", "{method} {path}");
    }
    for (method, path) in [
        ("GET", "/admin/v1/clients/nobody"),
        ("DELETE", "/admin/v1/users/nobody"),
        ("GET", "/admin/v1/users/nobody/consents"),
        ("DELETE", "/admin/v1/users/alice/consents/nobody"),
        ("DELETE", "/admin/v1/grants/nobody"),
        ("GET", "/admin/v1/grants?username=nobody"),
    ] {
        let res = call(&app, method, path, Some(&token), None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(res.json()["error"], "not_found");
    }
    let res = call(
        &app,
        "POST",
        "/admin/v1/clients",
        Some(&token),
        Some(json!({ "client_name": "x", "client_id": "ops" })),
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn r6_2_disabling_or_deleting_a_user_through_the_api_ends_their_grants() {
    let (app, secret) = admin_app().await;
    let web = app.register(flow::web_client("web")).await.unwrap();
    let tokens = flow::tokens_for(&app, ("web", &web)).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let token = token(&app, &secret, admin_scope::USERS).await;
    let res = call(&app, "POST", "/admin/v1/users/alice/disable", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["disabled"], true);
    let res = flow::refresh(&app, ("web", &web), refresh_token, "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "the grant ended with the account");
    // Enabled again, signed in again: deletion ends the new grant the same way.
    let res = call(&app, "POST", "/admin/v1/users/alice/enable", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::OK);
    let tokens = flow::tokens_for(&app, ("web", &web)).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let res = call(&app, "DELETE", "/admin/v1/users/alice", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = flow::refresh(&app, ("web", &web), refresh_token, "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "the grant ended with the account");
}

#[tokio::test]
async fn openapi_3_1_document_describes_every_admin_route() {
    let (app, _) = admin_app().await;
    let res = app.get("/admin/v1/openapi.json").await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], ISSUER);
    let flows = &doc["components"]["securitySchemes"]["tessera"]["flows"];
    assert_eq!(flows["clientCredentials"]["tokenUrl"], format!("{ISSUER}/token"));
    for (method, path, scope, _) in routes() {
        let path = path.split('?').next().unwrap();
        let templated = path
            .replace("/grant-1", "/{grant_id}")
            .replace("/batch", "/{client_id}")
            .replace("/bob", "/{username}")
            .replace("/alice", "/{username}")
            .replace("/ops", "/{client_id}");
        let operation = &doc["paths"][&templated][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {templated} is described");
        assert_eq!(operation["security"][0]["tessera"][0], scope, "{method} {templated}");
    }
}

#[tokio::test]
async fn r6_2_admin_grants_are_listed_and_a_revoked_grant_ends_its_tokens() {
    let (app, secret) = admin_app().await;
    let web = app.register(flow::web_client("web")).await.unwrap();
    let tokens = flow::tokens_for(&app, ("web", &web)).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access_token).await.status, StatusCode::OK);
    let token = token(&app, &secret, admin_scope::GRANTS).await;
    let alice = app.store.find_user_by_username(flow::USERNAME).await.unwrap().unwrap();
    // The grant is listed by user, by client, by both, and by sub.
    let mut listed = Value::Null;
    for query in ["username=alice", "client_id=web", "username=alice&client_id=web"]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("sub={}", alice.id)])
    {
        let res = call(&app, "GET", &format!("/admin/v1/grants?{query}"), Some(&token), None).await;
        assert_eq!(res.status, StatusCode::OK, "{query}: {}", flow::page_text(&res));
        listed = res.json();
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{query}: {listed}");
    }
    let grant = &listed[0];
    assert_eq!(grant["client_id"], "web");
    assert_eq!(grant["sub"], alice.id.as_str());
    assert_eq!(grant["revoked"], false);
    assert!(grant["scope"].as_str().is_some_and(|s| s.split(' ').any(|s| s == "openid")));
    assert!(grant["expires_at"].as_i64() > grant["created_at"].as_i64());
    assert!(grant.get("refresh_token").is_none(), "never a token");
    // Another client's filter does not show it.
    let res = call(&app, "GET", "/admin/v1/grants?client_id=ops", Some(&token), None).await;
    assert_eq!(res.json(), json!([]));
    // Revoked: its refresh token and its access token stop working.
    let id = grant["id"].as_str().unwrap();
    let res = call(&app, "DELETE", &format!("/admin/v1/grants/{id}"), Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", flow::page_text(&res));
    let res = flow::refresh(&app, ("web", &web), refresh_token, "").await;
    assert_eq!(res.json()["error"], "invalid_grant", "the refresh token ended with its grant");
    assert_eq!(app.userinfo(access_token).await.status, StatusCode::UNAUTHORIZED);
    let res = call(&app, "GET", "/admin/v1/grants?username=alice", Some(&token), None).await;
    assert_eq!(res.json()[0]["revoked"], true);
    assert!(res.json()[0]["revoked_at"].is_i64());
    // Revoking it again changes nothing and is not an error.
    let res = call(&app, "DELETE", &format!("/admin/v1/grants/{id}"), Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn r7_4_a_grant_revoked_through_the_admin_api_publishes_its_access_tokens() {
    use crate::revocation_list_sources::{assert_listed, assert_not_listed, jti_and_exp};
    let test = "r7_4_a_grant_revoked_through_the_admin_api_publishes_its_access_tokens";
    if !redis_available(test).await {
        return;
    }
    let (app, token, web_id, web) = admin_app_with_revocation_list(admin_scope::GRANTS).await;
    let tokens = flow::tokens_for(&app, (&web_id, &web)).await;
    let (jti, exp) = jti_and_exp(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_not_listed(&jti).await;
    let path = format!("/admin/v1/grants?client_id={web_id}");
    let id = call(&app, "GET", &path, Some(&token), None).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(&app, "DELETE", &format!("/admin/v1/grants/{id}"), Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_listed(&jti, exp).await;
}

#[tokio::test]
async fn r6_2_a_password_reset_through_the_admin_api_ends_the_users_sessions() {
    let (app, secret) = admin_app().await;
    app.register(flow::web_client("web")).await.unwrap();
    // Alice (or whoever has her password) signs in; the session then signs her in silently.
    let mut browser = flow::Browser::default();
    let authorize = format!("/authorize?{}", flow::authorize_query("web", ""));
    let page = browser.get(&app, &authorize).await;
    let mut done = browser.login(&app, &page, flow::USERNAME, flow::PASSWORD).await;
    if done.status == StatusCode::OK {
        done = browser.decide(&app, &done, "approve").await;
    }
    assert!(flow::redirect_params(&done).contains_key("code"));
    let again = browser.get(&app, &authorize).await;
    assert!(flow::redirect_params(&again).contains_key("code"), "signed in by the session");
    // The operator resets the password: that session ends, the login page is shown again.
    let token = token(&app, &secret, admin_scope::USERS).await;
    let res = call(
        &app,
        "POST",
        "/admin/v1/users/alice/password",
        Some(&token),
        Some(json!({ "password": "a brand new password" })),
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", flow::page_text(&res));
    let after = browser.get(&app, &authorize).await;
    assert_eq!(after.status, StatusCode::OK, "the session ended: {:?}", after.header("location"));
    assert!(flow::page_text(&after).contains("name=\"password\""), "the login page");
    // The old password no longer works; the new one does.
    let refused = browser.login(&app, &after, flow::USERNAME, flow::PASSWORD).await;
    assert!(refused.header("location").is_none_or(|l| !l.contains("code=")), "old password");
    let page = browser.get(&app, &authorize).await;
    let done = browser.login(&app, &page, flow::USERNAME, "a brand new password").await;
    assert!(flow::redirect_params(&done).contains_key("code"), "{}", flow::page_text(&done));
}

/// An app publishing to the test Redis, with alice, an admin client and a first-party web
/// client of fresh ids (Redis rate-limit buckets are per client id); returns the app, an
/// admin token with `scope`, and the web client's id and secret.
async fn admin_app_with_revocation_list(scope: &str) -> (TestApp, String, String, String) {
    let app =
        spawn_app_configured(RawConfig { redis_url: Some(redis_url()), ..Default::default() })
            .await;
    flow::create_user(&app).await;
    let ops = format!("ops-{}", tessera_core::secret::random_id::<8>());
    let new = NewClient {
        client_id: Some(ops.clone()),
        client_name: "Operations console".into(),
        admin: true,
        ..Default::default()
    };
    let (_, secret, _) = create_client(&app.store, new, t0()).await.unwrap();
    let secret = secret.unwrap().expose().to_owned();
    let form = format!("grant_type=client_credentials&scope={}", urlencode(scope));
    let res = app.token(Some((&ops, &secret)), &form).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let web_id = format!("web-{}", tessera_core::secret::random_id::<8>());
    let web = app.register(flow::web_client(&web_id)).await.unwrap();
    (app, token, web_id, web)
}

/// The `jti` and `exp` of the access token of a token response.
async fn jti_of(app: &TestApp, tokens: &Value) -> (String, i64) {
    let token = tokens["access_token"].as_str().unwrap();
    crate::revocation_list_sources::jti_and_exp(app, token).await
}

#[tokio::test]
async fn r7_4_withdrawing_a_consent_or_disabling_or_deleting_a_user_through_the_admin_api_publishes_their_access_tokens()
 {
    use crate::revocation_list_sources::{assert_listed, assert_not_listed};
    let test = "r7_4_withdrawing_a_consent_or_disabling_or_deleting_a_user_through_the_admin_api_publishes_their_access_tokens";
    if !redis_available(test).await {
        return;
    }
    let scopes = format!("{} {}", admin_scope::GRANTS, admin_scope::USERS);
    let (app, token, web_id, web) = admin_app_with_revocation_list(&scopes).await;
    // Withdrawing the consent (the web client is first-party: its consent is recorded here).
    let (jti, exp) = jti_of(&app, &flow::tokens_for(&app, (&web_id, &web)).await).await;
    assert_not_listed(&jti).await;
    let alice = app.store.find_user_by_username(flow::USERNAME).await.unwrap().unwrap();
    let consent = Consent {
        user_id: alice.id,
        client_id: ClientId::parse(&web_id).unwrap(),
        scope: ScopeSet::parse("openid").unwrap(),
        granted_at: t0(),
    };
    app.store.save_consent(&consent).await.unwrap();
    let path = format!("/admin/v1/users/alice/consents/{web_id}");
    let res = call(&app, "DELETE", &path, Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", flow::page_text(&res));
    assert_listed(&jti, exp).await;
    // Disabling the user.
    let (jti, exp) = jti_of(&app, &flow::tokens_for(&app, (&web_id, &web)).await).await;
    assert_not_listed(&jti).await;
    let res = call(&app, "POST", "/admin/v1/users/alice/disable", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_listed(&jti, exp).await;
    // Deleting the user (enabled again and signed in again first).
    let res = call(&app, "POST", "/admin/v1/users/alice/enable", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::OK);
    let (jti, exp) = jti_of(&app, &flow::tokens_for(&app, (&web_id, &web)).await).await;
    assert_not_listed(&jti).await;
    let res = call(&app, "DELETE", "/admin/v1/users/alice", Some(&token), None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_listed(&jti, exp).await;
}
