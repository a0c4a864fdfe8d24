//! The storage traits the core needs: one small trait per aggregate (ORY fosite's habit), each
//! implemented for SQLite and PostgreSQL by `tessera-store`. Times are unix seconds.

use std::future::Future;

use crate::client::{Client, InitialAccessToken};
use crate::client_id::ClientId;
use crate::keys::StoredKey;
use crate::pkce::CodeChallenge;
use crate::scope::ScopeSet;
use crate::secret::SecretHash;
use crate::user::User;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same identity exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database failed or returned something the core cannot read.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached right now: no connection could be had within the
    /// pool's acquire bound, the server refused or dropped the connection, or it is shutting
    /// down. Nothing was decided; the same request may succeed once it is back.
    #[error("the database is unreachable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        let unavailable = matches!(e, StoreError::Unavailable(_));
        let cause = crate::error::InternalError::new("storage", e);
        if unavailable {
            crate::error::Error::StoreUnavailable(cause)
        } else {
            crate::error::Error::Internal(cause)
        }
    }
}

/// Registered clients.
pub trait ClientStore: Send + Sync {
    fn create_client(&self, client: &Client)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_client(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<Client>, StoreError>> + Send;
    /// All clients, ordered by client_id.
    fn list_clients(&self) -> impl Future<Output = Result<Vec<Client>, StoreError>> + Send;
    /// Whether a client was deleted.
    fn delete_client(&self, id: &ClientId)
    -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces the metadata of a dynamically registered client (RFC 7592 §2.2); whether one
    /// was updated. Its client_id, creation time and registration token stay.
    fn update_dynamic_client(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records that a dynamic client completed a flow at `now` (it is not stale).
    fn record_client_use(
        &self,
        id: &ClientId,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes dynamic clients last used before `unused_before`, and those that never
    /// completed a flow and were registered before `unfinished_before`; how many.
    fn prune_dynamic_clients(
        &self,
        unused_before: i64,
        unfinished_before: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Initial access tokens (RFC 7591 §3): what `/register` requires under the
/// `initial_access_token` policy. Stored as hashes.
pub trait InitialAccessTokenStore: Send + Sync {
    fn create_initial_access_token(
        &self,
        token: &InitialAccessToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether `hash` is a live token; a single-use one is spent by this call, in one
    /// conditional write, so two registrations cannot both use it.
    fn spend_initial_access_token(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// User accounts.
pub trait UserStore: Send + Sync {
    fn create_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_user_by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// The user whose `sub` is `id`.
    fn find_user_by_id(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// All users, ordered by username.
    fn list_users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
    /// Deletes a user and, in the same transaction, ends everything they had authorized:
    /// every grant is revoked (its refresh tokens stop working, its access tokens' `jti`s are
    /// reported revoked), approved device authorizations not yet redeemed become denied, and
    /// their sessions and consents are deleted. Whether a user was deleted.
    fn delete_user(
        &self,
        username: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Disables a user (ending everything as [`UserStore::delete_user`] does, in one
    /// transaction, but keeping the account) or enables them again (which restores nothing).
    /// Whether the user exists.
    fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Signing keys, private parts encrypted at rest.
pub trait SigningKeyStore: Send + Sync {
    /// All keys that are still published (`publish_until` unset or later than `now`), oldest
    /// first.
    fn published_keys(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;
    /// Adds a key and, in the same transaction, retires every current key of the same
    /// algorithm: they stop signing at `new.activates_at` and stay published until
    /// `publish_until`. On first start there is nothing to retire.
    fn add_key_retiring_others(
        &self,
        new: &StoredKey,
        publish_until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes keys no longer published at `now`; returns how many.
    fn prune_keys(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A grant: one user's authorization of one client, from which a code, a refresh-token family
/// and access tokens descend. Revoking it revokes all of them (RFC 6749 §4.1.2, §10.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: ClientId,
    /// The user's `sub`.
    pub user_id: String,
    pub scope: ScopeSet,
    /// When the user authenticated (OIDC `auth_time`).
    pub auth_time: i64,
    /// The login session's public id (OIDC `sid`).
    pub sid: Option<String>,
    /// The resource servers its access tokens are for (RFC 8707); empty: the client's default.
    pub audience: Vec<String>,
    pub created_at: i64,
    /// Absolute end of the refresh-token family (requirements R1.4).
    pub expires_at: i64,
    /// RFC 9449 §5: the DPoP key (RFC 7638 thumbprint) the family's refresh tokens are bound
    /// to, for a public client that proved one; a refresh must prove the same key.
    pub dpop_jkt: Option<String>,
}

/// An authorization code as stored: only its hash, and what it is bound to (R1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: SecretHash,
    pub grant_id: String,
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub code_challenge: CodeChallenge,
    pub nonce: Option<String>,
    pub expires_at: i64,
}

/// The outcome of redeeming a code; `P` is the proof the caller's check returned, `R` its
/// reason for refusing.
#[derive(Debug)]
pub enum CodeRedemption<P, R> {
    /// First use by its client, and the check passed: the code is now spent. The grant and
    /// the check's proof are returned with it.
    Redeemed { code: Box<AuthorizationCode>, grant: Grant, proof: P },
    /// Current and presented by its client, but the check refused it (another redirect URI,
    /// a wrong PKCE verifier), for the reason it gave: nothing was spent.
    Refused(R),
    /// The code was spent before and is presented again by its client: a replay (RFC 6749
    /// §4.1.2).
    AlreadyRedeemed { grant_id: String },
    /// The code exists but was issued to another client (RFC 6749 §4.1.3): nothing was
    /// spent, and nothing is revoked (§10.5: only the code's client may cause that).
    IssuedToAnotherClient,
    /// No such code, or it expired, or its grant was revoked, or its user is gone.
    Unknown,
}

/// The outcome of rotating a refresh token; `A` is what the caller's check returned on
/// accepting the grant, `R` its reason for refusing.
#[derive(Debug)]
pub enum RefreshRotation<A, R> {
    /// The presented token is now spent and the new one is stored.
    Rotated { grant: Grant, accepted: A },
    /// The presented token was rotated before, longer ago than the client's grace window:
    /// reuse (requirements R1.4).
    Reused { grant_id: String },
    /// Unknown, expired, of a revoked or expired grant, or issued to another client.
    Invalid,
    /// Current and valid, but the caller's check refused the grant (a widened scope), for the
    /// reason it gave; nothing was changed.
    Refused(R),
}

/// The arguments of [`GrantStore::rotate_refresh_token`].
#[derive(Clone, Copy, Debug)]
pub struct RotationRequest<'a> {
    pub old: &'a SecretHash,
    pub new: &'a SecretHash,
    pub client_id: &'a ClientId,
    pub now: i64,
    pub idle_ttl: i64,
    /// The access token issued with the new refresh token, recorded under the grant in the
    /// same transaction (as [`GrantStore::record_access_token`] would) so that revoking the
    /// grant revokes it.
    pub access_token_jti: &'a str,
    pub access_token_expires_at: i64,
    /// The client's refresh-token grace window in seconds (0: none): within it after its
    /// rotation, `old` presented again by its client rotates again instead of being `Reused`.
    pub grace_seconds: i64,
    /// RFC 8705 §4: `x5t#S256` of the certificate the request presented, if any. A refresh
    /// token bound to a certificate rotates only for that certificate; with another or none
    /// it is `Invalid` and stays unspent.
    pub certificate: Option<&'a str>,
}

/// Authorization codes (single use, atomically).
pub trait AuthorizationCodeStore: Send + Sync {
    /// Stores a new grant and its code in one transaction.
    fn insert_grant_with_code(
        &self,
        grant: &Grant,
        code: &AuthorizationCode,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Spends a code in one conditional write that also requires it to be issued to
    /// `client_id`, then runs `check` on it inside the same transaction: `Ok(proof)` keeps
    /// the redemption, `Err(reason)` undoes it (`Refused(reason)`). Of concurrent calls for one
    /// code, exactly one gets `Redeemed` (design invariant 1); a call by another client spends
    /// nothing. A code whose user no longer exists or is disabled is `Unknown`. `check` owns
    /// what it needs (`'static`) and returns its verdict rather than writing to the caller's
    /// locals, so that a store may run the whole redemption on another thread (SQLite's
    /// writer thread).
    fn redeem_code<P: Send + 'static, R: Send + 'static>(
        &self,
        code_hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
        check: impl FnOnce(&AuthorizationCode) -> Result<P, R> + Send + 'static,
    ) -> impl Future<Output = Result<CodeRedemption<P, R>, StoreError>> + Send;
}

/// Grants, their refresh-token families and the access tokens issued from them.
pub trait GrantStore: Send + Sync {
    /// Stores a grant that has no code (the device grant creates it when redeemed).
    fn insert_grant(&self, grant: &Grant) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores a refresh token of a grant, valid until `expires_at` (idle lifetime), bound to
    /// the certificate with thumbprint `certificate` if given (RFC 8705 §4); its rotations
    /// inherit the binding.
    fn insert_refresh_token(
        &self,
        token_hash: &SecretHash,
        grant_id: &str,
        now: i64,
        expires_at: i64,
        certificate: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Spends `old` and stores `new` in one transaction, if `old` is current, unexpired, of a
    /// live grant issued to `client_id` whose user exists and is enabled, and `accept`
    /// approves the grant; otherwise changes
    /// nothing. Of concurrent calls for one token exactly one rotates (design invariant 1).
    /// The new token expires at `min(now + idle_ttl, grant.expires_at)`. `accept` returns
    /// `Ok(value)` to rotate (the value comes back in `Rotated`) or `Err(reason)` to change
    /// nothing (`Refused(reason)`); it is `'static` for the same reason as
    /// [`AuthorizationCodeStore::redeem_code`]'s check.
    fn rotate_refresh_token<A: Send + 'static, R: Send + 'static>(
        &self,
        rotation: RotationRequest<'_>,
        accept: impl FnOnce(&Grant) -> Result<A, R> + Send + 'static,
    ) -> impl Future<Output = Result<RefreshRotation<A, R>, StoreError>> + Send;
    /// Records an access token's `jti` so that revoking its grant revokes it.
    fn record_access_token(
        &self,
        grant_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records `jti` under the grant that the access token `subject_jti` is recorded under, if
    /// any (one statement): a token obtained by exchanging it (RFC 8693) is revoked with that
    /// grant, and so ends with its user. Returns whether there was such a grant.
    fn record_derived_access_token(
        &self,
        subject_jti: &str,
        jti: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Revokes a grant: its refresh tokens stop working and its access tokens are reported
    /// revoked.
    fn revoke_grant(
        &self,
        grant_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The `jti`s and expiry times of the access tokens recorded under a grant that are still
    /// unexpired at `now`: what a revocation of the grant publishes to resource servers.
    fn grant_access_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// Binds the refresh tokens of a grant to the DPoP key `jkt` (RFC 9449 §5), unless they
    /// are bound already (the first binding stays).
    fn bind_refresh_tokens_to_dpop_key(
        &self,
        grant_id: &str,
        jkt: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The `jti`s and expiry times of the unexpired access tokens recorded under the revoked
    /// grants of user `user_id` (of `client_id` only, when given): what deleting or disabling
    /// a user, or withdrawing a consent, publishes to resource servers.
    fn revoked_user_access_tokens(
        &self,
        user_id: &str,
        client_id: Option<&ClientId>,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// Whether the access token `jti` was revoked: on its own (the denylist of
    /// [`TokenStore::revoke_access_token`]) or with its grant.
    fn is_access_token_revoked(
        &self,
        jti: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A remembered consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub user_id: String,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub granted_at: i64,
}

/// Remembered consents (requirements R2.1), one per user + client.
pub trait ConsentStore: Send + Sync {
    fn find_consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
    ) -> impl Future<Output = Result<Option<Consent>, StoreError>> + Send;
    /// Stores or replaces the consent of a user for a client.
    fn save_consent(
        &self,
        consent: &Consent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user's consents, ordered by client_id.
    fn list_consents(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<Consent>, StoreError>> + Send;
    /// Deletes the consent and revokes every grant of that user to that client, in one
    /// transaction. Returns whether a consent existed.
    fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A login session of the server's own pages. The cookie holds the secret whose hash is `id_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_hash: SecretHash,
    /// The public session id, used as OIDC `sid`.
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// Login sessions.
pub trait SessionStore: Send + Sync {
    fn create_session(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The session, if it exists, has not expired at `now`, and its user exists and is
    /// enabled.
    fn find_session(
        &self,
        id_hash: &SecretHash,
        now: i64,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;
    fn delete_session(
        &self,
        id_hash: &SecretHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records that the session's sign-in was made for the authorization request whose hash
    /// is `request_hash` (replacing any earlier one), so that the consent that follows may
    /// count that sign-in for that request (OIDC Core §3.1.2.1 `prompt=login`, `max_age`).
    fn record_sign_in_for(
        &self,
        id_hash: &SecretHash,
        request_hash: &SecretHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether the session's sign-in was made for `request_hash`; the record is spent in the
    /// same conditional write, so it counts for one consent only.
    fn take_sign_in_for(
        &self,
        id_hash: &SecretHash,
        request_hash: &SecretHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// An opaque (reference) access token as stored: its hash and what it stands for (R3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueAccessToken {
    pub token_hash: SecretHash,
    pub jti: String,
    pub client_id: ClientId,
    pub sub: String,
    pub scope: ScopeSet,
    pub audience: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// RFC 8693 §4.1: the delegation chain, for a token issued by a token exchange.
    pub act: Option<tessera_jose::Actor>,
}

/// A refresh token as stored, with its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub grant: Grant,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Spent by a rotation.
    pub rotated: bool,
    /// Its grant was revoked.
    pub grant_revoked: bool,
}

/// Token lookups for introspection and revocation, the access-token denylist, assertion
/// replay records, and pruning.
pub trait TokenStore: Send + Sync {
    fn insert_opaque_access_token(
        &self,
        token: &OpaqueAccessToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The opaque access token with this hash, whatever its state (expired, revoked).
    fn find_opaque_access_token(
        &self,
        token_hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<OpaqueAccessToken>, StoreError>> + Send;
    /// The opaque access token with this hash if it is live at `now`: not expired, not on the
    /// denylist, not recorded under a revoked grant. Introspection's one query per opaque
    /// token.
    fn find_live_opaque_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> impl Future<Output = Result<Option<OpaqueAccessToken>, StoreError>> + Send;
    /// The refresh token with this hash, whatever its state.
    fn find_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<RefreshTokenRecord>, StoreError>> + Send;
    /// Puts an access token's `jti` on the denylist until `expires_at` (RFC 7009 §2.1); JWTs
    /// are not stored, so this is how a revoked one is recognised. Idempotent.
    fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a client assertion's `jti` until `expires_at`; `false` if it was seen before
    /// (a replay, RFC 7523 §3 item 7).
    fn record_assertion(
        &self,
        client_id: &ClientId,
        jti: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes what has expired by `now`: codes, refresh tokens and grants past their
    /// lifetime, opaque tokens, access-token records, denylist entries, assertion records and
    /// sessions. Returns how many rows went.
    fn prune_expired(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// One audit event (requirements R4.4): never a token value.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub at: i64,
    /// What happened: `token_issued`, `token_refused`, `token_revoked`, `login`, `login_failed`,
    /// `consent_granted`, `consent_denied`, `code_issued`, …
    pub event: String,
    pub outcome: String,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub grant_type: Option<String>,
    pub jti: Option<String>,
    pub reason: Option<String>,
    pub source: Option<String>,
    /// RFC 8693 §4.1: who acted for `sub` (a delegated token exchange).
    pub actor: Option<String>,
}

/// A pushed authorization request (RFC 9126 §2), stored by the hash of its `request_uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    pub request_uri_hash: SecretHash,
    pub client_id: ClientId,
    /// The authorization request's parameters, form-encoded, without client credentials.
    pub query: String,
    pub expires_at: i64,
}

/// Pushed authorization requests (RFC 9126).
pub trait PushedRequestStore: Send + Sync {
    fn insert_pushed_request(
        &self,
        request: &PushedRequest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes and returns the query of the request whose `request_uri` hashes to `hash`, if
    /// it was pushed by `client_id` and has not expired, in one statement: a `request_uri` is
    /// used once (RFC 9126 §4), and of concurrent uses exactly one gets it.
    fn take_pushed_request(
        &self,
        hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// The optional audit table, for `tessera audit tail`.
pub trait AuditStore: Send + Sync {
    fn record_audit_event(
        &self,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The `limit` most recent events, oldest first.
    fn recent_audit_events(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send;
}

/// The user's approval of a device authorization: who approved it, when they signed in, and
/// in which session (OIDC `sid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceApproval {
    pub user_id: String,
    pub auth_time: i64,
    pub sid: String,
}

/// Where a device authorization stands (RFC 8628 §3.4–3.5). Each state holds what it has:
/// there is no approval without its user, and no redemption without its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Waiting for the user.
    Pending,
    /// The user approved; the device may redeem it once.
    Approved(DeviceApproval),
    /// The user denied (or the approving user was deleted or disabled before redemption).
    Denied,
    /// Tokens were issued for it, under the grant `grant_id`.
    Redeemed { approval: DeviceApproval, grant_id: String },
}

impl DeviceState {
    /// The state's name, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved(_) => "approved",
            Self::Denied => "denied",
            Self::Redeemed { .. } => "redeemed",
        }
    }
}

/// A device authorization (RFC 8628 §3.2) as stored: both codes only as hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code_hash: SecretHash,
    /// The hash of the normalized user code, so that stored codes cannot be read back.
    pub user_code_hash: SecretHash,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub audience: Vec<String>,
    pub state: DeviceState,
    /// The polling interval in seconds; `slow_down` adds 5 (RFC 8628 §3.5).
    pub interval: i64,
    pub last_polled_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a poll of the token endpoint finds (RFC 8628 §3.5), decided atomically.
#[derive(Debug)]
pub enum DevicePoll {
    /// Unknown device code, or another client's.
    Unknown,
    Expired,
    /// Polled sooner than the interval: the interval is now 5 s longer.
    SlowDown,
    Pending,
    Denied,
    /// Approved and now redeemed by this poll, the only poll that gets it (invariant 1): the
    /// authorization as it is stored now, and the grant stored with the redemption.
    Approved {
        authorization: Box<DeviceAuthorization>,
        grant: Grant,
    },
    /// Redeemed by an earlier poll, under the grant `grant_id`: a replay.
    AlreadyRedeemed {
        grant_id: String,
    },
}

/// Device authorizations.
pub trait DeviceStore: Send + Sync {
    fn insert_device_authorization(
        &self,
        authorization: &DeviceAuthorization,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The pending, unexpired authorization with this user-code hash.
    fn find_pending_by_user_code(
        &self,
        user_code_hash: &SecretHash,
        now: i64,
    ) -> impl Future<Output = Result<Option<DeviceAuthorization>, StoreError>> + Send;
    /// Records the user's decision on a pending, unexpired authorization: approval by an
    /// existing, enabled user, or denial (`None`). Returns whether it was still pending (and,
    /// for an approval, the user could approve).
    fn decide_device_authorization(
        &self,
        user_code_hash: &SecretHash,
        approval: Option<&DeviceApproval>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// One poll by `client_id` at `now`, in one transaction. An authorization redeemed before
    /// is `AlreadyRedeemed` whenever it is polled; otherwise too soon after the last poll →
    /// `SlowDown` (interval + 5 s); else records the poll and reports the state, redeeming an
    /// approved authorization while its user exists and is enabled: the grant `grant_of`
    /// builds is stored with the redemption (of concurrent polls exactly one gets
    /// `Approved`).
    fn poll_device_authorization(
        &self,
        device_code_hash: &SecretHash,
        client_id: &ClientId,
        now: i64,
        grant_of: impl FnOnce(&DeviceAuthorization, &DeviceApproval) -> Grant + Send,
    ) -> impl Future<Output = Result<DevicePoll, StoreError>> + Send;
}

/// The registry of resource servers (issue 15 item 3), keyed by canonical identifier.
pub trait ResourceStore: Send + Sync {
    /// Adds a resource; [`StoreError::Conflict`] when its identifier is registered already.
    fn create_resource(
        &self,
        resource: &crate::resource_registry::RegisteredResource,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every registered resource, by identifier.
    fn list_resources(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::resource_registry::RegisteredResource>, StoreError>> + Send;
    /// Removes a resource (by canonical identifier); whether it existed.
    fn delete_resource(
        &self,
        resource: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What the administration tools need beyond the other traits: which clients are first-party
/// administration tools (`tessera client create --admin`, the only ones that may be granted
/// `admin:*` scopes), secret rotation and password resets.
pub trait AdminStore: Send + Sync {
    /// Flags or unflags an existing client.
    fn set_admin_client(
        &self,
        client_id: &ClientId,
        admin: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn is_admin_client(
        &self,
        client_id: &ClientId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces the secret hash of a client that has a secret; whether it had one.
    fn replace_client_secret(
        &self,
        client_id: &ClientId,
        secret_hash: &SecretHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces a user's password hash (PHC string) and ends every login session of theirs,
    /// in one transaction: a reset after a compromise signs the intruder out. Whether the
    /// user exists.
    fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces everything an operator sets of an operator-registered client (not a dynamic
    /// one, which RFC 7592 manages); its client_id and creation time stay. Whether there was
    /// such a client.
    fn update_client(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Grants of the user `user_id` and/or to the client `client_id` (every grant when both
    /// are `None`), revoked ones included, newest first, at most `limit`.
    fn list_grants(
        &self,
        user_id: Option<&str>,
        client_id: Option<&ClientId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<GrantRecord>, StoreError>> + Send;
    /// The grant `grant_id`, revoked or not.
    fn find_grant(
        &self,
        grant_id: &str,
    ) -> impl Future<Output = Result<Option<GrantRecord>, StoreError>> + Send;
}

/// A grant as an administrator sees it: the grant and when it was revoked, if it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub grant: Grant,
    pub revoked_at: Option<i64>,
}
