//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::resource::requested_audience;
use crate::secret::SecretHash;
use crate::store::{AuthorizationCodeStore, CodeRedemption, GrantStore, TokenStore};
use crate::token::{IssueContext, TokenResponse, new_jti};

use super::tokens_for_grant::{Issue, issue, new_refresh_token};
use super::{GrantHandler, HandlerFuture};

/// Exchanges a code for tokens.
pub struct AuthorizationCodeGrant<S> {
    store: S,
}

impl<S> AuthorizationCodeGrant<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: AuthorizationCodeStore + GrantStore + TokenStore + 'static> GrantHandler
    for AuthorizationCodeGrant<S>
{
    fn grant_type(&self) -> GrantType {
        GrantType::AuthorizationCode
    }

    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        params: &'a Params,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(exchange(&self.store, client, params, ctx))
    }
}

async fn exchange<S: AuthorizationCodeStore + GrantStore + TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    params: &Params,
    ctx: IssueContext<'_>,
) -> Result<TokenResponse> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.require("code_verifier")?;
    let client = client.client();
    let (code, grant) = match store.redeem_code(&SecretHash::of(code.as_bytes()), ctx.now).await? {
        CodeRedemption::Redeemed(code, grant) => (code, grant),
        CodeRedemption::Unknown => {
            return Err(Error::InvalidGrant("the code is invalid or has expired".into()));
        }
        CodeRedemption::AlreadyRedeemed { grant_id } => {
            // RFC 6749 §4.1.2: a code used twice means it leaked; the server "SHOULD revoke
            // (when possible) all tokens previously issued based on that authorization code".
            store.revoke_grant(&grant_id, ctx.now).await?;
            return Err(Error::InvalidGrant(
                "the code was already used; every token issued from it has been revoked".into(),
            ));
        }
    };
    // RFC 6749 §4.1.3: the code was issued to this client, for this redirect URI.
    if code.client_id != client.client_id {
        return Err(Error::InvalidGrant("the code was issued to another client".into()));
    }
    if code.redirect_uri != redirect_uri {
        return Err(Error::InvalidGrant(
            "redirect_uri differs from the one of the authorization request".into(),
        ));
    }
    // RFC 7636 §4.6.
    code.code_challenge.verify(verifier).map_err(|reason| Error::InvalidGrant(reason.into()))?;
    let refresh_token = new_refresh_token(store, client, &grant, ctx).await?;
    // RFC 8707 §2.2: `resource` at the token endpoint may narrow the audience of the grant.
    let audience = requested_audience(params, &grant.audience)?;
    let scope = grant.scope.clone();
    let nonce = code.nonce.as_deref();
    let issue_args = Issue {
        client,
        grant: &grant,
        scope: &scope,
        audience: &audience,
        refresh_token,
        nonce,
        jti: new_jti(),
        record_jti: true,
    };
    issue(store, ctx, issue_args).await
}
