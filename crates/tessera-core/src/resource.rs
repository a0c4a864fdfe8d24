//! Resource indicators (RFC 8707): which resource servers an access token is for.

use crate::error::{Error, Result};
use crate::params::Params;

/// The audience of the tokens of a request: the `resource` parameters, each of which must be
/// one of `allowed` (the client's registered resources, or a grant's), or all of `allowed`
/// when none is asked for. An empty result means "the issuer itself".
pub fn requested_audience(params: &Params, allowed: &[String]) -> Result<Vec<String>> {
    let mut audience = Vec::new();
    for resource in params.get_all("resource") {
        // RFC 8707 §2: an absolute URI without a fragment.
        let absolute = url::Url::parse(resource).is_ok() && !resource.contains('#');
        if !absolute || !allowed.iter().any(|a| a == resource) {
            return Err(Error::InvalidTarget(resource.to_owned()));
        }
        if !audience.iter().any(|a| a == resource) {
            audience.push(resource.to_owned());
        }
    }
    Ok(if audience.is_empty() { allowed.to_vec() } else { audience })
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
    fn rfc8707_2_without_resource_the_default_audience_applies() {
        let p = Params::default();
        assert_eq!(requested_audience(&p, &allowed()).unwrap(), allowed());
        assert!(requested_audience(&p, &[]).unwrap().is_empty());
    }
}
