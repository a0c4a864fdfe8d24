//! The gateway as a service: its state, its own endpoints, the accept loop.
//!
//! Its own endpoints: `/healthz` (the process answers), `/readyz` (every issuer's metadata and
//! keys are loaded), `/metrics` (Prometheus), `/.well-known/oauth-protected-resource/…` (RFC
//! 9728, one document per protected audience), `/_tessera/jwks.json` (the key of the identity
//! JWTs), `/_tessera/auth/…` (forward-auth, when enabled). Everything else is proxied.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hyper::body::Incoming;
use tessera_server::config::ListenerLimits;
use tessera_server::rate_limit::RateLimiter;
use tower::ServiceExt;

use crate::config::GatewayConfig;
use crate::exchange::Exchanges;
use crate::gate::Gate;
use crate::identity::IdentitySigner;
use crate::routing::RouteTable;
use crate::upstream::{self, UpstreamClient};

/// The gateway's state, shared by every request.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

pub struct Inner {
    pub config: GatewayConfig,
    pub routes: RouteTable,
    pub client: UpstreamClient,
    /// Set once the issuers' metadata and keys are loaded (retried until they are).
    pub gate: OnceLock<Gate>,
    pub signer: Option<Arc<IdentitySigner>>,
    /// Tokens obtained for upstreams by token exchange (RFC 8693).
    pub exchanges: Exchanges,
    limiter: Option<Arc<RateLimiter>>,
}

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] upstream::TlsSetupError),
    #[error(transparent)]
    Signer(#[from] crate::identity::SignerError),
    #[error("redis_url: {0}")]
    Redis(#[from] tessera_server::rate_limit::RateLimitError),
    #[error("cannot listen on {address}: {error}")]
    Listen { address: std::net::SocketAddr, error: std::io::Error },
}

/// How often discovery is retried while an issuer cannot be reached.
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(2);

impl Gateway {
    /// Builds the state; the issuers are read by [`Gateway::discover`].
    pub async fn new(config: GatewayConfig) -> Result<Self, StartError> {
        // The Prometheus recorder, before the first request's counter handle is kept
        // (`observe`): counted from the start, not from the first scrape.
        tessera_server::telemetry::metrics_handle();
        let client = upstream::client(&config.upstream_tls, &config.limits)?;
        let signer = if config.identity.jwt {
            let issuer = config.public_url.as_str().trim_end_matches('/').to_owned();
            Some(Arc::new(IdentitySigner::new(issuer, config.identity.jwt_lifetime)?))
        } else {
            None
        };
        let needs_limiter = config.routes.iter().any(|r| r.rate_limit.is_some());
        let limiter = match (&config.redis_url, needs_limiter) {
            (_, false) => None,
            (Some(url), true) => {
                Some(Arc::new(RateLimiter::redis(url, &config.redis_key_prefix).await?))
            }
            (None, true) => Some(Arc::new(RateLimiter::in_process())),
        };
        let routes = RouteTable::new(config.routes.clone());
        let exchanges = Exchanges::new(client.clone(), config.limits.response_header_timeout);
        Ok(Self(Arc::new(Inner {
            config,
            routes,
            client,
            gate: OnceLock::new(),
            signer,
            exchanges,
            limiter,
        })))
    }

    /// Reads the issuers' metadata and keys, retrying every [`DISCOVERY_RETRY`] until it
    /// succeeds; `/readyz` turns ready then.
    pub async fn discover(&self) {
        loop {
            match Gate::discover(&self.config, self.limiter.clone()).await {
                Ok(gate) => {
                    let _ = self.gate.set(gate);
                    tracing::info!("issuer metadata and keys loaded: ready");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load issuer metadata or keys yet; retrying");
                    tokio::time::sleep(DISCOVERY_RETRY).await;
                }
            }
        }
    }

    /// The router: the gateway's own endpoints, and the proxy for everything else.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/.well-known/oauth-protected-resource", get(crate::metadata::serve))
            .route("/.well-known/oauth-protected-resource/{*path}", get(crate::metadata::serve));
        if self.signer.is_some() {
            router = router.route("/_tessera/jwks.json", get(jwks));
        }
        if self.config.forward_auth {
            router = router
                .route("/_tessera/auth", any(crate::forward_auth::check))
                .route("/_tessera/auth/{*path}", any(crate::forward_auth::check));
        }
        let router = router.fallback(crate::proxy::handle);
        // Only where a certificate can arrive: otherwise no request pays for the lookup.
        let router = if self.config.tls.certificates() {
            router.layer(axum::middleware::from_fn_with_state(self.clone(), attach_certificate))
        } else {
            router
        };
        router.with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes, discovering the issuers meanwhile.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let discovering = self.clone();
        let discovery = tokio::spawn(async move { discovering.discover().await });
        let limits = self.config.limits;
        let listener_limits = ListenerLimits {
            header_read_timeout: limits.header_read_timeout,
            // Not applied by the accept loop: bodies are bounded by the idle timeout instead,
            // so that a long SSE stream is not cut.
            request_timeout: limits.idle_timeout,
            max_connections: limits.max_connections,
            // HTTP/1.1 only on plain TCP (TLS clients still get HTTP/2 by ALPN): sniffing for
            // h2c cost every idle keep-alive connection 8 KiB of read buffer (bench/README.md).
            h2c: false,
        };
        let tls = match (&self.config.tls.cert_file, &self.config.tls.key_file) {
            (Some(cert), Some(key)) => {
                Some(tessera_server::tls::acceptor(cert, key).map_err(std::io::Error::other)?)
            }
            _ => None,
        };
        let front = Front {
            router: self.router(),
            // A certificate is attached by the router's middleware: then every request takes it.
            proxy_directly: !self.config.tls.certificates(),
            gateway: self.clone(),
        };
        let served = tessera_server::app::serve_connections_with(
            listener,
            front,
            listener_limits,
            tls,
            shutdown,
        )
        .await;
        discovery.abort();
        served
    }
}

/// What every connection serves: a request that may be for one of the gateway's own endpoints
/// goes to the router (which still proxies what it does not serve); every other one straight
/// to the proxy, without the router's matching, its extractors and its body conversion.
#[derive(Clone)]
struct Front {
    router: Router,
    proxy_directly: bool,
    gateway: Gateway,
}

/// Whether `path` may name one of the router's endpoints (see [`Gateway::router`]).
fn may_be_own_endpoint(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path.starts_with("/.well-known/oauth-protected-resource")
        || path.starts_with("/_tessera/")
}

impl tower::Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        match peer {
            Some(peer) if self.proxy_directly && !may_be_own_endpoint(request.uri().path()) => {
                let gateway = self.gateway.clone();
                Box::pin(async move { Ok(crate::proxy::forward(&gateway, peer, request).await) })
            }
            _ => Box::pin(self.router.clone().oneshot(request)),
        }
    }
}

/// RFC 8705 §3: the client certificate of the request — from the TLS handshake, or from
/// `tls.client_cert_header` when the socket peer is in `tls.trusted_proxies` — as the
/// extension `tessera_resource`'s certificate check reads.
async fn attach_certificate(
    State(gateway): State<Gateway>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tls = &gateway.config.tls;
    let found = tessera_server::tls::PresentedCertificate::of_request(
        request.extensions(),
        request.headers(),
        &tls.proxies,
        &tls.sources,
    );
    // Whatever the client put in the extension's place is not believed: only what was found.
    request.extensions_mut().remove::<tessera_resource::ClientCertificate>();
    if let Some(certificate) = found {
        request
            .extensions_mut()
            .insert(tessera_resource::ClientCertificate(certificate.der().to_vec()));
    }
    next.run(request).await
}

async fn readyz(State(gateway): State<Gateway>) -> Response {
    if gateway.gate.get().is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "issuer keys not loaded yet\n").into_response()
    }
}

async fn metrics() -> Response {
    let body = tessera_server::telemetry::metrics_handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn jwks(State(gateway): State<Gateway>) -> Response {
    match &gateway.signer {
        Some(signer) => {
            ([(header::CONTENT_TYPE, "application/jwk-set+json")], signer.jwks_json().to_owned())
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_the_router_may_serve_are_sent_to_it() {
        for own in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/api",
            "/_tessera/jwks.json",
            "/_tessera/auth",
            "/_tessera/auth/api",
        ] {
            assert!(may_be_own_endpoint(own), "{own}");
        }
        for proxied in ["/", "/api/x", "/healthz/", "/metricsx", "/_tessera", "/.well-known/jwks"] {
            assert!(!may_be_own_endpoint(proxied), "{proxied}");
        }
    }
}
