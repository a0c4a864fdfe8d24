//! The registry of resource servers and the admin flag of clients (issue 15).

use tessera_core::resource_registry::RegisteredResource;
use tessera_core::store::{AdminStore, ResourceStore};

use super::*;

on_both_backends! {
    issue15_resources_round_trip_and_duplicates_conflict;
    issue15_admin_flag_is_set_cleared_and_removed_with_its_client;
    r6_2_operator_clients_are_updated_and_secrets_and_passwords_replaced;
    r6_2_a_password_reset_ends_every_session_of_that_user_only;
    r6_2_grants_are_listed_by_user_and_client_newest_first_with_their_revocation;
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
    // Every member an operator sets is written, the later additions too (OIDC Registration §2,
    // RFC 8705 §2.1.2 and §3).
    client.id_token_signed_response_alg = tessera_core::keys::SigningAlg::EdDSA;
    client.tls_client_auth_name =
        Some(tessera_core::mtls::CertificateName::SanDns("svc.example".into()));
    client.tls_client_certificate_bound_access_tokens = true;
    assert!(db.store.update_client(&client).await.unwrap());
    let stored = db.store.find_client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(stored.id_token_signed_response_alg, client.id_token_signed_response_alg);
    assert_eq!(stored.tls_client_auth_name, client.tls_client_auth_name);
    assert!(stored.tls_client_certificate_bound_access_tokens);
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

async fn r6_2_a_password_reset_ends_every_session_of_that_user_only(db: &TestDb) {
    // R6.2: a reset after a compromise signs the intruder out.
    let (alice_cookie, alice) = session("alice-sub", NOW + 3600);
    let (alice_cookie2, alice2) = session("alice-sub", NOW + 3600);
    let (bob_cookie, bob) = session("bob-sub", NOW + 3600);
    for s in [&alice, &alice2, &bob] {
        ensure_user(&db.store, &s.user_id).await;
        db.store.create_session(s).await.unwrap();
    }
    let hash =
        tessera_core::user::hash_password(&Secret::from_string("a new password".into())).unwrap();
    assert!(db.store.set_user_password("alice-sub", &hash).await.unwrap());
    assert_eq!(db.store.find_session(&alice_cookie.hash(), NOW).await.unwrap(), None);
    assert_eq!(db.store.find_session(&alice_cookie2.hash(), NOW).await.unwrap(), None);
    assert_eq!(db.store.find_session(&bob_cookie.hash(), NOW).await.unwrap(), Some(bob));
    let stored = db.store.find_user_by_username("alice-sub").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, hash);
    // An unknown user: nothing changes, and bob's session stays.
    assert!(!db.store.set_user_password("nobody", &hash).await.unwrap());
    assert!(db.store.find_session(&bob_cookie.hash(), NOW).await.unwrap().is_some());
}

async fn r6_2_grants_are_listed_by_user_and_client_newest_first_with_their_revocation(db: &TestDb) {
    let at = |client: &str, user: &str, created_at| Grant { created_at, ..grant(client, user) };
    let alice_a = at("a-app", "alice-sub", NOW);
    let alice_b = at("b-app", "alice-sub", NOW + 10);
    let bob_a = at("a-app", "bob-sub", NOW + 20);
    for g in [&alice_a, &alice_b, &bob_a] {
        insert_grant(&db.store, g).await;
    }
    db.store.revoke_grant(&alice_b.id, NOW + 30).await.unwrap();
    let ids = |records: Vec<tessera_core::store::GrantRecord>| {
        records.into_iter().map(|r| r.grant.id).collect::<Vec<_>>()
    };
    let all = db.store.list_grants(None, None, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].grant, bob_a, "newest first, every member read back");
    assert_eq!(all[0].revoked_at, None);
    assert_eq!(all[1].revoked_at, Some(NOW + 30), "revoked ones are listed with their time");
    assert_eq!(ids(all), [bob_a.id.clone(), alice_b.id.clone(), alice_a.id.clone()]);
    let alice = db.store.list_grants(Some("alice-sub"), None, 100).await.unwrap();
    assert_eq!(ids(alice), [alice_b.id.clone(), alice_a.id.clone()]);
    let a_app = db.store.list_grants(None, Some(&client_id("a-app")), 100).await.unwrap();
    assert_eq!(ids(a_app), [bob_a.id.clone(), alice_a.id.clone()]);
    let a_app = client_id("a-app");
    let both = db.store.list_grants(Some("alice-sub"), Some(&a_app), 100).await.unwrap();
    assert_eq!(ids(both), std::slice::from_ref(&alice_a.id));
    assert!(db.store.list_grants(Some("carol-sub"), None, 100).await.unwrap().is_empty());
    assert_eq!(
        ids(db.store.list_grants(None, None, 1).await.unwrap()),
        std::slice::from_ref(&bob_a.id)
    );
    // One grant by id.
    let found = db.store.find_grant(&alice_b.id).await.unwrap().unwrap();
    assert_eq!(found.grant, alice_b);
    assert_eq!(found.revoked_at, Some(NOW + 30));
    assert_eq!(db.store.find_grant(&alice_a.id).await.unwrap().unwrap().revoked_at, None);
    assert_eq!(db.store.find_grant("no-such-grant").await.unwrap(), None);
}
