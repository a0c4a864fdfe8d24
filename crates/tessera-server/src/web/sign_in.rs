//! Signing in on the server's own pages, shared by the authorization flow (`POST /login`) and
//! the device flow (`POST /device/login`): throttling, the Argon2id check, a new session.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tessera_core::Error;
use tessera_core::secret::{Secret, SecretHash, random_id};
use tessera_core::store::{Session, SessionStore, UserStore};
use tessera_core::user::UNKNOWN_USER_PASSWORD_HASH;

use crate::audit::{self, AuditEvent};
use crate::password_checks::Slot;
use crate::state::AppState;
use crate::web::cookies::PageCookie;
use crate::web::pages;
use crate::web::throttle::admit_sign_in;

/// The outcome of a sign-in attempt.
pub enum SignIn {
    /// A new session, and the `Set-Cookie` value that carries it.
    Signed(Session, HeaderValue),
    /// Wrong username or password (one answer for both: no user enumeration).
    Refused,
    /// Held back, with a page carrying `Retry-After`: over the attempt limit (`429`), or every
    /// place in the password-check queue is taken (`503`).
    Throttled(Response),
}

/// `Retry-After` when the password-check queue is full: checks take tens of milliseconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The message shown for a refused sign-in.
pub const REFUSED_MESSAGE: &str = "The username or password is incorrect.";

/// Attempts a sign-in from `source`. A success ends the browser's previous session (no
/// session fixation).
pub async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    username: &str,
    password: Secret,
    source: &str,
) -> Result<SignIn, Error> {
    // Issue 17 finding 4: a place in the password-check queue first, so that a flood of
    // guesses is answered at once instead of queueing without bound.
    let Ok(slot) = state.0.password_checks.reserve() else {
        let mut response = pages::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too many sign-ins are being checked right now. Try again in a moment.",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECS));
        return Ok(SignIn::Throttled(response));
    };
    let limiter = &state.0.rate_limiter;
    let attempt =
        match admit_sign_in(limiter, state.0.settings.login_limits, username, source).await {
            Ok(attempt) => attempt,
            Err(denied) => {
                return Ok(SignIn::Throttled(pages::too_many_attempts(
                    "Too many failed sign-in attempts. Wait a moment and try again.",
                    denied.retry_after_secs(),
                )));
            }
        };
    let user = state.store().find_user_by_username(username).await?;
    let matched =
        check_password(state, slot, user.as_ref().map(|u| u.password_hash.clone()), password).await;
    // A disabled account is refused like a wrong password (no account enumeration).
    let Some(user) = user.filter(|u| matched && !u.disabled) else {
        audit::emit(
            state,
            AuditEvent {
                event: "login_failed".into(),
                outcome: "refused".into(),
                reason: Some("wrong username or password".into()),
                source: Some(source.to_owned()),
                ..Default::default()
            },
        );
        // The attempt stays counted: only failures use up the limits.
        attempt.failed(limiter).await;
        return Ok(SignIn::Refused);
    };
    attempt.succeeded(limiter).await;
    if let Some(old) = PageCookie::Session.get(state.settings(), headers) {
        state.store().delete_session(&SecretHash::of(old.as_bytes())).await?;
    }
    let now = state.0.clock.now();
    let secret = Secret::generate();
    let session = Session {
        id_hash: secret.hash(),
        sid: random_id::<16>(),
        user_id: user.id.clone(),
        auth_time: now,
        expires_at: now + state.settings().session_ttl,
    };
    state.store().create_session(&session).await?;
    audit::emit(
        state,
        AuditEvent {
            event: "login".into(),
            outcome: "success".into(),
            sub: Some(user.id.clone()),
            source: Some(source.to_owned()),
            ..Default::default()
        },
    );
    let settings = state.settings();
    let cookie = PageCookie::Session.set(settings, secret.expose(), settings.session_ttl);
    Ok(SignIn::Signed(session, cookie))
}

/// Verifies a password off the async executor, on the password-check threads (Argon2id costs
/// tens of milliseconds by design). For an unknown user a dummy hash is checked, so that timing
/// does not reveal which usernames exist.
async fn check_password(
    state: &AppState,
    slot: Slot,
    stored: Option<String>,
    password: Secret,
) -> bool {
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| UNKNOWN_USER_PASSWORD_HASH.to_owned());
    let matched = state.0.password_checks.verify(slot, password, hash).await;
    known && matched
}

/// The browser's live session, if any.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, Error> {
    let Some(cookie) = PageCookie::Session.get(state.settings(), headers) else { return Ok(None) };
    let hash = SecretHash::of(cookie.as_bytes());
    Ok(state.store().find_session(&hash, state.0.clock.now()).await?)
}
