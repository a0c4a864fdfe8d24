//! The device authorization request (RFC 8628 §3.1–3.2) and user codes.

use serde::Serialize;

use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::grants::ensure_grant_allowed;
use crate::issuer::Issuer;
use crate::params::Params;
use crate::resource::requested_audience;
use crate::scope::granted_scope;
use crate::secret::{Secret, SecretHash, random_bytes};
use crate::store::{DeviceAuthorization, DeviceState};
use crate::token::TokenPolicy;

/// RFC 8628 §6.1: an alphabet without vowels (no words) and without look-alikes (0/O, 1/I/L).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Eight characters: 20^8 ≈ 2.6 × 10^10 codes, guessed only at the throttled `/device` page.
pub const USER_CODE_LEN: usize = 8;

/// A new user code, shown as `XXXX-XXXX`.
pub fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN + 1);
    while code.len() < USER_CODE_LEN + 1 {
        for byte in random_bytes::<16>() {
            // Rejection sampling keeps every character equally likely (240 = 12 × 20).
            if byte < 240 && code.len() < USER_CODE_LEN + 1 {
                if code.len() == 4 {
                    code.push('-');
                }
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte % 20)]));
            }
        }
    }
    code
}

/// Normalizes what a user typed (RFC 8628 §6.1: case- and dash-insensitive, spaces ignored);
/// `None` if it cannot be a user code.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// The stored form of a user code.
pub fn user_code_hash(normalized: &str) -> SecretHash {
    SecretHash::of(normalized.as_bytes())
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Starts a device authorization for an authenticated client: the response, and the record
/// to store (only hashes of both codes).
pub fn start(
    client: &AuthenticatedClient,
    params: &Params,
    issuer: &Issuer,
    policy: &TokenPolicy,
    now: i64,
) -> Result<(DeviceAuthorizationResponse, DeviceAuthorization)> {
    ensure_grant_allowed(client, GrantType::DeviceCode)?;
    let client = client.client();
    let scope = granted_scope(params.get("scope"), &client.scope, &client.default_scope)?;
    let audience = requested_audience(params, &client.audience)?;
    let device_code = Secret::generate();
    let user_code = new_user_code();
    let normalized = normalize_user_code(&user_code).ok_or_else(|| {
        Error::Internal(crate::InternalError::new("user code", "not normalizable"))
    })?;
    let record = DeviceAuthorization {
        device_code_hash: device_code.hash(),
        user_code_hash: user_code_hash(&normalized),
        client_id: client.client_id.clone(),
        scope,
        audience,
        state: DeviceState::Pending,
        interval: policy.device_poll_interval,
        last_polled_at: None,
        created_at: now,
        expires_at: now + policy.device_code_ttl,
    };
    let verification_uri = issuer.endpoint("/device");
    let response = DeviceAuthorizationResponse {
        device_code: device_code.expose().to_owned(),
        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
        user_code,
        verification_uri,
        expires_in: policy.device_code_ttl,
        interval: policy.device_poll_interval,
    };
    Ok((response, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8628_6_1_user_codes_use_the_unambiguous_alphabet_and_the_dash_form() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            let normalized = normalize_user_code(&code).unwrap();
            assert!(normalized.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        }
        assert_ne!(new_user_code(), new_user_code());
    }

    #[test]
    fn rfc8628_6_1_user_code_entry_is_case_and_dash_insensitive() {
        assert_eq!(normalize_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code("BCDFGHJ"), None);
        assert_eq!(normalize_user_code("ABCD-EFGH"), None, "vowels are not in the alphabet");
    }
}
