//! [`Verifier`]: tokens of one issuer checked against its public keys.

use crate::claims::{AccessTokenClaims, Claims};
use crate::jwks::Jwks;
use crate::jws::{self, VerifyError};
use crate::token_memo::{Digested, TokenDigest, TokenMemo};

pub use crate::jws::Typ;

/// Whether [`Verifier::verify`] checks `exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Enforce,
    /// For `id_token_hint` at logout, where an expired ID token is still a valid hint
    /// (OIDC RP-Initiated Logout §2), and for revocation, which accepts any token it issued.
    Ignore,
}

/// Claims of a token that passed [`Verifier::verify`]: only the verifier makes one.
#[derive(Debug)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub fn claims(&self) -> &T {
        &self.0
    }

    pub fn into_claims(self) -> T {
        self.0
    }
}

/// Verifies the tokens of an issuer with its public keys.
pub struct Verifier {
    jwks: Jwks,
    /// `None` where every verification must be measured in full (`tessera bench`).
    verified: Option<TokenMemo<()>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("jwks", &self.jwks).finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier that remembers the tokens it verified (see [`TokenMemo`]).
    pub fn new(jwks: Jwks) -> Self {
        Self { jwks, verified: Some(TokenMemo::new(TokenMemo::<()>::CAPACITY)) }
    }

    /// A verifier that checks every signature, every time.
    pub fn without_cache(jwks: Jwks) -> Self {
        Self { jwks, verified: None }
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Verifies a JWT of `issuer`: the `kid` must name a key of the set, the header's `alg`
    /// must be that key's algorithm (never chosen by the token), no `crit`, `typ` as
    /// required, the signature, `iss` = `issuer`, `nbf` not after `now` and, with
    /// [`Expiry::Enforce`], `exp` after `now`.
    ///
    /// A token string that already passed every check under this verifier with the same
    /// `typ`, and whose `exp` is still ahead, skips the signature; the claims are read and
    /// checked again on every call.
    pub fn verify<T: Claims>(
        &self,
        token: &str,
        typ: Typ,
        issuer: &str,
        now: i64,
        expiry: Expiry,
    ) -> Result<Verified<T>, VerifyError> {
        let digest = self.verified.as_ref().map(|_| Digested::new(typ, token));
        self.check(token, typ, digest.as_ref().map(Digested::digest), issuer, now, expiry)
    }

    /// [`Self::verify`] of a token whose memo digest the caller has already made (for a memo
    /// of its own): the same checks, without hashing the token a second time.
    pub fn verify_digested<T: Claims>(
        &self,
        token: &Digested<'_>,
        issuer: &str,
        now: i64,
        expiry: Expiry,
    ) -> Result<Verified<T>, VerifyError> {
        self.check(token.token(), token.typ(), Some(token.digest()), issuer, now, expiry)
    }

    fn check<T: Claims>(
        &self,
        token: &str,
        typ: Typ,
        digest: Option<&TokenDigest>,
        issuer: &str,
        now: i64,
        expiry: Expiry,
    ) -> Result<Verified<T>, VerifyError> {
        let parts = jws::split(token)?;
        let key = jws::check_header(&self.jwks, &parts, typ)?;
        let memo = self.verified.as_ref().zip(digest);
        let cached = memo.is_some_and(|(verified, digest)| verified.get(digest, now).is_some());
        if !cached {
            jws::check_signature(key, &parts)?;
        }
        let claims: T = jws::decode_payload(&parts)?;
        if claims.iss() != issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if expiry == Expiry::Enforce && claims.exp() <= now {
            return Err(VerifyError::Expired);
        }
        if claims.nbf().is_some_and(|nbf| nbf > now) {
            return Err(VerifyError::NotYetValid);
        }
        if !cached && let Some((verified, digest)) = memo {
            verified.insert(*digest, claims.exp(), (), now);
        }
        Ok(Verified(claims))
    }

    /// Verifies an RFC 9068 access token (§4): `typ` `at+jwt` and the checks of
    /// [`Self::verify`], with the profile's claims typed. The audience is the caller's to
    /// check: an authorization server introspects tokens for every audience.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Result<Verified<AccessTokenClaims>, VerifyError> {
        self.verify(token, Typ::ACCESS_TOKEN, issuer, now, Expiry::Enforce)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::claims::BasicClaims;
    use crate::test_keys::TestKey;

    const ISS: &str = "https://i";

    struct Fixture {
        keys: Vec<TestKey>,
        verifier: Verifier,
    }

    impl Fixture {
        fn new() -> Self {
            Self::with_capacity(TokenMemo::<()>::CAPACITY)
        }

        fn with_capacity(capacity: usize) -> Self {
            let keys = TestKey::all();
            let jwks = Jwks::parse(&TestKey::jwks(&keys.iter().collect::<Vec<_>>())).unwrap();
            Self { keys, verifier: Verifier { jwks, verified: Some(TokenMemo::new(capacity)) } }
        }

        fn cache(&self) -> &TokenMemo<()> {
            self.verifier.verified.as_ref().unwrap()
        }

        /// An `at+jwt` signed by key `n`, expiring at `exp`, told apart by `jti`.
        fn access_token(&self, n: usize, exp: i64, jti: &str) -> String {
            let claims = json!({
                "iss": ISS, "exp": exp, "iat": 1, "sub": "s", "client_id": "c",
                "aud": ["https://api"], "jti": jti, "scope": "a b",
            });
            self.keys[n].sign("at+jwt", &claims)
        }

        fn verify_at(&self, jwt: &str, now: i64) -> Result<AccessTokenClaims, VerifyError> {
            self.verifier.verify_access_token(jwt, ISS, now).map(Verified::into_claims)
        }
    }

    #[test]
    fn rfc9068_4_access_tokens_verify_only_with_their_type_issuer_and_time() {
        let f = Fixture::new();
        for n in 0..3 {
            let jwt = f.access_token(n, 100, "j");
            let claims = f.verify_at(&jwt, 99).unwrap();
            assert_eq!((claims.sub.as_str(), claims.exp), ("s", 100));
            assert_eq!(claims.scope.iter().collect::<Vec<_>>(), ["a", "b"]);
            assert_eq!(f.verify_at(&jwt, 100).unwrap_err(), VerifyError::Expired);
            let v = &f.verifier;
            assert!(
                v.verify::<BasicClaims>(&jwt, Typ::ACCESS_TOKEN, ISS, 100, Expiry::Ignore).is_ok()
            );
            assert_eq!(
                v.verify::<BasicClaims>(&jwt, Typ::Exactly("JWT"), ISS, 99, Expiry::Enforce)
                    .unwrap_err(),
                VerifyError::WrongType
            );
            assert_eq!(
                v.verify_access_token(&jwt, "https://other", 99).unwrap_err(),
                VerifyError::WrongIssuer
            );
        }
        // A token signed by a key the set does not hold is refused.
        let stranger = TestKey::es256("ec");
        let jwt = stranger.sign("at+jwt", &json!({"iss": ISS, "exp": 100}));
        assert_eq!(f.verify_at(&jwt, 10).unwrap_err(), VerifyError::InvalidSignatureOrClaims);
    }

    #[test]
    fn rfc7519_4_1_5_a_token_is_refused_before_its_nbf() {
        let f = Fixture::new();
        let claims = json!({"iss": ISS, "exp": 100, "nbf": 50});
        let jwt = f.keys[1].sign("JWT", &claims);
        let v = &f.verifier;
        let at = |now| v.verify::<BasicClaims>(&jwt, Typ::Any, ISS, now, Expiry::Enforce);
        assert_eq!(at(49).unwrap_err(), VerifyError::NotYetValid);
        assert!(at(50).is_ok());
    }

    #[test]
    fn a_second_verification_of_the_same_token_is_a_cache_hit_with_the_same_claims() {
        let f = Fixture::new();
        for n in 0..3 {
            let jwt = f.access_token(n, 100, &n.to_string());
            let first = f.verify_at(&jwt, 10).unwrap();
            assert_eq!((f.cache().len(), f.cache().hits()), (n + 1, n));
            let second = f.verify_at(&jwt, 20).unwrap();
            assert_eq!((f.cache().len(), f.cache().hits()), (n + 1, n + 1));
            assert_eq!(first, second);
            assert_eq!(second.aud.as_slice(), ["https://api"]);
        }
    }

    #[test]
    fn a_token_cached_while_valid_is_refused_once_expired() {
        let f = Fixture::new();
        let jwt = f.access_token(1, 100, "j");
        assert!(f.verify_at(&jwt, 99).is_ok());
        assert_eq!(f.cache().len(), 1);
        assert_eq!(f.verify_at(&jwt, 100).unwrap_err(), VerifyError::Expired);
        assert_eq!(f.verify_at(&jwt, 5000).unwrap_err(), VerifyError::Expired);
        // The expired entry is not served, and dropped.
        assert_eq!((f.cache().len(), f.cache().hits()), (0, 0));
        // Logout's `id_token_hint` still accepts it (through the full path), without caching.
        let v = &f.verifier;
        assert!(v.verify::<BasicClaims>(&jwt, Typ::ACCESS_TOKEN, ISS, 100, Expiry::Ignore).is_ok());
        assert_eq!(f.cache().len(), 0);
    }

    #[test]
    fn a_cached_token_is_refused_for_another_typ_or_issuer() {
        let f = Fixture::new();
        let jwt = f.access_token(1, 100, "j");
        assert!(f.verify_at(&jwt, 10).is_ok());
        let v = &f.verifier;
        let other_typ =
            v.verify::<BasicClaims>(&jwt, Typ::Exactly("JWT"), ISS, 10, Expiry::Enforce);
        assert_eq!(other_typ.unwrap_err(), VerifyError::WrongType);
        assert_eq!(
            v.verify_access_token(&jwt, "https://other", 10).unwrap_err(),
            VerifyError::WrongIssuer
        );
        assert!(f.verify_at(&jwt, 10).is_ok());
        assert_eq!(f.cache().len(), 1);
    }

    #[test]
    fn a_token_with_one_signature_byte_changed_is_refused_and_not_a_cache_hit() {
        let f = Fixture::new();
        for n in 0..3 {
            let jwt = f.access_token(n, 100, "j");
            assert!(f.verify_at(&jwt, 10).is_ok());
            let (len, hits) = (f.cache().len(), f.cache().hits());
            let at = jwt.rfind('.').unwrap() + 5;
            let mut tampered = jwt.clone().into_bytes();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(
                f.verify_at(&tampered, 10).unwrap_err(),
                VerifyError::InvalidSignatureOrClaims
            );
            assert_eq!((f.cache().len(), f.cache().hits()), (len, hits));
        }
    }

    #[test]
    fn a_failed_verification_is_never_cached() {
        let f = Fixture::new();
        let jwt = f.access_token(1, 100, "j");
        let v = &f.verifier;
        assert!(v.verify_access_token(&jwt, "https://x", 10).is_err());
        assert!(f.verify_at(&jwt, 100).is_err());
        assert!(
            v.verify::<BasicClaims>(&jwt, Typ::Exactly("JWT"), ISS, 10, Expiry::Enforce).is_err()
        );
        assert_eq!(f.cache().len(), 0);
        assert!(f.verify_at(&jwt, 10).is_ok());
        assert_eq!((f.cache().len(), f.cache().hits()), (1, 0));
    }

    #[test]
    fn the_cache_never_grows_past_its_bound_and_drops_expired_entries_first() {
        assert_eq!(Fixture::new().cache().capacity(), TokenMemo::<()>::CAPACITY);
        let f = Fixture::with_capacity(4);
        for i in 0..10 {
            let jwt = f.access_token(2, 1000, &i.to_string());
            assert!(f.verify_at(&jwt, 1).is_ok());
            assert!(f.cache().len() <= 4);
        }

        let f = Fixture::with_capacity(2);
        let short = f.access_token(2, 50, "short");
        let long = f.access_token(2, 1000, "long");
        assert!(f.verify_at(&short, 10).is_ok() && f.verify_at(&long, 10).is_ok());
        assert_eq!(f.cache().len(), 2);
        // Full: the entry that expired makes room, the live one stays and is still served.
        let third = f.access_token(2, 1000, "third");
        assert!(f.verify_at(&third, 60).is_ok());
        assert_eq!(f.cache().len(), 2);
        assert!(f.verify_at(&long, 60).is_ok());
        assert_eq!(f.cache().hits(), 1);
        // Full of live entries: it starts over.
        let fourth = f.access_token(2, 1000, "fourth");
        assert!(f.verify_at(&fourth, 60).is_ok());
        assert_eq!(f.cache().len(), 1);
    }

    #[test]
    fn a_verifier_without_cache_checks_every_signature() {
        let keys = TestKey::all();
        let jwks = Jwks::parse(&TestKey::jwks(&keys.iter().collect::<Vec<_>>())).unwrap();
        let verifier = Verifier::without_cache(jwks);
        let jwt = keys[0].sign("JWT", &json!({"iss": ISS, "exp": 100, "x": 1}));
        for _ in 0..2 {
            let claims = verifier.verify::<BasicClaims>(&jwt, Typ::Any, ISS, 10, Expiry::Enforce);
            assert_eq!(claims.unwrap().claims().exp, 100);
        }
    }
}
