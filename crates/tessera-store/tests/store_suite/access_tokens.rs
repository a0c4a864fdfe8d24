//! Access tokens: opaque tokens stored as hashes, the `jti` denylist, revocation by grant.

use super::*;

on_both_backends! {
    opaque_token_round_trip_stores_only_the_hash;
    denylisted_jti_is_revoked;
    live_opaque_lookup_skips_expired_and_revoked_tokens;
    jti_of_revoked_grant_is_revoked;
    grant_access_tokens_lists_the_unexpired_jtis_of_one_grant;
    rfc8693_exchanged_token_is_revoked_with_its_subjects_grant;
    revoked_user_access_tokens_lists_the_live_jtis_of_a_users_revoked_grants;
    rfc9449_5_a_grants_refresh_tokens_keep_their_first_dpop_key;
}

/// A new opaque access token of `client` for alice, issued at `NOW`, and what the store keeps.
pub(crate) fn opaque_token(client: &str, expires_at: i64) -> (Secret, OpaqueAccessToken) {
    let token = Secret::generate();
    let stored = OpaqueAccessToken {
        token_hash: token.hash(),
        jti: random_id::<16>(),
        client_id: client_id(client),
        sub: "alice-sub".into(),
        scope: ScopeSet::parse("orders:read orders:write").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        issued_at: NOW,
        expires_at,
        act: None,
    };
    (token, stored)
}

async fn opaque_token_round_trip_stores_only_the_hash(db: &TestDb) {
    let (token, stored) = opaque_token("svc", NOW + 300);
    let (bare_token, bare) = opaque_token("svc", NOW - 1);
    let bare = OpaqueAccessToken { scope: ScopeSet::default(), audience: Vec::new(), ..bare };
    // RFC 8693 §4.1: an exchanged token keeps its delegation chain, nested actors included.
    let act = tessera_core::token::Actor {
        sub: "billing".into(),
        iss: None,
        act: Some(Box::new(tessera_core::token::Actor {
            sub: "orders".into(),
            iss: None,
            act: None,
        })),
    };
    let stored = OpaqueAccessToken { act: Some(act), ..stored };
    db.store.insert_opaque_access_token(&stored).await.unwrap();
    db.store.insert_opaque_access_token(&bare).await.unwrap();

    let found = db.store.find_opaque_access_token(&token.hash()).await.unwrap();
    assert_eq!(found, Some(stored.clone()));
    // Found whatever its state: this one has expired.
    let found = db.store.find_opaque_access_token(&bare_token.hash()).await.unwrap();
    assert_eq!(found, Some(bare.clone()));
    assert_eq!(db.store.find_opaque_access_token(&Secret::generate().hash()).await.unwrap(), None);

    // The `jti` is unique; the clash is named by it, never by a token value.
    let (_, clash) = opaque_token("svc", NOW + 300);
    let clash = OpaqueAccessToken { jti: stored.jti.clone(), ..clash };
    match db.store.insert_opaque_access_token(&clash).await {
        Err(StoreError::Conflict(what)) => {
            assert_eq!(what, format!("access token `{}`", clash.jti))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    let raw = db
        .raw_bytes("SELECT token_hash FROM opaque_access_tokens WHERE jti = $1", &stored.jti)
        .await
        .expect("a stored hash");
    assert_eq!(raw.as_slice(), token.hash().as_bytes());
    assert_ne!(raw.as_slice(), token.expose().as_bytes());
    if let Some(path) = db.sqlite_path() {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        assert!(bytes.len() > 4096, "the database files were read");
        for secret in [&token, &bare_token] {
            let plaintext = secret.expose().as_bytes();
            assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext));
        }
    }
}

async fn denylisted_jti_is_revoked(db: &TestDb) {
    assert!(!db.store.is_access_token_revoked("jwt-1").await.unwrap());
    db.store.revoke_access_token("jwt-1", NOW + 300).await.unwrap();
    assert!(db.store.is_access_token_revoked("jwt-1").await.unwrap());
    assert!(!db.store.is_access_token_revoked("jwt-2").await.unwrap());

    // Idempotent: revoking again is no error and keeps the first entry.
    db.store.revoke_access_token("jwt-1", NOW + 900).await.unwrap();
    let sql = "SELECT expires_at FROM revoked_access_tokens WHERE jti = $1";
    assert_eq!(db.raw_i64(sql, "jwt-1").await, Some(NOW + 300));
    assert_eq!(db.raw_count("revoked_access_tokens").await, 1);

    // A token of a live grant is revoked on its own, without its grant.
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    db.store.record_access_token(&g.id, "jwt-3", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "jwt-4", NOW + 300).await.unwrap();
    db.store.revoke_access_token("jwt-3", NOW + 300).await.unwrap();
    assert!(db.store.is_access_token_revoked("jwt-3").await.unwrap());
    assert!(!db.store.is_access_token_revoked("jwt-4").await.unwrap(), "its sibling is not");
    assert_eq!(revoked_at(db, &g).await, None);
}

/// RFC 7662 §2.2: introspection reports an expired or revoked token inactive; the live lookup
/// answers that in the same query as the token itself.
async fn live_opaque_lookup_skips_expired_and_revoked_tokens(db: &TestDb) {
    let (live_token, live) = opaque_token("svc", NOW + 300);
    let (expired_token, expired) = opaque_token("svc", NOW + 10);
    let (denied_token, denied) = opaque_token("svc", NOW + 300);
    let (of_grant_token, of_grant) = opaque_token("svc", NOW + 300);
    for t in [&live, &expired, &denied, &of_grant] {
        db.store.insert_opaque_access_token(t).await.unwrap();
    }
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    db.store.record_access_token(&g.id, &of_grant.jti, NOW + 300).await.unwrap();
    let find = |hash: SecretHash, now: i64| async move {
        db.store.find_live_opaque_access_token(&hash, now).await.unwrap()
    };
    assert_eq!(find(live_token.hash(), NOW).await, Some(live.clone()));
    assert_eq!(find(of_grant_token.hash(), NOW).await, Some(of_grant.clone()));
    assert_eq!(find(expired_token.hash(), NOW + 9).await, Some(expired.clone()));
    // Expired at exactly `expires_at`.
    assert_eq!(find(expired_token.hash(), NOW + 10).await, None);
    db.store.revoke_access_token(&denied.jti, denied.expires_at).await.unwrap();
    assert_eq!(find(denied_token.hash(), NOW).await, None);
    db.store.revoke_grant(&g.id, NOW + 1).await.unwrap();
    assert_eq!(find(of_grant_token.hash(), NOW + 1).await, None);
    assert_eq!(find(live_token.hash(), NOW + 1).await, Some(live));
    assert_eq!(find(Secret::generate().hash(), NOW).await, None);
}

async fn jti_of_revoked_grant_is_revoked(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let live = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    insert_grant(&db.store, &live).await;
    db.store.record_access_token(&g.id, "of-revoked", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "of-revoked-and-denylisted", NOW + 300).await.unwrap();
    db.store.record_access_token(&live.id, "of-live", NOW + 300).await.unwrap();
    db.store.revoke_access_token("of-revoked-and-denylisted", NOW + 300).await.unwrap();
    assert!(!db.store.is_access_token_revoked("of-revoked").await.unwrap());

    db.store.revoke_grant(&g.id, NOW + 10).await.unwrap();
    assert!(db.store.is_access_token_revoked("of-revoked").await.unwrap());
    assert!(db.store.is_access_token_revoked("of-revoked-and-denylisted").await.unwrap());
    assert!(!db.store.is_access_token_revoked("of-live").await.unwrap());
    assert!(!db.store.is_access_token_revoked("unknown").await.unwrap());
}

/// What a grant revocation publishes to the revocation list (R7.4): the grant's own access
/// tokens that have not expired, with their expiry.
async fn grant_access_tokens_lists_the_unexpired_jtis_of_one_grant(db: &TestDb) {
    let g = grant("web", "alice-sub");
    let other = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    insert_grant(&db.store, &other).await;
    db.store.record_access_token(&g.id, "live", NOW + 300).await.unwrap();
    db.store.record_access_token(&g.id, "expired", NOW - 1).await.unwrap();
    db.store.record_access_token(&other.id, "of-other", NOW + 300).await.unwrap();
    let listed = db.store.grant_access_tokens(&g.id, NOW).await.unwrap();
    assert_eq!(listed, [("live".to_owned(), NOW + 300)]);
    assert!(db.store.grant_access_tokens("unknown", NOW).await.unwrap().is_empty());
}

/// RFC 8693: a token obtained by exchanging a user grant's token is recorded under that grant,
/// in one statement, so that it ends with the grant (and with its user).
async fn rfc8693_exchanged_token_is_revoked_with_its_subjects_grant(db: &TestDb) {
    let g = grant("web", "alice-sub");
    insert_grant(&db.store, &g).await;
    db.store.record_access_token(&g.id, "subject", NOW + 300).await.unwrap();
    assert!(db.store.record_derived_access_token("subject", "exchanged", NOW + 200).await.unwrap());
    assert!(
        !db.store.record_derived_access_token("of-no-grant", "other", NOW + 200).await.unwrap(),
        "a subject recorded under no grant records nothing"
    );
    assert!(!db.store.is_access_token_revoked("exchanged").await.unwrap());
    db.store.revoke_grant(&g.id, NOW + 1).await.unwrap();
    assert!(db.store.is_access_token_revoked("exchanged").await.unwrap());
    assert!(!db.store.is_access_token_revoked("other").await.unwrap());
}

/// What deleting or disabling a user (all their grants) or withdrawing a consent (their grants
/// to one client) publishes to the revocation list (R7.4): the unexpired access tokens of the
/// user's revoked grants only.
async fn revoked_user_access_tokens_lists_the_live_jtis_of_a_users_revoked_grants(db: &TestDb) {
    let (web, api, live) =
        (grant("web", "alice-sub"), grant("api", "alice-sub"), grant("web", "alice-sub"));
    let bobs = grant("web", "bob-sub");
    for g in [&web, &api, &live, &bobs] {
        insert_grant(&db.store, g).await;
    }
    db.store.record_access_token(&web.id, "web-live", NOW + 300).await.unwrap();
    db.store.record_access_token(&web.id, "web-expired", NOW - 1).await.unwrap();
    db.store.record_access_token(&api.id, "api-live", NOW + 200).await.unwrap();
    db.store.record_access_token(&live.id, "not-revoked", NOW + 300).await.unwrap();
    db.store.record_access_token(&bobs.id, "bobs", NOW + 300).await.unwrap();
    for g in [&web, &api, &bobs] {
        db.store.revoke_grant(&g.id, NOW).await.unwrap();
    }
    let mut all = db.store.revoked_user_access_tokens("alice-sub", None, NOW).await.unwrap();
    all.sort();
    assert_eq!(all, [("api-live".to_owned(), NOW + 200), ("web-live".to_owned(), NOW + 300)]);
    let of_web =
        db.store.revoked_user_access_tokens("alice-sub", Some(&client_id("web")), NOW).await;
    assert_eq!(of_web.unwrap(), [("web-live".to_owned(), NOW + 300)]);
}

/// RFC 9449 §5: a grant's refresh tokens are bound to the first DPoP key proved; a later
/// binding changes nothing.
async fn rfc9449_5_a_grants_refresh_tokens_keep_their_first_dpop_key(db: &TestDb) {
    let g = grant("spa", "alice-sub");
    insert_grant(&db.store, &g).await;
    let token = Secret::generate();
    db.store.insert_refresh_token(&token.hash(), &g.id, NOW, NOW + 600, None).await.unwrap();
    let bound = |db: &TestDb| {
        let hash = token.hash();
        let store = db.store.clone();
        async move { store.find_refresh_token(&hash).await.unwrap().unwrap().grant.dpop_jkt }
    };
    assert_eq!(bound(db).await, None);
    db.store.bind_refresh_tokens_to_dpop_key(&g.id, "first-jkt").await.unwrap();
    db.store.bind_refresh_tokens_to_dpop_key(&g.id, "second-jkt").await.unwrap();
    assert_eq!(bound(db).await.as_deref(), Some("first-jkt"));
}
