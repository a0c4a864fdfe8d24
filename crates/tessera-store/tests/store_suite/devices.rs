//! Device authorizations (RFC 8628).

use super::*;

on_both_backends! {
    device_authorization_round_trip_and_user_code_lookup;
    expired_device_authorization_is_expired_and_not_found_by_user_code;
    rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds;
    decision_is_taken_once;
    denied_poll_is_denied;
    approved_device_code_is_redeemed_once;
    another_clients_device_code_is_unknown;
    concurrent_polls_of_an_approved_code_have_one_winner;
    unreadable_device_authorization_is_a_backend_error_and_changes_nothing;
    prune_removes_expired_device_authorizations;
}

/// The device authorization cases' polling interval, unless a test says otherwise.
const INTERVAL: i64 = 5;

/// A random user code: 8 consonants, as RFC 8628 §6.1 suggests.
fn new_user_code() -> Secret {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let code = random_bytes::<8>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Secret::from_string(code)
}

/// A pending device authorization of `client`, created at `NOW` and valid for 600 s: its
/// device code, its user code and what the store keeps of them.
fn device_authorization(client: &str) -> (Secret, Secret, DeviceAuthorization) {
    let (device_code, user_code) = (Secret::generate(), new_user_code());
    let stored = DeviceAuthorization {
        device_code_hash: device_code.hash(),
        user_code_hash: user_code.hash(),
        client_id: client_id(client),
        scope: ScopeSet::parse("openid orders:read").unwrap(),
        audience: vec!["https://api.example.com".into(), "billing".into()],
        state: DeviceState::Pending,
        interval: INTERVAL,
        last_polled_at: None,
        created_at: NOW,
        expires_at: NOW + 600,
    };
    (device_code, user_code, stored)
}

/// Stores a pending device authorization of `client` (see [`device_authorization`]).
pub(crate) async fn insert_device(
    store: &Store,
    client: &str,
) -> (Secret, Secret, DeviceAuthorization) {
    let (device_code, user_code, stored) = device_authorization(client);
    store.insert_device_authorization(&stored).await.unwrap();
    (device_code, user_code, stored)
}

/// The approval `decide_device_authorization` is given in these cases.
fn approval() -> DeviceApproval {
    DeviceApproval { user_id: "alice-sub".into(), auth_time: NOW - 30, sid: "sid-1".into() }
}

/// Approves the authorization with this user code at `now`, as alice (see [`approval`]).
async fn approve(store: &Store, user_code: &Secret, now: i64) -> bool {
    let approval = approval();
    ensure_user(store, &approval.user_id).await;
    store.decide_device_authorization(&user_code.hash(), Some(&approval), now).await.unwrap()
}

/// The grant a redemption stores: as the device grant builds it, with a random id.
fn device_grant(authorization: &DeviceAuthorization, approval: &DeviceApproval) -> Grant {
    Grant {
        id: random_id::<16>(),
        client_id: authorization.client_id.clone(),
        user_id: approval.user_id.clone(),
        scope: authorization.scope.clone(),
        auth_time: approval.auth_time,
        sid: Some(approval.sid.clone()),
        audience: authorization.audience.clone(),
        created_at: NOW,
        expires_at: NOW + 86_400,
        dpop_jkt: None,
    }
}

/// One poll of `device_code` by `client` at `now`.
pub(super) async fn poll(
    store: &Store,
    device_code: &Secret,
    client: &str,
    now: i64,
) -> DevicePoll {
    let hash = device_code.hash();
    store.poll_device_authorization(&hash, &client_id(client), now, device_grant).await.unwrap()
}

macro_rules! assert_poll {
    ($outcome:expr, $expected:pat) => {{
        let outcome = $outcome;
        let expected = stringify!($expected);
        assert!(matches!(outcome, $expected), "expected {expected}, got {outcome:?}");
    }};
}

/// The authorization an `Approved` poll redeemed, after checking that the grant it returned is
/// the one the authorization now names.
pub(super) fn approved(outcome: DevicePoll) -> DeviceAuthorization {
    match outcome {
        DevicePoll::Approved { authorization, grant } => {
            let DeviceState::Redeemed { approval, grant_id } = &authorization.state else {
                panic!("an approved poll left {:?}", authorization.state);
            };
            assert_eq!((grant_id, &grant.user_id), (&grant.id, &approval.user_id));
            *authorization
        }
        other => panic!("expected Approved, got {other:?}"),
    }
}

/// What an approved `stored`, redeemed by a poll at `now` into the grant `found` names, is.
fn redeemed_device(
    stored: &DeviceAuthorization,
    now: i64,
    found: &DeviceAuthorization,
) -> DeviceAuthorization {
    let grant_id = match &found.state {
        DeviceState::Redeemed { grant_id, .. } => grant_id.clone(),
        other => panic!("expected a redeemed authorization, got {other:?}"),
    };
    DeviceAuthorization {
        state: DeviceState::Redeemed { approval: approval(), grant_id },
        last_polled_at: Some(now),
        ..stored.clone()
    }
}

/// How many of `client`'s device authorizations have `status`, read raw.
async fn devices_with_status(db: &TestDb, client: &str, status: &str) -> i64 {
    let sql = "SELECT count(*) FROM device_authorizations WHERE client_id || ' ' || status = $1";
    db.raw_i64(sql, &format!("{client} {status}")).await.unwrap()
}

/// `client`'s (one) device authorization's `last_polled_at`, read raw.
async fn last_polled_at(db: &TestDb, client: &str) -> Option<i64> {
    db.raw_i64("SELECT last_polled_at FROM device_authorizations WHERE client_id = $1", client)
        .await
}

/// `client`'s (one) device authorization's interval, read raw.
async fn interval_of(db: &TestDb, client: &str) -> i64 {
    let sql = "SELECT interval FROM device_authorizations WHERE client_id = $1";
    db.raw_i64(sql, client).await.unwrap()
}

async fn device_authorization_round_trip_and_user_code_lookup(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    // No scope and no audience: stored as '' and '[]'.
    let (_, bare_user_code, bare) = device_authorization("kiosk");
    let bare = DeviceAuthorization { scope: ScopeSet::default(), audience: Vec::new(), ..bare };
    db.store.insert_device_authorization(&bare).await.unwrap();
    let sql = "SELECT count(*) FROM device_authorizations \
        WHERE client_id = $1 AND scope = '' AND audience = '[]'";
    assert_eq!(db.raw_i64(sql, "kiosk").await, Some(1));

    let find = |hash: SecretHash, now| async move {
        db.store.find_pending_by_user_code(&hash, now).await.unwrap()
    };
    assert_eq!(find(user_code.hash(), NOW).await, Some(stored.clone()));
    assert_eq!(find(bare_user_code.hash(), NOW).await, Some(bare.clone()));
    assert_eq!(find(Secret::generate().hash(), NOW).await, None);
    // By the user code only: the device code finds nothing.
    assert_eq!(find(device_code.hash(), NOW).await, None);

    // A user code is unique; the conflict names the client, never the code.
    let (_, _, clash) = device_authorization("other-tv");
    let clash = DeviceAuthorization { user_code_hash: user_code.hash(), ..clash };
    match db.store.insert_device_authorization(&clash).await {
        Err(StoreError::Conflict(what)) => {
            assert_eq!(what, "user code of a device authorization of client `other-tv`");
            assert!(!what.contains(user_code.expose()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(find(user_code.hash(), NOW).await, Some(stored.clone()), "the first is kept");

    // Once decided it is no longer pending; the device redeems it with what was decided.
    assert!(approve(&db.store, &user_code, NOW + 10).await);
    assert_eq!(find(user_code.hash(), NOW + 10).await, None);
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 20).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 20, &found));
    assert_eq!(devices_with_status(db, "tv", "redeemed").await, 1);
    assert_eq!(find(bare_user_code.hash(), NOW + 20).await, Some(bare));
}

async fn expired_device_authorization_is_expired_and_not_found_by_user_code(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    let end = stored.expires_at;
    // `expires_at` is exclusive.
    let find = |now| db.store.find_pending_by_user_code(&stored.user_code_hash, now);
    assert_eq!(find(end - 1).await.unwrap(), Some(stored.clone()));
    assert_eq!(find(end).await.unwrap(), None);
    assert_eq!(find(end + 1).await.unwrap(), None);
    assert_poll!(poll(&db.store, &device_code, "tv", end).await, DevicePoll::Expired);
    assert_poll!(poll(&db.store, &device_code, "tv", end + 100).await, DevicePoll::Expired);
    assert_eq!(last_polled_at(db, "tv").await, None, "an expired poll is not recorded");
    // Too late to decide.
    assert!(!approve(&db.store, &user_code, end).await);
    assert!(!db.store.decide_device_authorization(&user_code.hash(), None, end).await.unwrap());
    assert_eq!(devices_with_status(db, "tv", "pending").await, 1);
    assert_poll!(poll(&db.store, &device_code, "tv", end - 1).await, DevicePoll::Pending);

    // Approved in time but polled too late: expired, and not redeemed.
    let (device_code, user_code, stored) = insert_device(&db.store, "kiosk").await;
    assert!(approve(&db.store, &user_code, stored.expires_at - 1).await);
    let outcome = poll(&db.store, &device_code, "kiosk", stored.expires_at).await;
    assert_poll!(outcome, DevicePoll::Expired);
    assert_eq!(devices_with_status(db, "kiosk", "approved").await, 1);
}

async fn rfc8628_3_5_polling_faster_than_the_interval_is_slow_down_and_adds_5_seconds(db: &TestDb) {
    let (device_code, _, _) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert_eq!(last_polled_at(db, "tv").await, Some(NOW));
    assert_eq!(interval_of(db, "tv").await, INTERVAL, "a poll in time changes no interval");

    assert_poll!(poll(&db.store, &device_code, "tv", NOW + 1).await, DevicePoll::SlowDown);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 5);
    assert_eq!(last_polled_at(db, "tv").await, Some(NOW + 1), "a slow_down poll is a poll");

    // The longer interval after the last poll is soon enough again (the interval is inclusive).
    let later = NOW + 1 + INTERVAL + 5;
    assert_poll!(poll(&db.store, &device_code, "tv", later).await, DevicePoll::Pending);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 5, "the longer interval stays");
    assert_eq!(last_polled_at(db, "tv").await, Some(later));
    // One second short of the new interval is too soon: another 5 s.
    let early = later + INTERVAL + 4;
    assert_poll!(poll(&db.store, &device_code, "tv", early).await, DevicePoll::SlowDown);
    assert_eq!(interval_of(db, "tv").await, INTERVAL + 10);

    // slow_down never redeems: an approval waits for a poll in time.
    let (device_code, user_code, stored) = insert_device(&db.store, "kiosk").await;
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW).await, DevicePoll::Pending);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW + 2).await, DevicePoll::SlowDown);
    assert_eq!(devices_with_status(db, "kiosk", "approved").await, 1);
    let at = NOW + 2 + INTERVAL + 5;
    let found = approved(poll(&db.store, &device_code, "kiosk", at).await);
    assert_eq!(
        found,
        DeviceAuthorization { interval: INTERVAL + 5, ..redeemed_device(&stored, at, &found) }
    );
}

async fn decision_is_taken_once(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    let decide = |code: &Secret, approval: Option<DeviceApproval>, now| {
        let hash = code.hash();
        async move { db.store.decide_device_authorization(&hash, approval.as_ref(), now).await.unwrap() }
    };
    let deny = |code, now| decide(code, None, now);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert!(!deny(&user_code, NOW + 2).await, "approved, then denied");
    ensure_user(&db.store, "mallory-sub").await;
    let mallory =
        Some(DeviceApproval { user_id: "mallory-sub".into(), auth_time: NOW, sid: "sid-2".into() });
    assert!(!decide(&user_code, mallory, NOW + 3).await, "approved twice");
    // The first decision stands.
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 4).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 4, &found));
    assert!(!approve(&db.store, &user_code, NOW + 5).await, "redeemed is decided");

    let (device_code, user_code, _) = insert_device(&db.store, "kiosk").await;
    assert!(deny(&user_code, NOW + 1).await);
    assert!(!approve(&db.store, &user_code, NOW + 2).await, "denied, then approved");
    assert!(!deny(&user_code, NOW + 3).await, "denied twice");
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW + 4).await, DevicePoll::Denied);

    assert!(!approve(&db.store, &new_user_code(), NOW).await, "an unknown user code");
}

async fn denied_poll_is_denied(db: &TestDb) {
    let (device_code, user_code, _) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert!(db.store.decide_device_authorization(&user_code.hash(), None, NOW + 1).await.unwrap());
    let sql = "SELECT count(*) FROM device_authorizations \
        WHERE client_id = $1 AND user_id IS NULL AND auth_time IS NULL AND sid IS NULL";
    assert_eq!(db.raw_i64(sql, "tv").await, Some(1), "a denial records no user");
    assert_eq!(db.store.find_pending_by_user_code(&user_code.hash(), NOW + 1).await.unwrap(), None);

    let at = NOW + INTERVAL;
    assert_poll!(poll(&db.store, &device_code, "tv", at).await, DevicePoll::Denied);
    assert_poll!(poll(&db.store, &device_code, "tv", at + INTERVAL).await, DevicePoll::Denied);
    assert_eq!(devices_with_status(db, "tv", "denied").await, 1);
}

async fn approved_device_code_is_redeemed_once(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert_poll!(poll(&db.store, &device_code, "tv", NOW).await, DevicePoll::Pending);
    assert!(approve(&db.store, &user_code, NOW + 1).await);
    assert_eq!(devices_with_status(db, "tv", "approved").await, 1);

    let at = NOW + INTERVAL;
    let found = approved(poll(&db.store, &device_code, "tv", at).await);
    assert_eq!(found, redeemed_device(&stored, at, &found));
    assert_eq!(devices_with_status(db, "tv", "redeemed").await, 1);
    let DeviceState::Redeemed { grant_id, .. } = &found.state else { unreachable!() };
    // RFC 8628 §3.5 (issue 17 finding 18): a redeemed device code is a replay, naming its
    // grant, whenever it comes back: in time, too soon (not `slow_down`) or expired.
    let next = at + INTERVAL;
    for now in [next, next + 1, stored.expires_at + 1] {
        match poll(&db.store, &device_code, "tv", now).await {
            DevicePoll::AlreadyRedeemed { grant_id: replayed } => assert_eq!(&replayed, grant_id),
            other => panic!("at {now}: expected AlreadyRedeemed, got {other:?}"),
        }
    }
    assert_eq!(interval_of(db, "tv").await, INTERVAL, "no slow_down was counted");
    let stored_grant = db.raw_i64("SELECT count(*) FROM grants WHERE id = $1", grant_id).await;
    assert_eq!(stored_grant, Some(1), "the grant is stored with the redemption");

    // Issue 17 finding 1: an approval whose user is gone (removed behind the store's back)
    // redeems nothing and stores no grant.
    let (device_code, user_code, _) = insert_device(&db.store, "kiosk").await;
    assert!(approve(&db.store, &user_code, NOW).await);
    db.raw_execute("DELETE FROM users").await;
    assert_poll!(poll(&db.store, &device_code, "kiosk", NOW + 1).await, DevicePoll::Denied);
    assert_eq!(db.raw_count("grants").await, 1);
}

async fn another_clients_device_code_is_unknown(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert!(approve(&db.store, &user_code, NOW).await);
    assert_poll!(poll(&db.store, &device_code, "mallory", NOW + 1).await, DevicePoll::Unknown);
    // Not even expiry is told to another client, and its polls change nothing.
    let late = stored.expires_at;
    assert_poll!(poll(&db.store, &device_code, "mallory", late).await, DevicePoll::Unknown);
    assert_eq!(last_polled_at(db, "tv").await, None);
    assert_eq!(devices_with_status(db, "tv", "approved").await, 1);
    assert_poll!(poll(&db.store, &Secret::generate(), "tv", NOW + 1).await, DevicePoll::Unknown);
    // A user code is no device code.
    assert_poll!(poll(&db.store, &user_code, "tv", NOW + 1).await, DevicePoll::Unknown);

    let found = approved(poll(&db.store, &device_code, "tv", NOW + 2).await);
    assert_eq!(found, redeemed_device(&stored, NOW + 2, &found));
    assert_poll!(poll(&db.store, &device_code, "mallory", NOW + 20).await, DevicePoll::Unknown);
}

async fn concurrent_polls_of_an_approved_code_have_one_winner(db: &TestDb) {
    // Two independent pools: two server instances sharing one database.
    let other = db.connect_another().await;
    for round in 0..3 {
        let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
        assert!(approve(&db.store, &user_code, NOW).await);
        let hash = device_code.hash();
        let mut set = JoinSet::new();
        for i in 0..8 {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            set.spawn(async move {
                let tv = client_id("tv");
                store.poll_device_authorization(&hash, &tv, NOW + 1, device_grant).await.unwrap()
            });
        }
        let (mut won, mut lost) = (0, 0);
        for outcome in set.join_all().await {
            match outcome {
                approved @ DevicePoll::Approved { .. } => {
                    let found = super::devices::approved(approved);
                    assert_eq!(found, redeemed_device(&stored, NOW + 1, &found));
                    won += 1;
                }
                DevicePoll::AlreadyRedeemed { .. } | DevicePoll::SlowDown => lost += 1,
                other => panic!("a concurrent poll got {other:?}"),
            }
        }
        assert_eq!((won, lost), (1, 7), "round {round}");
    }
    other.close().await;
}

async fn unreadable_device_authorization_is_a_backend_error_and_changes_nothing(db: &TestDb) {
    let (device_code, user_code, stored) = insert_device(&db.store, "tv").await;
    assert!(approve(&db.store, &user_code, NOW).await);
    db.raw_execute("UPDATE device_authorizations SET audience = 'not json'").await;
    let message = backend_message(
        db.store
            .poll_device_authorization(&device_code.hash(), &client_id("tv"), NOW + 1, device_grant)
            .await,
    );
    assert!(message.contains("device_authorizations.audience") && message.contains("tv"));
    assert_eq!(last_polled_at(db, "tv").await, None, "nothing was recorded");
    assert_eq!(devices_with_status(db, "tv", "approved").await, 1, "nor redeemed");

    db.raw_execute("UPDATE device_authorizations SET audience = '[]'").await;
    let found = approved(poll(&db.store, &device_code, "tv", NOW + 2).await);
    let expected =
        DeviceAuthorization { audience: Vec::new(), ..redeemed_device(&stored, NOW + 2, &found) };
    assert_eq!(found, expected);
}

async fn prune_removes_expired_device_authorizations(db: &TestDb) {
    const AT: i64 = NOW + 1000;
    let (_, edge_user_code, edge) = device_authorization("tv");
    let edge = DeviceAuthorization { expires_at: AT, ..edge };
    db.store.insert_device_authorization(&edge).await.unwrap();
    // Approved and redeemed, then expired: it goes too.
    let (device_code, user_code, spent) = device_authorization("kiosk");
    let spent = DeviceAuthorization { expires_at: AT - 1, ..spent };
    db.store.insert_device_authorization(&spent).await.unwrap();
    assert!(approve(&db.store, &user_code, NOW).await);
    approved(poll(&db.store, &device_code, "kiosk", NOW + 1).await);
    let (_, live_user_code, live) = device_authorization("tv");
    let live = DeviceAuthorization { expires_at: AT + 1, ..live };
    db.store.insert_device_authorization(&live).await.unwrap();
    assert_eq!(db.raw_count("device_authorizations").await, 3);

    assert_eq!(db.store.prune_expired(AT - 2).await.unwrap(), 0);
    // `expires_at` is inclusive here.
    assert_eq!(db.store.prune_expired(AT).await.unwrap(), 2);
    assert_eq!(db.raw_count("device_authorizations").await, 1);
    assert_eq!(db.store.prune_expired(AT).await.unwrap(), 0);
    let find = |code: &Secret| {
        let hash = code.hash();
        async move { db.store.find_pending_by_user_code(&hash, AT).await.unwrap() }
    };
    assert_eq!(find(&live_user_code).await, Some(live));
    assert_eq!(find(&edge_user_code).await, None);

    // A pruned user code may be issued again.
    let (_, _, again) = device_authorization("tv");
    let again = DeviceAuthorization {
        user_code_hash: edge_user_code.hash(),
        expires_at: AT + 600,
        ..again
    };
    db.store.insert_device_authorization(&again).await.unwrap();
    assert_eq!(db.store.prune_expired(AT + 1).await.unwrap(), 1, "the live one, at its end");
}
