//! The RFC 9068 §2.2 claims of an access token, with `cnf` (RFC 7800) and nested `act`
//! (RFC 8693 §4.1), from arbitrary JSON. Invariants: never panics (also on deeply nested
//! `act`); `aud` is a list whether sent as a string or an array; every scope token is
//! `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_jose::AccessTokenClaims;

fuzz_target!(|json: &[u8]| {
    // The verifier hands claims over as checked UTF-8 text (`jws::decode_payload`): serde_json
    // skips members no field reads without checking their bytes (this target's first find,
    // now `rfc7519_7_2_a_claims_set_or_header_that_is_not_utf8_is_refused_even_in_unread_members`).
    let Ok(json) = std::str::from_utf8(json) else { return };
    let Ok(claims) = serde_json::from_str::<AccessTokenClaims>(json) else { return };
    for scope in claims.scope.iter() {
        assert!(!scope.is_empty());
        assert!(scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)), "{scope:?}");
    }
    // Not `expect`: members no field reads are skipped without checking a number's range, so
    // `"x":1e999` parses as claims but not as a `Value` (this target's second find; harmless,
    // since no claim is read from such a member).
    let Ok(raw) = serde_json::from_str::<serde_json::Value>(json) else { return };
    match &raw["aud"] {
        serde_json::Value::String(one) => assert_eq!(claims.aud.as_slice(), [one.clone()]),
        serde_json::Value::Array(many) => assert_eq!(claims.aud.as_slice().len(), many.len()),
        other => panic!("aud {other:?} was accepted"),
    }
});
