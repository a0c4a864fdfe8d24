//! Remembered consents and login sessions.

use super::*;

on_both_backends! {
    consent_upsert_list_and_revoke_revokes_grants;
    sessions_expire_and_delete;
    sign_in_recorded_for_a_request_counts_once_for_that_request;
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
    ensure_user(&db.store, &s.user_id).await;
    db.store.create_session(&s).await.unwrap();
    ensure_user(&db.store, &other.user_id).await;
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

/// OIDC Core §3.1.2.1: the sign-in a session recorded for one authorization request counts for
/// one consent to that request only; another request, another session or a second consent
/// finds nothing.
async fn sign_in_recorded_for_a_request_counts_once_for_that_request(db: &TestDb) {
    let (_, s) = session("alice-sub", NOW + 3600);
    let (_, other) = session("alice-sub", NOW + 3600);
    for s in [&s, &other] {
        ensure_user(&db.store, &s.user_id).await;
        db.store.create_session(s).await.unwrap();
    }
    let (request, another) = (SecretHash::of(b"response_type=code&a"), SecretHash::of(b"b"));
    assert!(!db.store.take_sign_in_for(&s.id_hash, &request).await.unwrap(), "none recorded");
    db.store.record_sign_in_for(&s.id_hash, &another).await.unwrap();
    db.store.record_sign_in_for(&s.id_hash, &request).await.unwrap();
    assert!(!db.store.take_sign_in_for(&s.id_hash, &another).await.unwrap(), "replaced");
    assert!(!db.store.take_sign_in_for(&other.id_hash, &request).await.unwrap());
    assert!(db.store.take_sign_in_for(&s.id_hash, &request).await.unwrap());
    assert!(!db.store.take_sign_in_for(&s.id_hash, &request).await.unwrap(), "spent");
    assert_eq!(db.store.find_session(&s.id_hash, NOW).await.unwrap(), Some(s));
}
