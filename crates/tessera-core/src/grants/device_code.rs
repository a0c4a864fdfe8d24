//! The device authorization grant at the token endpoint (RFC 8628 §3.4–3.5).

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::secret::{SecretHash, random_id};
use crate::store::{
    DeviceApproval, DeviceAuthorization, DevicePoll, DeviceStore, Grant, GrantStore, TokenStore,
};
use crate::token::{IssueContext, TokenResponse, new_jti};

use super::tokens_for_grant::{Issue, issue, new_refresh_token};
use super::{GrantHandler, HandlerFuture, TokenRequest};

/// Redeems an approved device code once; answers the polls before that.
pub struct DeviceCodeGrant<S> {
    store: S,
}

impl<S> DeviceCodeGrant<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: DeviceStore + GrantStore + TokenStore + 'static> GrantHandler for DeviceCodeGrant<S> {
    fn grant_type(&self) -> GrantType {
        GrantType::DeviceCode
    }

    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(redeem(&self.store, client, &request.params, ctx))
    }
}

async fn redeem<S: DeviceStore + GrantStore + TokenStore>(
    store: &S,
    client: &AuthenticatedClient,
    params: &Params,
    ctx: IssueContext<'_>,
) -> Result<TokenResponse> {
    let device_code = params.require("device_code")?;
    let client = client.client();
    let hash = SecretHash::of(device_code.as_bytes());
    // The grant is stored in the poll's transaction, with the redemption that names it.
    let grant_of = |authorization: &DeviceAuthorization, approval: &DeviceApproval| Grant {
        id: random_id::<16>(),
        client_id: authorization.client_id.clone(),
        user_id: approval.user_id.clone(),
        scope: authorization.scope.clone(),
        auth_time: approval.auth_time,
        sid: Some(approval.sid.clone()),
        audience: authorization.audience.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + ctx.policy.refresh_token_absolute_ttl,
        dpop_jkt: None,
    };
    let grant =
        match store.poll_device_authorization(&hash, &client.client_id, ctx.now, grant_of).await? {
            DevicePoll::Approved { grant, .. } => grant,
            DevicePoll::Pending => return Err(Error::AuthorizationPending),
            DevicePoll::SlowDown => return Err(Error::SlowDown),
            DevicePoll::Denied => return Err(Error::AccessDenied),
            DevicePoll::Expired => return Err(Error::ExpiredToken),
            DevicePoll::Unknown => {
                return Err(Error::InvalidGrant("the device code is invalid".into()));
            }
            // RFC 8628 §3.5 / invariant 1: a device code is redeemed once. Presented again it
            // has leaked, like a replayed authorization code (RFC 6749 §4.1.2): everything
            // issued from it is revoked.
            DevicePoll::AlreadyRedeemed { grant_id } => {
                crate::token::revoke_grant_and_notify(store, &grant_id, ctx).await?;
                return Err(Error::InvalidGrant(
                    "the device code was already redeemed; every token issued from it has been \
                     revoked"
                        .into(),
                ));
            }
        };
    let refresh_token = new_refresh_token(store, client, &grant, ctx).await?;
    let args = Issue {
        client,
        grant: &grant,
        scope: &grant.scope,
        audience: &grant.audience,
        refresh_token,
        nonce: None,
        jti: new_jti(),
        record_jti: true,
    };
    issue(store, ctx, args).await
}
