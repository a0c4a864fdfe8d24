//! `tessera gateway`: configuration checks as a process.

use std::path::PathBuf;

use crate::support::{Workdir, text};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway/gateway.toml")
}

// The README's complete gateway.toml is valid.
#[test]
fn gateway_check_accepts_the_documented_example() {
    let dir = Workdir::new("gateway-check");
    let example = example();
    let out = dir.tessera(&["gateway", "--config", example.to_str().unwrap(), "--check"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("4 route(s)"), "{}", text(&out.stdout));
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
