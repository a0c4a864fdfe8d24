//! A token from a real listening server, verified by panva/jose (Node.js) — a JOSE
//! implementation that shares no code with Tessera — through discovery and the JWKS URI.

use crate::common::node_tools::js_tools_available;
use crate::common::*;
use tessera_core::client::AuthMethod;
use tessera_core::keys::SigningAlg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9068_access_tokens_verify_with_an_independent_jose_library() {
    if !js_tools_available("the panva/jose interop test", &["jose"], false) {
        return;
    }
    for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA] {
        let server = LiveServer::start(alg).await;
        let secret =
            register_client(&server.store, "interop", AuthMethod::ClientSecretBasic, "a:r", "a:r")
                .await;
        let stdout =
            run_js("verify_token.mjs", vec![server.issuer.clone(), "interop".into(), secret]).await;
        let verified: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(verified["alg"], alg.as_str());
        assert_eq!(verified["client_id"], "interop");
        assert_eq!(verified["scope"], "a:r");
    }
}
