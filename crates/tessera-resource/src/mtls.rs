//! Certificate-bound access tokens at a resource server (RFC 8705 §3).
//!
//! A token whose `cnf` carries `x5t#S256` may be used only over a connection on which the
//! client presented that very certificate (mutual TLS): the SHA-256 of the certificate's DER
//! must equal the thumbprint. The TLS listener — the application's, or a gateway's — puts
//! the client's end-entity certificate into the request as a [`ClientCertificate`]
//! extension; without it, or with another certificate, the token is refused.

use std::future::Future;
use std::pin::Pin;

use aws_lc_rs::digest::{SHA256, digest};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_jose::Confirmation;

use crate::proof::{ProofError, Scheme, SenderConstraint};

/// The DER of the TLS client certificate presented on the request's connection (the end
/// entity), as a request extension. Insert it only from the TLS handshake, or from a header
/// written by a proxy you trust: whoever can set it can use any certificate-bound token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

impl ClientCertificate {
    /// RFC 8705 §3.1: the base64url SHA-256 of the DER, as `x5t#S256` carries it.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &self.0))
    }
}

/// The check of RFC 8705 §3: accepts a token with `cnf.x5t#S256` only when the request
/// carries a [`ClientCertificate`] with that thumbprint. A token bound any other way (`jkt`,
/// RFC 9449) is [`ProofError::Unsupported`] here: give the validator a dispatcher that sends
/// those to a DPoP check.
#[derive(Clone, Copy, Debug, Default)]
pub struct CertificateBinding;

impl CertificateBinding {
    /// The decision, without the boxing of [`SenderConstraint::verify`].
    pub fn check(cnf: &Confirmation, scheme: Scheme, request: &Parts) -> Result<(), ProofError> {
        let Some(expected) = &cnf.x5t_s256 else { return Err(ProofError::Unsupported) };
        // A token bound to a DPoP key as well needs that proof too, which is not checked here.
        if cnf.jkt.is_some() {
            return Err(ProofError::Unsupported);
        }
        // RFC 8705 §3: a certificate-bound token is sent as a Bearer token over mTLS.
        if scheme != Scheme::Bearer {
            return Err(ProofError::Invalid);
        }
        let Some(certificate) = request.extensions.get::<ClientCertificate>() else {
            return Err(ProofError::Missing);
        };
        let presented = certificate.thumbprint();
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into();
        if same { Ok(()) } else { Err(ProofError::Invalid) }
    }
}

impl SenderConstraint for CertificateBinding {
    fn verify<'a>(
        &'a self,
        cnf: &'a Confirmation,
        _token: &'a str,
        scheme: Scheme,
        request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), ProofError>> + Send + 'a>> {
        Box::pin(std::future::ready(Self::check(cnf, scheme, request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(certificate: Option<&[u8]>) -> Parts {
        let mut request = axum::http::Request::new(());
        if let Some(der) = certificate {
            request.extensions_mut().insert(ClientCertificate(der.to_vec()));
        }
        request.into_parts().0
    }

    fn bound_to(der: &[u8]) -> Confirmation {
        Confirmation { jkt: None, x5t_s256: Some(ClientCertificate(der.to_vec()).thumbprint()) }
    }

    // RFC 8705 §3: the token is accepted only with the certificate it is bound to.
    #[test]
    fn rfc8705_3_token_bound_to_other_certificate_is_refused() {
        let cnf = bound_to(b"certificate A");
        assert_eq!(
            CertificateBinding::check(&cnf, Scheme::Bearer, &parts(Some(b"certificate A"))),
            Ok(())
        );
        assert_eq!(
            CertificateBinding::check(&cnf, Scheme::Bearer, &parts(Some(b"certificate B"))),
            Err(ProofError::Invalid)
        );
        assert_eq!(
            CertificateBinding::check(&cnf, Scheme::Bearer, &parts(None)),
            Err(ProofError::Missing)
        );
    }

    // A DPoP binding is not this checker's to accept.
    #[test]
    fn rfc8705_3_tokens_bound_to_a_dpop_key_are_not_checked_here() {
        let jkt = Confirmation { jkt: Some("k".into()), x5t_s256: None };
        assert_eq!(
            CertificateBinding::check(&jkt, Scheme::DPoP, &parts(Some(b"c"))),
            Err(ProofError::Unsupported)
        );
        let both = Confirmation { jkt: Some("k".into()), ..bound_to(b"c") };
        assert_eq!(
            CertificateBinding::check(&both, Scheme::Bearer, &parts(Some(b"c"))),
            Err(ProofError::Unsupported)
        );
    }
}
