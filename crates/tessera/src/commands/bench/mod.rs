//! `tessera bench`: a load generator for any OAuth 2.1 / OpenID Connect server that publishes
//! discovery metadata. It finds the endpoints through discovery, runs one scenario for a warm-up
//! period (not measured) and then for the measured duration, and reports successful requests per
//! second, latency percentiles (HdrHistogram) and every failure counted by kind.
//!
//! Closed loop (default): each of N connections sends its next request when the previous one
//! answered. Open loop (`--rate R`): each connection has a fixed schedule (R/N per second, phases
//! staggered), and latency is measured from the *scheduled* send time, so that a stalled server
//! is not hidden by the generator waiting for it (coordinated omission).
//!
//! Two scenarios go through the server's own pages ([`browser`]): `authorization-code` signs in
//! with a fresh cookie jar at every iteration, and `refresh` signs in once at set-up to give
//! every connection its own refresh-token family.

mod browser;
mod html_form;
mod jwks;
mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::time::Instant;

use browser::{Browser, CookieJar};
use jwks::Jwks;
use report::{progress_bar, report};

#[derive(Args)]
pub struct BenchArgs {
    /// The issuer URL; endpoints come from its discovery document.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The client that authenticates (client_secret_basic).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Its secret (or the environment variable TESSERA_BENCH_CLIENT_SECRET, which keeps it out
    /// of the process list).
    #[arg(
        long,
        value_name = "SECRET",
        env = "TESSERA_BENCH_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// Scope to request, space-separated (default: the client's default scope). With `openid`,
    /// the code flow succeeds only if an ID token comes back.
    #[arg(long)]
    scope: Option<String>,
    /// refresh, authorization-code: the user who signs in on the server's login page.
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Their password (or the environment variable TESSERA_BENCH_PASSWORD, which keeps it out
    /// of the process list).
    #[arg(long, value_name = "PASSWORD", env = "TESSERA_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// refresh, authorization-code: one of the client's registered redirect URIs. The code is
    /// read from the redirect to it, which is never followed: nothing needs to listen there.
    #[arg(long, value_name = "URI")]
    redirect_uri: Option<String>,
    /// Concurrent connections (one task each).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Measured duration, e.g. `15s`, `500ms`, `2m`.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring (requests run but are not counted).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: total requests per second, spread over the connections.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// `introspect` only: alternate the real token with random unknown tokens (same as the
    /// `introspect-mix` scenario).
    #[arg(long)]
    mix: bool,
    /// Validate every Nth successful response more deeply (client-credentials, refresh: verify
    /// the access token against the JWKS; authorization-code: also the ID token, its `aud` and
    /// `nonce`). 0 turns it off.
    #[arg(long, default_value_t = 100)]
    sample_every: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// POST /token grant_type=client_credentials, client_secret_basic.
    ClientCredentials,
    /// POST /introspect with one valid token.
    Introspect,
    /// POST /introspect alternating the valid token and random unknown tokens.
    IntrospectMix,
    /// Verify one JWT locally against the JWKS (no network in the loop).
    JwksVerify,
    /// POST /token grant_type=refresh_token: each connection keeps its own rotation chain
    /// (started by one code flow at set-up) and always presents the newest refresh token.
    Refresh,
    /// The whole code flow, from a fresh cookie jar through the login (and consent) forms to
    /// the code exchange: sign-in throughput. One request counts one whole flow.
    AuthorizationCode,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client-credentials",
            Self::Introspect => "introspect",
            Self::IntrospectMix => "introspect-mix",
            Self::JwksVerify => "jwks-verify",
            Self::Refresh => "refresh",
            Self::AuthorizationCode => "authorization-code",
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// The endpoints a scenario needs, from discovery.
struct Endpoints {
    issuer: String,
    authorization: Option<String>,
    token: String,
    introspection: Option<String>,
    jwks_uri: Option<String>,
}

/// The issuer's metadata through `tessera-client` (every well-known form, `issuer` checked).
async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Endpoints> {
    let http = tessera_client::Http::from_client(http.clone());
    let metadata = tessera_client::discover(&http, issuer.trim_end_matches('/'))
        .await
        .context("discovery failed")?;
    let token = metadata.endpoint("token_endpoint")?.to_owned();
    Ok(Endpoints {
        token,
        issuer: metadata.issuer,
        authorization: metadata.authorization_endpoint,
        introspection: metadata.introspection_endpoint,
        jwks_uri: metadata.jwks_uri,
    })
}

/// Everything a worker needs; shared read-only.
struct Plan {
    scenario: Scenario,
    http: reqwest::Client,
    endpoints: Endpoints,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    /// introspect, introspect-mix, jwks-verify: the token obtained before the run.
    token: Option<String>,
    jwks: Option<Jwks>,
    sample_every: u64,
    /// refresh, authorization-code: who signs in, and where.
    browser: Option<Browser>,
    /// refresh: a signed-in session that every connection's family set-up reuses, so that one
    /// sign-in serves them all (servers throttle sign-ins per account and per address).
    session: Mutex<CookieJar>,
}

/// What one connection carries from one request to the next.
#[derive(Default)]
struct Connection {
    /// refresh: the newest refresh token of this connection's own family; `None` when the
    /// chain broke and a new family is needed.
    refresh_token: Option<String>,
}

/// How one request ended: `Ok` or an error kind.
type Outcome = Result<(), String>;

/// What a whole code flow brought back, for the checks made on it.
struct CodeFlowTokens {
    access_token: String,
    id_token: Option<String>,
    refresh_token: Option<String>,
    nonce: String,
}

impl Plan {
    /// A client-credentials token request (client_secret_basic, the `--scope` if any).
    fn client_credentials_request(&self) -> reqwest::RequestBuilder {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        self.http
            .post(&self.endpoints.token)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&form)
    }

    /// One unit of work. `n` counts this worker's requests (sampling and the mix use it).
    async fn once(&self, n: u64, connection: &mut Connection) -> Outcome {
        match self.scenario {
            Scenario::ClientCredentials => {
                let body = send(self.client_credentials_request()).await?;
                let token = body.get("access_token").and_then(Value::as_str);
                let Some(token) = token else { return Err("no_access_token".into()) };
                if self.sampled(n) {
                    self.check_access_token(token)?;
                }
                Ok(())
            }
            Scenario::Refresh => {
                let Some(presented) = connection.refresh_token.clone() else {
                    return Err("no_refresh_token_family".into());
                };
                let request = self
                    .http
                    .post(&self.endpoints.token)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &presented)]);
                let body = match send(request).await {
                    Ok(body) => body,
                    Err(kind) => {
                        // The chain is broken (revoked, expired, or a rotated token presented
                        // again after a lost response): start a new family rather than fail
                        // every request from now on. Other errors keep the token, which may
                        // still be good; if it is not, the next answer is invalid_grant.
                        if kind == "invalid_grant" {
                            connection.refresh_token = None;
                        }
                        return Err(kind);
                    }
                };
                // Keep the rotated token before any other check, so the chain goes on.
                match body.get("refresh_token").and_then(Value::as_str) {
                    // A server that does not rotate still accepts the one presented.
                    None => return Err("no_refresh_token".into()),
                    Some(new) if new == presented => return Err("refresh_token_not_rotated".into()),
                    Some(new) => connection.refresh_token = Some(new.to_owned()),
                }
                let token = body.get("access_token").and_then(Value::as_str);
                let Some(token) = token else { return Err("no_access_token".into()) };
                if self.sampled(n) {
                    self.check_access_token(token)?;
                }
                Ok(())
            }
            Scenario::AuthorizationCode => {
                let tokens = self.code_flow(&mut CookieJar::default()).await?;
                if self.sampled(n) {
                    self.check_access_token(&tokens.access_token)?;
                    if let Some(id_token) = &tokens.id_token {
                        self.check_id_token(id_token, &tokens.nonce)?;
                    }
                }
                Ok(())
            }
            Scenario::Introspect | Scenario::IntrospectMix => {
                let unknown = self.scenario == Scenario::IntrospectMix && n % 2 == 1;
                let random;
                let token = if unknown {
                    random = random_token(n);
                    random.as_str()
                } else {
                    self.token.as_deref().unwrap_or_default()
                };
                let url = self.endpoints.introspection.as_deref().unwrap_or_default();
                let request = self
                    .http
                    .post(url)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .form(&[("token", token)]);
                let body = send(request).await?;
                match (body.get("active").and_then(Value::as_bool), unknown) {
                    (Some(true), false) | (Some(false), true) => Ok(()),
                    (Some(false), false) => Err("inactive_token".into()),
                    (Some(true), true) => Err("unknown_token_active".into()),
                    (None, _) => Err("no_active_member".into()),
                }
            }
            Scenario::JwksVerify => {
                let (Some(jwks), Some(token)) = (&self.jwks, &self.token) else {
                    return Err("no_token".into());
                };
                let result = jwks.verify_access_token(token).map_err(str::to_owned);
                // Verification is CPU work with no await: let the timer and the other workers run.
                tokio::task::yield_now().await;
                result
            }
        }
    }

    /// Whether the `n`th request gets the deeper checks.
    fn sampled(&self, n: u64) -> bool {
        self.sample_every > 0 && n.is_multiple_of(self.sample_every)
    }

    /// A JWT access token (three parts) is checked against the JWKS; an opaque reference token
    /// cannot be verified locally.
    fn check_access_token(&self, token: &str) -> Outcome {
        if token.split('.').count() == 3
            && let Some(jwks) = &self.jwks
        {
            jwks.verify_access_token(token).map_err(str::to_owned)?;
        }
        Ok(())
    }

    /// An ID token: signed by the issuer, for this client, with the flow's nonce.
    fn check_id_token(&self, token: &str, nonce: &str) -> Outcome {
        let Some(jwks) = &self.jwks else { return Ok(()) };
        let claims = jwks.verify_id_token(token)?;
        if !claims.aud.contains(&self.client_id) {
            return Err("id_token_audience_mismatch".into());
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err("id_token_nonce_mismatch".into());
        }
        Ok(())
    }

    /// One whole code flow with `jar`'s cookies: the browser's part, then the code exchange.
    /// It succeeds only with an access token, and an ID token when `openid` was asked for.
    async fn code_flow(&self, jar: &mut CookieJar) -> Result<CodeFlowTokens, String> {
        let browser = self.browser.as_ref().ok_or("no_sign_in_configured")?;
        let authorized = browser.authorize(&self.http, jar).await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &authorized.code),
            ("redirect_uri", browser.redirect_uri.as_str()),
            ("code_verifier", &authorized.code_verifier),
        ];
        let request = self
            .http
            .post(&self.endpoints.token)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&form);
        let body = send(request).await?;
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let access_token = text("access_token").ok_or("no_access_token")?;
        let id_token = text("id_token");
        if browser.asks_openid() && id_token.is_none() {
            return Err("no_id_token".into());
        }
        Ok(CodeFlowTokens {
            access_token,
            id_token,
            refresh_token: text("refresh_token"),
            nonce: authorized.nonce,
        })
    }

    /// refresh: a new family for one connection, by a code flow in the shared session. Only
    /// the first flow (or one after the session ended) goes through the login form.
    async fn new_family(&self) -> Result<String, String> {
        let mut jar = self.session.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let tokens = self.code_flow(&mut jar).await?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = jar;
        tokens.refresh_token.ok_or_else(|| "no_refresh_token".into())
    }
}

/// Sends a request; a 2xx with a JSON object body is a success, anything else an error kind:
/// the OAuth `error` code of a JSON error body, else `http_STATUS`, or a transport error kind.
async fn send(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| transport_kind(&e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| transport_kind(&e))?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if status.is_success() {
        return match body {
            Some(v @ Value::Object(_)) => Ok(v),
            _ => Err("invalid_json".into()),
        };
    }
    match body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str) {
        Some(code) => Err(code.chars().take(64).collect()),
        None => Err(format!("http_{}", status.as_u16())),
    }
}

fn transport_kind(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect_error"
    } else if e.is_body() || e.is_decode() {
        "body_error"
    } else {
        "transport_error"
    };
    kind.into()
}

/// A token the server has never issued: 32 pseudo-random bytes, hex (splitmix64).
fn random_token(n: u64) -> String {
    use std::fmt::Write;
    let mut state = n ^ std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let _ = write!(out, "{:016x}", z ^ (z >> 31));
    }
    out
}

/// One worker's results.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    unfinished: u64,
}

impl Tally {
    fn new() -> Self {
        // Nanoseconds, 3 significant digits, up to an hour.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
        Self { latency, ok: 0, errors: BTreeMap::new(), unfinished: 0 }
    }
}

struct Window {
    measure_from: Instant,
    end: Instant,
    /// Per-connection interval between scheduled sends, for the open loop.
    interval: Option<Duration>,
    connections: u32,
}

async fn worker(
    plan: Arc<Plan>,
    window: Arc<Window>,
    index: u32,
    done: Arc<AtomicU64>,
    mut connection: Connection,
) -> Tally {
    let mut tally = Tally::new();
    let start = Instant::now();
    // Open loop: stagger the connections' schedules across one interval.
    let mut next = match window.interval {
        Some(interval) => {
            start + interval.mul_f64(f64::from(index) / f64::from(window.connections))
        }
        None => start,
    };
    let mut n: u64 = u64::from(index);
    loop {
        if plan.scenario == Scenario::Refresh && connection.refresh_token.is_none() {
            // A broken chain (its failed request was counted): a new family, not measured. In
            // the open loop the schedule does not wait for it, so a slow set-up shows up as
            // latency of the requests that follow, as it would for a real client.
            match tokio::time::timeout_at(window.end, plan.new_family()).await {
                Err(_) => break,
                Ok(Ok(token)) => connection.refresh_token = Some(token),
                Ok(Err(kind)) => {
                    if Instant::now() >= window.measure_from {
                        *tally.errors.entry(format!("new_family:{kind}")).or_default() += 1;
                    }
                    // Do not spin on a set-up that keeps failing (a throttled sign-in).
                    let pause = Instant::now() + Duration::from_millis(100);
                    tokio::time::sleep_until(pause.min(window.end)).await;
                    continue;
                }
            }
        }
        let scheduled = match window.interval {
            Some(interval) => {
                let at = next;
                next += interval;
                if at >= window.end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                at
            }
            None => Instant::now(),
        };
        if scheduled >= window.end {
            break;
        }
        let outcome = tokio::time::timeout_at(window.end, plan.once(n, &mut connection)).await;
        n += 1;
        let finished = Instant::now();
        let Ok(outcome) = outcome else {
            // Still in flight when the run ended: neither a success nor a measured failure.
            if scheduled >= window.measure_from {
                tally.unfinished += 1;
            }
            break;
        };
        if scheduled < window.measure_from {
            continue; // warm-up
        }
        match outcome {
            Ok(()) => {
                tally.ok += 1;
                done.fetch_add(1, Ordering::Relaxed);
                let nanos = finished.duration_since(scheduled).as_nanos();
                tally.latency.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
    tally
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let scenario = match (args.scenario, args.mix) {
        (Scenario::Introspect, true) => Scenario::IntrospectMix,
        (s, _) => s,
    };
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number");
    }
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.connections as usize)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("tessera-bench/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")?;
    let credentials = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    let (client_id, client_secret) =
        credentials.context("--client-id and --client-secret are needed by every scenario")?;
    let sign_in = match scenario {
        Scenario::Refresh | Scenario::AuthorizationCode => Some(SignInArgs::from(&args)?),
        _ => None,
    };
    let endpoints = discover(&http, &args.issuer).await?;
    if matches!(scenario, Scenario::Introspect | Scenario::IntrospectMix) {
        anyhow::ensure!(
            endpoints.introspection.is_some(),
            "the discovery document has no introspection_endpoint"
        );
    }
    let browser =
        sign_in.map(|s| s.browser(&endpoints, &client_id, args.scope.clone())).transpose()?;
    let jwks = match scenario {
        Scenario::ClientCredentials | Scenario::Refresh | Scenario::AuthorizationCode
            if args.sample_every > 0 =>
        {
            Some(Jwks::fetch(&http, &endpoints).await?)
        }
        Scenario::JwksVerify => Some(Jwks::fetch(&http, &endpoints).await?),
        _ => None,
    };
    let mut plan = Plan {
        scenario,
        http,
        endpoints,
        client_id,
        client_secret,
        scope: args.scope.clone(),
        token: None,
        jwks,
        sample_every: args.sample_every,
        browser,
        session: Mutex::new(CookieJar::default()),
    };
    if matches!(scenario, Scenario::Introspect | Scenario::IntrospectMix | Scenario::JwksVerify) {
        plan.token = Some(first_token(&plan).await?);
        if scenario == Scenario::JwksVerify {
            let token = plan.token.as_deref().unwrap_or_default();
            anyhow::ensure!(
                token.split('.').count() == 3,
                "the client gets opaque access tokens: nothing to verify locally"
            );
            if let Some(jwks) = &plan.jwks {
                jwks.verify_access_token(token)
                    .map_err(|kind| anyhow::anyhow!("the token fails: {kind}"))?;
            }
        }
    }

    let connections = args.connections;
    let plan = Arc::new(plan);
    let mut families = if scenario == Scenario::Refresh {
        first_families(&plan, connections, args.username.as_deref().unwrap_or_default()).await?
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let window = Arc::new(Window {
        measure_from: start + args.warmup,
        end: start + args.warmup + args.duration,
        interval: args.rate.map(|r| Duration::from_secs_f64(f64::from(connections) / r)),
        connections,
    });
    let done = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(&window, args.warmup + args.duration, done.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..connections {
        let (plan, window, done) = (plan.clone(), window.clone(), done.clone());
        let connection = Connection { refresh_token: families.pop() };
        tasks.spawn(worker(plan, window, index, done, connection));
    }
    let mut total = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.context("a worker panicked")?;
        total.latency.add(&tally.latency).context("merging histograms")?;
        total.ok += tally.ok;
        total.unfinished += tally.unfinished;
        for (kind, count) in tally.errors {
            *total.errors.entry(kind).or_default() += count;
        }
    }
    if let Some(task) = progress {
        task.abort();
    }
    report(&args, scenario, &total);
    Ok(())
}

/// What the sign-in scenarios need from the arguments, checked before anything is sent.
struct SignInArgs {
    username: String,
    password: String,
    redirect_uri: url::Url,
}

impl SignInArgs {
    fn from(args: &BenchArgs) -> anyhow::Result<Self> {
        let (Some(username), Some(password)) = (&args.username, &args.password) else {
            bail!(
                "--username and --password (or TESSERA_BENCH_PASSWORD) are needed by the {} \
                 scenario: it signs in on the server's login page",
                args.scenario.name()
            );
        };
        let redirect_uri = args.redirect_uri.as_deref().with_context(|| {
            format!(
                "--redirect-uri (one of the client's registered redirect URIs) is needed by the \
                 {} scenario",
                args.scenario.name()
            )
        })?;
        let redirect_uri = url::Url::parse(redirect_uri)
            .with_context(|| format!("--redirect-uri {redirect_uri:?} is not an absolute URI"))?;
        Ok(Self { username: username.clone(), password: password.clone(), redirect_uri })
    }

    /// The browser, once discovery has named the authorization endpoint.
    fn browser(
        self,
        endpoints: &Endpoints,
        client_id: &str,
        scope: Option<String>,
    ) -> anyhow::Result<Browser> {
        let authorization = endpoints
            .authorization
            .as_deref()
            .context("the discovery document has no authorization_endpoint")?;
        let authorization_endpoint = url::Url::parse(authorization)
            .with_context(|| format!("authorization_endpoint {authorization:?} is not a URL"))?;
        Ok(Browser {
            authorization_endpoint,
            redirect_uri: self.redirect_uri,
            client_id: client_id.to_owned(),
            username: self.username,
            password: self.password,
            scope,
            issuer: endpoints.issuer.clone(),
        })
    }
}

/// refresh: one family per connection, before the run. The first flow signs in; the others
/// reuse its session, concurrently.
async fn first_families(
    plan: &Arc<Plan>,
    connections: u32,
    username: &str,
) -> anyhow::Result<Vec<String>> {
    let failed = |kind: String| {
        let hint = match kind.as_str() {
            "login_refused" => ": the server refused the username or password",
            "login_throttled" => {
                ": the server is throttling sign-ins for this account or address; wait, or \
                 use another account"
            }
            "no_refresh_token" => ": is the refresh_token grant allowed for this client?",
            "invalid_request" | "invalid_scope" => {
                ": check --redirect-uri and --scope against the client's registration"
            }
            "http_400" => {
                ": the server showed an error page; check --client-id, --redirect-uri and \
                 --scope against the client's registration"
            }
            "invalid_client" | "unauthorized_client" => {
                ": check --client-id, --client-secret and the client's grant types"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot start a refresh-token family as `{username}`: {kind}{hint}")
    };
    let mut families = vec![plan.new_family().await.map_err(failed)?];
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 1..connections {
        let plan = plan.clone();
        tasks.spawn(async move { plan.new_family().await });
    }
    while let Some(joined) = tasks.join_next().await {
        families.push(joined.context("a set-up task panicked")?.map_err(failed)?);
    }
    Ok(families)
}

/// Gets the one token that introspect and jwks-verify reuse.
async fn first_token(plan: &Plan) -> anyhow::Result<String> {
    let body = send(plan.client_credentials_request())
        .await
        .map_err(|kind| anyhow::anyhow!("cannot get a token to start from: {kind}"))?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the token response has no access_token")
}
