//! The token exchange grant (RFC 8693): a client trades a token of this server (the subject)
//! for a new access token meant for another audience, either as the subject (impersonation) or
//! as an actor on the subject's behalf (delegation, recorded in `act`, §4.1).
//!
//! What a client may exchange is its [`ExchangePolicy`](crate::client::ExchangePolicy): the
//! subject token must have been issued to one of its subject clients or be meant for one of
//! its subject audiences; the result is bounded by the client's own audiences and scopes, and
//! by the subject's scope and lifetime.

pub mod presented;

use std::borrow::Cow;

use crate::client::{AccessTokenFormat, Client};
use crate::client_auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grant_type::GrantType;
use crate::params::Params;
use crate::scope::ScopeSet;
use crate::store::{GrantStore, TokenStore, UserStore};
use crate::token::{
    AccessTokenGrant, Actor, IssueContext, TokenPolicy, TokenResponse, issue_access_token, new_jti,
};

use self::presented::{ACCESS_TOKEN, JWT, PresentedToken, REFRESH_TOKEN, Role};
use super::{GrantHandler, HandlerFuture, TokenRequest};

/// The longest delegation chain a token may record (§4.1 nesting): beyond it, an exchange is
/// refused rather than growing every token of a loop of services.
pub const MAX_ACTORS: usize = 8;

/// Exchanges a subject token (and an actor token, for delegation) for an access token.
pub struct TokenExchangeGrant<S> {
    store: S,
}

impl<S> TokenExchangeGrant<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: GrantStore + TokenStore + UserStore + 'static> GrantHandler for TokenExchangeGrant<S> {
    fn grant_type(&self) -> GrantType {
        GrantType::TokenExchange
    }

    fn handle<'a>(
        &'a self,
        client: &'a AuthenticatedClient,
        request: &'a TokenRequest,
        ctx: IssueContext<'a>,
    ) -> HandlerFuture<'a> {
        Box::pin(exchange(&self.store, client.client(), &request.params, ctx))
    }
}

fn refused(reason: &'static str) -> Error {
    Error::TokenExchangeRefused(Cow::Borrowed(reason))
}

async fn exchange<S: GrantStore + TokenStore + UserStore>(
    store: &S,
    client: &Client,
    params: &Params,
    ctx: IssueContext<'_>,
) -> Result<TokenResponse> {
    // RFC 8693 §2.1: `subject_token` and `subject_token_type` are required.
    let subject_token = params.require("subject_token")?;
    let subject_type = params.require("subject_token_type")?;
    let subject =
        presented::validate(store, ctx, subject_token, subject_type, Role::Subject).await?;
    // RFC 8693 §5: the server decides whose tokens a client may exchange; a subject token
    // unacceptable by policy is `invalid_request` (§2.2.2).
    if !client.token_exchange.admits(&subject.client_id, &subject.audience) {
        return Err(refused(
            "this client may not exchange tokens issued to that client or meant for that audience",
        ));
    }
    let actor = actor_token(store, client, params, ctx).await?;
    check_may_act(&subject, actor.as_ref(), client, ctx)?;
    let issued_type = issued_token_type(params, actor.is_some())?;
    let audience = exchange_audience(params, &client.audience)?;
    let scope = narrowed_scope(params.get("scope"), &subject.scope, &client.scope)?;
    // RFC 8693 §4.1: the new actor is outermost; the subject's own chain nests inside it. An
    // impersonating exchange of a delegated token keeps the chain, so a delegation is never
    // laundered into a plain token.
    let act = match &actor {
        Some(a) => {
            Some(Actor { sub: a.sub.clone(), iss: None, act: subject.act.clone().map(Box::new) })
        }
        None => subject.act.clone(),
    };
    if act.as_ref().is_some_and(|a| a.depth() > MAX_ACTORS) {
        return Err(refused("the delegation chain is too long"));
    }
    // The new token never outlives its subject token.
    let ttl = ctx.policy.access_token_ttl.min(subject.expires_at - ctx.now);
    let policy = TokenPolicy { access_token_ttl: ttl, ..ctx.policy.clone() };
    let ctx = IssueContext { policy: &policy, ..ctx };
    let format =
        if issued_type == JWT { AccessTokenFormat::Jwt } else { client.access_token_format };
    let token = issue_access_token(
        store,
        ctx,
        format,
        AccessTokenGrant {
            sub: &subject.sub,
            client_id: &client.client_id,
            scope: &scope,
            audience: &audience,
            jti: new_jti(),
            act: act.as_ref(),
        },
    )
    .await?;
    // Revoking the subject's grant (or deleting its user) revokes what was derived from it.
    if let Some(subject_jti) = &subject.jti {
        store.record_derived_access_token(subject_jti, &token.jti, token.expires_at).await?;
    }
    Ok(TokenResponse {
        access_token: token.token,
        // RFC 8693 §2.2.1: an access token usable as a bearer token.
        token_type: token.token_type,
        expires_in: ttl,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(issued_type),
        jti: token.jti,
        sub: subject.sub,
        actor: actor.map(|a| a.sub),
    })
}

/// RFC 8693 §2.1: `actor_token` and `actor_token_type` come together. An actor token names the
/// party that acts, so it must have been issued to the client presenting it: no client can
/// claim another's identity as its actor.
async fn actor_token<S: GrantStore + TokenStore + UserStore>(
    store: &S,
    client: &Client,
    params: &Params,
    ctx: IssueContext<'_>,
) -> Result<Option<PresentedToken>> {
    let (token, token_type) = match (params.get("actor_token"), params.get("actor_token_type")) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(Error::MissingParameter("actor_token_type")),
        (None, Some(_)) => {
            return Err(refused(
                "actor_token_type is given without an actor_token (RFC 8693 §2.1)",
            ));
        }
        (Some(token), Some(token_type)) => (token, token_type),
    };
    let actor = presented::validate(store, ctx, token, token_type, Role::Actor).await?;
    if actor.client_id != client.client_id.as_str() {
        return Err(refused("the actor token was not issued to this client"));
    }
    Ok(Some(actor))
}

/// RFC 8693 §4.4: a subject token with `may_act` names who may act for its subject: the actor
/// of a delegation, or the client itself when it impersonates.
fn check_may_act(
    subject: &PresentedToken,
    actor: Option<&PresentedToken>,
    client: &Client,
    ctx: IssueContext<'_>,
) -> Result<()> {
    let Some(may_act) = &subject.may_act else { return Ok(()) };
    let acting = actor.map_or(client.client_id.as_str(), |a| a.sub.as_str());
    let same_issuer = may_act.iss.as_deref().is_none_or(|iss| iss == ctx.issuer.as_str());
    if may_act.sub == acting && same_issuer {
        Ok(())
    } else {
        Err(refused("the subject token's may_act does not name this actor (RFC 8693 §4.4)"))
    }
}

/// RFC 8693 §2.1 `requested_token_type` → §2.2.1 `issued_token_type`. Tessera issues access
/// tokens (`jwt` asks for one as a JWT whatever the client's format); a refresh token is never
/// issued for a delegated token, and token exchange issues none at all.
fn issued_token_type(params: &Params, delegated: bool) -> Result<&'static str> {
    match params.get("requested_token_type") {
        None | Some(ACCESS_TOKEN) => Ok(ACCESS_TOKEN),
        Some(JWT) => Ok(JWT),
        Some(REFRESH_TOKEN) if delegated => {
            Err(refused("a delegated token is never issued as a refresh token"))
        }
        Some(REFRESH_TOKEN) => Err(refused("token exchange issues no refresh tokens")),
        Some(_) => Err(refused(
            "the requested_token_type is not one Tessera issues; ask for an access_token or a jwt",
        )),
    }
}

/// RFC 8693 §2.1: `resource` (an absolute URI, RFC 8707 §2) and `audience` (a logical name)
/// both name where the token is to be used; each must be one of the client's registered
/// audiences (`invalid_target`, §2.2.2). Neither: the client's registered audiences.
fn exchange_audience(params: &Params, allowed: &[String]) -> Result<Vec<String>> {
    let mut audience: Vec<String> = Vec::new();
    let resources = params.get_all("resource").map(|r| (r, true));
    for (target, is_resource) in resources.chain(params.get_all("audience").map(|a| (a, false))) {
        let absolute = !is_resource || (url::Url::parse(target).is_ok() && !target.contains('#'));
        if !absolute || !allowed.iter().any(|a| a == target) {
            return Err(Error::InvalidTarget(target.to_owned()));
        }
        if !audience.iter().any(|a| a == target) {
            audience.push(target.to_owned());
        }
    }
    Ok(if audience.is_empty() { allowed.to_vec() } else { audience })
}

/// The scope of the new token: what was asked for, which must lie within the subject token's
/// scope (an exchange only narrows) and within the client's allowed scope; without `scope`,
/// the part of the subject's scope the client may hold.
fn narrowed_scope(
    requested: Option<&str>,
    subject: &ScopeSet,
    allowed: &ScopeSet,
) -> Result<ScopeSet> {
    let Some(raw) = requested else {
        return Ok(ScopeSet::from_scopes(
            subject.iter().filter(|s| allowed.iter().any(|a| a == *s)).cloned(),
        ));
    };
    let scope = ScopeSet::parse(raw).map_err(|e| Error::MalformedScope(e.into()))?;
    if let Some(outside) = scope.first_outside(subject) {
        return Err(Error::ScopeBeyondSubject(outside.as_str().to_owned()));
    }
    if let Some(outside) = scope.first_outside(allowed) {
        return Err(Error::ScopeNotAllowed(outside.as_str().to_owned()));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn rfc8693_2_1_scope_only_narrows_the_subjects() {
        let subject = set("orders:read orders:write");
        let allowed = set("orders:read billing:read");
        assert_eq!(
            narrowed_scope(Some("orders:read"), &subject, &allowed).unwrap(),
            set("orders:read")
        );
        let wider = narrowed_scope(Some("billing:read"), &subject, &allowed).unwrap_err();
        assert!(matches!(wider, Error::ScopeBeyondSubject(ref s) if s == "billing:read"));
        let not_allowed = narrowed_scope(Some("orders:write"), &subject, &allowed).unwrap_err();
        assert_eq!(not_allowed.code().as_str(), "invalid_scope");
        assert_eq!(narrowed_scope(None, &subject, &allowed).unwrap(), set("orders:read"));
    }

    #[test]
    fn rfc8693_2_1_resource_and_audience_must_be_registered_targets() {
        let allowed = vec!["https://billing.example".to_owned(), "ledger".to_owned()];
        let p =
            Params::parse_form(b"resource=https%3A%2F%2Fbilling.example&audience=ledger").unwrap();
        assert_eq!(exchange_audience(&p, &allowed).unwrap(), allowed);
        let p = Params::parse_form(b"audience=elsewhere").unwrap();
        assert_eq!(exchange_audience(&p, &allowed).unwrap_err().code().as_str(), "invalid_target");
        let p = Params::parse_form(b"resource=ledger").unwrap();
        assert!(exchange_audience(&p, &allowed).is_err(), "a resource is an absolute URI");
        assert_eq!(exchange_audience(&Params::default(), &allowed).unwrap(), allowed);
    }

    #[test]
    fn rfc8693_2_1_requested_token_type_is_an_access_token_never_a_delegated_refresh_token() {
        let with =
            |t: &str| Params::parse_form(format!("requested_token_type={t}").as_bytes()).unwrap();
        assert_eq!(issued_token_type(&Params::default(), true).unwrap(), ACCESS_TOKEN);
        assert_eq!(issued_token_type(&with(JWT), false).unwrap(), JWT);
        let refresh = issued_token_type(&with(REFRESH_TOKEN), true).unwrap_err();
        assert_eq!(refresh.to_string(), "a delegated token is never issued as a refresh token");
        assert!(issued_token_type(&with(presented::ID_TOKEN), false).is_err());
    }
}
