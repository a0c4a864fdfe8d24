//! Token revocation (RFC 7009).

use crate::client_auth::AuthenticatedClient;
use crate::error::Result;
use crate::introspection::looks_like_jwt;
use tessera_jose::{AccessTokenClaims, Expiry, Typ};

use crate::keys::KeySet;
use crate::secret::SecretHash;
use crate::store::{GrantStore, TokenStore};

/// What a revocation request did, for the audit log. The HTTP answer is `200` in every case
/// (RFC 7009 §2.2): a client learns nothing about tokens that are not its own.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// An access token's `jti` is on the denylist until it expires.
    AccessToken { jti: String, expires_at: i64 },
    /// A refresh token, and with it its whole grant (RFC 7009 §2.1).
    Grant { grant_id: String },
    /// Unknown, already expired, or another client's token: nothing was changed.
    Nothing,
}

/// Revokes a token of the authenticated client. `token_type_hint` only orders the lookups.
pub async fn revoke<S: GrantStore + TokenStore>(
    store: &S,
    keys: &KeySet,
    issuer: &str,
    client: &AuthenticatedClient,
    token: &str,
    token_type_hint: Option<&str>,
    now: i64,
) -> Result<Revoked> {
    let client_id = client.client().client_id.as_str();
    // A JWT access token: verify it (expired ones need no revocation) and denylist its jti.
    if looks_like_jwt(token) {
        let verified = keys.verifier().verify::<AccessTokenClaims>(
            token,
            Typ::ACCESS_TOKEN,
            issuer,
            now,
            Expiry::Ignore,
        );
        return Ok(match verified.map(|v| v.into_claims()) {
            // RFC 7009 §2.1: only the client the token was issued to may revoke it.
            Ok(c) if c.client_id == client_id && c.exp > now => {
                store.revoke_access_token(&c.jti, c.exp).await?;
                Revoked::AccessToken { jti: c.jti, expires_at: c.exp }
            }
            _ => Revoked::Nothing,
        });
    }
    let hash = SecretHash::of(token.as_bytes());
    let refresh_first = token_type_hint == Some("refresh_token");
    for refresh in [refresh_first, !refresh_first] {
        let outcome = if refresh {
            match store.find_refresh_token(&hash).await? {
                Some(r) if r.grant.client_id.as_str() == client_id => {
                    store.revoke_grant(&r.grant.id, now).await?;
                    Revoked::Grant { grant_id: r.grant.id }
                }
                _ => Revoked::Nothing,
            }
        } else {
            match store.find_opaque_access_token(&hash).await? {
                Some(t) if t.client_id.as_str() == client_id && t.expires_at > now => {
                    store.revoke_access_token(&t.jti, t.expires_at).await?;
                    Revoked::AccessToken { jti: t.jti, expires_at: t.expires_at }
                }
                _ => Revoked::Nothing,
            }
        };
        if outcome != Revoked::Nothing {
            return Ok(outcome);
        }
    }
    Ok(Revoked::Nothing)
}
