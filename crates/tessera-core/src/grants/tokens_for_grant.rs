//! Issuing the tokens of a user grant: shared by the authorization code and refresh token
//! grants, so both mint, record and bind tokens the same way.

use crate::client::Client;
use crate::error::Result;
use crate::grant_type::GrantType;
use crate::id_token::mint_id_token;
use crate::scope::ScopeSet;
use crate::secret::Secret;
use crate::store::{Grant, GrantStore, TokenStore};
use crate::token::{AccessTokenGrant, IssueContext, TokenResponse, issue_access_token};

/// What to issue beside the access token.
pub struct Issue<'a> {
    pub client: &'a Client,
    pub grant: &'a Grant,
    /// The scope of this access token: the grant's, or a narrowed subset (RFC 6749 §6).
    pub scope: &'a ScopeSet,
    /// Its audience: the grant's, or a subset asked for with `resource` (RFC 8707 §2.2).
    pub audience: &'a [String],
    /// The refresh token to return: already stored by the caller (rotation), or `None`.
    pub refresh_token: Option<Secret>,
    pub nonce: Option<&'a str>,
    /// The access token's `jti`, from [`new_jti`](crate::token::new_jti).
    pub jti: String,
    /// Whether `jti` still has to be recorded under the grant; a refresh recorded it in the
    /// rotation's transaction already.
    pub record_jti: bool,
}

/// Mints the access token (recorded under the grant, so revoking the grant revokes it) and,
/// when `openid` was granted, the ID token.
pub async fn issue<S: GrantStore + TokenStore>(
    store: &S,
    ctx: IssueContext<'_>,
    issue: Issue<'_>,
) -> Result<TokenResponse> {
    let access = issue_access_token(
        store,
        ctx,
        issue.client.access_token_format,
        AccessTokenGrant {
            sub: &issue.grant.user_id,
            client_id: &issue.client.client_id,
            scope: issue.scope,
            audience: issue.audience,
            jti: issue.jti,
            act: None,
        },
    )
    .await?;
    if issue.record_jti {
        store.record_access_token(&issue.grant.id, &access.jti, access.expires_at).await?;
    }
    let id_token = if issue.scope.iter().any(|s| s.as_str() == "openid") {
        let alg = issue.client.id_token_signed_response_alg;
        Some(mint_id_token(ctx, alg, issue.grant, issue.nonce, &access.token)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: access.token_type,
        expires_in: ctx.policy.access_token_ttl,
        scope: Some(issue.scope.to_string()),
        refresh_token: issue.refresh_token.map(|s| s.expose().to_owned()),
        id_token,
        issued_token_type: None,
        actor: None,
        jti: access.jti,
        sub: issue.grant.user_id.clone(),
    })
}

/// A new refresh token for a grant, stored, when the client may use refresh tokens.
pub async fn new_refresh_token<S: GrantStore>(
    store: &S,
    client: &Client,
    grant: &Grant,
    ctx: IssueContext<'_>,
) -> Result<Option<Secret>> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Ok(None);
    }
    let token = Secret::generate();
    let expires_at = (ctx.now + ctx.policy.refresh_token_idle_ttl).min(grant.expires_at);
    // RFC 8705 §4: a public client's refresh token is bound to the certificate its access
    // tokens are bound to (a confidential client's is protected by its authentication).
    let certificate = if client.is_public() { ctx.certificate } else { None };
    store.insert_refresh_token(&token.hash(), &grant.id, ctx.now, expires_at, certificate).await?;
    bind_to_dpop_key(store, client, grant, ctx).await?;
    Ok(Some(token))
}

/// RFC 9449 §5: "refresh tokens issued to public clients are bound to the DPoP key" — the
/// key of this request's proof, if any, from now on for the grant's whole refresh family.
pub async fn bind_to_dpop_key<S: GrantStore>(
    store: &S,
    client: &Client,
    grant: &Grant,
    ctx: IssueContext<'_>,
) -> Result<()> {
    if let (true, None, Some(key)) = (client.is_public(), &grant.dpop_jkt, ctx.dpop) {
        store.bind_refresh_tokens_to_dpop_key(&grant.id, key.jkt()).await?;
    }
    Ok(())
}
