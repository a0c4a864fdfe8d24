//! The registry of resource servers and the admin flag of clients (issue 15).

use tessera_core::resource_registry::RegisteredResource;
use tessera_core::store::{AdminStore, ResourceStore};

use super::*;

on_both_backends! {
    issue15_resources_round_trip_and_duplicates_conflict;
    issue15_admin_flag_is_set_cleared_and_removed_with_its_client;
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
