//! Two server instances on one PostgreSQL database, as in a horizontally scaled deployment:
//! each has its own connection pool, cache and key ring, and they share clients and signing
//! keys only through the database.
//!
//! PostgreSQL is reached as in the store suite (`TESSERA_TEST_DATABASE_URL`, a fresh schema per
//! test); when it is unreachable these tests are skipped with a note on stderr, or fail when
//! `CI=true`.

use crate::common::*;
use axum::http::StatusCode;
use tessera_core::client::AuthMethod;
use tessera_core::client_id::ClientId;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::store::{ClientStore, SigningKeyStore};
use tessera_store::testing::TestDb;

/// Instance A, started fully (it creates the signing keys on the fresh database), then
/// instance B with the same key encryption key, each on a pool of its own.
async fn two_instances(db: &TestDb) -> (TestApp, TestApp) {
    let kek = KeyEncryptionKey::generate_encoded();
    let a = TestApp::on_store(
        db.connect_another().await,
        settings_with_kek(SigningAlg::ES256, &db.url, &kek),
    )
    .await;
    let b = TestApp::on_store(
        db.connect_another().await,
        settings_with_kek(SigningAlg::ES256, &db.url, &kek),
    )
    .await;
    (a, b)
}

/// Closes the instances' pools, then drops the schema.
async fn shut_down(db: TestDb, instances: [TestApp; 2]) {
    for app in instances {
        app.store.close().await;
    }
    db.cleanup().await;
}

async fn client_credentials_token(app: &TestApp, secret: &str) -> String {
    let res = app.token(Some(("svc", secret)), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
    res.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn r5_2_two_instances_share_clients_and_keys_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = two_instances(&db).await;
    assert_eq!((a.store.backend(), b.store.backend()), ("postgres", "postgres"));

    // B found A's keys and created none: one current key per algorithm, the same JWKS.
    let stored = db.store.published_keys(t0()).await.unwrap();
    assert_eq!(stored.len(), SigningAlg::ALL.len(), "one key per algorithm, not two");
    let jwks_a = a.get("/jwks.json").await.json();
    let jwks_b = b.get("/jwks.json").await.json();
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), SigningAlg::ALL.len());
    assert_eq!(jwks_a, jwks_b);

    // A client registered through the store (as by the admin CLI) works on both instances,
    // and each instance's tokens verify against the other's JWKS.
    let secret =
        register_client(&db.store, "svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let from_a = client_credentials_token(&a, &secret).await;
    let from_b = client_credentials_token(&b, &secret).await;
    for (token, verifier) in [(&from_a, &b), (&from_b, &a), (&from_a, &a), (&from_b, &b)] {
        let claims = verify_with_jwks_of(verifier, token).await;
        assert_eq!(claims["client_id"], "svc");
        assert_eq!(claims["scope"], "a:r");
    }

    shut_down(db, [a, b]).await;
}

#[tokio::test]
async fn r6_1_client_deletion_reaches_every_instance_within_5_seconds_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = two_instances(&db).await;
    let secret =
        register_client(&db.store, "svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    // Both instances now hold the client in their caches.
    client_credentials_token(&a, &secret).await;
    client_credentials_token(&b, &secret).await;

    assert!(db.store.delete_client(&ClientId::parse("svc").unwrap()).await.unwrap());
    tokio::time::sleep(
        tessera_server::client_cache::CLIENT_CACHE_TTL + std::time::Duration::from_millis(100),
    )
    .await;
    for (name, app) in [("A", &a), ("B", &b)] {
        let res = app.token(Some(("svc", &secret)), "grant_type=client_credentials").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "instance {name}");
        assert_eq!(res.json()["error"], "invalid_client", "instance {name}");
    }

    shut_down(db, [a, b]).await;
}

/// A user grant of client `web` with a code and a refresh token, stored as `/authorize` and a
/// first exchange would store them; returns (code, refresh token, client secret).
async fn grant_with_code_and_refresh_token(db: &TestDb) -> (String, String, String) {
    use tessera_core::client::ClientRegistration;
    use tessera_core::grant_type::GrantType;
    use tessera_core::pkce::CodeChallenge;
    use tessera_core::redirect_uri::RedirectUri;
    use tessera_core::scope::ScopeSet;
    use tessera_core::secret::Secret;
    use tessera_core::store::{AuthorizationCode, AuthorizationCodeStore, Grant, GrantStore};

    let now = t0();
    let (client, secret) = ClientRegistration {
        client_id: Some(ClientId::parse("web").unwrap()),
        client_name: "web".into(),
        redirect_uris: vec![RedirectUri::parse_for_registration(PG_REDIRECT).unwrap()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        ..Default::default()
    }
    .into_client(now)
    .unwrap();
    db.store.create_client(&client).await.unwrap();
    // A code or refresh token counts only while its user exists (issue 17 finding 1).
    let user = tessera_core::user::User {
        id: "user-1".into(),
        username: "user-1".into(),
        email: None,
        name: None,
        password_hash: tessera_core::user::UNKNOWN_USER_PASSWORD_HASH.into(),
        created_at: now,
        disabled: false,
    };
    tessera_core::store::UserStore::create_user(&db.store, &user).await.unwrap();
    let grant = |id: &str| Grant {
        id: id.into(),
        client_id: client.client_id.clone(),
        user_id: "user-1".into(),
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        auth_time: now,
        sid: None,
        audience: Vec::new(),
        created_at: now,
        expires_at: now + 86_400,
        dpop_jkt: None,
    };
    let code = Secret::generate();
    let stored = AuthorizationCode {
        code_hash: code.hash(),
        grant_id: "grant-code".into(),
        client_id: client.client_id.clone(),
        redirect_uri: PG_REDIRECT.into(),
        code_challenge: CodeChallenge::parse(Some(PG_CHALLENGE), Some("S256")).unwrap(),
        nonce: None,
        expires_at: now + 600,
    };
    db.store.insert_grant_with_code(&grant("grant-code"), &stored).await.unwrap();
    // A second grant, for the refresh test, reached through its own code's first exchange.
    let refresh = Secret::generate();
    let second_code = Secret::generate();
    let second = AuthorizationCode {
        code_hash: second_code.hash(),
        grant_id: "grant-refresh".into(),
        ..stored
    };
    db.store.insert_grant_with_code(&grant("grant-refresh"), &second).await.unwrap();
    db.store
        .insert_refresh_token(&refresh.hash(), "grant-refresh", now, now + 86_400, None)
        .await
        .unwrap();
    (code.expose().to_owned(), refresh.expose().to_owned(), secret.unwrap().expose().to_owned())
}

const PG_REDIRECT: &str = "https://app.example/cb";
const PG_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PG_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[tokio::test]
async fn invariant_1_one_code_exchanged_on_two_instances_at_once_has_one_winner_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = two_instances(&db).await;
    let (code, refresh, secret) = grant_with_code_and_refresh_token(&db).await;
    let form = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={PG_VERIFIER}",
        url::form_urlencoded::byte_serialize(PG_REDIRECT.as_bytes()).collect::<String>()
    );
    let (ra, rb) = tokio::join!(
        a.token(Some(("web", &secret)), &form),
        b.token(Some(("web", &secret)), &form)
    );
    let statuses = [ra.status, rb.status];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    let loser = if ra.status == StatusCode::OK { &rb } else { &ra };
    assert_eq!(loser.json()["error"], "invalid_grant");

    // The same for one refresh token presented to both instances at once.
    let form = format!("grant_type=refresh_token&refresh_token={refresh}");
    let (ra, rb) = tokio::join!(
        a.token(Some(("web", &secret)), &form),
        b.token(Some(("web", &secret)), &form)
    );
    let statuses = [ra.status, rb.status];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");

    shut_down(db, [a, b]).await;
}
