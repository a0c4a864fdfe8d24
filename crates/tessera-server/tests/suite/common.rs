//! Shared test harness: an application on a fresh SQLite file (or on any store, see
//! [`TestApp::on_store`]), driven through `Router::oneshot` (no sockets), with a controllable
//! clock.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
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
    /// The SQLite file removed on drop; empty when the app does not own its database.
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
    settings_with_kek(alg, db_url, &KeyEncryptionKey::generate_encoded())
}

/// Like [`settings`] with a given (encoded) key encryption key, as instances sharing a
/// database share it.
pub fn settings_with_kek(alg: SigningAlg, db_url: &str, kek: &str) -> Settings {
    settings_from(alg, db_url, kek, RawConfig::default())
}

/// Like [`settings_with_kek`], with more configuration in `raw` (its issuer, database URL, key
/// encryption key and signing algorithm are filled in where unset).
pub fn settings_from(alg: SigningAlg, db_url: &str, kek: &str, raw: RawConfig) -> Settings {
    Settings::validate(
        RawConfig {
            issuer: raw.issuer.clone().or_else(|| Some(ISSUER.into())),
            database_url: raw.database_url.clone().or_else(|| Some(db_url.into())),
            key_encryption_key: raw.key_encryption_key.clone().or_else(|| Some(kek.into())),
            access_token_signing_alg: raw
                .access_token_signing_alg
                .clone()
                .or_else(|| Some(alg.as_str().into())),
            ..raw
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
    let mut app = TestApp::on_store(store, settings(alg, &url)).await;
    app.db_path = db_path;
    app
}

/// An app (ES256, fresh SQLite file) with more configuration, e.g.
/// `RawConfig { audit_to_database: Some(true), ..Default::default() }`.
pub async fn spawn_app_configured(raw: RawConfig) -> TestApp {
    let (db_path, url) = temp_db();
    let store = Store::connect(&url).await.expect("store");
    let settings =
        settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
    let mut app = TestApp::on_store(store, settings).await;
    app.db_path = db_path;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.db_path.as_os_str().is_empty() {
            remove_db(&self.db_path);
        }
    }
}

impl TestApp {
    /// An application on `store` (already migrated), with its own clock at [`t0`]. The caller
    /// owns the database: dropping the app removes nothing.
    pub async fn on_store(store: Store, settings: Settings) -> TestApp {
        let clock = Arc::new(ManualClock::at(t0()));
        let state = tessera_server::build_state(settings, store.clone(), clock.clone())
            .await
            .expect("state");
        TestApp { state, store, clock, db_path: std::path::PathBuf::new() }
    }

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

    /// POSTs a form to `path` (`/token`, `/revoke`, `/introspect`), optionally with Basic
    /// credentials.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &str) -> Response {
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            request = request.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.request(request.body(Body::from(form.to_owned())).unwrap()).await
    }

    /// `GET /userinfo` with a bearer token.
    pub async fn userinfo(&self, token: &str) -> Response {
        self.request(
            Request::get("/userinfo")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Registers a client as given; returns its secret, if it has one.
    pub async fn register(&self, registration: ClientRegistration) -> Option<String> {
        let (client, secret) = registration.into_client(t0()).unwrap();
        self.store.create_client(&client).await.unwrap();
        secret.map(|s| s.expose().to_owned())
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

/// Verifies a JWT against `app`'s published JWKS with a third-party JOSE library, for
/// issuer [`ISSUER`] and the given audience; returns the header and the claims.
pub async fn verify_jwt(
    app: &TestApp,
    jwt: &str,
    audience: &str,
) -> (jsonwebtoken::Header, serde_json::Value) {
    let jwks: JwkSet = serde_json::from_slice(&app.get("/jwks.json").await.body).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid published in JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("token verifies against the JWKS");
    (data.header, data.claims)
}

/// [`verify_jwt`] for an access token whose audience is the issuer; returns the claims.
pub async fn verify_with_jwks_of(app: &TestApp, jwt: &str) -> serde_json::Value {
    verify_jwt(app, jwt, ISSUER).await.1
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

#[path = "../../../../tests/js/node_tools.rs"]
pub mod node_tools;

/// Runs `node tests/js/SCRIPT ARGS…` off the async executor; returns its stdout, or fails the
/// test with its output.
pub async fn run_js(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || node_tools::run_node(script, &args)).await.unwrap()
}

/// A server listening on a loopback port, with the system clock; stopped when dropped.
pub struct LiveServer {
    pub issuer: String,
    pub store: Store,
    pub state: AppState,
    db_path: std::path::PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LiveServer {
    pub async fn start(alg: SigningAlg) -> LiveServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (db_path, url) = temp_db();
        let store = Store::connect(&url).await.unwrap();
        let mut settings = settings(alg, &url);
        settings.issuer = tessera_core::issuer::Issuer::parse(
            &issuer,
            tessera_core::issuer::HttpIssuers::LoopbackOnly,
        )
        .unwrap();
        let clock = Arc::new(tessera_core::clock::SystemClock);
        let state = tessera_server::build_state(settings, store.clone(), clock).await.unwrap();
        let task = tokio::spawn(tessera_server::serve(state.clone(), listener));
        LiveServer { issuer, store, state, db_path, task }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.task.abort();
        remove_db(&self.db_path);
    }
}

/// Percent-encodes a form value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `TESSERA_TEST_REDIS_URL`, by default the local Redis.
pub fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether the local Redis answers `PING`. Outside CI a test without it is skipped with the
/// reason; under `CI=true` it must run, so an unreachable Redis fails it.
pub async fn redis_available(test: &str) -> bool {
    let url = redis_url();
    let ping = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let reason = match tokio::time::timeout(std::time::Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => format!("Redis at {url} is unreachable: {e}"),
        Err(_) => format!("Redis at {url} did not answer within 5 s"),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {test} cannot run: {reason}"
    );
    eprintln!("skipping {test}: {reason}");
    false
}

/// The authorization code flow through the login form: a user, a browser keeping cookies,
/// first-party web clients (no consent page), the code exchange.
pub mod flow {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tessera_core::client::ClientRegistration;
    use tessera_core::client_id::ClientId;
    use tessera_core::grant_type::GrantType;
    use tessera_core::redirect_uri::RedirectUri;
    use tessera_core::scope::ScopeSet;
    use tessera_core::secret::Secret;
    use tessera_core::store::UserStore;
    use tessera_core::user::User;

    use super::{Response, TestApp, t0, urlencode};

    pub const REDIRECT: &str = "https://app.example/cb";
    pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    pub const USERNAME: &str = "alice";
    pub const PASSWORD: &str = "correct horse battery";

    /// Creates user `alice`; returns her `sub`.
    pub async fn create_user(app: &TestApp) -> String {
        let user = User::new(
            USERNAME,
            Some("alice@example.com".into()),
            Some("Alice Example".into()),
            &Secret::from_string(PASSWORD.into()),
            t0(),
        )
        .unwrap();
        app.store.create_user(&user).await.unwrap();
        user.id
    }

    /// A confidential first-party web client (Basic auth) with the code and refresh grants;
    /// adjust the other fields with struct update syntax.
    pub fn web_client(id: &str) -> ClientRegistration {
        ClientRegistration {
            client_id: Some(ClientId::parse(id).unwrap()),
            client_name: id.into(),
            redirect_uris: vec![RedirectUri::parse_for_registration(REDIRECT).unwrap()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: ScopeSet::parse("openid profile email orders:read").unwrap(),
            default_scope: ScopeSet::parse("openid").unwrap(),
            first_party: true,
            ..Default::default()
        }
    }

    /// The query of an authorization request of `client_id` with PKCE; `extra` is appended.
    pub fn authorize_query(client_id: &str, extra: &str) -> String {
        format!(
            "response_type=code&client_id={client_id}&redirect_uri={}&scope=openid+profile+email&state=xyz&nonce=n-0S6&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
            urlencode(REDIRECT)
        )
    }

    /// A browser: keeps cookies between requests.
    #[derive(Default)]
    pub struct Browser {
        pub cookies: HashMap<String, String>,
    }

    impl Browser {
        pub async fn send(&mut self, app: &TestApp, mut request: Request<Body>) -> Response {
            let cookie: Vec<String> =
                self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !cookie.is_empty() {
                request.headers_mut().insert(header::COOKIE, cookie.join("; ").parse().unwrap());
            }
            let res = app.request(request).await;
            for set in res.headers.get_all(header::SET_COOKIE) {
                let (pair, _) = set.to_str().unwrap().split_once(';').unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
            res
        }

        pub async fn get(&mut self, app: &TestApp, path: &str) -> Response {
            self.send(app, Request::get(path).body(Body::empty()).unwrap()).await
        }

        pub async fn post(&mut self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
            let body: String =
                url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
            let request = Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            self.send(app, request).await
        }

        /// Submits the login form of a login page.
        pub async fn login(
            &mut self,
            app: &TestApp,
            page: &Response,
            username: &str,
            password: &str,
        ) -> Response {
            let html = page_text(page);
            let (csrf, request) = (hidden(&html, "csrf_token"), hidden(&html, "request"));
            self.post(
                app,
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("request", &request),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await
        }

        /// Submits the consent form of a consent page.
        pub async fn decide(&mut self, app: &TestApp, page: &Response, decision: &str) -> Response {
            let html = page_text(page);
            let (csrf, request) = (hidden(&html, "csrf_token"), hidden(&html, "request"));
            self.post(
                app,
                "/consent",
                &[("csrf_token", &csrf), ("request", &request), ("decision", decision)],
            )
            .await
        }
    }

    pub fn page_text(res: &Response) -> String {
        String::from_utf8_lossy(&res.body).into_owned()
    }

    /// The value of a hidden form field, with HTML character references (`&#38;` …) decoded.
    pub fn hidden(html: &str, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in {html}"))
            + marker.len();
        let end = start + html[start..].find('"').unwrap();
        let mut out = String::new();
        let mut rest = &html[start..end];
        while let Some(i) = rest.find("&#") {
            out.push_str(&rest[..i]);
            let semi = rest[i..].find(';').unwrap() + i;
            out.push(char::from_u32(rest[i + 2..semi].parse().unwrap()).unwrap());
            rest = &rest[semi + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The query parameters of a redirect's Location.
    pub fn redirect_params(res: &Response) -> HashMap<String, String> {
        let location = res
            .header("location")
            .unwrap_or_else(|| panic!("no redirect: {} {}", res.status, page_text(res)));
        let url = url::Url::parse(location).unwrap();
        url.query_pairs().into_owned().collect()
    }

    /// A fresh browser signs in as alice for `client_id` (approving consent if asked); returns
    /// the code. `extra` is appended to the authorization request.
    pub async fn code_for(app: &TestApp, client_id: &str, extra: &str) -> String {
        let mut browser = Browser::default();
        let page =
            browser.get(app, &format!("/authorize?{}", authorize_query(client_id, extra))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page_text(&page));
        let mut done = browser.login(app, &page, USERNAME, PASSWORD).await;
        if done.status == StatusCode::OK {
            done = browser.decide(app, &done, "approve").await;
        }
        redirect_params(&done)["code"].clone()
    }

    /// Exchanges a code at `/token` for a client with Basic credentials; `extra` is appended.
    pub async fn exchange(
        app: &TestApp,
        client: (&str, &str),
        code: &str,
        extra: &str,
    ) -> Response {
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}{extra}",
            urlencode(code),
            urlencode(REDIRECT)
        );
        app.token(Some(client), &form).await
    }

    /// Signs in, exchanges the code, and returns the token response (which must be a 200).
    pub async fn tokens_for(app: &TestApp, client: (&str, &str)) -> serde_json::Value {
        let code = code_for(app, client.0, "").await;
        let res = exchange(app, client, &code, "").await;
        assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
        res.json()
    }

    /// A refresh token grant request with Basic credentials; `extra` is appended.
    pub async fn refresh(
        app: &TestApp,
        client: (&str, &str),
        refresh_token: &str,
        extra: &str,
    ) -> Response {
        let form =
            format!("grant_type=refresh_token&refresh_token={}{extra}", urlencode(refresh_token));
        app.token(Some(client), &form).await
    }
}

/// Log lines captured during a test binary's run.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log sink of this test binary: the production subscriber (JSON, redacting writer) at
/// trace level, installed globally — tracing caches per call site whether anyone listens, so a
/// thread-local subscriber would miss events first hit by another test's thread.
pub fn captured_logs() -> &'static CapturedLogs {
    static SINK: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let sink = CapturedLogs::default();
        let writer = sink.clone();
        let subscriber = tessera_server::telemetry::subscriber(
            tessera_server::config::LogFormat::Json,
            move || writer.clone(),
            "trace",
        );
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        sink
    })
}
