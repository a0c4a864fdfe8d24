//! Builds the application: state, routes, middleware.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::grants::GrantRegistry;
use tessera_core::grants::authorization_code::AuthorizationCodeGrant;
use tessera_core::grants::client_credentials::ClientCredentialsGrant;
use tessera_core::grants::device_code::DeviceCodeGrant;
use tessera_core::grants::refresh_token::RefreshTokenGrant;
use tessera_core::grants::token_exchange::TokenExchangeGrant;
use tessera_store::Store;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::client_cache::ClientCache;
use crate::client_keys::ClientKeys;
use crate::config::{ListenerLimits, Settings};
use crate::dpop_replay::{DpopNonces, DpopReplay};
use crate::endpoints;
use crate::features::{Feature, Features};
use crate::key_ring::KeyRing;
use crate::metadata_documents::MetadataDocuments;
use crate::password_checks::PasswordChecks;
use crate::rate_limit::RateLimiter;
use crate::resource_registry::ResourceRegistry;
use crate::routes;
use crate::state::{AppState, Inner};

/// How often a running server re-reads signing keys from the store.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The grants this server serves. Adding a grant means adding its module and a line here; a
/// grant of a disabled feature is not registered, so `/token` refuses it and metadata omits it.
pub fn grant_registry(store: &Store, features: &Features) -> GrantRegistry {
    let mut grants = GrantRegistry::default()
        .register(AuthorizationCodeGrant::new(store.clone()))
        .register(ClientCredentialsGrant::new(store.clone()))
        .register(RefreshTokenGrant::new(store.clone()));
    if features.is_on(Feature::DeviceFlow) {
        grants = grants.register(DeviceCodeGrant::new(store.clone()));
    }
    if features.is_on(Feature::TokenExchange) {
        grants = grants.register(TokenExchangeGrant::new(store.clone()));
    }
    grants
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
    let grants = grant_registry(&store, &settings.features);
    let metadata =
        endpoints::discovery::render(&settings, &grants, routes::advertised(&settings.features));
    let rate_limiter = match &settings.redis_url {
        Some(url) => RateLimiter::redis(url, "tessera:rl:")
            .await
            .map_err(|e| tessera_core::InternalError::new("redis", e))?,
        None => RateLimiter::in_process(),
    };
    let revocation_list = match &settings.redis_url {
        Some(url) => Some(
            crate::revocation_list::RevocationList::connect(url)
                .await
                .map_err(|e| tessera_core::InternalError::new("redis", e))?,
        ),
        None => None,
    };
    // RFC 9449 §11.1: with Redis, one replay cache for every instance.
    let dpop_replay = match &settings.redis_url {
        Some(url) => DpopReplay::redis(url)
            .await
            .map_err(|e| tessera_core::InternalError::new("redis", e))?,
        None => DpopReplay::default(),
    };
    let dpop_nonces = DpopNonces::new(&settings.key_encryption_key.derived_secret());
    let client_keys = ClientKeys::new(settings.outbound_allow_private_networks);
    let password_checks = PasswordChecks::start(settings.password_check_queue)
        .map_err(|e| tessera_core::InternalError::new("password-check threads", e))?;
    let resources = Arc::new(ResourceRegistry::new(store.clone()));
    Ok(AppState(Arc::new(Inner {
        clients: ClientCache::new(store.clone()).with_documents(MetadataDocuments::new(
            settings.registration.clone(),
            settings.outbound_allow_private_networks,
            resources.clone(),
        )),
        resources,
        settings,
        store,
        keys,
        grants,
        clock,
        metadata,
        rate_limiter,
        revocation_list,
        client_keys,
        password_checks,
        dpop_replay,
        dpop_nonces,
    })))
}

/// Builds the state with the system clock.
pub async fn build_state_now(
    settings: Settings,
    store: Store,
) -> Result<AppState, tessera_core::InternalError> {
    build_state(settings, store, Arc::new(SystemClock)).await
}

/// The HTTP routes of the main listener: the endpoints of the features that are on (as
/// advertised in metadata, both from `routes::ENDPOINTS`), and `/metrics` unless it has a
/// listener of its own (`metrics_listen`).
pub fn router(state: AppState) -> Router {
    let settings = state.settings();
    let mut routes = routes::mount(&settings.features)
        .merge(crate::issuer_path::routes(settings))
        .merge(crate::admin::router());
    if settings.metrics_listen.is_none() {
        routes = routes.route("/metrics", get(endpoints::metrics::metrics));
    }
    with_layers(routes, state)
}

/// The routes of the `metrics_listen` listener: `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    with_layers(Router::new().route("/metrics", get(endpoints::metrics::metrics)), state)
}

fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
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
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of an oversized body is left unread, so this connection cannot carry
        // another request: say so (RFC 9112 §9.6), so that a keep-alive client does not send
        // its next request on a connection the server is closing. (HTTP/2 has no such header;
        // hyper leaves it out there.)
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(target: "tessera::http", %method, %route, status, micros = elapsed.as_micros() as u64, "request");
    // Labels without a string built per request where the value is one of a few (issue 16
    // item 3): the method and the usual statuses are static; the route is copied once per
    // series that takes it.
    metrics::counter!("tessera_http_requests_total", "method" => method_label(&method), "route" => route.clone(), "status" => status_label(status)).increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// The `method` label: the methods Tessera serves by name, any other as `other` (a client
/// cannot grow the label set with invented methods).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The `status` label: the usual statuses without formatting, others formatted.
fn status_label(status: u16) -> metrics::SharedString {
    let known = match status {
        200 => "200",
        201 => "201",
        204 => "204",
        302 => "302",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => return status.to_string().into(),
    };
    known.into()
}

/// How often expired rows are pruned (requirements: codes, tokens, denylist, sessions).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the server until Ctrl-C / SIGTERM, with the background tasks: key reload and
/// scheduled rotation, and pruning.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    // Bound first, so that a taken address stops the start before anything else runs.
    let metrics_listener = match state.settings().metrics_listen {
        Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
        None => None,
    };
    let limits = state.settings().listener;
    if let Some(metrics_listener) = metrics_listener {
        tracing::info!(listen = ?metrics_listener.local_addr().ok(), "serving /metrics on its own listener");
        let metrics = metrics_router(state.clone()).layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
        tokio::spawn(async move {
            let stopped =
                serve_connections(metrics_listener, metrics, limits, shutdown_signal()).await;
            if let Err(e) = stopped {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
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
    let state_listener_tls = state.settings().mtls.listener.clone();
    // Issue 17 finding 13: a request (body included) that takes longer is answered 408.
    let app = router(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout));
    let tls = match &state_listener_tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        None => None,
    };
    serve_connections_with(listener, app, limits, tls, shutdown_signal()).await
}

/// Accepts connections on `listener` and serves `app` on them (HTTP/1.1, and HTTP/2 over TLS
/// or, with `limits.h2c`, on plain TCP) within `limits`, until `shutdown` completes; then lets open requests finish.
///
/// Not `axum::serve`: it sets no header-read timeout (hyper needs a timer for that) and
/// accepts connections without bound.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    serve_connections_with(listener, app, limits, None, shutdown).await
}

/// [`serve_connections`], speaking TLS through `tls` when given: the handshake runs in the
/// connection's own task within `header_read_timeout` and holds a connection slot, so neither
/// slow handshakes nor many of them get around the limits; a client certificate reaches the
/// request as [`crate::tls::PeerCertificates`].
///
/// `app` is any service of requests (an axum `Router`, or the gateway's own front).
pub async fn serve_connections_with<S>(
    listener: tokio::net::TcpListener,
    app: S,
    limits: ListenerLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    // HTTP/2 connections that stop answering pings are closed as well.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    // HTTP/1.1 alone, without the version sniffing, when h2c is not wanted.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // The HTTP/1.1-only connections' graceful shutdown: hyper-util's `GracefulShutdown` cannot
    // watch them (it knows hyper's plain `http1::Connection`, not the one with upgrades).
    let (stop_http1_tx, stop_http1) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // E.g. out of file descriptors: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(acceptor) = &tls else {
            let service = connection_service(&app, peer, None);
            if !limits.h2c {
                let connection = http1
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .with_upgrades();
                let mut stop = stop_http1.clone();
                tokio::spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    // A client that goes away or times out ends its connection: nothing to
                    // report.
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                    drop(permit);
                });
                continue;
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                // A client that goes away or times out ends its connection: nothing to report.
                let _ = connection.await;
                drop(permit);
            });
            continue;
        };
        let (acceptor, app, builder) = (acceptor.clone(), app.clone(), Arc::clone(&builder));
        let watcher = graceful.watcher();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
            // A failed or slow handshake ends the connection: nothing to report.
            let Ok(Ok(stream)) = handshake else { return };
            let certificates =
                stream.get_ref().1.peer_certificates().filter(|chain| !chain.is_empty()).map(
                    |chain| {
                        crate::tls::PeerCertificates(
                            chain.iter().map(|c| c.clone().into_owned()).collect(),
                        )
                    },
                );
            let service = connection_service(&app, peer, certificates);
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let _ = watcher.watch(connection).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_http1_tx.send(true);
    drop(stop_http1);
    graceful.shutdown().await;
    // Every HTTP/1.1-only connection has finished when the last receiver is gone.
    stop_http1_tx.closed().await;
    Ok(())
}

/// The app for one connection: every request learns the socket peer and, over TLS, the
/// client's certificate chain.
fn connection_service<S>(
    app: &S,
    peer: std::net::SocketAddr,
    certificates: Option<crate::tls::PeerCertificates>,
) -> impl tower::Service<
    axum::extract::Request<Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static
where
    S: tower::Service<Request<Incoming>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    app.clone().map_request(move |mut request: axum::extract::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificates) = &certificates {
            request.extensions_mut().insert(certificates.clone());
        }
        request
    })
}

/// Completes on Ctrl-C or SIGTERM: the graceful shutdown of every serving command.
pub async fn shutdown_signal() {
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
