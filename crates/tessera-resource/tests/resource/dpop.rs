//! DPoP at the resource (RFC 9449 §7): the proof of a DPoP-bound token is verified — `htm`,
//! `htu`, `iat`, `ath`, `jti` once, the resource's nonce — and its key must be `cnf.jkt`;
//! refusals carry the `DPoP` challenges of §7.1.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tessera_jose::dpop::{access_token_hash, thumbprint};
use tessera_resource::{DpopCheck, SenderConstraints, TokenValidator};
use tower::ServiceExt;

use crate::support::*;

/// The URL clients call this API under (the proofs' `htu`).
const BASE: &str = "https://orders.example";

fn public_jwk(key: &TestKey) -> Value {
    let mut jwk = key.jwk();
    let map = jwk.as_object_mut().unwrap();
    map.remove("kid");
    map.remove("use");
    map.remove("alg");
    jwk
}

fn jkt(key: &TestKey) -> String {
    thumbprint(public_jwk(key).as_object().unwrap()).unwrap()
}

/// A proof by `key` with `claims` (merged over valid ones for GET /orders and `token`).
fn proof(key: &TestKey, token: &str, overrides: Value) -> String {
    let mut claims = json!({"jti": rand_suffix(), "htm": "GET", "htu": format!("{BASE}/orders"),
        "iat": now(), "ath": access_token_hash(token)});
    for (name, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)});
    key.sign_with_header(&header, &claims)
}

/// A token of `issuer` bound to `key` (RFC 9449 §6.1 `cnf.jkt`).
fn bound_token(issuer: &TestIssuer, key: &TestKey) -> String {
    let mut claims = issuer.claims();
    claims["cnf"] = json!({"jkt": jkt(key)});
    issuer.token(&claims)
}

async fn dpop_app(issuer: &TestIssuer, check: DpopCheck) -> Router {
    let constraints = SenderConstraints::new(Some(Arc::new(check)), None);
    let config = issuer.config().sender_constraint(Arc::new(constraints));
    app(&TokenValidator::discover(config).await.unwrap())
}

pub struct DpopAnswer {
    pub status: StatusCode,
    pub challenges: Vec<String>,
    pub nonce: Option<String>,
}

async fn send(app: &Router, method: &str, authorization: &str, proofs: &[&str]) -> DpopAnswer {
    let mut request = Request::builder().method(method).uri("/orders");
    request = request.header("authorization", authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    DpopAnswer { status: response.status(), challenges, nonce }
}

async fn get_dpop(app: &Router, token: &str, proof: &str) -> DpopAnswer {
    send(app, "GET", &format!("DPoP {token}"), &[proof]).await
}

fn assert_dpop_error(answer: &DpopAnswer, error: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let first = &answer.challenges[0];
    assert!(first.starts_with("DPoP "), "{first}");
    assert!(first.contains(&format!("error=\"{error}\"")), "{first}");
    // RFC 9449 §7.1: the challenge names the accepted algorithms.
    assert!(first.contains("algs=\"") && first.contains("ES256"), "{first}");
}

#[tokio::test]
async fn rfc9449_7_a_bound_token_with_a_valid_proof_of_its_key_is_accepted() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_eq!(answer.status, StatusCode::OK);
    // §4.3 check 9: query and fragment are not part of `htu`; scheme and host without case.
    let htu = json!({"htu": "HTTPS://Orders.Example/orders"});
    assert_eq!(get_dpop(&app, &token, &proof(&key, &token, htu)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc9449_11_1_a_replayed_proof_jti_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let proof = proof(&key, &token, json!({}));
    assert_eq!(get_dpop(&app, &token, &proof).await.status, StatusCode::OK);
    assert_dpop_error(&get_dpop(&app, &token, &proof).await, "invalid_dpop_proof");
}

#[tokio::test]
async fn rfc9449_4_3_wrong_htu_or_htm_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    for overrides in [
        json!({"htm": "POST"}),
        json!({"htu": "https://orders.example/other"}),
        json!({"htu": "https://attacker.example/orders"}),
        json!({"htu": "http://orders.example/orders"}),
    ] {
        let answer = get_dpop(&app, &token, &proof(&key, &token, overrides.clone())).await;
        assert_dpop_error(&answer, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn rfc9449_4_3_stale_or_future_iat_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    for iat in [now() - 61, now() - 3600, now() + 30] {
        let answer = get_dpop(&app, &token, &proof(&key, &token, json!({"iat": iat}))).await;
        assert_dpop_error(&answer, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn rfc9449_7_a_proof_without_ath_or_for_another_token_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let missing = proof(&key, &token, json!({"ath": null}));
    assert_dpop_error(&get_dpop(&app, &token, &missing).await, "invalid_dpop_proof");
    let other = proof(&key, &token, json!({"ath": access_token_hash("another token")}));
    assert_dpop_error(&get_dpop(&app, &token, &other).await, "invalid_dpop_proof");
}

#[tokio::test]
async fn rfc9449_7_1_a_bound_token_without_a_proof_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let answer = send(&app, "GET", &format!("DPoP {token}"), &[]).await;
    assert_dpop_error(&answer, "invalid_dpop_proof");
    // §4.3 check 1: not two proofs either.
    let (a, b) = (proof(&key, &token, json!({})), proof(&key, &token, json!({})));
    let answer = send(&app, "GET", &format!("DPoP {token}"), &[&a, &b]).await;
    assert_dpop_error(&answer, "invalid_dpop_proof");
}

/// The validator remembers a bound token once accepted; the proof is still needed every time.
#[tokio::test]
async fn rfc9449_7_1_a_bound_token_accepted_before_still_needs_a_proof_every_time() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let (key, thief) = (TestKey::new("client"), TestKey::new("thief"));
    let token = bound_token(&issuer, &key);
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(&app, "GET", &format!("DPoP {token}"), &[]).await;
    assert_dpop_error(&answer, "invalid_dpop_proof");
    let answer = get_dpop(&app, &token, &proof(&thief, &token, json!({}))).await;
    assert_dpop_error(&answer, "invalid_token");
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc9449_7_2_a_bound_token_presented_as_a_bearer_token_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    // Even with a valid proof beside it: the scheme says "bearer".
    let answer =
        send(&app, "GET", &format!("Bearer {token}"), &[&proof(&key, &token, json!({}))]).await;
    assert_dpop_error(&answer, "invalid_token");
}

#[tokio::test]
async fn rfc9449_7_1_a_proof_made_with_another_key_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let (key, thief) = (TestKey::new("client"), TestKey::new("thief"));
    let token = bound_token(&issuer, &key);
    let answer = get_dpop(&app, &token, &proof(&thief, &token, json!({}))).await;
    assert_dpop_error(&answer, "invalid_token");
}

#[tokio::test]
async fn rfc9449_7_1_the_dpop_scheme_with_an_unbound_token_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let key = TestKey::new("client");
    let token = issuer.token(&issuer.claims());
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // A bearer token still works as one, and the resource offers both schemes (§7.1).
    let answer = send(&app, "GET", &format!("Bearer {token}"), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(&app, "GET", "Bearer not-a-token", &[]).await;
    assert_eq!(answer.challenges.len(), 2, "{:?}", answer.challenges);
    assert!(
        answer.challenges[0].starts_with("Bearer ") && answer.challenges[1].starts_with("DPoP ")
    );
}

#[tokio::test]
async fn rfc9449_9_a_resource_nonce_round_trip() {
    let issuer = TestIssuer::start().await;
    let app =
        dpop_app(&issuer, DpopCheck::new(BASE).unwrap().require_nonce(b"resource secret")).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    // No nonce: `use_dpop_nonce`, and the nonce to use in `DPoP-Nonce`.
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_dpop_error(&answer, "use_dpop_nonce");
    let nonce = answer.nonce.expect("a DPoP-Nonce header");
    // A made-up nonce is refused the same way.
    let made_up = proof(&key, &token, json!({"nonce": "made-up"}));
    assert_dpop_error(&get_dpop(&app, &token, &made_up).await, "use_dpop_nonce");
    // The given one is accepted, also by another instance sharing the secret.
    let with_nonce = proof(&key, &token, json!({"nonce": nonce}));
    assert_eq!(get_dpop(&app, &token, &with_nonce).await.status, StatusCode::OK);
    let other =
        dpop_app(&issuer, DpopCheck::new(BASE).unwrap().require_nonce(b"resource secret")).await;
    let again = proof(&key, &token, json!({"nonce": nonce}));
    assert_eq!(get_dpop(&other, &token, &again).await.status, StatusCode::OK);
}

fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
async fn rfc9449_11_1_a_proof_used_at_one_instance_is_refused_at_another_sharing_redis() {
    let issuer = TestIssuer::start().await;
    let check = || async {
        match DpopCheck::new(BASE).unwrap().replay_cache_redis(&redis_url()).await {
            Ok(check) => Some(check),
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipped, Redis at {} is unreachable: {e}", redis_url());
                None
            }
            Err(e) => panic!("Redis is required under CI: {e}"),
        }
    };
    let Some(first) = check().await else { return };
    let Some(second) = check().await else { return };
    let (one, other) = (dpop_app(&issuer, first).await, dpop_app(&issuer, second).await);
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let proof = proof(&key, &token, json!({}));
    assert_eq!(get_dpop(&one, &token, &proof).await.status, StatusCode::OK);
    assert_dpop_error(&get_dpop(&other, &token, &proof).await, "invalid_dpop_proof");
    // A fresh proof is fine at either.
    let fresh = self::proof(&key, &token, json!({}));
    assert_eq!(get_dpop(&other, &token, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rfc9728_2_metadata_names_the_dpop_algorithms_when_dpop_is_checked() {
    let issuer = TestIssuer::start().await;
    let app = dpop_app(&issuer, DpopCheck::new(BASE).unwrap()).await;
    let answer = call(&app, "GET", "/.well-known/oauth-protected-resource", None).await;
    let document: Value = serde_json::from_str(&answer.body).unwrap();
    let algs = document["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.iter().any(|a| a == "HS256" || a == "none"));
}

#[tokio::test]
async fn rfc9449_11_1_an_unreachable_replay_cache_refuses_with_503_not_401() {
    let issuer = TestIssuer::start().await;
    // A Redis that answers at start, then goes away: a local listener speaking just enough.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let fake = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Accept one connection and answer its handshake commands, then drop everything.
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.read(&mut buf).await.unwrap_or(0);
        let commands = String::from_utf8_lossy(&buf[..n]).matches('*').count().max(1);
        for _ in 0..commands {
            let _ = socket.write_all(b"+OK\r\n").await;
        }
    });
    let check = DpopCheck::new(BASE).unwrap().replay_cache_redis(&url).await.unwrap();
    fake.abort();
    let app = dpop_app(&issuer, check).await;
    let key = TestKey::new("client");
    let token = bound_token(&issuer, &key);
    let answer = get_dpop(&app, &token, &proof(&key, &token, json!({}))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}
