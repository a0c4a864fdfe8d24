//! DPoP at the token endpoint (RFC 9449 §5): the proof of a token request, checked with
//! `tessera_jose::dpop`, becomes the key the issued tokens are bound to (`cnf.jkt`, §6).

use std::borrow::Cow;

use tessera_jose::dpop::{ProofRules, verify_proof};

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};

use super::TokenRequest;

/// How old a proof may be: it is made for this one request (RFC 9449 §11.1 suggests seconds
/// to minutes).
pub const PROOF_MAX_AGE: i64 = 60;
/// Clock skew allowed for a proof's `iat` in the future.
pub const PROOF_LEEWAY: i64 = 5;

/// A DPoP proof that passed RFC 9449 §4.3's checks for this token request: only
/// [`check_proof`] makes one. The replay cache and nonces are the server's to check with
/// [`DpopKey::jti`] and [`DpopKey::nonce`] before the key is used.
#[derive(Clone, Debug)]
pub struct DpopKey {
    jkt: String,
    jti: String,
    nonce: Option<String>,
}

impl DpopKey {
    /// RFC 7638 thumbprint of the proof's key: `cnf.jkt` of the tokens issued.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    pub fn jti(&self) -> &str {
        &self.jti
    }

    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
}

/// Checks the request's `DPoP` header, if any (RFC 9449 §5: `htm` POST, `htu` the token
/// endpoint's URL built from the issuer); a client registered with
/// `dpop_bound_access_tokens` must send one (§5.2).
pub fn check_proof(
    request: &TokenRequest,
    client: &AuthenticatedClient,
    now: i64,
) -> Result<Option<DpopKey>> {
    let Some(proof) = &request.dpop_proof else {
        if client.client().dpop_bound_access_tokens {
            return Err(Error::DpopProofInvalid(
                "this client's token requests must carry a DPoP proof (dpop_bound_access_tokens)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let rules = ProofRules {
        method: &request.method,
        url: &request.url,
        now,
        max_age: PROOF_MAX_AGE,
        leeway: PROOF_LEEWAY,
        access_token: None,
    };
    let verified = verify_proof(proof, rules)
        .map_err(|e| Error::DpopProofInvalid(Cow::Owned(e.to_string())))?;
    Ok(Some(DpopKey { jkt: verified.jkt, jti: verified.jti, nonce: verified.nonce }))
}
