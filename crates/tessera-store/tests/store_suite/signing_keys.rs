//! Signing keys: storage, rotation, publication, pruning.

use super::*;

on_both_backends! {
    signing_keys_round_trip;
    rotation_retires_only_current_keys_of_the_same_alg;
    published_keys_hides_expired_keys;
    prune_deletes_only_expired_keys;
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
