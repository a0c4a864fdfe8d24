//! Signing keys: generation, encryption at rest, JWKS publication, rotation with overlap, and
//! compact JWS signing (RFC 7515 §7.1).
//!
//! Keys are parsed once when a [`KeySet`] is loaded and kept as aws-lc-rs key pairs, so that
//! minting a token costs one signature and nothing else (the JWT crates we tried re-parse the
//! private key on every call). Verification elsewhere uses a maintained JOSE crate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::InternalError;

/// The JWS algorithms Tessera signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: required by OIDC for ID tokens.
    RS256,
    /// ECDSA P-256 with SHA-256: the default for access tokens, ~17× cheaper to sign than RS256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as stored: the private key is PKCS#8, sealed under the key-encryption key.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// `nonce || AES-256-GCM(PKCS#8)`, with the `kid` as associated data.
    pub sealed_private_key: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: String,
    pub created_at: i64,
    /// The key signs from this time on; it is published from `created_at`.
    pub activates_at: i64,
    /// Set on rotation: the key stops signing at this time.
    pub signing_until: Option<i64>,
    /// Set on rotation: the key leaves the JWKS at this time, once every token it signed has
    /// expired.
    pub publish_until: Option<i64>,
}

/// The key that encrypts signing keys at rest (requirements R4.6): 32 bytes for AES-256-GCM.
pub struct KeyEncryptionKey(RandomizedNonceKey);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// A new random key, base64url-encoded, for `--dev` and for operators.
    pub fn generate_encoded() -> String {
        URL_SAFE_NO_PAD.encode(crate::secret::random_bytes::<32>())
    }

    /// Parses 32 bytes given as base64url (or standard base64).
    pub fn from_encoded(encoded: &str) -> Result<Self, String> {
        let encoded = encoded.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(encoded))
            .map_err(|_| "must be base64 or base64url".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map(Self)
            .map_err(|_| "is not a usable AES-256 key".to_string())
    }

    fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, InternalError> {
        let mut buf = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| InternalError::new("key encryption", "sealing failed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let cannot = || {
            format!(
                "cannot decrypt signing key `{kid}`: the configured key_encryption_key is not the \
                 one it was stored under"
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(cannot());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| cannot())?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| cannot())?;
        Ok(plain.to_vec())
    }
}

enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl KeyPair {
    fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), InternalError> {
        let fail = |_| InternalError::new("key generation", alg.as_str());
        Ok(match alg {
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(fail)?;
                let der = pair.as_der().map_err(fail)?.as_ref().to_vec();
                (Self::Rsa(pair), der)
            }
            SigningAlg::ES256 => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(fail)?;
                let der = pair.to_pkcs8v1().map_err(fail)?.as_ref().to_vec();
                (Self::Ec(pair), der)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(fail)?;
                let der = pair.to_pkcs8().map_err(fail)?.as_ref().to_vec();
                (Self::Ed(pair), der)
            }
        })
    }

    fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, String> {
        let bad = |e: aws_lc_rs::error::KeyRejected| format!("{alg} key rejected: {e}");
        Ok(match alg {
            SigningAlg::RS256 => Self::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?),
            SigningAlg::ES256 => Self::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?,
            ),
            SigningAlg::EdDSA => Self::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
        })
    }

    /// The public JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
    fn public_jwk(&self, kid: &str, alg: SigningAlg) -> serde_json::Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = match self {
            Self::Rsa(pair) => {
                let public = pair.public_key();
                serde_json::json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Self::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
            Self::Ed(pair) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()),
            }),
        };
        jwk["kid"] = kid.into();
        jwk["alg"] = alg.as_str().into();
        jwk["use"] = "sig".into();
        jwk
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, InternalError> {
        let fail = |_| InternalError::new("signing", "the signature operation failed");
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(fail)?;
                Ok(signature)
            }
            Self::Ec(pair) => {
                Ok(pair.sign(&SystemRandom::new(), message).map_err(fail)?.as_ref().to_vec())
            }
            Self::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Generates a new key of `alg`, sealed under `kek`, that signs from `activates_at` on.
pub fn generate_key(
    alg: SigningAlg,
    kek: &KeyEncryptionKey,
    now: i64,
    activates_at: i64,
) -> Result<StoredKey, InternalError> {
    let (pair, pkcs8) = KeyPair::generate(alg)?;
    let kid = crate::secret::random_id::<12>();
    Ok(StoredKey {
        public_jwk: pair.public_jwk(&kid, alg).to_string(),
        sealed_private_key: kek.seal(&kid, &pkcs8)?,
        kid,
        alg,
        created_at: now,
        activates_at,
        signing_until: None,
        publish_until: None,
    })
}

/// A key ready to sign, and to verify what it signed.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    activates_at: i64,
    signing_until: Option<i64>,
    pair: KeyPair,
    /// The public key for verification, built once from the published JWK.
    verifier: jsonwebtoken::DecodingKey,
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the given `typ` header
    /// (`at+jwt` for RFC 9068 access tokens).
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String, InternalError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = Header { alg: self.alg.as_str(), typ, kid: &self.kid };
        let to_json = |e| InternalError::new("claims serialization", e);
        let header = serde_json::to_vec(&header).map_err(to_json)?;
        let payload = serde_json::to_vec(claims).map_err(to_json)?;
        let mut jws = String::with_capacity(64 + payload.len() * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = self.pair.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

/// Every published key, decrypted and parsed, with the JWKS document pre-rendered.
pub struct KeySet {
    keys: Vec<SigningKey>,
    jwks: String,
    /// Tokens whose signature this set already verified; see [`VerifiedTokens`].
    verified: VerifiedTokens,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| (&k.kid, k.alg))).finish()
    }
}

impl KeySet {
    /// Decrypts and parses the published keys.
    pub fn load(stored: &[StoredKey], kek: &KeyEncryptionKey) -> Result<Self, String> {
        let mut keys = Vec::with_capacity(stored.len());
        let mut jwks = Vec::with_capacity(stored.len());
        for key in stored {
            let pkcs8 = kek.open(&key.kid, &key.sealed_private_key)?;
            let pair = KeyPair::from_pkcs8(key.alg, &pkcs8)?;
            let jwk = pair.public_jwk(&key.kid, key.alg);
            let verifier = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone())
                .map_err(|e| e.to_string())
                .and_then(|jwk| {
                    jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())
                })
                .map_err(|e| format!("public key of `{}` is unusable: {e}", key.kid))?;
            jwks.push(jwk);
            keys.push(SigningKey {
                kid: key.kid.clone(),
                alg: key.alg,
                activates_at: key.activates_at,
                signing_until: key.signing_until,
                pair,
                verifier,
            });
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Ok(Self { keys, jwks, verified: VerifiedTokens::new(VerifiedTokens::CAPACITY) })
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// The key that signs `alg` tokens at `now`: the most recently activated one that is
    /// active and not yet retired.
    pub fn signer(&self, alg: SigningAlg, now: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|k| {
                k.alg == alg && k.activates_at <= now && k.signing_until.is_none_or(|t| now < t)
            })
            .max_by_key(|k| k.activates_at)
    }

    /// Verifies a JWT this server signed: the `kid` must be published, the header's `alg` must
    /// be that key's registered algorithm (never chosen by the token), `typ` must match, `iss`
    /// must be `issuer`, and, with [`Expiry::Enforce`], `exp` must be after `now`. Returns the
    /// claims and `exp` (which `T` must not also declare: the envelope reads it).
    ///
    /// A token string that already passed every check under this set with the same `typ`, and
    /// whose `exp` is still ahead, skips the signature (see `VerifiedTokens`); `iss`, `exp`
    /// and the claims are read and checked again on every call.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        now: i64,
        expiry: Expiry,
    ) -> Result<(T, i64), &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "the token is malformed")?;
        // RFC 9068 §4: `at+jwt` may also be written `application/at+jwt`.
        let header_typ = header.typ.as_deref().unwrap_or_default();
        let typ_ok = header_typ.eq_ignore_ascii_case(typ)
            || header_typ.strip_prefix("application/").is_some_and(|t| t.eq_ignore_ascii_case(typ));
        if !typ_ok {
            return Err("the token has the wrong type");
        }
        let kid = header.kid.as_deref().ok_or("the token names no key")?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or("the token's key is unknown")?;
        if header.alg != key.alg.jsonwebtoken() {
            return Err("the token's algorithm does not match its key");
        }
        let digest = VerifiedTokens::digest(typ, token);
        let cached = self.verified.contains(&digest, now);
        let envelope = if cached {
            // This exact string passed the checks above and the signature under this same key
            // set, for this same `typ`: what is left is what may differ between calls, below.
            Envelope::<T>::from_verified_token(token)?
        } else {
            let mut validation = jsonwebtoken::Validation::new(key.alg.jsonwebtoken());
            // Time is checked below against the injected clock; the audience by the caller.
            validation.validate_exp = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<Envelope<T>>(token, &key.verifier, &validation)
                .map_err(|_| INVALID_SIGNATURE_OR_CLAIMS)?
                .claims
        };
        if envelope.iss != issuer {
            return Err("the token was issued by another issuer");
        }
        if expiry == Expiry::Enforce && envelope.exp <= now {
            return Err("the token has expired");
        }
        if !cached {
            self.verified.insert(digest, envelope.exp, now);
        }
        Ok((envelope.claims, envelope.exp))
    }

    /// When the newest not-retired key of `alg` starts (or started) signing: the age that
    /// scheduled rotation looks at. A successor published ahead is newer, so a rotation in
    /// progress is not repeated.
    pub fn newest_activation(&self, alg: SigningAlg) -> Option<i64> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.signing_until.is_none())
            .map(|k| k.activates_at)
            .max()
    }

    /// Whether `alg` has a key that is not retired (active now or waiting to activate).
    pub fn has_current_key(&self, alg: SigningAlg) -> bool {
        self.keys.iter().any(|k| k.alg == alg && k.signing_until.is_none())
    }
}

/// Whether [`KeySet::verify`] checks `exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Enforce,
    /// For `id_token_hint` at logout, where an expired ID token is still a valid hint
    /// (OIDC RP-Initiated Logout §2).
    Ignore,
}

const INVALID_SIGNATURE_OR_CLAIMS: &str = "the token's signature or claims are invalid";

#[derive(serde::Deserialize)]
struct Envelope<T> {
    iss: String,
    exp: i64,
    #[serde(flatten)]
    claims: T,
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Reads the claims of a token whose signature was already verified, as `jsonwebtoken`
    /// does once it has checked it: the payload is the segment between the last two dots,
    /// base64url without padding, then JSON.
    fn from_verified_token(token: &str) -> Result<Self, &'static str> {
        let (message, _signature) = token.rsplit_once('.').ok_or(INVALID_SIGNATURE_OR_CLAIMS)?;
        let (_header, payload) = message.rsplit_once('.').ok_or(INVALID_SIGNATURE_OR_CLAIMS)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| INVALID_SIGNATURE_OR_CLAIMS)?;
        serde_json::from_slice(&json).map_err(|_| INVALID_SIGNATURE_OR_CLAIMS)
    }
}

/// The token strings a [`KeySet`] has fully verified, so that the next presentation of the
/// same string skips the signature.
///
/// Why: resource servers introspect (RFC 7662) the same access token many times during its
/// life, and the signature is nearly all the cost of a JWT. Measured: ES256 verification alone
/// is 57 µs (`verify_access_token/ES256` before this cache), and introspection of an ES256 JWT
/// ran at ~7.8k/s on one core against ~21k/s for an opaque token (one database lookup).
///
/// What is remembered is only that a string passed the checks that depend on nothing but the
/// string, the expected `typ` and the keys: of RFC 9068 §4's validation, the `typ` header and
/// the signature under the key its `kid` names, with that key's `alg`. What can change between
/// calls is checked on every call: `exp` against `now`, `iss` against the caller's issuer, the
/// claims the caller reads; and revocation stays the caller's lookup, so `active`
/// (RFC 7662 §2.2) always reflects the token's current state.
///
/// - Keyed by SHA-256 over the expected `typ` (length-prefixed) and the whole token, so the
///   set holds no token and a token verified for one `typ` is not a hit for another. Only a
///   success is inserted, and only while its `exp` is still ahead.
/// - The cache lives in the `KeySet`: the server swaps in a freshly loaded set when the
///   published keys change, which drops it on rotation or removal of a key.
/// - Bounded to [`Self::CAPACITY`] entries: when full, entries whose `exp` passed are dropped,
///   and if that frees no room, all are (simple, predictable memory: under 1.5 MiB).
/// - The lock is held for one lookup or insert, never while parsing or verifying.
struct VerifiedTokens {
    /// Digest → the token's `exp`; an entry at or past its `exp` is never served.
    entries: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
    /// How many verifications were served from the cache, for tests.
    #[cfg(test)]
    hits: std::sync::atomic::AtomicUsize,
}

impl VerifiedTokens {
    const CAPACITY: usize = 16_384;

    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            #[cfg(test)]
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// SHA-256 over `len(typ) || typ || token` (the length makes the split unambiguous).
    /// `SecretHash::of` takes one slice, which would mean copying the token into a buffer.
    fn digest(typ: &str, token: &str) -> [u8; 32] {
        use aws_lc_rs::digest::{Context, SHA256};
        let mut context = Context::new(&SHA256);
        context.update(&(typ.len() as u64).to_be_bytes());
        context.update(typ.as_bytes());
        context.update(token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], i64>> {
        // A panic elsewhere cannot leave the map half-updated in a way that matters: at worst
        // an entry is missing, which is a miss.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the token with `digest` was verified before and has not expired at `now`; an
    /// expired entry is dropped (and the token takes the full path).
    fn contains(&self, digest: &[u8; 32], now: i64) -> bool {
        let mut entries = self.lock();
        match entries.get(digest) {
            Some(&exp) if now < exp => {
                #[cfg(test)]
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Some(_) => {
                entries.remove(digest);
                false
            }
            None => false,
        }
    }

    /// Remembers a token that has just passed every check, unless it has expired at `now`.
    fn insert(&self, digest: [u8; 32], exp: i64, now: i64) {
        if exp <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, exp| now < *exp);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, exp);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_encoded(&KeyEncryptionKey::generate_encoded()).unwrap()
    }

    #[test]
    fn r4_6_private_keys_are_sealed_and_bound_to_their_kid() {
        let kek = kek();
        let mut key = generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap();
        assert!(KeySet::load(std::slice::from_ref(&key), &kek).is_ok());
        assert!(KeySet::load(std::slice::from_ref(&key), &self::kek()).is_err());
        key.kid = "other".into();
        assert!(KeySet::load(&[key], &kek).is_err());
    }

    #[test]
    fn jwts_verify_only_with_their_own_key_type_issuer_and_time() {
        let kek = kek();
        let stored: Vec<_> =
            SigningAlg::ALL.iter().map(|a| generate_key(*a, &kek, 0, 0).unwrap()).collect();
        let set = KeySet::load(&stored, &kek).unwrap();
        #[derive(serde::Deserialize)]
        struct Sub {
            sub: String,
        }
        for alg in SigningAlg::ALL {
            let key = set.signer(alg, 1).unwrap();
            let claims = serde_json::json!({"iss": "https://i", "sub": "s", "exp": 100});
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            let (ok, exp): (Sub, i64) =
                set.verify(&jwt, "at+jwt", "https://i", 99, Expiry::Enforce).unwrap();
            assert_eq!((ok.sub.as_str(), exp), ("s", 100));
            assert!(set.verify::<Sub>(&jwt, "at+jwt", "https://i", 100, Expiry::Enforce).is_err());
            assert!(set.verify::<Sub>(&jwt, "at+jwt", "https://i", 100, Expiry::Ignore).is_ok());
            assert!(set.verify::<Sub>(&jwt, "JWT", "https://i", 99, Expiry::Enforce).is_err());
            assert!(
                set.verify::<Sub>(&jwt, "at+jwt", "https://other", 99, Expiry::Enforce).is_err()
            );
            let mut tampered = jwt.clone();
            tampered.insert(jwt.find('.').unwrap() + 2, 'A');
            assert!(
                set.verify::<Sub>(&tampered, "at+jwt", "https://i", 99, Expiry::Enforce).is_err()
            );
        }
        // A token signed by a key this set does not hold is refused.
        let foreign =
            KeySet::load(&[generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap()], &kek).unwrap();
        let jwt = foreign
            .signer(SigningAlg::ES256, 1)
            .unwrap()
            .sign_jwt("at+jwt", &serde_json::json!({"iss":"https://i","exp":100,"sub":"s"}))
            .unwrap();
        assert!(set.verify::<Sub>(&jwt, "at+jwt", "https://i", 99, Expiry::Enforce).is_err());
    }

    /// The claims introspection reads, with `aud` as an array so that equality covers it.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct AccessClaims {
        sub: String,
        client_id: String,
        aud: Vec<String>,
        jti: String,
    }

    const ISS: &str = "https://i";

    fn all_algs_set(kek: &KeyEncryptionKey) -> KeySet {
        let stored: Vec<_> =
            SigningAlg::ALL.iter().map(|a| generate_key(*a, kek, 0, 0).unwrap()).collect();
        KeySet::load(&stored, kek).unwrap()
    }

    /// An `at+jwt` signed by `set`'s `alg` key, expiring at `exp`, told apart by `jti`.
    fn access_token(set: &KeySet, alg: SigningAlg, exp: i64, jti: &str) -> String {
        let claims = serde_json::json!({
            "iss": ISS, "exp": exp, "sub": "s", "client_id": "c", "aud": ["https://api"],
            "jti": jti,
        });
        set.signer(alg, 1).unwrap().sign_jwt("at+jwt", &claims).unwrap()
    }

    fn verify_at(set: &KeySet, jwt: &str, now: i64) -> Result<(AccessClaims, i64), &'static str> {
        set.verify(jwt, "at+jwt", ISS, now, Expiry::Enforce)
    }

    #[test]
    fn a_second_verification_of_the_same_token_is_a_cache_hit_with_the_same_claims() {
        let set = all_algs_set(&kek());
        for (n, alg) in SigningAlg::ALL.into_iter().enumerate() {
            let jwt = access_token(&set, alg, 100, alg.as_str());
            let first = verify_at(&set, &jwt, 10).unwrap();
            assert_eq!((set.verified.len(), set.verified.hits()), (n + 1, n));
            let second = verify_at(&set, &jwt, 20).unwrap();
            assert_eq!((set.verified.len(), set.verified.hits()), (n + 1, n + 1));
            assert_eq!(first, second);
            assert_eq!(second.0.aud, ["https://api"]);
            assert_eq!((second.0.jti.as_str(), second.1), (alg.as_str(), 100));
        }
    }

    #[test]
    fn a_token_cached_while_valid_is_refused_once_expired() {
        let set = all_algs_set(&kek());
        let jwt = access_token(&set, SigningAlg::ES256, 100, "j");
        assert!(verify_at(&set, &jwt, 99).is_ok());
        assert_eq!(set.verified.len(), 1);
        assert_eq!(verify_at(&set, &jwt, 100).unwrap_err(), "the token has expired");
        assert_eq!(verify_at(&set, &jwt, 5000).unwrap_err(), "the token has expired");
        // The expired entry is not served, and dropped.
        assert_eq!((set.verified.len(), set.verified.hits()), (0, 0));
        // Logout's `id_token_hint` still accepts it (through the full path), without caching.
        assert!(set.verify::<AccessClaims>(&jwt, "at+jwt", ISS, 100, Expiry::Ignore).is_ok());
        assert_eq!(set.verified.len(), 0);
    }

    #[test]
    fn a_cached_token_is_refused_for_another_typ_or_issuer() {
        let set = all_algs_set(&kek());
        let jwt = access_token(&set, SigningAlg::ES256, 100, "j");
        assert!(verify_at(&set, &jwt, 10).is_ok());
        let other_typ = set.verify::<AccessClaims>(&jwt, "JWT", ISS, 10, Expiry::Enforce);
        assert_eq!(other_typ.unwrap_err(), "the token has the wrong type");
        let other_iss =
            set.verify::<AccessClaims>(&jwt, "at+jwt", "https://other", 10, Expiry::Enforce);
        assert_eq!(other_iss.unwrap_err(), "the token was issued by another issuer");
        assert!(verify_at(&set, &jwt, 10).is_ok());
        assert_eq!(set.verified.len(), 1);
    }

    #[test]
    fn a_token_with_one_signature_byte_changed_is_refused_and_not_a_cache_hit() {
        let set = all_algs_set(&kek());
        for alg in SigningAlg::ALL {
            let jwt = access_token(&set, alg, 100, "j");
            assert!(verify_at(&set, &jwt, 10).is_ok());
            let (len, hits) = (set.verified.len(), set.verified.hits());
            let at = jwt.rfind('.').unwrap() + 5;
            let mut tampered = jwt.clone().into_bytes();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(
                verify_at(&set, &tampered, 10).unwrap_err(),
                "the token's signature or claims are invalid"
            );
            assert_eq!((set.verified.len(), set.verified.hits()), (len, hits));
        }
    }

    #[test]
    fn a_failed_verification_is_never_cached() {
        let set = all_algs_set(&kek());
        let jwt = access_token(&set, SigningAlg::ES256, 100, "j");
        assert!(
            set.verify::<AccessClaims>(&jwt, "at+jwt", "https://x", 10, Expiry::Enforce).is_err()
        );
        assert!(verify_at(&set, &jwt, 100).is_err());
        assert!(set.verify::<AccessClaims>(&jwt, "JWT", ISS, 10, Expiry::Enforce).is_err());
        assert_eq!(set.verified.len(), 0);
        assert!(verify_at(&set, &jwt, 10).is_ok());
        assert_eq!((set.verified.len(), set.verified.hits()), (1, 0));
    }

    #[test]
    fn the_cache_never_grows_past_its_bound_and_drops_expired_entries_first() {
        let kek = kek();
        assert_eq!(all_algs_set(&kek).verified.capacity, VerifiedTokens::CAPACITY);
        let set = KeySet { verified: VerifiedTokens::new(4), ..all_algs_set(&kek) };
        for i in 0..10 {
            let jwt = access_token(&set, SigningAlg::EdDSA, 1000, &i.to_string());
            assert!(verify_at(&set, &jwt, 1).is_ok());
            assert!(set.verified.len() <= 4);
        }

        let set = KeySet { verified: VerifiedTokens::new(2), ..all_algs_set(&kek) };
        let short = access_token(&set, SigningAlg::EdDSA, 50, "short");
        let long = access_token(&set, SigningAlg::EdDSA, 1000, "long");
        assert!(verify_at(&set, &short, 10).is_ok() && verify_at(&set, &long, 10).is_ok());
        assert_eq!(set.verified.len(), 2);
        // Full: the entry that expired makes room, the live one stays and is still served.
        let third = access_token(&set, SigningAlg::EdDSA, 1000, "third");
        assert!(verify_at(&set, &third, 60).is_ok());
        assert_eq!(set.verified.len(), 2);
        assert!(verify_at(&set, &long, 60).is_ok());
        assert_eq!(set.verified.hits(), 1);
        // Full of live entries: it starts over.
        let fourth = access_token(&set, SigningAlg::EdDSA, 1000, "fourth");
        assert!(verify_at(&set, &fourth, 60).is_ok());
        assert_eq!(set.verified.len(), 1);
    }

    #[test]
    fn kek_must_be_32_bytes() {
        assert!(KeyEncryptionKey::from_encoded("c2hvcnQ").is_err());
        assert!(KeyEncryptionKey::from_encoded("not base64 !").is_err());
    }

    #[test]
    fn r2_5_signer_prefers_the_newest_active_key_and_skips_retired_ones() {
        let kek = kek();
        let mut old = generate_key(SigningAlg::ES256, &kek, 0, 0).unwrap();
        let new = generate_key(SigningAlg::ES256, &kek, 100, 200).unwrap();
        old.signing_until = Some(200);
        old.publish_until = Some(2000);
        let set = KeySet::load(&[old.clone(), new.clone()], &kek).unwrap();
        // Published before it signs: both keys are in the JWKS at t=100.
        assert!(set.jwks_json().contains(&new.kid) && set.jwks_json().contains(&old.kid));
        assert_eq!(set.signer(SigningAlg::ES256, 150).unwrap().kid(), old.kid);
        assert_eq!(set.signer(SigningAlg::ES256, 200).unwrap().kid(), new.kid);
        assert!(set.signer(SigningAlg::RS256, 200).is_none());
    }

    #[test]
    fn rfc7517_jwks_carries_kid_alg_and_use_for_each_algorithm() {
        let kek = kek();
        let stored: Vec<_> =
            SigningAlg::ALL.iter().map(|a| generate_key(*a, &kek, 0, 0).unwrap()).collect();
        let set = KeySet::load(&stored, &kek).unwrap();
        let jwks: serde_json::Value = serde_json::from_str(set.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3);
        for (jwk, key) in keys.iter().zip(&stored) {
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["alg"], key.alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none(), "no private part is published");
        }
    }
}
