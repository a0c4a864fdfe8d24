//! The store's test suite, run against both backends: every case is one `async fn` taking a
//! [`TestDb`], and `on_both_backends!` turns it into a `…_sqlite` and a `…_postgres` test.
//!
//! SQLite runs on a fresh file under the temp directory. PostgreSQL runs at
//! `TESSERA_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each test
//! in a schema of its own, so tests run in parallel and can be re-run. When PostgreSQL cannot
//! be reached its tests are skipped with a note on stderr, or fail when `CI=true`.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tessera_core::client::{AuthMethod, Client, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg, StoredKey, generate_key};
use tessera_core::redirect_uri::RedirectUri;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::{Secret, random_bytes};
use tessera_core::store::StoreError;
use tessera_core::user::User;
use tessera_store::{ClientStore, SigningKeyStore, Store, UserStore};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

enum Backend {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, schema: String },
}

/// A fresh, isolated database and a store connected to it.
struct TestDb {
    store: Store,
    url: String,
    backend: Backend,
}

fn random_hex() -> String {
    random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

fn temp_sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("tessera-store-test-{}.db", random_hex()))
}

async fn connect(url: &str, migrate: bool) -> Store {
    let store = if migrate {
        Store::connect(url).await
    } else {
        Store::connect_without_migrating(url).await
    };
    store.unwrap_or_else(|e| panic!("connecting the store failed: {e}"))
}

impl TestDb {
    async fn sqlite(migrate: bool) -> TestDb {
        let path = temp_sqlite_path();
        let url = format!("sqlite://{}", path.display());
        TestDb { store: connect(&url, migrate).await, url, backend: Backend::Sqlite { path } }
    }

    /// `None` when PostgreSQL is unreachable and this is not CI.
    async fn postgres(migrate: bool) -> Option<TestDb> {
        let admin_url = std::env::var("TESSERA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin =
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return postgres_unreachable(&e.to_string()),
                Err(_) => return postgres_unreachable("connecting timed out after 5 s"),
            };
        let schema = format!("t_{}", random_hex());
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {schema} failed: {e}"));
        let _ = admin.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        Some(TestDb {
            store: connect(&url, migrate).await,
            url,
            backend: Backend::Postgres { admin_url, schema },
        })
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// Runs a statement on a separate, raw connection (to tamper with rows).
    async fn raw_execute(&self, sql: &'static str) {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Reads one nullable BLOB/BYTEA value on a separate, raw connection.
    async fn raw_bytes(&self, sql: &'static str, arg: &str) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).bind(arg).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    async fn cleanup(self) {
        self.store.close().await;
        match self.backend {
            Backend::Sqlite { path } => remove_sqlite_files(&path),
            Backend::Postgres { admin_url, schema } => {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(AssertSqlSafe(drop)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn postgres_unreachable(reason: &str) -> Option<TestDb> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is unreachable and CI=true: {reason}");
    }
    eprintln!("skipping PostgreSQL: {reason}");
    None
}

/// Declares `$sqlite` and `$postgres` tests running `$body` on a fresh database of each kind;
/// `unmigrated` connects without applying migrations.
macro_rules! on_both_backends {
    ($($body:ident => $sqlite:ident, $postgres:ident $(, $unmigrated:ident)?;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            let db = TestDb::sqlite(on_both_backends!(@migrate $($unmigrated)?)).await;
            $body(&db).await;
            db.cleanup().await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(db) = TestDb::postgres(on_both_backends!(@migrate $($unmigrated)?)).await
            else {
                return;
            };
            $body(&db).await;
            db.cleanup().await;
        }
    )*};
    (@migrate unmigrated) => { false };
    (@migrate) => { true };
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
    fresh_database_applies_one_migration_then_none =>
        fresh_database_applies_one_migration_then_none_sqlite,
        fresh_database_applies_one_migration_then_none_postgres, unmigrated;
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
    let again = Store::connect(&db.url).await.unwrap();
    assert_eq!(again.migrate().await.unwrap(), 0);
    let found = again.find_client(&client.client_id).await.unwrap().unwrap();
    assert_same_client(&found, &client);
    again.close().await;
}

async fn fresh_database_applies_one_migration_then_none(db: &TestDb) {
    db.store.ping().await.unwrap();
    assert!(matches!(db.store.list_clients().await, Err(StoreError::Backend(_))), "no tables yet");
    assert_eq!(db.store.migrate().await.unwrap(), 1);
    assert_eq!(db.store.migrate().await.unwrap(), 0);
    assert!(db.store.list_clients().await.unwrap().is_empty());
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
