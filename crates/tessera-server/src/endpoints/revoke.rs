//! `/revoke`: token revocation (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::revocation::{Revoked, revoke};
use tessera_core::store::GrantStore;
use tessera_http::no_store;

use crate::audit::{self, AuditEvent};
use crate::client_authentication::authenticate_client;
use crate::oauth_error::OAuthError;
use crate::oauth_form::OAuthForm;
use crate::revocation_list::RevocationList;
use crate::state::AppState;
use crate::web::SourceAddr;

pub async fn revoke_token(
    State(state): State<AppState>,
    source: SourceAddr,
    certificate: Option<crate::tls::PresentedCertificate>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    // RFC 7009 §2.1: the client authenticates as at the token endpoint.
    let client =
        authenticate_client(&state, &headers, &params, &source, certificate.as_ref()).await?;
    let token = params.require("token")?;
    let inner = &state.0;
    let keys = inner.keys.snapshot();
    let revoked = revoke(
        &inner.store,
        &keys,
        inner.settings.issuer.as_str(),
        &client,
        token,
        params.get("token_type_hint"),
        inner.clock.now(),
    )
    .await?;
    if let Some(list) = &inner.revocation_list {
        publish(&state, list, &revoked).await;
    }
    let (jti, reason) = match &revoked {
        Revoked::AccessToken { jti, .. } => (Some(jti.clone()), "access token"),
        Revoked::Grant { .. } => (None, "refresh token and its grant"),
        Revoked::Nothing => (None, "unknown, expired or not the client's"),
    };
    audit::emit(
        &state,
        AuditEvent {
            event: "token_revoked".into(),
            outcome: if revoked == Revoked::Nothing { "ignored" } else { "revoked" }.into(),
            client_id: Some(client.client().client_id.to_string()),
            jti,
            reason: Some(reason.into()),
            ..Default::default()
        },
    );
    // RFC 7009 §2.2: 200 whether or not anything was revoked.
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}

/// Publishes what was revoked to the revocation list: the token's `jti`, or the `jti`s of the
/// access tokens recorded under the revoked grant.
async fn publish(state: &AppState, list: &RevocationList, revoked: &Revoked) {
    let now = state.0.clock.now();
    let jtis = match revoked {
        Revoked::AccessToken { jti, expires_at } => vec![(jti.clone(), *expires_at)],
        Revoked::Grant { grant_id } => match state.0.store.grant_access_tokens(grant_id, now).await
        {
            Ok(jtis) => jtis,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the revoked grant's access tokens");
                return;
            }
        },
        Revoked::Nothing => return,
    };
    list.publish(&jtis, now).await;
}
