//! The registry of resource servers and the admin flag of clients (issue 15).

use tessera_core::resource_registry::RegisteredResource;
use tessera_core::store::{AdminStore, ResourceStore};

use super::*;

on_both_backends! {
    issue15_resources_round_trip_and_duplicates_conflict;
    issue15_admin_flag_is_set_cleared_and_removed_with_its_client;
    r6_2_operator_clients_are_updated_and_secrets_and_passwords_replaced;
}

async fn issue15_resources_round_trip_and_duplicates_conflict(db: &TestDb) {
    let mcp = RegisteredResource::new(
        "HTTPS://MCP.example/mcp/",
        ScopeSet::parse("mcp:tools mcp:read").unwrap(),
        true,
        7,
    )
    .unwrap();
    let billing = RegisteredResource::new(
        "https://billing.example",
        ScopeSet::parse("billing:read").unwrap(),
        false,
        8,
    )
    .unwrap();
    db.store.create_resource(&mcp).await.unwrap();
    db.store.create_resource(&billing).await.unwrap();
    assert_eq!(db.store.list_resources().await.unwrap(), [billing.clone(), mcp.clone()]);
    // The same resource written another way is the same resource.
    let again = RegisteredResource::new(
        "https://mcp.example/mcp",
        ScopeSet::parse("x:y").unwrap(),
        false,
        9,
    )
    .unwrap();
    assert!(matches!(db.store.create_resource(&again).await, Err(StoreError::Conflict(_))));
    assert!(db.store.delete_resource("https://mcp.example/mcp").await.unwrap());
    assert!(!db.store.delete_resource("https://mcp.example/mcp").await.unwrap());
    assert_eq!(db.store.list_resources().await.unwrap(), [billing]);
}

async fn issue15_admin_flag_is_set_cleared_and_removed_with_its_client(db: &TestDb) {
    let (client, _) = confidential_client("ops");
    db.store.create_client(&client).await.unwrap();
    assert!(!db.store.is_admin_client(&client.client_id).await.unwrap());
    db.store.set_admin_client(&client.client_id, true).await.unwrap();
    db.store.set_admin_client(&client.client_id, true).await.unwrap();
    assert!(db.store.is_admin_client(&client.client_id).await.unwrap());
    db.store.set_admin_client(&client.client_id, false).await.unwrap();
    assert!(!db.store.is_admin_client(&client.client_id).await.unwrap());
    db.store.set_admin_client(&client.client_id, true).await.unwrap();
    db.store.delete_client(&client.client_id).await.unwrap();
    assert!(!db.store.is_admin_client(&client.client_id).await.unwrap());
}

async fn r6_2_operator_clients_are_updated_and_secrets_and_passwords_replaced(db: &TestDb) {
    let (mut client, secret) = confidential_client("svc");
    db.store.create_client(&client).await.unwrap();
    client.client_name = "Renamed".into();
    client.audience = vec!["https://api.example/orders".into()];
    client.scope = ScopeSet::parse("orders:read orders:write").unwrap();
    assert!(db.store.update_client(&client).await.unwrap());
    let stored = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(stored.client_name, "Renamed");
    assert_eq!(stored.audience, client.audience);
    assert_eq!(stored.scope, client.scope);
    assert!(stored.secret_hash.unwrap().verify(secret.expose()), "the secret is kept");
    let fresh = Secret::generate();
    assert!(db.store.replace_client_secret(&client.client_id, &fresh.hash()).await.unwrap());
    let stored = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert!(stored.secret_hash.as_ref().unwrap().verify(fresh.expose()));
    assert!(!stored.secret_hash.unwrap().verify(secret.expose()), "the old secret is gone");
    // A public client has no secret to replace; an unknown client is not updated.
    let public = public_client("spa");
    db.store.create_client(&public).await.unwrap();
    assert!(!db.store.replace_client_secret(&public.client_id, &fresh.hash()).await.unwrap());
    let (ghost, _) = confidential_client("ghost");
    assert!(!db.store.update_client(&ghost).await.unwrap());
    // Passwords.
    let user =
        User::new("carol", None, None, &Secret::from_string("first password".into()), 0).unwrap();
    db.store.create_user(&user).await.unwrap();
    let hash =
        tessera_core::user::hash_password(&Secret::from_string("second password".into())).unwrap();
    assert!(db.store.set_user_password("carol", &hash).await.unwrap());
    let stored = db.store.find_user_by_username("carol").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, hash);
    assert!(!db.store.set_user_password("nobody", &hash).await.unwrap());
}
