//! Token responses (RFC 6749 §5.1) and the secret strings they carry.

use std::sync::Arc;

use serde_json::Value;

use crate::error::Error;
use crate::http::Reply;

/// A token or other credential: `Debug` prints nothing of it; cloning is a reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value itself, to put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(…)")
    }
}

/// A successful token response. `Debug` shows no token.
#[derive(Clone)]
pub struct TokenResponse {
    pub access_token: SecretString,
    pub token_type: String,
    /// RFC 6749 §5.1 `expires_in`, in seconds, if the server said.
    pub expires_in: Option<i64>,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// Reads a token endpoint answer: 200 with the members of RFC 6749 §5.1, or the OAuth
    /// error of §5.2.
    pub fn from_reply(reply: Reply) -> Result<Self, Error> {
        if reply.status != 200 {
            return Err(Error::OAuth(reply.oauth_error()));
        }
        let text = |name: &str| reply.body.get(name).and_then(Value::as_str).map(str::to_owned);
        let access_token =
            text("access_token").ok_or(Error::InvalidTokenResponse("no access_token"))?;
        let token_type = text("token_type").ok_or(Error::InvalidTokenResponse("no token_type"))?;
        let expires_in = match reply.body.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .filter(|s| *s >= 0)
                    .ok_or(Error::InvalidTokenResponse("expires_in is not a number of seconds"))?,
            ),
        };
        Ok(Self {
            access_token: SecretString::new(access_token),
            token_type,
            expires_in,
            refresh_token: text("refresh_token").map(SecretString::new),
            id_token: text("id_token"),
            scope: text("scope"),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn debug_of_a_token_response_shows_no_token() {
        let reply = Reply {
            status: 200,
            body: json!({"access_token": "at-secret", "token_type": "Bearer",
                "refresh_token": "rt-secret", "id_token": "eyJ.id.token", "expires_in": 60}),
        };
        let tokens = TokenResponse::from_reply(reply).unwrap();
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret") && !shown.contains("eyJ"), "{shown}");
    }

    #[test]
    fn rfc6749_5_1_a_response_without_token_type_or_with_negative_expires_in_is_refused() {
        let no_type = Reply { status: 200, body: json!({"access_token": "a"}) };
        assert!(TokenResponse::from_reply(no_type).is_err());
        let negative = Reply {
            status: 200,
            body: json!({"access_token": "a", "token_type": "Bearer", "expires_in": -1}),
        };
        assert!(TokenResponse::from_reply(negative).is_err());
    }
}
