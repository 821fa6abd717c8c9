//! Load benchmark for the collector (not a test).
//!
//! Starts the collector in-process on an ephemeral TLS port (local CA, temporary data
//! directory), then sends batches over TLS from N concurrent keep-alive connections. Event ids
//! are unique except for deliberate duplicates: every tenth batch re-sends half of the events of
//! the batch ten before it, as a retry would. Prints batches/s, events/s and latency
//! percentiles, and exits non-zero unless the collector stored exactly the unique events sent.
//!
//! ```text
//! cargo run --release -p consentry-collector --example load -- \
//!     --batches 5000 --concurrency 32 --events-per-batch 20
//! ```

#[allow(dead_code)]
#[path = "../tests/support/client.rs"]
mod client;

use clap::Parser;
use client::{Connection, TlsClient};
use consentry_collector::config::{Settings, Transport};
use consentry_collector::keys::{AdminToken, ApiKeys};
use consentry_collector::network::Rate;
use consentry_collector::server;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::{Method, Request};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn Error + Send + Sync>;

/// Load benchmark options.
#[derive(Parser, Debug)]
struct Args {
    /// Batches to send in total.
    #[arg(long, default_value_t = 5000)]
    batches: usize,
    /// Concurrent keep-alive TLS connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events in each batch (1 to 500).
    #[arg(long, default_value_t = 20)]
    events_per_batch: usize,
}

const ADMIN_TOKEN: &str = "load-benchmark-admin-token";
const API_KEY: &str = "pk_load";

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// The event ids of every batch: fresh ones, except that every tenth batch re-sends the first
/// half of the ids of the batch ten before it.
fn plan(batches: usize, per_batch: usize) -> Vec<Vec<String>> {
    let mut next = 0u64;
    let mut plan: Vec<Vec<String>> = Vec::with_capacity(batches);
    for i in 0..batches {
        let mut ids = Vec::with_capacity(per_batch);
        if i % 10 == 9 && i >= 10 {
            ids.extend(plan[i - 10].iter().take(per_batch / 2).cloned());
        }
        while ids.len() < per_batch {
            ids.push(uuid(next));
            next += 1;
        }
        plan.push(ids);
    }
    plan
}

fn body(batch: usize, ids: &[String]) -> Bytes {
    let record = |consented: bool, source: &str| {
        json!({"consented": consented, "timestamp_unixtime_ms": 1_763_800_000_000u64,
               "document": "notice-v3", "location": "banner", "hardware_id": null, "source": source})
    };
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(j, id)| {
            json!({
                "id": id,
                "type": "track",
                "name": "Load Test",
                "timestamp_unixtime_ms": 1_763_800_001_000u64 + j as u64,
                "purposes": ["analytics"],
                "anonymous_id": uuid(0xffff_0000 + (batch % 1000) as u64),
                "properties": {"batch": batch, "slot": j, "sku": "tea-001", "price": 4.5,
                               "tags": ["green", "loose"]}
            })
        })
        .collect();
    let batch = json!({
        "version": 1,
        "batch_id": uuid(0x1_0000_0000 + batch as u64),
        "sent_at": 1_763_800_005_000u64,
        "api_key": API_KEY,
        "sdk": {"name": "consentry-load", "version": "0.1.0"},
        "consent_state": {"gdpr": {
            "necessary": record(true, "default"),
            "analytics": record(true, "user")
        }},
        "events": events
    });
    Bytes::from(batch.to_string())
}

struct WorkerResult {
    latencies: Vec<Duration>,
    stored: u64,
    duplicates: u64,
    failures: u64,
}

async fn worker(
    addr: std::net::SocketAddr,
    tls: TlsClient,
    bodies: Arc<Vec<Bytes>>,
    next: Arc<AtomicUsize>,
) -> Result<WorkerResult, BoxError> {
    let mut connection = Connection::open(addr, Some(&tls)).await?;
    let mut result = WorkerResult {
        latencies: Vec::new(),
        stored: 0,
        duplicates: 0,
        failures: 0,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else {
            return Ok(result);
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/batch")
            .header("host", "localhost")
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Full::new(body.clone()))?;
        let started = Instant::now();
        let reply = connection.send(request).await?;
        result.latencies.push(started.elapsed());
        if reply.status != 200 {
            result.failures += 1;
            eprintln!(
                "batch {i}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            continue;
        }
        let answer = reply.json();
        result.stored += answer["stored"].as_u64().unwrap_or(0);
        result.duplicates += answer["duplicates"].as_u64().unwrap_or(0);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(args: Args) -> Result<bool, BoxError> {
    if args.batches == 0 || args.concurrency == 0 || !(1..=500).contains(&args.events_per_batch) {
        return Err("need --batches ≥ 1, --concurrency ≥ 1, --events-per-batch 1..=500".into());
    }
    let dir = tempfile::tempdir()?;
    let keys = ApiKeys::new(vec![format!("load={API_KEY}").parse()?])?;
    let mut settings = Settings::new("127.0.0.1:0".parse()?, dir.path().to_owned(), keys);
    settings.transport = Transport::TlsLocalCa;
    settings.admin_token = Some(AdminToken::new(ADMIN_TOKEN)?);
    // One client address and one key send everything: measure throughput, not the limits.
    settings.ip_rate = Rate {
        per_minute: 0,
        burst: 0,
    };
    settings.key_rate = Rate {
        per_minute: 0,
        burst: 0,
    };
    let running = server::start(settings).await?;
    let addr = running.local_addr;
    let tls = TlsClient::trusting(&dir.path().join("ca.pem"), "localhost")?;

    let plan = plan(args.batches, args.events_per_batch);
    let sent_events: usize = plan.iter().map(Vec::len).sum();
    let unique = plan.iter().flatten().collect::<HashSet<_>>().len();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        plan.iter()
            .enumerate()
            .map(|(i, ids)| body(i, ids))
            .collect(),
    );
    let body_bytes: usize = bodies.iter().map(Bytes::len).sum();
    println!(
        "consentry-collector load: {} batches × {} events ({:.1} KiB average), {} keep-alive TLS connections to {}",
        args.batches,
        args.events_per_batch,
        body_bytes as f64 / args.batches as f64 / 1024.0,
        args.concurrency,
        running.url
    );

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            tokio::spawn(worker(
                addr,
                tls.clone(),
                Arc::clone(&bodies),
                Arc::clone(&next),
            ))
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.batches);
    let (mut stored, mut duplicates, mut failures) = (0, 0, 0);
    for handle in workers {
        let result = handle.await??;
        latencies.extend(result.latencies);
        stored += result.stored;
        duplicates += result.duplicates;
        failures += result.failures;
    }
    let elapsed = started.elapsed();
    latencies.sort();

    let mut admin = Connection::open(addr, Some(&tls)).await?;
    let stats = admin
        .send(
            Request::builder()
                .uri("/v1/stats")
                .header("host", "localhost")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Full::new(Bytes::new()))?,
        )
        .await?
        .json();
    drop(admin);
    running.shutdown().await?;

    let seconds = elapsed.as_secs_f64();
    println!(
        "sent {sent_events} events ({unique} unique, {} deliberate duplicates) in {seconds:.2} s",
        sent_events - unique
    );
    println!(
        "throughput: {:.0} batches/s, {:.0} events/s",
        args.batches as f64 / seconds,
        sent_events as f64 / seconds
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    let in_store = stats["events"].as_u64().unwrap_or(0);
    println!(
        "responses: stored {stored}, duplicates {duplicates}, failed batches {failures}; the store holds {in_store} events"
    );
    let ok = failures == 0
        && stored == unique as u64
        && in_store == unique as u64
        && duplicates == (sent_events - unique) as u64;
    if ok {
        println!("OK: every unique event stored exactly once");
    } else {
        println!("MISMATCH: expected {unique} unique events stored");
    }
    Ok(ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}
