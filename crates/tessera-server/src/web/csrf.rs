//! CSRF protection of the pages' forms: a token bound to the browser's session, and a check
//! that the post comes from this site (OWASP CSRF Prevention Cheat Sheet: signed double-submit
//! token plus Fetch Metadata / `Origin` verification).
//!
//! The token is an HMAC-SHA-256 keyed by the hash of the session secret (the value the store
//! knows the session by) — or, before sign-in, by the hash of a random `SameSite=Strict` CSRF
//! cookie. Only a holder of that cookie can compute it, so a token copied from another
//! browser's page does not fit this browser, and a planted cookie of the attacker's choosing
//! is prevented by the `__Host-` prefix on https (`web::cookies`).

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use tessera_core::secret::{Secret, SecretHash};
use tessera_core::store::Session;

use crate::config::Settings;
use crate::web::cookies::{CSRF_COOKIE_MAX_AGE_SECONDS, PageCookie};

/// The CSRF token a page puts into its forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormToken(String);

impl FormToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a browser's token is bound to.
enum Binding {
    /// A signed-in browser: the hash of its session secret (`Session::id_hash`).
    Session(SecretHash),
    /// A browser without a session: the hash of its CSRF cookie.
    Browser(SecretHash),
}

impl Binding {
    /// The binding of the browser that sent `headers`: its session cookie if it has one, else
    /// its CSRF cookie; `None` without either.
    fn of(settings: &Settings, headers: &HeaderMap) -> Option<Self> {
        if let Some(session) = PageCookie::Session.get(settings, headers) {
            return Some(Self::Session(SecretHash::of(session.as_bytes())));
        }
        PageCookie::Csrf
            .get(settings, headers)
            .filter(|v| !v.is_empty())
            .map(|v| Self::Browser(SecretHash::of(v.as_bytes())))
    }

    fn token(&self) -> FormToken {
        // Distinct labels: a value could never serve as the other kind of binding.
        let (key, label): (&SecretHash, &[u8]) = match self {
            Self::Session(hash) => (hash, b"tessera csrf token: session"),
            Self::Browser(hash) => (hash, b"tessera csrf token: browser"),
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
        FormToken(URL_SAFE_NO_PAD.encode(hmac::sign(&key, label).as_ref()))
    }
}

/// The token for the forms of a page answering `headers`, and the `Set-Cookie` value of a new
/// CSRF cookie when the browser has none yet (the response must carry it).
pub fn form_token(settings: &Settings, headers: &HeaderMap) -> (FormToken, Option<HeaderValue>) {
    match Binding::of(settings, headers) {
        Some(binding) => (binding.token(), None),
        None => {
            let cookie = Secret::generate();
            let set_cookie =
                PageCookie::Csrf.set(settings, cookie.expose(), CSRF_COOKIE_MAX_AGE_SECONDS);
            (Binding::Browser(cookie.hash()).token(), Some(set_cookie))
        }
    }
}

/// The token for the forms of a session opened by this very request (its cookie is only in
/// the response).
pub fn session_token(session: &Session) -> FormToken {
    Binding::Session(session.id_hash).token()
}

/// Why a form post was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `Sec-Fetch-Site` or `Origin` says the post came from another site.
    CrossSite,
    /// The form's token is missing or is not this browser's.
    Token,
}

/// Checks a form post from one of our pages: sent from this site, with this browser's token.
pub fn check(
    settings: &Settings,
    headers: &HeaderMap,
    presented: Option<&str>,
) -> Result<(), Refused> {
    if !from_this_site(settings, headers) {
        return Err(Refused::CrossSite);
    }
    let expected = Binding::of(settings, headers).ok_or(Refused::Token)?.token();
    let presented = presented.ok_or(Refused::Token)?;
    let expected = expected.as_str().as_bytes();
    // Constant time: the comparison reveals nothing about the expected token.
    if expected.len() == presented.len() && bool::from(expected.ct_eq(presented.as_bytes())) {
        Ok(())
    } else {
        Err(Refused::Token)
    }
}

/// `Sec-Fetch-Site` (W3C Fetch Metadata), set by the browser and beyond a page's reach, must be
/// `same-origin` when present; `Origin` (RFC 6454 §7, sent by browsers on every POST) must be
/// the issuer's origin when present — `null`, sent from sandboxed or privacy-sensitive
/// contexts, is not. A client that sends neither (not a browser) is judged by the token alone.
fn from_this_site(settings: &Settings, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let ours = url::Url::parse(settings.issuer.as_str())
                .map(|u| u.origin().ascii_serialization())
                .ok();
            ours.is_some_and(|ours| origin.as_bytes() == ours.as_bytes())
        }
    }
}
