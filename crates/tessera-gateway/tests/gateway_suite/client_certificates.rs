//! Certificate-bound tokens (RFC 8705 §3) at the gateway: Tessera binds a token to a client
//! certificate (`cnf.x5t#S256`); the gateway, speaking TLS itself and requesting client
//! certificates, passes the token only over a connection presenting that certificate. Behind
//! a TLS-terminating proxy the certificate header counts only from `tls.trusted_proxies`.
//! Certificates are made with the `openssl` command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::grant_type::GrantType;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tessera_gateway::{Gateway, GatewayConfig};
use tessera_server::config::RawConfig;
use tessera_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{RunningGateway, Upstream, make_pki, now, random, standard_toml};

/// A server certificate for 127.0.0.1, client certificates `client` and `other`.
const CERTIFICATES: &[(&str, &str)] = &[
    ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
    ("client", "subjectAltName=DNS:svc.example\nextendedKeyUsage=clientAuth\n"),
    ("other", "subjectAltName=DNS:other.example\nextendedKeyUsage=clientAuth\n"),
];

/// nginx's `$ssl_client_escaped_cert` of `name.pem`.
fn escaped_pem(pki: &Path, name: &str) -> String {
    let pem = std::fs::read_to_string(pki.join(format!("{name}.pem"))).unwrap();
    percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A Tessera issuer that takes client certificates from a loopback "proxy" header, so that a
/// client registered with certificate-bound tokens gets one bound to `client.pem`.
struct BindingIssuer {
    url: String,
    store: Store,
    db_path: PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for BindingIssuer {
    fn drop(&mut self) {
        self.task.abort();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db_path.display()));
        }
    }
}

impl BindingIssuer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let db_path = std::env::temp_dir().join(format!("tessera-gw-mtls-{}.db", random()));
        let db_url = format!("sqlite://{}", db_path.display());
        let store = Store::connect(&db_url).await.unwrap();
        let settings = tessera_server::Settings::validate(
            RawConfig {
                issuer: Some(url.clone()),
                database_url: Some(db_url),
                key_encryption_key: Some(KeyEncryptionKey::generate_encoded()),
                access_token_signing_alg: Some(SigningAlg::ES256.as_str().into()),
                trusted_proxies: Some(vec!["127.0.0.1/32".into()]),
                tls_client_cert_header: Some("x-ssl-client-cert".into()),
                ..Default::default()
            },
            false,
        )
        .expect("valid issuer settings");
        let clock = Arc::new(tessera_core::clock::SystemClock);
        let state = tessera_server::build_state(settings, store.clone(), clock).await.unwrap();
        let task = tokio::spawn(tessera_server::serve(state, listener));
        BindingIssuer { url, store, db_path, task }
    }

    /// A token for `audience`, bound to the certificate `name` of `pki`.
    async fn bound_token(&self, pki: &Path, name: &str, audience: &str) -> String {
        let id = format!("svc-{}", random());
        let (client, secret) = ClientRegistration {
            client_id: Some(ClientId::parse(&id).unwrap()),
            client_name: id.clone(),
            grant_types: vec![GrantType::ClientCredentials],
            scope: ScopeSet::parse("orders:read").unwrap(),
            default_scope: ScopeSet::parse("orders:read").unwrap(),
            audience: vec![audience.to_owned()],
            auth_method: Some(AuthMethod::ClientSecretPost),
            tls_client_certificate_bound_access_tokens: true,
            ..Default::default()
        }
        .into_client(now())
        .unwrap();
        self.store.create_client(&client).await.unwrap();
        let secret = secret.unwrap();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.expose()),
            ("resource", audience),
        ];
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.url))
            .header("x-ssl-client-cert", escaped_pem(pki, name))
            .form(&form)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert!(claims["cnf"]["x5t#S256"].is_string(), "a bound token: {claims}");
        token
    }
}

/// `GET path` over TLS to `addr`, presenting the client certificate `as_client` or none.
async fn tls_get(
    pki: &Path,
    addr: SocketAddr,
    path: &str,
    token: &str,
    as_client: Option<&str>,
) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.join("ca.pem")).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match as_client {
        Some(name) => {
            let chain =
                vec![CertificateDer::from_pem_file(pki.join(format!("{name}.pem"))).unwrap()];
            let key = PrivateKeyDer::from_pem_file(pki.join(format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// RFC 8705 §3: over the gateway's own TLS listener a certificate-bound token passes with its
/// certificate and is refused with another certificate or none.
#[tokio::test]
async fn rfc8705_3_gateway_refuses_a_bound_token_without_its_certificate() {
    let Some(pki) =
        make_pki("rfc8705_3_gateway_refuses_a_bound_token_without_its_certificate", CERTIFICATES)
    else {
        return;
    };
    let issuer = BindingIssuer::start().await;
    let upstream = Upstream::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.join("server.pem").display(),
        pki.join("server.key").display()
    );
    let toml = standard_toml(&issuer.url, &upstream.url, &tls)
        .replace("{gateway}", &format!("https://{addr}"));
    let gateway = Gateway::new(GatewayConfig::from_toml(&toml).unwrap()).await.unwrap();
    let task = tokio::spawn(gateway.serve(listener, std::future::pending()));
    let audience = format!("https://{addr}/api");
    let token = issuer.bound_token(&pki, "client", &audience).await;
    // Until the gateway has loaded the issuer's keys it answers 503.
    let mut status = 0;
    for _ in 0..100 {
        status = tls_get(&pki, addr, "/api/orders", &token, Some("client")).await;
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the bound token with its certificate");
    assert_eq!(tls_get(&pki, addr, "/api/orders", &token, Some("other")).await, 401);
    assert_eq!(tls_get(&pki, addr, "/api/orders", &token, None).await, 401);
    task.abort();
}

/// Behind a TLS-terminating proxy: `tls.client_cert_header` is believed from a
/// `tls.trusted_proxies` peer and ignored from any other (which could claim any certificate).
#[tokio::test]
async fn rfc8705_gateway_certificate_header_counts_only_from_trusted_proxies() {
    let Some(pki) = make_pki(
        "rfc8705_gateway_certificate_header_counts_only_from_trusted_proxies",
        CERTIFICATES,
    ) else {
        return;
    };
    let issuer = BindingIssuer::start().await;
    let upstream = Upstream::start().await;
    for (trusted, expected) in [("127.0.0.1/32", 200), ("10.0.0.0/8", 401)] {
        let tls = format!(
            "[tls]\nclient_cert_header = \"X-SSL-Client-Cert\"\ntrusted_proxies = [\"{trusted}\"]\n"
        );
        let gateway = RunningGateway::start(&standard_toml(&issuer.url, &upstream.url, &tls)).await;
        let token = issuer.bound_token(&pki, "client", &format!("{}/api", gateway.url)).await;
        let status = gateway
            .get("/api/orders")
            .bearer_auth(&token)
            .header("x-ssl-client-cert", escaped_pem(&pki, "client"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), expected, "trusted_proxies = {trusted}");
    }
}
