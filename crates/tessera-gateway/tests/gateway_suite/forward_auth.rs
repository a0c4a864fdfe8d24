//! Forward-auth with a real nginx (`auth_request`), configured by the documented snippet
//! `examples/gateway/nginx-forward-auth.conf`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::World;

const FORWARD_AUTH: &str = "forward_auth = true\n";

/// nginx on a free loopback port with the snippet; killed when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_available(test: &str) -> Option<PathBuf> {
    let path =
        ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists());
    if path.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {test} needs nginx");
        eprintln!("skipping {test}: nginx is not installed (Debian package nginx or nginx-light)");
    }
    path
}

async fn start_nginx(binary: &PathBuf, gateway: &str, upstream: &str) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("tessera-gw-nginx-{}", crate::support::random()));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let snippet = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/gateway/nginx-forward-auth.conf"),
    )
    .unwrap()
    .replace("LISTEN", &format!("127.0.0.1:{port}"))
    .replace("GATEWAY", gateway.trim_start_matches("http://"))
    .replace("UPSTREAM", upstream.trim_start_matches("http://"));
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {dir}/body;\n proxy_temp_path {dir}/proxy;\n\
         fastcgi_temp_path {dir}/fcgi;\n uwsgi_temp_path {dir}/uwsgi;\n scgi_temp_path {dir}/scgi;\n{snippet}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Owned by the guard from here on: killed and reaped whatever happens.
    let nginx = Nginx { child, dir, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return nginx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not start; see {}", nginx.dir.join("logs/error.log").display());
}

// nginx auth_request with the gateway's forward-auth endpoint: 200 passes with the verified
// identity (a client's X-Tessera-Sub replaced), 401 and 403 carry the gateway's challenge
// (RFC 6750 §3), the token does not reach the service (RFC 9700 §2.3).
#[tokio::test]
async fn nginx_auth_request_with_forward_auth() {
    let Some(binary) = nginx_available("nginx_auth_request_with_forward_auth") else { return };
    let w = World::start_with_globals(FORWARD_AUTH, "").await;
    let nginx = start_nginx(&binary, &w.gateway.url, &w.upstream.url).await;
    let client = reqwest::Client::new();

    let anonymous = client.get(format!("{}/api/orders", nginx.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    assert_eq!(w.upstream.count(), 0);

    let token = w.token("orders:read").await;
    let allowed = client
        .get(format!("{}/api/orders", nginx.url))
        .bearer_auth(&token)
        .header("x-tessera-sub", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let seen = w.upstream.last();
    assert_eq!(seen.headers["x-tessera-sub"], w.client_id.as_str());
    assert_eq!(seen.headers["x-tessera-scope"], "orders:read");
    assert!(!seen.headers.contains_key("authorization"));

    let forbidden =
        client.post(format!("{}/api/orders", nginx.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);
    let challenge = forbidden.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(w.upstream.count(), 1);
}

// Envoy ext_authz (HTTP service) style: the original method and path appended to the
// endpoint's prefix.
#[tokio::test]
async fn envoy_style_path_prefix_request_is_judged_like_the_original() {
    let w = World::start_with_globals(FORWARD_AUTH, "").await;
    let token = w.token("orders:read").await;
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/_tessera/auth/api/orders", w.gateway.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-tessera-client-id"], w.client_id.as_str());
    let post = client
        .post(format!("{}/_tessera/auth/api/orders", w.gateway.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    assert_eq!(w.upstream.count(), 0, "forward-auth never proxies");
}
