//! Pushed authorization requests (RFC 9126): a client sends its authorization request
//! straight to the server, authenticated, and sends the browser to `/authorize` with only the
//! `request_uri` it got back — so the request is neither visible nor alterable in the browser.

use crate::authorize::{check_redirect_target, parse_request};
use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::params::Params;
use crate::secret::{Secret, SecretHash};
use crate::store::PushedRequest;

/// RFC 9126 §2.2: the `request_uri` is a URN of this prefix.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a `request_uri` may be used: RFC 9126 §2.2 suggests a short lifetime (5 to 600
/// seconds); a browser redirect takes far less than a minute.
pub const REQUEST_URI_TTL: i64 = 60;

/// The client's credentials in the pushed form, which are never stored with the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// An accepted push: the `request_uri` to hand back once, and the record to store.
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
    pub record: PushedRequest,
}

/// Validates a pushed authorization request as `/authorize` would (RFC 9126 §2.1: the same
/// rules, the redirect URI included, with errors returned to the client as JSON) and mints its
/// `request_uri`, 256 random bits stored only as their hash.
pub fn push(client: &AuthenticatedClient, params: &Params, now: i64) -> Result<Pushed> {
    // RFC 9126 §2.1: "The request_uri authorization request parameter is one exception, and it
    // MUST NOT be provided."
    if params.get("request_uri").is_some() {
        return Err(Error::MalformedParameter {
            name: "request_uri",
            reason: "a pushed request cannot itself refer to a request_uri (RFC 9126 §2.1)".into(),
        });
    }
    let client_id = &client.client().client_id;
    // RFC 9126 §2.1: the request is the authenticated client's; a client that authenticated
    // with HTTP Basic may leave `client_id` out of the form, and the stored request gets it.
    let query = match params.get("client_id") {
        Some(given) if given != client_id.as_str() => {
            return Err(Error::MalformedParameter {
                name: "client_id",
                reason: "it is not the authenticated client's".into(),
            });
        }
        Some(_) => params.to_query(&CREDENTIALS),
        None => {
            let rest = params.to_query(&CREDENTIALS);
            let id = Params::parse_form(format!("client_id={client_id}").as_bytes())?;
            format!("{}&{rest}", id.to_query(&[]))
        }
    };
    let stored = Params::parse_form(query.as_bytes())?;
    let target = check_redirect_target(&stored, Some(client.shared())).map_err(|reason| {
        Error::MalformedParameter { name: "redirect_uri", reason: reason.into() }
    })?;
    parse_request(target, &stored)?;
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", Secret::generate().expose());
    let record = PushedRequest {
        request_uri_hash: SecretHash::of(request_uri.as_bytes()),
        client_id: client_id.clone(),
        query,
        expires_at: now + REQUEST_URI_TTL,
    };
    Ok(Pushed { request_uri, expires_in: REQUEST_URI_TTL, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9126_2_1_credentials_are_not_kept_with_the_request() {
        let p = Params::parse_form(
            b"client_id=web&client_secret=s3cr3t&scope=openid&client_assertion=x",
        )
        .unwrap();
        assert_eq!(p.to_query(&CREDENTIALS), "client_id=web&scope=openid");
    }
}
