//! The example `orders-api` protected by `tessera-resource`, against a real `tessera serve`
//! process: scopes, challenges, metadata, and key rotation under load.
//!
//! The authorization server is the `tessera` binary (`CARGO_BIN_EXE_tessera` exists only in
//! this package's tests, hence the module here); the API is `orders_api::router` served on a
//! real loopback socket in the test process, built from the same `Settings` as its binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orders_api::Settings;
use tessera_resource::TokenValidator;

use crate::support::{DevServer, Workdir};

/// `tessera serve --dev` with a client `shop` that may get `orders:read orders:write` tokens
/// for the API at `audience`, and the API itself.
struct Setup {
    w: Workdir,
    server: DevServer,
    secret: String,
    api: String,
    validator: TokenValidator,
    client: reqwest::Client,
}

impl Setup {
    async fn start(name: &str, server_env: &[(&str, &str)], redis_url: Option<String>) -> Setup {
        let w = Workdir::new(name);
        let server = DevServer::start(&w, server_env);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let created = w.ok_json(
            &[
                "client",
                "create",
                "--name",
                "shop",
                "--client-id",
                "shop",
                "--scope",
                "orders:read orders:write",
                "--default-scope",
                "orders:read",
                "--audience",
                &api,
                "--json",
            ],
            None,
        );
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        let settings = Settings {
            issuer: server.issuer(),
            audience: api.clone(),
            listen: String::new(),
            redis_url,
            external_url: None,
            allow_private_networks: true,
        };
        let validator = settings.validator().await.unwrap();
        let serving = validator.clone();
        tokio::spawn(async move {
            orders_api::serve(listener, &serving, std::future::pending()).await.unwrap()
        });
        Setup { w, server, secret, api, validator, client: reqwest::Client::new() }
    }

    async fn token(&self, scope: &str) -> String {
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/token", self.server.issuer()))
            .basic_auth("shop", Some(&self.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

fn kid(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_api_enforces_scopes_with_rfc6750_challenges_and_serves_rfc9728_metadata() {
    let s = Setup::start("orders-api", &[], None).await;
    let metadata_url = format!("{}/.well-known/oauth-protected-resource", s.api);
    assert_eq!(s.get("/health", None).await.status(), 200);

    // RFC 6750 §3.1: no token, a bare challenge pointing at the metadata (RFC 9728 §5.1).
    let anonymous = s.get("/orders", None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{metadata_url}\"").as_str()
    );

    let read = s.token("orders:read").await;
    let listed = s.get("/orders", Some(&read)).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.json::<serde_json::Value>().await.unwrap(), serde_json::json!([]));

    // RFC 6750 §3.1: POST needs orders:write, and the challenge says so.
    let order = serde_json::json!({"item": "tea", "quantity": 2});
    let refused = s
        .client
        .post(format!("{}/orders", s.api))
        .bearer_auth(&read)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\", scope=\"orders:write\""),
        "{challenge}"
    );

    let write = s.token("orders:read orders:write").await;
    let placed = s
        .client
        .post(format!("{}/orders", s.api))
        .bearer_auth(&write)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let listed: serde_json::Value = s.get("/orders", Some(&write)).await.json().await.unwrap();
    assert_eq!(listed[0]["item"], "tea");
    assert_eq!(listed[0]["placed_by"], "shop");

    // RFC 9728 §2: the metadata names the server that issues the tokens.
    let metadata: serde_json::Value =
        s.client.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], s.api.as_str());
    assert_eq!(metadata["authorization_servers"], serde_json::json!([s.server.issuer()]));
    assert_eq!(metadata["scopes_supported"], serde_json::json!(["orders:read", "orders:write"]));

    // RFC 9068 §4: the demo client's tokens are for the issuer, not for this API.
    let demo: serde_json::Value = s
        .client
        .post(format!("{}/token", s.server.issuer()))
        .basic_auth("demo", Some(&s.server.demo_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_audience = s.get("/orders", demo["access_token"].as_str()).await;
    assert_eq!(other_audience.status(), 401);
}

/// R7.3: `tessera keys rotate` while clients call the API with fresh tokens: not one valid
/// token is refused, and the first token signed by the new key is accepted on first sight,
/// with one JWKS fetch (RFC 7517 §4.5 `kid`; the unknown-kid refetch of the key cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_load_refuses_no_valid_token_and_accepts_the_new_kid_on_first_sight() {
    let s = Arc::new(Setup::start("orders-rotation", &[], None).await);
    let first_kid = kid(&s.token("orders:read").await);
    assert_eq!(s.validator.jwks_fetches(&s.server.issuer()), Some(1));

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (s, stop, calls) = (s.clone(), stop.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            let mut kids = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let token = s.token("orders:read").await;
                for _ in 0..5 {
                    let status = s.get("/orders", Some(&token)).await.status();
                    assert_eq!(status, 200, "a valid token was refused (kid {})", kid(&token));
                    calls.fetch_add(1, Ordering::SeqCst);
                }
                kids.push(kid(&token));
            }
            kids
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new key signs as soon as the server reloads (every 5 s): no publish-ahead window
    // in which the API could have picked it up by a periodic refresh. `keys rotate` decides when the new key signs: from its own settings.
    let rotated = s
        .w
        .command(&["keys", "rotate", "--dev", "--alg", "ES256", "--database-url", &s.w.db_url()])
        .env("TESSERA_KEY_PUBLISH_AHEAD_SECONDS", "0")
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    // Until the server signs with the new key, and a few seconds past it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_kid = loop {
        let kid = kid(&s.token("orders:read").await);
        if kid != first_kid {
            break kid;
        }
        assert!(Instant::now() < deadline, "the server never signed with the new key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.expect("a worker saw a refusal"));
    }
    assert!(seen.contains(&first_kid) && seen.contains(&new_kid), "both keys were in use");
    assert!(calls.load(Ordering::SeqCst) > 50, "the load loop ran");
    // The start-up fetch and one on first sight of the new kid.
    assert_eq!(s.validator.jwks_fetches(&s.server.issuer()), Some(2));
}

/// R7.4 end to end: `tessera serve` with `redis_url` publishes a revoked token's `jti`, and the
/// API reading the same Redis refuses the token (real Redis, `TESSERA_TEST_REDIS_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7009_a_token_revoked_at_the_server_is_refused_by_the_api_through_redis() {
    let url =
        std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = match std::net::TcpStream::connect(
        url.trim_start_matches("redis://").trim_end_matches('/'),
    ) {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: Redis at {url} is unreachable: {e}");
            false
        }
        Err(e) => panic!("Redis is required under CI: {e}"),
    };
    if !reachable {
        return;
    }
    let s =
        Setup::start("orders-revocation", &[("TESSERA_REDIS_URL", &url)], Some(url.clone())).await;
    let token = s.token("orders:read").await;
    let other = s.token("orders:read").await;
    assert_eq!(s.get("/orders", Some(&token)).await.status(), 200);
    let revoked = s
        .client
        .post(format!("{}/revoke", s.server.issuer()))
        .basic_auth("shop", Some(&s.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // The API's own answer for the token is reused for 2 s at most.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = s.get("/orders", Some(&token)).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(s.get("/orders", Some(&other)).await.status(), 200);
}

/// RFC 9449 §7 with a client nobody here wrote: oauth4webapi gets a DPoP-bound token from
/// `tessera serve` and calls orders-api with `protectedResourceRequest` and its DPoP proofs,
/// which succeeds; the same token without a proof (as a bearer token, §7.2) or with proofs of
/// another key (§7.1) is refused with a `DPoP` challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_7_oauth4webapi_calls_orders_api_with_a_dpop_bound_token() {
    use crate::node_tools::{js_tools_available, run_node};
    let test = "rfc9449_7_oauth4webapi_calls_orders_api_with_a_dpop_bound_token";
    if !js_tools_available(test, &["oauth4webapi"], false) {
        return;
    }
    let s = Setup::start("orders-dpop", &[], None).await;
    let args = [s.server.issuer(), "shop".into(), s.secret.clone(), s.api.clone()];
    let stdout =
        tokio::task::spawn_blocking(move || run_node("oauth4webapi_dpop_resource.mjs", &args))
            .await
            .unwrap();
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(out["token_type"], "dpop", "{out}");
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["orders"], serde_json::json!([]), "{out}");
    assert_eq!(out["again"], 200, "{out}");
    for refused in ["bearer", "other_key"] {
        let answer = &out[refused];
        assert_eq!(answer["status"], 401, "{refused}: {out}");
        let dpop = answer["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["scheme"] == "dpop")
            .unwrap_or_else(|| panic!("{refused}: no DPoP challenge in {out}"));
        assert_eq!(dpop["error"], "invalid_token", "{refused}: {out}");
        assert!(dpop["algs"].as_str().unwrap().contains("ES256"), "{refused}: {out}");
    }
}
