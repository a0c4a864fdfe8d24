//! The registry of resource servers (issue 15 item 3): the resources that clients the operator
//! did not register — dynamic (RFC 7591) and metadata-document clients — may obtain tokens
//! for, each with the scopes it defines.
//!
//! Operator-registered clients keep their own `audience` lists and are not affected. A client
//! the operator did not register gets, per request, exactly the resources it names (each of
//! which must be registered and open to such clients, else `invalid_target`, RFC 8707 §2) and
//! only the scopes those resources define, besides the issuer's own scopes open to it.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::params::Params;
use crate::resource::canonical;
use crate::scope::ScopeSet;

/// One registered resource server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredResource {
    /// Its identifier in canonical form ([`canonical`]): the `aud` of its tokens.
    pub resource: String,
    /// The scopes it defines.
    pub scopes: ScopeSet,
    /// Whether clients the operator did not register may obtain tokens for it.
    pub dynamic_clients: bool,
    pub created_at: i64,
}

impl RegisteredResource {
    /// Checks and canonicalizes a registration.
    pub fn new(
        resource: &str,
        scopes: ScopeSet,
        dynamic_clients: bool,
        now: i64,
    ) -> Result<Self, String> {
        let canonical = canonical(resource).ok_or_else(|| {
            format!("the resource `{resource}` is not an absolute URI without a fragment")
        })?;
        if scopes.is_empty() {
            return Err("a resource defines at least one scope".into());
        }
        Ok(Self { resource: canonical, scopes, dynamic_clients, created_at: now })
    }
}

/// Every scope a client the operator did not register could be given: `issuer_scopes` (the
/// issuer's own, `registration_scopes`) and the scopes of the resources open to such clients.
/// What `/register` and metadata documents are checked against.
pub fn open_scopes(registry: &[RegisteredResource], issuer_scopes: &ScopeSet) -> ScopeSet {
    let open = registry.iter().filter(|r| r.dynamic_clients).flat_map(|r| r.scopes.iter());
    ScopeSet::from_scopes(issuer_scopes.iter().chain(open).cloned())
}

/// The client as this request may use it, for a client the operator did not register: its
/// `audience` becomes exactly the requested resources (none: the issuer), and its scopes are
/// narrowed to `issuer_scopes` and the scopes of those resources, so that the usual checks
/// answer `invalid_scope` for any other.
pub fn admit_unregistered_client(
    client: &Client,
    params: &Params,
    registry: &[RegisteredResource],
    issuer_scopes: &ScopeSet,
) -> Result<Client> {
    let mut chosen: Vec<&RegisteredResource> = Vec::new();
    for raw in params.get_all("resource") {
        // RFC 8707 §2: an unknown resource, or one closed to this client, is `invalid_target`.
        let found = canonical(raw)
            .and_then(|wanted| registry.iter().find(|r| r.dynamic_clients && r.resource == wanted));
        let Some(found) = found else { return Err(Error::InvalidTarget(raw.to_owned())) };
        if !chosen.iter().any(|c| c.resource == found.resource) {
            chosen.push(found);
        }
    }
    let allowed = ScopeSet::from_scopes(
        issuer_scopes.iter().chain(chosen.iter().flat_map(|r| r.scopes.iter())).cloned(),
    );
    let within =
        |set: &ScopeSet| ScopeSet::from_scopes(set.iter().filter(|s| allowed.contains(s)).cloned());
    let mut admitted = client.clone();
    admitted.scope = within(&client.scope);
    admitted.default_scope = within(&client.default_scope);
    admitted.audience = chosen.iter().map(|r| r.resource.clone()).collect();
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientRegistration;
    use crate::redirect_uri::RedirectUri;

    fn scopes(raw: &str) -> ScopeSet {
        ScopeSet::parse(raw).unwrap()
    }

    fn registry() -> Vec<RegisteredResource> {
        vec![
            RegisteredResource::new(
                "https://mcp.example/mcp",
                scopes("mcp:tools mcp:read"),
                true,
                0,
            )
            .unwrap(),
            RegisteredResource::new("https://billing.example", scopes("billing:read"), false, 0)
                .unwrap(),
            RegisteredResource::new("https://files.example", scopes("files:read"), true, 0)
                .unwrap(),
        ]
    }

    fn dynamic_client() -> Client {
        let (client, _) = ClientRegistration {
            client_name: "agent".into(),
            redirect_uris: vec![
                RedirectUri::parse_for_registration("https://agent.example/cb").unwrap(),
            ],
            scope: scopes("openid mcp:tools mcp:read files:read billing:read"),
            public: true,
            ..Default::default()
        }
        .into_client(0)
        .unwrap();
        client
    }

    fn admit(query: &str) -> Result<Client> {
        let params = Params::parse_form(query.as_bytes()).unwrap();
        admit_unregistered_client(&dynamic_client(), &params, &registry(), &scopes("openid"))
    }

    #[test]
    fn issue15_registered_resource_is_stored_in_canonical_form() {
        let r = RegisteredResource::new("HTTPS://MCP.Example/mcp/", scopes("mcp:tools"), true, 0);
        assert_eq!(r.unwrap().resource, "https://mcp.example/mcp");
        assert!(RegisteredResource::new("https://x.example#f", scopes("a:b"), true, 0).is_err());
        assert!(RegisteredResource::new("relative/path", scopes("a:b"), true, 0).is_err());
        assert!(
            RegisteredResource::new("https://x.example", ScopeSet::default(), true, 0).is_err()
        );
    }

    #[test]
    fn rfc8707_2_unregistered_resource_is_invalid_target_for_dynamic_clients() {
        let e = admit("resource=https%3A%2F%2Fother.example").unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_target");
        let e = admit("resource=not-a-uri").unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_target");
    }

    #[test]
    fn rfc8707_2_resource_closed_to_dynamic_clients_is_invalid_target() {
        let e = admit("resource=https%3A%2F%2Fbilling.example").unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_target");
    }

    #[test]
    fn mcp_resource_matches_in_canonical_form_and_becomes_the_audience() {
        let c = admit("resource=HTTPS%3A%2F%2FMCP.example%2Fmcp%2F").unwrap();
        assert_eq!(c.audience, ["https://mcp.example/mcp"]);
        assert_eq!(c.scope, scopes("mcp:read mcp:tools openid"));
    }

    #[test]
    fn issue15_dynamic_client_gets_only_the_scopes_of_the_requested_resources() {
        // files:read belongs to another resource than the one requested.
        let c = admit("resource=https%3A%2F%2Fmcp.example%2Fmcp").unwrap();
        assert!(c.scope.first_outside(&scopes("openid mcp:tools mcp:read")).is_none());
        // Without a resource: the issuer's scopes only, and the issuer as audience.
        let c = admit("").unwrap();
        assert_eq!(c.scope, scopes("openid"));
        assert!(c.audience.is_empty());
        let c =
            admit("resource=https%3A%2F%2Fmcp.example%2Fmcp&resource=https%3A%2F%2Ffiles.example")
                .unwrap();
        assert_eq!(c.audience.len(), 2);
        assert_eq!(c.scope, scopes("files:read mcp:read mcp:tools openid"));
    }

    #[test]
    fn issue15_open_scopes_leave_out_resources_closed_to_dynamic_clients() {
        let open = open_scopes(&registry(), &scopes("openid"));
        assert_eq!(open, scopes("files:read mcp:read mcp:tools openid"));
    }
}
