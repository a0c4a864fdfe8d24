//! JWKS documents (RFC 7517 §5) on arbitrary text. Invariants: never panics; an accepted set
//! has no duplicate `kid` (§4.5); a set accepted with every key required usable is accepted
//! unchanged when unusable keys may be skipped.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tessera_jose::Jwks;

fuzz_target!(|json: &str| {
    let strict = Jwks::parse(json);
    let lenient = Jwks::parse_signing_keys(json);
    if let Ok(strict) = &strict {
        let mut kids = HashSet::new();
        for kid in strict.keys().iter().filter_map(|k| k.kid()) {
            assert!(kids.insert(kid), "duplicate kid {kid:?} accepted");
        }
        let lenient = lenient.as_ref().expect("a strictly valid set is a valid signing-key set");
        assert_eq!(lenient.keys().len(), strict.keys().len());
    }
});
