//! Authorization code + PKCE with ID-token validation, and refresh rotation, against Tessera.

use std::sync::Arc;

use tessera_client::code_flow::PendingAuthorization;
use tessera_client::refresh::Refresher;
use tessera_client::{
    CallbackError, ClientCredentials, CodeFlow, Error, MemoryRefreshTokenStore, MemoryStateStore,
    RefreshTokenStore, StateStore, discover,
};
use tessera_core::client::ClientRegistration;
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::secret::Secret;
use tessera_core::store::UserStore;
use tessera_core::user::User;
use tessera_jose::{IdTokenError, VerifyError};

use crate::browser::{self, PASSWORD, USERNAME};
use crate::common::{TestServer, http, now, scope_set};

pub const REDIRECT: &str = "https://app.example/cb";

async fn web_app(server: &TestServer) -> ClientCredentials {
    let user =
        User::new(USERNAME, None, None, &Secret::from_string(PASSWORD.into()), now()).unwrap();
    server.store().create_user(&user).await.unwrap();
    let (id, secret) = server
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("webapp").unwrap()),
            client_name: "webapp".into(),
            redirect_uris: vec![RedirectUri::parse_for_registration(REDIRECT).unwrap()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: scope_set(&["openid", "orders:read"]),
            first_party: true,
            ..Default::default()
        })
        .await;
    ClientCredentials::secret_basic(id, secret.unwrap())
}

async fn flow(server: &TestServer) -> CodeFlow<MemoryStateStore> {
    flow_and_client(server).await.0
}

pub async fn flow_and_client(
    server: &TestServer,
) -> (CodeFlow<MemoryStateStore>, ClientCredentials) {
    let metadata = Arc::new(discover(&http(), &server.issuer).await.unwrap());
    let client = web_app(server).await;
    let flow =
        CodeFlow::new(http(), metadata, client.clone(), REDIRECT, MemoryStateStore::default())
            .unwrap();
    (flow, client)
}

#[tokio::test]
async fn rfc7636_oidc_3_1_code_flow_with_pkce_signs_in_and_validates_the_id_token() {
    let server = TestServer::start().await;
    let flow = flow(&server).await;
    let start = flow.start("openid orders:read", Some("/orders".into())).await.unwrap();
    let query: Vec<(String, String)> = start.url.query_pairs().into_owned().collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("code_challenge_method"), "S256");
    // RFC 9700 §2.1.1 / OIDC Core §3.1.2.1: state and nonce carry at least 128 random bits.
    assert!(get("state").len() >= 22 && get("nonce").len() >= 22);
    assert_ne!(get("state"), get("nonce"));

    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let signed_in = flow.callback(&callback).await.unwrap();
    let claims = signed_in.id_token.unwrap();
    assert_eq!(claims.iss, server.issuer);
    assert!(claims.aud.contains("webapp"));
    assert_eq!(claims.nonce.as_deref(), Some(get("nonce").as_str()));
    assert!(claims.at_hash.is_some());
    assert_eq!(signed_in.return_to.as_deref(), Some("/orders"));
    assert!(signed_in.tokens.refresh_token.is_some());
}

#[tokio::test]
async fn rfc6749_10_12_a_replayed_state_is_refused() {
    let server = TestServer::start().await;
    let flow = flow(&server).await;
    let start = flow.start("openid", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    flow.callback(&callback).await.unwrap();
    let calls = server.token_calls();
    let replay = flow.callback(&callback).await.unwrap_err();
    assert!(matches!(replay, Error::Callback(CallbackError::UnknownState)), "{replay}");
    // Refused before any code exchange.
    assert_eq!(server.token_calls(), calls);
    let forged = flow.callback("code=x&state=made-up").await.unwrap_err();
    assert!(matches!(forged, Error::Callback(CallbackError::UnknownState)), "{forged}");
}

#[tokio::test]
async fn rfc9207_2_4_a_response_from_another_issuer_is_refused_and_its_state_is_spent() {
    let server = TestServer::start().await;
    let flow = flow(&server).await;
    let start = flow.start("openid", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let mixed_up: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(callback.as_bytes()).map(|(k, v)| {
            let v = if k == "iss" { "https://evil.example".into() } else { v };
            (k, v)
        }))
        .finish();
    let e = flow.callback(&mixed_up).await.unwrap_err();
    assert!(matches!(e, Error::Callback(CallbackError::WrongIssuer)), "{e}");
    // Tessera advertises RFC 9207, so a missing `iss` is refused as well.
    let start = flow.start("openid", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let without_iss: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(callback.as_bytes()).filter(|(k, _)| k != "iss"))
        .finish();
    let e = flow.callback(&without_iss).await.unwrap_err();
    assert!(matches!(e, Error::Callback(CallbackError::WrongIssuer)), "{e}");
}

/// A store that hands back the pending sign-in with another nonce: the ID token (minted with
/// the real one) must then fail the nonce check.
struct SwappedNonce(MemoryStateStore);

impl StateStore for SwappedNonce {
    async fn put(&self, state: &str, pending: PendingAuthorization) -> Result<(), Error> {
        let mut json = serde_json::to_value(&pending).unwrap();
        json["nonce"] = "a-nonce-from-another-session".into();
        self.0.put(state, serde_json::from_value(json).unwrap()).await
    }

    async fn take(&self, state: &str) -> Result<Option<PendingAuthorization>, Error> {
        self.0.take(state).await
    }
}

#[tokio::test]
async fn oidc_3_1_3_7_an_id_token_with_another_nonce_is_refused() {
    let server = TestServer::start().await;
    let metadata = Arc::new(discover(&http(), &server.issuer).await.unwrap());
    let store = SwappedNonce(MemoryStateStore::default());
    let flow = CodeFlow::new(http(), metadata, web_app(&server).await, REDIRECT, store).unwrap();
    let start = flow.start("openid", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let e = flow.callback(&callback).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::NonceMismatch)), "{e}");
}

#[tokio::test]
async fn oidc_3_1_3_7_id_tokens_for_another_client_issuer_or_past_exp_are_refused() {
    let server = TestServer::start().await;
    let flow = flow(&server).await;
    let start = flow.start("openid", None).await.unwrap();
    let nonce =
        start.url.query_pairs().find(|(k, _)| k == "nonce").map(|(_, v)| v.into_owned()).unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let tokens = flow.callback(&callback).await.unwrap().tokens;
    let id_token = tokens.id_token.clone().unwrap();
    assert!(flow.validate_id_token(&id_token, Some(&nonce), Some(&tokens)).await.is_ok());

    // Another client's view of the same token: wrong audience.
    let metadata = Arc::new(discover(&http(), &server.issuer).await.unwrap());
    let other = CodeFlow::new(
        http(),
        metadata.clone(),
        ClientCredentials::public("someone-else"),
        REDIRECT,
        MemoryStateStore::default(),
    )
    .unwrap();
    let e = other.validate_id_token(&id_token, Some(&nonce), None).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::WrongAudience)), "{e}");

    // Another issuer's metadata with the same keys: wrong issuer.
    let mut elsewhere = (*metadata).clone();
    elsewhere.issuer = "https://other.example".into();
    let other = CodeFlow::new(
        http(),
        Arc::new(elsewhere),
        ClientCredentials::public("webapp"),
        REDIRECT,
        MemoryStateStore::default(),
    )
    .unwrap();
    let e = other.validate_id_token(&id_token, Some(&nonce), None).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::Verify(VerifyError::WrongIssuer))), "{e}");

    // An hour later: expired.
    let later = Arc::new(tessera_client::ManualClock::at(now() + 3600));
    let flow = flow.clock(later);
    let e = flow.validate_id_token(&id_token, Some(&nonce), None).await.unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::Verify(VerifyError::Expired))), "{e}");
}

#[tokio::test]
async fn rfc9700_4_14_2_refresh_stores_the_rotated_token_first_and_runs_once_for_concurrent_callers()
 {
    let server = TestServer::start().await;
    let (flow, client) = flow_and_client(&server).await;
    let start = flow.start("openid orders:read", None).await.unwrap();
    let callback = browser::sign_in(start.url.as_str(), REDIRECT).await;
    let tokens = flow.callback(&callback).await.unwrap().tokens;
    let first_refresh = tokens.refresh_token.clone().unwrap();
    let refresher = Arc::new(
        Refresher::new(
            http(),
            server.issuer.clone(),
            format!("{}/token", server.issuer),
            client,
            MemoryRefreshTokenStore::default(),
        )
        .unwrap(),
    );
    refresher.set_current(&tokens).await.unwrap();
    assert_eq!(refresher.store().load().await.unwrap(), Some(first_refresh.clone()));

    // Two callers whose token was rejected at once: one refresh, both get its token, and the
    // store holds the rotated refresh token.
    let calls = server.token_calls();
    let (a, b) = tokio::join!(
        refresher.refresh_after_rejection(&tokens.access_token),
        refresher.refresh_after_rejection(&tokens.access_token)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_ne!(a, tokens.access_token);
    assert_eq!(server.token_calls() - calls, 1);
    let rotated = refresher.store().load().await.unwrap().unwrap();
    assert_ne!(rotated, first_refresh);

    // Another rotation works from the stored token (the old one is never sent again: the
    // server would see reuse and revoke the family).
    refresher.refresh().await.unwrap();
    assert_eq!(server.token_calls() - calls, 2);
    refresher.refresh().await.unwrap();
}
