//! `tessera login`: signs this terminal in with the device authorization grant (RFC 8628)
//! against any issuer that publishes metadata (RFC 8414, OpenID Connect Discovery 1.0), and
//! stores the tokens for `tessera token show` and scripts.
//!
//! Standard output carries only what the user needs (the code and where to enter it), never a
//! token unless `--print` asks for it; the spinner goes to standard error and only when that is
//! a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::token::{tokens_path, write_private};

/// RFC 8628 §3.4: the device code grant type.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the polling interval when the server names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for this and every later request.
const SLOW_DOWN_STEP: u64 = 5;
/// Answers larger than this are refused (metadata and token responses are a few KiB).
const MAX_BODY: usize = 1 << 20;
/// Consecutive network failures tolerated while polling (with exponential backoff).
const MAX_POLL_FAILURES: u32 = 5;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The issuer URL (https; plain http only on a loopback address).
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// The client_id of a public client registered for the device code grant.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// A scope to ask for (repeatable, or space-separated; default: the client's default scope).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Also print the token response on standard output. It holds live credentials.
    #[arg(long)]
    print: bool,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let issuer = args.issuer.trim_end_matches('/').to_owned();
    let issuer_url = checked_url(&issuer, "the issuer")?;
    let http = Http::new()?;
    let endpoints = discover(&http, &issuer, &issuer_url).await?;

    let scope = joined_scope(&args.scopes);
    let mut form = vec![("client_id", args.client_id.as_str())];
    if let Some(scope) = &scope {
        form.push(("scope", scope.as_str()));
    }
    let started = Instant::now();
    let reply = http
        .post_form(&endpoints.device_authorization, &form)
        .await
        .map_err(|e| e.into_anyhow(&endpoints.device_authorization))?;
    if reply.status != 200 {
        bail!("the device authorization request was refused: {}", reply.oauth_error());
    }
    let start = DeviceStart::parse(&reply.body)?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "To sign in, open {} and enter the code: {}",
        start.verification_uri, start.user_code
    )?;
    if let Some(complete) = &start.verification_uri_complete {
        writeln!(out, "Or open this link, which has the code filled in: {complete}")?;
    }
    out.flush()?;
    drop(out);

    let deadline = started + Duration::from_secs(start.expires_in);
    let tokens = poll(
        &http,
        &endpoints.token,
        &args.client_id,
        &start.device_code,
        start.interval,
        deadline,
    )
    .await?;

    let mut stored: Map<String, Value> = tokens.clone();
    stored.insert("issuer".into(), Value::String(issuer.clone()));
    stored.insert("client_id".into(), Value::String(args.client_id.clone()));
    stored.insert("obtained_at".into(), Value::from(super::now()));
    let path = tokens_path()?;
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(stored))?;
    bytes.push(b'\n');
    write_private(&path, &bytes)?;
    println!("Signed in; tokens saved to {}", path.display());
    if args.print {
        super::print_json(&Value::Object(tokens));
    }
    Ok(())
}

/// The scopes of every `--scope`, split on spaces, without duplicates, in the order given.
fn joined_scope(scopes: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split_whitespace()) {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    (!seen.is_empty()).then(|| seen.join(" "))
}

/// Parses a URL that tokens or codes will travel to: https, or http on a loopback address
/// (a development server). Anything else would send credentials in clear.
fn checked_url(raw: &str, what: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(raw).with_context(|| format!("{what} `{raw}` is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => bail!(
            "{what} `{raw}` is plain http: only https, or http on a loopback address, is allowed"
        ),
        other => bail!("{what} `{raw}` has scheme {other}: only https is allowed"),
    }
}

struct Endpoints {
    device_authorization: String,
    token: String,
}

/// The issuer's metadata: the OpenID Connect discovery path first, then RFC 8414's
/// well-known URI (inserted before the issuer's path, RFC 8414 §3.1). The document's `issuer`
/// must be the one we asked (RFC 8414 §3.3).
async fn discover(http: &Http, issuer: &str, issuer_url: &url::Url) -> anyhow::Result<Endpoints> {
    let oidc = format!("{issuer}/.well-known/openid-configuration");
    let rfc8414 = {
        let path = issuer_url.path().trim_end_matches('/');
        let mut u = issuer_url.clone();
        u.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        u.set_query(None);
        u.to_string()
    };
    let mut last = String::new();
    let mut document = None;
    for url in [oidc, rfc8414] {
        let reply = http.get(&url).await.map_err(|e| e.into_anyhow(&url))?;
        if reply.status == 200 {
            document = Some((url, reply.body));
            break;
        }
        last = format!("{url} answered HTTP {}", reply.status);
    }
    let Some((url, doc)) = document else {
        bail!("{issuer} publishes no authorization server metadata ({last})");
    };
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i.trim_end_matches('/') == issuer => {}
        Some(i) => bail!("the metadata at {url} is for issuer {i}, not {issuer}"),
        None => bail!("the metadata at {url} names no issuer"),
    }
    let endpoint = |name: &str| -> anyhow::Result<String> {
        let value = doc.get(name).and_then(Value::as_str).with_context(|| {
            if name == "device_authorization_endpoint" {
                format!("{issuer} does not offer the device flow (no {name} in its metadata)")
            } else {
                format!("the metadata at {url} has no {name}")
            }
        })?;
        checked_url(value, name)?;
        Ok(value.to_owned())
    };
    Ok(Endpoints {
        device_authorization: endpoint("device_authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
    })
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug)]
struct DeviceStart {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: u64,
}

impl DeviceStart {
    fn parse(body: &Value) -> anyhow::Result<Self> {
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("the device authorization response has no {name}"))
        };
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .context("the device authorization response has no expires_in")?;
        Ok(Self {
            device_code: text("device_code")?,
            user_code: text("user_code")?,
            // RFC 8628 §3.2; some servers still say `verification_url`.
            verification_uri: text("verification_uri").or_else(|_| text("verification_url"))?,
            verification_uri_complete: text("verification_uri_complete").ok(),
            expires_in,
            interval: body
                .get("interval")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_INTERVAL)
                .max(1),
        })
    }
}

/// What one token request said.
#[derive(Debug, PartialEq)]
enum Poll {
    Tokens(Map<String, Value>),
    Pending,
    SlowDown,
}

/// Reads one token endpoint answer (RFC 8628 §3.5); a terminal error is an `Err`.
fn classify(reply: &Reply) -> anyhow::Result<Poll> {
    if reply.status == 200 {
        let Value::Object(tokens) = &reply.body else {
            bail!("the token endpoint answered 200 with something other than a JSON object");
        };
        if !tokens.get("access_token").is_some_and(Value::is_string) {
            bail!("the token endpoint answered 200 without an access_token");
        }
        return Ok(Poll::Tokens(tokens.clone()));
    }
    match reply.body.get("error").and_then(Value::as_str) {
        Some("authorization_pending") => Ok(Poll::Pending),
        Some("slow_down") => Ok(Poll::SlowDown),
        Some("access_denied") => {
            bail!("access denied: the request was denied in the browser; nothing was saved")
        }
        Some("expired_token") => bail!(
            "the code expired before it was approved; run `tessera login` again for a new code"
        ),
        _ => bail!("the token endpoint refused: {}", reply.oauth_error()),
    }
}

/// Polls the token endpoint every `interval` seconds until the user decides, the code
/// expires, or the server refuses.
async fn poll(
    http: &Http,
    token_endpoint: &str,
    client_id: &str,
    device_code: &str,
    interval: u64,
    deadline: Instant,
) -> anyhow::Result<Map<String, Value>> {
    let spinner = Spinner::start("Waiting for approval in the browser…");
    let mut interval = interval;
    let mut wait = interval;
    let mut failures = 0;
    let form =
        [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code), ("client_id", client_id)];
    loop {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        // The server answers `expired_token` once the code is stale; should it not, stop anyway.
        if Instant::now() > deadline + Duration::from_secs(30) {
            bail!(
                "the code expired before it was approved; run `tessera login` again for a new code"
            );
        }
        let transient = match http.post_form(token_endpoint, &form).await {
            Ok(reply) if reply.status < 500 => Ok(reply),
            Ok(reply) => Err(format!("HTTP {}: {}", reply.status, reply.oauth_error())),
            Err(e @ HttpError::Network(_)) => Err(format!("{:#}", e.into_anyhow(token_endpoint))),
            Err(e @ HttpError::NotJson { status, .. }) if status >= 500 => {
                Err(format!("{:#}", e.into_anyhow(token_endpoint)))
            }
            Err(e) => return Err(e.into_anyhow(token_endpoint)),
        };
        let reply = match transient {
            Ok(reply) => reply,
            Err(why) => {
                // RFC 8628 §3.5: back off on connection trouble; give up after a few tries.
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    bail!(
                        "gave up after {failures} failed attempts to reach the token endpoint: {why}"
                    );
                }
                spinner.message(&format!("The server did not answer ({why}); retrying…"));
                wait = (wait * 2).min(60);
                continue;
            }
        };
        failures = 0;
        match classify(&reply)? {
            Poll::Tokens(tokens) => {
                spinner.clear();
                return Ok(tokens);
            }
            Poll::Pending => wait = interval,
            Poll::SlowDown => {
                interval += SLOW_DOWN_STEP;
                wait = interval;
                spinner.message(&format!(
                    "Waiting for approval in the browser… (polling every {interval} s)"
                ));
            }
        }
    }
}

/// An indicatif spinner on standard error when that is a terminal; nothing otherwise. It
/// clears itself when dropped, so an error message starts on a clean line.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn start(message: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    fn message(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A JSON answer.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    /// `error: error_description` of an OAuth error response (RFC 6749 §5.2).
    fn oauth_error(&self) -> String {
        let code = self.body.get("error").and_then(Value::as_str);
        let description = self.body.get("error_description").and_then(Value::as_str);
        match (code, description) {
            (Some(c), Some(d)) => format!("{c}: {d}"),
            (Some(c), None) => c.to_owned(),
            _ => format!("HTTP {} without an OAuth error", self.status),
        }
    }
}

/// Why an HTTP exchange produced no JSON answer.
enum HttpError {
    Network(reqwest::Error),
    NotJson { status: u16, content_type: String },
    TooLarge,
}

impl HttpError {
    fn into_anyhow(self, url: &str) -> anyhow::Error {
        match self {
            HttpError::Network(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                anyhow::Error::new(e).context(format!("cannot reach {url}: {kind}"))
            }
            HttpError::NotJson { status, content_type } => anyhow::anyhow!(
                "{url} answered HTTP {status} with a body that is not JSON ({content_type}); is this an OAuth server?"
            ),
            HttpError::TooLarge => anyhow::anyhow!("{url} answered with more than 1 MiB"),
        }
    }
}

struct Http(reqwest::Client);

impl Http {
    fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // A redirect could carry a form with a device code elsewhere: none are followed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self(client))
    }

    async fn get(&self, url: &str) -> Result<Reply, HttpError> {
        let request = self.0.get(url).header(reqwest::header::ACCEPT, "application/json");
        Self::send(request).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Reply, HttpError> {
        let request =
            self.0.post(url).header(reqwest::header::ACCEPT, "application/json").form(form);
        Self::send(request).await
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<Reply, HttpError> {
        let mut response = request.send().await.map_err(HttpError::Network)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_owned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::Network)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => Ok(Reply { status, body }),
            // A 404 from a server that is not OAuth-aware is still a plain "not here".
            Err(_) if status == 404 => Ok(Reply { status, body: Value::Null }),
            Err(_) => Err(HttpError::NotJson { status, content_type }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    #[test]
    fn scopes_join_without_duplicates() {
        let scopes = vec!["openid".to_owned(), "orders:read openid".to_owned(), " ".to_owned()];
        assert_eq!(joined_scope(&scopes).as_deref(), Some("openid orders:read"));
        assert_eq!(joined_scope(&[]), None);
    }

    #[test]
    fn only_https_or_loopback_http_carries_codes() {
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
    fn rfc8628_3_5_token_endpoint_answers_are_classified() {
        assert_eq!(
            classify(&reply(400, json!({"error": "authorization_pending"}))).unwrap(),
            Poll::Pending
        );
        assert_eq!(classify(&reply(400, json!({"error": "slow_down"}))).unwrap(), Poll::SlowDown);
        let denied = classify(&reply(400, json!({"error": "access_denied"}))).unwrap_err();
        assert!(denied.to_string().contains("denied"), "{denied}");
        let expired = classify(&reply(400, json!({"error": "expired_token"}))).unwrap_err();
        assert!(expired.to_string().contains("expired"), "{expired}");
        let other =
            classify(&reply(401, json!({"error": "invalid_client", "error_description": "x"})));
        assert!(other.unwrap_err().to_string().contains("invalid_client: x"));
        assert!(classify(&reply(200, json!({"token_type": "Bearer"}))).is_err());
        let tokens = classify(&reply(200, json!({"access_token": "a"}))).unwrap();
        assert!(matches!(tokens, Poll::Tokens(t) if t["access_token"] == "a"));
    }

    #[test]
    fn rfc8628_3_2_device_start_defaults_the_interval_to_5() {
        let body = json!({"device_code": "d", "user_code": "BCDF-GHJK", "verification_uri": "https://i/device", "expires_in": 600});
        let start = DeviceStart::parse(&body).unwrap();
        assert_eq!(start.interval, 5);
        assert_eq!(start.verification_uri_complete, None);
        assert!(DeviceStart::parse(&json!({"user_code": "x"})).is_err());
    }
}
