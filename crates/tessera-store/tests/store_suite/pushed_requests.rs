//! Pushed authorization requests (RFC 9126): stored by hash, taken once, by their own client,
//! before they expire.

use tessera_core::store::{PushedRequest, PushedRequestStore};

use super::*;

on_both_backends! {
    rfc9126_4_pushed_request_is_taken_once_by_its_client_before_it_expires;
    rfc9126_4_concurrent_uses_of_a_request_uri_take_it_once;
}

fn pushed(client: &str, expires_at: i64) -> (String, PushedRequest) {
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_id::<32>());
    let record = PushedRequest {
        request_uri_hash: SecretHash::of(request_uri.as_bytes()),
        client_id: client_id(client),
        query: format!("client_id={client}&response_type=code&scope=openid"),
        expires_at,
    };
    (request_uri, record)
}

async fn rfc9126_4_pushed_request_is_taken_once_by_its_client_before_it_expires(db: &TestDb) {
    let (uri, record) = pushed("web", NOW + 60);
    db.store.insert_pushed_request(&record).await.unwrap();
    let hash = SecretHash::of(uri.as_bytes());
    // Another client's use takes nothing.
    assert_eq!(db.store.take_pushed_request(&hash, &client_id("spa"), NOW).await.unwrap(), None);
    let taken = db.store.take_pushed_request(&hash, &client_id("web"), NOW).await.unwrap();
    assert_eq!(taken.as_deref(), Some(record.query.as_str()));
    // Used once: a replay finds nothing.
    assert_eq!(db.store.take_pushed_request(&hash, &client_id("web"), NOW).await.unwrap(), None);

    let (late_uri, late) = pushed("web", NOW + 60);
    db.store.insert_pushed_request(&late).await.unwrap();
    let late_hash = SecretHash::of(late_uri.as_bytes());
    assert_eq!(
        db.store.take_pushed_request(&late_hash, &client_id("web"), NOW + 60).await.unwrap(),
        None,
        "expired at exactly expires_at"
    );
    // Only the hash is stored.
    let sql = "SELECT count(*) FROM pushed_authorization_requests WHERE params LIKE $1";
    assert_eq!(db.raw_i64(sql, "%response_type=code%").await, Some(1));
    assert_eq!(db.raw_count("pushed_authorization_requests").await, 1);
    let raw = db
        .raw_bytes(
            "SELECT request_uri_hash FROM pushed_authorization_requests WHERE client_id = $1",
            "web",
        )
        .await
        .unwrap();
    assert_eq!(raw.as_slice(), late_hash.as_bytes());
    assert_eq!(db.store.prune_expired(NOW + 60).await.unwrap(), 1, "pruned once expired");
    assert_eq!(db.raw_count("pushed_authorization_requests").await, 0);
}

async fn rfc9126_4_concurrent_uses_of_a_request_uri_take_it_once(db: &TestDb) {
    let (uri, record) = pushed("web", NOW + 60);
    db.store.insert_pushed_request(&record).await.unwrap();
    let mut uses = JoinSet::new();
    for _ in 0..8 {
        let store = db.store.clone();
        let hash = SecretHash::of(uri.as_bytes());
        uses.spawn(async move {
            store.take_pushed_request(&hash, &ClientId::parse("web").unwrap(), NOW).await.unwrap()
        });
    }
    let taken = uses.join_all().await.into_iter().flatten().count();
    assert_eq!(taken, 1);
}
