//! Client metadata (RFC 7591 §2, draft-ietf-oauth-client-id-metadata-document §4) from arbitrary
//! JSON: what `/register` and a fetched client ID metadata document hand to the one validator.
//! Invariants: never panics; accepted metadata names its client, registers only redirect URIs
//! the registration parser accepts again, and is never first-party nor an introspection
//! caller; an accepted document is the client its URL names and proves no shared secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::client::AuthMethod;
use tessera_core::client_metadata::{ClientMetadata, MAX_CLIENT_NAME_CHARS, MetadataDocument};
use tessera_core::redirect_uri::RedirectUri;

const DOCUMENT_URL: &str = "https://app.example/oauth/client.json";

fuzz_target!(|json: &[u8]| {
    if let Ok(metadata) = serde_json::from_slice::<ClientMetadata>(json) {
        if let Ok(registration) = metadata.into_registration() {
            let name = &registration.client_name;
            assert!(!name.trim().is_empty(), "a nameless client was accepted");
            assert!(name.chars().count() <= MAX_CLIENT_NAME_CHARS);
            assert!(!name.chars().any(char::is_control), "control characters in {name:?}");
            for uri in
                registration.redirect_uris.iter().chain(&registration.post_logout_redirect_uris)
            {
                assert!(
                    RedirectUri::parse_for_registration(uri.as_str()).is_ok(),
                    "{uri:?} was accepted but does not parse again"
                );
            }
            assert!(!registration.first_party && !registration.introspection);
        }
    }
    if let Ok(document) = serde_json::from_slice::<MetadataDocument>(json) {
        if let Ok(registration) = document.into_registration(DOCUMENT_URL) {
            assert_eq!(registration.client_id.as_ref().map(|id| id.as_str()), Some(DOCUMENT_URL));
            assert!(!registration.redirect_uris.is_empty());
            assert!(
                registration.public || registration.auth_method == Some(AuthMethod::PrivateKeyJwt),
                "a document client authenticates with a shared secret"
            );
            assert!(registration.imported_secret.is_none());
        }
    }
});
