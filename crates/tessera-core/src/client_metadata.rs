//! Client metadata as RFC 7591 §2 names it, and the one set of rules that turns it into a
//! [`ClientRegistration`]: `/register` (RFC 7591, RFC 7592 updates) parses a JSON document into
//! [`ClientMetadata`], and `tessera client create` builds the same value from its flags, so an
//! operator and a self-registering client are held to the same checks.

use crate::client::{ApplicationType, AuthMethod, ClientLinks, ClientRegistration};
use crate::grant_type::GrantType;
use crate::keys::SigningAlg;
use crate::redirect_uri::RedirectUri;
use crate::scope::{Scope, ScopeSet};

/// RFC 7591 §2 client metadata. Members this server does not know are ignored (RFC 7591 §2:
/// "the authorization server MUST ignore any client metadata sent by the client that it does
/// not understand").
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub scope: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub application_type: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 8705 §2.1.2: at most one of these, for `tls_client_auth`.
    pub tls_client_auth_subject_dn: Option<String>,
    pub tls_client_auth_san_dns: Option<String>,
    pub tls_client_auth_san_uri: Option<String>,
    pub tls_client_auth_san_ip: Option<String>,
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 8705 §3.4: bind its access tokens to its certificate.
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// OIDC Registration §2: the JWS algorithm of its ID tokens (RS256 when omitted).
    pub id_token_signed_response_alg: Option<String>,
}

/// Why metadata was refused, as RFC 7591 §3.2.2 names the two cases.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`: a redirect URI breaks a registration rule.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`: any other member is invalid.
    #[error("{0}")]
    InvalidClientMetadata(String),
}

/// Longest `client_name` accepted: it is shown on the consent page.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;

impl ClientMetadata {
    /// Checks the metadata and turns it into a registration with no operator-only settings
    /// (not first-party, no introspection, the issuer as audience); the caller adds those.
    /// [`ClientRegistration::into_client`] then applies the checks shared with every client.
    pub fn into_registration(self) -> Result<ClientRegistration, MetadataError> {
        use MetadataError::{InvalidClientMetadata as Meta, InvalidRedirectUri as Redirect};
        let tls_client_auth_name = self.tls_client_auth_name()?;
        let client_name = self.client_name.unwrap_or_default();
        let client_name = client_name.trim();
        if client_name.is_empty() {
            return Err(Meta("client_name is required: the consent page names who asks".into()));
        }
        if client_name.chars().count() > MAX_CLIENT_NAME_CHARS
            || client_name.chars().any(char::is_control)
        {
            return Err(Meta(format!(
                "client_name must be at most {MAX_CLIENT_NAME_CHARS} characters without control \
                 characters"
            )));
        }
        let application_type = self
            .application_type
            .as_deref()
            .map(|t| {
                ApplicationType::parse(t)
                    .ok_or_else(|| Meta(format!("application_type `{t}` is not web or native")))
            })
            .transpose()?;
        let uris = |values: &[String]| -> Result<Vec<RedirectUri>, MetadataError> {
            values
                .iter()
                .map(|u| {
                    let uri = RedirectUri::parse_for_registration(u).map_err(Redirect)?;
                    check_application_type(application_type, u).map_err(Redirect)?;
                    Ok(uri)
                })
                .collect()
        };
        let redirect_uris = uris(&self.redirect_uris)?;
        let post_logout_redirect_uris = uris(&self.post_logout_redirect_uris)?;
        let grant_types = self
            .grant_types
            .iter()
            .map(|g| {
                GrantType::parse(g).ok_or_else(|| {
                    let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
                    Meta(format!("unknown grant type `{g}`; known: {}", known.join(", ")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // RFC 7591 §2.1: `code` is the only response type OAuth 2.1 keeps, and it goes with
        // the authorization_code grant.
        if let Some(other) = self.response_types.iter().find(|r| *r != "code") {
            return Err(Meta(format!("response type `{other}` is not supported; use `code`")));
        }
        if !self.response_types.is_empty()
            && !grant_types.is_empty()
            && !grant_types.contains(&GrantType::AuthorizationCode)
        {
            return Err(Meta(
                "response type `code` needs the authorization_code grant (RFC 7591 §2.1)".into(),
            ));
        }
        let auth_method = self
            .token_endpoint_auth_method
            .as_deref()
            .map(|m| {
                AuthMethod::parse(m).ok_or_else(|| {
                    Meta(format!(
                        "unknown token_endpoint_auth_method `{m}`; use client_secret_basic, \
                         client_secret_post, private_key_jwt, tls_client_auth, \
                         self_signed_tls_client_auth or none"
                    ))
                })
            })
            .transpose()?;
        let scope = match &self.scope {
            None => ScopeSet::default(),
            Some(raw) => ScopeSet::from_scopes(
                raw.split_whitespace()
                    .map(Scope::parse_registered)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Meta)?,
            ),
        };
        // RFC 7591 §2: `jwks` and `jwks_uri` MUST NOT both be present.
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(Meta("jwks and jwks_uri must not both be present (RFC 7591 §2)".into()));
        }
        let jwks = match self.jwks {
            None => None,
            Some(value) => {
                let text = value.to_string();
                tessera_jose::Jwks::parse(&text).map_err(|e| Meta(format!("jwks: {e}")))?;
                Some(text)
            }
        };
        if let Some(uri) = &self.jwks_uri {
            https_url("jwks_uri", uri).map_err(Meta)?;
        }
        match (auth_method, &tls_client_auth_name) {
            (Some(AuthMethod::TlsClientAuth), None) => {
                return Err(Meta(
                    "tls_client_auth needs one of tls_client_auth_subject_dn, _san_dns, \
                     _san_uri, _san_ip or _san_email (RFC 8705 §2.1.2)"
                        .into(),
                ));
            }
            (Some(AuthMethod::TlsClientAuth), Some(_)) | (_, None) => {}
            (_, Some(name)) => {
                return Err(Meta(format!(
                    "{} is for the tls_client_auth method only (RFC 8705 §2.1.2)",
                    name.member()
                )));
            }
        }
        if auth_method == Some(AuthMethod::SelfSignedTlsClientAuth)
            && jwks.is_none()
            && self.jwks_uri.is_none()
        {
            return Err(Meta(
                "self_signed_tls_client_auth needs jwks or jwks_uri with the certificate's key \
                 (RFC 8705 §2.2.2)"
                    .into(),
            ));
        }
        // OIDC Registration §2 `id_token_signed_response_alg`: one this server signs with
        // (`none` is refused: an unsigned ID token is never issued).
        let id_token_signed_response_alg = self
            .id_token_signed_response_alg
            .as_deref()
            .map(|alg| {
                SigningAlg::parse(alg).ok_or_else(|| {
                    Meta(format!(
                        "id_token_signed_response_alg `{alg}` is not supported; use RS256, ES256 \
                         or EdDSA"
                    ))
                })
            })
            .transpose()?;
        let links = ClientLinks {
            client_uri: link("client_uri", self.client_uri)?,
            logo_uri: link("logo_uri", self.logo_uri)?,
            tos_uri: link("tos_uri", self.tos_uri)?,
            policy_uri: link("policy_uri", self.policy_uri)?,
        };
        Ok(ClientRegistration {
            client_name: client_name.to_owned(),
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            default_scope: scope.clone(),
            scope,
            public: auth_method == Some(AuthMethod::None),
            auth_method: auth_method.filter(|m| *m != AuthMethod::None),
            jwks,
            jwks_uri: self.jwks_uri,
            application_type,
            links,
            tls_client_auth_name,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens
                .unwrap_or(false),
            id_token_signed_response_alg,
            ..Default::default()
        })
    }

    /// RFC 8705 §2.1.2: "A client using the tls_client_auth authentication method MUST use
    /// exactly one of" the subject and SAN members.
    fn tls_client_auth_name(&self) -> Result<Option<crate::mtls::CertificateName>, MetadataError> {
        let given: Vec<(&str, &String)> = crate::mtls::CertificateName::MEMBERS
            .into_iter()
            .zip([
                &self.tls_client_auth_subject_dn,
                &self.tls_client_auth_san_dns,
                &self.tls_client_auth_san_uri,
                &self.tls_client_auth_san_ip,
                &self.tls_client_auth_san_email,
            ])
            .filter_map(|(member, value)| value.as_ref().map(|v| (member, v)))
            .collect();
        match given.as_slice() {
            [] => Ok(None),
            [(member, value)] => crate::mtls::CertificateName::parse(member, value)
                .map(Some)
                .map_err(MetadataError::InvalidClientMetadata),
            _ => Err(MetadataError::InvalidClientMetadata(
                "only one of tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip and \
                 _san_email may be registered (RFC 8705 §2.1.2)"
                    .into(),
            )),
        }
    }
}

/// Whether a client_id names a client ID metadata document
/// (draft-ietf-oauth-client-id-metadata-document §3): an https URL with a path and without a
/// fragment, user-info, or dot segments. `allow_http` admits http too, for the loopback test
/// servers that `outbound_allow_private_networks` lets the fetcher reach.
pub fn is_metadata_document_url(client_id: &str, allow_http: bool) -> bool {
    let scheme_ok =
        client_id.starts_with("https://") || (allow_http && client_id.starts_with("http://"));
    if !scheme_ok || client_id.contains('#') {
        return false;
    }
    let Ok(url) = url::Url::parse(client_id) else { return false };
    // §3: the URL is used exactly as written, so it must already be in its normal form.
    url.as_str() == client_id
        && url.path() != "/"
        && url.username().is_empty()
        && url.password().is_none()
        && !client_id.contains("/./")
        && !client_id.contains("/../")
}

/// A client ID metadata document (draft-ietf-oauth-client-id-metadata-document §4): RFC 7591
/// metadata plus its own `client_id`, published at that URL by the client.
#[derive(Debug, Default, serde::Deserialize)]
pub struct MetadataDocument {
    pub client_id: Option<String>,
    /// §4.1: a document carries no shared secret.
    pub client_secret: Option<serde_json::Value>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

impl MetadataDocument {
    /// Checks a document fetched from `url` and turns it into a registration for the client
    /// `url` names (the caller adds its scopes). §4.1: `client_id` equals the URL exactly,
    /// `client_name` and `redirect_uris` are present, no secret, and the client is public
    /// (`none`) or proves a key (`private_key_jwt`).
    pub fn into_registration(self, url: &str) -> Result<ClientRegistration, MetadataError> {
        use MetadataError::InvalidClientMetadata as Meta;
        if self.client_id.as_deref() != Some(url) {
            return Err(Meta("the document's client_id is not the URL it was fetched from".into()));
        }
        if self.client_secret.is_some() {
            return Err(Meta("a client ID metadata document must not carry a secret".into()));
        }
        if self.metadata.redirect_uris.is_empty() {
            return Err(Meta("redirect_uris is required".into()));
        }
        let method =
            self.metadata.token_endpoint_auth_method.clone().unwrap_or_else(|| "none".into());
        if !matches!(method.as_str(), "none" | "private_key_jwt") {
            return Err(Meta(format!(
                "token_endpoint_auth_method `{method}`: only none or private_key_jwt"
            )));
        }
        let mut metadata = self.metadata;
        metadata.token_endpoint_auth_method = Some(method);
        let mut registration = metadata.into_registration()?;
        registration.client_id = Some(
            crate::client_id::ClientId::parse(url)
                .map_err(|e| Meta(format!("the URL is not a usable client_id: {e}")))?,
        );
        Ok(registration)
    }
}

/// OIDC Dynamic Client Registration 1.0 §2 `application_type`: a web client uses https on a
/// host other than localhost; a native client (RFC 8252 §7) uses a private-use scheme, http
/// on a loopback IP literal, or a claimed https URL. Without a declared type only the general
/// rules of [`RedirectUri::parse_for_registration`] apply.
fn check_application_type(kind: Option<ApplicationType>, raw: &str) -> Result<(), String> {
    let Some(kind) = kind else { return Ok(()) };
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}`: {e}"))?;
    match kind {
        ApplicationType::Web => {
            let local = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => true,
            };
            if url.scheme() != "https" || local {
                return Err(format!(
                    "`{raw}`: a web application's redirect URIs use https on a real host \
                     (OIDC Registration §2); register it as application_type native instead"
                ));
            }
        }
        // RFC 8252 §7.1 – §7.3: every form the general rules admit is one of the three
        // native forms.
        ApplicationType::Native => {}
    }
    Ok(())
}

fn https_url(member: &str, raw: &str) -> Result<(), String> {
    match url::Url::parse(raw) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() && !raw.contains('#') => Ok(()),
        _ => Err(format!("{member} `{raw}` must be an absolute https URL without a fragment")),
    }
}

/// A page the client names about itself: shown to users, so https only.
fn link(member: &str, value: Option<String>) -> Result<Option<String>, MetadataError> {
    if let Some(raw) = &value {
        https_url(member, raw).map_err(MetadataError::InvalidClientMetadata)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: serde_json::Value) -> ClientMetadata {
        serde_json::from_value(json).unwrap()
    }

    fn refused(json: serde_json::Value) -> MetadataError {
        metadata(json).into_registration().unwrap_err()
    }

    #[test]
    fn rfc7591_2_unknown_members_are_ignored() {
        let reg = metadata(serde_json::json!({
            "client_name": "App",
            "redirect_uris": ["https://app.example/cb"],
            "software_statement_extension": {"anything": true},
            "contacts": ["ops@app.example"],
        }))
        .into_registration()
        .unwrap();
        assert_eq!(reg.client_name, "App");
        assert_eq!(reg.redirect_uris[0].as_str(), "https://app.example/cb");
    }

    #[test]
    fn rfc7591_3_2_2_bad_redirect_uri_is_invalid_redirect_uri() {
        let e = refused(serde_json::json!({
            "client_name": "App", "redirect_uris": ["http://app.example/cb"],
        }));
        assert!(matches!(e, MetadataError::InvalidRedirectUri(_)), "{e:?}");
        let e = refused(serde_json::json!({
            "client_name": "App", "redirect_uris": ["https://app.example/cb#frag"],
        }));
        assert!(matches!(e, MetadataError::InvalidRedirectUri(_)), "{e:?}");
    }

    #[test]
    fn oidc_registration_2_web_applications_use_https_on_a_real_host() {
        let e = refused(serde_json::json!({
            "client_name": "App", "application_type": "web",
            "redirect_uris": ["http://127.0.0.1:8400/cb"],
        }));
        assert!(matches!(e, MetadataError::InvalidRedirectUri(_)), "{e:?}");
        let e = refused(serde_json::json!({
            "client_name": "App", "application_type": "web",
            "redirect_uris": ["com.example.app:/cb"],
        }));
        assert!(matches!(e, MetadataError::InvalidRedirectUri(_)), "{e:?}");
    }

    #[test]
    fn rfc8252_7_native_applications_may_use_loopback_and_private_use_schemes() {
        let reg = metadata(serde_json::json!({
            "client_name": "Cli", "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1/cb", "com.example.app:/cb", "https://app.example/cb"],
        }))
        .into_registration()
        .unwrap();
        assert!(reg.public);
        assert_eq!(reg.application_type, Some(ApplicationType::Native));
        let e = refused(serde_json::json!({
            "client_name": "Cli", "application_type": "desktop", "redirect_uris": [],
        }));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
    }

    #[test]
    fn oidc_registration_2_id_token_signed_response_alg_is_one_the_server_signs_with() {
        let base =
            serde_json::json!({"client_name": "app", "redirect_uris": ["https://app.example/cb"]});
        let with = |alg: &str| {
            let mut json = base.clone();
            json["id_token_signed_response_alg"] = alg.into();
            json
        };
        assert_eq!(
            metadata(base.clone()).into_registration().unwrap().id_token_signed_response_alg,
            None
        );
        for alg in SigningAlg::ALL {
            let registration = metadata(with(alg.as_str())).into_registration().unwrap();
            assert_eq!(registration.id_token_signed_response_alg, Some(alg));
        }
        for unsupported in ["none", "HS256", "PS256", "es256"] {
            let MetadataError::InvalidClientMetadata(why) = refused(with(unsupported)) else {
                panic!("{unsupported}: not invalid_client_metadata")
            };
            assert!(why.contains("id_token_signed_response_alg"), "{why}");
        }
    }

    #[test]
    fn rfc7591_2_jwks_and_jwks_uri_are_exclusive_and_checked() {
        let e = refused(serde_json::json!({
            "client_name": "App", "jwks": {"keys": []}, "jwks_uri": "https://app.example/jwks",
        }));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
        let e = refused(serde_json::json!({
            "client_name": "App", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        }));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
        let e = refused(serde_json::json!({
            "client_name": "App", "jwks_uri": "http://app.example/jwks",
        }));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
    }

    #[test]
    fn rfc7591_2_client_pages_are_https_urls() {
        for member in ["client_uri", "logo_uri", "tos_uri", "policy_uri"] {
            let mut json = serde_json::json!({"client_name": "App"});
            json[member] = "javascript:alert(1)".into();
            assert!(matches!(refused(json), MetadataError::InvalidClientMetadata(_)), "{member}");
        }
        let reg = metadata(serde_json::json!({
            "client_name": "App", "logo_uri": "https://app.example/logo.png",
        }))
        .into_registration()
        .unwrap();
        assert_eq!(reg.links.logo_uri.as_deref(), Some("https://app.example/logo.png"));
    }

    #[test]
    fn rfc7591_2_1_only_the_code_response_type_with_its_grant() {
        let e = refused(serde_json::json!({"client_name": "App", "response_types": ["token"]}));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
        let e = refused(serde_json::json!({
            "client_name": "App", "response_types": ["code"], "grant_types": ["refresh_token"],
        }));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
        let e = refused(serde_json::json!({"client_name": "App", "grant_types": ["password"]}));
        assert!(matches!(e, MetadataError::InvalidClientMetadata(_)), "{e:?}");
    }

    const DOC_URL: &str = "https://agent.example/oauth/client.json";

    fn document(json: serde_json::Value) -> Result<ClientRegistration, MetadataError> {
        serde_json::from_value::<MetadataDocument>(json).unwrap().into_registration(DOC_URL)
    }

    #[test]
    fn cimd_3_client_ids_are_https_urls_with_a_path_in_normal_form() {
        assert!(is_metadata_document_url(DOC_URL, false));
        assert!(!is_metadata_document_url("http://agent.example/client.json", false));
        assert!(is_metadata_document_url("http://127.0.0.1:8/client.json", true));
        assert!(!is_metadata_document_url("https://agent.example", false), "no path");
        assert!(!is_metadata_document_url("https://agent.example/", false), "no path");
        assert!(!is_metadata_document_url("https://agent.example/a#b", false));
        assert!(!is_metadata_document_url("https://u:p@agent.example/a", false));
        assert!(!is_metadata_document_url("https://agent.example/a/../b", false));
        assert!(!is_metadata_document_url("https://AGENT.example/a", false), "not normal");
        assert!(!is_metadata_document_url("billing-service", false));
    }

    #[test]
    fn cimd_4_1_document_client_id_must_equal_the_url_exactly() {
        let base = |id: &str| {
            serde_json::json!({
                "client_id": id, "client_name": "Agent",
                "redirect_uris": ["http://127.0.0.1:33418/cb"],
            })
        };
        let reg = document(base(DOC_URL)).unwrap();
        assert_eq!(reg.client_id.unwrap().as_str(), DOC_URL);
        assert!(reg.public, "no method means none");
        for other in ["https://agent.example/oauth/client.json/", "https://evil.example/x.json"] {
            assert!(matches!(document(base(other)), Err(MetadataError::InvalidClientMetadata(_))));
        }
    }

    #[test]
    fn cimd_4_1_documents_need_redirect_uris_and_no_shared_secret() {
        let no_redirects = serde_json::json!({"client_id": DOC_URL, "client_name": "Agent"});
        assert!(document(no_redirects).is_err());
        for (member, value) in [
            ("client_secret", serde_json::json!("s3cret")),
            ("token_endpoint_auth_method", serde_json::json!("client_secret_basic")),
        ] {
            let mut doc = serde_json::json!({
                "client_id": DOC_URL, "client_name": "Agent",
                "redirect_uris": ["https://agent.example/cb"],
            });
            doc[member] = value;
            assert!(matches!(document(doc), Err(MetadataError::InvalidClientMetadata(_))));
        }
    }

    #[test]
    fn client_name_is_required_and_short() {
        assert!(matches!(
            refused(serde_json::json!({"redirect_uris": ["https://app.example/cb"]})),
            MetadataError::InvalidClientMetadata(_)
        ));
        assert!(matches!(
            refused(serde_json::json!({"client_name": "x".repeat(101)})),
            MetadataError::InvalidClientMetadata(_)
        ));
    }
}
