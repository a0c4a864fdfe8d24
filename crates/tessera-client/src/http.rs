//! The library's HTTP exchanges: JSON answers of bounded size, no redirects (a redirect could
//! carry a form with a code or a secret elsewhere), timeouts.

use std::time::Duration;

use serde_json::Value;
use tessera_http::ErrorCode;

use crate::error::{Error, OAuthError};

/// Answers larger than this are refused (metadata and token responses are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// A JSON answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The OAuth error of a non-2xx answer (RFC 6749 §5.2); an answer without an `error`
    /// member becomes `server_error` with its status.
    pub fn oauth_error(&self) -> OAuthError {
        let raw_code = self.body.get("error").and_then(Value::as_str);
        OAuthError {
            status: self.status,
            code: raw_code.and_then(ErrorCode::parse),
            raw_code: raw_code.unwrap_or("server_error").to_owned(),
            description: self
                .body
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// An HTTP client for talking to authorization servers.
#[derive(Clone, Debug)]
pub struct Http(reqwest::Client);

impl Http {
    /// A client that follows no redirect, with 10 s to connect and 30 s per exchange.
    pub fn new() -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("tessera-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self(client))
    }

    /// Wraps a client the caller configured (it should follow no redirects).
    pub fn from_client(client: reqwest::Client) -> Self {
        Self(client)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.0
    }

    pub async fn get_json(&self, url: &str) -> Result<Reply, Error> {
        let request = self.0.get(url).header(reqwest::header::ACCEPT, "application/json");
        send(url, request).await
    }

    /// POSTs a form, with HTTP Basic credentials if given (already RFC 6749 §2.3.1-encoded
    /// by the caller).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Reply, Error> {
        let mut request =
            self.0.post(url).header(reqwest::header::ACCEPT, "application/json").form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        send(url, request).await
    }
}

async fn send(url: &str, request: reqwest::RequestBuilder) -> Result<Reply, Error> {
    let network = |source| Error::Network { url: url.to_owned(), source };
    let mut response = request.send().await.map_err(network)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(Error::TooLarge { url: url.to_owned() });
        }
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(body) => Ok(Reply { status, body }),
        // A 404 or 204 from a server that is not OAuth-aware is still a plain answer.
        Err(_) if status == 404 || body.is_empty() => Ok(Reply { status, body: Value::Null }),
        Err(_) => Err(Error::NotJson { url: url.to_owned(), status }),
    }
}

/// Parses a URL that tokens, codes or secrets will travel to: https, or http on a loopback
/// address (a development server). Anything else would send credentials in clear.
pub fn checked_url(raw: &str, what: &'static str) -> Result<url::Url, Error> {
    let insecure = || Error::InsecureUrl { what, url: raw.to_owned() };
    let url = url::Url::parse(raw).map_err(|_| insecure())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(insecure()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_https_or_loopback_http_carries_credentials() {
        for ok in [
            "https://auth.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(checked_url(ok, "the issuer").is_ok(), "{ok}");
        }
        for bad in ["http://auth.example.com", "ftp://127.0.0.1", "not a url", "http://10.0.0.1"] {
            assert!(checked_url(bad, "the issuer").is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc6749_5_2_error_answers_are_read_with_their_code() {
        let reply = Reply {
            status: 401,
            body: json!({"error": "invalid_client", "error_description": "bad secret"}),
        };
        let e = reply.oauth_error();
        assert_eq!(e.code, Some(ErrorCode::InvalidClient));
        assert!(e.is_definitive());
        assert_eq!(e.to_string(), "invalid_client: bad secret");
        let fault = Reply { status: 503, body: Value::Null }.oauth_error();
        assert_eq!((fault.raw_code.as_str(), fault.is_definitive()), ("server_error", false));
        let limited = Reply { status: 429, body: json!({"error": "x_custom"}) }.oauth_error();
        assert!(!limited.is_definitive());
    }
}
