//! The store's test suite, run against both backends: every case is one `async fn` taking a
//! [`TestDb`], and `on_both_backends!` turns it into a `…_sqlite` and a `…_postgres` test.
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
    AuditEvent, AuthorizationCode, CodeRedemption, Consent, DeviceAuthorization, DevicePoll,
    DeviceStatus, Grant, OpaqueAccessToken, RefreshRotation, RefreshTokenRecord, RotationRequest,
    Session, StoreError,
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

/// Declares `$sqlite` and `$postgres` tests running `$body` on a fresh database of each kind;
/// `unmigrated` connects without applying migrations.
macro_rules! on_both_backends {
    ($($body:ident => $sqlite:ident, $postgres:ident $(, $unmigrated:ident)?;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            let db = on_both_backends!(@sqlite $($unmigrated)?).await;
            $body(&db).await;
            db.cleanup().await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(db) = on_both_backends!(@postgres $($unmigrated)?).await else {
                return;
            };
            $body(&db).await;
            db.cleanup().await;
        }
    )*};
    (@sqlite unmigrated) => { TestDb::sqlite_unmigrated() };
    (@sqlite) => { TestDb::sqlite() };
    (@postgres unmigrated) => { TestDb::postgres_unmigrated() };
    (@postgres) => { TestDb::postgres() };
}

on_both_backends! {
    ping_and_backend_name => ping_and_backend_name_sqlite, ping_and_backend_name_postgres;
    clients_round_trip => clients_round_trip_sqlite, clients_round_trip_postgres;
    duplicate_client_is_a_conflict =>
        duplicate_client_is_a_conflict_sqlite, duplicate_client_is_a_conflict_postgres;
    delete_client_reports_whether_it_deleted =>
        delete_client_reports_whether_it_deleted_sqlite,
        delete_client_reports_whether_it_deleted_postgres;
    list_clients_is_ordered_by_client_id =>
        list_clients_is_ordered_by_client_id_sqlite,
        list_clients_is_ordered_by_client_id_postgres;
    secret_hash_column_holds_only_the_sha256 =>
        secret_hash_column_holds_only_the_sha256_sqlite,
        secret_hash_column_holds_only_the_sha256_postgres;
    users_round_trip => users_round_trip_sqlite, users_round_trip_postgres;
    duplicate_username_is_a_conflict =>
        duplicate_username_is_a_conflict_sqlite, duplicate_username_is_a_conflict_postgres;
    delete_user_reports_whether_it_deleted =>
        delete_user_reports_whether_it_deleted_sqlite,
        delete_user_reports_whether_it_deleted_postgres;
    signing_keys_round_trip => signing_keys_round_trip_sqlite, signing_keys_round_trip_postgres;
    rotation_retires_only_current_keys_of_the_same_alg =>
        rotation_retires_only_current_keys_of_the_same_alg_sqlite,
        rotation_retires_only_current_keys_of_the_same_alg_postgres;
    published_keys_hides_expired_keys =>
        published_keys_hides_expired_keys_sqlite, published_keys_hides_expired_keys_postgres;
    prune_deletes_only_expired_keys =>
        prune_deletes_only_expired_keys_sqlite, prune_deletes_only_expired_keys_postgres;
    unreadable_rows_are_backend_errors_naming_the_column =>
        unreadable_rows_are_backend_errors_naming_the_column_sqlite,
        unreadable_rows_are_backend_errors_naming_the_column_postgres;
    migrations_are_idempotent_and_data_survives_reconnect =>
        migrations_are_idempotent_and_data_survives_reconnect_sqlite,
        migrations_are_idempotent_and_data_survives_reconnect_postgres;
    fresh_database_applies_every_migration_then_none =>
        fresh_database_applies_every_migration_then_none_sqlite,
        fresh_database_applies_every_migration_then_none_postgres, unmigrated;
    code_is_redeemed_once_then_reported_as_replay =>
        code_is_redeemed_once_then_reported_as_replay_sqlite,
        code_is_redeemed_once_then_reported_as_replay_postgres;
    grant_with_empty_scope_and_no_sid_round_trips =>
        grant_with_empty_scope_and_no_sid_round_trips_sqlite,
        grant_with_empty_scope_and_no_sid_round_trips_postgres;
    expired_code_is_unknown => expired_code_is_unknown_sqlite, expired_code_is_unknown_postgres;
    code_of_a_revoked_grant_is_unknown =>
        code_of_a_revoked_grant_is_unknown_sqlite, code_of_a_revoked_grant_is_unknown_postgres;
    concurrent_redeems_have_exactly_one_winner =>
        concurrent_redeems_have_exactly_one_winner_sqlite,
        concurrent_redeems_have_exactly_one_winner_postgres;
    concurrent_redeems_across_two_pools_have_one_winner =>
        concurrent_redeems_across_two_pools_have_one_winner_sqlite,
        concurrent_redeems_across_two_pools_have_one_winner_postgres;
    refresh_rotation_spends_the_old_token_and_detects_reuse =>
        refresh_rotation_spends_the_old_token_and_detects_reuse_sqlite,
        refresh_rotation_spends_the_old_token_and_detects_reuse_postgres;
    rotation_refused_by_accept_changes_nothing =>
        rotation_refused_by_accept_changes_nothing_sqlite,
        rotation_refused_by_accept_changes_nothing_postgres;
    rotation_for_another_client_is_invalid_not_reuse =>
        rotation_for_another_client_is_invalid_not_reuse_sqlite,
        rotation_for_another_client_is_invalid_not_reuse_postgres;
    rotation_of_revoked_or_expired_grant_is_invalid =>
        rotation_of_revoked_or_expired_grant_is_invalid_sqlite,
        rotation_of_revoked_or_expired_grant_is_invalid_postgres;
    expired_refresh_token_is_invalid =>
        expired_refresh_token_is_invalid_sqlite, expired_refresh_token_is_invalid_postgres;
    new_refresh_token_expiry_is_capped_by_the_grant =>
        new_refresh_token_expiry_is_capped_by_the_grant_sqlite,
        new_refresh_token_expiry_is_capped_by_the_grant_postgres;
    concurrent_rotations_have_exactly_one_winner =>
        concurrent_rotations_have_exactly_one_winner_sqlite,
        concurrent_rotations_have_exactly_one_winner_postgres;
    concurrent_rotations_across_two_pools_have_one_winner =>
        concurrent_rotations_across_two_pools_have_one_winner_sqlite,
        concurrent_rotations_across_two_pools_have_one_winner_postgres;
    revoking_a_grant_revokes_its_access_tokens =>
        revoking_a_grant_revokes_its_access_tokens_sqlite,
        revoking_a_grant_revokes_its_access_tokens_postgres;
    unreadable_grant_is_a_backend_error_and_spends_nothing =>
        unreadable_grant_is_a_backend_error_and_spends_nothing_sqlite,
        unreadable_grant_is_a_backend_error_and_spends_nothing_postgres;
    consent_upsert_list_and_revoke_revokes_grants =>
        consent_upsert_list_and_revoke_revokes_grants_sqlite,
        consent_upsert_list_and_revoke_revokes_grants_postgres;
    sessions_expire_and_delete =>
        sessions_expire_and_delete_sqlite, sessions_expire_and_delete_postgres;
    no_plaintext_codes_or_tokens_in_the_database =>
        no_plaintext_codes_or_tokens_in_the_database_sqlite,
        no_plaintext_codes_or_tokens_in_the_database_postgres;
    client_round_trip_keeps_private_key_jwt_and_token_format_fields =>
        client_round_trip_keeps_private_key_jwt_and_token_format_fields_sqlite,
        client_round_trip_keeps_private_key_jwt_and_token_format_fields_postgres;
    unreadable_new_columns_are_backend_errors_naming_the_column =>
        unreadable_new_columns_are_backend_errors_naming_the_column_sqlite,
        unreadable_new_columns_are_backend_errors_naming_the_column_postgres;
    rows_written_before_0003_read_with_defaults =>
        rows_written_before_0003_read_with_defaults_sqlite,
        rows_written_before_0003_read_with_defaults_postgres, unmigrated;
    grant_audience_round_trips =>
        grant_audience_round_trips_sqlite, grant_audience_round_trips_postgres;
    opaque_token_round_trip_stores_only_the_hash =>
        opaque_token_round_trip_stores_only_the_hash_sqlite,
        opaque_token_round_trip_stores_only_the_hash_postgres;
    rotation_records_its_access_token_under_the_grant =>
        rotation_records_its_access_token_under_the_grant_sqlite,
        rotation_records_its_access_token_under_the_grant_postgres;
    live_opaque_lookup_skips_expired_and_revoked_tokens =>
        live_opaque_lookup_skips_expired_and_revoked_tokens_sqlite,
        live_opaque_lookup_skips_expired_and_revoked_tokens_postgres;
    denylisted_jti_is_revoked =>
        denylisted_jti_is_revoked_sqlite, denylisted_jti_is_revoked_postgres;
    jti_of_revoked_grant_is_revoked =>
        jti_of_revoked_grant_is_revoked_sqlite, jti_of_revoked_grant_is_revoked_postgres;
    find_refresh_token_reports_rotation_and_revocation =>
        find_refresh_token_reports_rotation_and_revocation_sqlite,
        find_refresh_token_reports_rotation_and_revocation_postgres;
    assertion_jti_is_accepted_once_per_client =>
        assertion_jti_is_accepted_once_per_client_sqlite,
        assertion_jti_is_accepted_once_per_client_postgres;
    concurrent_assertions_with_one_jti_have_one_winner =>
        concurrent_assertions_with_one_jti_have_one_winner_sqlite,
        concurrent_assertions_with_one_jti_have_one_winner_postgres;
    prune_removes_only_expired_rows =>
        prune_removes_only_expired_rows_sqlite, prune_removes_only_expired_rows_postgres;
    audit_events_tail_in_order =>
        audit_events_tail_in_order_sqlite, audit_events_tail_in_order_postgres;
    device_authorization_round_trip_and_user_code_lookup =>
        device_authorization_round_trip_and_user_code_lookup_sqlite,
        device_authorization_round_trip_and_user_code_lookup_postgres;
    expired_device_authorization_is_expired_and_not_found_by_user_code =>
        expired_device_authorization_is_expired_and_not_found_by_user_code_sqlite,
        expired_device_authorization_is_expired_and_not_found_by_user_code_postgres;
    rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds =>
        rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds_sqlite,
        rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds_postgres;
    decision_is_taken_once => decision_is_taken_once_sqlite, decision_is_taken_once_postgres;
    denied_poll_is_denied => denied_poll_is_denied_sqlite, denied_poll_is_denied_postgres;
    approved_device_code_is_redeemed_once =>
        approved_device_code_is_redeemed_once_sqlite,
        approved_device_code_is_redeemed_once_postgres;
    another_clients_device_code_is_unknown =>
        another_clients_device_code_is_unknown_sqlite,
        another_clients_device_code_is_unknown_postgres;
    concurrent_polls_of_an_approved_code_have_one_winner =>
        concurrent_polls_of_an_approved_code_have_one_winner_sqlite,
        concurrent_polls_of_an_approved_code_have_one_winner_postgres;
    unreadable_device_authorization_is_a_backend_error_and_changes_nothing =>
        unreadable_device_authorization_is_a_backend_error_and_changes_nothing_sqlite,
        unreadable_device_authorization_is_a_backend_error_and_changes_nothing_postgres;
    prune_removes_expired_device_authorizations =>
        prune_removes_expired_device_authorizations_sqlite,
        prune_removes_expired_device_authorizations_postgres;
}

// ---------------------------------------------------------------------------------------------
// Records
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
        ],
        scope: ScopeSet::parse("openid orders:read orders:write document:read:doc-123").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        public: false,
        first_party: true,
        introspection: true,
        access_token_format: AccessTokenFormat::Opaque,
        jwks: None,
        jwks_uri: None,
        rate_limit_per_second: Some(250),
        auth_method: Some(AuthMethod::ClientSecretPost),
        imported_secret: None,
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
    assert_eq!(actual.access_token_format, expected.access_token_format);
    assert_eq!(actual.jwks, expected.jwks);
    assert_eq!(actual.jwks_uri, expected.jwks_uri);
    assert_eq!(actual.rate_limit_per_second, expected.rate_limit_per_second);
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

/// Stores `grant` with a code; returns the code's hash.
async fn insert_grant(store: &Store, grant: &Grant) -> SecretHash {
    let (_, code) = code_of(grant);
    store.insert_grant_with_code(grant, &code).await.unwrap();
    code.code_hash
}

/// Stores `grant` and a refresh token of it issued at `NOW`, idle until `expires_at`; returns
/// the token's hash.
async fn grant_with_refresh_token(store: &Store, grant: &Grant, expires_at: i64) -> SecretHash {
    insert_grant(store, grant).await;
    let token = Secret::generate().hash();
    store.insert_refresh_token(&token, &grant.id, NOW, expires_at).await.unwrap();
    token
}

/// Rotates `old` for `client` at `now`, accepting any grant; returns the outcome and the hash
/// of the new token (stored only if the outcome is `Rotated`).
async fn rotate(
    store: &Store,
    old: &SecretHash,
    client: &str,
    now: i64,
) -> (RefreshRotation, SecretHash) {
    let new = Secret::generate().hash();
    let client_id = client_id(client);
    let jti = random_id::<16>();
    let rotation = RotationRequest {
        idle_ttl: IDLE_TTL,
        ..rotation_request(old, &new, &client_id, now, &jti)
    };
    (store.rotate_refresh_token(rotation, |_| true).await.unwrap(), new)
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
    }
}

fn rotated(outcome: RefreshRotation) -> Grant {
    match outcome {
        RefreshRotation::Rotated(grant) => grant,
        other => panic!("expected Rotated, got {other:?}"),
    }
}

fn assert_invalid(outcome: RefreshRotation) {
    assert!(matches!(outcome, RefreshRotation::Invalid), "expected Invalid, got {outcome:?}");
}

fn assert_reused(outcome: RefreshRotation, grant: &Grant) {
    match outcome {
        RefreshRotation::Reused { grant_id } => assert_eq!(grant_id, grant.id),
        other => panic!("expected Reused, got {other:?}"),
    }
}

fn redeemed(outcome: CodeRedemption) -> (AuthorizationCode, Grant) {
    match outcome {
        CodeRedemption::Redeemed(code, grant) => (*code, grant),
        other => panic!("expected Redeemed, got {other:?}"),
    }
}

fn assert_unknown(outcome: CodeRedemption) {
    assert!(matches!(outcome, CodeRedemption::Unknown), "expected Unknown, got {outcome:?}");
}

fn assert_already_redeemed(outcome: CodeRedemption, grant: &Grant) {
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
// Cases run on both backends
// ---------------------------------------------------------------------------------------------

async fn ping_and_backend_name(db: &TestDb) {
    db.store.ping().await.unwrap();
    assert_eq!(db.store.backend(), db.backend_name());
}

async fn clients_round_trip(db: &TestDb) {
    let store = &db.store;
    let (confidential, _) = confidential_client("billing-service");
    let public = public_client("mobile-app");
    assert!(confidential.secret_hash.is_some());
    assert!(public.secret_hash.is_none());
    assert_eq!(public.token_endpoint_auth_method, AuthMethod::None);

    store.create_client(&confidential).await.unwrap();
    store.create_client(&public).await.unwrap();

    let found = store.find_client(&confidential.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &confidential);
    assert_eq!(found.redirect_uris.len(), 3);
    let found = store.find_client(&public.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &public);
    assert!(found.is_public() && found.secret_hash.is_none());

    assert!(store.find_client(&client_id("nobody")).await.unwrap().is_none());
    let all = store.list_clients().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_same_client(&all[0], &confidential);
    assert_same_client(&all[1], &public);
}

async fn duplicate_client_is_a_conflict(db: &TestDb) {
    let (first, _) = confidential_client("svc");
    db.store.create_client(&first).await.unwrap();
    let second = public_client("svc");
    match db.store.create_client(&second).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "client `svc`"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The first registration is untouched.
    let found = db.store.find_client(&first.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &first);
}

async fn delete_client_reports_whether_it_deleted(db: &TestDb) {
    let (client, _) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    assert!(db.store.delete_client(&client.client_id).await.unwrap());
    assert!(!db.store.delete_client(&client.client_id).await.unwrap());
    assert!(db.store.find_client(&client.client_id).await.unwrap().is_none());
    assert!(!db.store.delete_client(&client_id("never-existed")).await.unwrap());
}

async fn list_clients_is_ordered_by_client_id(db: &TestDb) {
    assert!(db.store.list_clients().await.unwrap().is_empty());
    for id in ["b-svc", "c", "a-svc", "B-svc", "a"] {
        db.store.create_client(&public_client(id)).await.unwrap();
    }
    let ids: Vec<String> =
        db.store.list_clients().await.unwrap().iter().map(|c| c.client_id.to_string()).collect();
    // Bytewise, on both backends: uppercase before lowercase, prefixes first.
    assert_eq!(ids, ["B-svc", "a", "a-svc", "b-svc", "c"]);
}

async fn secret_hash_column_holds_only_the_sha256(db: &TestDb) {
    let (client, secret) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    db.store.create_client(&public_client("pub")).await.unwrap();

    let stored = db
        .raw_bytes("SELECT secret_hash FROM clients WHERE client_id = $1", "svc")
        .await
        .expect("a confidential client has a secret hash");
    assert_eq!(stored.len(), 32);
    assert_eq!(stored.as_slice(), secret.hash().as_bytes());
    assert_ne!(stored.as_slice(), secret.expose().as_bytes());
    let found = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert!(found.secret_hash.unwrap().verify(secret.expose()));

    let public = db.raw_bytes("SELECT secret_hash FROM clients WHERE client_id = $1", "pub").await;
    assert_eq!(public, None);
}

async fn users_round_trip(db: &TestDb) {
    let alice = user("Alice");
    let bob = another_user(&alice, "bob");
    let carol = another_user(&alice, "carol");
    for u in [&carol, &alice, &bob] {
        db.store.create_user(u).await.unwrap();
    }
    let found = db.store.find_user_by_username("Alice").await.unwrap().unwrap();
    assert_same_user(&found, &alice);
    assert_eq!(found.email.as_deref(), Some("alice@example.com"));
    let found = db.store.find_user_by_username("bob").await.unwrap().unwrap();
    assert_same_user(&found, &bob);
    assert_eq!((found.email, found.name), (None, None));

    // Usernames are case-sensitive.
    assert!(db.store.find_user_by_username("alice").await.unwrap().is_none());
    let names: Vec<String> =
        db.store.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["Alice", "bob", "carol"]);
}

async fn duplicate_username_is_a_conflict(db: &TestDb) {
    let alice = user("alice");
    db.store.create_user(&alice).await.unwrap();
    let impostor = another_user(&alice, "alice");
    match db.store.create_user(&impostor).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "user `alice`"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let found = db.store.find_user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
}

async fn delete_user_reports_whether_it_deleted(db: &TestDb) {
    let alice = user("alice");
    db.store.create_user(&alice).await.unwrap();
    assert!(db.store.delete_user("alice").await.unwrap());
    assert!(!db.store.delete_user("alice").await.unwrap());
    assert!(db.store.find_user_by_username("alice").await.unwrap().is_none());
    assert!(db.store.list_users().await.unwrap().is_empty());
}

async fn signing_keys_round_trip(db: &TestDb) {
    assert!(db.store.published_keys(NOW).await.unwrap().is_empty());
    let es = key(SigningAlg::ES256, NOW, NOW);
    let ed = key(SigningAlg::EdDSA, NOW, NOW + 10);
    // On first start there is nothing to retire.
    db.store.add_key_retiring_others(&es, NOW + 1000).await.unwrap();
    db.store.add_key_retiring_others(&ed, NOW + 1000).await.unwrap();
    let published = db.store.published_keys(NOW).await.unwrap();
    assert_eq!(published.len(), 2);
    assert_same_key(find(&published, &es.kid), &es);
    assert_same_key(find(&published, &ed.kid), &ed);
}

async fn rotation_retires_only_current_keys_of_the_same_alg(db: &TestDb) {
    let es_old = key(SigningAlg::ES256, 100, 100);
    let ed = key(SigningAlg::EdDSA, 100, 100);
    db.store.add_key_retiring_others(&es_old, 9999).await.unwrap();
    db.store.add_key_retiring_others(&ed, 9999).await.unwrap();

    // Rotate ES256: the new key is published now and signs from 300.
    let es_new = key(SigningAlg::ES256, 200, 300);
    db.store.add_key_retiring_others(&es_new, 5000).await.unwrap();
    let keys = db.store.published_keys(200).await.unwrap();
    let old = find(&keys, &es_old.kid);
    assert_eq!((old.signing_until, old.publish_until), (Some(300), Some(5000)));
    let new = find(&keys, &es_new.kid);
    assert_eq!((new.signing_until, new.publish_until), (None, None));
    let other = find(&keys, &ed.kid);
    assert_eq!((other.signing_until, other.publish_until), (None, None), "EdDSA is untouched");

    // Rotate again: only the current key retires; the already retired one keeps its times.
    let es_newest = key(SigningAlg::ES256, 400, 500);
    db.store.add_key_retiring_others(&es_newest, 6000).await.unwrap();
    let keys = db.store.published_keys(400).await.unwrap();
    let old = find(&keys, &es_old.kid);
    assert_eq!((old.signing_until, old.publish_until), (Some(300), Some(5000)));
    let new = find(&keys, &es_new.kid);
    assert_eq!((new.signing_until, new.publish_until), (Some(500), Some(6000)));
    let newest = find(&keys, &es_newest.kid);
    assert_eq!((newest.signing_until, newest.publish_until), (None, None));
    let other = find(&keys, &ed.kid);
    assert_eq!((other.signing_until, other.publish_until), (None, None));
}

async fn published_keys_hides_expired_keys(db: &TestDb) {
    let first = key(SigningAlg::ES256, 100, 100);
    let second = key(SigningAlg::ES256, 200, 200);
    let third = key(SigningAlg::ES256, 300, 300);
    db.store.add_key_retiring_others(&first, 1000).await.unwrap();
    db.store.add_key_retiring_others(&second, 1000).await.unwrap(); // first: until 1000
    db.store.add_key_retiring_others(&third, 2000).await.unwrap(); // second: until 2000

    // Oldest first.
    let at = |now| async move { kids(&db.store.published_keys(now).await.unwrap()).join(",") };
    let all = [first.kid.as_str(), &second.kid, &third.kid].join(",");
    assert_eq!(at(999).await, all);
    // `publish_until` is exclusive: at 1000 the first key is gone.
    assert_eq!(at(1000).await, [second.kid.as_str(), &third.kid].join(","));
    assert_eq!(at(2000).await, third.kid);
    assert_eq!(at(i64::MAX).await, third.kid, "a current key is published forever");
    // Hidden is not deleted.
    assert_eq!(at(0).await, all);
}

async fn prune_deletes_only_expired_keys(db: &TestDb) {
    let first = key(SigningAlg::ES256, 100, 100);
    let second = key(SigningAlg::ES256, 200, 200);
    let third = key(SigningAlg::ES256, 300, 300);
    db.store.add_key_retiring_others(&first, 1000).await.unwrap();
    db.store.add_key_retiring_others(&second, 1000).await.unwrap();
    db.store.add_key_retiring_others(&third, 2000).await.unwrap();

    assert_eq!(db.store.prune_keys(999).await.unwrap(), 0);
    assert_eq!(db.store.prune_keys(1000).await.unwrap(), 1);
    assert_eq!(db.store.prune_keys(1000).await.unwrap(), 0);
    assert_eq!(kids(&db.store.published_keys(0).await.unwrap()), [&second.kid, &third.kid]);
    assert_eq!(db.store.prune_keys(i64::MAX).await.unwrap(), 1, "the current key stays");
    assert_eq!(kids(&db.store.published_keys(0).await.unwrap()), [&third.kid]);
}

async fn unreadable_rows_are_backend_errors_naming_the_column(db: &TestDb) {
    let (client, _) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();

    db.raw_execute("UPDATE clients SET grant_types = 'not json' WHERE client_id = 'svc'").await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.grant_types") && message.contains("svc"), "{message}");
    let message = backend_message(db.store.list_clients().await);
    assert!(message.contains("clients.grant_types"), "{message}");

    db.raw_execute("UPDATE clients SET grant_types = '[\"password\"]' WHERE client_id = 'svc'")
        .await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.grant_types") && message.contains("password"), "{message}");

    db.raw_execute(
        "UPDATE clients SET grant_types = '[]', redirect_uris = '[\"javascript:alert(1)\"]' \
         WHERE client_id = 'svc'",
    )
    .await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.redirect_uris"), "{message}");

    db.raw_execute("UPDATE clients SET redirect_uris = '[]', token_endpoint_auth_method = 'x'")
        .await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.token_endpoint_auth_method"), "{message}");

    let k = key(SigningAlg::ES256, 100, 100);
    db.store.add_key_retiring_others(&k, 1000).await.unwrap();
    db.raw_execute("UPDATE signing_keys SET alg = 'HS256'").await;
    let message = backend_message(db.store.published_keys(0).await);
    assert!(message.contains("signing_keys.alg") && message.contains("HS256"), "{message}");
}

async fn migrations_are_idempotent_and_data_survives_reconnect(db: &TestDb) {
    assert_eq!(db.store.migrate().await.unwrap(), 0);
    let (client, _) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    db.store.close().await;

    // A second connect to the same database finds nothing to apply and the data in place.
    let again = db.connect_another().await;
    assert_eq!(again.migrate().await.unwrap(), 0);
    let found = again.find_client(&client.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &client);
    again.close().await;
}

async fn fresh_database_applies_every_migration_then_none(db: &TestDb) {
    db.store.ping().await.unwrap();
    assert!(matches!(db.store.list_clients().await, Err(StoreError::Backend(_))), "no tables yet");
    assert_eq!(db.store.migrate().await.unwrap(), 4);
    assert_eq!(db.store.migrate().await.unwrap(), 0);
    assert!(db.store.list_clients().await.unwrap().is_empty());
    assert!(db.store.list_consents("alice-sub").await.unwrap().is_empty());
}

async fn code_is_redeemed_once_then_reported_as_replay(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();

    let (found_code, found_grant) =
        redeemed(db.store.redeem_code(&code.hash(), NOW).await.unwrap());
    assert_eq!(found_code, stored);
    assert_eq!(found_grant, g);

    // Spent: every later presentation is a replay naming the grant, even after expiry.
    assert_already_redeemed(db.store.redeem_code(&code.hash(), NOW + 1).await.unwrap(), &g);
    assert_already_redeemed(db.store.redeem_code(&code.hash(), NOW + 3600).await.unwrap(), &g);
    // Redeeming the same code again at the same instant changes nothing either.
    assert_already_redeemed(db.store.redeem_code(&code.hash(), NOW).await.unwrap(), &g);
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, Some(NOW), "the first redemption's time is kept");

    assert_unknown(db.store.redeem_code(&Secret::generate().hash(), NOW).await.unwrap());
}

async fn grant_with_empty_scope_and_no_sid_round_trips(db: &TestDb) {
    let g = Grant {
        scope: ScopeSet::default(),
        sid: None,
        audience: Vec::new(),
        ..grant("web", "alice-sub")
    };
    let (code, stored) = code_of(&g);
    let stored = AuthorizationCode { nonce: None, ..stored };
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let sql = "SELECT count(*) FROM grants WHERE id = $1 AND scope = ''";
    assert_eq!(db.raw_i64(sql, &g.id).await, Some(1), "an empty scope set is stored as ''");

    let (found_code, found_grant) =
        redeemed(db.store.redeem_code(&code.hash(), NOW).await.unwrap());
    assert_eq!(found_code, stored);
    assert_eq!(found_grant, g);
    assert!(found_grant.scope.is_empty());
}

async fn expired_code_is_unknown(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();

    // `expires_at` is exclusive, and a failed attempt spends nothing.
    assert_unknown(db.store.redeem_code(&code.hash(), stored.expires_at).await.unwrap());
    assert_unknown(db.store.redeem_code(&code.hash(), stored.expires_at + 1).await.unwrap());
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, None);
    redeemed(db.store.redeem_code(&code.hash(), stored.expires_at - 1).await.unwrap());
}

async fn code_of_a_revoked_grant_is_unknown(db: &TestDb) {
    // The user withdrew consent between approval and redemption.
    let g = grant("web", "alice-sub");
    let code = insert_grant(&db.store, &g).await;
    assert!(!db.store.revoke_consent("alice-sub", &g.client_id, NOW).await.unwrap());
    assert_unknown(db.store.redeem_code(&code, NOW + 1).await.unwrap());
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, None, "nothing was spent");
}

/// Redeems `code` concurrently once per store in `stores`; returns how many calls got
/// `Redeemed` and how many `AlreadyRedeemed` (anything else fails the test).
async fn redeem_concurrently(stores: Vec<Store>, code: SecretHash, g: &Grant) -> (usize, usize) {
    let mut set = JoinSet::new();
    for store in stores {
        set.spawn(async move { store.redeem_code(&code, NOW).await.unwrap() });
    }
    let (mut won, mut replayed) = (0, 0);
    while let Some(outcome) = set.join_next().await {
        match outcome.unwrap() {
            CodeRedemption::Redeemed(_, found) => {
                assert_eq!(&found, g);
                won += 1;
            }
            CodeRedemption::AlreadyRedeemed { grant_id } => {
                assert_eq!(grant_id, g.id);
                replayed += 1;
            }
            CodeRedemption::Unknown => panic!("a concurrent redeem found the code unknown"),
        }
    }
    (won, replayed)
}

async fn concurrent_redeems_have_exactly_one_winner(db: &TestDb) {
    for _ in 0..3 {
        let g = grant("web", "alice-sub");
        let code = insert_grant(&db.store, &g).await;
        let stores = vec![db.store.clone(); 8];
        assert_eq!(redeem_concurrently(stores, code, &g).await, (1, 7));
    }
}

async fn concurrent_redeems_across_two_pools_have_one_winner(db: &TestDb) {
    // Two independent pools: two server instances sharing one database.
    let other = db.connect_another().await;
    for _ in 0..3 {
        let g = grant("web", "alice-sub");
        let code = insert_grant(&db.store, &g).await;
        let stores =
            (0..8).map(|i| if i % 2 == 0 { db.store.clone() } else { other.clone() }).collect();
        assert_eq!(redeem_concurrently(stores, code, &g).await, (1, 7));
    }
    other.close().await;
}

async fn refresh_rotation_spends_the_old_token_and_detects_reuse(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let first = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;

    let (outcome, second) = rotate(&db.store, &first, "web", NOW + 10).await;
    assert_eq!(rotated(outcome), g);
    assert_eq!(current_refresh_tokens(db, &g).await, 1);

    // The spent token presented again is reuse; its would-be successor is not stored.
    let (outcome, never_stored) = rotate(&db.store, &first, "web", NOW + 20).await;
    assert_reused(outcome, &g);
    assert_invalid(rotate(&db.store, &never_stored, "web", NOW + 20).await.0);
    // Reuse itself changes nothing: revoking is the caller's decision.
    assert_eq!(revoked_at(db, &g).await, None);

    let (outcome, third) = rotate(&db.store, &second, "web", NOW + 30).await;
    assert_eq!(rotated(outcome), g);
    assert_reused(rotate(&db.store, &second, "web", NOW + 40).await.0, &g);
    assert_eq!(current_refresh_tokens(db, &g).await, 1);

    // Once the grant is revoked the current token stops working, while spent ones are
    // still recognized as reuse.
    db.store.revoke_grant(&g.id, NOW + 50).await.unwrap();
    assert_invalid(rotate(&db.store, &third, "web", NOW + 60).await.0);
    assert_reused(rotate(&db.store, &first, "web", NOW + 60).await.0, &g);

    assert_invalid(rotate(&db.store, &Secret::generate().hash(), "web", NOW).await.0);
}

async fn rotation_refused_by_accept_changes_nothing(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    let new = Secret::generate().hash();
    let client_id = client_id("web");
    let rotation =
        RotationRequest { idle_ttl: 60, ..rotation_request(&old, &new, &client_id, NOW, "at-1") };

    let mut seen = None;
    let outcome = db
        .store
        .rotate_refresh_token(rotation, |grant| {
            seen = Some(grant.clone());
            false
        })
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshRotation::Refused), "{outcome:?}");
    assert_eq!(seen, Some(g.clone()), "accept is shown the grant");

    // The refused token is still current and the new one was not stored.
    assert_eq!(current_refresh_tokens(db, &g).await, 1);
    assert_invalid(rotate(&db.store, &new, "web", NOW).await.0);
    let outcome = db.store.rotate_refresh_token(rotation, |_| true).await.unwrap();
    assert_eq!(rotated(outcome), g);
    assert_eq!(rotated(rotate(&db.store, &new, "web", NOW + 1).await.0), g);
}

async fn rotation_for_another_client_is_invalid_not_reuse(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;

    assert_invalid(rotate(&db.store, &old, "mallory", NOW).await.0);
    // Nothing was spent: the owner still rotates it.
    assert_eq!(rotated(rotate(&db.store, &old, "web", NOW + 1).await.0), g);
    // A spent token presented by another client is invalid, not reuse: it cannot get the
    // grant revoked.
    assert_invalid(rotate(&db.store, &old, "mallory", NOW + 2).await.0);
    assert_reused(rotate(&db.store, &old, "web", NOW + 2).await.0, &g);
}

async fn rotation_of_revoked_or_expired_grant_is_invalid(db: &TestDb) {
    let revoked = grant("web", "alice-sub");
    let token = grant_with_refresh_token(&db.store, &revoked, NOW + IDLE_TTL).await;
    db.store.revoke_grant(&revoked.id, NOW + 5).await.unwrap();
    assert_invalid(rotate(&db.store, &token, "web", NOW + 10).await.0);
    assert_eq!(current_refresh_tokens(db, &revoked).await, 1, "nothing was spent");

    let expiring = Grant { expires_at: NOW + 100, ..grant("web", "alice-sub") };
    let token = grant_with_refresh_token(&db.store, &expiring, NOW + IDLE_TTL).await;
    // The grant's `expires_at` is exclusive.
    assert_invalid(rotate(&db.store, &token, "web", NOW + 100).await.0);
    assert_eq!(current_refresh_tokens(db, &expiring).await, 1, "nothing was spent");
    assert_eq!(rotated(rotate(&db.store, &token, "web", NOW + 99).await.0), expiring);
}

async fn expired_refresh_token_is_invalid(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let token = grant_with_refresh_token(&db.store, &g, NOW + 100).await;
    // The token's `expires_at` is exclusive, and an expired token is not reuse.
    assert_invalid(rotate(&db.store, &token, "web", NOW + 100).await.0);
    assert_invalid(rotate(&db.store, &token, "web", NOW + 101).await.0);
    assert_eq!(rotated(rotate(&db.store, &token, "web", NOW + 99).await.0), g);
}

async fn new_refresh_token_expiry_is_capped_by_the_grant(db: &TestDb) {
    const CURRENT_EXPIRY: &str =
        "SELECT expires_at FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NULL";
    let g = Grant { expires_at: NOW + IDLE_TTL + 500, ..grant("web", "alice-sub") };
    let first = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;

    // Far from the grant's end: the idle lifetime.
    let (outcome, second) = rotate(&db.store, &first, "web", NOW + 100).await;
    rotated(outcome);
    assert_eq!(db.raw_i64(CURRENT_EXPIRY, &g.id).await, Some(NOW + 100 + IDLE_TTL));
    // Near it: the grant's end.
    let (outcome, third) = rotate(&db.store, &second, "web", NOW + 1000).await;
    rotated(outcome);
    assert_eq!(db.raw_i64(CURRENT_EXPIRY, &g.id).await, Some(g.expires_at));
    assert_invalid(rotate(&db.store, &third, "web", g.expires_at).await.0);

    // A grant without end and a huge idle lifetime do not overflow.
    let endless = Grant { expires_at: i64::MAX, ..grant("web", "alice-sub") };
    let old = grant_with_refresh_token(&db.store, &endless, NOW + IDLE_TTL).await;
    let new = Secret::generate().hash();
    let client_id = client_id("web");
    let rotation = RotationRequest {
        idle_ttl: i64::MAX,
        ..rotation_request(&old, &new, &client_id, NOW, "at-1")
    };
    rotated(db.store.rotate_refresh_token(rotation, |_| true).await.unwrap());
    assert_eq!(db.raw_i64(CURRENT_EXPIRY, &endless.id).await, Some(i64::MAX));
}

/// Rotates `old` concurrently once per store in `stores`; returns how many calls got `Rotated`
/// and how many `Reused` (anything else fails the test).
async fn rotate_concurrently(stores: Vec<Store>, old: SecretHash, g: &Grant) -> (usize, usize) {
    let mut set = JoinSet::new();
    for store in stores {
        set.spawn(async move { rotate(&store, &old, "web", NOW + 10).await.0 });
    }
    let (mut won, mut reused) = (0, 0);
    while let Some(outcome) = set.join_next().await {
        match outcome.unwrap() {
            RefreshRotation::Rotated(found) => {
                assert_eq!(&found, g);
                won += 1;
            }
            RefreshRotation::Reused { grant_id } => {
                assert_eq!(grant_id, g.id);
                reused += 1;
            }
            other => panic!("a concurrent rotation got {other:?}"),
        }
    }
    (won, reused)
}

async fn concurrent_rotations_have_exactly_one_winner(db: &TestDb) {
    for _ in 0..3 {
        let g = grant("web", "alice-sub");
        let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
        let stores = vec![db.store.clone(); 8];
        assert_eq!(rotate_concurrently(stores, old, &g).await, (1, 7));
        // The old token and the winner's: one family member is current.
        let all = db.raw_i64("SELECT count(*) FROM refresh_tokens WHERE grant_id = $1", &g.id);
        assert_eq!(all.await, Some(2));
        assert_eq!(current_refresh_tokens(db, &g).await, 1);
    }
}

async fn concurrent_rotations_across_two_pools_have_one_winner(db: &TestDb) {
    let other = db.connect_another().await;
    for _ in 0..3 {
        let g = grant("web", "alice-sub");
        let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
        let stores =
            (0..8).map(|i| if i % 2 == 0 { db.store.clone() } else { other.clone() }).collect();
        assert_eq!(rotate_concurrently(stores, old, &g).await, (1, 7));
        assert_eq!(current_refresh_tokens(db, &g).await, 1);
    }
    other.close().await;
}

async fn revoking_a_grant_revokes_its_access_tokens(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let other = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    insert_grant(&db.store, &other).await;
    db.store.record_access_token(&g.id, "jti-1", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "jti-2", NOW + 300).await.unwrap();
    db.store.record_access_token(&other.id, "jti-3", NOW + 300).await.unwrap();
    match db.store.record_access_token(&other.id, "jti-1", NOW + 300).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "access token `jti-1`"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    for jti in ["jti-1", "jti-2", "jti-3", "never-recorded"] {
        assert!(!db.store.is_access_token_revoked(jti).await.unwrap(), "{jti}");
    }
    db.store.revoke_grant(&g.id, NOW + 10).await.unwrap();
    assert!(db.store.is_access_token_revoked("jti-1").await.unwrap());
    assert!(db.store.is_access_token_revoked("jti-2").await.unwrap());
    assert!(!db.store.is_access_token_revoked("jti-3").await.unwrap(), "another grant");
    assert!(!db.store.is_access_token_revoked("never-recorded").await.unwrap());

    // Revoking again keeps the first time; an unknown grant is no error.
    db.store.revoke_grant(&g.id, NOW + 20).await.unwrap();
    assert_eq!(revoked_at(db, &g).await, Some(NOW + 10));
    assert_eq!(revoked_at(db, &other).await, None);
    db.store.revoke_grant("no-such-grant", NOW).await.unwrap();
}

async fn unreadable_grant_is_a_backend_error_and_spends_nothing(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let token = Secret::generate().hash();
    db.store.insert_refresh_token(&token, &g.id, NOW, NOW + IDLE_TTL).await.unwrap();

    db.raw_execute("UPDATE grants SET scope = 'openid  profile'").await;
    let message = backend_message(db.store.redeem_code(&code.hash(), NOW).await);
    assert!(message.contains("grants.scope") && message.contains(&g.id), "{message}");
    let new = Secret::generate().hash();
    let client_id = client_id("web");
    let rotation =
        RotationRequest { idle_ttl: 60, ..rotation_request(&token, &new, &client_id, NOW, "at-1") };
    let message = backend_message(db.store.rotate_refresh_token(rotation, |_| true).await);
    assert!(message.contains("grants.scope"), "{message}");

    // Both writes were rolled back with the failure.
    db.raw_execute("UPDATE grants SET scope = 'openid'").await;
    let (_, found) = redeemed(db.store.redeem_code(&code.hash(), NOW).await.unwrap());
    assert_eq!(found.scope, ScopeSet::parse("openid").unwrap());
    rotated(db.store.rotate_refresh_token(rotation, |_| true).await.unwrap());
}

async fn consent_upsert_list_and_revoke_revokes_grants(db: &TestDb) {
    let consent = |user: &str, client: &str, scope: &str, granted_at| Consent {
        user_id: user.into(),
        client_id: client_id(client),
        scope: if scope.is_empty() { ScopeSet::default() } else { ScopeSet::parse(scope).unwrap() },
        granted_at,
    };
    let alice_b = consent("alice-sub", "b-app", "", NOW);
    let alice_a = consent("alice-sub", "a-app", "openid", NOW);
    let bob_a = consent("bob-sub", "a-app", "openid profile", NOW);
    for c in [&alice_b, &alice_a, &bob_a] {
        db.store.save_consent(c).await.unwrap();
    }
    assert_eq!(
        db.store.find_consent("alice-sub", &client_id("b-app")).await.unwrap(),
        Some(alice_b.clone())
    );
    assert_eq!(db.store.find_consent("alice-sub", &client_id("c-app")).await.unwrap(), None);

    // Saving again replaces scope and time.
    let widened = consent("alice-sub", "a-app", "openid orders:read", NOW + 100);
    db.store.save_consent(&widened).await.unwrap();
    let found = db.store.find_consent("alice-sub", &client_id("a-app")).await.unwrap();
    assert_eq!(found, Some(widened.clone()));
    assert_eq!(db.store.list_consents("alice-sub").await.unwrap(), [widened.clone(), alice_b]);
    assert_eq!(db.store.list_consents("bob-sub").await.unwrap(), std::slice::from_ref(&bob_a));
    assert!(db.store.list_consents("carol-sub").await.unwrap().is_empty());

    // Grants: two of alice to a-app (one revoked before), one to b-app, one of bob to a-app.
    let alice_a1 = grant("a-app", "alice-sub");
    let alice_a2 = grant("a-app", "alice-sub");
    let alice_a_old = grant("a-app", "alice-sub");
    let alice_b1 = grant("b-app", "alice-sub");
    let bob_a1 = grant("a-app", "bob-sub");
    for g in [&alice_a1, &alice_a2, &alice_a_old, &alice_b1, &bob_a1] {
        insert_grant(&db.store, g).await;
        db.store.record_access_token(&g.id, &format!("jti-{}", g.id), NOW + 300).await.unwrap();
    }
    db.store.revoke_grant(&alice_a_old.id, NOW + 1).await.unwrap();

    assert!(db.store.revoke_consent("alice-sub", &client_id("a-app"), NOW + 200).await.unwrap());
    assert_eq!(db.store.find_consent("alice-sub", &client_id("a-app")).await.unwrap(), None);
    assert_eq!(db.store.list_consents("bob-sub").await.unwrap(), [bob_a]);
    assert_eq!(revoked_at(db, &alice_a1).await, Some(NOW + 200));
    assert_eq!(revoked_at(db, &alice_a2).await, Some(NOW + 200));
    assert_eq!(revoked_at(db, &alice_a_old).await, Some(NOW + 1), "earlier revocation kept");
    assert_eq!(revoked_at(db, &alice_b1).await, None);
    assert_eq!(revoked_at(db, &bob_a1).await, None);
    for (g, revoked) in [(&alice_a1, true), (&alice_a2, true), (&alice_b1, false), (&bob_a1, false)]
    {
        let jti = format!("jti-{}", g.id);
        assert_eq!(db.store.is_access_token_revoked(&jti).await.unwrap(), revoked, "{jti}");
    }

    // Nothing left to revoke: reported as such.
    assert!(!db.store.revoke_consent("alice-sub", &client_id("a-app"), NOW + 300).await.unwrap());
    assert_eq!(revoked_at(db, &alice_a1).await, Some(NOW + 200));
}

async fn sessions_expire_and_delete(db: &TestDb) {
    let (cookie, s) = session("alice-sub", NOW + 3600);
    let (_, other) = session("bob-sub", NOW + 3600);
    db.store.create_session(&s).await.unwrap();
    db.store.create_session(&other).await.unwrap();

    assert_eq!(db.store.find_session(&cookie.hash(), NOW).await.unwrap(), Some(s.clone()));
    assert_eq!(db.store.find_session(&cookie.hash(), NOW + 3599).await.unwrap(), Some(s.clone()));
    // `expires_at` is exclusive.
    assert_eq!(db.store.find_session(&cookie.hash(), NOW + 3600).await.unwrap(), None);
    assert_eq!(db.store.find_session(&Secret::generate().hash(), NOW).await.unwrap(), None);

    // The public `sid` is unique.
    let (_, clash) = session("carol-sub", NOW + 3600);
    let clash = Session { sid: s.sid.clone(), ..clash };
    match db.store.create_session(&clash).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, format!("session `{}`", s.sid)),
        other => panic!("expected a conflict, got {other:?}"),
    }

    db.store.delete_session(&s.id_hash).await.unwrap();
    assert_eq!(db.store.find_session(&cookie.hash(), NOW).await.unwrap(), None);
    db.store.delete_session(&s.id_hash).await.unwrap();
    assert_eq!(db.store.find_session(&other.id_hash, NOW).await.unwrap(), Some(other));
}

async fn no_plaintext_codes_or_tokens_in_the_database(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let first = Secret::generate();
    db.store.insert_refresh_token(&first.hash(), &g.id, NOW, NOW + IDLE_TTL).await.unwrap();
    let second = Secret::generate();
    let client_id = client_id("web");
    let (first_hash, second_hash) = (first.hash(), second.hash());
    let rotation = rotation_request(&first_hash, &second_hash, &client_id, NOW, "at-1");
    rotated(db.store.rotate_refresh_token(rotation, |_| true).await.unwrap());
    let (cookie, s) = session("alice-sub", NOW + 3600);
    db.store.create_session(&s).await.unwrap();
    let (device_code, user_code, _) = insert_device(&db.store, "tv").await;

    async fn raw(db: &TestDb, sql: &'static str, arg: &str) -> Vec<u8> {
        db.raw_bytes(sql, arg).await.expect("a stored hash")
    }
    let stored_code =
        raw(db, "SELECT code_hash FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    let current = raw(
        db,
        "SELECT token_hash FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NULL",
        &g.id,
    )
    .await;
    let spent = raw(
        db,
        "SELECT token_hash FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NOT NULL",
        &g.id,
    )
    .await;
    let session_id = raw(db, "SELECT id_hash FROM sessions WHERE sid = $1", &s.sid).await;
    let device_sql = "SELECT device_code_hash FROM device_authorizations WHERE client_id = $1";
    let stored_device_code = raw(db, device_sql, "tv").await;
    let user_sql = "SELECT user_code_hash FROM device_authorizations WHERE client_id = $1";
    let stored_user_code = raw(db, user_sql, "tv").await;
    for (stored, secret) in [
        (stored_code, &code),
        (current, &second),
        (spent, &first),
        (session_id, &cookie),
        (stored_device_code, &device_code),
        (stored_user_code, &user_code),
    ] {
        assert_eq!(stored.len(), 32);
        assert_eq!(stored.as_slice(), secret.hash().as_bytes());
        assert_ne!(stored.as_slice(), secret.expose().as_bytes());
    }

    // On SQLite, no byte sequence of the database files is a plaintext.
    if let Some(path) = db.sqlite_path() {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        assert!(bytes.len() > 4096, "the database files were read");
        for secret in [&code, &first, &second, &cookie, &device_code, &user_code] {
            let plaintext = secret.expose().as_bytes();
            assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext));
        }
    }
}

/// A `private_key_jwt` client with its keys inline (`jwks`) or by reference (`jwks_uri`).
fn private_key_jwt_client(id: &str, jwks: Option<&str>, jwks_uri: Option<&str>) -> Client {
    let (client, secret) = ClientRegistration {
        client_id: Some(client_id(id)),
        client_name: format!("{id} (private_key_jwt)"),
        scope: ScopeSet::parse("orders:read").unwrap(),
        audience: vec!["https://api.example.com".into()],
        introspection: true,
        access_token_format: AccessTokenFormat::Opaque,
        jwks: jwks.map(str::to_owned),
        jwks_uri: jwks_uri.map(str::to_owned),
        rate_limit_per_second: Some(u32::MAX),
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        ..Default::default()
    }
    .into_client(NOW + 2)
    .unwrap();
    assert!(secret.is_none());
    client
}

const JWKS: &str = concat!(
    r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","#,
    r#""x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","#,
    r#""y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#
);

async fn client_round_trip_keeps_private_key_jwt_and_token_format_fields(db: &TestDb) {
    let inline = private_key_jwt_client("inline-keys", Some(JWKS), None);
    let by_uri = private_key_jwt_client("remote-keys", None, Some("https://rp.example.com/jwks"));
    let (confidential, _) = confidential_client("svc");
    let public = public_client("spa");
    for c in [&inline, &by_uri, &confidential, &public] {
        db.store.create_client(c).await.unwrap();
    }

    let found = db.store.find_client(&inline.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &inline);
    assert_eq!(found.token_endpoint_auth_method, AuthMethod::PrivateKeyJwt);
    assert_eq!((found.secret_hash, found.jwks.as_deref()), (None, Some(JWKS)));
    assert_eq!(found.rate_limit_per_second, Some(u32::MAX), "the largest rate reads back");
    let found = db.store.find_client(&by_uri.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &by_uri);
    assert_eq!(found.jwks_uri.as_deref(), Some("https://rp.example.com/jwks"));
    let found = db.store.find_client(&confidential.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &confidential);
    assert_eq!(found.access_token_format, AccessTokenFormat::Opaque);
    assert_eq!(found.rate_limit_per_second, Some(250));
    // The defaults round-trip too.
    let found = db.store.find_client(&public.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &public);
    assert!(!found.introspection);
    assert_eq!(found.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!((found.jwks, found.jwks_uri, found.rate_limit_per_second), (None, None, None));

    let all = db.store.list_clients().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(ids, ["inline-keys", "remote-keys", "spa", "svc"]);
    assert_same_client(&all[0], &inline);
    assert_same_client(&all[1], &by_uri);
}

async fn unreadable_new_columns_are_backend_errors_naming_the_column(db: &TestDb) {
    let (client, _) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    db.raw_execute("UPDATE clients SET access_token_format = 'macaroon'").await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.access_token_format") && message.contains("macaroon"));
    db.raw_execute("UPDATE clients SET access_token_format = 'jwt'").await;

    // A rate outside u32 on either side is refused, not truncated.
    db.raw_execute("UPDATE clients SET rate_limit_per_second = 4294967296").await;
    let message = backend_message(db.store.find_client(&client.client_id).await);
    assert!(message.contains("clients.rate_limit_per_second"), "{message}");
    assert!(message.contains("4294967296") && message.contains("svc"), "{message}");
    db.raw_execute("UPDATE clients SET rate_limit_per_second = -1").await;
    let message = backend_message(db.store.list_clients().await);
    assert!(message.contains("clients.rate_limit_per_second"), "{message}");
    db.raw_execute("UPDATE clients SET rate_limit_per_second = 0").await;
    let found = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(found.rate_limit_per_second, Some(0));

    let g = grant("web", "alice-sub");
    let code = insert_grant(&db.store, &g).await;
    db.raw_execute("UPDATE grants SET audience = 'billing'").await;
    let message = backend_message(db.store.redeem_code(&code, NOW).await);
    assert!(message.contains("grants.audience") && message.contains(&g.id), "{message}");

    let (_, token) = opaque_token("svc", NOW + 300);
    db.store.insert_opaque_access_token(&token).await.unwrap();
    db.raw_execute("UPDATE opaque_access_tokens SET audience = '[1]'").await;
    let message = backend_message(db.store.find_opaque_access_token(&token.token_hash).await);
    assert!(message.contains("opaque_access_tokens.audience"), "{message}");
    assert!(message.contains(&token.jti), "named by its jti: {message}");
}

async fn rows_written_before_0003_read_with_defaults(db: &TestDb) {
    // Bring the database to 0002 from the migration files, as an older release left it.
    // Read at run time: the build cache is shared by several checkouts.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests");
    let dir = Path::new(&manifest_dir).join("migrations").join(db.backend_name());
    let migrator = Migrator::new(dir.as_path()).await.unwrap();
    if db.backend_name() == "sqlite" {
        let mut conn = SqliteConnection::connect(&db.url).await.unwrap();
        migrator.run_to(2, &mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        migrator.run_to(2, &mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    db.raw_execute(
        "INSERT INTO clients (client_id, client_name, secret_hash, token_endpoint_auth_method, \
         redirect_uris, post_logout_redirect_uris, grant_types, scope, default_scope, audience, \
         first_party, created_at) VALUES ('old-app', 'Old app', NULL, 'none', \
         '[\"https://old.example.com/cb\"]', '[]', '[\"authorization_code\"]', '[\"openid\"]', \
         '[]', '[]', FALSE, 1)",
    )
    .await;
    db.raw_execute(
        "INSERT INTO grants (id, client_id, user_id, scope, auth_time, sid, created_at, \
         expires_at, revoked_at) VALUES ('old-grant', 'old-app', 'alice-sub', 'openid', 1, NULL, \
         1, 4000000000, NULL)",
    )
    .await;

    // A release with 0003 (and 0004) starts: both migrations apply, and the old rows read
    // with the new columns' defaults.
    assert_eq!(db.store.migrate().await.unwrap(), 2);
    let client = db.store.find_client(&client_id("old-app")).await.unwrap().unwrap();
    assert_eq!(client.token_endpoint_auth_method, AuthMethod::None);
    assert!(!client.introspection);
    assert_eq!(client.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!((client.jwks, client.jwks_uri, client.rate_limit_per_second), (None, None, None));
    let token = Secret::generate().hash();
    db.store.insert_refresh_token(&token, "old-grant", NOW, NOW + IDLE_TTL).await.unwrap();
    let record = db.store.find_refresh_token(&token).await.unwrap().unwrap();
    assert_eq!(record.grant.id, "old-grant");
    assert!(record.grant.audience.is_empty());
    assert_eq!(db.store.migrate().await.unwrap(), 0);
}

async fn grant_audience_round_trips(db: &TestDb) {
    let wide = Grant {
        audience: vec!["https://api.example.com".into(), "billing".into(), "urn:x:é \"q\"".into()],
        ..grant("web", "alice-sub")
    };
    let none = Grant { audience: Vec::new(), ..grant("web", "alice-sub") };
    let (wide_code, stored) = code_of(&wide);
    db.store.insert_grant_with_code(&wide, &stored).await.unwrap();
    let none_token = grant_with_refresh_token(&db.store, &none, NOW + IDLE_TTL).await;
    let sql = "SELECT count(*) FROM grants WHERE id = $1 AND audience = '[]'";
    assert_eq!(db.raw_i64(sql, &none.id).await, Some(1), "no audience is stored as []");

    let (_, found) = redeemed(db.store.redeem_code(&wide_code.hash(), NOW).await.unwrap());
    assert_eq!(found.audience, wide.audience);
    assert_eq!(found, wide);
    let (outcome, _) = rotate(&db.store, &none_token, "web", NOW + 1).await;
    assert_eq!(rotated(outcome), none);
}

/// A new opaque access token of `client` for alice, issued at `NOW`, and what the store keeps.
fn opaque_token(client: &str, expires_at: i64) -> (Secret, OpaqueAccessToken) {
    let token = Secret::generate();
    let stored = OpaqueAccessToken {
        token_hash: token.hash(),
        jti: random_id::<16>(),
        client_id: client_id(client),
        sub: "alice-sub".into(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        issued_at: NOW,
        expires_at,
    };
    (token, stored)
}

async fn opaque_token_round_trip_stores_only_the_hash(db: &TestDb) {
    let (token, stored) = opaque_token("svc", NOW + 300);
    let (bare_token, bare) = opaque_token("svc", NOW - 1);
    let bare = OpaqueAccessToken { scope: ScopeSet::default(), audience: Vec::new(), ..bare };
    db.store.insert_opaque_access_token(&stored).await.unwrap();
    db.store.insert_opaque_access_token(&bare).await.unwrap();

    let found = db.store.find_opaque_access_token(&token.hash()).await.unwrap();
    assert_eq!(found, Some(stored.clone()));
    // Found whatever its state: this one has expired.
    let found = db.store.find_opaque_access_token(&bare_token.hash()).await.unwrap();
    assert_eq!(found, Some(bare.clone()));
    assert_eq!(db.store.find_opaque_access_token(&Secret::generate().hash()).await.unwrap(), None);

    // The `jti` is unique; the clash is named by it, never by a token value.
    let (_, clash) = opaque_token("svc", NOW + 300);
    let clash = OpaqueAccessToken { jti: stored.jti.clone(), ..clash };
    match db.store.insert_opaque_access_token(&clash).await {
        Err(StoreError::Conflict(what)) => {
            assert_eq!(what, format!("access token `{}`", clash.jti))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let raw = db
        .raw_bytes("SELECT token_hash FROM opaque_access_tokens WHERE jti = $1", &stored.jti)
        .await
        .expect("a stored hash");
    assert_eq!(raw.as_slice(), token.hash().as_bytes());
    assert_ne!(raw.as_slice(), token.expose().as_bytes());
    if let Some(path) = db.sqlite_path() {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        assert!(bytes.len() > 4096, "the database files were read");
        for secret in [&token, &bare_token] {
            let plaintext = secret.expose().as_bytes();
            assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext));
        }
    }
}

async fn denylisted_jti_is_revoked(db: &TestDb) {
    assert!(!db.store.is_access_token_revoked("jwt-1").await.unwrap());
    db.store.revoke_access_token("jwt-1", NOW + 300).await.unwrap();
    assert!(db.store.is_access_token_revoked("jwt-1").await.unwrap());
    assert!(!db.store.is_access_token_revoked("jwt-2").await.unwrap());

    // Idempotent: revoking again is no error and keeps the first entry.
    db.store.revoke_access_token("jwt-1", NOW + 900).await.unwrap();
    let sql = "SELECT expires_at FROM revoked_access_tokens WHERE jti = $1";
    assert_eq!(db.raw_i64(sql, "jwt-1").await, Some(NOW + 300));
    assert_eq!(db.raw_count("revoked_access_tokens").await, 1);

    // A token of a live grant is revoked on its own, without its grant.
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    db.store.record_access_token(&g.id, "jwt-3", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "jwt-4", NOW + 300).await.unwrap();
    db.store.revoke_access_token("jwt-3", NOW + 300).await.unwrap();
    assert!(db.store.is_access_token_revoked("jwt-3").await.unwrap());
    assert!(!db.store.is_access_token_revoked("jwt-4").await.unwrap(), "its sibling is not");
    assert_eq!(revoked_at(db, &g).await, None);
}

/// R1.4: the access token issued with a rotated refresh token is recorded in the rotation's
/// transaction, so revoking the grant (reuse detection, consent revocation) revokes it too; a
/// refused rotation records nothing.
async fn rotation_records_its_access_token_under_the_grant(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    let (new, client_id) = (Secret::generate().hash(), client_id("web"));
    let refused = rotation_request(&old, &new, &client_id, NOW, "refused-at");
    let outcome = db.store.rotate_refresh_token(refused, |_| false).await.unwrap();
    assert!(matches!(outcome, RefreshRotation::Refused), "{outcome:?}");
    assert_eq!(db.raw_count("grant_access_tokens").await, 0);

    let rotation = rotation_request(&old, &new, &client_id, NOW, "rotated-at");
    rotated(db.store.rotate_refresh_token(rotation, |_| true).await.unwrap());
    assert_eq!(db.raw_count("grant_access_tokens").await, 1);
    assert!(!db.store.is_access_token_revoked("rotated-at").await.unwrap());
    db.store.revoke_grant(&g.id, NOW + 1).await.unwrap();
    assert!(db.store.is_access_token_revoked("rotated-at").await.unwrap());
}

/// RFC 7662 §2.2: introspection reports an expired or revoked token inactive; the live lookup
/// answers that in the same query as the token itself.
async fn live_opaque_lookup_skips_expired_and_revoked_tokens(db: &TestDb) {
    let (live_token, live) = opaque_token("svc", NOW + 300);
    let (expired_token, expired) = opaque_token("svc", NOW + 10);
    let (denied_token, denied) = opaque_token("svc", NOW + 300);
    let (of_grant_token, of_grant) = opaque_token("svc", NOW + 300);
    for t in [&live, &expired, &denied, &of_grant] {
        db.store.insert_opaque_access_token(t).await.unwrap();
    }
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    db.store.record_access_token(&g.id, &of_grant.jti, NOW + 300).await.unwrap();
    let find = |hash: SecretHash, now: i64| async move {
        db.store.find_live_opaque_access_token(&hash, now).await.unwrap()
    };
    assert_eq!(find(live_token.hash(), NOW).await, Some(live.clone()));
    assert_eq!(find(of_grant_token.hash(), NOW).await, Some(of_grant.clone()));
    assert_eq!(find(expired_token.hash(), NOW + 9).await, Some(expired.clone()));
    // Expired at exactly `expires_at`.
    assert_eq!(find(expired_token.hash(), NOW + 10).await, None);
    db.store.revoke_access_token(&denied.jti, denied.expires_at).await.unwrap();
    assert_eq!(find(denied_token.hash(), NOW).await, None);
    db.store.revoke_grant(&g.id, NOW + 1).await.unwrap();
    assert_eq!(find(of_grant_token.hash(), NOW + 1).await, None);
    assert_eq!(find(live_token.hash(), NOW + 1).await, Some(live));
    assert_eq!(find(Secret::generate().hash(), NOW).await, None);
}

async fn jti_of_revoked_grant_is_revoked(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let live = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    insert_grant(&db.store, &live).await;
    db.store.record_access_token(&g.id, "of-revoked", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "of-revoked-and-denylisted", NOW + 300).await.unwrap();
    db.store.record_access_token(&live.id, "of-live", NOW + 300).await.unwrap();
    db.store.revoke_access_token("of-revoked-and-denylisted", NOW + 300).await.unwrap();
    assert!(!db.store.is_access_token_revoked("of-revoked").await.unwrap());

    db.store.revoke_grant(&g.id, NOW + 10).await.unwrap();
    assert!(db.store.is_access_token_revoked("of-revoked").await.unwrap());
    assert!(db.store.is_access_token_revoked("of-revoked-and-denylisted").await.unwrap());
    assert!(!db.store.is_access_token_revoked("of-live").await.unwrap());
    assert!(!db.store.is_access_token_revoked("unknown").await.unwrap());
}

async fn find_refresh_token_reports_rotation_and_revocation(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let first = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    let record = |rotated, grant_revoked, issued_at, expires_at| RefreshTokenRecord {
        grant: g.clone(),
        issued_at,
        expires_at,
        rotated,
        grant_revoked,
    };
    let find = |hash: SecretHash| async move { db.store.find_refresh_token(&hash).await.unwrap() };
    assert_eq!(find(first).await, Some(record(false, false, NOW, NOW + IDLE_TTL)));
    assert_eq!(find(Secret::generate().hash()).await, None);

    let (outcome, second) = rotate(&db.store, &first, "web", NOW + 10).await;
    rotated(outcome);
    assert_eq!(find(first).await, Some(record(true, false, NOW, NOW + IDLE_TTL)));
    let current = record(false, false, NOW + 10, NOW + 10 + IDLE_TTL);
    assert_eq!(find(second).await, Some(current));

    db.store.revoke_grant(&g.id, NOW + 20).await.unwrap();
    assert_eq!(find(first).await, Some(record(true, true, NOW, NOW + IDLE_TTL)));
    assert_eq!(find(second).await, Some(record(false, true, NOW + 10, NOW + 10 + IDLE_TTL)));
}

async fn assertion_jti_is_accepted_once_per_client(db: &TestDb) {
    let (a, b) = (client_id("rp-a"), client_id("rp-b"));
    assert!(db.store.record_assertion(&a, "jti-1", NOW + 60).await.unwrap());
    assert!(!db.store.record_assertion(&a, "jti-1", NOW + 60).await.unwrap(), "a replay");
    assert!(!db.store.record_assertion(&a, "jti-1", NOW + 120).await.unwrap(), "still a replay");
    // Another client's `jti` space is its own.
    assert!(db.store.record_assertion(&b, "jti-1", NOW + 60).await.unwrap());
    assert!(db.store.record_assertion(&a, "jti-2", NOW + 60).await.unwrap());
    let sql = "SELECT expires_at FROM client_assertions WHERE client_id = 'rp-a' AND jti = $1";
    assert_eq!(db.raw_i64(sql, "jti-1").await, Some(NOW + 60), "the first record is kept");
    assert_eq!(db.raw_count("client_assertions").await, 3);
}

async fn concurrent_assertions_with_one_jti_have_one_winner(db: &TestDb) {
    let other = db.connect_another().await;
    for round in 0..3 {
        let jti = format!("jti-{round}");
        let mut set = JoinSet::new();
        for i in 0..8 {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            let jti = jti.clone();
            set.spawn(async move {
                store.record_assertion(&client_id("rp"), &jti, NOW + 60).await.unwrap()
            });
        }
        let accepted = set.join_all().await.into_iter().filter(|&accepted| accepted).count();
        assert_eq!(accepted, 1, "round {round}");
    }
    other.close().await;
}

async fn prune_removes_only_expired_rows(db: &TestDb) {
    const AT: i64 = NOW + 1000;
    // Tables and how many rows each must keep.
    let mut kept: Vec<(&str, i64)> = Vec::new();

    // A live grant: an expired code, one expired and one current refresh token, an access
    // token record expiring exactly at AT (gone: `expires_at` is inclusive here) and a live one.
    let live = grant("web", "alice-sub");
    let (_, code) = code_of(&live);
    db.store.insert_grant_with_code(&live, &code).await.unwrap();
    let insert_refresh = |g: &Grant, expires_at| {
        let (store, id, token) = (db.store.clone(), g.id.clone(), Secret::generate().hash());
        async move { store.insert_refresh_token(&token, &id, NOW, expires_at).await }
    };
    insert_refresh(&live, NOW + 500).await.unwrap();
    insert_refresh(&live, AT + 1).await.unwrap();
    db.store.record_access_token(&live.id, "live-at-edge", AT).await.unwrap();
    db.store.record_access_token(&live.id, "live-current", AT + 1).await.unwrap();
    // Another live grant whose code is still valid.
    let fresh = grant("web", "bob-sub");
    let (_, code) = code_of(&fresh);
    let code = AuthorizationCode { expires_at: AT + 1, ..code };
    db.store.insert_grant_with_code(&fresh, &code).await.unwrap();
    // An expired grant: its own rows go, and what outlived it (a code and a refresh token
    // valid past AT) cascades with it.
    let expired = Grant { expires_at: AT, ..grant("web", "carol-sub") };
    let (_, code) = code_of(&expired);
    let code = AuthorizationCode { expires_at: AT + 5, ..code };
    db.store.insert_grant_with_code(&expired, &code).await.unwrap();
    insert_refresh(&expired, AT + 10).await.unwrap();
    insert_refresh(&expired, AT - 1).await.unwrap();
    db.store.record_access_token(&expired.id, "expired-old", AT - 1).await.unwrap();
    // An expired, revoked grant with an access token still valid: it stays until that token
    // expires, so that the token still reads as revoked.
    let lingering = Grant { expires_at: AT - 10, ..grant("web", "dave-sub") };
    insert_grant(&db.store, &lingering).await;
    insert_refresh(&lingering, AT - 10).await.unwrap();
    db.store.record_access_token(&lingering.id, "lingering", AT + 300).await.unwrap();
    db.store.revoke_grant(&lingering.id, NOW + 5).await.unwrap();
    // codes: live (NOW + 60), lingering (NOW + 60) go; fresh stays; expired's cascades.
    kept.push(("authorization_codes", 1));
    // refresh tokens: live's first, expired's second and lingering's go; expired's first
    // cascades.
    kept.push(("refresh_tokens", 1));
    kept.push(("grant_access_tokens", 2));
    kept.push(("grants", 3));

    // One row expiring at AT (gone) and one a second later (kept) in each of the others.
    for (expires_at, kept) in [(AT, false), (AT + 1, true)] {
        let (_, token) = opaque_token("svc", expires_at);
        db.store.insert_opaque_access_token(&token).await.unwrap();
        db.store.revoke_access_token(&format!("denied-{kept}"), expires_at).await.unwrap();
        let jti = format!("assertion-{kept}");
        db.store.record_assertion(&client_id("rp"), &jti, expires_at).await.unwrap();
        db.store.create_session(&session("alice-sub", expires_at).1).await.unwrap();
    }
    kept.extend([
        ("opaque_access_tokens", 1),
        ("revoked_access_tokens", 1),
        ("client_assertions", 1),
        ("sessions", 1),
    ]);

    // Never pruned here: audit events, signing keys (they have their own prune), consents,
    // clients, users.
    let old_event =
        AuditEvent { at: 0, event: "login".into(), outcome: "ok".into(), ..Default::default() };
    db.store.record_audit_event(&old_event).await.unwrap();
    db.store.add_key_retiring_others(&key(SigningAlg::ES256, 0, 0), 1).await.unwrap();
    db.store.add_key_retiring_others(&key(SigningAlg::ES256, 1, 1), 1).await.unwrap();
    let consent = Consent {
        user_id: "alice-sub".into(),
        client_id: client_id("web"),
        scope: ScopeSet::default(),
        granted_at: 0,
    };
    db.store.save_consent(&consent).await.unwrap();
    db.store.create_client(&public_client("web")).await.unwrap();
    kept.extend([("audit_events", 1), ("signing_keys", 2), ("consents", 1), ("clients", 1)]);

    let mut before = 0;
    for (table, _) in &kept {
        before += db.raw_count(table).await;
    }
    let after: i64 = kept.iter().map(|(_, n)| n).sum();
    // Codes 2, refresh tokens 3, access-token records 2, grants 1, and one row of each of the
    // four other tables. Cascaded rows (expired's code and refresh token that outlived it)
    // are gone but not counted.
    let pruned = db.store.prune_expired(AT).await.unwrap();
    assert_eq!(pruned, 2 + 3 + 2 + 1 + 4);
    assert_eq!(pruned, (before - after - 2) as u64);
    for (table, n) in &kept {
        assert_eq!(db.raw_count(table).await, *n, "{table}");
    }
    for sql in [
        "SELECT count(*) FROM authorization_codes WHERE grant_id = $1",
        "SELECT count(*) FROM refresh_tokens WHERE grant_id = $1",
        "SELECT count(*) FROM grant_access_tokens WHERE grant_id = $1",
        "SELECT count(*) FROM grants WHERE id = $1",
    ] {
        assert_eq!(db.raw_i64(sql, &expired.id).await, Some(0), "{sql}");
    }
    assert_eq!(
        db.raw_i64("SELECT count(*) FROM grants WHERE id = $1", &lingering.id).await,
        Some(1)
    );
    assert!(db.store.is_access_token_revoked("lingering").await.unwrap());
    assert!(db.store.is_access_token_revoked("denied-true").await.unwrap());
    assert!(!db.store.is_access_token_revoked("denied-false").await.unwrap());
    // A pruned assertion record no longer blocks its `jti`.
    assert!(!db.store.record_assertion(&client_id("rp"), "assertion-true", AT + 1).await.unwrap());
    assert!(db.store.record_assertion(&client_id("rp"), "assertion-false", AT + 1).await.unwrap());

    // Nothing more to prune at AT; the lingering grant goes with its last token.
    assert_eq!(db.store.prune_expired(AT).await.unwrap(), 0);
    db.store.prune_expired(AT + 299).await.unwrap();
    let sql = "SELECT count(*) FROM grants WHERE id = $1";
    assert_eq!(db.raw_i64(sql, &lingering.id).await, Some(1));
    assert!(db.store.is_access_token_revoked("lingering").await.unwrap());
    assert_eq!(db.store.prune_expired(AT + 300).await.unwrap(), 2, "its record, then the grant");
    assert_eq!(db.raw_i64(sql, &lingering.id).await, Some(0));
}

async fn audit_events_tail_in_order(db: &TestDb) {
    assert!(db.store.recent_audit_events(10).await.unwrap().is_empty());
    let event = |at, event: &str| AuditEvent {
        at,
        event: event.into(),
        outcome: "ok".into(),
        ..Default::default()
    };
    let full = AuditEvent {
        at: NOW + 2,
        event: "token_issued".into(),
        outcome: "success".into(),
        client_id: Some("web".into()),
        sub: Some("alice-sub".into()),
        grant_type: Some("authorization_code".into()),
        jti: Some("jti-1".into()),
        reason: Some("—".into()),
        source: Some("192.0.2.1".into()),
    };
    // Recorded out of time order: the tail is by time, then by recording order.
    let events = [
        event(NOW, "login"),
        event(NOW + 1, "consent_granted"),
        full.clone(),
        event(NOW + 2, "code_issued"),
        event(NOW - 5, "late_report"),
        event(NOW + 3, "token_refused"),
    ];
    for e in &events {
        db.store.record_audit_event(e).await.unwrap();
    }
    let tail = db.store.recent_audit_events(3).await.unwrap();
    assert_eq!(tail, [full.clone(), events[3].clone(), events[5].clone()]);
    let all = db.store.recent_audit_events(100).await.unwrap();
    let names: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["late_report", "login", "consent_granted", "token_issued", "code_issued", "token_refused"]
    );
    assert_eq!(all[3], full);
    assert!(db.store.recent_audit_events(0).await.unwrap().is_empty());
    assert_eq!(db.store.recent_audit_events(u32::MAX).await.unwrap().len(), events.len());
}

// ---------------------------------------------------------------------------------------------
// Device authorizations (RFC 8628)
// ---------------------------------------------------------------------------------------------

/// The device authorization cases' polling interval, unless a test says otherwise.
const INTERVAL: i64 = 5;

/// A random user code: 8 consonants, as RFC 8628 §6.1 suggests.
fn new_user_code() -> Secret {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let code = random_bytes::<8>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Secret::from_string(code)
}

/// A pending device authorization of `client`, created at `NOW` and valid for 600 s: its
/// device code, its user code and what the store keeps of them.
fn device_authorization(client: &str) -> (Secret, Secret, DeviceAuthorization) {
    let (device_code, user_code) = (Secret::generate(), new_user_code());
    let stored = DeviceAuthorization {
        device_code_hash: device_code.hash(),
        user_code_hash: user_code.hash(),
        client_id: client_id(client),
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        status: DeviceStatus::Pending,
        user_id: None,
        auth_time: None,
        sid: None,
        interval: INTERVAL,
        last_polled_at: None,
        created_at: NOW,
        expires_at: NOW + 600,
    };
    (device_code, user_code, stored)
}

/// Stores a pending device authorization of `client` (see [`device_authorization`]).
async fn insert_device(store: &Store, client: &str) -> (Secret, Secret, DeviceAuthorization) {
    let (device_code, user_code, stored) = device_authorization(client);
    store.insert_device_authorization(&stored).await.unwrap();
    (device_code, user_code, stored)
}

/// The approval `decide_device_authorization` is given in these cases.
const APPROVAL: (&str, i64, &str) = ("alice-sub", NOW - 30, "sid-1");

/// Approves the authorization with this user code at `now`, as alice (see [`APPROVAL`]).
async fn approve(store: &Store, user_code: &Secret, now: i64) -> bool {
    store.decide_device_authorization(&user_code.hash(), Some(APPROVAL), now).await.unwrap()
}

async fn poll(store: &Store, device_code: &Secret, client: &str, now: i64) -> DevicePoll {
    store.poll_device_authorization(&device_code.hash(), &client_id(client), now).await.unwrap()
}

macro_rules! assert_poll {
    ($outcome:expr, $expected:pat) => {{
        let outcome = $outcome;
        let expected = stringify!($expected);
        assert!(matches!(outcome, $expected), "expected {expected}, got {outcome:?}");
    }};
}

fn approved(outcome: DevicePoll) -> DeviceAuthorization {
    match outcome {
        DevicePoll::Approved(authorization) => *authorization,
        other => panic!("expected Approved, got {other:?}"),
    }
}

/// What an approved `stored`, redeemed by a poll at `now`, is.
fn redeemed_device(stored: &DeviceAuthorization, now: i64) -> DeviceAuthorization {
    let (user_id, auth_time, sid) = APPROVAL;
    DeviceAuthorization {
        status: DeviceStatus::Redeemed,
        user_id: Some(user_id.into()),
        auth_time: Some(auth_time),
        sid: Some(sid.into()),
        last_polled_at: Some(now),
        ..stored.clone()
    }
}

/// How many of `client`'s device authorizations have `status`, read raw.
async fn devices_with_status(db: &TestDb, client: &str, status: DeviceStatus) -> i64 {
    let sql = "SELECT count(*) FROM device_authorizations WHERE client_id || ' ' || status = $1";
    db.raw_i64(sql, &format!("{client} {}", status.as_str())).await.unwrap()
}

/// `client`'s (one) device authorization's `last_polled_at`, read raw.
async fn last_polled_at(db: &TestDb, client: &str) -> Option<i64> {
    db.raw_i64("SELECT last_polled_at FROM device_authorizations WHERE client_id = $1", client)
        .await
}

/// `client`'s (one) device authorization's interval, read raw.
async fn interval_of(db: &TestDb, client: &str) -> i64 {
    let sql = "SELECT interval FROM device_authorizations WHERE client_id = $1";
    db.raw_i64(sql, client).await.unwrap()
}

async fn device_authorization_round_trip_and_user_code_lookup(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    // No scope and no audience: stored as '' and '[]'.
    let (_, bare_user_code, bare) = device_authorization("kiosk");
    let bare = DeviceAuthorization { scope: ScopeSet::default(), audience: Vec::new(), ..bare };
    db.store.insert_device_authorization(&bare).await.unwrap();
    let sql = "SELECT count(*) FROM device_authorizations \
        WHERE client_id = $1 AND scope = '' AND audience = '[]'";
    assert_eq!(db.raw_i64(sql, "kiosk").await, Some(1));

    let find = |hash: SecretHash, now| async move {
        db.store.find_pending_by_user_code(&hash, now).await.unwrap()
    };
    assert_eq!(find(user_code.hash(), NOW).await, Some(stored.clone()));
    assert_eq!(find(bare_user_code.hash(), NOW).await, Some(bare.clone()));
    assert_eq!(find(Secret::generate().hash(), NOW).await, None);
    // By the user code only: the device code finds nothing.
    assert_eq!(find(device_code.hash(), NOW).await, None);

    // A user code is unique; the conflict names the client, never the code.
    let (_, _, clash) = device_authorization("other-tv");
    let clash = DeviceAuthorization { user_code_hash: user_code.hash(), ..clash };
    match db.store.insert_device_authorization(&clash).await {
        Err(StoreError::Conflict(what)) => {
            assert_eq!(what, "user code of a device authorization of client `other-tv`");
            assert!(!what.contains(user_code.expose()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(find(user_code.hash(), NOW).await, Some(stored.clone()), "the first is kept");

    // Once decided it is no longer pending; the device redeems it with what was decided.
    assert!(approve(&db.store, &user_code, NOW + 10).await);
    assert_eq!(find(user_code.hash(), NOW + 10).await, None);
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 20).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 20));
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Redeemed).await, 1);
    assert_eq!(find(bare_user_code.hash(), NOW + 20).await, Some(bare));
}

async fn expired_device_authorization_is_expired_and_not_found_by_user_code(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    let end = stored.expires_at;
    // `expires_at` is exclusive.
    let find = |now| db.store.find_pending_by_user_code(&stored.user_code_hash, now);
    assert_eq!(find(end - 1).await.unwrap(), Some(stored.clone()));
    assert_eq!(find(end).await.unwrap(), None);
    assert_eq!(find(end + 1).await.unwrap(), None);
    assert_poll!(poll(&db.store, &device_code, "tv", end).await, DevicePoll::Expired);
    assert_poll!(poll(&db.store, &device_code, "tv", end + 100).await, DevicePoll::Expired);
    assert_eq!(last_polled_at(db, "tv").await, None, "an expired poll is not recorded");
    // Too late to decide.
    assert!(!approve(&db.store, &user_code, end).await);
    assert!(!db.store.decide_device_authorization(&user_code.hash(), None, end).await.unwrap());
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Pending).await, 1);
    assert_poll!(poll(&db.store, &device_code, "tv", end - 1).await, DevicePoll::Pending);

    // Approved in time but polled too late: expired, and not redeemed.
    let (device_code, user_code, stored) = insert_device(&db.store, "kiosk").await;
    assert!(approve(&db.store, &user_code, stored.expires_at - 1).await);
    let outcome = poll(&db.store, &device_code, "kiosk", stored.expires_at).await;
    assert_poll!(outcome, DevicePoll::Expired);
    assert_eq!(devices_with_status(db, "kiosk", DeviceStatus::Approved).await, 1);
}

async fn rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds(db: &TestDb) {
    let (device_code, _, _) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert_eq!(last_polled_at(db, "tv").await, Some(NOW));
    assert_eq!(interval_of(db, "tv").await, INTERVAL, "a poll in time changes no interval");

    assert_poll!(poll(&db.store, &device_code, "tv", NOW + 1).await, DevicePoll::SlowDown);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 5);
    assert_eq!(last_polled_at(db, "tv").await, Some(NOW + 1), "a slow_down poll is a poll");

    // The longer interval after the last poll is soon enough again (the interval is inclusive).
    let later = NOW + 1 + INTERVAL + 5;
    assert_poll!(poll(&db.store, &device_code, "tv", later).await, DevicePoll::Pending);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 5, "the longer interval stays");
    assert_eq!(last_polled_at(db, "tv").await, Some(later));
    // One second short of the new interval is too soon: another 5 s.
    let early = later + INTERVAL + 4;
    assert_poll!(poll(&db.store, &device_code, "tv", early).await, DevicePoll::SlowDown);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 10);

    // slow_down never redeems: an approval waits for a poll in time.
    let (device_code, user_code, stored) = insert_device(&db.store, "kiosk").await;
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW).await, DevicePoll::Pending);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW + 2).await, DevicePoll::SlowDown);
    assert_eq!(devices_with_status(db, "kiosk", DeviceStatus::Approved).await, 1);
    let at = NOW + 2 + INTERVAL + 5;
    let found = approved(poll(&db.store, &device_code, "kiosk", at).await);
    assert_eq!(
        found,
        DeviceAuthorization { interval: INTERVAL + 5, ..redeemed_device(&stored, at) }
    );
}

async fn decision_is_taken_once(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    let decide = |code: &Secret, approval, now| {
        let hash = code.hash();
        async move { db.store.decide_device_authorization(&hash, approval, now).await.unwrap() }
    };
    let deny = |code, now| decide(code, None, now);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert!(!deny(&user_code, NOW + 2).await, "approved, then denied");
    let mallory = Some(("mallory-sub", NOW, "sid-2"));
    assert!(!decide(&user_code, mallory, NOW + 3).await, "approved twice");
    // The first decision stands.
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 4).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 4));
    assert!(!approve(&db.store, &user_code, NOW + 5).await, "redeemed is decided");

    let (device_code, user_code, _) = insert_device(&db.store, "kiosk").await;
    assert!(deny(&user_code, NOW + 1).await);
    assert!(!approve(&db.store, &user_code, NOW + 2).await, "denied, then approved");
    assert!(!deny(&user_code, NOW + 3).await, "denied twice");
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW + 4).await, DevicePoll::Denied);

    assert!(!approve(&db.store, &new_user_code(), NOW).await, "an unknown user code");
}

async fn denied_poll_is_denied(db: &TestDb) {
    let (device_code, user_code, _) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert!(db.store.decide_device_authorization(&user_code.hash(), None, NOW + 1).await.unwrap());
    let sql = "SELECT count(*) FROM device_authorizations \
        WHERE client_id = $1 AND user_id IS NULL AND auth_time IS NULL AND sid IS NULL";
    assert_eq!(db.raw_i64(sql, "tv").await, Some(1), "a denial records no user");
    assert_eq!(db.store.find_pending_by_user_code(&user_code.hash(), NOW + 1).await.unwrap(), None);

    let at = NOW + INTERVAL;
    assert_poll!(poll(&db.store, &device_code, "tv", at).await, DevicePoll::Denied);
    assert_poll!(poll(&db.store, &device_code, "tv", at + INTERVAL).await, DevicePoll::Denied);
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Denied).await, 1);
}

async fn approved_device_code_is_redeemed_once(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Approved).await, 1);

    let at = NOW + INTERVAL;
    assert_eq!(
        approved(poll(&db.store, &device_code, "tv", at).await),
        redeemed_device(&stored, at)
    );
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Redeemed).await, 1);
    let next = at + INTERVAL;
    assert_poll!(poll(&db.store, &device_code, "tv", next).await, DevicePoll::AlreadyRedeemed);
    let outcome = poll(&db.store, &device_code, "tv", next + INTERVAL).await;
    assert_poll!(outcome, DevicePoll::AlreadyRedeemed);
    assert_poll!(
        poll(&db.store, &device_code, "tv", next + INTERVAL + 1).await,
        DevicePoll::SlowDown
    );
}

async fn another_clients_device_code_is_unknown(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert!(approve(&db.store, &user_code, NOW).await);
    assert_poll!(poll(&db.store, &device_code, "mallory", NOW + 1).await, DevicePoll::Unknown);
    // Not even expiry is told to another client, and its polls change nothing.
    let late = stored.expires_at;
    assert_poll!(poll(&db.store, &device_code, "mallory", late).await, DevicePoll::Unknown);
    assert_eq!(last_polled_at(db, "tv").await, None);
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Approved).await, 1);
    assert_poll!(poll(&db.store, &Secret::generate(), "tv", NOW + 1).await, DevicePoll::Unknown);
    // A user code is no device code.
    assert_poll!(poll(&db.store, &user_code, "tv", NOW + 1).await, DevicePoll::Unknown);

    let found = approved(poll(&db.store, &device_code, "tv", NOW + 2).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 2));
    assert_poll!(poll(&db.store, &device_code, "mallory", NOW + 20).await, DevicePoll::Unknown);
}

async fn concurrent_polls_of_an_approved_code_have_one_winner(db: &TestDb) {
    // Two independent pools: two server instances sharing one database.
    let other = db.connect_another().await;
    for round in 0..3 {
        let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
        assert!(approve(&db.store, &user_code, NOW).await);
        let hash = device_code.hash();
        let mut set = JoinSet::new();
        for i in 0..8 {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            set.spawn(async move {
                store.poll_device_authorization(&hash, &client_id("tv"), NOW + 1).await.unwrap()
            });
        }
        let (mut won, mut lost) = (0, 0);
        for outcome in set.join_all().await {
            match outcome {
                DevicePoll::Approved(found) => {
                    assert_eq!(*found, redeemed_device(&stored, NOW + 1));
                    won += 1;
                }
                DevicePoll::AlreadyRedeemed | DevicePoll::SlowDown => lost += 1,
                other => panic!("a concurrent poll got {other:?}"),
            }
        }
        assert_eq!((won, lost), (1, 7), "round {round}");
    }
    other.close().await;
}

async fn unreadable_device_authorization_is_a_backend_error_and_changes_nothing(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert!(approve(&db.store, &user_code, NOW).await);
    db.raw_execute("UPDATE device_authorizations SET audience = 'not json'").await;
    let message = backend_message(
        db.store.poll_device_authorization(&device_code.hash(), &client_id("tv"), NOW + 1).await,
    );
    assert!(message.contains("device_authorizations.audience") && message.contains("tv"));
    assert_eq!(last_polled_at(db, "tv").await, None, "nothing was recorded");
    assert_eq!(devices_with_status(db, "tv", DeviceStatus::Approved).await, 1, "nor redeemed");

    db.raw_execute("UPDATE device_authorizations SET audience = '[]'").await;
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 2).await);
    let expected =
        DeviceAuthorization { audience: Vec::new(), ..redeemed_device(&stored, NOW + 2) };
    assert_eq!(found, expected);
}

async fn prune_removes_expired_device_authorizations(db: &TestDb) {
    const AT: i64 = NOW + 1000;
    let (_, edge_user_code, edge) = device_authorization("tv");
    let edge = DeviceAuthorization { expires_at: AT, ..edge };
    db.store.insert_device_authorization(&edge).await.unwrap();
    // Approved and redeemed, then expired: it goes too.
    let (device_code, user_code, spent) = device_authorization("kiosk");
    let spent = DeviceAuthorization { expires_at: AT - 1, ..spent };
    db.store.insert_device_authorization(&spent).await.unwrap();
    assert!(approve(&db.store, &user_code, NOW).await);
    approved(poll(&db.store, &device_code, "kiosk", NOW + 1).await);
    let (_, live_user_code, live) = device_authorization("tv");
    let live = DeviceAuthorization { expires_at: AT + 1, ..live };
    db.store.insert_device_authorization(&live).await.unwrap();
    assert_eq!(db.raw_count("device_authorizations").await, 3);

    assert_eq!(db.store.prune_expired(AT - 2).await.unwrap(), 0);
    // `expires_at` is inclusive here.
    assert_eq!(db.store.prune_expired(AT).await.unwrap(), 2);
    assert_eq!(db.raw_count("device_authorizations").await, 1);
    assert_eq!(db.store.prune_expired(AT).await.unwrap(), 0);
    let find = |code: &Secret| {
        let hash = code.hash();
        async move { db.store.find_pending_by_user_code(&hash, AT).await.unwrap() }
    };
    assert_eq!(find(&live_user_code).await, Some(live));
    assert_eq!(find(&edge_user_code).await, None);

    // A pruned user code may be issued again.
    let (_, _, again) = device_authorization("tv");
    let again = DeviceAuthorization {
        user_code_hash: edge_user_code.hash(),
        expires_at: AT + 600,
        ..again
    };
    db.store.insert_device_authorization(&again).await.unwrap();
    assert_eq!(db.store.prune_expired(AT + 1).await.unwrap(), 1, "the live one, at its end");
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
