//! `tessera login`: signs this terminal in with the device authorization grant (RFC 8628)
//! against any issuer that publishes metadata (RFC 8414, OpenID Connect Discovery 1.0), and
//! stores the tokens for `tessera token` and scripts. The protocol is `tessera-client`'s
//! (`discover`, `device::start`, `device::poll`); this command prints and stores.
//!
//! Standard output carries only what the user needs (the code and where to enter it), never a
//! token unless `--print` asks for it; the spinner goes to standard error and only when that is
//! a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use tessera_client::device::{self, PollEvent};
use tessera_client::{ClientCredentials, Error, Http, TokenResponse};
use tessera_http::ErrorCode;

use super::token_store::TokenStore;

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
    let http = Http::new()?;
    let metadata = tessera_client::discover(&http, &issuer).await.map_err(explain)?;
    let device_endpoint = metadata.endpoint("device_authorization_endpoint").map_err(|_| {
        anyhow::anyhow!(
            "{issuer} does not offer the device flow (no device_authorization_endpoint in its metadata)"
        )
    })?;
    let token_endpoint = metadata.endpoint("token_endpoint")?;

    let scope = joined_scope(&args.scopes);
    let start = device::start(&http, device_endpoint, &args.client_id, scope.as_deref())
        .await
        .context("the device authorization request was refused")?;

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

    let spinner = Spinner::start("Waiting for approval in the browser…");
    let client = ClientCredentials::public(&args.client_id);
    let tokens = device::poll(&http, token_endpoint, &client, &issuer, &start, |event| {
        spinner.message(&match event {
            PollEvent::SlowDown { interval } => {
                format!("Waiting for approval in the browser… (polling every {interval} s)")
            }
            PollEvent::Retrying { reason } => {
                format!("The server did not answer ({reason}); retrying…")
            }
        })
    })
    .await
    .map_err(explain)?;
    spinner.clear();

    let stored = stored_tokens(&tokens, &issuer, &args.client_id, super::now());
    let store = TokenStore::open()?;
    store.write(&Value::Object(stored.clone()))?;
    println!("Signed in; tokens saved to {}", store.describe());
    if args.print {
        super::print_json(&Value::Object(stored));
    }
    Ok(())
}

/// What `tessera token` reads back: the token response's members, with where they came from.
pub fn stored_tokens(
    tokens: &TokenResponse,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Map<String, Value> {
    let mut stored = Map::new();
    stored.insert("access_token".into(), tokens.access_token.expose().into());
    stored.insert("token_type".into(), tokens.token_type.clone().into());
    if let Some(expires_in) = tokens.expires_in {
        stored.insert("expires_in".into(), expires_in.into());
    }
    if let Some(refresh) = &tokens.refresh_token {
        stored.insert("refresh_token".into(), refresh.expose().into());
    }
    if let Some(id_token) = &tokens.id_token {
        stored.insert("id_token".into(), id_token.clone().into());
    }
    if let Some(scope) = &tokens.scope {
        stored.insert("scope".into(), scope.clone().into());
    }
    stored.insert("issuer".into(), issuer.into());
    stored.insert("client_id".into(), client_id.into());
    stored.insert("obtained_at".into(), now.into());
    stored
}

/// The library's errors in the words of this command: what happened and what to do.
fn explain(e: Error) -> anyhow::Error {
    match e.oauth_code() {
        Some(ErrorCode::AccessDenied) => {
            anyhow::anyhow!(
                "access denied: the request was denied in the browser; nothing was saved"
            )
        }
        Some(ErrorCode::ExpiredToken) => anyhow::anyhow!(
            "the code expired before it was approved; run `tessera login` again for a new code"
        ),
        Some(_) => anyhow::anyhow!("the token endpoint refused: {e}"),
        None => anyhow::Error::new(e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_join_without_duplicates() {
        let scopes = vec!["openid".to_owned(), "orders:read openid".to_owned(), " ".to_owned()];
        assert_eq!(joined_scope(&scopes).as_deref(), Some("openid orders:read"));
        assert_eq!(joined_scope(&[]), None);
    }
}
