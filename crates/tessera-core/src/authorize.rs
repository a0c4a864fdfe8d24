//! The authorization endpoint's decisions (RFC 6749 §4.1.1–4.1.2, OAuth 2.1 §4.1, OIDC Core
//! §3.1.2): which request is trusted enough to redirect to, whether the user must sign in or
//! consent, and the code that ends a successful request.
//!
//! Checks run in two phases, because an error can be sent back to the client only through a
//! redirect URI that is known to be the client's (RFC 6749 §4.1.2.1): first the client and
//! redirect URI ([`check_redirect_target`], which returns the proof value
//! [`RedirectTarget`]), then everything else ([`parse_request`]), whose errors are redirected.

use std::sync::Arc;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::pkce::CodeChallenge;
use crate::scope::ScopeSet;
use crate::secret::{Secret, random_id};
use crate::store::{AuthorizationCode, Consent, Grant, Session};
use crate::token::TokenPolicy;

/// Proof that the client exists and the redirect URI is one of its registered ones: errors
/// may now be redirected there. Only [`check_redirect_target`] makes one; its fields are read
/// through accessors, so a target cannot be built or changed after the check:
///
/// ```compile_fail
/// # use tessera_core::authorize::RedirectTarget;
/// # fn forge(client: std::sync::Arc<tessera_core::client::Client>) -> RedirectTarget {
/// RedirectTarget { client, redirect_uri: "https://evil.example/cb".into(), state: None }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RedirectTarget {
    client: Arc<Client>,
    redirect_uri: String,
    state: Option<String>,
}

impl RedirectTarget {
    /// The registered client that sent the request.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The redirect URI exactly as requested, and matched against the client's registration.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// `state`, echoed untouched in every redirect (RFC 6749 §4.1.2).
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }
}

/// Longest `state` and `nonce` accepted.
const MAX_OPAQUE_LEN: usize = 1024;

/// Phase one: client and redirect URI. An error here is shown to the user, never redirected.
pub fn check_redirect_target(
    params: &Params,
    client: Option<Arc<Client>>,
) -> std::result::Result<RedirectTarget, String> {
    if params.get("client_id").is_none() {
        return Err("The request has no client_id.".into());
    }
    let client = client.ok_or("The application that sent you here is not registered.")?;
    let requested = params.get("redirect_uri").ok_or(
        "The request has no redirect_uri; it is required so that the answer reaches the \
         right place.",
    )?;
    if !client.redirect_uris.iter().any(|r| r.matches(requested)) {
        return Err("The redirect_uri is not registered for this application.".into());
    }
    let state = params.get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|s| s.len() > MAX_OPAQUE_LEN) {
        return Err("The state parameter is too long.".into());
    }
    Ok(RedirectTarget { client, redirect_uri: requested.to_owned(), state })
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    pub target: RedirectTarget,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: CodeChallenge,
    pub prompt: Prompt,
    /// OIDC Core §3.1.2.1: the longest time since sign-in, in seconds.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The resource servers the tokens will be for (RFC 8707).
    pub audience: Vec<String>,
}

impl AuthorizationRequest {
    pub fn is_openid(&self) -> bool {
        self.scope.iter().any(|s| s.as_str() == "openid")
    }
}

/// Phase two: everything else. Errors here are redirected to the client.
pub fn parse_request(target: RedirectTarget, params: &Params) -> Result<AuthorizationRequest> {
    let client = &target.client;
    match params.get("response_type") {
        None => return Err(Error::MissingParameter("response_type")),
        Some("code") => {}
        // OAuth 2.1 drops the implicit grant (`token`, `id_token token` …).
        Some(other) => return Err(Error::UnsupportedResponseType(other.to_owned())),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(Error::GrantTypeNotAllowed(GrantType::AuthorizationCode.as_str()));
    }
    match params.get("response_mode") {
        None | Some("query") => {}
        Some(other) => {
            return Err(Error::MalformedParameter {
                name: "response_mode",
                reason: format!("`{other}` is not supported; use query").into(),
            });
        }
    }
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        // OIDC Core §6: request objects are not supported (advertised as such).
        return Err(Error::MalformedParameter {
            name: "request",
            reason: "request objects are not supported".into(),
        });
    }
    let code_challenge =
        CodeChallenge::parse(params.get("code_challenge"), params.get("code_challenge_method"))
            .map_err(|reason| Error::MalformedParameter {
                name: "code_challenge",
                reason: reason.into(),
            })?;
    let scope = match params.get("scope") {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| Error::MalformedScope(e.into()))?,
        None if client.default_scope.is_empty() => return Err(Error::NoScope),
        None => client.default_scope.clone(),
    };
    if let Some(outside) = scope.first_outside(&client.scope) {
        return Err(Error::ScopeNotAllowed(outside.as_str().to_owned()));
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_OPAQUE_LEN) {
        return Err(Error::MalformedParameter { name: "nonce", reason: "is too long".into() });
    }
    let prompt = parse_prompt(params.get("prompt"))?;
    let max_age = params
        .get("max_age")
        .map(|v| {
            v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(Error::MalformedParameter {
                name: "max_age",
                reason: "must be a non-negative integer of seconds".into(),
            })
        })
        .transpose()?;
    let login_hint = params.get("login_hint").map(|h| h.chars().take(256).collect());
    let audience = crate::resource::requested_audience(params, &client.audience)?;
    Ok(AuthorizationRequest {
        target,
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        audience,
    })
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt> {
    let mut prompt = Prompt::default();
    for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // `select_account` is allowed by OIDC; with one account per session it asks nothing.
            "select_account" => {}
            other => {
                return Err(Error::MalformedParameter {
                    name: "prompt",
                    reason: format!("`{other}` is not a prompt value").into(),
                });
            }
        }
    }
    // OIDC Core §3.1.2.1: `none` must not be combined with any other value.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(Error::MalformedParameter {
            name: "prompt",
            reason: "`none` cannot be combined with other values".into(),
        });
    }
    Ok(prompt)
}

/// What the authorization endpoint does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Show the login page.
    Login,
    /// Show the consent page.
    Consent,
    /// Issue a code to this session.
    Issue,
}

/// What the user did for this very authorization request (so that `prompt=login` or
/// `prompt=consent` is satisfied by the sign-in or consent that just happened, instead of
/// asking again).
#[derive(Clone, Copy, Debug, Default)]
pub struct JustDone {
    /// The user signed in for this request: in this HTTP request, or in the sign-in the
    /// session recorded for it. Never set by a consent form alone (OIDC Core §3.1.2.1).
    pub login: bool,
    pub consent: bool,
}

/// Decides the next step for a request, given the user's session and remembered consent.
pub fn next_step(
    request: &AuthorizationRequest,
    session: Option<&Session>,
    consent: Option<&Consent>,
    just: JustDone,
    now: i64,
) -> Result<Step> {
    let too_old = |s: &Session| request.max_age.is_some_and(|max| now - s.auth_time > max);
    let needs_login = match session {
        None => true,
        Some(s) => !just.login && (request.prompt.login || too_old(s)),
    };
    if needs_login {
        return if request.prompt.none { Err(Error::LoginRequired) } else { Ok(Step::Login) };
    }
    let client = &request.target.client;
    let remembered = consent.is_some_and(|c| request.scope.first_outside(&c.scope).is_none());
    // RFC 8252 §8.6: any app on the device can claim a public client's client_id and
    // loopback redirect, so nothing may answer it without the user's interaction: for a public
    // client neither a remembered consent nor first-party status skips the consent page.
    // Issue 15: a client that registered itself or that only a metadata document describes is
    // nobody the operator vouched for, so its user is asked every time, whatever was
    // remembered.
    let may_skip_consent = !client.is_public()
        && client.is_operator_registered()
        && (client.first_party || remembered);
    let needs_consent = !just.consent && (request.prompt.consent || !may_skip_consent);
    if needs_consent {
        return if request.prompt.none { Err(Error::ConsentRequired) } else { Ok(Step::Consent) };
    }
    Ok(Step::Issue)
}

/// A freshly minted code: the plaintext for the redirect, and the records to store.
pub struct NewCode {
    pub code: Secret,
    pub grant: Grant,
    pub stored: AuthorizationCode,
}

/// Mints a code for an approved request (requirements R1.2): 256 random bits, stored only as
/// a hash, bound to client, redirect URI, PKCE challenge and nonce.
pub fn mint_code(
    request: &AuthorizationRequest,
    session: &Session,
    policy: &TokenPolicy,
    now: i64,
) -> NewCode {
    let code = Secret::generate();
    let grant = Grant {
        id: random_id::<16>(),
        client_id: request.target.client.client_id.clone(),
        user_id: session.user_id.clone(),
        scope: request.scope.clone(),
        auth_time: session.auth_time,
        sid: Some(session.sid.clone()),
        audience: request.audience.clone(),
        created_at: now,
        expires_at: now + policy.refresh_token_absolute_ttl,
        dpop_jkt: None,
    };
    let stored = AuthorizationCode {
        code_hash: code.hash(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: request.target.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        expires_at: now + policy.code_ttl,
    };
    NewCode { code, grant, stored }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientRegistration;
    use crate::client_id::ClientId;
    use crate::redirect_uri::RedirectUri;
    use crate::secret::SecretHash;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(first_party: bool) -> Arc<Client> {
        let (client, _) = ClientRegistration {
            client_id: Some(ClientId::parse("web").unwrap()),
            client_name: "web".into(),
            redirect_uris: vec![
                RedirectUri::parse_for_registration("https://app.example/cb").unwrap(),
            ],
            scope: ScopeSet::parse("openid profile orders:read").unwrap(),
            default_scope: ScopeSet::parse("openid").unwrap(),
            first_party,
            ..Default::default()
        }
        .into_client(0)
        .unwrap();
        Arc::new(client)
    }

    fn params(extra: &str) -> Params {
        let base = format!(
            "client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&\
             code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz{extra}"
        );
        Params::parse_form(base.as_bytes()).unwrap()
    }

    fn request(extra: &str) -> Result<AuthorizationRequest> {
        let p = params(extra);
        parse_request(check_redirect_target(&p, Some(client(false))).unwrap(), &p)
    }

    fn session(auth_time: i64) -> Session {
        Session {
            id_hash: SecretHash::of(b"s"),
            sid: "sid".into(),
            user_id: "u".into(),
            auth_time,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn rfc6749_4_1_2_1_unknown_client_or_redirect_is_never_redirected() {
        let p = params("");
        assert!(check_redirect_target(&p, None).is_err());
        let other =
            Params::parse_form(b"client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb")
                .unwrap();
        assert!(check_redirect_target(&other, Some(client(false))).is_err());
        let missing = Params::parse_form(b"client_id=web").unwrap();
        assert!(check_redirect_target(&missing, Some(client(false))).is_err());
    }

    #[test]
    fn oauth21_4_1_1_pkce_is_required_and_s256_only() {
        let p = Params::parse_form(
            b"client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code",
        )
        .unwrap();
        let target = check_redirect_target(&p, Some(client(false))).unwrap();
        assert_eq!(parse_request(target, &p).unwrap_err().code().as_str(), "invalid_request");
        let plain = Params::parse_form(
            format!(
                "client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&\
                 code_challenge={CHALLENGE}&code_challenge_method=plain"
            )
            .as_bytes(),
        )
        .unwrap();
        let target = check_redirect_target(&plain, Some(client(false))).unwrap();
        assert_eq!(parse_request(target, &plain).unwrap_err().code().as_str(), "invalid_request");
    }

    #[test]
    fn rfc6749_4_1_2_1_only_the_code_response_type_is_served() {
        let p = Params::parse_form(
            format!(
                "client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=token&\
                 code_challenge={CHALLENGE}&code_challenge_method=S256"
            )
            .as_bytes(),
        )
        .unwrap();
        let target = check_redirect_target(&p, Some(client(false))).unwrap();
        let err = parse_request(target, &p).unwrap_err();
        assert_eq!(err.code().as_str(), "unsupported_response_type");
    }

    #[test]
    fn rfc6749_3_3_scope_defaults_and_limits_apply() {
        assert_eq!(request("").unwrap().scope.to_string(), "openid");
        let err = request("&scope=openid+admin:all").unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_scope");
    }

    #[test]
    fn oidc_3_1_2_1_prompt_none_cannot_be_combined() {
        assert!(request("&prompt=none+login").is_err());
        assert!(request("&prompt=bogus").is_err());
        assert!(request("&prompt=login+consent").is_ok());
    }

    #[test]
    fn oidc_3_1_2_6_prompt_none_without_session_is_login_required() {
        let req = request("&prompt=none").unwrap();
        let err = next_step(&req, None, None, JustDone::default(), 100).unwrap_err();
        assert_eq!(err.code().as_str(), "login_required");
        let s = session(50);
        let err = next_step(&req, Some(&s), None, JustDone::default(), 100).unwrap_err();
        assert_eq!(err.code().as_str(), "consent_required");
    }

    #[test]
    fn oidc_3_1_2_1_prompt_login_and_max_age_force_a_fresh_login() {
        let s = session(0);
        let req = request("&prompt=login").unwrap();
        assert_eq!(next_step(&req, Some(&s), None, JustDone::default(), 10).unwrap(), Step::Login);
        let just = JustDone { login: true, consent: false };
        assert_eq!(next_step(&req, Some(&s), None, just, 10).unwrap(), Step::Consent);
        let req = request("&max_age=60").unwrap();
        assert_eq!(next_step(&req, Some(&s), None, JustDone::default(), 61).unwrap(), Step::Login);
        assert_eq!(
            next_step(&req, Some(&s), None, JustDone::default(), 60).unwrap(),
            Step::Consent
        );
    }

    #[test]
    fn r2_1_remembered_consent_covers_the_same_or_a_smaller_scope_set() {
        let s = session(0);
        let req = request("&scope=openid+profile").unwrap();
        let consent = |scope: &str| Consent {
            user_id: "u".into(),
            client_id: ClientId::parse("web").unwrap(),
            scope: ScopeSet::parse(scope).unwrap(),
            granted_at: 0,
        };
        let wide = consent("openid profile orders:read");
        assert_eq!(
            next_step(&req, Some(&s), Some(&wide), JustDone::default(), 1).unwrap(),
            Step::Issue
        );
        let narrow = consent("openid");
        assert_eq!(
            next_step(&req, Some(&s), Some(&narrow), JustDone::default(), 1).unwrap(),
            Step::Consent
        );
        let forced = request("&scope=openid&prompt=consent").unwrap();
        assert_eq!(
            next_step(&forced, Some(&s), Some(&wide), JustDone::default(), 1).unwrap(),
            Step::Consent
        );
    }

    #[test]
    fn rfc8252_8_6_public_clients_always_get_the_consent_page() {
        let mut public = (*client(true)).clone();
        public.token_endpoint_auth_method = crate::client::AuthMethod::None;
        let public = Arc::new(public);
        let public_request = |extra: &str| {
            let p = params(extra);
            parse_request(check_redirect_target(&p, Some(public.clone())).unwrap(), &p).unwrap()
        };
        let req = public_request("");
        let s = session(0);
        let remembered = Consent {
            user_id: "u".into(),
            client_id: ClientId::parse("web").unwrap(),
            scope: ScopeSet::parse("openid profile orders:read").unwrap(),
            granted_at: 0,
        };
        let step = next_step(&req, Some(&s), Some(&remembered), JustDone::default(), 1);
        assert_eq!(step.unwrap(), Step::Consent, "first-party and remembered: still asked");
        let just_signed_in = JustDone { login: true, consent: false };
        assert_eq!(next_step(&req, Some(&s), None, just_signed_in, 1).unwrap(), Step::Consent);
        let consented = JustDone { login: false, consent: true };
        assert_eq!(next_step(&req, Some(&s), None, consented, 1).unwrap(), Step::Issue);
        let none = public_request("&prompt=none");
        let err = next_step(&none, Some(&s), Some(&remembered), JustDone::default(), 1);
        assert_eq!(err.unwrap_err().code().as_str(), "consent_required");
    }

    #[test]
    fn first_party_clients_skip_consent() {
        let p = params("");
        let req =
            parse_request(check_redirect_target(&p, Some(client(true))).unwrap(), &p).unwrap();
        let s = session(0);
        assert_eq!(next_step(&req, Some(&s), None, JustDone::default(), 1).unwrap(), Step::Issue);
    }
}
