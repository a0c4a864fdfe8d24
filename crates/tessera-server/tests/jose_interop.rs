//! A token from a real listening server, verified by panva/jose (Node.js) — a JOSE
//! implementation that shares no code with Tessera — through discovery and the JWKS URI.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::*;
use tessera_core::client::AuthMethod;
use tessera_core::clock::SystemClock;
use tessera_core::keys::SigningAlg;
use tessera_store::Store;

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

/// Whether the Node.js check can run; under `CI=true` it must.
fn node_available() -> bool {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let jose = script_dir().join("node_modules/jose").exists();
    if node && jose {
        return true;
    }
    let reason = if node {
        "tests/js/node_modules is missing (run `npm ci --prefix tests/js`)"
    } else {
        "node is not installed"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the JOSE interop test cannot run: {reason}"
    );
    eprintln!("skipping the panva/jose interop test: {reason}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9068_access_tokens_verify_with_an_independent_jose_library() {
    if !node_available() {
        return;
    }
    for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (db_path, url) = temp_db();
        let store = Store::connect(&url).await.unwrap();
        let mut settings = settings(alg, &url);
        settings.issuer = tessera_core::issuer::Issuer::parse(
            &issuer,
            tessera_core::issuer::HttpIssuers::LoopbackOnly,
        )
        .unwrap();
        let state = tessera_server::build_state(settings, store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let secret =
            register_client(&store, "interop", AuthMethod::ClientSecretBasic, "a:r", "a:r").await;
        let server = tokio::spawn(tessera_server::serve(state, listener));

        let script = script_dir().join("verify_token.mjs");
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(script)
                .args([issuer.as_str(), "interop", secret.as_str()])
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        server.abort();
        remove_db(&db_path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{alg}: jose refused the token: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let verified: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(verified["alg"], alg.as_str());
        assert_eq!(verified["client_id"], "interop");
        assert_eq!(verified["scope"], "a:r");
    }
}
