//! `tessera bench` against `serve --dev`: a short client-credentials run succeeds, and a wrong
//! secret turns every request into an `invalid_client` error that never counts as throughput.
//! Not a timed assertion: only counts and error kinds are checked.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Workdir(PathBuf);

impl Workdir {
    fn new() -> Self {
        let nonce =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir =
            std::env::temp_dir().join(format!("tessera-bench-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `serve --dev` and returns the demo client's secret from the banner.
fn start_dev_server(w: &Workdir, port: u16) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_ISSUER")
        .env("TESSERA_LOG", "warn")
        .env("TESSERA_CLIENT_RATE_LIMIT_PER_SECOND", "1000000")
        .current_dir(&w.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut secret = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim_start().strip_prefix("client secret") {
            secret = rest.split_whitespace().next().map(str::to_owned);
        }
        // The curl line comes last in the banner: the server is listening by then.
        if line.trim_start().starts_with("curl ") {
            break;
        }
        assert!(Instant::now() < deadline, "no banner from serve --dev");
    }
    // Keep draining stdout so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (server, secret.expect("the banner prints the demo client's secret"))
}

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
    let w = Workdir::new();
    let port = free_port();
    let (_server, secret) = start_dev_server(&w, port);

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
