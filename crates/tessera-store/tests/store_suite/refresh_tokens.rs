//! Refresh-token families: rotation, reuse detection, revocation, concurrency.

use super::*;

on_both_backends! {
    refresh_rotation_spends_the_old_token_and_detects_reuse;
    rotation_refused_by_accept_changes_nothing;
    rotation_for_another_client_is_invalid_not_reuse;
    rotation_of_revoked_or_expired_grant_is_invalid;
    expired_refresh_token_is_invalid;
    new_refresh_token_expiry_is_capped_by_the_grant;
    concurrent_rotations_have_exactly_one_winner;
    concurrent_rotations_across_two_pools_have_one_winner;
    concurrent_rotations_on_the_one_statement_and_portable_paths_have_one_winner;
    revoking_a_grant_revokes_its_access_tokens;
    unreadable_grant_is_a_backend_error_and_spends_nothing;
    rotation_records_its_access_token_under_the_grant;
    find_refresh_token_reports_rotation_and_revocation;
    oauth21_4_3_1_a_grace_window_lets_its_client_present_a_just_rotated_token_again;
    rfc8705_4_a_bound_refresh_token_rotates_only_for_its_certificate;
}

// RFC 8705 §4: a refresh token bound to a certificate rotates only when the request presents
// that certificate (another or none: `Invalid`, the token unspent), and its successor
// inherits the binding.
async fn rfc8705_4_a_bound_refresh_token_rotates_only_for_its_certificate(db: &TestDb) {
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    let old = Secret::generate().hash();
    db.store.insert_refresh_token(&old, &g.id, NOW, NOW + IDLE_TTL, Some("thumb-a")).await.unwrap();
    let client_id = client_id("web");
    let attempt = |old: SecretHash, certificate: Option<&'static str>| {
        let store = db.store.clone();
        let client_id = client_id.clone();
        async move {
            let new = Secret::generate().hash();
            let jti = random_id::<16>();
            let rotation = RotationRequest {
                certificate,
                ..rotation_request(&old, &new, &client_id, NOW + 1, &jti)
            };
            (store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap(), new)
        }
    };
    assert_invalid(attempt(old, None).await.0);
    assert_invalid(attempt(old, Some("thumb-b")).await.0);
    let (outcome, new) = attempt(old, Some("thumb-a")).await;
    assert_eq!(rotated(outcome), g);
    // The successor is bound to the same certificate.
    assert_invalid(attempt(new, None).await.0);
    assert_eq!(rotated(attempt(new, Some("thumb-a")).await.0), g);
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

    // The check refuses with the grant it was shown, which comes back as the reason.
    let outcome = db
        .store
        .rotate_refresh_token(rotation, |grant| Err::<(), _>(Box::new(grant.clone())))
        .await
        .unwrap();
    match outcome {
        RefreshRotation::Refused(shown) => assert_eq!(*shown, g, "accept is shown the grant"),
        other => panic!("expected Refused, got {other:?}"),
    }

    // The refused token is still current and the new one was not stored.
    assert_eq!(current_refresh_tokens(db, &g).await, 1);
    assert_invalid(rotate(&db.store, &new, "web", NOW).await.0);
    let outcome = db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap();
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
    rotated(db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap());
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
            RefreshRotation::Rotated { grant: found, .. } => {
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

/// Design invariant 1 across PostgreSQL's two rotation paths (issue 16 item 2): the
/// one-statement path and the portable one race on the same token, and one call wins (on
/// SQLite both stores take the portable path).
async fn concurrent_rotations_on_the_one_statement_and_portable_paths_have_one_winner(db: &TestDb) {
    let portable = db.store.clone().with_portable_paths_only();
    for _ in 0..3 {
        let g = grant("web", "alice-sub");
        let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
        let stores =
            (0..8).map(|i| if i % 2 == 0 { db.store.clone() } else { portable.clone() }).collect();
        assert_eq!(rotate_concurrently(stores, old, &g).await, (1, 7));
        assert_eq!(current_refresh_tokens(db, &g).await, 1);
    }
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
    ensure_user(&db.store, &g.user_id).await;
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let token = Secret::generate().hash();
    db.store.insert_refresh_token(&token, &g.id, NOW, NOW + IDLE_TTL, None).await.unwrap();

    db.raw_execute("UPDATE grants SET scope = 'openid  profile'").await;
    let message = backend_message(
        db.store.redeem_code(&code.hash(), &client_id("web"), NOW, |_| Ok::<(), ()>(())).await,
    );
    assert!(message.contains("grants.scope") && message.contains(&g.id), "{message}");
    let new = Secret::generate().hash();
    let client_id = client_id("web");
    let rotation =
        RotationRequest { idle_ttl: 60, ..rotation_request(&token, &new, &client_id, NOW, "at-1") };
    let message =
        backend_message(db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await);
    assert!(message.contains("grants.scope"), "{message}");

    // Both writes were rolled back with the failure.
    db.raw_execute("UPDATE grants SET scope = 'openid'").await;
    let (_, found) = redeemed(redeem(&db.store, &code.hash(), NOW).await);
    assert_eq!(found.scope, ScopeSet::parse("openid").unwrap());
    rotated(db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap());
}

/// R1.4: the access token issued with a rotated refresh token is recorded in the rotation's
/// transaction, so revoking the grant (reuse detection, consent revocation) revokes it too; a
/// refused rotation records nothing.
async fn rotation_records_its_access_token_under_the_grant(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    let (new, client_id) = (Secret::generate().hash(), client_id("web"));
    let refused = rotation_request(&old, &new, &client_id, NOW, "refused-at");
    let outcome = db.store.rotate_refresh_token(refused, |_| Err::<(), ()>(())).await.unwrap();
    assert!(matches!(outcome, RefreshRotation::Refused(_)), "{outcome:?}");
    assert_eq!(db.raw_count("grant_access_tokens").await, 0);

    let rotation = rotation_request(&old, &new, &client_id, NOW, "rotated-at");
    rotated(db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap());
    assert_eq!(db.raw_count("grant_access_tokens").await, 1);
    assert!(!db.store.is_access_token_revoked("rotated-at").await.unwrap());
    db.store.revoke_grant(&g.id, NOW + 1).await.unwrap();
    assert!(db.store.is_access_token_revoked("rotated-at").await.unwrap());
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

/// OAuth 2.1 §4.3.1 (issue 17 finding 18, optional part): with a grace window, a token its
/// client rotated moments ago (two requests that refreshed at once) rotates again instead of
/// revoking the grant; another client gets nothing, and after the window it is reuse.
async fn oauth21_4_3_1_a_grace_window_lets_its_client_present_a_just_rotated_token_again(
    db: &TestDb,
) {
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    rotated(rotate(&db.store, &old, "web", NOW).await.0);
    let with_grace = |client: &'static str, now: i64| async move {
        let new = Secret::generate().hash();
        let client_id = client_id(client);
        let jti = random_id::<16>();
        let rotation = RotationRequest {
            grace_seconds: 5,
            ..rotation_request(&old, &new, &client_id, now, &jti)
        };
        db.store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.unwrap()
    };
    assert_eq!(rotated(with_grace("web", NOW + 5).await), g, "within the window");
    assert_invalid(with_grace("other", NOW + 1).await);
    assert_eq!(revoked_at(db, &g).await, None);
    assert_reused(with_grace("web", NOW + 6).await, &g);
    // Without a window (the default) the same presentation is reuse at once.
    let g = grant("web", "alice-sub");
    let old = grant_with_refresh_token(&db.store, &g, NOW + IDLE_TTL).await;
    rotated(rotate(&db.store, &old, "web", NOW).await.0);
    assert_reused(rotate(&db.store, &old, "web", NOW + 1).await.0, &g);
}
