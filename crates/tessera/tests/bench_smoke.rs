//! `tessera bench` against `serve --dev`: a short client-credentials run succeeds, and a wrong
//! secret turns every request into an `invalid_client` error that never counts as throughput.
//! Not a timed assertion: only counts and error kinds are checked.

use std::process::{Command, Stdio};

mod support;

use support::{DevServer, Workdir};

fn bench(port: u16, secret: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "bench",
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
            "--scenario",
            "client-credentials",
            "--client-id",
            "demo",
            "--client-secret",
            secret,
            "--connections",
            "4",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--json",
        ])
        .env_remove("TESSERA_BENCH_CLIENT_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not one JSON object: {stdout}"))
}

#[test]
fn bench_client_credentials_counts_successes_and_failures_apart() {
    let w = Workdir::new("bench");
    let server = DevServer::start(&w, &[("TESSERA_CLIENT_RATE_LIMIT_PER_SECOND", "1000000")]);
    let (port, secret) = (server.port, server.demo_secret.clone());

    let good = bench(port, &secret);
    assert_eq!(good["scenario"], "client-credentials");
    assert_eq!(good["connections"], 4);
    assert!(good["requests_ok"].as_u64().unwrap() > 0, "{good}");
    assert_eq!(good["errors"], serde_json::json!({}), "{good}");
    assert!(good["rps"].as_f64().unwrap() > 0.0, "{good}");
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(good["latency_ms"][p].as_f64().unwrap() > 0.0, "{good}");
    }

    let bad = bench(port, "not-the-demo-secret-at-all-not-the-demo-secret");
    assert_eq!(bad["requests_ok"], 0, "a failed request never counts: {bad}");
    assert_eq!(bad["rps"].as_f64().unwrap(), 0.0, "{bad}");
    let errors = bad["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["invalid_client"], "{bad}");
    assert!(errors["invalid_client"].as_u64().unwrap() > 0, "{bad}");
}
