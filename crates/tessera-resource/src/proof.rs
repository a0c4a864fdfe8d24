//! Sender-constrained tokens (RFC 7800 `cnf`): the hook through which DPoP (RFC 9449) and
//! mutual-TLS (RFC 8705) proofs are checked.
//!
//! A token carrying `cnf` may only be used by the holder of the key it names. The validator
//! hands every such token to the configured [`SenderConstraint`], with the request parts (the
//! `DPoP` header, method and URL for RFC 9449 §4.3; the client certificate as a request
//! extension for RFC 8705 §3). Adding those checks adds an implementation of this trait; the
//! validator, the layer and the `Principal` keep their shape.

use std::future::Future;
use std::pin::Pin;

use axum::http::request::Parts;
use tessera_jose::Confirmation;

/// How the token was presented (RFC 6750 §2.1 `Bearer`, RFC 9449 §7.1 `DPoP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

/// Why the proof of a bound token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// RFC 9449 §7.1 / RFC 8705 §3: a bound token without its proof is refused.
    #[error("the token is sender-constrained and no proof of possession was presented")]
    Missing,
    #[error("the proof of possession is invalid")]
    Invalid,
    /// The binding names a method this resource cannot check (e.g. `x5t#S256` without TLS).
    #[error("the token's confirmation method is not supported here")]
    Unsupported,
}

/// Checks the proof of possession of a sender-constrained token.
pub trait SenderConstraint: Send + Sync + 'static {
    /// `cnf` of a validated token, the token itself (a DPoP proof's `ath` is its hash), how
    /// it was presented, and the request.
    fn verify<'a>(
        &'a self,
        cnf: &'a Confirmation,
        token: &'a str,
        scheme: Scheme,
        request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), ProofError>> + Send + 'a>>;
}

/// The default: no proof method is configured, so every bound token is refused (RFC 9449
/// §7.1, RFC 8705 §3: accepting it as a bearer token would defeat the binding).
#[derive(Clone, Copy, Debug, Default)]
pub struct RefuseBoundTokens;

impl SenderConstraint for RefuseBoundTokens {
    fn verify<'a>(
        &'a self,
        _cnf: &'a Confirmation,
        _token: &'a str,
        _scheme: Scheme,
        _request: &'a Parts,
    ) -> Pin<Box<dyn Future<Output = Result<(), ProofError>> + Send + 'a>> {
        Box::pin(std::future::ready(Err(ProofError::Missing)))
    }
}
