//! Interoperability with an authorization server nobody here wrote: node's `oidc-provider`
//! (panva), started by the test with `tests/js/oidc_provider.mjs`. Client credentials, the
//! code flow with PKCE and ID-token validation, and refresh-token rotation.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tessera_client::{
    ClientCredentials, CodeFlow, MemoryRefreshTokenStore, MemoryStateStore, RefreshTokenStore,
    Refresher, TokenManager, TokenRequest, discover,
};
use tessera_http::ErrorCode;

use crate::browser;
use crate::common::{http, skip};

const REDIRECT: &str = "https://app.example/cb";

struct OidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

/// Starts oidc-provider on a free port; `None` (skipped, not on CI) without node or the module.
fn start() -> Option<OidcProvider> {
    start_with(&[])
}

/// Starts oidc-provider with an issuer that has a path, its metadata published in one `form`
/// only (`tests/js/oidc_provider.mjs`).
fn start_at_path(path: &str, form: &str) -> Option<OidcProvider> {
    start_with(&[path, form])
}

fn start_with(args: &[&str]) -> Option<OidcProvider> {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node {
        skip("node is not installed");
        return None;
    }
    if !js_dir().join("node_modules/oidc-provider").exists() {
        skip("tests/js/node_modules/oidc-provider is missing (run `npm ci --prefix tests/js`)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("node")
        .arg(js_dir().join("oidc_provider.mjs"))
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut provider = OidcProvider { child, issuer: String::new() };
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Some(issuer) = line.unwrap().strip_prefix("READY ") {
            provider.issuer = issuer.to_owned();
            break;
        }
    }
    assert!(!provider.issuer.is_empty(), "oidc-provider did not start");
    std::thread::spawn(move || lines.for_each(drop));
    Some(provider)
}

#[tokio::test]
async fn interop_oidc_provider_client_credentials_through_the_token_manager() {
    let Some(op) = start() else { return };
    let metadata = discover(&http(), &op.issuer).await.unwrap();
    let m = TokenManager::builder(
        http(),
        op.issuer.clone(),
        metadata.endpoint("token_endpoint").unwrap(),
        ClientCredentials::secret_basic("svc", "svc-secret"),
    )
    .unwrap()
    .build();
    let request = TokenRequest::new(["api:read"], None);
    let token = m.token(&request).await.unwrap();
    assert_eq!(m.token(&request).await.unwrap(), token);
    assert_eq!(m.metrics().fetches, 1);
    // A wrong secret is a definitive `invalid_client`, not a retry.
    let wrong = TokenManager::builder(
        http(),
        op.issuer.clone(),
        metadata.endpoint("token_endpoint").unwrap(),
        ClientCredentials::secret_basic("svc", "wrong"),
    )
    .unwrap()
    .build();
    let e = wrong.token(&request).await.unwrap_err();
    assert_eq!(e.oauth_code(), Some(ErrorCode::InvalidClient), "{e}");
}

#[tokio::test]
async fn interop_oidc_provider_code_flow_with_pkce_id_token_and_refresh_rotation() {
    let Some(op) = start() else { return };
    let metadata = Arc::new(discover(&http(), &op.issuer).await.unwrap());
    // RFC 9207: oidc-provider advertises `iss` in responses, which the flow then requires.
    assert!(metadata.authorization_response_iss_parameter_supported);
    let client = ClientCredentials::secret_basic("web", "web-secret");
    let flow = CodeFlow::new(
        http(),
        metadata.clone(),
        client.clone(),
        REDIRECT,
        MemoryStateStore::default(),
    )
    .unwrap();
    let start = flow.start("openid offline_access", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let signed_in = flow.callback(&callback).await.unwrap();
    let claims = signed_in.id_token.unwrap();
    assert_eq!(claims.iss, op.issuer);
    assert!(claims.aud.contains("web"));
    assert_eq!(claims.sub, browser::USERNAME);
    // The state is spent.
    assert!(flow.callback(&callback).await.is_err());

    let tokens = signed_in.tokens;
    let first = tokens.refresh_token.clone().unwrap();
    let refresher = Refresher::new(
        http(),
        op.issuer.clone(),
        metadata.endpoint("token_endpoint").unwrap(),
        client.clone(),
        MemoryRefreshTokenStore::default(),
    )
    .unwrap();
    refresher.set_current(&tokens).await.unwrap();
    let refreshed = refresher.refresh_after_rejection(&tokens.access_token).await.unwrap();
    assert_ne!(refreshed, tokens.access_token);
    let rotated = refresher.store().load().await.unwrap().unwrap();
    assert_ne!(rotated, first, "oidc-provider rotated the refresh token and it was stored");
    refresher.refresh().await.unwrap();
    // The first refresh token is spent at the server: presenting it again is refused.
    let reuse = client
        .token_request(
            &http(),
            metadata.endpoint("token_endpoint").unwrap(),
            &op.issuer,
            &[("grant_type", "refresh_token"), ("refresh_token", first.expose())],
            crate::common::now(),
        )
        .await
        .unwrap_err();
    assert_eq!(reuse.oauth_code(), Some(ErrorCode::InvalidGrant), "{reuse}");
}

/// Discovery of an issuer with a path from the one place a real server publishes it, then a
/// client-credentials token and a user's sign-in through the endpoints that document names
/// (below the path).
async fn discovered_at_path_and_used(form: &str) {
    let Some(op) = start_at_path("/tenant-a/oidc", form) else { return };
    assert!(op.issuer.ends_with("/tenant-a/oidc"), "{}", op.issuer);
    let metadata = discover(&http(), &op.issuer).await.unwrap();
    assert_eq!(metadata.issuer, op.issuer);
    let token_endpoint = metadata.endpoint("token_endpoint").unwrap().to_owned();
    assert!(token_endpoint.starts_with(&format!("{}/", op.issuer)), "{token_endpoint}");
    let m = TokenManager::builder(
        http(),
        op.issuer.clone(),
        token_endpoint,
        ClientCredentials::secret_basic("svc", "svc-secret"),
    )
    .unwrap()
    .build();
    m.token(&TokenRequest::new(["api:read"], None)).await.unwrap();
    // Through the cached client too.
    let clock = Arc::new(tessera_client::ManualClock::at(crate::common::now()));
    let cached = tessera_client::Discovery::new(http(), op.issuer.clone(), clock);
    assert_eq!(*cached.get().await.unwrap(), metadata);
    // A user signs in below the path: the ID token's `iss` is the issuer with its path, and
    // RFC 9207 `iss` in the response too.
    let flow = CodeFlow::new(
        http(),
        Arc::new(metadata),
        ClientCredentials::secret_basic("web", "web-secret"),
        REDIRECT,
        MemoryStateStore::default(),
    )
    .unwrap();
    let start = flow.start("openid", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let claims = flow.callback(&callback).await.unwrap().id_token.unwrap();
    assert_eq!(claims.iss, op.issuer);
}

/// RFC 8414 §3.1: for an issuer with a path, the well-known suffix goes between the host and
/// the path: `/.well-known/oauth-authorization-server/tenant-a/oidc`.
#[tokio::test]
async fn rfc8414_3_1_metadata_of_an_issuer_with_a_path_is_found_at_the_inserted_location() {
    discovered_at_path_and_used("inserted").await;
}

/// OpenID Connect Discovery 1.0 §4: the path of the issuer, then
/// `/.well-known/openid-configuration` (oidc-provider's own location).
#[tokio::test]
async fn oidc_discovery_4_metadata_of_an_issuer_with_a_path_is_found_appended_to_the_path() {
    discovered_at_path_and_used("appended").await;
}

/// RFC 8414 §5: `openid-configuration` inserted like RFC 8414's own suffix, as some providers
/// with a path publish it.
#[tokio::test]
async fn rfc8414_5_openid_configuration_inserted_before_the_issuer_path_is_found() {
    discovered_at_path_and_used("inserted-openid").await;
}

/// RFC 8414 §3.3 / OIDC Discovery §4.3: the document's `issuer` must be identical to the one
/// asked for; with a trailing slash the same locations are tried, the document is found, and
/// refused.
#[tokio::test]
async fn rfc8414_3_3_an_issuer_with_a_path_must_match_exactly_a_trailing_slash_is_another_issuer() {
    let Some(op) = start_at_path("/tenant-a/oidc", "inserted") else { return };
    let asked = format!("{}/", op.issuer);
    let e = discover(&http(), &asked).await.unwrap_err();
    assert!(e.to_string().contains(&format!("is for issuer {}, not {asked}", op.issuer)), "{e}");
}
