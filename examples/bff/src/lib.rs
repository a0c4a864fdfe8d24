//! A backend-for-frontend (BFF): the browser talks only to this server, which signs the user in
//! with Tessera and calls the API for it. Access, refresh and ID tokens never reach the
//! browser (OAuth 2.0 for Browser-Based Applications, draft-ietf-oauth-browser-based-apps §6.1);
//! the browser holds one HttpOnly, SameSite=Lax session cookie. Sessions and pending sign-ins
//! live in a shared store (Redis or SQLite; `session.rs`), sealed, so that any instance serves any user.
//!
//! Routes: `/` (the page), `/login`, `/callback`, `POST /logout`, and `/api/*`, proxied to the
//! resource API with the user's access token, refreshed as needed (`tessera-client`).

mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tessera_client::{
    BearerLayer, ClientCredentials, CodeFlow, Http, Metadata, Refresher, SecretString,
    TokenResponse, discover,
};
use tower::{Layer, Service};

pub use session::{
    PendingSignIns, RedisSessions, SESSION_LIFETIME, Session, SessionRefreshToken, SessionStore,
    Sessions, SqliteSessions, StoreFuture,
};

/// What the BFF needs to know.
pub struct Config {
    /// Tessera's issuer identifier.
    pub issuer: String,
    /// The BFF's (confidential) client at Tessera.
    pub client_id: String,
    pub client_secret: String,
    /// Where browsers reach the BFF (its `/callback` is the redirect URI, `/` the
    /// post-logout redirect URI).
    pub public_url: url::Url,
    /// The resource API's base URL: `/api/x` goes to `{api_url}/x`.
    pub api_url: String,
    /// The scopes asked for at sign-in.
    pub scope: String,
    /// Where sessions are kept (shared by all instances).
    pub session_store: Arc<dyn SessionStore>,
    /// The AES-256-GCM key sealing the sessions: the same on every instance.
    pub session_key: [u8; 32],
}

/// The header a page sends its CSRF token in on state-changing `/api/*` requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session's tokens in this process: its `Refresher` (one refresh at a time per session
/// here) and when it was last used.
type Live = (Arc<Refresher<SessionRefreshToken>>, Instant);

struct App {
    http: Http,
    metadata: Arc<Metadata>,
    credentials: ClientCredentials,
    flow: CodeFlow<PendingSignIns>,
    sessions: Arc<Sessions>,
    /// By the SHA-256 of the session id; a cache of objects, the store is the truth.
    live: Mutex<HashMap<[u8; 32], Live>>,
    cookie_name: &'static str,
    secure: bool,
    public_url: url::Url,
    api_url: url::Url,
    scope: String,
}

/// Discovers the issuer and builds the router.
pub async fn app(config: Config) -> Result<Router, tessera_client::Error> {
    let http = Http::new()?;
    let metadata = Arc::new(discover(&http, &config.issuer).await?);
    let credentials = ClientCredentials::secret_basic(&config.client_id, &config.client_secret);
    let redirect_uri = config
        .public_url
        .join("callback")
        .map_err(|e| tessera_client::Error::Config(format!("BFF public URL: {e}")))?;
    let sessions = Arc::new(Sessions::new(config.session_store, &config.session_key)?);
    let flow = CodeFlow::new(
        http.clone(),
        metadata.clone(),
        credentials.clone(),
        redirect_uri.as_str(),
        PendingSignIns(sessions.clone()),
    )?;
    // The `__Host-` prefix (RFC 6265bis §4.1.3.2) makes the browser refuse the cookie unless it
    // is Secure, host-only and Path=/; a Secure cookie needs https, so a development BFF on
    // http://127.0.0.1 uses a plain name with the same other attributes.
    let secure = config.public_url.scheme() == "https";
    let api_url = url::Url::parse(&config.api_url)
        .map_err(|e| tessera_client::Error::Config(format!("BFF API URL: {e}")))?;
    Ok(Router::new()
        .route("/", get(page))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/api/{*path}", any(proxy))
        .with_state(Arc::new(App {
            http,
            metadata,
            credentials,
            flow,
            sessions,
            live: Mutex::new(HashMap::new()),
            cookie_name: if secure { "__Host-bff_session" } else { "bff_session" },
            secure,
            public_url: config.public_url,
            api_url,
            scope: config.scope,
        })))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc's generator fails only if the OS has no entropy source at all.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

impl App {
    /// The session id from the request's cookie, if any.
    fn session_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie_name)
            .map(|(_, value)| value)
    }

    /// The request's session, if its cookie names a live one.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<(String, Session)>, Failure> {
        let Some(id) = self.session_id(headers) else { return Ok(None) };
        match self.sessions.get(id).await {
            Ok(Some(session)) => Ok(Some((id.to_owned(), session))),
            Ok(None) => {
                // Ended (signed out on another instance, expired): its tokens leave this
                // process's memory too.
                self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(id));
                Ok(None)
            }
            Err(_) => Err(Failure(StatusCode::SERVICE_UNAVAILABLE, "the session store failed")),
        }
    }

    /// The session's `Refresher` in this process, made from the stored tokens on first use.
    async fn refresher(
        &self,
        id: &str,
        session: &Session,
    ) -> Result<Arc<Refresher<SessionRefreshToken>>, Failure> {
        let key = digest(id);
        if let Some((refresher, used)) =
            self.live.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&key)
        {
            *used = Instant::now();
            return Ok(refresher.clone());
        }
        let token_endpoint = self
            .metadata
            .token_endpoint
            .clone()
            .ok_or(Failure(StatusCode::BAD_GATEWAY, "no token endpoint"))?;
        let store = SessionRefreshToken::new(self.sessions.clone(), id);
        let refresher = Refresher::new(
            self.http.clone(),
            self.metadata.issuer.clone(),
            token_endpoint,
            self.credentials.clone(),
            store,
        )
        .map_err(|_| Failure(StatusCode::BAD_GATEWAY, "bad token endpoint"))?;
        // The stored access token, for what is left of its lifetime (no refresh token: the
        // store keeps that one).
        let now = now_ms();
        let current = TokenResponse {
            access_token: SecretString::new(session.access_token.as_str()),
            token_type: "Bearer".into(),
            expires_in: Some((session.access_expires_at_ms - now).max(0) / 1000),
            refresh_token: None,
            id_token: None,
            scope: None,
        };
        refresher
            .set_current(&current)
            .await
            .map_err(|_| Failure(StatusCode::SERVICE_UNAVAILABLE, "the session store failed"))?;
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        // Sessions not used for a whole session lifetime are over: their objects go.
        live.retain(|_, (_, used)| used.elapsed() < SESSION_LIFETIME);
        // A concurrent request of the same session may have made one meanwhile: one per
        // session, so that its refreshes stay single-flight.
        let entry = live.entry(key).or_insert_with(|| (Arc::new(refresher), Instant::now()));
        Ok(entry.0.clone())
    }

    fn cookie(&self, value: &str, clear: bool) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let max_age = if clear { "; Max-Age=0" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{max_age}",
            self.cookie_name
        );
        // The name is ours and the value base64url: always a valid header value.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn digest(id: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page: a sign-in link, or the user's `sub`, a button that calls the API and a sign-out
/// form carrying the CSRF token.
async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let body = match app.session(&headers).await? {
        None => "<h1>Orders</h1><p><a href=\"/login\">Sign in</a></p>".to_owned(),
        Some((_, s)) => format!(
            "<meta name=\"csrf-token\" content=\"{csrf}\"><h1>Orders</h1>\
             <p>Signed in as <span id=\"sub\">{sub}</span></p>\
             <button id=\"load\" onclick=\"fetch('/api/orders').then(r => r.text())\
             .then(t => document.getElementById('orders').textContent = t)\">Load orders</button>\
             <pre id=\"orders\"></pre>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{csrf}\"><button>Sign out</button></form>",
            csrf = escape(&s.csrf),
            sub = escape(&s.sub),
        ),
    };
    Ok(no_store(Html(format!("<!doctype html><title>Orders</title>{body}")).into_response()))
}

#[derive(Debug)]
struct Failure(StatusCode, &'static str);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.1).into_response()
    }
}

/// Starts the code flow: PKCE, `state` and `nonce` kept server-side by `CodeFlow`.
async fn login(State(app): State<Arc<App>>) -> Result<Response, Failure> {
    let start = app
        .flow
        .start(&app.scope, None)
        .await
        .map_err(|_| Failure(StatusCode::BAD_GATEWAY, "cannot start the sign-in"))?;
    Ok(no_store(Redirect::to(start.url.as_str()).into_response()))
}

/// The redirect back from Tessera: `CodeFlow` checks `state` (once), `iss` and the ID token;
/// the tokens go into a new session and the browser gets only the session cookie.
async fn callback(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let signed_in = match app.flow.callback(query.as_deref().unwrap_or("")).await {
        Ok(signed_in) => signed_in,
        Err(tessera_client::Error::Callback(e)) => {
            return (StatusCode::BAD_REQUEST, format!("sign-in failed: {e}")).into_response();
        }
        Err(_) => return Failure(StatusCode::BAD_GATEWAY, "sign-in failed").into_response(),
    };
    let tokens = &signed_in.tokens;
    let session = Session {
        access_token: tokens.access_token.expose().to_owned(),
        access_expires_at_ms: now_ms()
            .saturating_add(tokens.expires_in.unwrap_or(300).saturating_mul(1000)),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        id_token: tokens.id_token.clone(),
        csrf: random_token(),
        sub: signed_in.id_token.map(|c| c.sub).unwrap_or_default(),
    };
    let id = random_token();
    if app.sessions.insert(&id, &session).await.is_err() {
        return Failure(StatusCode::SERVICE_UNAVAILABLE, "the session store failed")
            .into_response();
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.cookie(&id, false));
    no_store(response)
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Signs out: the CSRF token checked, the session dropped, the refresh token revoked (RFC 7009
/// §2.1), then the browser sent to Tessera's `end_session_endpoint` (OIDC RP-Initiated Logout
/// 1.0 §2) to end the Tessera session too.
async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let (id, session) = match app.session(&headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Redirect::to("/").into_response(),
        Err(failure) => return failure.into_response(),
    };
    if !same(&form.csrf, &session.csrf) {
        return Failure(StatusCode::FORBIDDEN, "CSRF token mismatch").into_response();
    }
    app.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(&id));
    // The record as removed: its refresh token is the current one, whoever rotated it.
    let session = match app.sessions.remove(&id).await {
        Ok(removed) => removed.unwrap_or(session),
        Err(_) => {
            return Failure(StatusCode::SERVICE_UNAVAILABLE, "the session store failed")
                .into_response();
        }
    };
    if let (Some(revoke), Some(refresh)) =
        (&app.metadata.revocation_endpoint, session.refresh_token.as_deref())
    {
        let form = [("token", refresh), ("token_type_hint", "refresh_token")];
        let now = now_ms() / 1000;
        // Best effort: the session is gone either way; a failed revocation leaves the token
        // to expire.
        let _ = app
            .credentials
            .token_request_reply(&app.http, revoke, &app.metadata.issuer, &form, now)
            .await;
    }
    let target = match (&app.metadata.end_session_endpoint, &session.id_token) {
        (Some(end_session), Some(id_token)) => match url::Url::parse(end_session) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("id_token_hint", id_token)
                    .append_pair("client_id", app.credentials.client_id())
                    .append_pair("post_logout_redirect_uri", app.public_url.as_str());
                url.to_string()
            }
            Err(_) => "/".to_owned(),
        },
        _ => "/".to_owned(),
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.cookie("", true));
    no_store(response)
}

/// `/api/{path}` → `{api_url}/{path}` with the user's access token; on `401 invalid_token`
/// the token is refreshed once and the call retried (`BearerLayer`).
async fn proxy(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (id, session) = match app.session(&headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Failure(StatusCode::UNAUTHORIZED, "not signed in").into_response(),
        Err(failure) => return failure.into_response(),
    };
    // Reads are safe; anything that changes state must carry the page's CSRF token, which
    // another site cannot read (SameSite=Lax already keeps the cookie off its POSTs).
    if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same(sent, &session.csrf) {
            return Failure(StatusCode::FORBIDDEN, "CSRF token missing or wrong").into_response();
        }
    }
    let Some(target) = api_target(&app.api_url, &path, query.as_deref()) else {
        return Failure(StatusCode::BAD_REQUEST, "bad API path").into_response();
    };
    let client = app.http.client().clone();
    let mut request = client.request(method, target).body(body);
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let Ok(request) = request.build() else {
        return Failure(StatusCode::BAD_REQUEST, "bad API path").into_response();
    };
    let tokens = match app.refresher(&id, &session).await {
        Ok(tokens) => tokens,
        Err(failure) => return failure.into_response(),
    };
    let mut api = BearerLayer::new(tokens).layer(client);
    let answer = match std::future::poll_fn(|cx| api.poll_ready(cx)).await {
        Ok(()) => api.call(request).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(response) => relay(response).await,
        // The refresh token was refused (revoked, expired): the session is over.
        Err(tessera_client::Error::OAuth(_)) => {
            Failure(StatusCode::UNAUTHORIZED, "the session has expired").into_response()
        }
        Err(_) => Failure(StatusCode::BAD_GATEWAY, "the API cannot be reached").into_response(),
    }
}

/// `{api_url}/{path}?{query}` for a path the router has already percent-decoded. Each segment
/// is encoded again and `.`/`..` are refused: the access token goes only below the API's base
/// URL, never to another path of its host through dot segments (which URL parsing resolves,
/// also when sent as `%2e%2e`), and a decoded `?` or `#` stays part of a segment.
fn api_target(api_url: &url::Url, path: &str, query: Option<&str>) -> Option<url::Url> {
    let mut target = api_url.clone();
    {
        let mut segments = target.path_segments_mut().ok()?;
        segments.pop_if_empty();
        for segment in path.split('/') {
            if segment == "." || segment == ".." {
                return None;
            }
            segments.push(segment);
        }
    }
    target.set_query(query);
    Some(target)
}

async fn relay(response: reqwest::Response) -> Response {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let Ok(body) = response.bytes().await else {
        return Failure(StatusCode::BAD_GATEWAY, "the API's answer was cut").into_response();
    };
    let mut out = (status, body).into_response();
    if let Some(content_type) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    no_store(out)
}

#[cfg(test)]
mod tests {
    use super::api_target;

    fn target(path: &str, query: Option<&str>) -> Option<String> {
        let base = url::Url::parse("http://api.internal:9000/v1/").unwrap();
        api_target(&base, path, query).map(String::from)
    }

    #[test]
    fn api_paths_stay_below_the_api_base_url() {
        assert_eq!(target("orders", None).as_deref(), Some("http://api.internal:9000/v1/orders"));
        assert_eq!(
            target("orders/7", Some("page=2")).as_deref(),
            Some("http://api.internal:9000/v1/orders/7?page=2")
        );
        // Hostile paths (already decoded by the router, as `%2e%2e`, `%3F`, `%23` arrive).
        assert_eq!(target("../admin", None), None);
        assert_eq!(target("orders/../../admin", None), None);
        assert_eq!(target(".", None), None);
        assert_eq!(
            target("orders?all=1#x", None).as_deref(),
            Some("http://api.internal:9000/v1/orders%3Fall=1%23x")
        );
        assert_eq!(
            target("//evil.example/x", None).as_deref(),
            Some("http://api.internal:9000/v1///evil.example/x")
        );
    }
}
