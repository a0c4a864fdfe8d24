//! JWT verification (RFC 7515, RFC 8725, RFC 9068 §4) of arbitrary token text against a fixed
//! public JWKS (one ES256, one RS256, one EdDSA key; `jwks.json`). The seeds in
//! `seeds/jwt_verify` include one valid access token per key, so the fuzzer mutates real
//! tokens. Invariants: never panics; whatever verifies was signed by the key's holder — its
//! signing input (header and payload) is one of the seeds' — so no header or claim can be
//! changed without the signature failing (`alg` confusion, `none`, HMAC with a public key).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_jose::{Jwks, Typ, Verifier, jws};

const ISSUER: &str = "https://issuer.example";
const NOW: i64 = 1_800_000_000;
const SIGNED: [&str; 3] = [
    include_str!("../seeds/jwt_verify/es256"),
    include_str!("../seeds/jwt_verify/rs256"),
    include_str!("../seeds/jwt_verify/eddsa"),
];

fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(input, _)| input)
}

fuzz_target!(|token: &str| {
    thread_local! {
        static VERIFIER: Verifier = Verifier::without_cache(
            Jwks::parse(include_str!("jwks.json")).expect("the fixed JWKS parses"),
        );
    }
    VERIFIER.with(|verifier| {
        let signed_by_holder = SIGNED.iter().any(|s| signing_input(s) == signing_input(token));
        if verifier.verify_access_token(token, ISSUER, NOW).is_ok() {
            assert!(signed_by_holder, "a forged access token verified: {token:?}");
        }
        if jws::verify_jws::<serde_json::Value>(verifier.jwks(), token, Typ::Any).is_ok() {
            assert!(signed_by_holder, "a forged JWS verified: {token:?}");
        }
    });
});
