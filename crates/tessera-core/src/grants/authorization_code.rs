//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).

use crate::client::Client;
use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::pkce::PkceVerified;
use crate::resource::requested_audience;
use crate::secret::SecretHash;
use crate::store::{
    AuthorizationCode, AuthorizationCodeStore, CodeRedemption, Grant, GrantStore, TokenStore,
};
use crate::token::{IssueContext, TokenResponse, new_jti};

use super::tokens_for_grant::{Issue, issue, new_refresh_token};
use super::{GrantHandler, HandlerFuture, TokenRequest};

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
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(exchange(&self.store, client, &request.params, ctx))
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
    // The code's bindings are checked inside the redemption's transaction, so that a request
    // that fails them (a stolen code without its verifier) spends nothing. The check owns
    // copies of what it compares: the store may run it on its writer thread.
    let (redirect_uri, verifier) = (redirect_uri.to_owned(), verifier.to_owned());
    let check = move |code: &AuthorizationCode| check_bindings(code, &redirect_uri, &verifier);
    let hash = SecretHash::of(code.as_bytes());
    match store.redeem_code(&hash, &client.client_id, ctx.now, check).await? {
        CodeRedemption::Redeemed { code, grant, proof } => {
            mint(store, client, params, ctx, &code, &grant, proof).await
        }
        CodeRedemption::Refused(refusal) => Err(refusal),
        // RFC 6749 §4.1.3: the code was issued to another client; it stays usable by its own.
        CodeRedemption::IssuedToAnotherClient => {
            Err(Error::CodeRefused("the code was issued to another client"))
        }
        CodeRedemption::Unknown => Err(Error::CodeRefused("the code is invalid or has expired")),
        CodeRedemption::AlreadyRedeemed { grant_id } => {
            // RFC 6749 §4.1.2: a code used twice means it leaked; the server "SHOULD revoke
            // (when possible) all tokens previously issued based on that authorization code".
            // Only its own client gets here (§10.5): another one cannot revoke the grant.
            crate::token::revoke_grant_and_notify(store, &grant_id, ctx).await?;
            Err(Error::CodeRefused(
                "the code was already used; every token issued from it has been revoked",
            ))
        }
    }
}

/// RFC 6749 §4.1.3: the redirect URI of the authorization request; RFC 7636 §4.6: the PKCE
/// verifier of its challenge. The proof is what [`mint`] requires.
fn check_bindings(
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: &str,
) -> Result<PkceVerified> {
    if code.redirect_uri != redirect_uri {
        return Err(Error::CodeRefused(
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    code.code_challenge.verify(verifier).map_err(Error::PkceFailed)
}

/// Mints the tokens of a redeemed code. The PKCE proof is required: only a code whose verifier
/// matched, checked in the redemption's transaction, gets here.
async fn mint<S: GrantStore + TokenStore>(
    store: &S,
    client: &Client,
    params: &Params,
    ctx: IssueContext<'_>,
    code: &AuthorizationCode,
    grant: &Grant,
    _pkce: PkceVerified,
) -> Result<TokenResponse> {
    let refresh_token = new_refresh_token(store, client, grant, ctx).await?;
    // RFC 8707 §2.2: `resource` at the token endpoint may narrow the audience of the grant.
    let audience = requested_audience(params, &grant.audience)?;
    let issue_args = Issue {
        client,
        grant,
        scope: &grant.scope,
        audience: &audience,
        refresh_token,
        nonce: code.nonce.as_deref(),
        jti: new_jti(),
        record_jti: true,
    };
    issue(store, ctx, issue_args).await
}
