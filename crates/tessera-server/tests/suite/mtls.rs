//! Mutual TLS (RFC 8705) against a real `tessera serve` listener speaking TLS: certificates
//! made by the `openssl` command, a rustls client presenting them, raw HTTP/1.1 over the TLS
//! stream. Also the proxy header (`tls_client_cert_header`), believed only from
//! `trusted_proxies`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tessera_core::client::{AuthMethod, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::keys::{KeyEncryptionKey, SigningAlg};
use tessera_core::mtls::CertificateName;
use tessera_core::scope::ScopeSet;
use tessera_core::store::ClientStore;
use tessera_server::config::RawConfig;
use tessera_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::common::{remove_db, settings_from, t0, temp_db, urlencode};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const EC: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/// A CA; a server certificate for 127.0.0.1; CA-issued client certificates `client`
/// (CN=svc,O=Example, SAN DNS:svc.example) and `intruder` (CN=intruder, SAN
/// DNS:intruder.example); self-signed client certificates `self` and `stranger`.
fn make_pki(test: &str) -> Option<PathBuf> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {test} needs openssl");
        eprintln!("skipping {test}: the openssl command is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("tessera-mtls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = vec!["req", "-x509"];
    ca.extend(EC);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=tessera test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&dir, &ca);
    for (name, subject, ext) in [
        ("server", "/CN=server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        (
            "client",
            "/O=Example/CN=svc",
            "subjectAltName=DNS:svc.example\nextendedKeyUsage=clientAuth\n",
        ),
        (
            "intruder",
            "/CN=intruder",
            "subjectAltName=DNS:intruder.example\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(EC);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        openssl(&dir, &req);
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &extfile,
            ],
        );
    }
    for name in ["self", "stranger"] {
        let (key, pem, subject) =
            (format!("{name}.key"), format!("{name}.pem"), format!("/CN={name}"));
        let mut req = vec!["req", "-x509"];
        req.extend(EC);
        req.extend(["-keyout", &key, "-out", &pem, "-days", "1", "-subj", &subject]);
        openssl(&dir, &req);
        // The public key as DER SubjectPublicKeyInfo, for the client's JWKS.
        openssl(
            &dir,
            &["pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &format!("{name}.spki")],
        );
    }
    Some(dir)
}

/// The EC P-256 public JWK of `name.spki`: the uncompressed point ends the DER.
fn jwk_of(pki: &Path, name: &str) -> Value {
    let spki = std::fs::read(pki.join(format!("{name}.spki"))).unwrap();
    let point = &spki[spki.len() - 65..];
    assert_eq!(point[0], 4, "an uncompressed point");
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    })
}

fn der_of(pki: &Path, name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(pki.join(format!("{name}.pem"))).unwrap().to_vec()
}

/// A Tessera server speaking TLS on a loopback port; stopped when dropped.
struct TlsServer {
    addr: SocketAddr,
    issuer: String,
    store: Store,
    state: tessera_server::AppState,
    pki: PathBuf,
    db_path: PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
        remove_db(&self.db_path);
    }
}

impl TlsServer {
    async fn start(pki: PathBuf) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("https://127.0.0.1:{}", addr.port());
        let (db_path, url) = temp_db();
        let store = Store::connect(&url).await.unwrap();
        let raw = RawConfig {
            issuer: Some(issuer.clone()),
            tls_cert_file: Some(pki.join("server.pem")),
            tls_key_file: Some(pki.join("server.key")),
            tls_client_ca_file: Some(pki.join("ca.pem")),
            ..Default::default()
        };
        let settings =
            settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
        let clock = Arc::new(tessera_core::clock::SystemClock);
        let state = tessera_server::build_state(settings, store.clone(), clock).await.unwrap();
        let task = tokio::spawn(tessera_server::serve(state.clone(), listener));
        TlsServer { addr, issuer, store, state, pki, db_path, task }
    }

    async fn register(&self, registration: ClientRegistration) {
        let (client, _) = registration.into_client(t0()).unwrap();
        self.store.create_client(&client).await.unwrap();
    }

    /// `POST path` with `form` over TLS, presenting the client certificate `as_client` (a
    /// name in the PKI directory) or none; the status and JSON body.
    async fn post(&self, path: &str, form: &str, as_client: Option<&str>) -> (u16, Value) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(self.pki.join("ca.pem")).unwrap()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match as_client {
            Some(name) => {
                let chain = vec![
                    CertificateDer::from_pem_file(self.pki.join(format!("{name}.pem"))).unwrap(),
                ];
                let key =
                    PrivateKeyDer::from_pem_file(self.pki.join(format!("{name}.key"))).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            self.addr,
            form.len()
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

fn registration(id: &str, method: AuthMethod) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("orders:read").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        auth_method: Some(method),
        ..Default::default()
    }
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// RFC 8705 §2.1: a `tls_client_auth` client authenticates with a CA-issued certificate
/// carrying its registered SAN (§2.1.2) or subject DN; a certificate of the same CA with
/// another name, or no certificate, is `invalid_client`.
#[tokio::test]
async fn rfc8705_2_1_tls_client_auth_accepts_the_registered_name_and_refuses_another_certificate() {
    let Some(pki) = make_pki("tls-client-auth") else { return };
    let server = TlsServer::start(pki).await;
    server
        .register(ClientRegistration {
            tls_client_auth_name: Some(CertificateName::SanDns("svc.example".into())),
            ..registration("svc", AuthMethod::TlsClientAuth)
        })
        .await;
    server
        .register(ClientRegistration {
            tls_client_auth_name: Some(
                CertificateName::parse("tls_client_auth_subject_dn", "CN=svc, O=Example").unwrap(),
            ),
            ..registration("by-dn", AuthMethod::TlsClientAuth)
        })
        .await;
    let form = "grant_type=client_credentials&client_id=svc";
    let (status, body) = server.post("/token", form, Some("client")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let (status, body) = server
        .post("/token", "grant_type=client_credentials&client_id=by-dn", Some("client"))
        .await;
    assert_eq!(status, 200, "subject DN match: {body}");

    // Same CA, another name: not this client.
    let (status, body) = server.post("/token", form, Some("intruder")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    // A self-signed certificate with no chain to the CA.
    let (status, body) = server.post("/token", form, Some("self")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    // No certificate at all.
    let (status, body) = server.post("/token", form, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
}

/// RFC 8705 §2.2: `self_signed_tls_client_auth` accepts a certificate whose public key is in
/// the client's registered JWKS, and refuses another self-signed certificate.
#[tokio::test]
async fn rfc8705_2_2_self_signed_certificate_with_a_registered_key_authenticates() {
    let Some(pki) = make_pki("self-signed") else { return };
    let server = TlsServer::start(pki.clone()).await;
    let jwks = serde_json::json!({ "keys": [jwk_of(&pki, "self")] }).to_string();
    server
        .register(ClientRegistration {
            jwks: Some(jwks),
            ..registration("selfie", AuthMethod::SelfSignedTlsClientAuth)
        })
        .await;
    let form = "grant_type=client_credentials&client_id=selfie";
    let (status, body) = server.post("/token", form, Some("self")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.post("/token", form, Some("stranger")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, _) = server.post("/token", form, None).await;
    assert_eq!(status, 401);
}

/// RFC 8705 §3.1, §3.2: a client registered with `tls_client_certificate_bound_access_tokens`
/// gets JWTs with `cnf.x5t#S256` = the SHA-256 of its certificate, and introspection shows
/// the same `cnf`.
#[tokio::test]
async fn rfc8705_3_bound_token_carries_x5t_s256_and_introspection_shows_it() {
    let Some(pki) = make_pki("bound") else { return };
    let server = TlsServer::start(pki.clone()).await;
    server
        .register(ClientRegistration {
            tls_client_auth_name: Some(CertificateName::SanDns("svc.example".into())),
            tls_client_certificate_bound_access_tokens: true,
            introspection: true,
            ..registration("svc", AuthMethod::TlsClientAuth)
        })
        .await;
    let (status, body) =
        server.post("/token", "grant_type=client_credentials&client_id=svc", Some("client")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let expected = URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der_of(&pki, "client")));
    assert_eq!(claims_of(&token)["cnf"]["x5t#S256"], expected.as_str());

    let form = format!("client_id=svc&token={}", urlencode(&token));
    let (status, body) = server.post("/introspect", &form, Some("client")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["cnf"]["x5t#S256"], expected.as_str());

    // A client whose tokens must be bound, asking without a certificate, gets none.
    let (status, body) =
        server.post("/token", "grant_type=client_credentials&client_id=svc", None).await;
    assert_eq!(status, 401, "{body}");
    let _ = &server.issuer;
}

/// RFC 8705 §3.3, §5 and RFC 8414: discovery names the mTLS methods, certificate-bound tokens
/// and the endpoint aliases only when the server can receive certificates.
#[tokio::test]
async fn rfc8705_discovery_advertises_mtls_only_when_usable() {
    let Some(pki) = make_pki("discovery") else { return };
    let server = TlsServer::start(pki).await;
    let request =
        Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
    let res = tessera_server::router(server.state.clone()).oneshot(request).await.unwrap();
    let document: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let methods = document["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&"tls_client_auth".into()));
    assert!(methods.contains(&"self_signed_tls_client_auth".into()));
    assert_eq!(document["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        document["mtls_endpoint_aliases"]["token_endpoint"],
        format!("{}/token", server.issuer)
    );

    let plain = crate::common::spawn_app().await;
    let res = plain.get("/.well-known/oauth-authorization-server").await;
    let document = res.json();
    let methods = document["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(!methods.contains(&"tls_client_auth".into()));
    assert!(!methods.contains(&"self_signed_tls_client_auth".into()));
    assert!(document.get("tls_client_certificate_bound_access_tokens").is_none());
    assert!(document.get("mtls_endpoint_aliases").is_none());
}

/// A request through `app` from `peer` carrying the proxy header with `pem`.
async fn via_proxy(
    state: &tessera_server::AppState,
    peer: &str,
    pem: &str,
    form: &str,
) -> (StatusCode, Value) {
    let escaped: String =
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-ssl-client-cert", escaped)
        .body(Body::from(form.to_owned()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let res = tessera_server::router(state.clone()).oneshot(request).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// RFC 8705 §2 behind a TLS-terminating proxy: the certificate header (nginx's
/// `$ssl_client_escaped_cert`) is used from a `trusted_proxies` peer and ignored from any
/// other, which could otherwise claim any client's certificate.
#[tokio::test]
async fn rfc8705_certificate_header_from_an_untrusted_address_is_ignored() {
    let Some(pki) = make_pki("proxy-header") else { return };
    let (db_path, url) = temp_db();
    let store = Store::connect(&url).await.unwrap();
    let raw = RawConfig {
        trusted_proxies: Some(vec!["10.0.0.0/8".into()]),
        tls_client_cert_header: Some("X-SSL-Client-Cert".into()),
        tls_client_ca_file: Some(pki.join("ca.pem")),
        ..Default::default()
    };
    let settings =
        settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
    let clock = Arc::new(tessera_core::clock::SystemClock);
    let state = tessera_server::build_state(settings, store.clone(), clock).await.unwrap();
    let (client, _) = ClientRegistration {
        tls_client_auth_name: Some(CertificateName::SanDns("svc.example".into())),
        ..registration("svc", AuthMethod::TlsClientAuth)
    }
    .into_client(t0())
    .unwrap();
    store.create_client(&client).await.unwrap();
    let pem = std::fs::read_to_string(pki.join("client.pem")).unwrap();
    let form = "grant_type=client_credentials&client_id=svc";

    let (status, body) = via_proxy(&state, "10.1.2.3:4000", &pem, form).await;
    assert_eq!(status, StatusCode::OK, "from the trusted proxy: {body}");
    let (status, body) = via_proxy(&state, "192.0.2.7:4000", &pem, form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "from anyone else: {body}");
    assert_eq!(body["error"], "invalid_client");
    drop(state);
    remove_db(&db_path);
}

/// `POST /token` with `form` through the router, the connection having presented the
/// certificate `name` (the extension the TLS listener sets), or none.
async fn token_over_tls(
    app: &crate::common::TestApp,
    pki: &Path,
    form: &str,
    name: Option<&str>,
) -> crate::common::Response {
    let mut request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    if let Some(name) = name {
        let chain: Arc<[CertificateDer<'static>]> =
            Arc::from(vec![CertificateDer::from(der_of(pki, name))]);
        request.extensions_mut().insert(tessera_server::tls::PeerCertificates(chain));
    }
    app.request(request).await
}

/// RFC 8705 §4: a public client with certificate-bound tokens gets a refresh token bound to
/// its certificate too: it refreshes with that certificate only (another is `invalid_grant`,
/// and the token stays usable).
#[tokio::test]
async fn rfc8705_4_public_client_refresh_token_is_bound_to_its_certificate() {
    use crate::common::flow;
    let Some(pki) = make_pki("public-refresh") else { return };
    let app = crate::common::spawn_app().await;
    flow::create_user(&app).await;
    app.register(ClientRegistration {
        public: true,
        tls_client_certificate_bound_access_tokens: true,
        ..flow::web_client("spa")
    })
    .await;
    let code = flow::code_for(&app, "spa", "").await;
    let form = format!(
        "grant_type=authorization_code&client_id=spa&code={}&redirect_uri={}&code_verifier={}",
        urlencode(&code),
        urlencode(flow::REDIRECT),
        flow::VERIFIER
    );
    let res = token_over_tls(&app, &pki, &form, Some("client")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    let tokens = res.json();
    let thumbprint = tessera_core::mtls::thumbprint(&der_of(&pki, "client"));
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], thumbprint);
    let refresh = format!(
        "grant_type=refresh_token&client_id=spa&refresh_token={}",
        urlencode(tokens["refresh_token"].as_str().unwrap())
    );
    // Without a certificate this client gets nothing at all; with another one the bound
    // refresh token does not rotate.
    for (other, error) in [(None, "invalid_request"), (Some("intruder"), "invalid_grant")] {
        let res = token_over_tls(&app, &pki, &refresh, other).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{other:?}");
        assert_eq!(res.json()["error"], error, "{other:?}");
    }
    let res = token_over_tls(&app, &pki, &refresh, Some("client")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", flow::page_text(&res));
    assert_eq!(
        claims_of(res.json()["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        thumbprint
    );
}

/// `POST /register` with `metadata` on `state`.
async fn register_json(state: &tessera_server::AppState, metadata: &Value) -> (StatusCode, Value) {
    let request = Request::post("/register")
        .header("content-type", "application/json")
        .body(Body::from(metadata.to_string()))
        .unwrap();
    let res = tessera_server::router(state.clone()).oneshot(request).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// RFC 8705 §2.1.2 through RFC 7591: the metadata rules shared with `tessera client create`
/// (exactly one name for `tls_client_auth`), and no registration of a method the server does
/// not advertise.
#[tokio::test]
async fn rfc8705_2_1_2_registration_takes_one_certificate_name_and_only_usable_methods() {
    let Some(pki) = make_pki("registration") else { return };
    let metadata = |extra: Value| {
        let mut m = serde_json::json!({
            "client_name": "mtls app",
            "redirect_uris": [crate::common::flow::REDIRECT],
            "token_endpoint_auth_method": "tls_client_auth",
        });
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        m
    };
    let start = |raw: RawConfig| async move {
        let (db_path, url) = temp_db();
        let store = Store::connect(&url).await.unwrap();
        let raw = RawConfig { registration_policy: Some("open".into()), ..raw };
        let settings =
            settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
        let clock = Arc::new(tessera_core::clock::SystemClock);
        (tessera_server::build_state(settings, store, clock).await.unwrap(), db_path)
    };
    // No way to receive certificates: the method is neither advertised nor registrable.
    let (plain, plain_db) = start(RawConfig::default()).await;
    let (status, body) = register_json(
        &plain,
        &metadata(serde_json::json!({"tls_client_auth_san_dns": "a.example"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );

    let (proxied, proxied_db) = start(RawConfig {
        trusted_proxies: Some(vec!["10.0.0.0/8".into()]),
        tls_client_cert_header: Some("x-ssl-client-cert".into()),
        tls_client_ca_file: Some(pki.join("ca.pem")),
        ..Default::default()
    })
    .await;
    let (status, body) = register_json(
        &proxied,
        &metadata(serde_json::json!({"tls_client_auth_san_dns": "app.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(body["tls_client_auth_san_dns"], "app.example");
    assert!(body.get("client_secret").is_none(), "no secret for a certificate client");
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"tls_client_auth_san_dns": "a.example", "tls_client_auth_san_ip": "10.0.0.1"}),
        serde_json::json!({"tls_client_auth_san_ip": "not an address"}),
        serde_json::json!({"tls_client_auth_subject_dn": "NOPE=x"}),
        serde_json::json!({"token_endpoint_auth_method": "client_secret_basic", "tls_client_auth_san_dns": "a.example"}),
    ] {
        let (status, body) = register_json(&proxied, &metadata(bad.clone())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")),
            "{bad}"
        );
    }
    drop((plain, proxied));
    remove_db(&plain_db);
    remove_db(&proxied_db);
}

/// The TLS listener keeps the listener's protections: a client that opens a connection and
/// never completes the handshake is disconnected after `header_read_timeout_seconds`.
#[tokio::test]
async fn tls_listener_closes_a_stalled_handshake_after_the_header_read_timeout() {
    let Some(pki) = make_pki("stalled") else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (db_path, url) = temp_db();
    let store = Store::connect(&url).await.unwrap();
    let raw = RawConfig {
        issuer: Some(format!("https://127.0.0.1:{}", addr.port())),
        tls_cert_file: Some(pki.join("server.pem")),
        tls_key_file: Some(pki.join("server.key")),
        header_read_timeout_seconds: Some(1),
        ..Default::default()
    };
    let settings =
        settings_from(SigningAlg::ES256, &url, &KeyEncryptionKey::generate_encoded(), raw);
    let clock = Arc::new(tessera_core::clock::SystemClock);
    let state = tessera_server::build_state(settings, store, clock).await.unwrap();
    let task = tokio::spawn(tessera_server::serve(state, listener));
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stalled.read(&mut buffer))
        .await
        .expect("the server closes the stalled connection");
    assert!(matches!(read, Ok(0) | Err(_)), "closed, not answered: {read:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    task.abort();
    remove_db(&db_path);
}
