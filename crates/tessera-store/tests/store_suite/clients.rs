//! Clients: registration records, secrets stored as hashes, `private_key_jwt` fields.

use super::*;
use crate::access_tokens::opaque_token;

on_both_backends! {
    clients_round_trip;
    duplicate_client_is_a_conflict;
    delete_client_reports_whether_it_deleted;
    list_clients_is_ordered_by_client_id;
    secret_hash_column_holds_only_the_sha256;
    client_round_trip_keeps_private_key_jwt_and_token_format_fields;
    unreadable_new_columns_are_backend_errors_naming_the_column;
    rows_written_before_0003_read_with_defaults, unmigrated;
    rfc8705_2_1_2_tls_client_auth_name_and_binding_round_trip;
}

// RFC 8705 §2.1.2 / §3.4: the registered certificate name (each kind) and the binding flag
// read back as written (migration 0013).
async fn rfc8705_2_1_2_tls_client_auth_name_and_binding_round_trip(db: &TestDb) {
    use tessera_core::mtls::CertificateName;
    let names = [
        CertificateName::parse("tls_client_auth_subject_dn", "CN=svc,O=Example").unwrap(),
        CertificateName::SanDns("svc.example".into()),
        CertificateName::SanUri("https://svc.example/id".into()),
        CertificateName::SanIp("2001:db8::7".parse().unwrap()),
        CertificateName::SanEmail("ops@svc.example".into()),
    ];
    for (i, name) in names.into_iter().enumerate() {
        let (client, _) = ClientRegistration {
            client_id: Some(client_id(&format!("mtls-{i}"))),
            client_name: "mtls".into(),
            auth_method: Some(AuthMethod::TlsClientAuth),
            tls_client_auth_name: Some(name),
            tls_client_certificate_bound_access_tokens: i % 2 == 0,
            ..Default::default()
        }
        .into_client(NOW)
        .unwrap();
        db.store.create_client(&client).await.unwrap();
        let found = db.store.find_client(&client.client_id).await.unwrap().unwrap();
        assert_eq!(found.token_endpoint_auth_method, AuthMethod::TlsClientAuth);
        assert_same_client(&found, &client);
    }
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
    let message = backend_message(
        db.store.redeem_code(&code, &client_id("web"), NOW, |_| Ok::<(), ()>(())).await,
    );
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

    // A release with 0003 and later starts: they all apply, and the old rows read with the
    // new columns' defaults.
    assert_eq!(db.store.migrate().await.unwrap(), migrator.iter().count() - 2);
    let client = db.store.find_client(&client_id("old-app")).await.unwrap().unwrap();
    assert_eq!(client.token_endpoint_auth_method, AuthMethod::None);
    assert!(!client.introspection);
    assert_eq!(client.introspection_audience, None);
    assert_eq!(client.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!((client.jwks, client.jwks_uri, client.rate_limit_per_second), (None, None, None));
    let token = Secret::generate().hash();
    db.store.insert_refresh_token(&token, "old-grant", NOW, NOW + IDLE_TTL, None).await.unwrap();
    let record = db.store.find_refresh_token(&token).await.unwrap().unwrap();
    assert_eq!(record.grant.id, "old-grant");
    assert!(record.grant.audience.is_empty());
    // 0005: the grant of a user deleted before deletions revoked anything is revoked.
    assert!(record.grant_revoked);
    assert_eq!(db.store.migrate().await.unwrap(), 0);
}
