//! `private_key_jwt` assertion `jti`s: accepted once per client.

use super::*;

on_both_backends! {
    assertion_jti_is_accepted_once_per_client;
    concurrent_assertions_with_one_jti_have_one_winner;
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
