//! End users of the server's own login, and their Argon2id password hashes (requirements R4.6).

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

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

/// Whether `password` matches a stored PHC hash (constant-time inside argon2).
pub fn verify_password(password: &Secret, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|h| Argon2::default().verify_password(password.expose().as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

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
