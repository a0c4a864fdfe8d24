//! Resource indicators (RFC 8707): which resource servers an access token is for.

use crate::error::{Error, Result};
use crate::params::Params;

/// The audience of the tokens of a request: the `resource` parameters, each of which must be
/// one of `allowed` (the client's registered resources, or a grant's), or all of `allowed`
/// when none is asked for. An empty result means "the issuer itself".
/// Resources are compared in their canonical form ([`canonical`]); the audience carries the
/// allowed entry as registered.
pub fn requested_audience(params: &Params, allowed: &[String]) -> Result<Vec<String>> {
    audience_of(params.get_all("resource"), allowed)
}

/// [`requested_audience`] of the `resource` values already taken from a request (the refresh
/// grant checks them inside the store's transaction, which cannot borrow the request).
pub fn audience_of<'a>(
    resources: impl IntoIterator<Item = &'a str>,
    allowed: &[String],
) -> Result<Vec<String>> {
    let mut audience: Vec<String> = Vec::new();
    for resource in resources {
        // RFC 8707 §2: an absolute URI without a fragment.
        let Some(wanted) = canonical(resource) else {
            return Err(Error::InvalidTarget(resource.to_owned()));
        };
        let Some(found) = allowed.iter().find(|a| canonical(a).as_deref() == Some(&wanted)) else {
            return Err(Error::InvalidTarget(resource.to_owned()));
        };
        if !audience.contains(found) {
            audience.push(found.clone());
        }
    }
    Ok(if audience.is_empty() { allowed.to_vec() } else { audience })
}

/// The canonical form of a resource identifier, as the MCP authorization specification
/// compares them: an absolute URI (RFC 8707 §2) with no fragment, scheme and host in
/// lowercase, no default port, and no trailing slash (`https://mcp.example/` and
/// `https://MCP.example` are one resource). `None` when `raw` is not an absolute URI or has a
/// fragment.
pub fn canonical(raw: &str) -> Option<String> {
    if raw.contains('#') {
        return None;
    }
    // The `url` crate lowercases the scheme and (for http/https) the host, and drops a
    // default port.
    let url = url::Url::parse(raw).ok()?;
    let mut out = url.as_str().to_owned();
    // With no query, the string ends with the path, whose trailing slashes are dropped.
    if url.host().is_some() && url.query().is_none() {
        let kept = out.trim_end_matches('/').len();
        out.truncate(kept);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https://api.example/orders".into(), "https://api.example/billing".into()]
    }

    #[test]
    fn rfc8707_2_requested_resources_must_be_allowed() {
        let p = Params::parse_form(b"resource=https%3A%2F%2Fapi.example%2Forders").unwrap();
        assert_eq!(requested_audience(&p, &allowed()).unwrap(), ["https://api.example/orders"]);
        let p = Params::parse_form(b"resource=https%3A%2F%2Fevil.example").unwrap();
        assert_eq!(
            requested_audience(&p, &allowed()).unwrap_err().code().as_str(),
            "invalid_target"
        );
        let p = Params::parse_form(b"resource=orders").unwrap();
        assert!(requested_audience(&p, &["orders".into()]).is_err(), "not an absolute URI");
    }

    #[test]
    fn mcp_canonical_resource_ignores_case_of_scheme_and_host_and_a_trailing_slash() {
        assert_eq!(
            canonical("HTTPS://MCP.Example.COM/mcp/").unwrap(),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(canonical("https://mcp.example.com/").unwrap(), "https://mcp.example.com");
        assert_eq!(canonical("https://mcp.example.com:443").unwrap(), "https://mcp.example.com");
        // The path keeps its case: only scheme and host are case-insensitive.
        assert_eq!(
            canonical("https://mcp.example.com/MCP").unwrap(),
            "https://mcp.example.com/MCP"
        );
        assert!(canonical("https://mcp.example.com/#x").is_none(), "RFC 8707 §2: no fragment");
        assert!(canonical("mcp.example.com").is_none(), "not an absolute URI");
    }

    #[test]
    fn rfc8707_2_resources_match_in_canonical_form() {
        let p = Params::parse_form(b"resource=HTTPS%3A%2F%2FAPI.example%2Forders%2F").unwrap();
        // The audience keeps the allowed entry as registered.
        assert_eq!(requested_audience(&p, &allowed()).unwrap(), ["https://api.example/orders"]);
    }

    #[test]
    fn rfc8707_2_without_resource_the_default_audience_applies() {
        let p = Params::default();
        assert_eq!(requested_audience(&p, &allowed()).unwrap(), allowed());
        assert!(requested_audience(&p, &[]).unwrap().is_empty());
    }
}
