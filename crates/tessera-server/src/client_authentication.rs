//! Client authentication for the endpoints that require it (`/token`, `/revoke`,
//! `/introspect`): secrets through `tessera-core`, `private_key_jwt` assertions with the
//! client's keys and the replay record, and the per-client rate limit.

use axum::http::{HeaderMap, header};
use tessera_core::Error;
use tessera_core::client::AuthMethod;
use tessera_core::client_assertion::{self, AssertionError};
use tessera_core::client_auth::{
    AuthenticatedClient, PresentedCredentials, authenticate, authenticate_by_assertion,
    presented_credentials,
};
use tessera_core::params::Params;
use tessera_core::store::TokenStore;

use crate::oauth_error::Refusal;
use crate::state::AppState;

/// Authenticates the client of a request.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, Refusal> {
    let inner = &state.0;
    let presented =
        presented_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), params)?;
    let registered = inner.clients.get(presented.client_id()).await.map_err(Error::from)?;
    // R4.2: the limit applies per presented client_id, before any secret is checked, so that
    // guessing secrets is throttled too.
    let limit = inner.settings.client_limit(registered.as_deref());
    inner
        .rate_limiter
        .check_throughput(&format!("client:{}", presented.client_id()), limit)
        .await?;
    let PresentedCredentials::Assertion { assertion, .. } = presented else {
        return Ok(authenticate(presented, registered)?);
    };
    let client = registered.ok_or(Error::ClientAuthenticationFailed)?;
    if client.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
        return Err(Error::ClientAuthenticationFailed.into());
    }
    let issuer = inner.settings.issuer.as_str();
    let now = inner.clock.now();
    let keys_error = |e: crate::client_keys::KeysError| {
        tracing::info!(client_id = %client.client_id, error = %e, "client keys unavailable");
        Error::ClientAuthenticationFailed
    };
    let mut keys = inner.client_keys.for_client(&client, false).await.map_err(keys_error)?;
    let mut verified = client_assertion::verify(&assertion, &client, &keys, issuer, now);
    if verified.as_ref().is_err_and(|e| *e == AssertionError::UnknownKey)
        && client.jwks_uri.is_some()
    {
        // The client may have rotated its keys: fetch its JWKS again (rate-limited in the cache).
        keys = inner.client_keys.for_client(&client, true).await.map_err(keys_error)?;
        verified = client_assertion::verify(&assertion, &client, &keys, issuer, now);
    }
    let verified = verified.map_err(Error::from)?;
    // RFC 7523 §3 item 7: a `jti` is accepted once.
    if !inner
        .store
        .record_assertion(&client.client_id, verified.jti(), verified.expires_at())
        .await
        .map_err(Error::from)?
    {
        return Err(Error::ClientAssertionRefused("the assertion was already used").into());
    }
    Ok(authenticate_by_assertion(client, verified)?)
}
