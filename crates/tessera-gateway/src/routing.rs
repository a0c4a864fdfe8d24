//! Which route a request takes: by host, path prefix and method. The most specific match wins
//! (a named host before any host, then the longest prefix, then a method list before none),
//! so the order of `[[routes]]` in the file does not matter.

use http::Method;

use crate::config::RouteConfig;

/// The routes, searched per request.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<RouteConfig>,
}

/// `prefix` matches `path` at a segment boundary: `/orders` matches `/orders`, `/orders/1` and
/// `/orders?x`, not `/ordersx`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl RouteTable {
    pub fn new(routes: Vec<RouteConfig>) -> Self {
        Self { routes }
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    /// The route for a request to `host` (without port, any case), `path`, `method`.
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method) -> Option<&RouteConfig> {
        self.routes
            .iter()
            .filter(|r| match (&r.host, host) {
                (None, _) => true,
                (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                (Some(_), None) => false,
            })
            .filter(|r| prefix_matches(&r.path_prefix, path))
            .filter(|r| r.methods.as_ref().is_none_or(|m| m.contains(method)))
            .max_by_key(|r| {
                (r.host.is_some(), r.path_prefix.trim_end_matches('/').len(), r.methods.is_some())
            })
    }
}

/// The host a request names, without port: the URI's authority (HTTP/2, absolute form) or the
/// `Host` header (RFC 9110 §7.2).
pub fn request_host(parts: &http::request::Parts) -> Option<String> {
    match parts.uri.host() {
        Some(host) => Some(host.to_ascii_lowercase()),
        None => {
            let value = parts.headers.get(http::header::HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = value.parse().ok()?;
            Some(authority.host().to_ascii_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;

    fn table() -> RouteTable {
        let config = GatewayConfig::from_toml(
            r#"
            public_url = "https://api.example"
            issuers = ["https://id.example"]
            [[routes]]
            name = "all"
            upstream = "http://127.0.0.1:1"
            anonymous = true
            [[routes]]
            name = "orders"
            path_prefix = "/orders/"
            upstream = "http://127.0.0.1:2"
            audience = "https://api.example/orders"
            [[routes]]
            name = "orders-write"
            path_prefix = "/orders"
            methods = ["POST"]
            upstream = "http://127.0.0.1:3"
            audience = "https://api.example/orders"
            [[routes]]
            name = "admin-host"
            host = "Admin.Example"
            upstream = "http://127.0.0.1:4"
            audience = "https://admin.example/"
            "#,
        )
        .unwrap();
        RouteTable::new(config.routes)
    }

    fn name(t: &RouteTable, host: Option<&str>, path: &str, method: Method) -> Option<String> {
        t.find(host, path, &method).map(|r| r.name.clone())
    }

    #[test]
    fn most_specific_route_wins() {
        let t = table();
        assert_eq!(name(&t, None, "/orders/7", Method::GET).as_deref(), Some("orders"));
        assert_eq!(name(&t, None, "/orders", Method::GET).as_deref(), Some("orders"));
        assert_eq!(name(&t, None, "/orders", Method::POST).as_deref(), Some("orders-write"));
        assert_eq!(name(&t, None, "/ordersx", Method::GET).as_deref(), Some("all"));
        assert_eq!(
            name(&t, Some("admin.example"), "/orders", Method::GET).as_deref(),
            Some("admin-host")
        );
        assert_eq!(name(&t, Some("other"), "/x", Method::GET).as_deref(), Some("all"));
    }
}
