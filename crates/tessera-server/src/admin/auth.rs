//! Who calls the admin API: the bearer of one of Tessera's own access tokens, issued to a
//! client that is still flagged first-party admin, with the `admin:*` scope of the route.
//!
//! The token is validated as `/userinfo` validates it (signature or opaque record, expiry,
//! revocation; `tessera_core::introspection::validate_access_token`); its audience must be
//! the issuer (no `aud` restriction, or the issuer named). DPoP-bound tokens are refused
//! here (bearer tokens only). Unflagging the client (or deleting it) ends its access at once,
//! whatever tokens it holds.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::Error;
use tessera_core::client_id::ClientId;
use tessera_core::introspection::validate_access_token;
use tessera_core::store::AdminStore;
use tessera_http::BearerToken;

use super::error::AdminError;
use crate::state::AppState;

/// An authenticated admin caller.
#[derive(Debug)]
pub struct Caller {
    pub client_id: String,
    /// The user the token is for, or the client itself (client credentials).
    pub sub: String,
    scope: String,
}

impl Caller {
    /// Requires `scope` (RFC 6750 §3.1: `insufficient_scope`, 403).
    pub fn require(&self, scope: &'static str) -> Result<(), AdminError> {
        if self.scope.split(' ').any(|s| s == scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope { required: scope }.into())
        }
    }

    /// How audit events name the caller.
    pub fn actor(&self) -> String {
        format!("admin-api client={} sub={}", self.client_id, self.sub)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let token = match BearerToken::from_headers(&parts.headers) {
            Ok(Some(token)) => token,
            // RFC 6750 §3.1: no credentials, no error code.
            Ok(None) => return Err(Error::BearerTokenMissing.into()),
            Err(e) => return Err(Error::BearerTokenMalformed(e.description()).into()),
        };
        let inner = &state.0;
        let keys = inner.keys.snapshot();
        let issuer = inner.settings.issuer.as_str();
        let token =
            validate_access_token(&inner.store, &keys, issuer, token.as_str(), inner.clock.now())
                .await?
                .ok_or(Error::InvalidToken("the token is invalid, expired or revoked"))?;
        if token.jkt.is_some() {
            return Err(
                Error::InvalidToken("a DPoP-bound token cannot be used as a bearer token").into()
            );
        }
        // RFC 9068 §4: a token restricted to other resources is not for this API.
        if !token.audience.is_empty() && !token.audience.iter().any(|a| a == issuer) {
            return Err(Error::InvalidToken("the token is meant for another audience").into());
        }
        let client_id = ClientId::parse(&token.client_id)
            .map_err(|_| Error::InvalidToken("the token's client is unknown"))?;
        if !inner.store.is_admin_client(&client_id).await? {
            return Err(Error::InvalidToken(
                "the token's client is not (or no longer) a first-party admin client",
            )
            .into());
        }
        Ok(Caller { client_id: token.client_id, sub: token.sub, scope: token.scope })
    }
}
