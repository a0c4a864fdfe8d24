//! The forms of the server's own pages, read once and checked once: every handler of a page's
//! form gets its fields only as a [`PageForm`], which only [`PageForm::check`] makes — after the
//! CSRF check of `web::csrf` passed.

use std::ops::Deref;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::params::Params;

use crate::config::Settings;
use crate::web::csrf::{self, Refused};
use crate::web::pages;

/// The message for a form refused by the CSRF check.
pub const STALE_FORM_MESSAGE: &str =
    "This form has expired or was not sent from this site. Go back and start again.";

/// The message for a decision form that said neither allow nor deny.
pub const NO_DECISION_MESSAGE: &str = "The form did not say whether to allow or deny.";

/// A form posted from one of our pages, from this site, with this browser's CSRF token.
pub struct PageForm {
    params: Params,
}

impl PageForm {
    /// Checks a posted form (`web::csrf::check`).
    pub fn check(
        settings: &Settings,
        headers: &HeaderMap,
        params: Params,
    ) -> Result<Self, StaleForm> {
        match csrf::check(settings, headers, params.get("csrf_token")) {
            Ok(()) => Ok(Self { params }),
            Err(refused) => {
                if refused == Refused::CrossSite {
                    tracing::info!("a page's form was posted from another site; refused");
                }
                Err(StaleForm)
            }
        }
    }

    /// A field, or `""` when absent (pages re-render what they carried).
    pub fn field(&self, name: &str) -> &str {
        self.params.get(name).unwrap_or_default()
    }

    /// The user's answer on a consent form (RFC 6749 §4.1.2.1 `access_denied` on deny, RFC
    /// 8628 §3.3).
    pub fn decision(&self) -> Result<Decision, NoDecision> {
        match self.params.get("decision") {
            Some("approve") => Ok(Decision::Approve),
            Some("deny") => Ok(Decision::Deny),
            _ => Err(NoDecision),
        }
    }
}

/// A page's form refused by the CSRF check; answered with the stale-form page.
#[derive(Debug)]
pub struct StaleForm;

impl IntoResponse for StaleForm {
    fn into_response(self) -> Response {
        pages::refused(STALE_FORM_MESSAGE)
    }
}

/// A decision form that said neither allow nor deny; answered with a page saying so.
#[derive(Debug)]
pub struct NoDecision;

impl IntoResponse for NoDecision {
    fn into_response(self) -> Response {
        pages::refused(NO_DECISION_MESSAGE)
    }
}

impl Deref for PageForm {
    type Target = Params;

    fn deref(&self) -> &Params {
        &self.params
    }
}

/// Allow or deny, as posted by the consent page's two buttons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}
