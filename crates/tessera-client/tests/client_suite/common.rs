//! A Tessera server on a loopback socket (the real application, its own SQLite file), with a
//! count of the token requests it received and a switch to stop and restart it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tessera_client::Http;
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::ManualClock;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::{Scope, ScopeSet};
use tessera_core::store::ClientStore;
use tessera_server::config::RawConfig;
use tessera_server::{AppState, Settings};
use tessera_store::testing::TestDb;

pub fn now() -> i64 {
    tessera_client::Clock::now(&tessera_client::SystemClock)
}

pub struct TestServer {
    pub issuer: String,
    pub addr: SocketAddr,
    /// POSTs to `/token` received so far.
    pub token_calls: Arc<AtomicUsize>,
    /// Requests to `/userinfo` received so far.
    pub userinfo_calls: Arc<AtomicUsize>,
    /// The server's clock (tokens' `iat`/`exp`), at the real time when started.
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    db: Option<TestDb>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_as(|port| format!("http://127.0.0.1:{port}")).await
    }

    /// A server whose configured issuer is `issuer(port)`.
    pub async fn start_as(issuer: impl Fn(u16) -> String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = issuer(addr.port());
        let db = TestDb::sqlite().await;
        let settings = Settings::validate(
            RawConfig {
                issuer: Some(issuer.clone()),
                database_url: Some(db.url.clone()),
                key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
                access_token_signing_alg: Some(SigningAlg::ES256.as_str().into()),
                ..RawConfig::default()
            },
            false,
        )
        .expect("valid test settings");
        let clock = Arc::new(ManualClock::at(now()));
        let state =
            tessera_server::build_state(settings, db.store.clone(), clock.clone()).await.unwrap();
        let mut server = Self {
            issuer,
            addr,
            token_calls: Arc::default(),
            userinfo_calls: Arc::default(),
            clock,
            state,
            db: Some(db),
            task: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let calls = self.token_calls.clone();
        let userinfo = self.userinfo_calls.clone();
        let app = tessera_server::router(self.state.clone()).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let (calls, userinfo) = (calls.clone(), userinfo.clone());
                async move {
                    match request.uri().path() {
                        "/token" => calls.fetch_add(1, Ordering::SeqCst),
                        "/userinfo" => userinfo.fetch_add(1, Ordering::SeqCst),
                        _ => 0,
                    };
                    next.run(request).await
                }
            },
        ));
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    pub fn token_calls(&self) -> usize {
        self.token_calls.load(Ordering::SeqCst)
    }

    pub fn userinfo_calls(&self) -> usize {
        self.userinfo_calls.load(Ordering::SeqCst)
    }

    /// Stops listening: new connections are refused (clients must not pool connections, see
    /// [`http`]).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address, with the same state.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// A verifier over the server's published JWKS.
    pub async fn verifier(&self) -> tessera_jose::Verifier {
        let reply = http().get_json(&format!("{}/jwks.json", self.issuer)).await.unwrap();
        let jwks = tessera_jose::Jwks::parse_signing_keys(&reply.body.to_string()).unwrap();
        tessera_jose::Verifier::new(jwks)
    }

    pub async fn register(&self, registration: ClientRegistration) -> (String, Option<String>) {
        let (client, secret) = registration.into_client(now()).unwrap();
        let id = client.client_id.as_str().to_owned();
        self.store().create_client(&client).await.unwrap();
        (id, secret.map(|s| s.expose().to_owned()))
    }

    pub fn store(&self) -> &tessera_store::Store {
        &self.db.as_ref().unwrap().store
    }

    /// A confidential client for `client_credentials` with these scopes.
    pub async fn service_client(
        &self,
        name: &str,
        scopes: &[&str],
        method: AuthMethod,
    ) -> (String, String) {
        let (id, secret) = self
            .register(ClientRegistration {
                client_id: Some(ClientId::parse(name).unwrap()),
                client_name: name.into(),
                scope: scope_set(scopes),
                auth_method: Some(method),
                ..Default::default()
            })
            .await;
        (id, secret.unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(path) = self.db.as_ref().and_then(|db| db.sqlite_path()) {
            tessera_store::testing::remove_sqlite_files(path);
        }
    }
}

pub fn scope_set(scopes: &[&str]) -> ScopeSet {
    ScopeSet::from_scopes(scopes.iter().map(|s| Scope::parse_registered(s).unwrap()))
}

/// A client HTTP stack that opens a connection per request, so that a stopped server is
/// unreachable at once (a pooled keep-alive connection would outlive the listener).
pub fn http() -> Http {
    Http::from_client(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    )
}

/// Whether an outside program the test needs is missing and the test may skip (not on CI).
pub fn skip(reason: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {reason}");
    }
    eprintln!("skipped: {reason}");
    true
}
