//! Microbenchmarks of the token endpoint's and introspection's CPU-bound hot paths, through
//! `tessera-core`'s public API (no I/O):
//!
//! - `client_auth/client_secret_basic`: reading an `Authorization: Basic` header
//!   ([`presented_credentials`]) and checking it against a registered client's stored secret
//!   hash ([`authenticate`]: one SHA-256 and a constant-time compare), as `/token` does.
//! - `mint_access_token/{RS256,ES256,EdDSA}`: minting an RFC 9068 JWT access token with a
//!   loaded [`KeySet`] (parsed key pairs, as the server caches them): claims, `jti`, one
//!   signature. This is what `issue_access_token` runs for a client with JWT access tokens
//!   (that format touches no store).
//! - `verify_access_token/{RS256,ES256,EdDSA}`: [`verify_jwt_access_token`] of such a token:
//!   `validate_access_token` without its revocation lookup (`KeySet::verifier`, that is
//!   `tessera_jose::Verifier::verify_access_token`, and the claims introspection and `/userinfo`
//!   read). The same token is verified again and again, so this measures a hit of
//!   the verifier's cache of verified tokens (header, `kid` lookup, digest, cache lookup,
//!   payload decode, `iss`, `exp`: no signature).
//! - `verify_access_token_uncached/{RS256,ES256,EdDSA}`: the same, for a token the key set has
//!   not seen (a fresh one is minted outside the timed part for each verification): the miss
//!   path, with the signature, and the insertion into the cache.
//! - `pkce/S256_verify`: checking a `code_verifier` against a stored S256 `code_challenge`.
//! - `password/argon2id_verify`: checking a password against a stored Argon2id hash
//!   ([`PasswordVerifier`] with its memory kept, as the server's password-check threads run it;
//!   the server's parameters): the cost that bounds sign-ins per second
//!   (the `authorization-code` load scenario is compared with 1 / this time).
//!
//! Run (from the workspace root):
//!
//! ```sh
//! cargo bench -p tessera-core --bench hot_paths
//! ```
//!
//! A filter selects benchmarks, e.g. `cargo bench -p tessera-core --bench hot_paths -- ES256`.

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_auth::{authenticate, presented_credentials};
use tessera_core::client_id::ClientId;
use tessera_core::introspection::verify_jwt_access_token;
use tessera_core::issuer::{HttpIssuers, Issuer};
use tessera_core::keys::{KeyEncryptionKey, KeySet, SigningAlg, generate_key};
use tessera_core::params::Params;
use tessera_core::pkce::CodeChallenge;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::Secret;
use tessera_core::token::{
    AccessTokenGrant, IssueContext, TokenPolicy, mint_access_token, new_jti,
};
use tessera_core::user::{PasswordVerifier, hash_password};

/// A fixed clock: keys activate at `NOW`, tokens are minted at `NOW` and verified just after.
const NOW: i64 = 1_700_000_000;
const ISSUER: &str = "https://auth.example.com";

/// A confidential client authenticating with HTTP Basic: one header parse, one hash compare.
fn client_authentication(c: &mut Criterion) {
    let registration = ClientRegistration {
        client_id: Some(ClientId::parse("orders-service").expect("valid client_id")),
        client_name: "Orders service".into(),
        auth_method: Some(AuthMethod::ClientSecretBasic),
        ..Default::default()
    };
    let (client, secret) = registration.into_client(NOW).expect("valid registration");
    let secret = secret.expect("a confidential client gets a secret");
    // The server's client cache hands out `Arc<Client>`s.
    let client = Arc::new(client);
    let header =
        format!("Basic {}", STANDARD.encode(format!("orders-service:{}", secret.expose())));
    // A client_credentials request body: no client_id or secret in the form.
    let params = Params::parse_form(b"grant_type=client_credentials&scope=orders%3Aread")
        .expect("valid form");

    let mut group = c.benchmark_group("client_auth");
    group.bench_function("client_secret_basic", |b| {
        b.iter(|| {
            let presented = presented_credentials(Some(black_box(header.as_bytes())), &params)
                .expect("well-formed credentials");
            authenticate(presented, Some(Arc::clone(&client))).expect("the secret matches")
        })
    });
    group.finish();
}

/// One key per algorithm, generated, sealed and loaded as the server loads its key ring.
fn key_set() -> KeySet {
    let kek = KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded())
        .expect("a fresh key-encryption key");
    let stored: Vec<_> = SigningAlg::ALL
        .iter()
        .map(|alg| generate_key(*alg, &kek, NOW, NOW).expect("key generation"))
        .collect();
    KeySet::load(&stored, &kek).expect("the keys load")
}

/// Minting and verifying JWT access tokens with each algorithm.
fn access_tokens(c: &mut Criterion) {
    let keys = key_set();
    let issuer = Issuer::parse(ISSUER, HttpIssuers::LoopbackOnly).expect("valid issuer");
    let client_id = ClientId::parse("orders-service").expect("valid client_id");
    let scope = ScopeSet::parse("openid orders:read orders:write").expect("valid scope");
    let audience = vec!["https://api.example.com".to_owned()];
    let grant = || AccessTokenGrant {
        sub: "9YpXgq0y3vH2n6kR1cLw4A",
        client_id: &client_id,
        scope: &scope,
        audience: &audience,
        jti: "Jx3kQ9mB2vL7pN4wR8tY1A".to_owned(),
        act: None,
    };
    let policies: Vec<TokenPolicy> = SigningAlg::ALL
        .iter()
        .map(|alg| TokenPolicy { access_token_alg: *alg, ..TokenPolicy::default() })
        .collect();
    let context = |policy| IssueContext {
        issuer: &issuer,
        keys: &keys,
        policy,
        now: NOW,
        dpop: None,
        certificate: None,
        revocations: None,
    };

    let mut mint = c.benchmark_group("mint_access_token");
    for policy in &policies {
        mint.bench_function(policy.access_token_alg.as_str(), |b| {
            b.iter(|| mint_access_token(black_box(context(policy)), grant()).expect("minted"))
        });
    }
    mint.finish();

    let mut verify = c.benchmark_group("verify_access_token");
    for policy in &policies {
        let token = mint_access_token(context(policy), grant()).expect("minted").token;
        // Check once outside the loop that the token really verifies.
        verify_jwt_access_token(&keys, ISSUER, &token, NOW + 1).expect("the minted token verifies");
        verify.bench_function(policy.access_token_alg.as_str(), |b| {
            b.iter(|| {
                verify_jwt_access_token(&keys, ISSUER, black_box(&token), NOW + 1)
                    .expect("valid token")
            })
        });
    }
    verify.finish();

    let mut uncached = c.benchmark_group("verify_access_token_uncached");
    for policy in &policies {
        uncached.bench_function(policy.access_token_alg.as_str(), |b| {
            b.iter_batched(
                // Each token has its own `jti`, so none is in the cache yet (the same claims
                // would sign to the same RS256 or EdDSA token: those signatures are
                // deterministic).
                || {
                    let grant = AccessTokenGrant { jti: new_jti(), ..grant() };
                    mint_access_token(context(policy), grant).expect("minted").token
                },
                |token| {
                    verify_jwt_access_token(&keys, ISSUER, black_box(&token), NOW + 1)
                        .expect("valid token")
                },
                BatchSize::SmallInput,
            )
        });
    }
    uncached.finish();
}

/// The S256 check at code redemption (RFC 7636 Appendix B's example values).
fn pkce(c: &mut Criterion) {
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).expect("valid challenge");

    let mut group = c.benchmark_group("pkce");
    group.bench_function("S256_verify", |b| {
        b.iter(|| challenge.verify(black_box(VERIFIER)).expect("the verifier matches"))
    });
    group.finish();
}

fn password(c: &mut Criterion) {
    let password = Secret::generate();
    let stored = hash_password(&password).expect("hashing works");
    let mut group = c.benchmark_group("password");
    // Tens of milliseconds per run: fewer samples keep the run short.
    group.sample_size(20);
    group.bench_function("argon2id_verify", |b| {
        let mut verifier = PasswordVerifier::default();
        b.iter(|| assert!(verifier.verify(black_box(&password), black_box(&stored))))
    });
    group.finish();
}

criterion_group!(benches, client_authentication, access_tokens, pkce, password);
criterion_main!(benches);
