//! The subject and actor tokens of a token exchange (RFC 8693 §2.1): which types Tessera
//! accepts, and what a valid one says. Only tokens this server issued are accepted, each
//! checked exactly as the rest of the server checks it.

use std::borrow::Cow;

use tessera_jose::{Expiry, IdTokenClaims, Typ};

use crate::error::{Error, Result};
use crate::introspection::{looks_like_jwt, validate_access_token};
use crate::scope::ScopeSet;
use crate::store::{GrantStore, TokenStore, UserStore};
use crate::token::{Actor, IssueContext};

/// RFC 8693 §3: token type identifiers.
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Which token of the request is being read, to name it in errors.
#[derive(Clone, Copy)]
pub enum Role {
    Subject,
    Actor,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Subject => "subject_token",
            Self::Actor => "actor_token",
        }
    }
}

/// A subject or actor token that is valid now.
pub struct PresentedToken {
    pub sub: String,
    /// The client it was issued to (an ID token's `azp`, else its `aud`).
    pub client_id: String,
    /// Its `aud` (RFC 8707); empty for an ID token, whose audience is its client.
    pub audience: Vec<String>,
    /// An ID token carries no scope.
    pub scope: ScopeSet,
    /// An access token's `jti`, under whose grant a token derived from it is recorded.
    pub jti: Option<String>,
    pub expires_at: i64,
    pub act: Option<Actor>,
    pub may_act: Option<Actor>,
}

/// Validates a presented token of the declared `token_type`: an access token (JWT or opaque)
/// or an ID token of this server, or `jwt` for either JWT. Anything invalid — unknown,
/// expired, revoked, of another type, an ID token of a user who is gone — is
/// `invalid_request` (RFC 8693 §2.2.2).
pub async fn validate<S: GrantStore + TokenStore + UserStore>(
    store: &S,
    ctx: IssueContext<'_>,
    token: &str,
    token_type: &str,
    role: Role,
) -> Result<PresentedToken> {
    let found = match token_type {
        ACCESS_TOKEN => access_token(store, ctx, token).await?,
        JWT if looks_like_jwt(token) => match access_token(store, ctx, token).await? {
            Some(found) => Some(found),
            None => id_token(store, ctx, token).await?,
        },
        JWT => None,
        ID_TOKEN => id_token(store, ctx, token).await?,
        other => {
            return Err(Error::TokenExchangeRefused(Cow::Owned(format!(
                "the {} type `{other}` is not accepted; use {ACCESS_TOKEN}, {JWT} or {ID_TOKEN}",
                role.name()
            ))));
        }
    };
    found.ok_or_else(|| {
        Error::TokenExchangeRefused(Cow::Owned(format!(
            "the {} is not an active token of this server of the type it declares (unknown, \
             expired or revoked)",
            role.name()
        )))
    })
}

async fn access_token<S: GrantStore + TokenStore>(
    store: &S,
    ctx: IssueContext<'_>,
    token: &str,
) -> Result<Option<PresentedToken>> {
    let issuer = ctx.issuer.as_str();
    let Some(t) = validate_access_token(store, ctx.keys, issuer, token, ctx.now).await? else {
        return Ok(None);
    };
    // The token's scope was validated when it was minted; a value that no longer parses
    // grants nothing rather than failing the request.
    let scope = if t.scope.is_empty() {
        ScopeSet::default()
    } else {
        ScopeSet::parse(&t.scope).unwrap_or_default()
    };
    Ok(Some(PresentedToken {
        sub: t.sub,
        client_id: t.client_id,
        audience: t.audience,
        scope,
        jti: Some(t.jti),
        expires_at: t.expires_at,
        act: t.act,
        may_act: t.may_act,
    }))
}

/// OIDC Core §2 ID tokens, typed `JWT` by this server (so an access token is not one). An ID
/// token cannot be revoked, so its user must still exist and be enabled.
async fn id_token<S: UserStore>(
    store: &S,
    ctx: IssueContext<'_>,
    token: &str,
) -> Result<Option<PresentedToken>> {
    let verified = ctx.keys.verifier().verify::<IdTokenClaims>(
        token,
        Typ::Exactly("JWT"),
        ctx.issuer.as_str(),
        ctx.now,
        Expiry::Enforce,
    );
    let Ok(verified) = verified else { return Ok(None) };
    let claims = verified.into_claims();
    let Some(client_id) = claims.azp.or_else(|| claims.aud.into_vec().into_iter().next()) else {
        return Ok(None);
    };
    match store.find_user_by_id(&claims.sub).await? {
        Some(user) if !user.disabled => {}
        _ => return Ok(None),
    }
    Ok(Some(PresentedToken {
        sub: claims.sub,
        client_id,
        audience: Vec::new(),
        scope: ScopeSet::default(),
        jti: None,
        expires_at: claims.exp,
        act: None,
        may_act: None,
    }))
}
