//! The backend-for-frontend example (`examples/bff`) as a person uses it: headless Chromium
//! signs in through `tessera serve --dev`'s login and consent pages on one BFF instance, places
//! and lists orders through it, goes on with the same session on a second instance that shares
//! the session store (Redis), signs out. Tokens must stay on the server
//! (draft-ietf-oauth-browser-based-apps §6.1), and sealed in the store.
//!
//! The resource API is the example `orders-api` (`tessera-resource`): GET /orders needs
//! `orders:read`, POST /orders `orders:write`; it reads the server's revocations from the same
//! Redis, so a revoked access token is refused with `401 invalid_token`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::node_tools::{js_dir, js_tools_available};
use crate::support::{DevServer, Workdir};

const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery";
const SCOPE: &str = "openid orders:read orders:write";

/// The test's Redis (`TESSERA_TEST_REDIS_URL`), or `None` to skip outside CI.
fn redis_url(test: &str) -> Option<String> {
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    match std::net::TcpStream::connect(url.trim_start_matches("redis://").trim_end_matches('/')) {
        Ok(_) => Some(url),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping {test}: Redis at {url} is unreachable: {e}");
            None
        }
        Err(e) => panic!("Redis is required under CI: {e}"),
    }
}

async fn listener() -> (tokio::net::TcpListener, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Every raw value under `prefix:*` in Redis, as stored.
async fn raw_records(redis: &redis::Client, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.unwrap();
    let mut records = Vec::new();
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        records.push((key, value));
    }
    records
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The session record in Redis holds none of its secrets in plaintext, and its key is not the
/// cookie's session id.
async fn assert_sealed(redis: &redis::Client, prefix: &str, id: &str, session: &bff::Session) {
    let records = raw_records(redis, prefix).await;
    assert!(
        records.iter().any(|(key, _)| key.starts_with(&format!("{prefix}:session:"))),
        "the session is in Redis: {:?}",
        records.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    let mut secrets = vec![id, session.access_token.as_str(), session.csrf.as_str()];
    secrets.extend(session.refresh_token.as_deref());
    secrets.extend(session.id_token.as_deref());
    for (key, value) in &records {
        assert!(!key.contains(id), "the session id in a Redis key: {key}");
        for secret in &secrets {
            assert!(!contains(value, secret), "a secret in plaintext in {key}");
        }
        assert!(!contains(value, "eyJ"), "a JWT in plaintext in {key}");
        assert!(!contains(value, &session.sub), "the user in plaintext in {key}");
    }
}

struct Tessera {
    issuer: String,
    http: reqwest::Client,
    client_secret: String,
}

impl Tessera {
    /// RFC 7009 §2.1: the BFF's client revokes one of its tokens.
    async fn revoke(&self, token: &str) {
        let revoked = self
            .http
            .post(format!("{}/revoke", self.issuer))
            .basic_auth("orders-web", Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
    }

    /// RFC 7662 §2.2 `active`, asked by the BFF's client (a refresh token is described only
    /// to its own client).
    async fn active(&self, token: &str) -> bool {
        let answer: Value = self
            .http
            .post(format!("{}/introspect", self.issuer))
            .basic_auth("orders-web", Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"].as_bool().unwrap_or_else(|| panic!("{answer}"))
    }
}

#[test]
fn bff_keeps_tokens_out_of_the_browser_and_logout_ends_api_access() {
    let test = "bff_keeps_tokens_out_of_the_browser_and_logout_ends_api_access";
    if !js_tools_available(test, &["playwright-core"], true) {
        return;
    }
    let Some(redis_url) = redis_url(test) else { return };
    let w = Workdir::new("bff-browser");
    // The server publishes revocations to Redis, where the API reads them.
    let server = DevServer::start(&w, &[("TESSERA_REDIS_URL", &redis_url)]);
    let issuer = server.issuer();
    let user = w.ok_json(
        &["user", "create", "--username", USERNAME, "--password-stdin", "--json"],
        Some(&format!("{PASSWORD}\n")),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ((api_listener, api_port), (a_listener, a_port), (b_listener, b_port)) =
        runtime.block_on(async { (listener().await, listener().await, listener().await) });
    let api_url = format!("http://127.0.0.1:{api_port}");
    let a_url = format!("http://127.0.0.1:{a_port}/");
    let b_url = format!("http://127.0.0.1:{b_port}/");
    let bff_client = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Orders web app",
            "--client-id",
            "orders-web",
            "--redirect-uri",
            &format!("{a_url}callback"),
            "--redirect-uri",
            &format!("{b_url}callback"),
            "--post-logout-redirect-uri",
            &a_url,
            "--scope",
            SCOPE,
            "--audience",
            &api_url,
            // It may introspect, to see its own refresh tokens' state (RFC 7662 §2.2).
            "--introspection",
            "--json",
        ],
        None,
    );
    let tessera = Tessera {
        issuer: issuer.clone(),
        http: reqwest::Client::new(),
        client_secret: bff_client["client_secret"].as_str().unwrap().to_owned(),
    };

    // The example API, as its binary runs it.
    let settings = orders_api::Settings {
        issuer: issuer.clone(),
        audience: api_url.clone(),
        listen: String::new(),
        redis_url: Some(redis_url.clone()),
        external_url: None,
        allow_private_networks: true,
    };
    let validator = runtime.block_on(settings.validator()).unwrap();
    runtime.spawn(async move {
        orders_api::serve(api_listener, &validator, std::future::pending()).await.unwrap()
    });

    // Two BFF instances sharing one Redis store and one sealing key.
    let prefix = format!("bff-test-{}-{a_port}", std::process::id());
    let mut session_key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut session_key).unwrap();
    let store: Arc<dyn bff::SessionStore> =
        Arc::new(runtime.block_on(bff::RedisSessions::connect(&redis_url, &prefix)).unwrap());
    for (listener, url) in [(a_listener, &a_url), (b_listener, &b_url)] {
        let config = bff::Config {
            issuer: issuer.clone(),
            client_id: "orders-web".into(),
            client_secret: tessera.client_secret.clone(),
            public_url: url.parse().unwrap(),
            api_url: api_url.clone(),
            scope: SCOPE.into(),
            session_store: store.clone(),
            session_key,
        };
        let app = runtime.block_on(bff::app(config)).unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
    }
    // The test reads the records as any instance would, and raw.
    let sessions = bff::Sessions::new(store.clone(), &session_key).unwrap();
    let redis = redis::Client::open(redis_url.as_str()).unwrap();

    let mut node = Command::new("node")
        .arg(js_dir().join("bff_flow.mjs"))
        .arg(
            json!({"url": a_url, "other_url": b_url, "username": USERNAME, "password": PASSWORD})
                .to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_node = node.stdin.take().unwrap();
    let mut seen = Value::Null;
    let mut first: Option<bff::Session> = None;
    let mut tokens: Vec<String> = Vec::new();
    let mut session_id = String::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let message: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
        match message["checkpoint"].as_str() {
            Some("signed_in") => runtime.block_on(async {
                session_id = message["session"].as_str().unwrap().to_owned();
                let session = sessions.get(&session_id).await.unwrap().expect("stored");
                assert_eq!(session.sub, user["sub"].as_str().unwrap());
                assert_sealed(&redis, &prefix, &session_id, &session).await;
                tokens.push(session.access_token.clone());
                tokens.extend(session.refresh_token.clone());
                // The access token is revoked at Tessera, which tells the API through Redis:
                // the next call must be refused with `401 invalid_token` (RFC 6750 §3.1),
                // and the BFF must refresh and retry. The API reuses its answer for a token
                // for 2 s at most.
                tessera.revoke(&session.access_token).await;
                tokio::time::sleep(Duration::from_millis(2100)).await;
                first = Some(session);
            }),
            Some("used_on_other") => runtime.block_on(async {
                let session = sessions.get(&session_id).await.unwrap().expect("stored");
                let first = first.as_ref().unwrap();
                // The second instance refreshed, and stored the rotated refresh token in the
                // shared record before using the new access token (RFC 9700 §4.14.2).
                let rotated = session.refresh_token.clone().unwrap();
                assert_ne!(Some(&rotated), first.refresh_token.as_ref(), "rotated");
                assert!(tessera.active(&rotated).await);
                let old = first.refresh_token.as_deref().unwrap();
                assert!(!tessera.active(old).await, "the old refresh token is spent");
                assert_sealed(&redis, &prefix, &session_id, &session).await;
                tokens.push(rotated);
            }),
            Some(other) => panic!("unknown checkpoint {other}"),
            None => {
                seen = message;
                continue;
            }
        }
        to_node.write_all(b"go\n").unwrap();
    }
    assert!(node.wait().unwrap().success(), "bff_flow.mjs failed");
    assert!(seen.is_object(), "bff_flow.mjs printed no result");

    // Signed in as alice; the API answered through the BFF with her token: the order placed
    // with the CSRF token is listed (orders-api records who placed it).
    assert_eq!(seen["sub"], user["sub"], "{seen}");
    assert!(seen["orders"].as_str().unwrap().contains("tea"), "{seen}");
    assert_eq!(seen["before_status"], 401, "no session, no API: {seen}");

    // The session made through the first instance works through the second: same user, an
    // order placed and listed, after a refresh because the API refused the revoked token.
    assert_eq!(seen["other_sub"], user["sub"], "{seen}");
    assert_eq!(seen["other_post"], 201, "{seen}");
    let listed = seen["other_orders"].as_str().unwrap();
    assert!(listed.contains("tea") && listed.contains("cake"), "{seen}");

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
            assert!(!text.contains(token.as_str()), "a token in {}", body["url"]);
        }
        // JWTs (the ID and access tokens) start with a base64url `{"`.
        assert!(!text.contains("eyJ"), "a JWT in the body of {}", body["url"]);
    }
    for token in &tokens {
        assert!(!storage.contains(token.as_str()), "a token readable by JS: {storage}");
    }
    assert!(!storage.contains("eyJ"), "a JWT readable by JS: {storage}");

    // CSRF: a state-changing API call needs the page's token.
    assert_eq!(seen["post_without_csrf"], 403, "{seen}");
    assert_eq!(seen["post_with_csrf"], 201, "{seen}");

    // Logout: back on the BFF through Tessera's end_session_endpoint (OIDC RP-Initiated
    // Logout 1.0 §3), the API refused on both instances (the shared record is gone), and
    // Tessera asks for the password again.
    assert_eq!(seen["after_logout_url"], a_url.as_str(), "{seen}");
    assert_eq!(seen["after_logout_status"], 401, "{seen}");
    assert_eq!(seen["other_after_logout_status"], 401, "{seen}");
    assert_eq!(seen["relogin_heading"], "Sign in", "the Tessera session ended: {seen}");
    runtime.block_on(async {
        assert!(sessions.get(&session_id).await.unwrap().is_none(), "the record is removed");
        // The refresh token was revoked at /revoke (RFC 7009 §2.1).
        assert!(!tessera.active(tokens.last().unwrap()).await, "revoked at logout");
    });
}
