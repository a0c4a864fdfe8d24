//! How the client authenticates at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2,
//! OIDC Core §9): `client_secret_basic`, `client_secret_post`, `private_key_jwt`, or none (a
//! public client).

use serde::Serialize;

use crate::error::Error;
use crate::http::{Http, Reply};
use crate::random;
use crate::tokens::{SecretString, TokenResponse};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid (Tessera accepts at most 5 minutes).
const ASSERTION_LIFETIME: i64 = 60;

/// A client's identity and how it proves it.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    method: Method,
}

#[derive(Clone)]
enum Method {
    None,
    SecretBasic(SecretString),
    SecretPost(SecretString),
    PrivateKeyJwt(std::sync::Arc<(jsonwebtoken::EncodingKey, jsonwebtoken::Header)>),
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.method {
            Method::None => "none",
            Method::SecretBasic(_) => "client_secret_basic",
            Method::SecretPost(_) => "client_secret_post",
            Method::PrivateKeyJwt(_) => "private_key_jwt",
        };
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("method", &method)
            .finish()
    }
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

impl ClientCredentials {
    /// A public client: only its `client_id` in the form (RFC 6749 §2.3, §3.2.1).
    pub fn public(client_id: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), method: Method::None }
    }

    /// RFC 6749 §2.3.1 HTTP Basic.
    pub fn secret_basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        let secret = SecretString::new(secret.into());
        Self { client_id: client_id.into(), method: Method::SecretBasic(secret) }
    }

    /// RFC 6749 §2.3.1 credentials in the form body.
    pub fn secret_post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        let secret = SecretString::new(secret.into());
        Self { client_id: client_id.into(), method: Method::SecretPost(secret) }
    }

    /// RFC 7523 §2.2 / OIDC Core §9 `private_key_jwt`: a JWT signed with `key` under `alg`,
    /// naming `kid` so the server picks the key from the client's JWKS.
    pub fn private_key_jwt(
        client_id: impl Into<String>,
        key: jsonwebtoken::EncodingKey,
        alg: jsonwebtoken::Algorithm,
        kid: Option<String>,
    ) -> Self {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = kid;
        let method = Method::PrivateKeyJwt(std::sync::Arc::new((key, header)));
        Self { client_id: client_id.into(), method }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// POSTs `form` to the token endpoint with this client's authentication and reads the
    /// token response. `audience` is the issuer identifier, the `aud` of an assertion
    /// (RFC 7523 §3; what Tessera and current drafts require).
    pub async fn token_request(
        &self,
        http: &Http,
        token_endpoint: &str,
        audience: &str,
        form: &[(&str, &str)],
        now: i64,
    ) -> Result<TokenResponse, Error> {
        let reply = self.token_request_reply(http, token_endpoint, audience, form, now).await?;
        TokenResponse::from_reply(reply)
    }

    /// Like [`Self::token_request`], the answer unread (the device flow reads its errors).
    pub async fn token_request_reply(
        &self,
        http: &Http,
        token_endpoint: &str,
        audience: &str,
        form: &[(&str, &str)],
        now: i64,
    ) -> Result<Reply, Error> {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let basic;
        let assertion;
        let mut credentials = None;
        match &self.method {
            Method::None => form.push(("client_id", &self.client_id)),
            Method::SecretBasic(secret) => {
                // RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
                basic = (form_encode(&self.client_id), form_encode(secret.expose()));
                credentials = Some((basic.0.as_str(), basic.1.as_str()));
            }
            Method::SecretPost(secret) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose()));
            }
            Method::PrivateKeyJwt(signer) => {
                let (key, header) = &**signer;
                let claims = Assertion {
                    iss: &self.client_id,
                    sub: &self.client_id,
                    aud: audience,
                    jti: random::token(16),
                    iat: now,
                    exp: now + ASSERTION_LIFETIME,
                };
                assertion = jsonwebtoken::encode(header, &claims, key)
                    .map_err(|e| Error::Config(format!("cannot sign the client assertion: {e}")))?;
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", &assertion));
            }
        }
        http.post_form(token_endpoint, &form, credentials).await
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_2_3_1_basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let c = ClientCredentials::secret_basic("app", "s3cr3t-value");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
