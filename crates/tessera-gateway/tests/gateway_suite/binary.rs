//! The `tessera-gateway` binary: the gateway alone, as a process.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Issuer, Upstream};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// The quick form of `tessera gateway`, from the binary without the authorization server:
// ready once the issuer's keys are read, 401 with a challenge without a token, the upstream's
// answer with one.
#[tokio::test]
async fn the_tessera_gateway_binary_protects_an_upstream_alone() {
    protects_an_upstream(Command::new(env!("CARGO_BIN_EXE_tessera-gateway"))).await;
}

// The same, the process pinned to one CPU: it then runs on the single-threaded runtime
// (`cli::runtime`), as in the benchmark.
#[tokio::test]
async fn the_tessera_gateway_binary_protects_an_upstream_on_one_cpu() {
    if Command::new("taskset").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "taskset (util-linux) is needed under CI");
        eprintln!("skipped: no taskset (util-linux) to pin the gateway to one CPU");
        return;
    }
    let mut pinned = Command::new("taskset");
    pinned.args(["-c", "0", env!("CARGO_BIN_EXE_tessera-gateway")]);
    protects_an_upstream(pinned).await;
}

async fn protects_an_upstream(mut gateway: Command) {
    let (issuer, upstream) = (Issuer::start().await, Upstream::start().await);
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let audience = format!("{url}/");
    let secret = issuer.client("binary-test", "orders:read", &[&audience]).await;
    let token = issuer.token("binary-test", &secret, &audience, "orders:read").await;
    let child = gateway
        .args(["--issuer", &issuer.url, "--audience", &audience, "--upstream", &upstream.url])
        .args(["--listen", &listen, "--scope", "orders:read"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway did not become ready");
    let refused = client.get(format!("{url}/orders")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("resource_metadata"));
    assert_eq!(upstream.count(), 0);
    let allowed = client.get(format!("{url}/orders")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(upstream.last().headers["x-tessera-client-id"], "binary-test");
}

// `--check` validates the README's complete gateway.toml and exits.
#[test]
fn the_tessera_gateway_binary_checks_the_documented_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway/gateway.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-gateway"))
        .args(["--config", example, "--check"])
        .env("TESSERA_GATEWAY_CLIENT_SECRET", "secret-of-the-gateway")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("5 route(s)"), "{stdout}");
}
