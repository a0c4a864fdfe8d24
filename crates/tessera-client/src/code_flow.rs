//! The authorization code flow with PKCE for server-side applications (RFC 6749 §4.1,
//! RFC 7636, RFC 9700 §2.1, OIDC Core §3.1): [`CodeFlow::start`] builds the authorization URL
//! and keeps the verifier, `state` and `nonce` on the server; [`CodeFlow::callback`] consumes
//! them exactly once, checks `iss` (RFC 9207) and `state`, exchanges the code and validates
//! the ID token.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_jose::{IdTokenCheck, IdTokenClaims, IdTokenError, VerifyError};

use crate::client_auth::ClientCredentials;
use crate::clock::{Clock, SystemClock};
use crate::discovery::Metadata;
use crate::error::{CallbackError, Error};
use crate::http::{Http, checked_url};
use crate::issuer_keys::IssuerKeys;
use crate::random;
use crate::tokens::TokenResponse;

/// Random bytes in `state` and `nonce`: 256 bits, beyond RFC 9700's 128-bit floor.
const STATE_BYTES: usize = 32;
/// RFC 7636 §4.1: 32 random bytes make a 43-character verifier.
const VERIFIER_BYTES: usize = 32;
/// How long a started sign-in may take before its state is forgotten.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

/// What the server keeps between the redirect to the authorization server and the callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    code_verifier: String,
    nonce: Option<String>,
    /// Where the user was going, for the application to send them back.
    pub return_to: Option<String>,
    expires_at_ms: i64,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization").field("return_to", &self.return_to).finish()
    }
}

/// Where pending authorizations are kept, by `state`. `take` must remove and return in one
/// step, so that a `state` is consumed exactly once even under concurrent callbacks.
pub trait StateStore: Send + Sync {
    fn put(
        &self,
        state: &str,
        pending: PendingAuthorization,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn take(
        &self,
        state: &str,
    ) -> impl Future<Output = Result<Option<PendingAuthorization>, Error>> + Send;
}

/// A [`StateStore`] in this process's memory (one instance, or sticky sessions). Entries are
/// keyed by the SHA-256 of the state.
#[derive(Default)]
pub struct MemoryStateStore(Mutex<HashMap<[u8; 32], PendingAuthorization>>);

fn state_key(state: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, state.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

impl StateStore for MemoryStateStore {
    async fn put(&self, state: &str, pending: PendingAuthorization) -> Result<(), Error> {
        let now = SystemClock.now_ms();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Abandoned sign-ins are dropped as new ones arrive.
        map.retain(|_, p| p.expires_at_ms > now);
        map.insert(state_key(state), pending);
        Ok(())
    }

    async fn take(&self, state: &str) -> Result<Option<PendingAuthorization>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&state_key(state)))
    }
}

/// The start of a sign-in: send the browser to `url`.
#[derive(Debug)]
pub struct AuthorizationStart {
    pub url: url::Url,
    pub state: String,
}

/// A completed sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub tokens: TokenResponse,
    /// The validated ID token's claims, when `openid` was asked for.
    pub id_token: Option<IdTokenClaims>,
    pub return_to: Option<String>,
}

/// The authorization code flow of one client at one issuer.
pub struct CodeFlow<S> {
    http: Http,
    metadata: Arc<Metadata>,
    credentials: ClientCredentials,
    redirect_uri: String,
    store: S,
    keys: IssuerKeys,
    clock: Arc<dyn Clock>,
}

impl<S: StateStore> CodeFlow<S> {
    /// A flow for `credentials` returning to `redirect_uri`; the metadata must name the
    /// authorization and token endpoints and `jwks_uri`, and advertise S256 if it advertises
    /// PKCE methods at all.
    pub fn new(
        http: Http,
        metadata: Arc<Metadata>,
        credentials: ClientCredentials,
        redirect_uri: impl Into<String>,
        store: S,
    ) -> Result<Self, Error> {
        metadata.endpoint("authorization_endpoint")?;
        metadata.endpoint("token_endpoint")?;
        let jwks_uri = metadata.endpoint("jwks_uri")?.to_owned();
        let methods = &metadata.code_challenge_methods_supported;
        if !methods.is_empty() && !methods.iter().any(|m| m == "S256") {
            return Err(Error::Discovery(format!(
                "{} does not support PKCE S256",
                metadata.issuer
            )));
        }
        Ok(Self {
            keys: IssuerKeys::new(http.clone(), jwks_uri),
            http,
            metadata,
            credentials,
            redirect_uri: redirect_uri.into(),
            store,
            clock: Arc::new(SystemClock),
        })
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Builds the authorization URL (RFC 6749 §4.1.1) with a fresh PKCE S256 challenge
    /// (RFC 7636 §4.2), `state` and — when `scope` has `openid` — `nonce` (OIDC Core
    /// §3.1.2.1), and stores them for [`Self::callback`].
    pub async fn start(
        &self,
        scope: &str,
        return_to: Option<String>,
    ) -> Result<AuthorizationStart, Error> {
        let code_verifier = random::token(VERIFIER_BYTES);
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            code_verifier.as_bytes(),
        ));
        let state = random::token(STATE_BYTES);
        let openid = scope.split(' ').any(|s| s == "openid");
        let nonce = openid.then(|| random::token(STATE_BYTES));
        let mut url = checked_url(
            self.metadata.endpoint("authorization_endpoint")?,
            "the authorization endpoint",
        )?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", self.credentials.client_id())
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", scope)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = &nonce {
                query.append_pair("nonce", nonce);
            }
        }
        let pending = PendingAuthorization {
            code_verifier,
            nonce,
            return_to,
            expires_at_ms: self.clock.now_ms() + PENDING_TTL_MS,
        };
        self.store.put(&state, pending).await?;
        Ok(AuthorizationStart { url, state })
    }

    /// Completes a sign-in from the callback's query string.
    pub async fn callback(&self, query: &str) -> Result<SignedIn, Error> {
        let params: HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let param = |name: &str| params.get(name).map(String::as_str);
        // RFC 6749 §10.12: the state must be one we issued, and is consumed now, whatever
        // follows: a replayed or forged callback finds nothing.
        let state = param("state").ok_or(Error::Callback(CallbackError::UnknownState))?;
        let pending = self
            .store
            .take(state)
            .await?
            .filter(|p| p.expires_at_ms > self.clock.now_ms())
            .ok_or(Error::Callback(CallbackError::UnknownState))?;
        // RFC 9207 §2.4: where the server says it sends `iss`, it must be there and be the
        // issuer; where it is present anyway, it must match (mix-up defence).
        match param("iss") {
            Some(iss) if iss != self.metadata.issuer => {
                return Err(Error::Callback(CallbackError::WrongIssuer));
            }
            None if self.metadata.authorization_response_iss_parameter_supported => {
                return Err(Error::Callback(CallbackError::WrongIssuer));
            }
            _ => {}
        }
        if let Some(error) = param("error") {
            let description = param("error_description").map(|d| format!(": {d}"));
            return Err(Error::Callback(CallbackError::Denied(format!(
                "{error}{}",
                description.unwrap_or_default()
            ))));
        }
        let code = param("code").ok_or(Error::Callback(CallbackError::MissingCode))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        let tokens = self
            .credentials
            .token_request(
                &self.http,
                self.metadata.endpoint("token_endpoint")?,
                &self.metadata.issuer,
                &form,
                self.clock.now(),
            )
            .await?;
        let id_token = match (&pending.nonce, &tokens.id_token) {
            (Some(nonce), Some(id_token)) => {
                Some(self.validate_id_token(id_token, Some(nonce), Some(&tokens)).await?)
            }
            // OIDC Core §3.1.3.3: an `openid` request's token response carries an ID token.
            (Some(_), None) => return Err(Error::InvalidTokenResponse("no id_token")),
            (None, _) => None,
        };
        Ok(SignedIn { tokens, id_token, return_to: pending.return_to })
    }

    /// Validates an ID token of this issuer for this client (OIDC Core §3.1.3.7): signature by
    /// a key of the issuer's JWKS, `iss`, `aud`, `azp`, `exp`, `nonce`, and `at_hash` against
    /// the access token beside it.
    pub async fn validate_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
        tokens: Option<&TokenResponse>,
    ) -> Result<IdTokenClaims, Error> {
        let check = IdTokenCheck {
            issuer: &self.metadata.issuer,
            client_id: self.credentials.client_id(),
            nonce,
            access_token: tokens.map(|t| t.access_token.expose()),
            now: self.clock.now(),
        };
        let verifier = self.keys.verifier(self.clock.as_ref(), false).await?;
        match verifier.verify_id_token(id_token, &check) {
            Ok(verified) => Ok(verified.into_claims()),
            // A key we have not seen: the issuer may have rotated; fetch its keys once more.
            Err(IdTokenError::Verify(VerifyError::UnknownKey)) => {
                let verifier = self.keys.verifier(self.clock.as_ref(), true).await?;
                Ok(verifier.verify_id_token(id_token, &check)?.into_claims())
            }
            Err(e) => Err(e.into()),
        }
    }
}
