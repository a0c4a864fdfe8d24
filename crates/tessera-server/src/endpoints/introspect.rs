//! `/introspect`: token introspection (RFC 7662) for authenticated, authorized callers.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::introspection::introspect;

use crate::client_authentication::authenticate_client;
use crate::endpoints::token::read_form;
use crate::oauth_error::{Refusal, no_store};
use crate::state::AppState;
use crate::web::SourceAddr;

pub async fn introspect_token(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match read_form(&headers, body).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let outcome = async {
        // RFC 7662 §2.1: the caller must authenticate, and be allowed to introspect.
        let client = authenticate_client(&state, &headers, &params, &source).await?;
        if !client.client().introspection {
            return Err(Refusal::OAuth(Error::IntrospectionNotAllowed));
        }
        let token = params.require("token").map_err(Refusal::from)?;
        let inner = &state.0;
        let keys = inner.keys.snapshot();
        let answer = introspect(
            &inner.store,
            &keys,
            inner.settings.issuer.as_str(),
            token,
            params.get("token_type_hint"),
            inner.clock.now(),
        )
        .await?;
        Ok(answer)
    };
    match outcome.await {
        Ok(answer) => {
            let mut response = axum::Json(answer).into_response();
            no_store(&mut response);
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}
