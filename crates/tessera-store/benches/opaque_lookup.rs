//! Opaque access-token lookup, as the introspection endpoint (and `/userinfo`) does it for a
//! token that is not a JWT, against SQLite and PostgreSQL:
//!
//! - `opaque_lookup/{sqlite,postgres}`: [`TokenStore::find_live_opaque_access_token`], the
//!   store method introspection uses: one query by the token's SHA-256 (primary key) that also
//!   checks expiry and revocation, with the row decoded into the core's types.
//! - `validate_opaque_token/{sqlite,postgres}`: the whole `validate_access_token` path for an
//!   opaque token (shape check, hash, the lookup above, conversion), as introspection runs it.
//!
//! Each backend first gets [`TOKENS`] tokens, so that the lookups walk a realistic index; every
//! iteration looks up the next one in turn, one at a time (latency, not throughput). SQLite is
//! a fresh temp file opened as `Store::connect("sqlite://…")` opens it (WAL, the default
//! `synchronous`, the store's own pools); PostgreSQL is a fresh schema at
//! `TESSERA_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), created
//! through `tessera_store::testing`. When PostgreSQL cannot be reached the reason is printed
//! and only its cases are skipped. Both databases are removed at the end.
//!
//! Run (from the workspace root):
//!
//! ```sh
//! cargo bench -p tessera-store --bench opaque_lookup
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::client_id::ClientId;
use tessera_core::introspection::validate_access_token;
use tessera_core::keys::{KeyEncryptionKey, KeySet};
use tessera_core::scope::ScopeSet;
use tessera_core::secret::Secret;
use tessera_core::store::OpaqueAccessToken;
use tessera_store::testing::TestDb;
use tessera_store::{Store, TokenStore};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// How many opaque tokens each database holds before the lookups run.
const TOKENS: usize = 5_000;
/// Concurrent inserts while filling a database.
const FILL_CONCURRENCY: usize = 16;
const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://auth.example.com";

/// Stores [`TOKENS`] opaque tokens spread over a few clients and users; returns the
/// plaintexts, as clients would present them.
async fn fill(store: &Store) -> Vec<String> {
    let mut plaintexts = Vec::with_capacity(TOKENS);
    let mut pending = JoinSet::new();
    for i in 0..TOKENS {
        let secret = Secret::generate();
        let record = OpaqueAccessToken {
            token_hash: secret.hash(),
            jti: format!("jti-{i:06}"),
            client_id: ClientId::parse(&format!("client-{}", i % 20)).expect("valid client_id"),
            sub: format!("user-{}", i % 500),
            scope: ScopeSet::parse("openid orders:read").expect("valid scope"),
            audience: vec!["https://api.example.com".to_owned()],
            issued_at: NOW,
            expires_at: NOW + 900,
            act: None,
        };
        plaintexts.push(secret.expose().to_owned());
        let store = store.clone();
        pending.spawn(async move { store.insert_opaque_access_token(&record).await });
        if pending.len() >= FILL_CONCURRENCY {
            pending.join_next().await.expect("a task").expect("joined").expect("inserted");
        }
    }
    while let Some(done) = pending.join_next().await {
        done.expect("joined").expect("inserted");
    }
    plaintexts
}

/// Fills `db`, then benchmarks both lookups on it under the name `backend`.
fn bench_backend(c: &mut Criterion, rt: &Runtime, db: &TestDb, keys: &KeySet, backend: &str) {
    let started = std::time::Instant::now();
    let tokens = rt.block_on(fill(&db.store));
    eprintln!("{backend}: stored {TOKENS} opaque tokens in {:.1?}", started.elapsed());
    let hashes: Vec<_> = tokens.iter().map(|t| Secret::from_string(t.clone()).hash()).collect();
    // Sanity check outside the measurements: the first token is found and active.
    let first =
        rt.block_on(db.store.find_live_opaque_access_token(&hashes[0], NOW + 1)).expect("lookup");
    assert!(first.is_some_and(|t| t.jti == "jti-000000"), "the stored token is found");
    let active = rt.block_on(validate_access_token(&db.store, keys, ISSUER, &tokens[0], NOW + 1));
    assert!(active.expect("validation").is_some(), "the stored token is active");

    let next = AtomicUsize::new(0);
    let mut lookup = c.benchmark_group("opaque_lookup");
    lookup.bench_function(backend, |b| {
        b.to_async(rt).iter(|| async {
            let hash = &hashes[next.fetch_add(1, Ordering::Relaxed) % hashes.len()];
            db.store
                .find_opaque_access_token(black_box(hash))
                .await
                .expect("lookup")
                .expect("found")
        })
    });
    lookup.finish();

    let mut validate = c.benchmark_group("validate_opaque_token");
    validate.bench_function(backend, |b| {
        b.to_async(rt).iter(|| async {
            let token = &tokens[next.fetch_add(1, Ordering::Relaxed) % tokens.len()];
            validate_access_token(&db.store, keys, ISSUER, black_box(token), NOW + 1)
                .await
                .expect("validation")
                .expect("active")
        })
    });
    validate.finish();
}

fn opaque_lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // Opaque tokens need no signing key; `validate_access_token` only takes the set.
    let kek = KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded())
        .expect("a fresh key-encryption key");
    let keys = KeySet::load(&[], &kek).expect("an empty key set");

    let sqlite = rt.block_on(TestDb::sqlite());
    bench_backend(c, &rt, &sqlite, &keys, "sqlite");
    rt.block_on(sqlite.cleanup());

    match rt.block_on(TestDb::postgres()) {
        Some(postgres) => {
            bench_backend(c, &rt, &postgres, &keys, "postgres");
            rt.block_on(postgres.cleanup());
        }
        // `TestDb::postgres` has printed why.
        None => eprintln!("opaque_lookup: PostgreSQL unreachable, its benchmarks are skipped"),
    }
}

criterion_group!(benches, opaque_lookup);
criterion_main!(benches);
