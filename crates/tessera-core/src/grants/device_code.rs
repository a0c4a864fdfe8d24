//! The device authorization grant at the token endpoint (RFC 8628 §3.4–3.5).

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::secret::SecretHash;
use crate::store::{DevicePoll, DeviceStore, Grant, GrantStore, TokenStore};
use crate::token::{IssueContext, TokenResponse, new_jti};

use super::tokens_for_grant::{Issue, issue, new_refresh_token};
use super::{GrantHandler, HandlerFuture};

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
        params: &'a Params,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(redeem(&self.store, client, params, ctx))
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
    let approved = match store.poll_device_authorization(&hash, &client.client_id, ctx.now).await? {
        DevicePoll::Approved(authorization) => authorization,
        DevicePoll::Pending => return Err(Error::AuthorizationPending),
        DevicePoll::SlowDown => return Err(Error::SlowDown),
        DevicePoll::Denied => return Err(Error::AccessDenied),
        DevicePoll::Expired => return Err(Error::ExpiredToken),
        DevicePoll::Unknown => {
            return Err(Error::InvalidGrant("the device code is invalid".into()));
        }
        // RFC 8628 §3.5 / invariant 1: a device code is redeemed once.
        DevicePoll::AlreadyRedeemed => {
            return Err(Error::InvalidGrant("the device code was already redeemed".into()));
        }
    };
    let (Some(user_id), Some(auth_time)) = (approved.user_id.clone(), approved.auth_time) else {
        return Err(Error::Internal(crate::InternalError::new(
            "device authorization",
            "approved without a user",
        )));
    };
    let grant = Grant {
        id: crate::secret::random_id::<16>(),
        client_id: approved.client_id.clone(),
        user_id,
        scope: approved.scope.clone(),
        auth_time,
        sid: approved.sid.clone(),
        audience: approved.audience.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + ctx.policy.refresh_token_absolute_ttl,
    };
    store.insert_grant(&grant).await?;
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
