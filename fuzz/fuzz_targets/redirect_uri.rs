//! Redirect-URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7.3, OAuth 2.1 §4.1.1) on
//! arbitrary text, split at the first newline into a URI to register and a requested URI.
//! Invariants: parsing never panics; a registered URI has no fragment and no forbidden scheme
//! and matches itself; a match that is not the exact string differs only in the port of a
//! loopback `http` URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::redirect_uri::RedirectUri;

fuzz_target!(|input: &str| {
    let (registered, requested) = input.split_once('\n').unwrap_or((input, input));
    let Ok(uri) = RedirectUri::parse_for_registration(registered) else { return };
    assert!(!uri.as_str().contains('#'), "a fragment was registered: {registered:?}");
    let scheme = uri.as_str().split(':').next().unwrap_or_default().to_ascii_lowercase();
    assert!(!["javascript", "data", "vbscript", "file"].contains(&scheme.as_str()));
    assert!(uri.matches(uri.as_str()), "{registered:?} does not match itself");

    if uri.matches(requested) && requested != uri.as_str() {
        let a = url::Url::parse(uri.as_str()).expect("registered URIs parse");
        let b = url::Url::parse(requested).expect("a non-exact match parses");
        assert_eq!(a.scheme(), "http", "{registered:?} ~ {requested:?}");
        assert_eq!(b.scheme(), "http", "{registered:?} ~ {requested:?}");
        assert_eq!(a.host(), b.host(), "{registered:?} ~ {requested:?}");
        assert_eq!(a.path(), b.path(), "{registered:?} ~ {requested:?}");
        assert_eq!(a.query(), b.query(), "{registered:?} ~ {requested:?}");
        assert_eq!(b.fragment(), None, "{registered:?} ~ {requested:?}");
        assert_eq!(b.as_str(), requested, "the requested URI must be canonical: {requested:?}");
    }
});
