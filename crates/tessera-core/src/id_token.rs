//! ID tokens (OIDC Core §2, §3.1.3.6–3.1.3.7).

use serde::Serialize;

use crate::error::{InternalError, Result};
use crate::keys::SigningAlg;
use crate::store::Grant;
use crate::token::IssueContext;

/// OIDC Core §3.1.3.6: `at_hash` with the hash of the ID token's `alg`, computed by the same
/// function relying parties check it with (`tessera_jose::at_hash`).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let alg = match alg {
        SigningAlg::RS256 => tessera_jose::Algorithm::RS256,
        SigningAlg::ES256 => tessera_jose::Algorithm::ES256,
        SigningAlg::EdDSA => tessera_jose::Algorithm::EdDSA,
    };
    tessera_jose::at_hash(access_token, alg)
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

/// The algorithms ID tokens may be signed with (`id_token_signing_alg_values_supported`): the
/// key ring holds a current key of each. RS256 is what OIDC Core §15.1 requires of every
/// provider and the default of OIDC Registration §2; a client that registered
/// `id_token_signed_response_alg` ES256 or EdDSA gets ID tokens ~20× cheaper to sign.
pub const ID_TOKEN_ALGS: [SigningAlg; 3] = SigningAlg::ALL;

/// Mints an ID token for a grant, bound to the access token issued beside it, signed with
/// `alg` (the client's `id_token_signed_response_alg`).
pub fn mint_id_token(
    ctx: IssueContext<'_>,
    alg: SigningAlg,
    grant: &Grant,
    nonce: Option<&str>,
    access_token: &str,
) -> Result<String> {
    let key = ctx
        .keys
        .signer(alg, ctx.now)
        .ok_or_else(|| InternalError::new("signing", format!("no active {alg} signing key")))?;
    let claims = IdTokenClaims {
        iss: ctx.issuer.as_str(),
        sub: &grant.user_id,
        aud: grant.client_id.as_str(),
        exp: ctx.now + ctx.policy.id_token_ttl,
        iat: ctx.now,
        auth_time: grant.auth_time,
        nonce,
        at_hash: at_hash(access_token, alg),
        sid: grant.sid.as_deref(),
    };
    Ok(key.sign_jwt("JWT", &claims)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_3_1_3_6_at_hash_is_the_left_half_of_sha256() {
        // OIDC Core Appendix A.3 example: access token and its at_hash.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, SigningAlg::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
