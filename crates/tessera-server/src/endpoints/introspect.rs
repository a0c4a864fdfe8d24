//! `/introspect`: token introspection (RFC 7662) for authenticated, authorized callers.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::introspection::introspect;
use tessera_http::no_store;

use crate::client_authentication::authenticate_client;
use crate::oauth_error::OAuthError;
use crate::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::web::SourceAddr;

pub async fn introspect_token(
    State(state): State<AppState>,
    source: SourceAddr,
    certificate: Option<crate::tls::PresentedCertificate>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    // RFC 7662 §2.1: the caller must authenticate, and be allowed to introspect. A public
    // client authenticates nothing (RFC 7662 §4), even if its record says it may introspect.
    let client =
        authenticate_client(&state, &headers, &params, &source, certificate.as_ref()).await?;
    if !client.client().introspection || client.client().is_public() {
        return Err(Error::IntrospectionNotAllowed.into());
    }
    let token = params.require("token")?;
    let inner = &state.0;
    let keys = inner.keys.snapshot();
    let answer = introspect(
        &inner.store,
        &keys,
        inner.settings.issuer.as_str(),
        client.client(),
        token,
        params.get("token_type_hint"),
        inner.clock.now(),
    )
    .await?;
    let mut response = axum::Json(answer).into_response();
    no_store(&mut response);
    Ok(response)
}
