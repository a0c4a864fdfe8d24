//! Client authentication at the token endpoint (RFC 6749 §2.3).
//!
//! [`presented_credentials`] reads what the request offers; [`authenticate`] checks it against
//! the registered client and returns the proof value [`AuthenticatedClient`], which grant
//! handlers require. Only this module can make one, so no handler can run for a client whose
//! authentication was skipped.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::client::{AuthMethod, Client};
use crate::client_id::ClientId;
use crate::error::{Error, Result};
use crate::params::Params;
use crate::secret::Secret;

/// What a request offers as client authentication.
#[derive(Debug)]
pub enum PresentedCredentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic { client_id: ClientId, secret: Secret },
    /// `client_id` + `client_secret` in the body (RFC 6749 §2.3.1).
    Post { client_id: ClientId, secret: Secret },
    /// `client_id` alone: a public client (RFC 6749 §2.1).
    ClientIdOnly { client_id: ClientId },
    /// A JWT assertion (RFC 7523 §2.2), verified by [`crate::client_assertion::verify`].
    Assertion { client_id: ClientId, assertion: String },
}

impl PresentedCredentials {
    pub fn client_id(&self) -> &ClientId {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::ClientIdOnly { client_id }
            | Self::Assertion { client_id, .. } => client_id,
        }
    }
}

/// Reads the client credentials of a request from its `Authorization` header and form.
pub fn presented_credentials(
    authorization: Option<&[u8]>,
    params: &Params,
) -> Result<PresentedCredentials> {
    let form_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    // RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    // request."
    let methods = usize::from(authorization.is_some())
        + usize::from(form_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(Error::MultipleClientAuthentication);
    }
    let parse_id = |raw: &str| {
        ClientId::parse(raw).map_err(|reason| Error::MalformedParameter {
            name: "client_id",
            reason: reason.into(),
        })
    };
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type")
            != Some(crate::client_assertion::JWT_BEARER_ASSERTION)
        {
            return Err(Error::MalformedParameter {
                name: "client_assertion_type",
                reason: "must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            });
        }
        // RFC 7523 §3: `sub` is the client_id; a `client_id` parameter, if sent, must agree.
        let subject = crate::client_assertion::unverified_subject(assertion)
            .ok_or(Error::ClientAssertionRefused("the assertion has no readable sub"))?;
        if form_id.is_some_and(|id| id != subject) {
            return Err(Error::ClientAssertionRefused(
                "client_id differs from the assertion's sub",
            ));
        }
        return Ok(PresentedCredentials::Assertion {
            client_id: parse_id(&subject)?,
            assertion: assertion.to_owned(),
        });
    }
    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if form_id.is_some_and(|id| id != client_id.as_str()) {
            return Err(Error::MalformedParameter {
                name: "client_id",
                reason: "differs from the client authenticated by the Authorization header".into(),
            });
        }
        return Ok(PresentedCredentials::Basic { client_id, secret });
    }
    match (form_id, form_secret) {
        (Some(id), Some(secret)) => Ok(PresentedCredentials::Post {
            client_id: parse_id(id)?,
            secret: Secret::from_string(secret.to_owned()),
        }),
        (Some(id), None) => Ok(PresentedCredentials::ClientIdOnly { client_id: parse_id(id)? }),
        (None, Some(_)) => Err(Error::MissingParameter("client_id")),
        (None, None) => Err(Error::ClientAuthenticationMissing),
    }
}

/// Parses `Basic base64(urlencode(client_id) ":" urlencode(secret))` (RFC 6749 §2.3.1,
/// RFC 7617). Anything malformed is a failed authentication, never a server fault.
fn parse_basic(header: &[u8]) -> Result<(ClientId, Secret)> {
    let header = std::str::from_utf8(header).map_err(|_| Error::ClientAuthenticationFailed)?;
    let (scheme, encoded) = header.split_once(' ').ok_or(Error::ClientAuthenticationFailed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::ClientAuthenticationFailed);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| Error::ClientAuthenticationFailed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Error::ClientAuthenticationFailed)?;
    let (id, secret) = decoded.split_once(':').ok_or(Error::ClientAuthenticationFailed)?;
    let unescape = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| Error::ClientAuthenticationFailed)
    };
    let client_id =
        ClientId::parse(&unescape(id)?).map_err(|_| Error::ClientAuthenticationFailed)?;
    Ok((client_id, Secret::from_string(unescape(secret)?)))
}

/// Proof that the client of this request authenticated with its registered method.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient(Arc<Client>);

impl AuthenticatedClient {
    pub fn client(&self) -> &Client {
        &self.0
    }

    /// The client record, shared (for checks that keep it, such as a redirect target).
    pub fn shared(&self) -> Arc<Client> {
        Arc::clone(&self.0)
    }
}

/// Accepts a client whose assertion verified and whose `jti` was not seen before.
pub fn authenticate_by_assertion(
    client: Arc<Client>,
    verified: crate::client_assertion::AssertionVerified,
) -> Result<AuthenticatedClient> {
    if client.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
        && verified.client_id() == client.client_id.as_str()
    {
        Ok(AuthenticatedClient(client))
    } else {
        Err(Error::ClientAuthenticationFailed)
    }
}

/// RFC 8705 §2: accepts a client that sent only its `client_id` and presented, in the TLS
/// handshake, a certificate that fits its registration — for `tls_client_auth` a chain the
/// server validated against its trust anchors (`chain_trusted`) and the registered subject or
/// SAN (§2.1.2); for `self_signed_tls_client_auth` a certificate whose public key is among
/// `keys`, the client's registered JWKS (§2.2). Anything else is `invalid_client`.
pub fn authenticate_by_certificate(
    presented: &PresentedCredentials,
    client: Arc<Client>,
    certificate: Option<&[u8]>,
    chain_trusted: bool,
    keys: Option<&tessera_jose::Jwks>,
) -> Result<AuthenticatedClient> {
    let PresentedCredentials::ClientIdOnly { client_id } = presented else {
        return Err(Error::ClientAuthenticationFailed);
    };
    let Some(der) = certificate else { return Err(Error::ClientAuthenticationFailed) };
    let ok = client_id == &client.client_id
        && match client.token_endpoint_auth_method {
            AuthMethod::TlsClientAuth => {
                chain_trusted
                    && client.tls_client_auth_name.as_ref().is_some_and(|n| n.matches(der))
            }
            AuthMethod::SelfSignedTlsClientAuth => {
                keys.is_some_and(|keys| crate::mtls::key_is_registered(der, keys))
            }
            _ => false,
        };
    if ok { Ok(AuthenticatedClient(client)) } else { Err(Error::ClientAuthenticationFailed) }
}

/// Checks presented credentials against the registered client (`None` if unknown).
/// Every failure is the same `invalid_client`, so the answer does not tell an unknown client
/// from a wrong secret. Assertions go through [`authenticate_by_assertion`] instead.
pub fn authenticate(
    presented: PresentedCredentials,
    registered: Option<Arc<Client>>,
) -> Result<AuthenticatedClient> {
    let client = registered.ok_or(Error::ClientAuthenticationFailed)?;
    let ok = match (&presented, client.token_endpoint_auth_method) {
        (PresentedCredentials::Basic { secret, .. }, AuthMethod::ClientSecretBasic)
        | (PresentedCredentials::Post { secret, .. }, AuthMethod::ClientSecretPost) => {
            client.secret_hash.is_some_and(|h| h.verify(secret.expose()))
        }
        (PresentedCredentials::ClientIdOnly { .. }, AuthMethod::None) => true,
        _ => false,
    };
    if ok { Ok(AuthenticatedClient(client)) } else { Err(Error::ClientAuthenticationFailed) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientRegistration;

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    fn confidential(method: AuthMethod) -> (Arc<Client>, Secret) {
        let reg = ClientRegistration {
            client_id: Some(ClientId::parse("svc").unwrap()),
            client_name: "svc".into(),
            auth_method: Some(method),
            ..Default::default()
        };
        let (client, secret) = reg.into_client(0).unwrap();
        (Arc::new(client), secret.unwrap())
    }

    #[test]
    fn rfc6749_2_3_1_basic_credentials_are_form_urlencoded() {
        let params = Params::default();
        let header = basic("my%3Aclient", "s%2Bcret+x");
        let PresentedCredentials::Basic { client_id, secret } =
            presented_credentials(Some(&header), &params).unwrap()
        else {
            panic!("expected Basic")
        };
        assert_eq!(client_id.as_str(), "my:client");
        assert_eq!(secret.expose(), "s+cret x");
    }

    #[test]
    fn rfc6749_2_3_only_one_authentication_method_per_request() {
        let params = Params::parse_form(b"client_id=svc&client_secret=x").unwrap();
        let err = presented_credentials(Some(&basic("svc", "x")), &params).unwrap_err();
        assert!(matches!(err, Error::MultipleClientAuthentication));
    }

    #[test]
    fn rfc6749_2_3_1_registered_method_and_secret_must_match() {
        let (client, secret) = confidential(AuthMethod::ClientSecretBasic);
        let ok = presented_credentials(Some(&basic("svc", secret.expose())), &Params::default());
        assert!(authenticate(ok.unwrap(), Some(client.clone())).is_ok());

        let wrong = presented_credentials(Some(&basic("svc", "nope")), &Params::default());
        assert!(authenticate(wrong.unwrap(), Some(client.clone())).is_err());

        // The right secret through a method the client did not register is refused.
        let body = format!("client_id=svc&client_secret={}", secret.expose());
        let post = presented_credentials(None, &Params::parse_form(body.as_bytes()).unwrap());
        assert!(authenticate(post.unwrap(), Some(client.clone())).is_err());

        // A confidential client cannot pass as public by omitting its secret.
        let id_only = presented_credentials(None, &Params::parse_form(b"client_id=svc").unwrap());
        assert!(authenticate(id_only.unwrap(), Some(client)).is_err());
    }

    #[test]
    fn unknown_clients_and_malformed_headers_fail_as_invalid_client() {
        let p = presented_credentials(Some(&basic("ghost", "x")), &Params::default()).unwrap();
        assert!(matches!(authenticate(p, None), Err(Error::ClientAuthenticationFailed)));
        for header in [&b"Basic !!!"[..], b"Bearer abc", b"Basic", b"Basic Zm9v", b"\xff"] {
            let err = presented_credentials(Some(header), &Params::default()).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_client", "{header:?}");
        }
    }
}
