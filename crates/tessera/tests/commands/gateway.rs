//! `tessera gateway`: configuration checks as a process.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{DevServer, KillOnDrop, Workdir, free_port, http, post_form, text};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway/gateway.toml")
}

// The README's complete gateway.toml is valid.
#[test]
fn gateway_check_accepts_the_documented_example() {
    let dir = Workdir::new("gateway-check");
    let example = example();
    // The exchange route reads the gateway's client secret from this variable.
    let out = dir
        .command(&["gateway", "--config", example.to_str().unwrap(), "--check"])
        .env("TESSERA_GATEWAY_CLIENT_SECRET", "secret-of-the-gateway")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("5 route(s)"), "{}", text(&out.stdout));
}

// A wrong value is reported with its key, and the command fails.
#[test]
fn gateway_check_names_the_bad_key() {
    let dir = Workdir::new("gateway-bad");
    let bad = std::fs::read_to_string(example())
        .unwrap()
        .replace("upstream = \"http://127.0.0.1:9100\"", "upstream = \"ftp://x\"");
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, bad).unwrap();
    let out = dir.tessera(&["gateway", "--config", file.to_str().unwrap(), "--check"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("routes[1].upstream:"), "{stderr}");
}

// The quick form needs no file.
#[test]
fn gateway_quick_form_checks_without_a_file() {
    let dir = Workdir::new("gateway-quick");
    let out = dir.tessera(
        &[
            "gateway",
            "--issuer",
            "https://id.example",
            "--audience",
            "https://api.example/",
            "--upstream",
            "http://127.0.0.1:9000",
            "--listen",
            "127.0.0.1:8000",
            "--scope",
            "read",
            "--check",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 route(s)"));
}

// The quick form runs for real, and its audit line names the caller and the decision but
// never carries the token (requirements R9: one decision event per request, no token).
#[test]
fn gateway_quick_form_audits_each_decision_without_the_token() {
    let w = Workdir::new("gateway-audit");
    let server = DevServer::start(&w, &[]);
    let issuer = server.issuer();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("demo:{}", server.demo_secret),
    );
    let (status, tokens) =
        post_form(server.port, "/token", Some(&basic), "grant_type=client_credentials");
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let port = free_port();
    // Nothing listens upstream: the request is allowed, then answered 502.
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let child = w
        .command(&[
            "gateway",
            "--issuer",
            &issuer,
            "--audience",
            &issuer,
            "--upstream",
            &upstream,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--scope",
            "demo:read",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut gateway = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0 == 200;
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let request = format!(
        "GET /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(port, &request).0, 502);
    let anonymous = "GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(http(port, anonymous).0, 401);
    let _ = gateway.0.kill();
    let mut log = String::new();
    gateway.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let audit: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "tessera::gateway::audit")
        .collect();
    assert_eq!(audit.len(), 2, "{log}");
    assert_eq!(audit[0]["decision"], "upstream_error");
    assert_eq!(audit[0]["client_id"], "demo");
    assert_eq!(audit[1]["decision"], "unauthenticated");
    assert!(!log.contains(&token), "a token reached the log");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token's signature reached the log");
}
