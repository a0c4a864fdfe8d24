//! The client side: HTTP/1.1 connections to upstreams, pooled per origin, and the body types
//! both directions share.
//!
//! HTTP/1.1 to upstreams only: it is what services behind a gateway speak, and it is the
//! protocol of the `Upgrade` mechanism WebSocket handshakes use (RFC 9110 §7.8).
//!
//! The pool is hyper's connection API under a few rules of its own rather than hyper-util's
//! general client, whose per-request work (a keyed pool lookup and put-back hashed with
//! SipHash, and a task spawned for every answer to return its connection) measured ≈ 6k
//! instructions of a proxied request (bench/README.md, "Third pass"):
//! - a connection goes back to its origin's idle list when its answer's body has ended (and
//!   not if the body was dropped unfinished, or the answer switched protocols);
//! - at most [`MAX_IDLE_PER_UPSTREAM`] idle connections per origin (as nginx's `keepalive`),
//!   none kept past [`IDLE_TIMEOUT`];
//! - a request that an idle connection could not take because the upstream had just closed it
//!   (hyper hands such a request back unsent) is sent once more on a new connection.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{Limits, UpstreamTls};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A body streamed through the gateway, either way.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

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
    let mut config = match (&tls.client_cert_file, &tls.client_key_file) {
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
    };
    // RFC 7301: HTTP/1.1 is what the connection will speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Idle keep-alive connections kept per upstream.
pub const MAX_IDLE_PER_UPSTREAM: usize = 64;
/// An idle connection unused this long is closed rather than reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request got no answer from its upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the request has no http or https origin")]
    NoOrigin,
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The pooled client to every upstream. Cheap to clone (shared state).
#[derive(Clone)]
pub struct UpstreamClient(Arc<Pools>);

struct Pools {
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
    /// One entry per origin seen; a gateway has a handful, so a scan beats a hash.
    origins: Mutex<Vec<Origin>>,
}

struct Origin {
    scheme: Scheme,
    authority: Authority,
    idle: Vec<(SendRequest<ProxyBody>, Instant)>,
}

/// The pooled client to every upstream.
pub fn client(tls: &UpstreamTls, limits: &Limits) -> Result<UpstreamClient, TlsSetupError> {
    Ok(UpstreamClient(Arc::new(Pools {
        tls: tokio_rustls::TlsConnector::from(Arc::new(tls_config(tls)?)),
        connect_timeout: limits.connect_timeout,
        origins: Mutex::new(Vec::new()),
    })))
}

impl Pools {
    fn lock(&self) -> MutexGuard<'_, Vec<Origin>> {
        // The lists are only pushed to and popped from: a panic elsewhere leaves them whole.
        self.origins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to the origin, if one is still open and not too old.
    fn take_idle(&self, scheme: &Scheme, authority: &Authority) -> Option<SendRequest<ProxyBody>> {
        let mut origins = self.lock();
        let origin =
            origins.iter_mut().find(|o| o.authority == *authority && o.scheme == *scheme)?;
        while let Some((sender, since)) = origin.idle.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    /// Back to the origin's idle list, unless that list is full.
    fn put_back(&self, scheme: Scheme, authority: Authority, sender: SendRequest<ProxyBody>) {
        let mut origins = self.lock();
        let at = match origins.iter().position(|o| o.authority == authority && o.scheme == scheme) {
            Some(at) => at,
            None => {
                origins.push(Origin { scheme, authority, idle: Vec::new() });
                origins.len() - 1
            }
        };
        let idle = &mut origins[at].idle;
        if idle.len() < MAX_IDLE_PER_UPSTREAM {
            idle.push((sender, Instant::now()));
        }
    }

    async fn connect(
        &self,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let https = *scheme == Scheme::HTTPS;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        // `Authority::host` keeps an IPv6 address's brackets; the socket address has none.
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| UpstreamError::ConnectTimeout(self.connect_timeout))?
        .map_err(UpstreamError::Connect)?;
        tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
        if https {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| UpstreamError::Tls(std::io::Error::other(e)))?;
            let tls = self.tls.connect(name, tcp).await.map_err(UpstreamError::Tls)?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

/// HTTP/1.1 on a new connection, driven by a task of its own (with upgrades: a `101` answer
/// hands the connection over, RFC 9110 §7.8).
async fn handshake<I>(io: I) -> Result<SendRequest<ProxyBody>, UpstreamError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        // A connection that fails or is closed ends here; its request, if any, got the error.
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// RFC 9110 §7.2: `Host` is the origin's host and its port unless the scheme's default (as
/// nginx's `proxy_set_header Host $proxy_host` sends it).
pub(crate) fn host_of(scheme: &Scheme, authority: &Authority) -> Option<HeaderValue> {
    let default = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    match authority.port_u16() {
        Some(port) if port != default => {
            HeaderValue::try_from(format!("{}:{port}", authority.host())).ok()
        }
        _ => HeaderValue::try_from(authority.host()).ok(),
    }
}

impl UpstreamClient {
    /// Sends `request` (its URI absolute: the origin and the target) on a pooled or new
    /// connection; the answer's body returns the connection to the pool when it ends.
    pub async fn request(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let uri = std::mem::take(request.uri_mut());
        let (scheme, authority) = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority))
                if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS =>
            {
                (scheme.clone(), authority.clone())
            }
            _ => return Err(UpstreamError::NoOrigin),
        };
        // RFC 9112 §3.2.1: origin form on the wire.
        let target =
            uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(target);
        if !request.headers().contains_key(header::HOST) {
            let host = host_of(&scheme, &authority).ok_or(UpstreamError::NoOrigin)?;
            request.headers_mut().insert(header::HOST, host);
        }
        let pools = &self.0;
        let pooled = pools.take_idle(&scheme, &authority);
        let mut fresh = pooled.is_none();
        // Connecting (and the TLS handshake) is boxed: the common case, a pooled connection,
        // does not carry its ≈ 5 KB of state in every request's future.
        let mut sender = match pooled {
            Some(sender) => sender,
            None => Box::pin(pools.connect(&scheme, &authority)).await?,
        };
        let response = loop {
            // A pooled connection may still be finishing its last answer; one the upstream
            // closed meanwhile fails here.
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err(e.into());
                }
                sender = Box::pin(pools.connect(&scheme, &authority)).await?;
                fresh = true;
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => break response,
                Err(mut refused) => match refused.take_message() {
                    // Never written: the upstream closed the connection first. Once more, on
                    // a new one.
                    Some(unsent) if !fresh => {
                        sender = Box::pin(pools.connect(&scheme, &authority)).await?;
                        fresh = true;
                        request = unsent;
                    }
                    _ => return Err(refused.into_error().into()),
                },
            }
        };
        // A connection that switched protocols is the upgrade's now.
        let lease = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Lease {
            pools: self.0.clone(),
            scheme,
            authority,
            sender,
        });
        Ok(response.map(|inner| UpstreamBody { inner, lease }))
    }
}

/// The connection an answer came on, until its body has ended.
struct Lease {
    pools: Arc<Pools>,
    scheme: Scheme,
    authority: Authority,
    sender: SendRequest<ProxyBody>,
}

/// An upstream's answer body: hyper's, which gives its connection back to the pool once it
/// has ended (a body dropped before its end closes the connection instead).
pub struct UpstreamBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl UpstreamBody {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.pools.put_back(lease.scheme, lease.authority, lease.sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.release();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Read to its end (the server stops polling once `is_end_stream` says so): reusable.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
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
