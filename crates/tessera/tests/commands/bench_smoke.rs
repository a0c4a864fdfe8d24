//! `tessera bench` against `serve --dev`: short runs succeed, and failures (a wrong client
//! secret, a wrong password) are counted by kind and never as throughput. Not a timed
//! assertion: only counts and error kinds are checked.

use std::process::{Command, Stdio};

use crate::support::{DevServer, Workdir};
use serde_json::{Value, json};

/// Runs `tessera bench --issuer … --warmup 0s --json ARGS` and returns its JSON report.
fn bench(port: u16, args: &[&str]) -> Value {
    let issuer = format!("http://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["bench", "--issuer", &issuer, "--warmup", "0s", "--json"])
        .args(args)
        .env_remove("TESSERA_BENCH_CLIENT_SECRET")
        .env_remove("TESSERA_BENCH_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not one JSON object: {stdout}"))
}

fn client_credentials(port: u16, secret: &str) -> Value {
    // `--client-secret=…` in one argument: a base64url secret may begin with `-`.
    let secret = format!("--client-secret={secret}");
    let args = ["--scenario", "client-credentials", "--client-id", "demo", &secret];
    bench(port, &[&args[..], &["--connections", "4", "--duration", "2s"]].concat())
}

#[test]
fn bench_client_credentials_counts_successes_and_failures_apart() {
    let w = Workdir::new("bench");
    // Wrong secrets from one source are limited too (issue 17 finding 5): lift both limits to
    // count every failure as invalid_client.
    let server = DevServer::start(
        &w,
        &[
            ("TESSERA_CLIENT_RATE_LIMIT_PER_SECOND", "1000000"),
            ("TESSERA_CLIENT_AUTH_FAILURES_PER_SOURCE", "1000000"),
        ],
    );
    let (port, secret) = (server.port, server.demo_secret.clone());

    let good = client_credentials(port, &secret);
    assert_eq!(good["scenario"], "client-credentials");
    assert_eq!(good["connections"], 4);
    assert!(good["requests_ok"].as_u64().unwrap() > 0, "{good}");
    assert_eq!(good["errors"], json!({}), "{good}");
    assert!(good["rps"].as_f64().unwrap() > 0.0, "{good}");
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(good["latency_ms"][p].as_f64().unwrap() > 0.0, "{good}");
    }

    let bad = client_credentials(port, "not-the-demo-secret-at-all-not-the-demo-secret");
    assert_eq!(bad["requests_ok"], 0, "a failed request never counts: {bad}");
    assert_eq!(bad["rps"].as_f64().unwrap(), 0.0, "{bad}");
    let errors = bad["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["invalid_client"], "{bad}");
    assert!(errors["invalid_client"].as_u64().unwrap() > 0, "{bad}");
}

const PASSWORD: &str = "correct horse battery staple";
/// Registered for the client and never requested: the code is read from the redirect to it.
const REDIRECT_URI: &str = "https://client.example/callback";

/// Creates the users and a confidential client with the authorization_code and refresh_token
/// grants, through the CLI and before the server starts; returns the client's secret.
fn sign_in_fixture(w: &Workdir, usernames: &[&str]) -> String {
    for username in usernames {
        let args = ["user", "create", "--username", username, "--password-stdin", "--json"];
        w.ok_json(&args, Some(&format!("{PASSWORD}\n")));
    }
    let client = w.ok_json(
        &[
            "client",
            "create",
            "--name",
            "Bench web app",
            "--client-id",
            "bench-web",
            "--redirect-uri",
            REDIRECT_URI,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid profile",
            "--json",
        ],
        None,
    );
    client["client_secret"].as_str().unwrap().to_owned()
}

/// A scenario that signs in as `user` (name, password), with 2 connections. `pace` sets the
/// duration and the rate, which bounds the number of sign-ins: only failures count against the
/// server's sign-in limits (5 per account and source before delays start). A sign-in takes about
/// a second in a debug build (Argon2id unoptimized), so runs leave room for a few.
fn signing_in(port: u16, scenario: &str, secret: &str, user: (&str, &str), pace: &[&str]) -> Value {
    let secret = format!("--client-secret={secret}");
    let mut args = vec!["--scenario", scenario, "--client-id", "bench-web", &secret];
    args.extend(["--username", user.0, "--password", user.1]);
    args.extend(["--redirect-uri", REDIRECT_URI, "--scope", "openid profile"]);
    args.extend(["--connections", "2", "--sample-every", "1"]);
    args.extend(pace);
    bench(port, &args)
}

#[test]
fn bench_refresh_and_authorization_code_go_through_the_login_and_consent_pages() {
    let w = Workdir::new("bench-sign-in");
    let secret = sign_in_fixture(&w, &["refresher", "signer"]);
    let server = DevServer::start(&w, &[("TESSERA_CLIENT_RATE_LIMIT_PER_SECOND", "1000000")]);
    let port = server.port;

    // One sign-in (and one consent) at set-up for both connections' families; closed loop.
    let refresh =
        signing_in(port, "refresh", &secret, ("refresher", PASSWORD), &["--duration", "2s"]);
    assert_eq!(refresh["scenario"], "refresh");
    assert!(refresh["requests_ok"].as_u64().unwrap() > 0, "{refresh}");
    assert_eq!(refresh["errors"], json!({}), "{refresh}");

    // At most 8 whole flows: the first shows the consent page, the others find it remembered.
    // Windows of several sign-ins: a debug-build sign-in takes seconds on a loaded machine.
    let pace = ["--duration", "8s", "--rate", "1"];
    let code = signing_in(port, "authorization-code", &secret, ("signer", PASSWORD), &pace);
    assert_eq!(code["scenario"], "authorization-code");
    assert!(code["requests_ok"].as_u64().unwrap() > 0, "{code}");
    assert_eq!(code["errors"], json!({}), "{code}");

    // Another account than the one above: its refused sign-ins are counted by kind.
    let wrong = ("refresher", "not the password at all");
    // At most 5 attempts: the sign-ins allowed before delays start.
    let pace = ["--duration", "5s", "--rate", "1"];
    let refused = signing_in(port, "authorization-code", &secret, wrong, &pace);
    assert_eq!(refused["requests_ok"], 0, "a refused sign-in never counts: {refused}");
    let errors = refused["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["login_refused"], "{refused}");
    assert!(errors["login_refused"].as_u64().unwrap() > 0, "{refused}");
}

#[test]
fn bench_sign_in_scenarios_say_what_they_lack() {
    let bench = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["bench", "--issuer", "http://127.0.0.1:9", "--client-id", "c"])
            .args(["--client-secret", "s"])
            .args(args)
            .env_remove("TESSERA_BENCH_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = bench(&["--scenario", "refresh", "--username", "u"]);
    assert!(stderr.contains("--username and --password"), "{stderr}");
    let stderr = bench(&["--scenario", "authorization-code", "--username", "u", "--password", "p"]);
    assert!(stderr.contains("--redirect-uri"), "{stderr}");
}
