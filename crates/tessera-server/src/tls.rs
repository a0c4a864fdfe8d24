//! TLS termination and the client certificate of a request (RFC 8705 §2, §3).
//!
//! With `tls_cert_file` and `tls_key_file` the listener speaks TLS itself and *asks* every
//! client for a certificate without requiring one: a client without one still gets a
//! connection (browsers, `client_secret_*` clients), and one that sends a certificate must
//! prove possession of its private key in the handshake (rustls checks the `CertificateVerify`
//! signature). Which certificate is *acceptable* is not the handshake's business: it depends on
//! the client (its registered subject, its registered keys), so the listener accepts any
//! well-signed handshake and hands the chain to the request as [`PeerCertificates`].
//!
//! Behind a TLS-terminating proxy the certificate arrives in a header instead
//! (`tls_client_cert_header`, e.g. nginx's `$ssl_client_escaped_cert`). That header is read
//! only from a socket peer in `trusted_proxies`: from anyone else it is what the client chose
//! to send, and is ignored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::source_address::TrustedProxies;
use crate::state::AppState;

/// The certificate chain a client presented in the TLS handshake (end entity first), set as a
/// request extension by the TLS listener.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// The crypto provider of every TLS use here: aws-lc-rs, the one reqwest already builds.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS acceptor for `cert_file` (PEM chain) and `key_file` (PEM private key) that requests
/// a client certificate and does not require one.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let provider = provider();
    let verifier =
        Arc::new(AnyClientCertificate { algorithms: provider.signature_verification_algorithms });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Requests a client certificate, accepts any, and keeps rustls' check that the client holds
/// its private key (the handshake signature). Whether the certificate is one a client
/// registered is decided per request (`tls_client_auth`, `self_signed_tls_client_auth`, the
/// token binding).
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Self-signed certificates are legitimate here (RFC 8705 §2.2); a chain, where one is
        // needed, is validated per request against `tls_client_ca_file`, and the certificate
        // is parsed where it is compared with a registration.
        let _ = end_entity;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The trust anchors of `tls_client_auth` (RFC 8705 §2.1): a chain the presented certificate
/// must lead to before its subject is compared with the client's registration.
#[derive(Clone)]
pub struct ClientCa(Arc<dyn ClientCertVerifier>);

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCa")
    }
}

impl ClientCa {
    /// Loads the PEM certificates of `file` as trust anchors.
    pub fn load(file: &Path) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(file).map_err(|e| format!("{e}"))? {
            let cert = cert.map_err(|e| e.to_string())?;
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        if roots.is_empty() {
            return Err("no certificate in the file".into());
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        Ok(Self(verifier))
    }

    /// Whether `chain` (end entity first) leads to one of the anchors, is valid now and is
    /// meant for client authentication (webpki's checks, as a handshake would make them).
    pub fn trusts(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else { return false };
        self.0.verify_client_cert(end_entity, intermediates, UnixTime::now()).is_ok()
    }
}

/// How the certificate of a request is found: from the TLS listener, or from a header written
/// by a trusted proxy.
#[derive(Clone, Debug, Default)]
pub struct CertificateSources {
    /// `tls_client_cert_header`: read only from `trusted_proxies` peers.
    pub header: Option<HeaderName>,
}

/// The client certificate of a request, end entity first, if the client presented one.
#[derive(Clone, Debug)]
pub struct PresentedCertificate {
    pub chain: Arc<[CertificateDer<'static>]>,
}

impl PresentedCertificate {
    /// The end-entity certificate's DER (RFC 8705 §3.1 hashes exactly these bytes).
    pub fn der(&self) -> &[u8] {
        self.chain.first().map_or(&[], |c| c.as_ref())
    }

    /// The certificate of a request: the TLS handshake's when there is one; else, from a
    /// socket peer in `trusted_proxies`, the configured header; else none.
    pub fn of_request(
        extensions: &axum::http::Extensions,
        headers: &HeaderMap,
        proxies: &TrustedProxies,
        sources: &CertificateSources,
    ) -> Option<Self> {
        if let Some(PeerCertificates(chain)) = extensions.get::<PeerCertificates>() {
            return Some(Self { chain: Arc::clone(chain) });
        }
        let name = sources.header.as_ref()?;
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
        if !proxies.trusts(peer) {
            return None;
        }
        let value = headers.get(name)?.to_str().ok()?;
        let der = decode_escaped_pem(value)?;
        Some(Self { chain: Arc::from(vec![der]) })
    }
}

/// A URL-encoded PEM certificate, as nginx's `$ssl_client_escaped_cert` writes it, as DER;
/// `None` for anything else (Envoy's `x-forwarded-client-cert` is another format, not read
/// here). An empty value (no certificate) is `None` too.
pub fn decode_escaped_pem(value: &str) -> Option<CertificateDer<'static>> {
    let pem = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}

impl OptionalFromRequestParts<AppState> for PresentedCertificate {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let settings = state.settings();
        Ok(PresentedCertificate::of_request(
            &parts.extensions,
            &parts.headers,
            &settings.trusted_proxies,
            &settings.mtls.sources,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::decode_escaped_pem;

    /// RFC 8705 §3 behind a proxy: the certificate header is believed only from trusted proxies,
    /// and even from them a value that is not one URL-encoded PEM certificate is no certificate
    /// (never a key, never a fragment, never an error that ends the request).
    #[test]
    fn rfc8705_a_certificate_header_that_is_not_a_pem_certificate_is_no_certificate() {
        let key = "-----BEGIN%20PRIVATE%20KEY-----%0AMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v%2F%2FdQ6oZ6kQvx0Ey5a%2FoNNiu0p5XkJ2xQnk8k%0A-----END%20PRIVATE%20KEY-----%0A";
        let truncated = "-----BEGIN%20CERTIFICATE-----%0AMIIBszCCAVmgAwIBAgIU%0A";
        for hostile in ["", "   ", "not a certificate", "%FF%FE%FD", key, truncated] {
            assert!(
                decode_escaped_pem(hostile).is_none(),
                "{hostile:?} was taken as a certificate"
            );
        }
    }
}
