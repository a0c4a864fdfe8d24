//! https upstreams: the gateway verifies the upstream's certificate against `ca_file` and
//! presents its own client certificate (mTLS) when configured. Certificates are made with the
//! `openssl` command; the upstream is rustls requiring a client certificate.

use std::path::Path;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{RunningGateway, World, make_pki, standard_toml};

/// A server certificate for 127.0.0.1 and the gateway's client certificate.
const CERTIFICATES: &[(&str, &str)] = &[
    ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
    ("client", "subjectAltName=DNS:gateway.test\nextendedKeyUsage=clientAuth\n"),
];

/// An https upstream that requires a client certificate signed by the test CA.
async fn mtls_upstream(pki: &Path) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain: Vec<_> = CertificateDer::pem_file_iter(pki.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake without an acceptable client certificate fails here.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"mtls ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    url
}

fn tls_route(upstream: &str) -> String {
    format!(
        "[[routes]]\nname = \"tls\"\npath_prefix = \"/tls\"\nupstream = \"{upstream}\"\nanonymous = true"
    )
}

// The gateway reaches an https upstream that demands mTLS: with ca_file and its client
// certificate it gets through; without the certificate the handshake fails and the client
// gets a 502, not a hang.
#[tokio::test]
async fn https_upstream_with_client_certificate() {
    let Some(pki) = make_pki("https_upstream_with_client_certificate", CERTIFICATES) else {
        return;
    };
    let w = World::start().await;
    let upstream = mtls_upstream(&pki).await;
    let p = |f: &str| pki.join(f).display().to_string();
    let tls = format!(
        "[upstream_tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        p("ca.pem"),
        p("client.pem"),
        p("client.key")
    );
    let with_cert = standard_toml(&w.issuer.url, &w.upstream.url, &tls_route(&upstream))
        .replace("[identity]", &format!("{tls}[identity]"));
    let gateway = RunningGateway::start(&with_cert).await;
    let response = gateway.get("/tls/x").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "mtls ok");

    let ca_only = format!("[upstream_tls]\nca_file = \"{}\"\n", p("ca.pem"));
    let without_cert = standard_toml(&w.issuer.url, &w.upstream.url, &tls_route(&upstream))
        .replace("[identity]", &format!("{ca_only}[identity]"));
    let gateway = RunningGateway::start(&without_cert).await;
    assert_eq!(gateway.get("/tls/x").send().await.unwrap().status(), 502);
    let _ = std::fs::remove_dir_all(&pki);
}
