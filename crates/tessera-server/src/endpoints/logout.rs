//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3) at `/logout`.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::client_id::ClientId;
use tessera_core::params::Params;
use tessera_core::secret::SecretHash;
use tessera_core::store::SessionStore;
use tessera_jose::{Expiry, IdTokenClaims, Typ};

use crate::audit::{self, AuditEvent};
use crate::endpoints::token::read_form;
use crate::state::AppState;
use crate::web::cookies::PageCookie;
use crate::web::pages;

fn refuse(message: &str) -> Response {
    pages::message(StatusCode::BAD_REQUEST, "Sign-out request refused", message)
}

/// `GET` or `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let params = if method == Method::POST {
        match read_form(&headers, body).await {
            Ok(p) => p,
            Err(response) => return response,
        }
    } else {
        match Params::parse_form(query.unwrap_or_default().as_bytes()) {
            Ok(p) => p,
            Err(e) => return refuse(&e.to_string()),
        }
    };
    let inner = &state.0;
    // The client: from the ID token hint's audience (verified; it may have expired), or
    // from client_id; both must agree when both are given.
    let mut client_id = params.get("client_id").map(str::to_owned);
    if let Some(hint) = params.get("id_token_hint") {
        let keys = inner.keys.snapshot();
        let verified = keys.verifier().verify::<IdTokenClaims>(
            hint,
            Typ::Exactly("JWT"),
            inner.settings.issuer.as_str(),
            inner.clock.now(),
            Expiry::Ignore,
        );
        // Our ID tokens have one audience, the client (OIDC Core §2).
        let hinted = verified.map(|v| v.into_claims().aud.into_vec());
        match hinted.as_deref() {
            Ok([aud]) if client_id.as_ref().is_none_or(|c| c == aud) => {
                client_id = Some(aud.clone());
            }
            Ok(_) => return refuse("client_id does not match the id_token_hint."),
            Err(_) => return refuse("The id_token_hint is not an ID token issued here."),
        }
    }
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(Ok(id)) = client_id.as_deref().map(ClientId::parse) else {
                return refuse("post_logout_redirect_uri needs an id_token_hint or client_id.");
            };
            let client = match inner.clients.get(&id).await {
                Ok(Some(c)) => c,
                Ok(None) => return refuse("The application is not registered."),
                Err(e) => {
                    tracing::error!(error = %e, "loading a client failed");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            };
            // Exact match only (invariant 3 holds for logout too).
            if !client.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri) {
                return refuse(
                    "The post_logout_redirect_uri is not registered for this application.",
                );
            }
            Some(uri.to_owned())
        }
    };
    if let Some(cookie) = PageCookie::Session.get(state.settings(), &headers)
        && let Err(e) = state.store().delete_session(&SecretHash::of(cookie.as_bytes())).await
    {
        tracing::error!(error = %e, "ending a session failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    audit::emit(
        &state,
        AuditEvent {
            event: "logout".into(),
            outcome: "success".into(),
            client_id: client_id.clone(),
            ..Default::default()
        },
    );
    let mut response = match redirect {
        Some(uri) => {
            let location = match params.get("state") {
                Some(s) => {
                    let sep = if uri.contains('?') { '&' } else { '?' };
                    let q: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", s)
                        .finish();
                    format!("{uri}{sep}{q}")
                }
                None => uri,
            };
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => pages::message(
            StatusCode::OK,
            "Signed out",
            "You are signed out. You can close this window.",
        ),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        PageCookie::Session.clear(state.settings()),
    );
    response
}
