//! What the resource-server library costs per request (printed figures, not a timed test):
//! JWT first sight (ES256 signature), the same JWT again (verified-token cache), an opaque
//! token with a warm introspection cache; then an API's requests/s and p50/p99 latency with and
//! without the layer. `cargo bench -p tessera-resource --bench validation`; method and
//! figures in bench/README.md.
//!
//! The issuer is a loopback stand-in serving metadata, a JWKS and an introspection endpoint
//! that calls every token active: this measures the library, not an authorization server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::http::Request;
use axum::http::request::Parts;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hdrhistogram::Histogram;
use serde_json::json;
use tessera_resource::{
    IntrospectionCredentials, IssuerConfig, Principal, RequireScope, TokenValidator,
    ValidatorConfig,
};

const RESOURCE: &str = "https://orders.example";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

struct Issuer {
    url: String,
    pair: EcdsaKeyPair,
}

impl Issuer {
    async fn start() -> Issuer {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])}]})
        .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
            "introspection_endpoint": format!("{url}/introspect")})
        .to_string();
        let introspected = json!({"active": true, "iss": url, "sub": "alice", "client_id": "shop",
            "aud": [RESOURCE], "scope": "orders:read", "exp": now() + 3600, "jti": "j"})
        .to_string();
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(move || async move { metadata }))
            .route("/jwks", get(move || async move { jwks }))
            .route("/introspect", post(move || async move { introspected }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer { url, pair }
    }

    fn token(&self, jti: usize) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"});
        let claims = json!({"iss": self.url, "sub": "alice", "aud": [RESOURCE], "exp": now() + 3600,
            "iat": now(), "jti": format!("jti-{jti}"), "client_id": "shop", "scope": "orders:read"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

fn parts(token: &str) -> Parts {
    let request = Request::builder()
        .uri("/orders")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    request.into_parts().0
}

async fn validation(issuer: &Issuer, validator: &TokenValidator) {
    // First sight: every token is new, so every one costs an ES256 verification.
    let n = 20_000;
    let fresh: Vec<Parts> = (0..n).map(|i| parts(&issuer.token(i))).collect();
    let started = Instant::now();
    for request in &fresh {
        validator.authenticate(request).await.unwrap();
    }
    let first = started.elapsed();
    println!(
        "JWT first sight (ES256 verify + claims):  {:>9.0} validations/s  ({:.1} µs each)",
        n as f64 / first.as_secs_f64(),
        first.as_secs_f64() * 1e6 / n as f64
    );

    // The same token again: the verified-token cache skips the signature.
    let repeated = parts(&issuer.token(n + 1));
    validator.authenticate(&repeated).await.unwrap();
    let m = 500_000;
    let started = Instant::now();
    for _ in 0..m {
        validator.authenticate(&repeated).await.unwrap();
    }
    let cached = started.elapsed();
    println!(
        "JWT repeated (cached signature):          {:>9.2} µs per validation",
        cached.as_secs_f64() * 1e6 / m as f64
    );
}

async fn introspection(issuer: &Issuer) {
    let config = ValidatorConfig::new(RESOURCE)
        .issuer(
            IssuerConfig::new(&issuer.url, RESOURCE)
                .introspection(IntrospectionCredentials::client_secret("rs", "secret")),
        )
        .allow_private_networks(true);
    let validator = TokenValidator::discover(config).await.unwrap();
    let opaque = parts("opaque-reference-token-0123456789");
    validator.authenticate(&opaque).await.unwrap();
    let m = 500_000;
    let started = Instant::now();
    for _ in 0..m {
        validator.authenticate(&opaque).await.unwrap();
    }
    let warm = started.elapsed();
    println!(
        "Opaque token, warm introspection cache:   {:>9.2} µs per validation",
        warm.as_secs_f64() * 1e6 / m as f64
    );
}

async fn list(principal: Principal) -> String {
    principal.subject().to_owned()
}

async fn anonymous() -> &'static str {
    "alice"
}

/// `connections` clients calling `GET /orders` for `period`; requests/s and latency.
async fn load(
    app: Router,
    token: &str,
    connections: usize,
    period: Duration,
) -> (f64, Histogram<u64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (url, token, stop) = (url.clone(), token.to_owned(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            let mut warm = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                // The first requests open the connection: not measured.
                warm += 1;
                if warm > 10 {
                    histogram.record(started.elapsed().as_micros() as u64).unwrap();
                }
            }
            histogram
        }));
    }
    tokio::time::sleep(period).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3).unwrap();
    for worker in workers {
        all.add(worker.await.unwrap()).unwrap();
    }
    server.abort();
    (all.len() as f64 / period.as_secs_f64(), all)
}

async fn api(issuer: &Issuer, validator: &TokenValidator) {
    let token = issuer.token(999_999);
    let with_layer = Router::new()
        .route("/orders", get(list).route_layer(RequireScope::all(["orders:read"])))
        .layer(validator.layer());
    let without = Router::new().route("/orders", get(anonymous));
    let period = Duration::from_secs(5);
    for (name, app) in [("without the layer", without), ("with the layer   ", with_layer)] {
        let (rate, h) = load(app, &token, 16, period).await;
        println!(
            "API GET /orders {name}:  {rate:>8.0} req/s  p50 {} µs  p99 {} µs  (16 connections, 5 s)",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    single.block_on(async {
        let issuer = Issuer::start().await;
        let config = ValidatorConfig::new(RESOURCE)
            .issuer(IssuerConfig::new(&issuer.url, RESOURCE))
            .allow_private_networks(true);
        let validator = TokenValidator::discover(config).await.unwrap();
        println!("One core (current-thread runtime):");
        validation(&issuer, &validator).await;
        introspection(&issuer).await;
    });
    let multi = tokio::runtime::Runtime::new().unwrap();
    multi.block_on(async {
        let issuer = Issuer::start().await;
        let config = ValidatorConfig::new(RESOURCE)
            .issuer(IssuerConfig::new(&issuer.url, RESOURCE))
            .allow_private_networks(true);
        let validator = TokenValidator::discover(config).await.unwrap();
        println!("Loopback load (server and clients share the machine's cores):");
        api(&issuer, &validator).await;
    });
}
