//! A token request as the token endpoint received it: not only its form, but what
//! sender-constrained tokens will need to see — the method and URL a DPoP proof signs
//! (RFC 9449 §4.3), the proof itself, and the TLS client certificate (RFC 8705 §2).

use crate::params::Params;

/// One request to the token endpoint (RFC 6749 §3.2), as the HTTP edge parsed it.
#[derive(Debug)]
pub struct TokenRequest {
    /// The `application/x-www-form-urlencoded` parameters, parsed strictly.
    pub params: Params,
    /// The HTTP method (RFC 9449 §4.2 `htm`); `POST` at the token endpoint.
    pub method: String,
    /// The endpoint's absolute URL built from the configured issuer, never from the `Host`
    /// header (RFC 9449 §4.2 `htu` is compared with it).
    pub url: String,
    /// RFC 9449 §4.1: the value of the one `DPoP` header, if the client sent one.
    pub dpop_proof: Option<String>,
    /// RFC 8705 §2: the certificate the client presented in the TLS handshake. Tessera
    /// terminates no TLS yet, so this is `None` until an mTLS listener exists.
    pub client_certificate: Option<ClientCertificate>,
}

/// A TLS client certificate (DER, RFC 5280) as the listener received it, not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(Vec<u8>);

impl ClientCertificate {
    pub fn from_der(der: Vec<u8>) -> Self {
        Self(der)
    }

    /// RFC 8705 §3.1 binds a token to the SHA-256 of exactly these bytes (`x5t#S256`).
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}
