//! What `tessera bench` shows: a progress bar while it runs, then the figures, as a table or
//! as one JSON object.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{BenchArgs, Scenario, Tally, Window};

/// A progress bar on standard error, only when it is a terminal. Returns its ticker task.
pub(super) fn progress_bar(
    window: &Window,
    total: Duration,
    done: Arc<AtomicU64>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total.as_millis().try_into().unwrap_or(u64::MAX));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {elapsed}/{duration} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let (measure_from, end) = (window.measure_from, window.end);
    let start = Instant::now();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let now = Instant::now();
            bar.set_position(now.duration_since(start).as_millis().try_into().unwrap_or(0));
            if now < measure_from {
                bar.set_message("warming up");
            } else {
                bar.set_message(format!("{} ok", done.load(Ordering::Relaxed)));
            }
            if now >= end {
                bar.finish_and_clear();
                break;
            }
        }
    }))
}

pub(super) fn report(args: &BenchArgs, scenario: Scenario, total: &Tally) {
    let seconds = args.duration.as_secs_f64();
    let rps = if seconds > 0.0 { total.ok as f64 / seconds } else { 0.0 };
    let h = &total.latency;
    let ms = |nanos: u64| (nanos as f64 / 1e6 * 1000.0).round() / 1000.0;
    let (p50, p90, p99, p999, max) = if total.ok == 0 {
        (0.0, 0.0, 0.0, 0.0, 0.0)
    } else {
        (
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        )
    };
    if args.json {
        let doc = json!({
            "scenario": scenario.name(),
            "connections": args.connections,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "rate": args.rate,
            "duration_s": seconds,
            "warmup_s": args.warmup.as_secs_f64(),
            "requests_ok": total.ok,
            "rps": (rps * 10.0).round() / 10.0,
            "latency_ms": { "p50": p50, "p90": p90, "p99": p99, "p999": p999, "max": max },
            "errors": total.errors,
            "unfinished_at_end": total.unfinished,
        });
        println!("{doc}");
        return;
    }
    let mode = match args.rate {
        Some(rate) => format!("open loop, {rate}/s scheduled"),
        None => "closed loop".to_owned(),
    };
    println!("scenario      {}", scenario.name());
    println!("connections   {} ({mode})", args.connections);
    println!("duration      {seconds:.2} s after {:.2} s warm-up", args.warmup.as_secs_f64());
    if scenario == Scenario::AuthorizationCode {
        println!("requests ok   {} (each one whole sign-in flow)", total.ok);
    } else {
        println!("requests ok   {}", total.ok);
    }
    println!("throughput    {rps:.1} req/s (successes only)");
    println!("latency ms    p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  max {max}");
    if total.errors.is_empty() {
        println!("errors        none");
    } else {
        println!("errors");
        for (kind, count) in &total.errors {
            println!("  {kind:<30} {count}");
        }
    }
    if total.unfinished > 0 {
        println!("unfinished    {} (in flight when the run ended; not counted)", total.unfinished);
    }
    if total.errors.keys().any(|kind| kind.ends_with("login_throttled")) {
        println!(
            "note          the server throttled sign-ins (per account and per source address); \
             the sign-in figures above measure that limit, not the server"
        );
    }
}
