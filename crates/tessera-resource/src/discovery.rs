//! An issuer's metadata (RFC 8414), the one thing a resource server is configured from.

use serde::Deserialize;
use tessera_jose::FetchError;
use tessera_jose::fetch::get_document;

/// The largest metadata document read.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// The members of an issuer's metadata a resource server uses.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct IssuerMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// Why an issuer's metadata could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot fetch the metadata of {issuer}: {cause}")]
    Fetch { issuer: String, cause: FetchError },
    #[error("the metadata of {0} is not a valid document")]
    Document(String),
    /// RFC 8414 §3.3: the `issuer` in the document must be identical to the issuer asked for,
    /// or an attacker's metadata could impersonate another issuer.
    #[error("the metadata of {issuer} names another issuer ({found})")]
    IssuerMismatch { issuer: String, found: String },
}

/// RFC 8414 §3.1: the well-known path is inserted between the host and any path of the issuer;
/// OpenID Connect Discovery §4 appends its own to the issuer. Both are tried, in that order.
fn metadata_urls(issuer: &str) -> Vec<String> {
    let mut urls = Vec::with_capacity(2);
    if let Ok(url) = url::Url::parse(issuer) {
        let path = url.path().trim_end_matches('/');
        let mut well_known = url.clone();
        well_known.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        urls.push(well_known.to_string());
    }
    urls.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
    urls
}

/// Fetches and checks the metadata of `issuer`.
pub(crate) async fn discover(
    issuer: &str,
    allow_private_networks: bool,
) -> Result<IssuerMetadata, DiscoveryError> {
    let mut last = None;
    for url in metadata_urls(issuer) {
        match get_document(&url, allow_private_networks, MAX_METADATA_BYTES).await {
            Ok(document) => {
                let metadata: IssuerMetadata = serde_json::from_str(&document.body)
                    .map_err(|_| DiscoveryError::Document(issuer.to_owned()))?;
                if metadata.issuer != issuer {
                    return Err(DiscoveryError::IssuerMismatch {
                        issuer: issuer.to_owned(),
                        found: metadata.issuer,
                    });
                }
                return Ok(metadata);
            }
            Err(cause) => last = Some(cause),
        }
    }
    Err(DiscoveryError::Fetch {
        issuer: issuer.to_owned(),
        cause: last.unwrap_or_else(|| FetchError::Url("no metadata URL".into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_3_1_well_known_path_goes_between_host_and_issuer_path() {
        assert_eq!(
            metadata_urls("https://as.example/tenant/a"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant/a",
                "https://as.example/tenant/a/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:8080")[0],
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
    }
}
