//! The gateway's test harness: a real Tessera authorization server on a loopback port (the
//! issuer), small upstream services recording what reaches them, gateways started from TOML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tessera_gateway::{Gateway, GatewayConfig};
use tessera_server::config::RawConfig;
use tessera_store::Store;

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn random() -> String {
    tessera_core::secret::random_id::<6>().replace(['-', '_'], "x")
}

/// A Tessera server on a loopback port with the system clock; stopped when dropped.
pub struct Issuer {
    pub url: String,
    store: Store,
    db_path: std::path::PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// With [`Issuer::start_relayed`]: every request that reached the issuer (path, body).
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Issuer {
    pub async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        Self::start_on(listener, url).await
    }

    /// An issuer whose URL is a relay recording every request before passing it on (its
    /// metadata names the relay, so the gateway's key and token requests go through it).
    pub async fn start_relayed() -> Issuer {
        let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", relay.local_addr().unwrap().port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut issuer = Self::start_on(listener, url).await;
        let requests = issuer.requests.clone();
        let app = Router::new().fallback(any(move |request: Request| {
            let (requests, target) = (requests.clone(), target.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                requests
                    .lock()
                    .unwrap()
                    .push((parts.uri.path().to_owned(), String::from_utf8_lossy(&body).into()));
                let mut forward = reqwest::Client::new()
                    .request(parts.method, format!("{target}{path}"))
                    .body(body);
                for (name, value) in &parts.headers {
                    if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                        forward = forward.header(name, value);
                    }
                }
                let answer = forward.send().await.unwrap();
                let mut response = Response::new(Body::empty());
                *response.status_mut() = answer.status();
                for (name, value) in answer.headers() {
                    if name != http::header::TRANSFER_ENCODING
                        && name != http::header::CONTENT_LENGTH
                    {
                        response.headers_mut().insert(name, value.clone());
                    }
                }
                *response.body_mut() = Body::from(answer.bytes().await.unwrap());
                response
            }
        }));
        issuer.relay = Some(tokio::spawn(async move { axum::serve(relay, app).await.unwrap() }));
        issuer
    }

    /// How many requests to a path ending in `suffix` whose body contains `needle` reached
    /// the issuer (through the relay of [`Issuer::start_relayed`]).
    pub fn requests_to(&self, suffix: &str, needle: &str) -> usize {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(path, body)| path.ends_with(suffix) && body.contains(needle))
            .count()
    }

    async fn start_on(listener: tokio::net::TcpListener, url: String) -> Issuer {
        let db_path = std::env::temp_dir().join(format!("tessera-gw-test-{}.db", random()));
        let db_url = format!("sqlite://{}", db_path.display());
        let store = Store::connect(&db_url).await.unwrap();
        let settings = tessera_server::Settings::validate(
            RawConfig {
                issuer: Some(url.clone()),
                database_url: Some(db_url),
                key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
                access_token_signing_alg: Some(SigningAlg::ES256.as_str().into()),
                ..Default::default()
            },
            false,
        )
        .expect("valid issuer settings");
        let clock = Arc::new(tessera_core::clock::SystemClock);
        let state = tessera_server::build_state(settings, store.clone(), clock).await.unwrap();
        let task = tokio::spawn(tessera_server::serve(state, listener));
        Issuer { url, store, db_path, task, requests: Arc::default(), relay: None }
    }

    /// Registers `registration` (made for now); returns its secret.
    pub async fn register(&self, registration: ClientRegistration) -> String {
        let (client, secret) = registration.into_client(now()).unwrap();
        self.store.create_client(&client).await.unwrap();
        secret.unwrap().expose().to_owned()
    }

    /// Registers a confidential client-credentials client allowed `scope` at `audiences`;
    /// returns its secret.
    pub async fn client(&self, id: &str, scope: &str, audiences: &[&str]) -> String {
        let (client, secret) = ClientRegistration {
            client_id: Some(ClientId::parse(id).unwrap()),
            client_name: id.into(),
            grant_types: vec![GrantType::ClientCredentials],
            scope: ScopeSet::parse(scope).unwrap(),
            default_scope: ScopeSet::parse(scope).unwrap(),
            audience: audiences.iter().map(|a| (*a).to_owned()).collect(),
            auth_method: Some(AuthMethod::ClientSecretPost),
            ..Default::default()
        }
        .into_client(now())
        .unwrap();
        self.store.create_client(&client).await.unwrap();
        secret.unwrap().expose().to_owned()
    }

    /// An access token of client `id` for `audience` with `scope` (client credentials).
    pub async fn token(&self, id: &str, secret: &str, audience: &str, scope: &str) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("resource", audience),
            ("scope", scope),
        ];
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(relay) = &self.relay {
            relay.abort();
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db_path.display()));
        }
    }
}

/// What an upstream received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// An upstream service on a loopback port: `/sse` streams two events a second apart, `/slow`
/// answers after 3 s, anything else echoes and records the request.
pub struct Upstream {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new()
            .route("/sse", get(sse))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "late"
                }),
            )
            .fallback(any(move |request: Request| {
                let record = record.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
                    record.lock().unwrap().push(Seen {
                        uri: parts.uri.to_string(),
                        headers: parts.headers,
                        body: body.to_vec(),
                    });
                    (
                        [("connection", "x-upstream-hop"), ("x-upstream-hop", "1")],
                        "upstream says hi",
                    )
                        .into_response()
                }
            }));
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { url, seen, task }
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the upstream saw a request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two Server-Sent Events, one second apart.
async fn sse() -> Response {
    let stream = async_stream(vec![
        (Duration::ZERO, "data: first\n\n"),
        (Duration::from_secs(1), "data: second\n\n"),
    ]);
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], Body::new(stream))
        .into_response()
}

/// A body that yields each chunk after its delay (the upstream of an SSE stream).
fn async_stream(chunks: Vec<(Duration, &'static str)>) -> ChannelBody {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for (delay, chunk) in chunks {
            tokio::time::sleep(delay).await;
            if tx.send(bytes::Bytes::from_static(chunk.as_bytes())).await.is_err() {
                return;
            }
        }
    });
    ChannelBody(rx)
}

/// A body fed through a channel.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}

/// A gateway serving `toml` (with `listen` replaced by a free port, `{issuer}` and
/// `{upstream}` substituted); stopped when dropped.
pub struct RunningGateway {
    pub url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningGateway {
    pub async fn start(toml: &str) -> RunningGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let toml = toml.replace("{gateway}", &url);
        let config = GatewayConfig::from_toml(&toml).unwrap();
        let gateway = Gateway::new(config).await.unwrap();
        let task = tokio::spawn(gateway.serve(listener, std::future::pending()));
        let running = RunningGateway { url, task };
        running.wait_ready().await;
        running
    }

    /// Waits until `/readyz` answers 200 (issuer keys loaded).
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/readyz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not become ready");
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client().get(format!("{}{path}", self.url))
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway configuration with one protected route `/api` (audience
/// `{gateway}/api`, scope `orders:read`, `POST` needs `orders:write`) and one anonymous route
/// `/public`, both to `upstream`.
pub fn standard_toml(issuer: &str, upstream: &str, extra_route: &str) -> String {
    let extra_route = extra_route.replace("{upstream}", upstream);
    format!(
        r#"
        public_url = "{{gateway}}"
        issuers = ["{issuer}"]
        allow_private_networks = true
        [limits]
        max_body_bytes = 1024
        response_header_timeout_ms = 1000
        connect_timeout_ms = 1000
        [identity]
        strip_headers = ["x-remote-user"]
        jwt = true
        [[routes]]
        name = "api"
        path_prefix = "/api"
        upstream = "{upstream}"
        audience = "{{gateway}}/api"
        scopes = ["orders:read"]
        method_scopes = {{ POST = ["orders:read", "orders:write"] }}
        [[routes]]
        name = "public"
        path_prefix = "/public"
        upstream = "{upstream}"
        anonymous = true
        {extra_route}
        "#
    )
}

/// An issuer, an upstream, a gateway of [`standard_toml`], and a client allowed
/// `orders:read orders:write` at the `/api` audience.
pub struct World {
    pub issuer: Issuer,
    pub upstream: Upstream,
    pub gateway: RunningGateway,
    pub client_id: String,
    pub secret: String,
    pub audience: String,
}

impl World {
    pub async fn start() -> World {
        Self::start_with("").await
    }

    pub async fn start_with(extra_route: &str) -> World {
        Self::start_with_globals("", extra_route).await
    }

    /// With top-level keys `globals` too (they go before every table).
    pub async fn start_with_globals(globals: &str, extra_route: &str) -> World {
        let issuer = Issuer::start().await;
        let upstream = Upstream::start().await;
        let toml = format!("{globals}{}", standard_toml(&issuer.url, &upstream.url, extra_route));
        let gateway = RunningGateway::start(&toml).await;
        let audience = format!("{}/api", gateway.url);
        let client_id = format!("shop-{}", random());
        let secret = issuer.client(&client_id, "orders:read orders:write", &[&audience]).await;
        World { issuer, upstream, gateway, client_id, secret, audience }
    }

    pub async fn token(&self, scope: &str) -> String {
        self.issuer.token(&self.client_id, &self.secret, &self.audience, scope).await
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA (`ca.pem`) and, for each `(name, extensions)`, a P-256 key `name.key` and a
/// certificate `name.pem` it signed with those X.509v3 extensions, made with the `openssl`
/// command in a fresh directory. `None` (the test skips) without openssl, except under CI.
pub fn make_pki(test: &str, certificates: &[(&str, &str)]) -> Option<PathBuf> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {test} needs openssl");
        eprintln!("skipping {test}: the openssl command is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("tessera-gw-pki-{}", random()));
    std::fs::create_dir_all(&dir).unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=tessera test CA",
    ]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(&dir, &ca);
    for (name, extensions) in certificates {
        let (key, csr, pem, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&extfile), extensions).unwrap();
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=test"]);
        openssl(&dir, &req);
        let sign = ["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key"];
        let out = ["-CAcreateserial", "-out", &pem, "-days", "1", "-extfile", &extfile];
        openssl(&dir, &[&sign[..], &out[..]].concat());
    }
    Some(dir)
}
