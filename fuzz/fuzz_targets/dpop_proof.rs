//! DPoP proofs (RFC 9449 §4.3) from arbitrary header text, checked as `/token` checks them and as
//! a resource checks them (with `ath`, §7). The seeds in `seeds/dpop_proof` are valid proofs
//! (ES256 with `ath`, ES256 and EdDSA without) for `POST https://issuer.example/token` at
//! `NOW`, so the fuzzer mutates real proofs. Invariants: never panics; whatever is accepted
//! was signed by the holder of a seed's key — its signing input is a seed's — so no header
//! member (`alg`, `jwk`, `typ`) or claim (`htm`, `htu`, `iat`, `ath`) can be changed without
//! the proof failing; the thumbprint returned is the one of the key in that seed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_jose::dpop::{ProofRules, verify_proof};

const NOW: i64 = 1_800_000_000;
const ACCESS_TOKEN: &str = "fixed-access-token";
const SEEDS: [&str; 3] = [
    include_str!("../seeds/dpop_proof/es256_ath"),
    include_str!("../seeds/dpop_proof/es256"),
    include_str!("../seeds/dpop_proof/eddsa"),
];

const RULES: ProofRules<'static> = ProofRules {
    method: "POST",
    url: "https://issuer.example/token",
    now: NOW,
    max_age: 60,
    leeway: 5,
    access_token: None,
};

fn signing_input(proof: &str) -> &str {
    proof.rsplit_once('.').map_or(proof, |(input, _)| input)
}

fuzz_target!(|proof: &str| {
    // The invariant below means something only if the seeds themselves are accepted.
    static SEEDS_VERIFY: std::sync::Once = std::sync::Once::new();
    SEEDS_VERIFY.call_once(|| {
        for seed in SEEDS {
            let rules = ProofRules { access_token: None, ..RULES };
            verify_proof(seed, rules).expect("every seed is a valid proof");
        }
    });
    for access_token in [None, Some(ACCESS_TOKEN)] {
        let rules = ProofRules { access_token, ..RULES };
        let Ok(accepted) = verify_proof(proof, rules) else { continue };
        let seed = SEEDS.iter().find(|s| signing_input(s) == signing_input(proof));
        let seed = seed.unwrap_or_else(|| panic!("a forged DPoP proof was accepted: {proof:?}"));
        let from_seed = verify_proof(seed, rules).expect("a seed accepted under the same rules");
        assert_eq!(accepted.jkt, from_seed.jkt, "the thumbprint is not the seed key's");
        assert_eq!(accepted.jti, from_seed.jti);
    }
});
