//! The store's test suite, run against both backends: every case is one `async fn` taking a
//! [`TestDb`], and `on_both_backends!` turns it into a `CASE::sqlite` and a `CASE::postgres`
//! test; one module per aggregate.
//!
//! The databases come from `tessera_store::testing` (the `testing` feature): SQLite runs on a
//! fresh file under the temp directory. PostgreSQL runs at `TESSERA_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), each test in a schema of its own, so
//! tests run in parallel and can be re-run. When PostgreSQL cannot be reached its tests are
//! skipped with a note on stderr, or fail when `CI=true`.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tessera_core::client::{AccessTokenFormat, AuthMethod, Client, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg, StoredKey, generate_key};
use tessera_core::pkce::CodeChallenge;
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::{Secret, SecretHash, random_bytes, random_id};
use tessera_core::store::{
    AuditEvent, AuthorizationCode, CodeRedemption, Consent, DeviceApproval, DeviceAuthorization,
    DevicePoll, DeviceState, Grant, OpaqueAccessToken, RefreshRotation, RefreshTokenRecord,
    RotationRequest, Session, StoreError,
};
use tessera_core::user::User;
use tessera_store::testing::{TestDb, remove_sqlite_files, temp_sqlite_path};
use tessera_store::{
    AuditStore, AuthorizationCodeStore, ClientStore, ConsentStore, DeviceStore, GrantStore,
    SessionStore, SigningKeyStore, Store, TokenStore, UserStore,
};
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Declares, for each case `$body` (an `async fn` taking a [`TestDb`]), a module `$body` with a
/// `sqlite` and a `postgres` test running it on a fresh database of that kind; `unmigrated`
/// connects without applying migrations.
macro_rules! on_both_backends {
    ($($body:ident $(, $unmigrated:ident)?;)*) => {$(
        mod $body {
            #[tokio::test]
            async fn sqlite() {
                let db = on_both_backends!(@sqlite $($unmigrated)?).await;
                super::$body(&db).await;
                db.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = on_both_backends!(@postgres $($unmigrated)?).await else {
                    return;
                };
                super::$body(&db).await;
                db.cleanup().await;
            }
        }
    )*};
    (@sqlite unmigrated) => { ::tessera_store::testing::TestDb::sqlite_unmigrated() };
    (@sqlite) => { ::tessera_store::testing::TestDb::sqlite() };
    (@postgres unmigrated) => { ::tessera_store::testing::TestDb::postgres_unmigrated() };
    (@postgres) => { ::tessera_store::testing::TestDb::postgres() };
}

// The cases, one module per aggregate.
mod access_tokens;
mod assertions;
mod clients;
mod codes;
mod consents_and_sessions;
mod devices;
mod dynamic_clients;
mod group_commit;
mod pushed_requests;
mod refresh_tokens;
mod resources;
mod schema;
mod signing_keys;
mod users;

// ---------------------------------------------------------------------------------------------
// Records shared by the cases
// ---------------------------------------------------------------------------------------------

const NOW: i64 = 1_700_000_000;

fn uri(raw: &str) -> RedirectUri {
    RedirectUri::parse_for_registration(raw).unwrap()
}

fn client_id(raw: &str) -> ClientId {
    ClientId::parse(raw).unwrap()
}

/// A confidential client with every field set to something other than its default.
fn confidential_client(id: &str) -> (Client, Secret) {
    let (client, secret) = ClientRegistration {
        client_id: Some(client_id(id)),
        client_name: format!("{id} (confidential)"),
        redirect_uris: vec![
            uri("https://app.example.com/callback"),
            uri("http://127.0.0.1:8400/cb"),
            uri("com.example.app:/oauth2redirect"),
        ],
        post_logout_redirect_uris: vec![uri("https://app.example.com/bye")],
        grant_types: vec![
            GrantType::RefreshToken,
            GrantType::AuthorizationCode,
            GrantType::ClientCredentials,
            GrantType::DeviceCode,
            GrantType::TokenExchange,
        ],
        scope: ScopeSet::parse("openid orders:read orders:write document:read:doc-123").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        public: false,
        first_party: true,
        introspection: true,
        introspection_audience: Some("https://api.example.com".into()),
        access_token_format: AccessTokenFormat::Opaque,
        jwks: None,
        jwks_uri: None,
        rate_limit_per_second: Some(250),
        refresh_token_grace_seconds: 5,
        token_exchange: tessera_core::client::ExchangePolicy {
            subject_clients: vec!["web".into(), "spa".into()],
            subject_audiences: vec!["https://api.example.com/orders".into()],
        },
        require_pushed_authorization_requests: true,
        dpop_bound_access_tokens: false,
        tls_client_auth_name: None,
        tls_client_certificate_bound_access_tokens: false,
        id_token_signed_response_alg: Some(tessera_core::keys::SigningAlg::ES256),
        auth_method: Some(AuthMethod::ClientSecretPost),
        imported_secret: None,
        application_type: None,
        links: Default::default(),
    }
    .into_client(NOW)
    .unwrap();
    (client, secret.unwrap())
}

/// A public client: no secret, auth method `none`, defaults elsewhere.
fn public_client(id: &str) -> Client {
    let (client, secret) = ClientRegistration {
        client_id: Some(client_id(id)),
        client_name: format!("{id} (public)"),
        redirect_uris: vec![uri("com.example.app:/cb"), uri("http://[::1]/cb")],
        scope: ScopeSet::parse("openid profile").unwrap(),
        public: true,
        ..Default::default()
    }
    .into_client(NOW + 1)
    .unwrap();
    assert!(secret.is_none());
    client
}

fn assert_same_client(actual: &Client, expected: &Client) {
    assert_eq!(actual.client_id, expected.client_id);
    assert_eq!(actual.client_name, expected.client_name);
    assert_eq!(actual.secret_hash, expected.secret_hash);
    assert_eq!(actual.token_endpoint_auth_method, expected.token_endpoint_auth_method);
    assert_eq!(actual.redirect_uris, expected.redirect_uris);
    assert_eq!(actual.post_logout_redirect_uris, expected.post_logout_redirect_uris);
    assert_eq!(actual.grant_types, expected.grant_types);
    assert_eq!(actual.scope, expected.scope);
    assert_eq!(actual.default_scope, expected.default_scope);
    assert_eq!(actual.audience, expected.audience);
    assert_eq!(actual.first_party, expected.first_party);
    assert_eq!(actual.introspection, expected.introspection);
    assert_eq!(actual.introspection_audience, expected.introspection_audience);
    assert_eq!(actual.access_token_format, expected.access_token_format);
    assert_eq!(actual.jwks, expected.jwks);
    assert_eq!(actual.jwks_uri, expected.jwks_uri);
    assert_eq!(actual.rate_limit_per_second, expected.rate_limit_per_second);
    assert_eq!(actual.refresh_token_grace_seconds, expected.refresh_token_grace_seconds);
    assert_eq!(actual.tls_client_auth_name, expected.tls_client_auth_name);
    assert_eq!(
        actual.tls_client_certificate_bound_access_tokens,
        expected.tls_client_certificate_bound_access_tokens
    );
    assert_eq!(actual.id_token_signed_response_alg, expected.id_token_signed_response_alg);
    assert_eq!(actual.created_at, expected.created_at);
}

/// One Argon2id hash per test (it is slow in debug builds); more users are copies of it.
fn user(username: &str) -> User {
    User::new(
        username,
        Some(format!("{}@example.com", username.to_lowercase())),
        Some("Alice Liddell".into()),
        &Secret::from_string("correct horse battery".into()),
        NOW,
    )
    .unwrap()
}

fn another_user(template: &User, username: &str) -> User {
    User {
        id: tessera_core::secret::random_id::<16>(),
        username: username.into(),
        email: None,
        name: None,
        created_at: template.created_at + 1,
        ..template.clone()
    }
}

fn assert_same_user(actual: &User, expected: &User) {
    assert_eq!(actual.id, expected.id);
    assert_eq!(actual.username, expected.username);
    assert_eq!(actual.email, expected.email);
    assert_eq!(actual.name, expected.name);
    assert_eq!(actual.password_hash, expected.password_hash);
    assert_eq!(actual.created_at, expected.created_at);
}

fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded()).unwrap()
}

fn key(alg: SigningAlg, created_at: i64, activates_at: i64) -> StoredKey {
    generate_key(alg, &kek(), created_at, activates_at).unwrap()
}

fn assert_same_key(actual: &StoredKey, expected: &StoredKey) {
    assert_eq!(actual.kid, expected.kid);
    assert_eq!(actual.alg, expected.alg);
    assert_eq!(actual.sealed_private_key, expected.sealed_private_key);
    assert_eq!(actual.public_jwk, expected.public_jwk);
    assert_eq!(actual.created_at, expected.created_at);
    assert_eq!(actual.activates_at, expected.activates_at);
    assert_eq!(actual.signing_until, expected.signing_until);
    assert_eq!(actual.publish_until, expected.publish_until);
}

/// The published key with `kid`.
fn find<'a>(keys: &'a [StoredKey], kid: &str) -> &'a StoredKey {
    keys.iter().find(|k| k.kid == kid).unwrap_or_else(|| panic!("key {kid} is not published"))
}

fn kids(keys: &[StoredKey]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

fn backend_message(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Backend(e)) => e.to_string(),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The refresh tokens' idle lifetime in rotations, unless a test says otherwise.
const IDLE_TTL: i64 = 3600;

/// A grant of `client` by `user_id`, created at `NOW`, its family ending a day later.
fn grant(client: &str, user_id: &str) -> Grant {
    Grant {
        id: random_id::<16>(),
        client_id: client_id(client),
        user_id: user_id.into(),
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        auth_time: NOW - 30,
        sid: Some(random_id::<16>()),
        audience: vec!["https://api.example.com".into()],
        created_at: NOW,
        expires_at: NOW + 86_400,
        dpop_jkt: None,
    }
}

/// A new code of `grant` (valid for 60 s) and what the store keeps of it.
fn code_of(grant: &Grant) -> (Secret, AuthorizationCode) {
    let code = Secret::generate();
    let stored = AuthorizationCode {
        code_hash: code.hash(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.example.com/callback".into(),
        code_challenge: CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        expires_at: NOW + 60,
    };
    (code, stored)
}

/// Stores the account `id` (also its username) unless it exists: a code, a refresh token, a
/// session or a device approval counts only while its user exists and is enabled.
async fn ensure_user(store: &Store, id: &str) {
    let account = User {
        id: id.into(),
        username: id.into(),
        email: None,
        name: None,
        password_hash: tessera_core::user::UNKNOWN_USER_PASSWORD_HASH.into(),
        created_at: NOW,
        disabled: false,
    };
    match store.create_user(&account).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => panic!("creating user {id}: {e}"),
    }
}

/// Stores `grant` (and its user) with a code; returns the code's hash.
async fn insert_grant(store: &Store, grant: &Grant) -> SecretHash {
    ensure_user(store, &grant.user_id).await;
    let (_, code) = code_of(grant);
    store.insert_grant_with_code(grant, &code).await.unwrap();
    code.code_hash
}

/// Stores `grant` and a refresh token of it issued at `NOW`, idle until `expires_at`; returns
/// the token's hash.
async fn grant_with_refresh_token(store: &Store, grant: &Grant, expires_at: i64) -> SecretHash {
    insert_grant(store, grant).await;
    let token = Secret::generate().hash();
    store.insert_refresh_token(&token, &grant.id, NOW, expires_at, None).await.unwrap();
    token
}

/// Rotates `old` for `client` at `now`, accepting any grant; returns the outcome and the hash
/// of the new token (stored only if the outcome is `Rotated`).
async fn rotate(
    store: &Store,
    old: &SecretHash,
    client: &str,
    now: i64,
) -> (RefreshRotation<(), ()>, SecretHash) {
    let new = Secret::generate().hash();
    let client_id = client_id(client);
    let jti = random_id::<16>();
    let rotation = RotationRequest {
        idle_ttl: IDLE_TTL,
        ..rotation_request(old, &new, &client_id, now, &jti)
    };
    (store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap(), new)
}

/// A rotation of `old` into `new` at `now` that records the access token `jti`.
fn rotation_request<'a>(
    old: &'a SecretHash,
    new: &'a SecretHash,
    client_id: &'a ClientId,
    now: i64,
    jti: &'a str,
) -> RotationRequest<'a> {
    RotationRequest {
        old,
        new,
        client_id,
        now,
        idle_ttl: IDLE_TTL,
        access_token_jti: jti,
        access_token_expires_at: now + 900,
        grace_seconds: 0,
        certificate: None,
    }
}

fn rotated(outcome: RefreshRotation<(), ()>) -> Grant {
    match outcome {
        RefreshRotation::Rotated { grant, .. } => grant,
        other => panic!("expected Rotated, got {other:?}"),
    }
}

fn assert_invalid(outcome: RefreshRotation<(), ()>) {
    assert!(matches!(outcome, RefreshRotation::Invalid), "expected Invalid, got {outcome:?}");
}

fn assert_reused(outcome: RefreshRotation<(), ()>, grant: &Grant) {
    match outcome {
        RefreshRotation::Reused { grant_id } => assert_eq!(grant_id, grant.id),
        other => panic!("expected Reused, got {other:?}"),
    }
}

/// Redeems `code` as the client `web` at `now`, accepting whatever the code is bound to.
async fn redeem(store: &Store, code: &SecretHash, now: i64) -> CodeRedemption<(), ()> {
    store.redeem_code(code, &client_id("web"), now, |_| Ok::<(), ()>(())).await.unwrap()
}

fn redeemed(outcome: CodeRedemption<(), ()>) -> (AuthorizationCode, Grant) {
    match outcome {
        CodeRedemption::Redeemed { code, grant, proof: () } => (*code, grant),
        other => panic!("expected Redeemed, got {other:?}"),
    }
}

fn assert_unknown(outcome: CodeRedemption<(), ()>) {
    assert!(matches!(outcome, CodeRedemption::Unknown), "expected Unknown, got {outcome:?}");
}

fn assert_already_redeemed(outcome: CodeRedemption<(), ()>, grant: &Grant) {
    match outcome {
        CodeRedemption::AlreadyRedeemed { grant_id } => assert_eq!(grant_id, grant.id),
        other => panic!("expected AlreadyRedeemed, got {other:?}"),
    }
}

/// The grant's `revoked_at`, read raw.
async fn revoked_at(db: &TestDb, grant: &Grant) -> Option<i64> {
    db.raw_i64("SELECT revoked_at FROM grants WHERE id = $1", &grant.id).await
}

/// How many of the grant's refresh tokens are current (not rotated).
async fn current_refresh_tokens(db: &TestDb, grant: &Grant) -> i64 {
    let sql = "SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NULL";
    db.raw_i64(sql, &grant.id).await.unwrap()
}

fn session(user_id: &str, expires_at: i64) -> (Secret, Session) {
    let cookie = Secret::generate();
    let session = Session {
        id_hash: cookie.hash(),
        sid: random_id::<16>(),
        user_id: user_id.into(),
        auth_time: NOW,
        expires_at,
    };
    (cookie, session)
}

// ---------------------------------------------------------------------------------------------
// Backend-specific cases
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_file_is_created_on_first_connect_in_wal_mode() {
    for scheme in ["sqlite://", "sqlite:"] {
        let path = temp_sqlite_path();
        assert!(!path.exists());
        let url = format!("{scheme}{}", path.display());
        let store = Store::connect(&url).await.unwrap();
        assert!(path.exists(), "{url} was not created");
        assert_eq!(store.backend(), "sqlite");

        let mut raw = SqliteConnection::connect(&url).await.unwrap();
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut raw).await.unwrap();
        assert_eq!(mode, "wal");
        raw.close().await.unwrap();
        store.close().await;
        remove_sqlite_files(&path);
    }
}

#[tokio::test]
async fn sqlite_in_memory_database_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (client, _) = confidential_client("svc");
    store.create_client(&client).await.unwrap();
    assert!(store.find_client(&client.client_id).await.unwrap().is_some());
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unsupported_url_scheme_is_a_backend_error_naming_the_accepted_forms() {
    for url in ["mysql://root:hunter2@localhost/tessera", "tessera.db", "postgres:/x"] {
        let message = backend_message(Store::connect(url).await);
        for form in ["sqlite://", "sqlite:PATH", "sqlite::memory:", "postgres://", "postgresql://"]
        {
            assert!(message.contains(form), "{message}");
        }
        assert!(!message.contains("hunter2"), "the password must not be echoed: {message}");
    }
}
