//! The `admin:*` scopes of Tessera's admin HTTP API (requirements R6.2), which only clients
//! flagged first-party admin (`tessera client create … --admin`) may be granted.

use crate::client::Client;
use crate::scope::{Scope, ScopeSet};

/// Manage clients: `/admin/v1/clients…`.
pub const CLIENTS: &str = "admin:clients";
/// Manage users: `/admin/v1/users…`.
pub const USERS: &str = "admin:users";
/// List and revoke consents and grants: `/admin/v1/consents…`, `/admin/v1/grants…`.
pub const GRANTS: &str = "admin:grants";
/// List and rotate signing keys: `/admin/v1/keys…`.
pub const KEYS: &str = "admin:keys";
/// Read and manage the resource registry: `/admin/v1/resources…`.
pub const RESOURCES: &str = "admin:resources";
/// Read the audit trail: `/admin/v1/audit-events`.
pub const AUDIT: &str = "admin:audit";

/// Every admin scope.
pub const ALL: [&str; 6] = [CLIENTS, USERS, GRANTS, KEYS, RESOURCES, AUDIT];

/// Whether a scope is reserved for admin clients: every `admin:` scope, defined here or not,
/// so that a scope added later is never granted by mistake.
pub fn is_admin_scope(scope: &Scope) -> bool {
    scope.as_str().starts_with("admin:")
}

/// Whether `scopes` holds any admin scope.
pub fn has_admin_scope(scopes: &ScopeSet) -> bool {
    scopes.iter().any(is_admin_scope)
}

/// The client without its admin scopes: what a client that is not flagged admin may use, so
/// that a request for one is `invalid_scope` (RFC 6749 §5.2) by the usual scope check.
pub fn without_admin_scopes(client: &Client) -> Client {
    let keep =
        |set: &ScopeSet| ScopeSet::from_scopes(set.iter().filter(|s| !is_admin_scope(s)).cloned());
    let mut narrowed = client.clone();
    narrowed.scope = keep(&client.scope);
    narrowed.default_scope = keep(&client.default_scope);
    narrowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r6_2_every_admin_prefixed_scope_is_reserved() {
        for s in ALL {
            assert!(is_admin_scope(&Scope::parse(s).unwrap()), "{s}");
            assert!(Scope::parse_registered(s).is_ok(), "{s} follows the naming rule");
        }
        assert!(is_admin_scope(&Scope::parse("admin:future").unwrap()));
        assert!(!is_admin_scope(&Scope::parse("orders:admin").unwrap()));
    }
}
