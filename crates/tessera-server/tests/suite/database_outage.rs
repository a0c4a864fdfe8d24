//! A PostgreSQL outage fails fast and heals by itself (issue 16 item 4): on a throwaway
//! cluster that this test creates, stops and restarts (never the shared one), every request
//! that needs the database is answered `503 temporarily_unavailable` with `Retry-After`
//! within 2 s, `/readyz` answers `503` within 1 s, the paths that need no database keep
//! answering, and once the cluster is back everything works again without restarting Tessera.
//!
//! The cluster is made with `initdb` and `pg_ctl` from `TESSERA_TEST_PG_BINDIR` or the newest
//! `/usr/lib/postgresql/*/bin`; PostgreSQL refuses to run as root, so as root they run as the
//! `postgres` user (`runuser`). Without them the test is skipped with a note on stderr, or
//! fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::flow::{self, page_text};
use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tessera_core::client::{AccessTokenFormat, ClientRegistration};
use tessera_core::client_id::ClientId;
use tessera_core::keys::SigningAlg;
use tessera_core::scope::ScopeSet;
use tessera_server::AppState;
use tessera_store::Store;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The longest any request may take while the database is down.
const REQUEST_BOUND: Duration = Duration::from_secs(2);
/// The longest `/readyz` may take.
const READYZ_BOUND: Duration = Duration::from_secs(1);

/// A PostgreSQL cluster of this test's own, in a temporary directory, on a free port.
struct Cluster {
    bin: PathBuf,
    base: PathBuf,
    port: u16,
    /// Running as root: the server programs run as `postgres`.
    as_postgres: bool,
}

impl Cluster {
    /// Creates the cluster (not started); `None` (skipped) when PostgreSQL's programs are
    /// missing outside CI.
    fn create() -> Option<Cluster> {
        let Some(bin) = pg_bindir() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: the outage test needs PostgreSQL's initdb and pg_ctl \
                 (set TESSERA_TEST_PG_BINDIR)"
            );
            eprintln!("skipped: no initdb/pg_ctl (set TESSERA_TEST_PG_BINDIR)");
            return None;
        };
        let base = std::env::temp_dir()
            .join(format!("tessera-pg-outage-{}", tessera_core::secret::random_id::<8>()));
        std::fs::create_dir_all(&base).expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&base));
        }
        let port = free_port();
        let cluster = Cluster { bin, base, port, as_postgres };
        cluster.pg(
            "initdb",
            &["-D", &cluster.data(), "--auth=trust", "--username=postgres", "--no-sync"],
        );
        Some(cluster)
    }

    fn data(&self) -> String {
        self.base.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when root), which must succeed.
    fn pg(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.base);
        run(&mut command);
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.base.display()
        );
        let log = self.base.join("server.log").display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"],
        );
    }

    /// A fast shutdown: sessions are ended, as when an operator stops the database.
    fn stop(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).output()
        } else {
            Command::new(&path).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// `TESSERA_TEST_PG_BINDIR`, else the newest `/usr/lib/postgresql/<version>/bin` holding
/// `initdb` and `pg_ctl`.
fn pg_bindir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("TESSERA_TEST_PG_BINDIR") {
        return Some(PathBuf::from(dir)).filter(|d| has_programs(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_programs(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One answer and how long it took.
struct Timed {
    what: &'static str,
    status: StatusCode,
    retry_after: Option<String>,
    body: Vec<u8>,
    took: Duration,
}

impl Timed {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The requests of one round: those that need the database and those that do not.
#[derive(Clone)]
struct Round {
    web: (String, String),
    svc_opaque: (String, String),
    svc_jwt: (String, String),
    refresh_token: String,
    opaque_token: String,
}

fn post(path: &str, client: &(String, String), form: String) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic_header(&client.0, &client.1))
        .body(Body::from(form))
        .unwrap()
}

impl Round {
    /// (name, needs the database, request)
    fn requests(&self) -> Vec<(&'static str, bool, Request<Body>)> {
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        vec![
            (
                "refresh",
                true,
                post(
                    "/token",
                    &self.web,
                    format!(
                        "grant_type=refresh_token&refresh_token={}",
                        urlencode(&self.refresh_token)
                    ),
                ),
            ),
            (
                "introspect opaque",
                true,
                post("/introspect", &self.web, format!("token={}", urlencode(&self.opaque_token))),
            ),
            (
                "opaque client credentials",
                true,
                post("/token", &self.svc_opaque, "grant_type=client_credentials".into()),
            ),
            ("readyz", true, get("/readyz")),
            ("jwks", false, get("/jwks.json")),
            ("discovery", false, get("/.well-known/openid-configuration")),
            (
                "JWT client credentials",
                false,
                post("/token", &self.svc_jwt, "grant_type=client_credentials".into()),
            ),
        ]
    }

    /// Sends every request of the round `copies` times at once; every answer, timed.
    async fn send(&self, state: &AppState, copies: usize) -> Vec<(bool, Timed)> {
        let mut set = JoinSet::new();
        for _ in 0..copies {
            for (what, needs_db, request) in self.requests() {
                let router = tessera_server::router(state.clone());
                set.spawn(async move {
                    let started = Instant::now();
                    let response = router.oneshot(request).await.expect("infallible");
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
                    (needs_db, Timed { what, status, retry_after, body, took: started.elapsed() })
                });
            }
        }
        let mut answers = Vec::new();
        while let Some(answer) = set.join_next().await {
            answers.push(answer.expect("request task"));
        }
        answers
    }
}

fn cc_client(id: &str, format: AccessTokenFormat) -> ClientRegistration {
    ClientRegistration {
        client_id: Some(ClientId::parse(id).unwrap()),
        client_name: id.into(),
        scope: ScopeSet::parse("orders:read").unwrap(),
        default_scope: ScopeSet::parse("orders:read").unwrap(),
        access_token_format: format,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue16_database_outage_answers_503_fast_and_recovers_without_restart() {
    let Some(cluster) = Cluster::create() else { return };
    cluster.start();
    let url = cluster.url();
    // The default acquire bound (1 s), as `tessera serve` uses.
    let store = Store::connect(&url).await.expect("store on the throwaway cluster");
    let app = TestApp::on_store(store, settings(SigningAlg::ES256, &url)).await;
    flow::create_user(&app).await;
    let web_secret = app
        .register(ClientRegistration { introspection: true, ..flow::web_client("web") })
        .await
        .unwrap();
    let web = ("web".to_owned(), web_secret);
    let svc_opaque = (
        "svc-opaque".to_owned(),
        app.register(cc_client("svc-opaque", AccessTokenFormat::Opaque)).await.unwrap(),
    );
    let svc_jwt =
        ("svc".to_owned(), app.register(cc_client("svc", AccessTokenFormat::Jwt)).await.unwrap());
    let tokens = flow::tokens_for(&app, (&web.0, &web.1)).await;
    let opaque =
        app.token(Some((&svc_opaque.0, &svc_opaque.1)), "grant_type=client_credentials").await;
    assert_eq!(opaque.status, StatusCode::OK, "{}", page_text(&opaque));
    // Load the JWT client into the server's cache: it keeps serving it through the outage.
    let jwt = app.token(Some((&svc_jwt.0, &svc_jwt.1)), "grant_type=client_credentials").await;
    assert_eq!(jwt.status, StatusCode::OK, "{}", page_text(&jwt));
    let round = Round {
        web,
        svc_opaque,
        svc_jwt,
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        opaque_token: opaque.json()["access_token"].as_str().unwrap().to_owned(),
    };
    // Before the outage: everything answers (the refresh token is not sent, so it stays
    // unspent for the end).
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);

    cluster.stop();
    // Several rounds, more requests at once than the pool has connections, so that pooled
    // connections the shutdown broke and fresh connection attempts are both exercised.
    for round_number in 0..3 {
        for (needs_db, answer) in round.send(&app.state, 4).await {
            let Timed { what, status, took, .. } = &answer;
            let bound = if *what == "readyz" { READYZ_BOUND } else { REQUEST_BOUND };
            assert!(*took < bound, "round {round_number}: {what} took {took:?} (bound {bound:?})");
            if needs_db {
                assert_eq!(
                    *status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{what}: {}",
                    page_text_of(&answer)
                );
                if *what != "readyz" {
                    // RFC 6749 §5.2 `temporarily_unavailable`, RFC 9110 §10.2.3 Retry-After.
                    assert_eq!(answer.retry_after.as_deref(), Some("1"), "{what}");
                    assert_eq!(answer.json()["error"], "temporarily_unavailable", "{what}");
                }
            } else {
                assert_eq!(
                    *status,
                    StatusCode::OK,
                    "{what} needs no database: {}",
                    page_text_of(&answer)
                );
            }
        }
        if round_number == 0 {
            // Past the client cache's freshness: the JWT client is now served stale.
            tokio::time::sleep(Duration::from_millis(5_500)).await;
        }
    }

    cluster.start();
    // Recovery without restarting Tessera: the pool reconnects on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/readyz").await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "/readyz did not turn ready after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for answer in round.requests().into_iter().filter(|(what, ..)| *what != "refresh") {
        let (what, _, request) = answer;
        let res = app.request(request).await;
        assert_eq!(res.status, StatusCode::OK, "{what} after recovery: {}", page_text(&res));
    }
    let introspection = app
        .post_form(
            "/introspect",
            Some((&round.web.0, &round.web.1)),
            &format!("token={}", urlencode(&round.opaque_token)),
        )
        .await;
    assert_eq!(introspection.json()["active"], true, "the token issued before the outage");
    // The refreshes refused during the outage decided nothing: the token is still unspent.
    let refreshed =
        flow::refresh(&app, (&round.web.0, &round.web.1), &round.refresh_token, "").await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", page_text(&refreshed));
    app.store.close().await;
}

fn page_text_of(answer: &Timed) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}
