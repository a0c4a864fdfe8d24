//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3) at `/logout`.
//!
//! The session ends at once only when the request shows that it comes from the user's relying
//! party: an `id_token_hint` issued here, for the signed-in user (its `sub`, and its `sid` when
//! it has one, are the session's). Otherwise the user is asked first (§2: the OP SHOULD ask
//! the End-User whether to log out), on a page whose form the CSRF check protects, so that a
//! link or an image on another site cannot sign the user out.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::client::Client;
use tessera_core::client_id::ClientId;
use tessera_core::params::Params;
use tessera_core::secret::SecretHash;
use tessera_core::store::{Session, SessionStore};
use tessera_jose::{Audience, Claims, Expiry, Typ};

use crate::audit::{self, AuditEvent};
use crate::oauth_form::read_form;
use crate::state::AppState;
use crate::web::cookies::PageCookie;
use crate::web::forms::PageForm;
use crate::web::pages::{self, LogoutPage};
use crate::web::sign_in::current_session;
use crate::web::{csrf, redirect};

/// The claims of an ID token hint that logout looks at: `IdTokenClaims` and the session's
/// `sid` (OIDC Front-Channel Logout 1.0 §3), which our ID tokens carry.
#[derive(Deserialize)]
struct IdTokenHint {
    iss: String,
    exp: i64,
    aud: Audience,
    sub: String,
    #[serde(default)]
    sid: Option<String>,
}

impl Claims for IdTokenHint {
    fn iss(&self) -> &str {
        &self.iss
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl IdTokenHint {
    /// Whether the hint names this session's user (and this very session, when it has a sid).
    fn is_for(&self, session: &Session) -> bool {
        self.sub == session.user_id && self.sid.as_ref().is_none_or(|sid| *sid == session.sid)
    }
}

/// The field of the confirmation form that says the user chose to sign out.
const CONFIRM_FIELD: &str = "confirm";

/// The parameters the confirmation form carries to its post, where they are checked again.
const CARRIED: [&str; 3] = ["client_id", "post_logout_redirect_uri", "state"];

fn refuse(message: &str) -> Response {
    pages::message(StatusCode::BAD_REQUEST, "Sign-out request refused", message)
}

fn server_fault(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// `GET` or `POST /logout`: from a relying party, or the confirmation form's post.
pub async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let raw = if method == Method::POST {
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
    let settings = state.settings();
    // The user's answer on our confirmation page: accepted only through the CSRF check.
    let confirmed = method == Method::POST && raw.get(CONFIRM_FIELD).is_some();
    let form;
    let params: &Params = if confirmed {
        form = match PageForm::check(settings, &headers, raw) {
            Ok(form) => form,
            Err(refused) => return refused.into_response(),
        };
        &form
    } else {
        &raw
    };
    let inner = &state.0;
    // The client: from the ID token hint's audience (verified; it may have expired), or
    // from client_id; both must agree when both are given.
    let mut client_id = params.get("client_id").map(str::to_owned);
    let mut hint = None;
    if let Some(raw_hint) = params.get("id_token_hint") {
        let keys = inner.keys.snapshot();
        let verified = keys.verifier().verify::<IdTokenHint>(
            raw_hint,
            Typ::Exactly("JWT"),
            settings.issuer.as_str(),
            inner.clock.now(),
            Expiry::Ignore,
        );
        match verified.map(|v| v.into_claims()) {
            Ok(h) => {
                // Our ID tokens have one audience, the client (OIDC Core §2).
                let audience = h.aud.clone().into_vec();
                match audience.as_slice() {
                    [aud] if client_id.as_ref().is_none_or(|c| c == aud) => {
                        client_id = Some(aud.clone());
                        hint = Some(h);
                    }
                    _ => return refuse("client_id does not match the id_token_hint."),
                }
            }
            Err(_) => return refuse("The id_token_hint is not an ID token issued here."),
        }
    }
    let client = match client_id.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => match inner.clients.get(&id).await {
            Ok(client) => client,
            Err(e) => return server_fault("loading a client", e),
        },
        _ => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client) = &client else {
                return refuse(
                    "post_logout_redirect_uri needs the id_token_hint or client_id of a \
                     registered application.",
                );
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
    let session = match current_session(&state, &headers).await {
        Ok(session) => session,
        Err(e) => return server_fault("reading the session", e),
    };
    let proven = match (&session, &hint) {
        // Nothing to end: nothing to ask.
        (None, _) => true,
        (Some(session), Some(hint)) => hint.is_for(session),
        (Some(_), None) => false,
    };
    if !(confirmed || proven) {
        return confirmation_page(&state, &headers, params, client.as_deref(), redirect.as_deref());
    }
    end_session(&state, &headers, params, client_id, redirect).await
}

/// The page asking the user whether to sign out; its form posts back to `/logout`.
fn confirmation_page(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    client: Option<&Client>,
    redirect: Option<&str>,
) -> Response {
    let (csrf, csrf_cookie) = csrf::form_token(state.settings(), headers);
    let carried: Vec<(&str, &str)> = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|value| (*name, value)))
        // The client, when only the hint named it, travels as client_id (the hint stays out
        // of the page).
        .chain(
            client
                .filter(|_| params.get("client_id").is_none())
                .map(|c| ("client_id", c.client_id.as_str())),
        )
        .collect();
    let page = LogoutPage {
        client_name: client.map(|c| c.client_name.as_str()),
        csrf_token: csrf.as_str(),
        confirm_field: CONFIRM_FIELD,
        carried,
    };
    // The form's post may end in a redirect to the client: CSP form-action must allow it.
    let mut response = pages::render(StatusCode::OK, &page, redirect);
    if let Some(cookie) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Ends the browser's session, then redirects to the client or says so.
async fn end_session(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    client_id: Option<String>,
    redirect: Option<String>,
) -> Response {
    let settings = state.settings();
    if let Some(cookie) = PageCookie::Session.get(settings, headers)
        && let Err(e) = state.store().delete_session(&SecretHash::of(cookie.as_bytes())).await
    {
        return server_fault("ending a session", e);
    }
    audit::emit(
        state,
        AuditEvent {
            event: "logout".into(),
            outcome: "success".into(),
            client_id,
            ..Default::default()
        },
    );
    let signed_out = || {
        pages::message(
            StatusCode::OK,
            "Signed out",
            "You are signed out. You can close this window.",
        )
    };
    let mut response = match redirect {
        // RP-Initiated Logout §3: `state` goes back to the client unchanged.
        Some(uri) => {
            let location = redirect::append_query(&uri, params.get("state").map(|s| ("state", s)));
            redirect::to(StatusCode::SEE_OTHER, &location).unwrap_or_else(signed_out)
        }
        None => signed_out(),
    };
    response.headers_mut().append(header::SET_COOKIE, PageCookie::Session.clear(settings));
    response
}
