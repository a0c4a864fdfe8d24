//! The refresh token grant (RFC 6749 §6) with rotation on every use and reuse detection
//! (OAuth 2.1 §4.3.1, requirements R1.4).

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::resource::audience_of;
use crate::scope::ScopeSet;
use crate::secret::{Secret, SecretHash};
use crate::store::{GrantStore, RefreshRotation, RotationRequest, TokenStore};
use crate::token::{IssueContext, TokenResponse, new_jti};

use super::tokens_for_grant::{Issue, issue};
use super::{GrantHandler, HandlerFuture, TokenRequest};

/// Exchanges a refresh token for new tokens and a new refresh token.
pub struct RefreshTokenGrant<S> {
    store: S,
}

impl<S> RefreshTokenGrant<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: GrantStore + TokenStore + 'static> GrantHandler for RefreshTokenGrant<S> {
    fn grant_type(&self) -> GrantType {
        GrantType::RefreshToken
    }

    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(refresh(&self.store, client, request, ctx))
    }
}

async fn refresh<S: GrantStore + TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    request: &TokenRequest,
    ctx: IssueContext<'_>,
) -> Result<TokenResponse> {
    let params = &request.params;
    let presented = params.require("refresh_token")?;
    let certificate = request.client_certificate.as_ref().map(|c| crate::mtls::thumbprint(c.der()));
    let requested = params
        .get("scope")
        .map(|raw| ScopeSet::parse(raw).map_err(|e| Error::MalformedScope(e.into())))
        .transpose()?;
    let client = client.client();
    let new_token = Secret::generate();
    let new_hash = new_token.hash();
    // The new access token is recorded under the grant in the rotation's transaction: one
    // write instead of two.
    let jti = new_jti();
    let rotation = RotationRequest {
        old: &SecretHash::of(presented.as_bytes()),
        new: &new_hash,
        client_id: &client.client_id,
        now: ctx.now,
        idle_ttl: ctx.policy.refresh_token_idle_ttl,
        access_token_jti: &jti,
        access_token_expires_at: ctx.now + ctx.policy.access_token_ttl,
        grace_seconds: i64::from(client.refresh_token_grace_seconds),
        certificate: certificate.as_deref(),
    };
    // RFC 6749 §6: a requested scope must not exceed the grant's, nor (RFC 8707 §2.2) a
    // requested resource its audience. Both are checked inside the rotation, so that a refused
    // request leaves the presented token usable. The check owns copies of what it reads: the
    // store may run it on its writer thread.
    let proved = ctx.dpop.map(|key| key.jkt().to_owned());
    let resources: Vec<String> = params.get_all("resource").map(str::to_owned).collect();
    let accept = move |grant: &crate::store::Grant| -> Result<(Vec<String>, ScopeSet)> {
        // RFC 9449 §5: a refresh token bound to a DPoP key is only good with a proof of it.
        if let Some(bound) = &grant.dpop_jkt
            && !proved.as_deref().is_some_and(|jkt| {
                bool::from(subtle::ConstantTimeEq::ct_eq(jkt.as_bytes(), bound.as_bytes()))
            })
        {
            return Err(Error::InvalidGrant(
                "the refresh token is bound to a DPoP key; the request must carry a DPoP proof \
                 of that key (RFC 9449 §5)"
                    .into(),
            ));
        }
        if requested.as_ref().is_some_and(|r| r.first_outside(&grant.scope).is_some()) {
            return Err(Error::ScopeWidened);
        }
        let audience = audience_of(resources.iter().map(String::as_str), &grant.audience)?;
        // RFC 6749 §6: without `scope`, the new token has the grant's.
        Ok((audience, requested.unwrap_or_else(|| grant.scope.clone())))
    };
    let (grant, (audience, scope)) = match store.rotate_refresh_token(rotation, accept).await? {
        RefreshRotation::Rotated { grant, accepted } => (grant, accepted),
        RefreshRotation::Invalid => {
            return Err(Error::InvalidGrant(
                "the refresh token is invalid, expired or revoked".into(),
            ));
        }
        RefreshRotation::Refused(refusal) => return Err(refusal),
        RefreshRotation::Reused { grant_id } => {
            // OAuth 2.1 §4.3.1: a rotated refresh token presented again means one of two
            // parties holds a stolen copy; revoke the whole family.
            crate::token::revoke_grant_and_notify(store, &grant_id, ctx).await?;
            return Err(Error::RefreshTokenReused);
        }
    };
    // A public client's family not bound yet (its first tokens came without a proof) is
    // bound to the key it proves now.
    super::tokens_for_grant::bind_to_dpop_key(store, client, &grant, ctx).await?;
    let refresh_token = Some(new_token);
    let issue_args = Issue {
        client,
        grant: &grant,
        scope: &scope,
        audience: &audience,
        refresh_token,
        nonce: None,
        jti,
        record_jti: false,
    };
    issue(store, ctx, issue_args).await
}
