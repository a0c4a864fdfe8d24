//! Token verification from public keys only, shared by everything in Tessera that checks a
//! token: the authorization server, and later the resource-server library, the client library,
//! the gateway and `tessera bench`.
//!
//! - [`Jwks`]: a validated public JWK set (RFC 7517): no private members, no symmetric keys, no
//!   duplicate `kid`s, every key's algorithm on the allow-list ([`Algorithm`]).
//! - [`Verifier`]: checks compact JWS tokens against a [`Jwks`]: the key by `kid`, the algorithm
//!   from the key (never from the token), `typ`, no `crit`, `iss`, `exp`, `nbf`; it remembers
//!   the digests of token strings it already verified so that a repeated token skips the
//!   signature.
//! - [`claims`]: the RFC 9068 access-token profile as typed claims, with `cnf` (RFC 7800) and
//!   `act` (RFC 8693 §4.1), and OpenID Connect ID-token claims.
//! - [`id_token`]: a relying party's ID-token validation (`aud`, `azp`, `nonce`, `at_hash`).
//! - [`JwksFetcher`]: a JWKS fetched by URL behind an SSRF guard ([`ssrf`]), cached, with
//!   failures cached briefly and concurrent fetches of one URL merged.
//!
//! This crate knows no HTTP server, no database and no private key: it is a public API
//! boundary, and `cargo tree -p tessera-jose` must show neither axum nor sqlx.

pub mod alg;
pub mod claims;
pub mod dpop;
pub mod fetch;
pub mod id_token;
pub mod jwks;
pub mod jws;
pub mod ssrf;
mod token_memo;
pub mod verifier;

pub use alg::Algorithm;
pub use claims::{
    AccessTokenClaims, Actor, Audience, BasicClaims, Claims, Confirmation, IdTokenClaims, Scopes,
};
pub use dpop::{DpopError, DpopProof, ProofRules};
pub use fetch::{Document, FetchError, FetchedJwks, JwksFetcher, fetch_jwks, get_document};
pub use id_token::{IdTokenCheck, IdTokenError, at_hash};
pub use jwks::{Jwks, JwksError, PublicKey};
pub use jws::VerifyError;
pub use token_memo::{Digested, TokenDigest, TokenMemo};
pub use verifier::{Expiry, Typ, Verified, Verifier};

#[cfg(test)]
mod test_keys;
