//! `/admin/v1/keys`: the signing keys and their schedule, and rotation (`admin:keys`; the
//! same `key_ring::rotate` as `tessera keys rotate`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::admin_scope::KEYS;
use tessera_core::keys::SigningAlg;
use tessera_core::store::SigningKeyStore;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{AdminError, ErrorBody};
use super::views::KeyView;
use super::{audit_with, body};
use crate::state::AppState;

/// Which keys to rotate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// `RS256`, `ES256` or `EdDSA`; absent: every algorithm.
    pub alg: Option<String>,
}

/// The published keys: `next`, `active` and `retired` ones.
#[utoipa::path(operation_id = "listKeys", get, path = "/admin/v1/keys", tag = "keys",
    security(("tessera" = ["admin:keys"])),
    responses((status = 200, description = "Done", body = [KeyView]), (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody),
        (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, AdminError> {
    caller.require(KEYS)?;
    let now = state.0.clock.now();
    let keys = state.store().published_keys(now).await?;
    Ok(Json(keys.iter().map(|k| KeyView::of(k, now)).collect::<Vec<_>>()).into_response())
}

/// Rotates: each new key is published now and signs after `key_publish_ahead_seconds`; the
/// old one stays published until its tokens expire. Answers the new keys.
#[utoipa::path(operation_id = "rotateKeys", post, path = "/admin/v1/keys/rotate", tag = "keys", request_body = KeyRotation,
    security(("tessera" = ["admin:keys"])),
    responses((status = 200, description = "Done", body = [KeyView]), (status = 400, description = "Bad input: `invalid_request`", body = ErrorBody),
        (status = 401, description = "No valid token: `invalid_token`", body = ErrorBody), (status = 403, description = "The token lacks the route's admin scope: `insufficient_scope`", body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    rotation: Result<Json<KeyRotation>, JsonRejection>,
) -> Result<Response, AdminError> {
    caller.require(KEYS)?;
    let rotation = body(rotation)?;
    let algs = match rotation.alg.as_deref() {
        Some(a) => vec![SigningAlg::parse(a).ok_or_else(|| {
            AdminError::Invalid(format!("unknown algorithm `{a}`; use RS256, ES256 or EdDSA"))
        })?],
        None => SigningAlg::ALL.to_vec(),
    };
    let inner = &state.0;
    let settings = &inner.settings;
    let now = inner.clock.now();
    let mut rotated = Vec::new();
    for alg in algs {
        let key = crate::key_ring::rotate(
            &inner.store,
            &settings.key_encryption_key,
            alg,
            now,
            settings.key_publish_ahead,
            settings.max_signed_token_lifetime(),
        )
        .await?;
        audit_with(&state, &caller, "admin_key_rotated", None, None, Some(&key.kid));
        rotated.push(KeyView::of(&key, now));
    }
    state.reload_keys().await?;
    Ok(Json(rotated).into_response())
}
