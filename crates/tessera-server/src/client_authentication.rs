//! Client authentication for the endpoints that require it (`/token`, `/revoke`,
//! `/introspect`, `/device_authorization`): secrets through `tessera-core`, `private_key_jwt`
//! assertions with the client's keys and the replay record, and two limits (R4.2, issue 17
//! finding 5):
//!
//! - **failures per source**: a source whose authentications failed too often (wrong secrets,
//!   unknown or random client_ids, bad assertions) is answered `429` before any lookup, so that
//!   random client_ids cannot make every request a database query. Only failures count.
//! - **requests per client**, counted only once the client is authenticated, so that nobody
//!   can spend a real client's budget by presenting its client_id with a wrong secret.

use axum::http::{HeaderMap, header};
use tessera_core::client::AuthMethod;
use tessera_core::client_assertion::{self, AssertionError};
use tessera_core::client_auth::{
    AuthenticatedClient, PresentedCredentials, authenticate, authenticate_by_assertion,
    authenticate_by_certificate, presented_credentials,
};
use tessera_core::params::Params;
use tessera_core::store::TokenStore;
use tessera_core::{Error, ErrorCode};

use crate::state::AppState;
use crate::tls::PresentedCertificate;
use crate::web::SourceAddr;

/// Authenticates the client of a request from `source`, which presented `certificate` (RFC
/// 8705 §2) if any.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    source: &SourceAddr,
    certificate: Option<&PresentedCertificate>,
) -> Result<AuthenticatedClient, Error> {
    let inner = &state.0;
    let failures_key = source.key_in("client-auth-failures");
    let failure_limit = inner.settings.client_auth_failure_limit;
    inner.rate_limiter.peek(&failures_key, failure_limit).await?;
    match authenticate_presented(state, headers, params, certificate).await {
        Ok(client) => {
            // R4.2: the client's own budget, spent only by requests that are really its own.
            let limit = inner.settings.client_limit(client.client());
            let key = ["client:", client.client().client_id.as_str()].concat();
            inner.rate_limiter.check_throughput(&key, limit).await?;
            Ok(client)
        }
        Err(e) => {
            if e.code() == ErrorCode::InvalidClient {
                // Counted after the fact: the answer to this request is still its own error.
                let _ = inner.rate_limiter.check(&failures_key, failure_limit).await;
            }
            Err(e)
        }
    }
}

/// Checks the presented credentials against the registered client.
async fn authenticate_presented(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    certificate: Option<&PresentedCertificate>,
) -> Result<AuthenticatedClient, Error> {
    let inner = &state.0;
    let presented =
        presented_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), params)?;
    let registered = inner.clients.get(presented.client_id()).await.map_err(Error::from)?;
    // What this request may ask of the client (admin scopes, registered resources); a refusal
    // is answered only once the client authenticated.
    let (registered, refused) = match registered {
        Some(c) => match crate::client_admission::admit(state, c.clone(), params).await {
            Ok(admitted) => (Some(admitted), None),
            Err(e) => (Some(c), Some(e)),
        },
        None => (None, None),
    };
    let refuse_after = |authenticated: AuthenticatedClient| match refused {
        Some(e) => Err(e),
        None => Ok(authenticated),
    };
    if let Some(client) =
        registered.as_ref().filter(|c| c.token_endpoint_auth_method.uses_certificate())
    {
        return authenticate_with_certificate(state, &presented, client.clone(), certificate)
            .await
            .and_then(refuse_after);
    }
    let PresentedCredentials::Assertion { assertion, .. } = presented else {
        return authenticate(presented, registered).and_then(refuse_after);
    };
    let client = registered.ok_or(Error::ClientAuthenticationFailed)?;
    if client.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
        return Err(Error::ClientAuthenticationFailed);
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
        return Err(Error::ClientAssertionRefused("the assertion was already used"));
    }
    authenticate_by_assertion(client, verified).and_then(refuse_after)
}

/// RFC 8705 §2: a `tls_client_auth` client's chain must lead to a configured CA (§2.1); a
/// `self_signed_tls_client_auth` client's key is looked up in its JWKS, fetched again once
/// when it is not there (the client may have rotated its certificate).
async fn authenticate_with_certificate(
    state: &AppState,
    presented: &PresentedCredentials,
    client: std::sync::Arc<tessera_core::client::Client>,
    certificate: Option<&PresentedCertificate>,
) -> Result<AuthenticatedClient, Error> {
    let inner = &state.0;
    let Some(certificate) = certificate else {
        return Err(Error::ClientAuthenticationFailed);
    };
    let der = certificate.der();
    if client.token_endpoint_auth_method == AuthMethod::TlsClientAuth {
        let trusted =
            inner.settings.mtls.client_ca.as_ref().is_some_and(|ca| ca.trusts(&certificate.chain));
        return authenticate_by_certificate(presented, client, Some(der), trusted, None);
    }
    let keys_error = |e: crate::client_keys::KeysError| {
        tracing::info!(client_id = %client.client_id, error = %e, "client keys unavailable");
        Error::ClientAuthenticationFailed
    };
    let keys = inner.client_keys.for_client(&client, false).await.map_err(keys_error)?;
    if tessera_core::mtls::key_is_registered(der, &keys) || client.jwks_uri.is_none() {
        return authenticate_by_certificate(presented, client, Some(der), false, Some(&keys));
    }
    let keys = inner.client_keys.for_client(&client, true).await.map_err(keys_error)?;
    authenticate_by_certificate(presented, client, Some(der), false, Some(&keys))
}
