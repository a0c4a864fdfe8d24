//! Builds the application: state, routes, middleware.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::grants::GrantRegistry;
use tessera_core::grants::authorization_code::AuthorizationCodeGrant;
use tessera_core::grants::client_credentials::ClientCredentialsGrant;
use tessera_core::grants::device_code::DeviceCodeGrant;
use tessera_core::grants::refresh_token::RefreshTokenGrant;
use tessera_store::Store;
use tower_http::catch_panic::CatchPanicLayer;

use crate::client_cache::ClientCache;
use crate::client_keys::ClientKeys;
use crate::config::Settings;
use crate::endpoints;
use crate::key_ring::KeyRing;
use crate::password_checks::PasswordChecks;
use crate::rate_limit::RateLimiter;
use crate::state::{AppState, Inner};

/// How often a running server re-reads signing keys from the store.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The grants this server serves. Adding a grant means adding its module and a line here.
pub fn grant_registry(store: &Store) -> GrantRegistry {
    GrantRegistry::default()
        .register(AuthorizationCodeGrant::new(store.clone()))
        .register(ClientCredentialsGrant::new(store.clone()))
        .register(RefreshTokenGrant::new(store.clone()))
        .register(DeviceCodeGrant::new(store.clone()))
}

/// Builds the state: signing keys are created on first start.
pub async fn build_state(
    settings: Settings,
    store: Store,
    clock: Arc<dyn Clock>,
) -> Result<AppState, tessera_core::InternalError> {
    // Install the metrics recorder before the first request records anything.
    crate::telemetry::metrics_handle();
    let keys = KeyRing::bootstrap(&store, &settings.key_encryption_key, clock.now()).await?;
    let grants = grant_registry(&store);
    let metadata = endpoints::discovery::render(&settings, &grants);
    let rate_limiter = match &settings.redis_url {
        Some(url) => RateLimiter::redis(url, "tessera:rl:")
            .await
            .map_err(|e| tessera_core::InternalError::new("redis", e))?,
        None => RateLimiter::in_process(),
    };
    let client_keys = ClientKeys::new(settings.outbound_allow_private_networks);
    let password_checks = PasswordChecks::start(settings.password_check_queue)
        .map_err(|e| tessera_core::InternalError::new("password-check threads", e))?;
    Ok(AppState(Arc::new(Inner {
        clients: ClientCache::new(store.clone()),
        settings,
        store,
        keys,
        grants,
        clock,
        metadata,
        rate_limiter,
        client_keys,
        password_checks,
    })))
}

/// Builds the state with the system clock.
pub async fn build_state_now(
    settings: Settings,
    store: Store,
) -> Result<AppState, tessera_core::InternalError> {
    build_state(settings, store, Arc::new(SystemClock)).await
}

/// The HTTP routes (paths as advertised in metadata).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/authorize", get(endpoints::authorize::authorize))
        .route("/login", post(endpoints::authorize::login))
        .route("/consent", post(endpoints::authorize::consent))
        .route("/device_authorization", post(endpoints::device::device_authorization))
        .route("/device", get(endpoints::device::entry).post(endpoints::device::submit_code))
        .route("/device/login", post(endpoints::device::login))
        .route("/device/decide", post(endpoints::device::decide))
        .route("/token", post(endpoints::token::token))
        .route("/revoke", post(endpoints::revoke::revoke_token))
        .route("/introspect", post(endpoints::introspect::introspect_token))
        .route("/userinfo", get(endpoints::userinfo::userinfo).post(endpoints::userinfo::userinfo))
        .route("/logout", get(endpoints::logout::logout).post(endpoints::logout::logout))
        .route("/assets/tessera.css", get(endpoints::authorize::stylesheet))
        .route("/jwks.json", get(endpoints::jwks::jwks))
        .route("/.well-known/oauth-authorization-server", get(endpoints::discovery::metadata))
        .route("/.well-known/openid-configuration", get(endpoints::discovery::metadata))
        .route("/healthz", get(endpoints::health::healthz))
        .route("/readyz", get(endpoints::health::readyz))
        .route("/metrics", get(endpoints::metrics::metrics))
        .layer(middleware::from_fn(observe))
        // A bug that panics answers this one request with a bare 500; the server keeps serving.
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

/// Per request: Prometheus count and latency by route, and one log line with the method, the
/// matched route (never the query string) and the status.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics::counter!("tessera_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(target: "tessera::http", %method, %route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// How often expired rows are pruned (requirements: codes, tokens, denylist, sessions).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the server until Ctrl-C / SIGTERM, with the background tasks: key reload and
/// scheduled rotation, and pruning.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let keys = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = keys.rotate_keys_on_schedule().await {
                tracing::error!(error = %e, "scheduled key rotation failed");
            }
            if let Err(e) = keys.reload_keys().await {
                tracing::error!(error = %e, "reloading signing keys failed; keeping the current set");
            }
        }
    });
    let pruner = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tick.tick().await;
            match pruner.prune_expired().await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "pruned expired codes, tokens and sessions"),
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
        }
    });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}
