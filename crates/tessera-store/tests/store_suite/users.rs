//! Users.

use super::devices::{approved, insert_device, poll};
use super::*;

on_both_backends! {
    users_round_trip;
    duplicate_username_is_a_conflict;
    delete_user_reports_whether_it_deleted;
    deleting_a_user_ends_every_grant_token_session_and_consent;
    disabling_a_user_ends_access_and_enabling_restores_only_sign_in;
    grants_and_sessions_of_a_missing_user_are_unusable;
    rfc9700_4_15_a_client_id_never_equals_a_users_sub;
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
    assert!(db.store.delete_user("alice", NOW).await.unwrap());
    assert!(!db.store.delete_user("alice", NOW).await.unwrap());
    assert!(db.store.find_user_by_username("alice").await.unwrap().is_none());
    assert!(db.store.list_users().await.unwrap().is_empty());
}

/// Everything one user holds: a grant with an unredeemed code, a second grant with a refresh
/// token and a recorded access token, a session, a consent and an approved device
/// authorization.
struct Holdings {
    code: SecretHash,
    refresh: SecretHash,
    jti: String,
    cookie: Secret,
    device_code: Secret,
}

async fn give_holdings(db: &TestDb, user_id: &str, client: &str) -> Holdings {
    let code = insert_grant(&db.store, &grant(client, user_id)).await;
    let g = grant(client, user_id);
    let refresh = grant_with_refresh_token(&db.store, &g, NOW + 3600).await;
    let jti = random_id::<16>();
    db.store.record_access_token(&g.id, &jti, NOW + 900).await.unwrap();
    let (cookie, s) = session(user_id, NOW + 3600);
    db.store.create_session(&s).await.unwrap();
    let consent = Consent {
        user_id: user_id.into(),
        client_id: client_id(client),
        scope: ScopeSet::parse("openid").unwrap(),
        granted_at: NOW,
    };
    db.store.save_consent(&consent).await.unwrap();
    let (device_code, user_code, _) = insert_device(&db.store, client).await;
    let approval = DeviceApproval { user_id: user_id.into(), auth_time: NOW, sid: "sid-d".into() };
    let hash = user_code.hash();
    let decided = db.store.decide_device_authorization(&hash, Some(&approval), NOW);
    assert!(decided.await.unwrap());
    Holdings { code, refresh, jti, cookie, device_code }
}

/// Asserts that none of `h` grants access any more at `now`.
async fn assert_all_ended(db: &TestDb, h: &Holdings, user_id: &str, client: &str, now: i64) {
    assert_unknown(redeem(&db.store, &h.code, now).await);
    assert_invalid(rotate(&db.store, &h.refresh, client, now).await.0);
    assert!(db.store.is_access_token_revoked(&h.jti).await.unwrap());
    assert_eq!(db.store.find_session(&h.cookie.hash(), now).await.unwrap(), None);
    assert_eq!(db.store.find_consent(user_id, &client_id(client)).await.unwrap(), None);
    // RFC 8628 §3.5: the approval was withdrawn.
    let outcome = poll(&db.store, &h.device_code, client, now).await;
    assert!(matches!(outcome, DevicePoll::Denied), "expected Denied, got {outcome:?}");
}

/// Issue 17 finding 1: deleting a user revokes every grant (refresh tokens, recorded access
/// tokens), withdraws device approvals, ends sessions and removes consents, in one
/// transaction; another user's holdings are untouched.
async fn deleting_a_user_ends_every_grant_token_session_and_consent(db: &TestDb) {
    let (alice, bob) = ("alice-sub", "bob-sub");
    let a = give_holdings(db, alice, "web").await;
    let b = give_holdings(db, bob, "web").await;
    assert!(db.store.delete_user(alice, NOW + 1).await.unwrap());
    assert!(db.store.find_user_by_id(alice).await.unwrap().is_none());
    assert_all_ended(db, &a, alice, "web", NOW + 2).await;

    assert!(db.store.find_session(&b.cookie.hash(), NOW + 2).await.unwrap().is_some());
    assert!(db.store.find_consent(bob, &client_id("web")).await.unwrap().is_some());
    assert!(!db.store.is_access_token_revoked(&b.jti).await.unwrap());
    redeemed(redeem(&db.store, &b.code, NOW + 2).await);
    rotated(rotate(&db.store, &b.refresh, "web", NOW + 2).await.0);
    approved(poll(&db.store, &b.device_code, "web", NOW + 2).await);
    assert!(!db.store.delete_user(alice, NOW + 3).await.unwrap(), "deleted once");
}

/// Issue 17 finding 1: disabling ends access like a deletion but keeps the account; enabling
/// lets the user sign in again (new sessions count) and restores nothing that was revoked.
async fn disabling_a_user_ends_access_and_enabling_restores_only_sign_in(db: &TestDb) {
    let alice = "alice-sub";
    let a = give_holdings(db, alice, "web").await;
    assert!(db.store.set_user_disabled(alice, true, NOW + 1).await.unwrap());
    assert!(db.store.find_user_by_username(alice).await.unwrap().unwrap().disabled);
    assert_all_ended(db, &a, alice, "web", NOW + 2).await;
    // A session created meanwhile (a sign-in that was already past its checks) is not one.
    let (late, s) = session(alice, NOW + 3600);
    db.store.create_session(&s).await.unwrap();
    assert_eq!(db.store.find_session(&late.hash(), NOW + 2).await.unwrap(), None);
    // Nor can a disabled user approve a device.
    let (_, user_code, _) = insert_device(&db.store, "tv").await;
    let approval = DeviceApproval { user_id: alice.into(), auth_time: NOW, sid: "sid-e".into() };
    let hash = user_code.hash();
    let decided = db.store.decide_device_authorization(&hash, Some(&approval), NOW);
    assert!(!decided.await.unwrap());

    assert!(db.store.set_user_disabled(alice, false, NOW + 3).await.unwrap());
    assert!(!db.store.find_user_by_username(alice).await.unwrap().unwrap().disabled);
    // Past the device's polling interval, so that the poll is not told to slow down.
    assert_all_ended(db, &a, alice, "web", NOW + 20).await;
    assert!(db.store.find_session(&late.hash(), NOW + 20).await.unwrap().is_some());
    assert!(!db.store.set_user_disabled("nobody", true, NOW).await.unwrap());
}

/// Issue 17 finding 1: a grant or session whose user is not in `users` (deleted before
/// deletion revoked anything) gives no tokens and no session.
async fn grants_and_sessions_of_a_missing_user_are_unusable(db: &TestDb) {
    let g = grant("web", "ghost-sub");
    let (_, code) = code_of(&g);
    db.store.insert_grant_with_code(&g, &code).await.unwrap();
    assert_unknown(redeem(&db.store, &code.code_hash, NOW).await);
    let g = grant("web", "ghost-sub");
    db.store.insert_grant_with_code(&g, &code_of(&g).1).await.unwrap();
    let refresh = Secret::generate().hash();
    db.store.insert_refresh_token(&refresh, &g.id, NOW, NOW + 3600, None).await.unwrap();
    assert_invalid(rotate(&db.store, &refresh, "web", NOW + 1).await.0);
    let (cookie, s) = session("ghost-sub", NOW + 3600);
    db.store.create_session(&s).await.unwrap();
    assert_eq!(db.store.find_session(&cookie.hash(), NOW).await.unwrap(), None);
}

/// RFC 9700 §4.15 (issue 17 finding 17): a client whose client_id is a user's `sub` could pass
/// its client-credentials tokens (`sub` = client_id) for that user's, so neither side may be
/// created over the other.
async fn rfc9700_4_15_a_client_id_never_equals_a_users_sub(db: &TestDb) {
    let alice = user("alice");
    db.store.create_user(&alice).await.unwrap();
    let (impostor, _) = confidential_client(&alice.id);
    match db.store.create_client(&impostor).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains(&alice.id), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(db.store.find_client(&impostor.client_id).await.unwrap().is_none());

    let (client, _) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    let shadow = User { id: "svc".into(), ..another_user(&alice, "bob") };
    match db.store.create_user(&shadow).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("svc"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(db.store.find_user_by_username("bob").await.unwrap().is_none());
}
