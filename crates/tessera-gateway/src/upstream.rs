//! The client side: hyper-util's pooled client over hyper-rustls, and the body type both
//! directions share.
//!
//! HTTP/1.1 to upstreams only: it is what services behind a gateway speak, and it is the
//! protocol of the `Upgrade` mechanism WebSocket handshakes use (RFC 9110 §7.8).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Limits, UpstreamTls};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A body streamed through the gateway, either way.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// The upstream TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("upstream_tls.{key}: cannot read {path}: {problem}")]
    File { key: &'static str, path: String, problem: String },
    #[error("upstream TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(key: &'static str, path: &Path, problem: impl ToString) -> TlsSetupError {
    TlsSetupError::File { key, path: path.display().to_string(), problem: problem.to_string() }
}

fn tls_config(tls: &UpstreamTls) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_error("ca_file", path, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error("ca_file", path, e))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(file_error("ca_file", path, "no certificate in it"));
            }
            builder.with_root_certificates(roots)
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier()?
        }
    };
    Ok(match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| file_error("client_cert_file", cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error("client_cert_file", cert, e))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| file_error("client_key_file", key, e))?;
            builder.with_client_auth_cert(chain, key_der)?
        }
        _ => builder.with_no_client_auth(),
    })
}

/// Idle keep-alive connections kept per upstream.
pub const MAX_IDLE_PER_UPSTREAM: usize = 64;

/// The pooled client to every upstream.
pub fn client(tls: &UpstreamTls, limits: &Limits) -> Result<UpstreamClient, TlsSetupError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(limits.connect_timeout));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(tls)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        // A burst of concurrent requests opens as many upstream connections; afterwards only
        // this many per upstream stay open (as nginx's `keepalive`), each holding buffers and a
        // task.
        .pool_max_idle_per_host(MAX_IDLE_PER_UPSTREAM)
        .build(connector))
}

/// A body that fails when no frame arrives for `idle` (a stalled peer must not hold a
/// connection and its permit forever). The clock starts when the body first has to wait, and
/// restarts with every frame; a body whose frames are all ready at once (most small answers)
/// never allocates or registers a timer.
pub struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error an [`IdleTimeout`] body ends with.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
pub struct IdleTimedOut(pub Duration);

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        Self { inner, idle, sleep: None }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(sleep) = &mut this.sleep {
                    sleep.as_mut().reset(tokio::time::Instant::now() + this.idle);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimedOut(idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
