//! Dynamically registered clients (RFC 7591, RFC 7592) and initial access tokens.

use tessera_core::client::{ApplicationType, ClientLinks, DynamicRegistration, InitialAccessToken};
use tessera_core::store::InitialAccessTokenStore;

use super::*;

on_both_backends! {
    rfc7592_dynamic_client_round_trips_with_its_token_hash_and_links;
    rfc7592_2_2_update_replaces_metadata_of_dynamic_clients_only;
    stale_dynamic_clients_are_pruned_and_operator_clients_never;
    rfc7591_3_single_use_initial_access_token_is_spent_once;
    rfc7591_3_reusable_initial_access_token_lives_until_it_expires;
}

/// A public native client registered through `/register`, with its registration token.
fn dynamic_client(id: &str, created_at: i64) -> (Client, Secret) {
    let (mut client, _) = ClientRegistration {
        client_id: Some(client_id(id)),
        client_name: format!("{id} (dynamic)"),
        redirect_uris: vec![uri("http://127.0.0.1/cb")],
        scope: ScopeSet::parse("openid").unwrap(),
        public: true,
        application_type: Some(ApplicationType::Native),
        links: ClientLinks {
            client_uri: Some("https://app.example".into()),
            logo_uri: Some("https://app.example/logo.png".into()),
            tos_uri: Some("https://app.example/tos".into()),
            policy_uri: Some("https://app.example/privacy".into()),
        },
        ..Default::default()
    }
    .into_client(created_at)
    .unwrap();
    let token = Secret::generate();
    client.dynamic =
        Some(DynamicRegistration { access_token_hash: token.hash(), last_used_at: None });
    (client, token)
}

async fn rfc7592_dynamic_client_round_trips_with_its_token_hash_and_links(db: &TestDb) {
    let (client, token) = dynamic_client("dyn", NOW);
    db.store.create_client(&client).await.unwrap();
    let found = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert!(found.is_dynamic() && !found.first_party);
    assert_eq!(found.dynamic, client.dynamic);
    assert!(found.dynamic.as_ref().unwrap().access_token_hash.verify(token.expose()));
    assert_eq!(found.links, client.links);
    assert_eq!(found.application_type, Some(ApplicationType::Native));
    // Only the hash is at rest.
    let stored = db
        .raw_bytes("SELECT registration_token_hash FROM clients WHERE client_id = $1", "dyn")
        .await
        .unwrap();
    assert_eq!(stored, token.hash().as_bytes().to_vec());
    let (operator, _) = confidential_client("svc");
    db.store.create_client(&operator).await.unwrap();
    assert!(!db.store.find_client(&operator.client_id).await.unwrap().unwrap().is_dynamic());
}

async fn rfc7592_2_2_update_replaces_metadata_of_dynamic_clients_only(db: &TestDb) {
    let (client, _) = dynamic_client("dyn", NOW);
    db.store.create_client(&client).await.unwrap();
    let mut changed = client.clone();
    changed.client_name = "renamed".into();
    changed.redirect_uris = vec![uri("http://127.0.0.1/other")];
    changed.links.logo_uri = None;
    assert!(db.store.update_dynamic_client(&changed).await.unwrap());
    let found = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(found.client_name, "renamed");
    assert_eq!(found.redirect_uris, changed.redirect_uris);
    assert_eq!(found.links.logo_uri, None);
    assert_eq!(found.dynamic, client.dynamic, "the registration token stays");

    let (mut operator, _) = confidential_client("svc");
    db.store.create_client(&operator).await.unwrap();
    operator.client_name = "hijacked".into();
    assert!(!db.store.update_dynamic_client(&operator).await.unwrap());
    let found = db.store.find_client(&operator.client_id).await.unwrap().unwrap();
    assert_ne!(found.client_name, "hijacked");
}

async fn stale_dynamic_clients_are_pruned_and_operator_clients_never(db: &TestDb) {
    let day = 86_400;
    let (used_long_ago, _) = dynamic_client("used-long-ago", NOW - 100 * day);
    let (used_recently, _) = dynamic_client("used-recently", NOW - 100 * day);
    let (never_used_old, _) = dynamic_client("never-used-old", NOW - 2 * day);
    let (never_used_new, _) = dynamic_client("never-used-new", NOW - 3600);
    for c in [&used_long_ago, &used_recently, &never_used_old, &never_used_new] {
        db.store.create_client(c).await.unwrap();
    }
    db.store.record_client_use(&used_long_ago.client_id, NOW - 40 * day).await.unwrap();
    db.store.record_client_use(&used_recently.client_id, NOW - day).await.unwrap();
    let (operator, _) = confidential_client("svc");
    db.store.create_client(&operator).await.unwrap();
    // An operator client is never marked as used by this, nor pruned.
    db.store.record_client_use(&operator.client_id, NOW).await.unwrap();

    let pruned = db.store.prune_dynamic_clients(NOW - 30 * day, NOW - day).await.unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<String> = db
        .store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id.as_str().to_owned())
        .collect();
    assert_eq!(left, ["never-used-new", "svc", "used-recently"]);
}

fn initial_token(single_use: bool, expires_at: Option<i64>) -> (Secret, InitialAccessToken) {
    let secret = Secret::generate();
    let token = InitialAccessToken { hash: secret.hash(), single_use, expires_at, created_at: NOW };
    (secret, token)
}

async fn rfc7591_3_single_use_initial_access_token_is_spent_once(db: &TestDb) {
    let (secret, token) = initial_token(true, None);
    db.store.create_initial_access_token(&token).await.unwrap();
    let store = db.store.clone();
    let hash = secret.hash();
    let mut racers = JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        racers.spawn(async move { store.spend_initial_access_token(&hash, NOW).await.unwrap() });
    }
    let wins = racers.join_all().await.into_iter().filter(|won| *won).count();
    assert_eq!(wins, 1, "exactly one registration spends a single-use token");
    assert!(!db.store.spend_initial_access_token(&hash, NOW).await.unwrap());
    let unknown = Secret::generate().hash();
    assert!(!db.store.spend_initial_access_token(&unknown, NOW).await.unwrap());
}

async fn rfc7591_3_reusable_initial_access_token_lives_until_it_expires(db: &TestDb) {
    let (secret, token) = initial_token(false, Some(NOW + 60));
    db.store.create_initial_access_token(&token).await.unwrap();
    assert!(db.store.spend_initial_access_token(&secret.hash(), NOW).await.unwrap());
    assert!(db.store.spend_initial_access_token(&secret.hash(), NOW + 59).await.unwrap());
    assert!(!db.store.spend_initial_access_token(&secret.hash(), NOW + 60).await.unwrap());
    let (single, token) = initial_token(true, Some(NOW + 60));
    db.store.create_initial_access_token(&token).await.unwrap();
    assert!(!db.store.spend_initial_access_token(&single.hash(), NOW + 61).await.unwrap());
}
