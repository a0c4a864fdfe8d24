//! Users.

use super::*;

on_both_backends! {
    users_round_trip;
    duplicate_username_is_a_conflict;
    delete_user_reports_whether_it_deleted;
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
    assert!(db.store.delete_user("alice").await.unwrap());
    assert!(!db.store.delete_user("alice").await.unwrap());
    assert!(db.store.find_user_by_username("alice").await.unwrap().is_none());
    assert!(db.store.list_users().await.unwrap().is_empty());
}
