//! End users of the server's own login, and their Argon2id password hashes (requirements R4.6).

use argon2::{Argon2, PasswordHash, PasswordHasher};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// A user account.
#[derive(Clone, Debug)]
pub struct User {
    /// The OIDC `sub`: random and opaque, stable for the account, never the email (R2.6).
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// An Argon2id hash in PHC string format.
    pub password_hash: String,
    pub created_at: i64,
    /// A disabled account cannot sign in, and its sessions and grants have ended
    /// (`tessera user disable`).
    pub disabled: bool,
}

impl User {
    /// Builds a new account with a fresh `sub` and an Argon2id hash of `password`.
    /// Hashing takes tens of milliseconds by design: call it off the async executor.
    pub fn new(
        username: &str,
        email: Option<String>,
        name: Option<String>,
        password: &Secret,
        now: i64,
    ) -> Result<Self, String> {
        validate_username(username)?;
        if password.expose().chars().count() < 8 {
            return Err("a password needs at least 8 characters".into());
        }
        if let Some(email) = &email
            && (!email.contains('@') || email.chars().any(char::is_whitespace))
        {
            return Err(format!("`{email}` is not an email address"));
        }
        Ok(Self {
            id: crate::secret::random_id::<16>(),
            username: username.to_owned(),
            email,
            name,
            password_hash: hash_password(password)?,
            created_at: now,
            disabled: false,
        })
    }
}

fn validate_username(username: &str) -> Result<(), String> {
    let len = username.chars().count();
    if len == 0 || len > 64 {
        return Err("a username has 1 to 64 characters".into());
    }
    if username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a username has no spaces or control characters".into());
    }
    Ok(())
}

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &Secret) -> Result<String, String> {
    let salt = crate::secret::random_bytes::<{ argon2::RECOMMENDED_SALT_LEN }>();
    let hash: PasswordHash = Argon2::default()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map_err(|e| format!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// What a sign-in for an unknown username is checked against, so that it costs the same
/// Argon2id work as one for a real account and timing does not reveal which usernames exist.
/// The hash of a random password that was thrown away, made by [`hash_password`]; a test keeps
/// it on the parameters `hash_password` uses. A constant rather than a hash made at start-up:
/// that would add an Argon2id run (tens of milliseconds) to every start.
pub const UNKNOWN_USER_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$lzuCUzbN+mcFR+iHjiZSDQ$oWpQTxFI3iLwpQp+hDxU6Ls2xMdHQHZcwI1wIBrh+C8";

/// Whether `password` matches a stored PHC hash. One-off checks; a server keeps a
/// [`PasswordVerifier`] per thread instead.
pub fn verify_password(password: &Secret, phc: &str) -> bool {
    PasswordVerifier::default().verify(password, phc)
}

/// Verifies passwords against Argon2id PHC strings, keeping the working memory (the memory
/// cost: 19 MiB with the default parameters) from one verification to the next. argon2's own
/// `verify_password` allocates it on every call; freed by a worker thread, glibc hands it back
/// to the kernel, so every sign-in paid ~4,900 page faults and the zeroing of 19 MiB (measured:
/// ~32 ms per check in the server against 16.6 ms with the memory kept).
#[derive(Default)]
pub struct PasswordVerifier {
    memory: Vec<argon2::Block>,
}

impl PasswordVerifier {
    /// Whether `password` matches `phc` (any Argon2 variant, version and parameters the string
    /// names; a malformed string matches nothing). The comparison is constant-time.
    pub fn verify(&mut self, password: &Secret, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else { return false };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
        let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm.as_str()) else {
            return false;
        };
        let version = match hash.version.map(argon2::Version::try_from) {
            None => argon2::Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = argon2::Params::try_from(&hash) else { return false };
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, argon2::Block::new());
        }
        let mut buffer = [0u8; 64];
        let Some(out) = buffer.get_mut(..expected.len()) else { return false };
        let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt,
            out,
            &mut self.memory[..blocks],
        );
        let matched = computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()));
        // A hash with a larger memory cost than the default (an old or hand-made one) does not
        // keep its memory: what is kept stays at the default's size.
        if self.memory.len() > argon2::Params::default().block_count() {
            self.memory = Vec::new();
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_6_a_reused_verifier_checks_each_hash_on_its_own() {
        let mut verifier = PasswordVerifier::default();
        let (a, b) = (Secret::generate(), Secret::generate());
        let (hash_a, hash_b) = (hash_password(&a).unwrap(), hash_password(&b).unwrap());
        for _ in 0..2 {
            assert!(verifier.verify(&a, &hash_a));
            assert!(verifier.verify(&b, &hash_b));
            assert!(!verifier.verify(&a, &hash_b));
            assert!(!verifier.verify(&b, &hash_a));
        }
        // Other parameters and variants named by the string are honoured.
        let small = argon2::Params::new(64, 1, 1, None).unwrap();
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x10, small);
        let salt = crate::secret::random_bytes::<16>();
        let other = argon2i.hash_password_with_salt(a.expose().as_bytes(), &salt).unwrap();
        assert!(verifier.verify(&a, &other.to_string()));
        assert!(!verifier.verify(&b, &other.to_string()));
        assert!(!verifier.verify(&a, "$argon2id$v=19$m=19456,t=2,p=1$bm90YXNhbHQ"));
        assert!(!verifier.verify(&a, ""));
    }

    #[test]
    fn r4_6_unknown_user_hash_costs_what_a_real_hash_costs() {
        let dummy = PasswordHash::new(UNKNOWN_USER_PASSWORD_HASH).unwrap();
        let real_phc = hash_password(&Secret::generate()).unwrap();
        let real = PasswordHash::new(&real_phc).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(
            argon2::Params::try_from(&dummy).unwrap(),
            argon2::Params::try_from(&real).unwrap()
        );
        assert!(!verify_password(&Secret::generate(), UNKNOWN_USER_PASSWORD_HASH));
    }

    #[test]
    fn r4_6_passwords_are_hashed_with_argon2id() {
        let pw = Secret::from_string("correct horse".into());
        let user = User::new("alice", None, None, &pw, 0).unwrap();
        assert!(user.password_hash.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &user.password_hash));
        assert!(!verify_password(&Secret::from_string("wrong horse".into()), &user.password_hash));
        assert!(!user.id.contains("alice"));
    }

    #[test]
    fn short_passwords_and_bad_usernames_are_refused() {
        let pw = Secret::from_string("short".into());
        assert!(User::new("alice", None, None, &pw, 0).is_err());
        let pw = Secret::from_string("long enough".into());
        assert!(User::new("al ice", None, None, &pw, 0).is_err());
        assert!(User::new("bob", Some("not-an-email".into()), None, &pw, 0).is_err());
    }
}
