//! The device authorization grant (RFC 8628) for clients without a browser: [`start`] asks
//! for a user code, [`poll`] waits at the token endpoint until the user decides.

use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_http::ErrorCode;

use crate::client_auth::ClientCredentials;
use crate::error::Error;
use crate::http::Http;
use crate::tokens::TokenResponse;

/// RFC 8628 §3.4: the device code grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the polling interval when the server names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for this and every later request.
const SLOW_DOWN_STEP: u64 = 5;
/// Consecutive network failures tolerated while polling (with exponential backoff).
const MAX_POLL_FAILURES: u32 = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
    started: Instant,
}

impl DeviceAuthorization {
    fn parse(body: &Value) -> Result<Self, Error> {
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let missing = |what| Error::InvalidTokenResponse(what);
        Ok(Self {
            device_code: text("device_code").ok_or(missing("no device_code"))?,
            user_code: text("user_code").ok_or(missing("no user_code"))?,
            // RFC 8628 §3.2; some servers still say `verification_url`.
            verification_uri: text("verification_uri")
                .or_else(|| text("verification_url"))
                .ok_or(missing("no verification_uri"))?,
            verification_uri_complete: text("verification_uri_complete"),
            expires_in: body
                .get("expires_in")
                .and_then(Value::as_u64)
                .ok_or(missing("no expires_in"))?,
            interval: body
                .get("interval")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_INTERVAL)
                .max(1),
            started: Instant::now(),
        })
    }
}

/// RFC 8628 §3.1: asks `device_authorization_endpoint` for a device and user code.
pub async fn start(
    http: &Http,
    device_authorization_endpoint: &str,
    client_id: &str,
    scope: Option<&str>,
) -> Result<DeviceAuthorization, Error> {
    let mut form = vec![("client_id", client_id)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let reply = http.post_form(device_authorization_endpoint, &form, None).await?;
    if reply.status != 200 {
        return Err(Error::OAuth(reply.oauth_error()));
    }
    DeviceAuthorization::parse(&reply.body)
}

/// What happens while [`poll`] waits, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollEvent {
    /// RFC 8628 §3.5 `slow_down`: the interval is now this many seconds.
    SlowDown { interval: u64 },
    /// The token endpoint could not be reached; polling backs off and goes on.
    Retrying { reason: String },
}

/// What one token request said.
#[derive(Debug)]
enum Poll {
    Tokens(Box<TokenResponse>),
    Pending,
    SlowDown,
}

fn classify(reply: crate::http::Reply) -> Result<Poll, Error> {
    if reply.status == 200 {
        return TokenResponse::from_reply(reply).map(|t| Poll::Tokens(Box::new(t)));
    }
    let error = reply.oauth_error();
    match error.code {
        Some(ErrorCode::AuthorizationPending) => Ok(Poll::Pending),
        Some(ErrorCode::SlowDown) => Ok(Poll::SlowDown),
        // access_denied, expired_token and every other code end the flow (§3.5).
        _ => Err(Error::OAuth(error)),
    }
}

/// Polls the token endpoint every `interval` seconds (RFC 8628 §3.4–3.5) until the user
/// approves (the tokens), denies (`access_denied`), or the code expires (`expired_token`).
pub async fn poll(
    http: &Http,
    token_endpoint: &str,
    client: &ClientCredentials,
    issuer: &str,
    device: &DeviceAuthorization,
    mut on_event: impl FnMut(PollEvent),
) -> Result<TokenResponse, Error> {
    let deadline = device.started + Duration::from_secs(device.expires_in);
    let mut interval = device.interval;
    let mut wait = interval;
    let mut failures = 0;
    let form = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device.device_code.as_str())];
    loop {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        // The server answers `expired_token` once the code is stale; should it not, stop anyway.
        if Instant::now() > deadline + Duration::from_secs(30) {
            return Err(Error::OAuth(crate::error::OAuthError {
                status: 400,
                code: Some(ErrorCode::ExpiredToken),
                raw_code: ErrorCode::ExpiredToken.as_str().into(),
                description: Some("the device code expired before it was approved".into()),
            }));
        }
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let answer = client
            .token_request_reply(http, token_endpoint, issuer, &form, now)
            .await
            .and_then(|reply| match reply.status {
                500.. => Err(Error::OAuth(reply.oauth_error())),
                _ => Ok(reply),
            });
        let reply = match answer {
            Ok(reply) => reply,
            // RFC 8628 §3.5: back off on connection trouble; give up after a few tries.
            Err(e) if e.is_transient() => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Err(e);
                }
                on_event(PollEvent::Retrying { reason: e.to_string() });
                wait = (wait * 2).min(60);
                continue;
            }
            Err(e) => return Err(e),
        };
        failures = 0;
        match classify(reply)? {
            Poll::Tokens(tokens) => return Ok(*tokens),
            Poll::Pending => wait = interval,
            Poll::SlowDown => {
                interval += SLOW_DOWN_STEP;
                wait = interval;
                on_event(PollEvent::SlowDown { interval });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::Reply;

    fn reply(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    #[test]
    fn rfc8628_3_5_token_endpoint_answers_are_classified() {
        let pending = classify(reply(400, json!({"error": "authorization_pending"})));
        assert!(matches!(pending, Ok(Poll::Pending)));
        assert!(matches!(classify(reply(400, json!({"error": "slow_down"}))), Ok(Poll::SlowDown)));
        for end in ["access_denied", "expired_token", "invalid_client"] {
            let e = classify(reply(400, json!({"error": end}))).unwrap_err();
            assert_eq!(e.oauth_code().map(ErrorCode::as_str), Some(end));
        }
        assert!(classify(reply(200, json!({"token_type": "Bearer"}))).is_err());
        let ok = classify(reply(200, json!({"access_token": "a", "token_type": "Bearer"})));
        assert!(matches!(ok, Ok(Poll::Tokens(t)) if t.access_token.expose() == "a"));
    }

    #[test]
    fn rfc8628_3_2_device_start_defaults_the_interval_to_5() {
        let body = json!({"device_code": "d", "user_code": "BCDF-GHJK", "verification_uri": "https://i/device", "expires_in": 600});
        let start = DeviceAuthorization::parse(&body).unwrap();
        assert_eq!(start.interval, 5);
        assert_eq!(start.verification_uri_complete, None);
        assert!(DeviceAuthorization::parse(&json!({"user_code": "x"})).is_err());
    }
}
