//! Shared test harness: an application on a fresh SQLite file, driven through
//! `Router::oneshot` (no sockets), with a controllable clock.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::ManualClock;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tessera_server::config::RawConfig;
use tessera_server::{AppState, Settings};
use tessera_store::Store;
use tower::ServiceExt;

pub const ISSUER: &str = "https://auth.test.example";
/// The test clock starts at the real time, so third-party verifiers that read the system
/// clock accept the tokens.
pub fn t0() -> i64 {
    tessera_core::clock::Clock::now(&tessera_core::clock::SystemClock)
}

pub struct TestApp {
    pub state: AppState,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub db_path: std::path::PathBuf,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn settings(alg: SigningAlg, db_url: &str) -> Settings {
    Settings::validate(
        RawConfig {
            issuer: Some(ISSUER.into()),
            database_url: Some(db_url.into()),
            key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
            access_token_signing_alg: Some(alg.as_str().into()),
            ..Default::default()
        },
        false,
    )
    .expect("valid test settings")
}

pub fn temp_db() -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir()
        .join(format!("tessera-test-{}.db", tessera_core::secret::random_id::<8>()));
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(SigningAlg::ES256).await
}

pub async fn spawn_app_with(alg: SigningAlg) -> TestApp {
    let (db_path, url) = temp_db();
    let store = Store::connect(&url).await.expect("store");
    let clock = Arc::new(ManualClock::at(t0()));
    let state = tessera_server::build_state(settings(alg, &url), store.clone(), clock.clone())
        .await
        .expect("state");
    TestApp { state, store, clock, db_path }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        remove_db(&self.db_path);
    }
}

impl TestApp {
    pub async fn request(&self, request: Request<Body>) -> Response {
        let response =
            tessera_server::router(self.state.clone()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        Response { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// POSTs a form to `/token`, optionally with Basic credentials.
    pub async fn token(&self, basic: Option<(&str, &str)>, form: &str) -> Response {
        let mut request = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            request = request.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.request(request.body(Body::from(form.to_owned())).unwrap()).await
    }

    /// Registers a confidential client; returns its secret.
    pub async fn client(
        &self,
        id: &str,
        method: AuthMethod,
        scope: &str,
        default_scope: &str,
    ) -> String {
        register_client(&self.store, id, method, scope, default_scope).await
    }
}

/// Registers a confidential client in `store`; returns its secret.
pub async fn register_client(
    store: &Store,
    id: &str,
    method: AuthMethod,
    scope: &str,
    default_scope: &str,
) -> String {
    let set =
        |s: &str| if s.is_empty() { ScopeSet::default() } else { ScopeSet::parse(s).unwrap() };
    let (client, secret) = ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: set(scope),
        default_scope: set(default_scope),
        auth_method: Some(method),
        ..Default::default()
    }
    .into_client(t0())
    .unwrap();
    store.create_client(&client).await.unwrap();
    secret.unwrap().expose().to_owned()
}

/// Removes a SQLite database and its WAL files.
pub fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}
