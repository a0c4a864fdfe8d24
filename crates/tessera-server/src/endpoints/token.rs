//! The token endpoint (RFC 6749 §3.2): parse the form, find the grant, authenticate the
//! client, let the grant's handler decide and mint.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Error;
use tessera_core::client_auth::presented_credentials;
use tessera_core::grants::ensure_grant_allowed;
use tessera_core::params::Params;
use tessera_core::token::IssueContext;

use crate::audit::{self, AuditEvent};
use crate::client_authentication::authenticate_client;
use crate::oauth_error::{OAuthError, Refusal, error_response, no_store};
use crate::state::AppState;
use crate::web::SourceAddr;

/// Largest form body accepted at the token endpoint.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

pub async fn token(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match read_form(&headers, body).await {
        Ok(params) => params,
        Err(response) => return response,
    };
    match issue(&state, &headers, &params, &source).await {
        Ok(response) => response,
        Err(refusal) => {
            let grant_type = grant_label(&params);
            let reason = refusal.code();
            metrics::counter!("tessera_token_requests_total", "grant_type" => grant_type, "outcome" => reason).increment(1);
            audit::emit(
                &state,
                AuditEvent {
                    event: "token_refused".into(),
                    outcome: "refused".into(),
                    client_id: presented_client_id(&headers, &params),
                    grant_type: Some(grant_type.into()),
                    reason: Some(reason.into()),
                    ..Default::default()
                },
            );
            refusal.into_response()
        }
    }
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    source: &SourceAddr,
) -> Result<Response, Refusal> {
    let inner = &state.0;
    let grant_type = params.require("grant_type")?;
    let handler = inner.grants.find(grant_type)?;
    let client = authenticate_client(state, headers, params, source).await?;
    ensure_grant_allowed(&client, handler.grant_type())?;
    let keys = inner.keys.snapshot();
    let ctx = IssueContext {
        issuer: &inner.settings.issuer,
        keys: &keys,
        policy: &inner.settings.policy,
        now: inner.clock.now(),
    };
    let token = handler.handle(&client, params, ctx).await?;
    let grant = handler.grant_type().as_str();
    metrics::counter!("tessera_token_requests_total", "grant_type" => grant, "outcome" => "issued")
        .increment(1);
    audit::emit(
        state,
        AuditEvent {
            event: "token_issued".into(),
            outcome: "issued".into(),
            client_id: Some(client.client().client_id.to_string()),
            sub: Some(token.sub.clone()),
            grant_type: Some(grant.into()),
            jti: Some(token.jti.clone()),
            ..Default::default()
        },
    );
    let mut response = axum::Json(token).into_response();
    no_store(&mut response);
    Ok(response)
}

/// The client_id a refused request claimed, for the audit log (it may not exist).
fn presented_client_id(headers: &HeaderMap, params: &Params) -> Option<String> {
    presented_credentials(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()), params)
        .ok()
        .map(|p| p.client_id().to_string())
}

/// The metric label for a refused request: only known grant names, so that a caller cannot
/// grow the label set.
fn grant_label(params: &Params) -> &'static str {
    params
        .get("grant_type")
        .and_then(tessera_core::grant_type::GrantType::parse)
        .map_or("other", |g| g.as_str())
}

/// Reads an `application/x-www-form-urlencoded` body (RFC 6749 §3.2) of bounded size.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthError(Error::MalformedRequest(
            "the request body must be application/x-www-form-urlencoded (RFC 6749 §3.2)".into(),
        ))
        .into_response());
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            Some(&format!("the request body exceeds {MAX_FORM_BYTES} bytes")),
        )
    })?;
    Params::parse_form(&bytes).map_err(|e| OAuthError(e).into_response())
}
