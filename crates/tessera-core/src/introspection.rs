//! What a presented token is worth: validation of access tokens (for `/userinfo`) and token
//! introspection (RFC 7662).

use serde::Serialize;

use crate::client::Client;
use crate::client_id::ClientId;
use crate::error::Result;
use crate::keys::KeySet;
use crate::secret::SecretHash;
use crate::store::{GrantStore, TokenStore};
use crate::token::{Actor, TokenType};

/// An access token that is valid now: signature or lookup, expiry and revocation checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveAccessToken {
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub audience: Vec<String>,
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// RFC 8693 §4.1: who acts for `sub`, for a token issued by a delegating exchange.
    pub act: Option<Actor>,
    /// RFC 8693 §4.4: who may act for `sub` (JWTs only: Tessera's opaque tokens carry none).
    pub may_act: Option<Actor>,
    /// RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to (JWTs only).
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the thumbprint of the client certificate it is bound to (JWTs only).
    pub x5t_s256: Option<String>,
}

impl ActiveAccessToken {
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope.split(' ').any(|s| s == wanted)
    }
}

/// Whether a token has the shape of a JWS compact serialization (RFC 7515 §7.1: three
/// base64url parts, the header a JSON object, so `eyJ`): a JWT access token rather than an
/// opaque one or a refresh token. Shape only; nothing is verified. The one copy of this test
/// (introspection and revocation).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The JWT half of [`validate_access_token`], without the revocation lookup: RFC 9068 §4's
/// checks (the key by `kid` from the published set, the algorithm from the key, `typ`, `iss`,
/// `exp`) and the claims introspection reports. `None` if any check fails.
pub fn verify_jwt_access_token(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: i64,
) -> Option<ActiveAccessToken> {
    let c = keys.verifier().verify_access_token(token, issuer, now).ok()?.into_claims();
    Some(ActiveAccessToken {
        sub: c.sub,
        client_id: c.client_id,
        scope: c.scope.into_string(),
        audience: c.aud.into_vec(),
        jti: c.jti,
        issued_at: c.iat,
        expires_at: c.exp,
        act: c.act,
        may_act: c.may_act,
        jkt: c.cnf.as_ref().and_then(|cnf| cnf.jkt.clone()),
        x5t_s256: c.cnf.and_then(|cnf| cnf.x5t_s256),
    })
}

/// Validates an access token, JWT or opaque: `Ok(None)` if it is not an active access token
/// of this server (unknown, malformed, expired, revoked).
pub async fn validate_access_token<S: GrantStore + TokenStore>(
    store: &S,
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<Option<ActiveAccessToken>> {
    if looks_like_jwt(token) {
        // One signature verification, then one query for revocation.
        let Some(active) = verify_jwt_access_token(keys, issuer, token, now) else {
            return Ok(None);
        };
        if store.is_access_token_revoked(&active.jti).await? {
            return Ok(None);
        }
        Ok(Some(active))
    } else {
        // One indexed lookup by hash, which also checks expiry and revocation.
        let hash = SecretHash::of(token.as_bytes());
        Ok(store.find_live_opaque_access_token(&hash, now).await?.map(|t| ActiveAccessToken {
            sub: t.sub,
            client_id: t.client_id.as_str().to_owned(),
            scope: t.scope.to_string(),
            audience: t.audience,
            jti: t.jti,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            act: t.act,
            may_act: None,
            jkt: None,
            x5t_s256: None,
        }))
    }
}

/// An introspection response (RFC 7662 §2.2). Anything not active is exactly
/// `{"active": false}`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<IntrospectionDetails>,
}

/// The members of an active token's introspection response.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct IntrospectionDetails {
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    pub iss: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    pub token_type: IntrospectedType,
    /// RFC 8693 §4.1: the delegation chain of an exchanged token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 §3.1 `cnf` in an introspection response (RFC 9449 §6.2 `jkt`, RFC 8705 §3.2
/// `x5t#S256`).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Confirmation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

/// RFC 7662 §2.2 `token_type`: the access token's type (RFC 6749 §7.1), or `refresh_token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectedType {
    AccessToken(TokenType),
    RefreshToken,
}

impl Serialize for IntrospectedType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::AccessToken(token_type) => token_type.serialize(s),
            Self::RefreshToken => s.serialize_str("refresh_token"),
        }
    }
}

impl Introspection {
    pub fn inactive() -> Self {
        Self { active: false, details: None }
    }
}

/// Introspects a token of any kind this server issues (RFC 7662 §2.1) for the authenticated
/// `caller`. `token_type_hint` only decides which lookup runs first (§2.1: it is a hint, not a
/// filter). RFC 7662 §2.2 lets the answer depend on the caller: a caller with an
/// `introspection_audience` learns only about tokens whose `aud` includes it.
pub async fn introspect<S: GrantStore + TokenStore>(
    store: &S,
    keys: &KeySet,
    issuer: &str,
    caller: &Client,
    token: &str,
    token_type_hint: Option<&str>,
    now: i64,
) -> Result<Introspection> {
    let answer =
        describe(store, keys, issuer, &caller.client_id, token, token_type_hint, now).await?;
    let hidden = match (&caller.introspection_audience, &answer.details) {
        (Some(audience), Some(details)) => !details.aud.iter().any(|a| a == audience),
        _ => false,
    };
    Ok(if hidden { Introspection::inactive() } else { answer })
}

async fn describe<S: GrantStore + TokenStore>(
    store: &S,
    keys: &KeySet,
    issuer: &str,
    caller: &ClientId,
    token: &str,
    token_type_hint: Option<&str>,
    now: i64,
) -> Result<Introspection> {
    let refresh_first = token_type_hint == Some("refresh_token") && !looks_like_jwt(token);
    if refresh_first
        && let Some(found) = introspect_refresh_token(store, issuer, caller, token, now).await?
    {
        return Ok(found);
    }
    if let Some(t) = validate_access_token(store, keys, issuer, token, now).await? {
        let aud = if t.audience.is_empty() { vec![issuer.to_owned()] } else { t.audience };
        return Ok(Introspection {
            active: true,
            details: Some(IntrospectionDetails {
                scope: t.scope,
                client_id: t.client_id,
                sub: t.sub,
                aud,
                iss: issuer.to_owned(),
                exp: t.expires_at,
                iat: t.issued_at,
                nbf: t.issued_at,
                jti: Some(t.jti),
                token_type: IntrospectedType::AccessToken(match t.jkt {
                    Some(_) => TokenType::DPoP,
                    None => TokenType::Bearer,
                }),
                act: t.act,
                cnf: (t.jkt.is_some() || t.x5t_s256.is_some())
                    .then_some(Confirmation { jkt: t.jkt, x5t_s256: t.x5t_s256 }),
            }),
        });
    }
    if !refresh_first
        && !looks_like_jwt(token)
        && let Some(found) = introspect_refresh_token(store, issuer, caller, token, now).await?
    {
        return Ok(found);
    }
    Ok(Introspection::inactive())
}

async fn introspect_refresh_token<S: TokenStore>(
    store: &S,
    issuer: &str,
    caller: &ClientId,
    token: &str,
    now: i64,
) -> Result<Option<Introspection>> {
    let Some(r) = store.find_refresh_token(&SecretHash::of(token.as_bytes())).await? else {
        return Ok(None);
    };
    // A refresh token is for its client and the authorization server only (RFC 6749 §1.5);
    // RFC 7662 §2.2 lets the server answer `active: false` to a caller that is not allowed
    // to know about a token, so no other caller learns its user, scope or lifetime.
    if r.grant.client_id != *caller {
        return Ok(Some(Introspection::inactive()));
    }
    let active = !r.rotated && !r.grant_revoked && r.expires_at > now && r.grant.expires_at > now;
    if !active {
        return Ok(Some(Introspection::inactive()));
    }
    Ok(Some(Introspection {
        active: true,
        details: Some(IntrospectionDetails {
            scope: r.grant.scope.to_string(),
            client_id: r.grant.client_id.as_str().to_owned(),
            sub: r.grant.user_id.clone(),
            // As for access tokens: an empty audience means the issuer itself.
            aud: if r.grant.audience.is_empty() {
                vec![issuer.to_owned()]
            } else {
                r.grant.audience.clone()
            },
            iss: issuer.to_owned(),
            exp: r.expires_at,
            iat: r.issued_at,
            nbf: r.issued_at,
            jti: None,
            token_type: IntrospectedType::RefreshToken,
            act: None,
            cnf: None,
        }),
    }))
}
