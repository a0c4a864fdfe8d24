//! Authorization codes: single redemption, also under concurrency and across pools.

use super::*;

on_both_backends! {
    code_is_redeemed_once_then_reported_as_replay;
    grant_with_empty_scope_and_no_sid_round_trips;
    expired_code_is_unknown;
    code_of_a_revoked_grant_is_unknown;
    concurrent_redeems_have_exactly_one_winner;
    concurrent_redeems_across_two_pools_have_one_winner;
    grant_audience_round_trips;
    rfc6749_4_1_3_a_code_presented_by_another_client_spends_and_revokes_nothing;
    rfc7636_4_6_a_refused_check_spends_nothing;
}

async fn code_is_redeemed_once_then_reported_as_replay(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    ensure_user(&db.store, &g.user_id).await;
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();

    let (found_code, found_grant) = redeemed(redeem(&db.store, &code.hash(), NOW).await);
    assert_eq!(found_code, stored);
    assert_eq!(found_grant, g);

    // Spent: every later presentation is a replay naming the grant, even after expiry.
    assert_already_redeemed(redeem(&db.store, &code.hash(), NOW + 1).await, &g);
    assert_already_redeemed(redeem(&db.store, &code.hash(), NOW + 3600).await, &g);
    // Redeeming the same code again at the same instant changes nothing either.
    assert_already_redeemed(redeem(&db.store, &code.hash(), NOW).await, &g);
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, Some(NOW), "the first redemption's time is kept");

    assert_unknown(redeem(&db.store, &Secret::generate().hash(), NOW).await);
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
    ensure_user(&db.store, &g.user_id).await;
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();
    let sql = "SELECT count(*) FROM grants WHERE id = $1 AND scope = ''";
    assert_eq!(db.raw_i64(sql, &g.id).await, Some(1), "an empty scope set is stored as ''");

    let (found_code, found_grant) = redeemed(redeem(&db.store, &code.hash(), NOW).await);
    assert_eq!(found_code, stored);
    assert_eq!(found_grant, g);
    assert!(found_grant.scope.is_empty());
}

async fn expired_code_is_unknown(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let (code, stored) = code_of(&g);
    ensure_user(&db.store, &g.user_id).await;
    db.store.insert_grant_with_code(&g, &stored).await.unwrap();

    // `expires_at` is exclusive, and a failed attempt spends nothing.
    assert_unknown(redeem(&db.store, &code.hash(), stored.expires_at).await);
    assert_unknown(redeem(&db.store, &code.hash(), stored.expires_at + 1).await);
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, None);
    redeemed(redeem(&db.store, &code.hash(), stored.expires_at - 1).await);
}

async fn code_of_a_revoked_grant_is_unknown(db: &TestDb) {
    // The user withdrew consent between approval and redemption.
    let g = grant("web", "alice-sub");
    let code = insert_grant(&db.store, &g).await;
    assert!(!db.store.revoke_consent("alice-sub", &g.client_id, NOW).await.unwrap());
    assert_unknown(redeem(&db.store, &code, NOW + 1).await);
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, None, "nothing was spent");
}

/// Redeems `code` concurrently once per store in `stores`; returns how many calls got
/// `Redeemed` and how many `AlreadyRedeemed` (anything else fails the test).
async fn redeem_concurrently(stores: Vec<Store>, code: SecretHash, g: &Grant) -> (usize, usize) {
    let mut set = JoinSet::new();
    for store in stores {
        set.spawn(async move { redeem(&store, &code, NOW).await });
    }
    let (mut won, mut replayed) = (0, 0);
    while let Some(outcome) = set.join_next().await {
        match outcome.unwrap() {
            CodeRedemption::Redeemed { grant: found, .. } => {
                assert_eq!(&found, g);
                won += 1;
            }
            CodeRedemption::AlreadyRedeemed { grant_id } => {
                assert_eq!(grant_id, g.id);
                replayed += 1;
            }
            other => panic!("a concurrent redeem found the code {other:?}"),
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

async fn grant_audience_round_trips(db: &TestDb) {
    let wide = Grant {
        audience: vec!["https://api.example.com".into(), "billing".into(), "urn:x:é \"q\"".into()],
        ..grant("web", "alice-sub")
    };
    let none = Grant { audience: Vec::new(), ..grant("web", "alice-sub") };
    let (wide_code, stored) = code_of(&wide);
    ensure_user(&db.store, &wide.user_id).await;
    db.store.insert_grant_with_code(&wide, &stored).await.unwrap();
    let none_token = grant_with_refresh_token(&db.store, &none, NOW + IDLE_TTL).await;
    let sql = "SELECT count(*) FROM grants WHERE id = $1 AND audience = '[]'";
    assert_eq!(db.raw_i64(sql, &none.id).await, Some(1), "no audience is stored as []");

    let (_, found) = redeemed(redeem(&db.store, &wide_code.hash(), NOW).await);
    assert_eq!(found.audience, wide.audience);
    assert_eq!(found, wide);
    let (outcome, _) = rotate(&db.store, &none_token, "web", NOW + 1).await;
    assert_eq!(rotated(outcome), none);
}

/// RFC 6749 §4.1.3, §10.5 (issue 17 finding 8): the client is checked in the conditional
/// write itself, so another client holding the code neither spends it nor, presenting it again
/// after its client redeemed it, has it treated as a replay that revokes the grant.
async fn rfc6749_4_1_3_a_code_presented_by_another_client_spends_and_revokes_nothing(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let code = insert_grant(&db.store, &g).await;
    let other = client_id("other");
    let as_other = || db.store.redeem_code(&code, &other, NOW, |_| Ok::<(), ()>(()));
    let outcome = as_other().await.unwrap();
    assert!(matches!(outcome, CodeRedemption::IssuedToAnotherClient), "{outcome:?}");
    redeemed(redeem(&db.store, &code, NOW).await);
    let outcome = as_other().await.unwrap();
    assert!(matches!(outcome, CodeRedemption::IssuedToAnotherClient), "{outcome:?}");
    assert_eq!(revoked_at(db, &g).await, None, "another client cannot revoke the grant");
    assert_already_redeemed(redeem(&db.store, &code, NOW + 1).await, &g);
}

/// RFC 7636 §4.6: the caller's check (redirect URI, PKCE verifier) runs on the code inside the
/// redemption; when it refuses, nothing is spent and the code's client may still redeem it.
async fn rfc7636_4_6_a_refused_check_spends_nothing(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let code = insert_grant(&db.store, &g).await;
    // The check refuses with the code it was shown, which comes back as the reason.
    let refuse = |c: &AuthorizationCode| Err::<(), _>(Box::new(c.clone()));
    let outcome = db.store.redeem_code(&code, &client_id("web"), NOW, refuse).await.unwrap();
    match outcome {
        CodeRedemption::Refused(shown) => assert_eq!(shown.grant_id, g.id),
        other => panic!("expected Refused, got {other:?}"),
    }
    let redeemed_at =
        db.raw_i64("SELECT redeemed_at FROM authorization_codes WHERE grant_id = $1", &g.id).await;
    assert_eq!(redeemed_at, None, "nothing was spent");
    let outcome =
        db.store.redeem_code(&code, &client_id("web"), NOW, |_| Ok::<_, ()>(7)).await.unwrap();
    assert!(matches!(outcome, CodeRedemption::Redeemed { proof: 7, .. }), "{outcome:?}");
}
