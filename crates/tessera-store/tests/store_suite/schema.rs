//! The database itself: connection, migrations, unreadable rows, no plaintext at rest, pruning, audit.

use super::*;
use crate::access_tokens::opaque_token;
use crate::devices::insert_device;

on_both_backends! {
    ping_and_backend_name;
    unreadable_rows_are_backend_errors_naming_the_column;
    migrations_are_idempotent_and_data_survives_reconnect;
    fresh_database_applies_every_migration_then_none, unmigrated;
    no_plaintext_codes_or_tokens_in_the_database;
    prune_removes_only_expired_rows;
    audit_events_tail_in_order;
}

async fn ping_and_backend_name(db: &TestDb) {
    db.store.ping().await.unwrap();
    assert_eq!(db.store.backend(), db.backend_name());
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
    // Every migration file of the backend (both directories hold the same schema).
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(db.store.migrate().await.unwrap(), files);
    assert_eq!(db.store.migrate().await.unwrap(), 0);
    assert!(db.store.list_clients().await.unwrap().is_empty());
    assert!(db.store.list_consents("alice-sub").await.unwrap().is_empty());
}

async fn no_plaintext_codes_or_tokens_in_the_database(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    ensure_user(&db.store, &g.user_id).await;
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let first = Secret::generate();
    db.store.insert_refresh_token(&first.hash(), &g.id, NOW, NOW + IDLE_TTL, None).await.unwrap();
    let second = Secret::generate();
    let client_id = client_id("web");
    let (first_hash, second_hash) = (first.hash(), second.hash());
    let rotation = rotation_request(&first_hash, &second_hash, &client_id, NOW, "at-1");
    rotated(db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap());
    let (cookie, s) = session("alice-sub", NOW + 3600);
    ensure_user(&db.store, &s.user_id).await;
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

async fn prune_removes_only_expired_rows(db: &TestDb) {
    const AT: i64 = NOW + 1000;
    // Tables and how many rows each must keep.
    let mut kept: Vec<(&str, i64)> = Vec::new();

    // A live grant: an expired code, one expired and one current refresh token, an access
    // token record expiring exactly at AT (gone: `expires_at` is inclusive here) and a live one.
    let live = grant("web", "alice-sub");
    let (_, code) = code_of(&live);
    ensure_user(&db.store, &live.user_id).await;
    db.store.insert_grant_with_code(&live, &code).await.unwrap();
    let insert_refresh = |g: &Grant, expires_at| {
        let (store, id, token) = (db.store.clone(), g.id.clone(), Secret::generate().hash());
        async move { store.insert_refresh_token(&token, &id, NOW, expires_at, None).await }
    };
    insert_refresh(&live, NOW + 500).await.unwrap();
    insert_refresh(&live, AT + 1).await.unwrap();
    db.store.record_access_token(&live.id, "live-at-edge", AT).await.unwrap();
    db.store.record_access_token(&live.id, "live-current", AT + 1).await.unwrap();
    // Another live grant whose code is still valid.
    let fresh = grant("web", "bob-sub");
    let (_, code) = code_of(&fresh);
    let code = AuthorizationCode { expires_at: AT + 1, ..code };
    ensure_user(&db.store, &fresh.user_id).await;
    db.store.insert_grant_with_code(&fresh, &code).await.unwrap();
    // An expired grant: its own rows go, and what outlived it (a code and a refresh token
    // valid past AT) cascades with it.
    let expired = Grant { expires_at: AT, ..grant("web", "carol-sub") };
    let (_, code) = code_of(&expired);
    let code = AuthorizationCode { expires_at: AT + 5, ..code };
    ensure_user(&db.store, &expired.user_id).await;
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
        actor: Some("orders-service".into()),
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
