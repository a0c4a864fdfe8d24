//! `/par`: pushed authorization requests (RFC 9126 §2). The client authenticates as at the
//! token endpoint; the request is validated as `/authorize` would, and stored (by the hash of
//! its `request_uri`) for one use within a minute.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::par;
use tessera_core::store::PushedRequestStore;
use tessera_http::no_store;

use crate::client_authentication::authenticate_client;
use crate::oauth_error::OAuthError;
use crate::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::web::SourceAddr;

pub async fn push(
    State(state): State<AppState>,
    source: SourceAddr,
    certificate: Option<crate::tls::PresentedCertificate>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    // RFC 9126 §2: "the client MUST authenticate … using the same rules as for the token
    // endpoint".
    let client =
        authenticate_client(&state, &headers, &params, &source, certificate.as_ref()).await?;
    let pushed = par::push(&client, &params, state.0.clock.now())?;
    state.store().insert_pushed_request(&pushed.record).await.map_err(tessera_core::Error::from)?;
    // RFC 9126 §2.2: 201 with the request_uri and its lifetime.
    let body = serde_json::json!({
        "request_uri": pushed.request_uri,
        "expires_in": pushed.expires_in,
    });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    no_store(&mut response);
    Ok(response)
}
