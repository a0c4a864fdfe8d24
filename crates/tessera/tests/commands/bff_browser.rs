//! The backend-for-frontend example (`examples/bff`) as a person uses it: headless Chromium
//! signs in through `tessera serve --dev`'s login and consent pages, calls an API through the
//! BFF, signs out. Tokens must stay on the server (draft-ietf-oauth-browser-based-apps §6.1).
//!
//! The resource API is a small axum route here that asks Tessera's `/introspect` (RFC 7662)
//! about each token it gets, and remembers the tokens so the test can look for them in the
//! browser.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::{DevServer, Workdir};

use crate::node_tools::{js_tools_available, run_node};

const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery";

struct Api {
    introspect: String,
    secret: String,
    seen: Mutex<Vec<String>>,
    /// Refuse the first token as if it had been revoked, so that the BFF must refresh.
    refuse_first: AtomicBool,
}

/// `GET|POST /orders`: the bearer token introspected at Tessera; 401 `invalid_token` (RFC 6750
/// §3.1) unless active.
async fn orders(State(api): State<Arc<Api>>, method: Method, headers: HeaderMap) -> Response {
    let unauthorized = || {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")])
            .into_response()
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    api.seen.lock().unwrap().push(token.to_owned());
    if api.refuse_first.swap(false, Ordering::SeqCst) {
        return unauthorized();
    }
    let answer: Value = reqwest::Client::new()
        .post(&api.introspect)
        .basic_auth("orders-api", Some(&api.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if answer["active"] != true {
        return unauthorized();
    }
    let status = if method == Method::POST { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(json!({"sub": answer["sub"], "orders": [{"id": 1, "item": "tea"}]})))
        .into_response()
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn bff_keeps_tokens_out_of_the_browser_and_logout_ends_api_access() {
    let test = "bff_keeps_tokens_out_of_the_browser_and_logout_ends_api_access";
    if !js_tools_available(test, &["playwright-core"], true) {
        return;
    }
    let w = Workdir::new("bff-browser");
    let server = DevServer::start(&w, &[]);
    let issuer = server.issuer();
    let user = w.ok_json(
        &["user", "create", "--username", USERNAME, "--password-stdin", "--json"],
        Some(&format!("{PASSWORD}\n")),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ((api_listener, api_port), (bff_listener, bff_port)) =
        runtime.block_on(async { (listener().await, listener().await) });
    let bff_url = format!("http://127.0.0.1:{bff_port}/");
    let bff_client = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Orders web app",
            "--client-id",
            "orders-web",
            "--redirect-uri",
            &format!("{bff_url}callback"),
            "--post-logout-redirect-uri",
            &bff_url,
            "--scope",
            "openid orders:read",
            "--json",
        ],
        None,
    );
    let api_client = w.ok_json(
        &["client", "create", "--name", "Orders API", "--client-id", "orders-api"]
            .into_iter()
            .chain(["--introspection", "--json"])
            .collect::<Vec<_>>(),
        None,
    );
    let api = Arc::new(Api {
        introspect: format!("{issuer}/introspect"),
        secret: api_client["client_secret"].as_str().unwrap().to_owned(),
        seen: Mutex::new(Vec::new()),
        refuse_first: AtomicBool::new(true),
    });
    let routes = axum::Router::new()
        .route("/orders", axum::routing::get(orders).post(orders))
        .with_state(api.clone());
    runtime.spawn(async move { axum::serve(api_listener, routes).await });
    let config = bff::Config {
        issuer: issuer.clone(),
        client_id: "orders-web".into(),
        client_secret: bff_client["client_secret"].as_str().unwrap().into(),
        public_url: bff_url.parse().unwrap(),
        api_url: format!("http://127.0.0.1:{api_port}"),
        scope: "openid orders:read".into(),
    };
    let app = runtime.block_on(bff::app(config)).unwrap();
    runtime.spawn(async move { axum::serve(bff_listener, app).await });

    let out = run_node(
        "bff_flow.mjs",
        &[json!({"url": bff_url, "username": USERNAME, "password": PASSWORD}).to_string()],
    );
    let seen: Value = serde_json::from_str(out.trim()).unwrap_or_else(|_| panic!("{out}"));

    // Signed in as alice, and the API answered through the BFF with her token.
    assert_eq!(seen["sub"], user["sub"], "{seen}");
    assert!(seen["orders"].as_str().unwrap().contains("tea"), "{seen}");
    assert_eq!(seen["before_status"], 401, "no session, no API: {seen}");
    let tokens = api.seen.lock().unwrap().clone();
    // The first token was refused with `401 invalid_token` (RFC 6750 §3.1): the BFF refreshed
    // it at Tessera and retried once with the new one, and the page never noticed.
    assert!(tokens.len() >= 2 && tokens[0] != tokens[1], "refreshed after a 401");

    // The session cookie: HttpOnly, SameSite=Lax; on http loopback without the `__Host-`
    // prefix, which needs Secure (RFC 6265bis §4.1.3.2).
    let cookies = seen["cookies"].as_array().unwrap();
    assert_eq!(cookies.len(), 1, "one BFF cookie: {cookies:?}");
    assert_eq!(cookies[0]["name"], "bff_session");
    assert_eq!(cookies[0]["httpOnly"], true);
    assert_eq!(cookies[0]["sameSite"], "Lax");

    // No token where page JavaScript can read it: cookies, storage, any response body.
    let storage = seen["storage"].to_string();
    assert!(!storage.contains("bff_session"), "the session cookie is HttpOnly: {storage}");
    for body in seen["bodies"].as_array().unwrap() {
        let text = body["body"].as_str().unwrap_or("");
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "access token in {}", body["url"]);
        }
        // JWTs (the ID and access tokens) start with a base64url `{"`.
        assert!(!text.contains("eyJ"), "a JWT in the body of {}", body["url"]);
    }
    for token in &tokens {
        assert!(!storage.contains(token.as_str()), "access token readable by JS: {storage}");
    }
    assert!(!storage.contains("eyJ"), "a JWT readable by JS: {storage}");

    // CSRF: a state-changing API call needs the page's token.
    assert_eq!(seen["post_without_csrf"], 403, "{seen}");
    assert_eq!(seen["post_with_csrf"], 201, "{seen}");

    // Logout: back on the BFF through Tessera's end_session_endpoint (OIDC RP-Initiated
    // Logout 1.0 §3), the API refused, and Tessera asks for the password again.
    assert_eq!(seen["after_logout_url"], bff_url.as_str(), "{seen}");
    assert_eq!(seen["after_logout_status"], 401, "{seen}");
    assert_eq!(seen["relogin_heading"], "Sign in", "the Tessera session ended: {seen}");

    // The refresh token was revoked at /revoke, and with it the grant's access tokens
    // (RFC 7009 §2.1): the last one the API saw is inactive now.
    let last = tokens.last().unwrap().clone();
    let introspected: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(&api.introspect)
            .basic_auth("orders-api", Some(&api.secret))
            .form(&[("token", last.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(introspected["active"], false, "revoked at logout: {introspected}");
}
