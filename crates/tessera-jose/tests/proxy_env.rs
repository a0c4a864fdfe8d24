//! The fetcher ignores `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`: a proxy resolves the name
//! itself, so it would bypass the address that the SSRF guard checked and pinned. This is the
//! only test of its binary, because it sets process-wide environment variables.

mod support;

use std::time::Duration;

use support::{JWKS, TestServer};
use tessera_jose::JwksFetcher;

#[test]
fn ssrf_proxy_environment_variables_are_ignored() {
    for name in ["NO_PROXY", "no_proxy"] {
        // SAFETY: no other thread runs yet: this is the only test of this binary, and the
        // runtime is built below.
        unsafe { std::env::remove_var(name) };
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (target, proxy) = runtime.block_on(async {
        (
            TestServer::start(200, JWKS, Duration::ZERO).await,
            TestServer::start(502, "{}", Duration::ZERO).await,
        )
    });
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    {
        // SAFETY: the runtime's threads do not read the environment while they are idle; the
        // servers only accept connections.
        unsafe { std::env::set_var(name, &proxy_url) };
    }
    let fetched = runtime.block_on(JwksFetcher::new(true).get(&target.url(), false));
    assert!(fetched.is_ok(), "{fetched:?}");
    assert_eq!((target.requests(), proxy.requests()), (1, 0), "the request went direct");
}
