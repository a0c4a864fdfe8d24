//! Access tokens as JWTs (RFC 9068) and the token endpoint's response (RFC 6749 §5.1).

use std::fmt;

use serde::Serialize;

use crate::client::AccessTokenFormat;
use crate::client_id::ClientId;
use crate::error::{Error, InternalError, Result};
use crate::grants::dpop::DpopKey;
use crate::issuer::Issuer;
use crate::keys::{KeySet, SigningAlg};
use crate::scope::ScopeSet;
use crate::secret::Secret;
use crate::store::{OpaqueAccessToken, TokenStore};
/// RFC 8693 §4.1 `act`, as the verifier reads it and as tokens carry it.
pub use tessera_jose::Actor;

/// Lifetimes and algorithms of what the server issues. All durations in seconds.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    /// Access-token lifetime (requirements R3.2: 15 minutes by default).
    pub access_token_ttl: i64,
    /// The algorithm access tokens are signed with.
    pub access_token_alg: SigningAlg,
    /// ID-token lifetime.
    pub id_token_ttl: i64,
    /// Authorization-code lifetime (R1.2: 60 s by default, at most 10 minutes).
    pub code_ttl: i64,
    /// A refresh token unused this long expires (idle lifetime).
    pub refresh_token_idle_ttl: i64,
    /// A refresh-token family ends this long after its grant (R1.4: 30 days, at most 90).
    pub refresh_token_absolute_ttl: i64,
    /// Device-code lifetime (RFC 8628 §3.2 `expires_in`; 10 minutes by default).
    pub device_code_ttl: i64,
    /// The least seconds between two polls (RFC 8628 §3.2 `interval`; 5 by default).
    pub device_poll_interval: i64,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            access_token_ttl: 900,
            access_token_alg: SigningAlg::ES256,
            id_token_ttl: 900,
            code_ttl: 60,
            refresh_token_idle_ttl: 14 * 86_400,
            refresh_token_absolute_ttl: 30 * 86_400,
            device_code_ttl: 600,
            device_poll_interval: 5,
        }
    }
}

impl TokenPolicy {
    /// The longest lifetime of any JWT signed under this policy.
    pub fn max_signed_lifetime(&self) -> i64 {
        self.access_token_ttl.max(self.id_token_ttl)
    }
}

/// What the token endpoint needs from the server for one request.
#[derive(Clone, Copy)]
pub struct IssueContext<'a> {
    pub issuer: &'a Issuer,
    pub keys: &'a KeySet,
    pub policy: &'a TokenPolicy,
    pub now: i64,
    /// RFC 9449 §5: the key of the request's DPoP proof, to which the access token is bound.
    pub dpop: Option<&'a DpopKey>,
    /// RFC 8705 §3.1: `x5t#S256` of the client certificate the access token is bound to (for
    /// clients registered with `tls_client_certificate_bound_access_tokens`).
    pub certificate: Option<&'a str>,
    /// Told of the access tokens of every grant this request revokes (a replayed code or
    /// device code, a reused refresh token), e.g. to publish them to a revocation list.
    pub revocations: Option<&'a dyn RevocationNotifier>,
}

/// Learns which access tokens a token request revoked with their grant (requirement R7.4:
/// the server publishes them to the revocation list resource servers read).
pub trait RevocationNotifier: Send + Sync {
    /// The `jti`s and expiry times of the revoked grant's unexpired access tokens.
    fn grant_revoked<'a>(
        &'a self,
        access_tokens: Vec<(String, i64)>,
        now: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

/// Revokes a grant (its refresh tokens and access tokens) and tells `ctx.revocations` which
/// access tokens went with it.
pub(crate) async fn revoke_grant_and_notify<S: crate::store::GrantStore>(
    store: &S,
    grant_id: &str,
    ctx: IssueContext<'_>,
) -> Result<()> {
    store.revoke_grant(grant_id, ctx.now).await?;
    if let Some(notify) = ctx.revocations {
        let access_tokens = store.grant_access_tokens(grant_id, ctx.now).await?;
        notify.grant_revoked(access_tokens, ctx.now).await;
    }
    Ok(())
}

/// What an access token is issued for.
pub struct AccessTokenGrant<'a> {
    /// The resource owner, or the client itself for the client credentials grant
    /// (RFC 9068 §2.2).
    pub sub: &'a str,
    pub client_id: &'a ClientId,
    pub scope: &'a ScopeSet,
    /// The resource servers the token is meant for (RFC 8707); empty means the issuer itself.
    pub audience: &'a [String],
    /// Its `jti` (RFC 9068 §2.2), from [`new_jti`]: chosen by the caller, so that a refresh
    /// can record it under its grant in the rotation's own transaction.
    pub jti: String,
    /// RFC 8693 §4.1: who acts for `sub`, for a token issued by a delegating token exchange.
    pub act: Option<&'a Actor>,
}

/// The kind of access token issued (RFC 6749 §7.1, §5.1 `token_type`). Sender-constrained
/// tokens add their variant here (RFC 9449 §5: `DPoP`), so that the token response and
/// introspection name the type from one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TokenType {
    /// RFC 6750: whoever holds the token may use it.
    Bearer,
    /// RFC 9449 §5: only with a DPoP proof of the key in its `cnf.jkt`.
    DPoP,
}

/// A fresh access-token `jti`: 128 random bits.
pub fn new_jti() -> String {
    crate::secret::random_id::<16>()
}

/// An access token as issued: a JWT, or an opaque reference token.
pub struct IssuedAccessToken {
    pub token: String,
    /// `DPoP` when bound to the request's DPoP key, else `Bearer`.
    pub token_type: TokenType,
    pub jti: String,
    pub expires_at: i64,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken").field("jti", &self.jti).finish_non_exhaustive()
    }
}

/// RFC 9068 §2.2 claims.
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Audience<'a>,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Cnf<'a>>,
}

/// RFC 7800 §3.1 `cnf` with RFC 9449 §6.1 `jkt` and RFC 8705 §3.1 `x5t#S256`.
#[derive(Serialize)]
struct Cnf<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    jkt: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
}

/// `aud` as a single string when there is one audience (the common form that every library
/// accepts), else an array (RFC 7519 §4.1.3).
enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Audience<'a> {
    fn of(list: &'a [String], issuer: &'a Issuer) -> Self {
        match list {
            [] => Self::One(issuer.as_str()),
            [one] => Self::One(one),
            many => Self::Many(many),
        }
    }
}

impl Serialize for Audience<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(one) => s.serialize_str(one),
            Self::Many(many) => many.serialize(s),
        }
    }
}

/// The `typ` header of RFC 9068 §2.1.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Mints a signed JWT access token.
pub fn mint_access_token(
    ctx: IssueContext<'_>,
    grant: AccessTokenGrant<'_>,
) -> Result<IssuedAccessToken> {
    let alg = ctx.policy.access_token_alg;
    let key = ctx
        .keys
        .signer(alg, ctx.now)
        .ok_or_else(|| InternalError::new("signing", format!("no active {alg} signing key")))?;
    let expires_at = ctx.now + ctx.policy.access_token_ttl;
    let claims = AccessTokenClaims {
        iss: ctx.issuer.as_str(),
        sub: grant.sub,
        aud: Audience::of(grant.audience, ctx.issuer),
        exp: expires_at,
        iat: ctx.now,
        jti: &grant.jti,
        client_id: grant.client_id.as_str(),
        scope: (!grant.scope.is_empty()).then(|| grant.scope.to_string()),
        act: grant.act,
        cnf: (ctx.dpop.is_some() || ctx.certificate.is_some())
            .then(|| Cnf { jkt: ctx.dpop.map(DpopKey::jkt), x5t_s256: ctx.certificate }),
    };
    let token = key.sign_jwt(ACCESS_TOKEN_TYP, &claims)?;
    let token_type = if ctx.dpop.is_some() { TokenType::DPoP } else { TokenType::Bearer };
    Ok(IssuedAccessToken { token, token_type, jti: grant.jti, expires_at })
}

/// Mints an access token in the client's format (requirements R3.1): a JWT, or an opaque
/// token of 256 random bits that is stored only as its hash.
pub async fn issue_access_token<S: TokenStore>(
    store: &S,
    ctx: IssueContext<'_>,
    format: AccessTokenFormat,
    grant: AccessTokenGrant<'_>,
) -> Result<IssuedAccessToken> {
    match format {
        AccessTokenFormat::Jwt => mint_access_token(ctx, grant),
        // Opaque tokens keep no key binding: a bound token is a JWT, whose `cnf` a resource
        // server reads (RFC 9449 §6.1).
        AccessTokenFormat::Opaque if ctx.dpop.is_some() => Err(Error::DpopProofInvalid(
            "DPoP-bound access tokens are JWTs; this client's tokens are opaque".into(),
        )),
        // Registration refuses opaque certificate-bound clients; never mint one unbound.
        AccessTokenFormat::Opaque if ctx.certificate.is_some() => Err(Error::MalformedRequest(
            "certificate-bound access tokens are JWTs; this client's tokens are opaque".into(),
        )),
        AccessTokenFormat::Opaque => {
            let token = Secret::generate();
            let record = OpaqueAccessToken {
                token_hash: token.hash(),
                jti: grant.jti,
                client_id: grant.client_id.clone(),
                sub: grant.sub.to_owned(),
                scope: grant.scope.clone(),
                audience: grant.audience.to_vec(),
                issued_at: ctx.now,
                expires_at: ctx.now + ctx.policy.access_token_ttl,
                act: grant.act.cloned(),
            };
            store.insert_opaque_access_token(&record).await?;
            Ok(IssuedAccessToken {
                token: token.expose().to_owned(),
                token_type: TokenType::Bearer,
                jti: record.jti,
                expires_at: record.expires_at,
            })
        }
    }
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: the type of the token issued by a token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// The access token's `jti`, subject and actor (RFC 8693 §4.1), for the audit log; not
    /// part of the response.
    #[serde(skip)]
    pub jti: String,
    #[serde(skip)]
    pub sub: String,
    #[serde(skip)]
    pub actor: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}
