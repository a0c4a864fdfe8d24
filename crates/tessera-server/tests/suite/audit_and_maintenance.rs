//! The audit table (requirements R4.4), scheduled signing-key rotation (R2.5) and pruning of
//! expired rows.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::flow::{self, page_text};
use crate::common::*;
use axum::http::StatusCode;
use jsonwebtoken::jwk::JwkSet;
use tessera_core::client::{AccessTokenFormat, AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::clock::Clock;
use tessera_core::scope::ScopeSet;
use tessera_core::store::{AuditEvent, AuditStore, SigningKeyStore};
use tessera_server::config::RawConfig;

async fn cc_token(app: &TestApp, client: (&str, &str)) -> String {
    let res = app.token(Some(client), "grant_type=client_credentials").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    res.json()["access_token"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// R4.4: audit events in the database

/// Polls the audit table until `done` holds (the write is spawned off the request).
async fn audit_events_until(
    app: &TestApp,
    done: impl Fn(&[AuditEvent]) -> bool,
) -> Vec<AuditEvent> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events = app.store.recent_audit_events(1000).await.unwrap();
        if done(&events) {
            return events;
        }
        assert!(std::time::Instant::now() < deadline, "audit events missing: {events:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_no_secret_in(events: &[AuditEvent], secrets: &[&str]) {
    for event in events {
        let row = serde_json::to_string(event).unwrap();
        for secret in secrets {
            assert!(!secret.is_empty());
            assert!(!row.contains(secret), "a secret value in the audit row {row}");
        }
    }
}

#[tokio::test]
async fn r4_4_issuance_refusal_and_revocation_leave_audit_rows_without_token_values() {
    let app =
        spawn_app_configured(RawConfig { audit_to_database: Some(true), ..Default::default() })
            .await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let token = cc_token(&app, ("svc", &secret)).await;
    let jti = verify_with_jwks_of(&app, &token).await["jti"].as_str().unwrap().to_owned();
    let wrong = "not-the-secret-0123456789";
    let refused = app.token(Some(("svc", wrong)), "grant_type=client_credentials").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let res = app.post_form("/revoke", Some(("svc", &secret)), &format!("token={token}")).await;
    assert_eq!(res.status, StatusCode::OK);

    let kinds = ["token_issued", "token_refused", "token_revoked"];
    let events = audit_events_until(&app, |events| {
        kinds.iter().all(|k| events.iter().any(|e| e.event == *k))
    })
    .await;
    let find = |kind: &str| events.iter().find(|e| e.event == kind).unwrap().clone();
    let now = app.clock.now();
    assert_eq!(
        find("token_issued"),
        AuditEvent {
            at: now,
            event: "token_issued".into(),
            outcome: "issued".into(),
            client_id: Some("svc".into()),
            sub: Some("svc".into()),
            grant_type: Some("client_credentials".into()),
            jti: Some(jti.clone()),
            reason: None,
            source: None,
            actor: None,
        }
    );
    let refusal = find("token_refused");
    assert_eq!(refusal.outcome, "refused");
    assert_eq!(refusal.client_id.as_deref(), Some("svc"));
    assert_eq!(refusal.grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(refusal.reason.as_deref(), Some("invalid_client"));
    assert_eq!(refusal.jti, None);
    let revocation = find("token_revoked");
    assert_eq!(revocation.outcome, "revoked");
    assert_eq!(revocation.client_id.as_deref(), Some("svc"));
    assert_eq!(revocation.jti.as_deref(), Some(jti.as_str()));

    let signature = token.rsplit('.').next().unwrap();
    assert_no_secret_in(&events, &[&token, signature, &secret, wrong]);
}

#[tokio::test]
async fn r4_4_the_code_flow_and_refresh_token_revocation_are_audited_without_secrets() {
    let app =
        spawn_app_configured(RawConfig { audit_to_database: Some(true), ..Default::default() })
            .await;
    let sub = flow::create_user(&app).await;
    let web = app.register(flow::web_client("web")).await.unwrap();
    let code = flow::code_for(&app, "web", "").await;
    let res = flow::exchange(&app, ("web", &web), &code, "").await;
    assert_eq!(res.status, StatusCode::OK);
    let tokens = res.json();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = flow::refresh(&app, ("web", &web), refresh, "").await;
    let refreshed = res.json();
    let refresh2 = refreshed["refresh_token"].as_str().unwrap();
    let res = app.post_form("/revoke", Some(("web", &web)), &format!("token={refresh2}")).await;
    assert_eq!(res.status, StatusCode::OK);
    // Revoking what is not there is recorded as ignored.
    app.post_form("/revoke", Some(("web", &web)), "token=unknown-token-value").await;

    let events = audit_events_until(&app, |events| {
        events.iter().filter(|e| e.event == "token_revoked").count() == 2
    })
    .await;
    let issued: Vec<&AuditEvent> = events.iter().filter(|e| e.event == "token_issued").collect();
    // The rows are written in the background, so events of one second may be stored in any
    // order: compare them sorted.
    let mut grants: Vec<&str> = issued.iter().filter_map(|e| e.grant_type.as_deref()).collect();
    grants.sort();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    assert!(issued.iter().all(|e| e.sub.as_deref() == Some(sub.as_str())));
    assert!(issued.iter().all(|e| e.jti.as_ref().is_some_and(|j| j.len() >= 16)));
    let mut revoked: Vec<&str> =
        events.iter().filter(|e| e.event == "token_revoked").map(|e| e.outcome.as_str()).collect();
    revoked.sort();
    assert_eq!(revoked, ["ignored", "revoked"]);

    let mut secrets =
        vec![code.as_str(), refresh, refresh2, &web, flow::PASSWORD, "unknown-token-value"];
    for t in [&tokens, &refreshed] {
        for name in ["access_token", "id_token"] {
            let jwt = t[name].as_str().unwrap();
            secrets.push(jwt);
            secrets.push(jwt.rsplit('.').next().unwrap());
        }
    }
    assert_no_secret_in(&events, &secrets);
}

// ---------------------------------------------------------------------------------------------
// R2.5: scheduled key rotation

async fn jwks_algs(app: &TestApp) -> BTreeMap<String, usize> {
    let jwks: JwkSet = serde_json::from_slice(&app.get("/jwks.json").await.body).unwrap();
    let mut count = BTreeMap::new();
    for key in &jwks.keys {
        let alg = key.common.key_algorithm.unwrap().to_string();
        *count.entry(alg).or_default() += 1;
    }
    count
}

fn each_alg(n: usize) -> BTreeMap<String, usize> {
    ["ES256", "EdDSA", "RS256"].into_iter().map(|a| (a.to_owned(), n)).collect()
}

async fn kid_of(app: &TestApp, secret: &str) -> String {
    let token = cc_token(app, ("svc", secret)).await;
    jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn r2_5_keys_rotate_on_schedule_once_per_period_and_old_tokens_keep_verifying() {
    let app =
        spawn_app_configured(RawConfig { key_rotation_days: Some(1), ..Default::default() }).await;
    let secret = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
    let before = cc_token(&app, ("svc", &secret)).await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();

    // At t0 the keys are new: nothing happens.
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(1));

    // A day later every algorithm gets a successor, once, however often the schedule runs.
    app.clock.advance(86_400);
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(2));
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(2));
    assert_eq!(app.store.published_keys(app.clock.now()).await.unwrap().len(), 6);

    // Published ahead: the old key still signs, and the old token verifies against the JWKS.
    assert_eq!(kid_of(&app, &secret).await, old_kid);
    assert_eq!(verify_with_jwks_of(&app, &before).await["client_id"], "svc");
    // Once active, the new key signs; the old token still verifies.
    app.clock.advance(app.state.settings().key_publish_ahead);
    app.state.reload_keys().await.unwrap();
    let new_kid = kid_of(&app, &secret).await;
    assert_ne!(new_kid, old_kid);
    assert_eq!(verify_with_jwks_of(&app, &before).await["client_id"], "svc");
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(2), "the new key is not a day old yet");

    // The next period rotates again; the retired keys have left the JWKS by then.
    app.clock.advance(86_400);
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(2));
    let jwks: JwkSet = serde_json::from_slice(&app.get("/jwks.json").await.body).unwrap();
    assert!(jwks.find(&new_kid).is_some() && jwks.find(&old_kid).is_none());
}

#[tokio::test]
async fn r2_5_two_instances_on_one_database_rotate_once() {
    let (db_path, url) = temp_db();
    let kek = tessera_core::keys::KeyEncryptionKey::generate_encoded();
    let raw = || RawConfig { key_rotation_days: Some(1), ..Default::default() };
    let alg = tessera_core::keys::SigningAlg::ES256;
    let store = tessera_store::Store::connect(&url).await.unwrap();
    let mut a = TestApp::on_store(store, settings_from(alg, &url, &kek, raw())).await;
    a.db_path = db_path;
    let b = TestApp::on_store(
        tessera_store::Store::connect(&url).await.unwrap(),
        settings_from(alg, &url, &kek, raw()),
    )
    .await;
    a.clock.advance(86_400);
    b.clock.advance(86_400);
    a.state.rotate_keys_on_schedule().await.unwrap();
    // B has not reloaded since A rotated; its schedule must still see A's successors.
    b.state.rotate_keys_on_schedule().await.unwrap();
    assert_eq!(a.store.published_keys(a.clock.now()).await.unwrap().len(), 6);
    b.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&b).await, each_alg(2));
}

#[tokio::test]
async fn r2_5_without_key_rotation_days_nothing_rotates() {
    let app = spawn_app().await;
    app.clock.advance(400 * 86_400);
    app.state.rotate_keys_on_schedule().await.unwrap();
    app.state.reload_keys().await.unwrap();
    assert_eq!(jwks_algs(&app).await, each_alg(1));
}

// ---------------------------------------------------------------------------------------------
// Pruning

#[tokio::test]
async fn pruning_removes_expired_rows_and_keeps_what_is_still_valid() {
    let app = spawn_app().await;
    flow::create_user(&app).await;
    let web = app.register(flow::web_client("web")).await.unwrap();
    let web = ("web", web.as_str());
    let opaque = app
        .register(ClientRegistration {
            client_id: Some(ClientId::parse("svc-opaque").unwrap()),
            client_name: "svc-opaque".into(),
            scope: ScopeSet::parse("a:r").unwrap(),
            default_scope: ScopeSet::parse("a:r").unwrap(),
            access_token_format: AccessTokenFormat::Opaque,
            ..Default::default()
        })
        .await
        .unwrap();
    let svc = app.client("svc", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;

    // A family refreshed once (r1 spent, r2 current), a revoked family, an unused code, an
    // opaque token, a revoked JWT, and the sessions of three sign-ins.
    let first = flow::tokens_for(&app, web).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let res = flow::refresh(&app, web, &r1, "").await;
    let r2 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let revoked = flow::tokens_for(&app, web).await;
    let revoked_refresh = revoked["refresh_token"].as_str().unwrap();
    app.post_form("/revoke", Some(web), &format!("token={revoked_refresh}")).await;
    let unused_code = flow::code_for(&app, "web", "").await;
    cc_token(&app, ("svc-opaque", &opaque)).await;
    let jwt = cc_token(&app, ("svc", &svc)).await;
    app.post_form("/revoke", Some(("svc", &svc)), &format!("token={jwt}")).await;

    // Past the lifetimes of codes, access and ID tokens and sessions; refresh tokens live on.
    let settings = app.state.settings();
    let past = settings.session_ttl.max(settings.policy.access_token_ttl) + 3600;
    assert!(past < settings.policy.refresh_token_idle_ttl);
    app.clock.advance(past);
    let pruned = app.state.prune_expired().await.unwrap();
    // 3 codes, 3 sessions, 3 access-token records of grants, 1 opaque token, 1 denylist entry.
    assert_eq!(pruned, 11);
    assert_eq!(app.state.prune_expired().await.unwrap(), 0, "nothing left to prune");

    // The current refresh token works, and its new access token too.
    let res = flow::refresh(&app, web, &r2, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", page_text(&res));
    let r3 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.userinfo(res.json()["access_token"].as_str().unwrap()).await.status,
        StatusCode::OK
    );
    // The revoked family stays revoked, the expired code stays unusable.
    let res = flow::refresh(&app, web, revoked_refresh, "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
    let res = flow::exchange(&app, web, &unused_code, "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
    // Reuse detection outlives pruning: the spent r1 revokes the family.
    let res = flow::refresh(&app, web, &r1, "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
    let res = flow::refresh(&app, web, &r3, "").await;
    assert_eq!(res.json()["error"], "invalid_grant");
}
