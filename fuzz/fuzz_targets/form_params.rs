//! The strict form parser (RFC 6749 §3.2, Appendix B) on arbitrary bytes: it never panics, and
//! what it accepts holds each parameter at most once (RFC 6749 §3.2), `resource` aside
//! (RFC 8707 §2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::params::Params;

const SINGLE_VALUED: [&str; 8] = [
    "grant_type",
    "code",
    "client_id",
    "redirect_uri",
    "scope",
    "code_verifier",
    "refresh_token",
    "state",
];

fuzz_target!(|body: &[u8]| {
    let Ok(params) = Params::parse_form(body) else { return };
    for name in SINGLE_VALUED {
        let values: Vec<&str> = params.get_all(name).collect();
        assert!(values.len() <= 1, "{name} accepted {} times", values.len());
        // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        assert!(values.iter().all(|v| !v.is_empty()), "{name} kept an empty value");
        assert_eq!(params.get(name), values.first().copied());
    }
});
