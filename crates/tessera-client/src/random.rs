//! Unguessable values: `state`, `nonce`, PKCE verifiers, assertion `jti`s.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes from the system's CSPRNG, base64url without padding.
pub(crate) fn token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // aws-lc-rs's system random fails only if the OS has no randomness at all, where no
    // secure value can be made: refusing to continue is the only safe answer.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator is available");
    URL_SAFE_NO_PAD.encode(&buf)
}
