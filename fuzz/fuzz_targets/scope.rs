//! The `scope` parameter (RFC 6749 §3.3) and the registration rule for scopes (requirements
//! R3.4) on arbitrary text. Invariants: never panics; a parsed set prints as a value that parses
//! back to the same set; every token is `1*( %x21 / %x23-5B / %x5D-7E )`; a scope accepted for
//! registration is also a valid scope token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::scope::{Scope, ScopeSet};

fuzz_target!(|raw: &str| {
    if let Ok(set) = ScopeSet::parse(raw) {
        let printed = set.to_string();
        assert_eq!(ScopeSet::parse(&printed).as_ref(), Ok(&set), "{raw:?} → {printed:?}");
        for scope in set.iter() {
            assert!(
                scope.as_str().bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
                "{:?}",
                scope.as_str()
            );
        }
    }
    if Scope::parse_registered(raw).is_ok() {
        assert!(Scope::parse(raw).is_ok(), "{raw:?}");
    }
});
