//! A test issuer: its metadata and JWKS served over real HTTP on a loopback port, keys that
//! sign whatever a test needs (forgeries included), and the app under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_resource::{IssuerConfig, Principal, RequireScope, TokenValidator, ValidatorConfig};
use tower::ServiceExt;

pub const RESOURCE: &str = "https://orders.example/api";

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 key pair.
pub struct TestKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
               "kid": self.kid, "alg": "ES256", "use": "sig"})
    }

    /// Signs `claims` under exactly `header`.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": "ES256", "typ": typ, "kid": self.kid}), claims)
    }
}

/// The issuer's state, changed by the tests.
pub struct IssuerState {
    pub keys: Mutex<Vec<Value>>,
    pub jwks_fetches: AtomicUsize,
    /// When false, the JWKS endpoint answers 503.
    pub up: AtomicBool,
    /// The `Cache-Control` of the JWKS answers, if any.
    pub cache_control: Mutex<Option<String>>,
}

/// A loopback issuer serving RFC 8414 metadata and its JWKS.
pub struct TestIssuer {
    pub issuer: String,
    pub state: Arc<IssuerState>,
    pub key: TestKey,
}

impl TestIssuer {
    pub async fn start() -> Self {
        let key = TestKey::new("k1");
        let state = Arc::new(IssuerState {
            keys: Mutex::new(vec![key.jwk()]),
            jwks_fetches: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            cache_control: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let metadata =
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")}).to_string();
        let jwks_state = state.clone();
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { ([("content-type", "application/json")], metadata) }),
            )
            .route(
                "/jwks.json",
                get(move || {
                    let state = jwks_state.clone();
                    async move {
                        state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                        if !state.up.load(Ordering::SeqCst) {
                            return StatusCode::SERVICE_UNAVAILABLE.into_response();
                        }
                        let keys = state.keys.lock().unwrap().clone();
                        let mut response = json!({"keys": keys}).to_string().into_response();
                        if let Some(value) = state.cache_control.lock().unwrap().clone() {
                            response.headers_mut().insert("cache-control", value.parse().unwrap());
                        }
                        response
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, state, key }
    }

    pub fn fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.keys.lock().unwrap().push(key.jwk());
    }

    /// Standard RFC 9068 claims for this issuer and [`RESOURCE`], valid for an hour.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({"iss": self.issuer, "sub": "alice", "aud": [RESOURCE], "exp": now + 3600,
               "iat": now, "jti": format!("jti-{}", rand_suffix()), "client_id": "shop",
               "scope": "orders:read"})
    }

    pub fn token(&self, claims: &Value) -> String {
        self.key.sign("at+jwt", claims)
    }

    pub fn config(&self) -> ValidatorConfig {
        ValidatorConfig::new(RESOURCE)
            .issuer(IssuerConfig::new(&self.issuer, RESOURCE))
            .scopes_supported(["orders:read", "orders:write"])
            .allow_private_networks(true)
    }

    pub async fn validator(&self) -> TokenValidator {
        TokenValidator::discover(self.config()).await.unwrap()
    }
}

pub fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

/// The API under test: `/orders` needs `orders:read`, `POST /orders` needs both scopes.
pub fn app(validator: &TokenValidator) -> Router {
    async fn list(principal: Principal) -> String {
        format!("orders of {}", principal.subject())
    }
    let protected = Router::new()
        .route(
            "/orders",
            get(list)
                .route_layer(RequireScope::all(["orders:read"]))
                .merge(post(list).route_layer(RequireScope::all(["orders:read", "orders:write"]))),
        )
        .layer(validator.layer());
    Router::new().merge(protected).merge(validator.metadata_router())
}

pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: String,
}

pub async fn call(app: &Router, method: &str, path: &str, authorization: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response: Response =
        app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer { status, challenge, body: String::from_utf8(body.to_vec()).unwrap() }
}

pub async fn get_with(app: &Router, token: &str) -> Answer {
    call(app, "GET", "/orders", Some(&format!("Bearer {token}"))).await
}
