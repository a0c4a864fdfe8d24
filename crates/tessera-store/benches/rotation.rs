//! Refresh-token rotation and code redemption, one at a time (latency), against SQLite and
//! PostgreSQL, and on PostgreSQL both ways (issue 16 item 2):
//!
//! - `rotation/{sqlite,postgres,postgres-portable}`: [`GrantStore::rotate_refresh_token`] of
//!   the current token of one grant into a new one (the chain goes on each iteration).
//!   `postgres` is the one-statement path (`BEGIN`, one statement of CTEs, `COMMIT`);
//!   `postgres-portable` is the same store with it turned off
//!   ([`Store::with_portable_paths_only`]): `BEGIN`, spend, grant read, two inserts, `COMMIT`.
//! - `redemption/{…}`: [`AuthorizationCodeStore::redeem_code`] of a fresh code; the code is
//!   inserted outside the measured time.
//!
//! PostgreSQL is a fresh schema at `TESSERA_TEST_DATABASE_URL` (default the local one), as in
//! `opaque_lookup`; skipped with a note when unreachable.
//!
//! ```sh
//! cargo bench -p tessera-store --bench rotation
//! ```

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::client_id::ClientId;
use tessera_core::pkce::CodeChallenge;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::{Secret, SecretHash, random_id};
use tessera_core::store::{
    AuthorizationCode, AuthorizationCodeStore, Grant, GrantStore, RefreshRotation, RotationRequest,
    UserStore,
};
use tessera_core::user::User;
use tessera_store::Store;
use tessera_store::testing::TestDb;
use tokio::runtime::Runtime;

const NOW: i64 = 1_700_000_000;
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn grant() -> Grant {
    Grant {
        id: random_id::<16>(),
        client_id: ClientId::parse("web").expect("client id"),
        user_id: "alice".into(),
        scope: ScopeSet::parse("openid orders:read").expect("scope"),
        auth_time: NOW - 30,
        sid: None,
        audience: vec![],
        created_at: NOW,
        expires_at: NOW + 86_400,
        dpop_jkt: None,
    }
}

fn code_of(grant: &Grant) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: Secret::generate().hash(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.example.com/cb".into(),
        code_challenge: CodeChallenge::parse(Some(CHALLENGE), Some("S256")).expect("challenge"),
        nonce: None,
        expires_at: NOW + 60,
    }
}

async fn prepare(store: &Store) {
    let user = User {
        id: "alice".into(),
        username: "alice".into(),
        email: None,
        name: None,
        password_hash: tessera_core::user::UNKNOWN_USER_PASSWORD_HASH.into(),
        created_at: NOW,
        disabled: false,
    };
    store.create_user(&user).await.expect("user");
}

/// Times `iters` rotations along one grant's chain.
async fn rotations(store: &Store, iters: u64) -> Duration {
    let g = grant();
    store.insert_grant_with_code(&g, &code_of(&g)).await.expect("grant");
    let mut current = Secret::generate().hash();
    store.insert_refresh_token(&current, &g.id, NOW, NOW + 3600, None).await.expect("token");
    let client_id = g.client_id.clone();
    let started = Instant::now();
    for _ in 0..iters {
        let next: SecretHash = Secret::generate().hash();
        let jti = random_id::<16>();
        let rotation = RotationRequest {
            old: &current,
            new: &next,
            client_id: &client_id,
            now: NOW,
            idle_ttl: 3600,
            access_token_jti: &jti,
            access_token_expires_at: NOW + 900,
            grace_seconds: 0,
            certificate: None,
        };
        let outcome =
            store.rotate_refresh_token(rotation, |_| Ok::<(), ()>(())).await.expect("rotation");
        assert!(matches!(outcome, RefreshRotation::Rotated { .. }), "{outcome:?}");
        current = next;
    }
    started.elapsed()
}

/// Times `iters` redemptions of fresh codes (their inserts are not timed).
async fn redemptions(store: &Store, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let web = ClientId::parse("web").expect("client id");
    for _ in 0..iters {
        let g = grant();
        let code = code_of(&g);
        store.insert_grant_with_code(&g, &code).await.expect("grant");
        let started = Instant::now();
        let outcome = store.redeem_code(&code.code_hash, &web, NOW, |_| Ok::<(), ()>(())).await;
        total += started.elapsed();
        assert!(outcome.is_ok());
    }
    total
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let sqlite = rt.block_on(TestDb::sqlite());
    let postgres = rt.block_on(TestDb::postgres());
    let mut stores = vec![("sqlite", sqlite.store.clone())];
    if let Some(db) = &postgres {
        stores.push(("postgres", db.store.clone()));
        stores.push(("postgres-portable", db.store.clone().with_portable_paths_only()));
    }
    for (_, store) in stores.iter().take(2) {
        rt.block_on(prepare(store));
    }
    let mut group = c.benchmark_group("rotation");
    for (name, store) in &stores {
        group
            .bench_function(*name, |b| b.iter_custom(|iters| rt.block_on(rotations(store, iters))));
    }
    group.finish();
    let mut group = c.benchmark_group("redemption");
    for (name, store) in &stores {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| rt.block_on(redemptions(store, iters)))
        });
    }
    group.finish();
    rt.block_on(sqlite.cleanup());
    if let Some(db) = postgres {
        rt.block_on(db.cleanup());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
