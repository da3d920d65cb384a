//! `dynamo bench`: load a running cluster and report throughput and latency.
//!
//! `--concurrency` tasks share one [`Client`] (one QUIC connection per node,
//! requests pipelined on it) and loop for `--duration` seconds over `--keys`
//! keys of the `bench` bucket, reading with probability `--read-ratio` and
//! otherwise writing `--value-size` random bytes with the latest context seen
//! for the key, so keys do not pile up siblings. The key space is filled
//! before the clock starts, each key written over what it holds (read first),
//! so every run reuses the same keys (`bench-00000000`…) instead of adding
//! its own. Latencies go into HDR histograms (microsecond resolution); the
//! report gives ops/s and p50/p95/p99/p999 per operation, and what the
//! operations cost: the growth of the nodes' own CPU-time and datagram
//! counters (`status`) over the timed phase, divided by its operations
//! (datagrams the nodes sent plus those the bench client sent). On a
//! terminal a line on stderr shows the rate as it goes. With `--http` each
//! task has its own HTTPS connection (node `task % nodes`) and speaks the
//! HTTP API instead (its TCP traffic is not in `datagrams_per_op`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamo::client::{Client, GetOptions, PutOptions};
use dynamo::home::Home;
use dynamo::http::client::HttpsClient;
use dynamo::net::tls::Credentials;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::args::BenchArgs;
use crate::kv::connect;
use crate::{exit, output};

const BUCKET: &str = "bench";

/// Where the bench sends its requests: the QUIC client, or (`--http`) one
/// HTTPS connection per task, spread over the nodes.
#[derive(Clone)]
enum Target {
    Quic(Client),
    Http(Arc<HttpsClient>),
}

impl Target {
    /// Reads a key: its context token and how many live siblings it has.
    async fn get(&self, key: &str) -> anyhow::Result<(String, usize)> {
        match self {
            Target::Quic(client) => {
                let reply = client
                    .get(BUCKET, key.as_bytes(), &GetOptions::default())
                    .await?;
                Ok((reply.context_token, reply.object.live_siblings().count()))
            }
            Target::Http(client) => {
                let answer = client.get(&format!("/buckets/{BUCKET}/keys/{key}")).await?;
                let token = answer
                    .header("x-dynamo-context")
                    .unwrap_or_default()
                    .to_string();
                match answer.status.as_u16() {
                    200 => Ok((token, 1)),
                    404 => Ok((token, 0)),
                    300 => Ok((token, 2)),
                    code => Err(anyhow::anyhow!("GET {key}: HTTP {code}")),
                }
            }
        }
    }

    /// Writes a key over `context`; the new context token.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        context: Option<&str>,
    ) -> anyhow::Result<String> {
        match self {
            Target::Quic(client) => Ok(client
                .put(
                    BUCKET,
                    key.as_bytes(),
                    value,
                    context,
                    &PutOptions::default(),
                )
                .await?),
            Target::Http(client) => {
                let headers: Vec<(&str, &str)> = context
                    .map(|c| ("x-dynamo-context", c))
                    .into_iter()
                    .collect();
                let path = format!("/buckets/{BUCKET}/keys/{key}");
                let answer = client
                    .request(hyper::Method::PUT, &path, &headers, value)
                    .await?;
                match answer.status.as_u16() {
                    204 => Ok(answer
                        .header("x-dynamo-context")
                        .unwrap_or_default()
                        .to_string()),
                    code => Err(anyhow::anyhow!("PUT {key}: HTTP {code}")),
                }
            }
        }
    }
}

/// One target per task: the shared QUIC client, or a connection of its own
/// to node `task % nodes` over HTTPS.
fn targets(home: &Home, client: &Client, tasks: usize, http: bool) -> anyhow::Result<Vec<Target>> {
    if !http {
        return Ok(vec![Target::Quic(client.clone()); tasks]);
    }
    let creds = Credentials::load(&home.ca_cert(), &home.client_cert(), &home.client_key())?;
    let nodes: Vec<_> = client
        .manifest()
        .nodes
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.http?)))
        .collect();
    if nodes.is_empty() {
        return Err(exit::usage("cluster.toml names no node's HTTPS address"));
    }
    (0..tasks)
        .map(|t| {
            let (name, addr) = &nodes[t % nodes.len()];
            Ok(Target::Http(Arc::new(HttpsClient::new(
                *addr, name, &creds,
            )?)))
        })
        .collect()
}

#[derive(Serialize)]
struct OpJson {
    count: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

#[derive(Serialize)]
struct BenchJson {
    duration_s: f64,
    concurrency: usize,
    value_size: usize,
    keys: u64,
    read_ratio: f64,
    ops_per_sec: f64,
    errors: u64,
    siblings: u64,
    /// Microseconds of CPU the cluster's nodes used per operation (absent
    /// when a node did not report its counters).
    node_cpu_us_per_op: Option<f64>,
    /// UDP datagrams per operation: those the nodes sent and those the
    /// bench client sent.
    datagrams_per_op: Option<f64>,
    get: OpJson,
    put: OpJson,
}

/// The cluster's cost counters at one moment: CPU microseconds and
/// datagrams sent, summed over the nodes that answered, and how many did.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    cpu_micros: u64,
    datagrams: u64,
    nodes: usize,
}

async fn counters(client: &Client) -> Counters {
    let mut total = Counters::default();
    for node in &client.manifest().nodes {
        let status = tokio::time::timeout(Duration::from_secs(2), client.status(&node.name)).await;
        if let Ok(Ok(status)) = status {
            total.cpu_micros += status.report.cpu_micros;
            total.datagrams += status.report.datagrams_sent;
            total.nodes += 1;
        }
    }
    total.datagrams += client.datagrams_sent();
    total
}

struct Worker {
    gets: Histogram<u64>,
    puts: Histogram<u64>,
    errors: u64,
    siblings: u64,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn op_json(h: &Histogram<u64>) -> OpJson {
    let ms = |q: f64| (h.value_at_quantile(q) as f64) / 1000.0;
    OpJson {
        count: h.len(),
        p50_ms: ms(0.50),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
    }
}

type Contexts = Arc<Mutex<HashMap<u64, String>>>;

/// Key `i` of the bench key space, the same for every run.
fn key_name(i: u64) -> String {
    format!("bench-{i:08}")
}

/// `dynamo bench`.
pub async fn bench(home: &Home, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.concurrency == 0
        || args.keys == 0
        || !(0.0..=1.0).contains(&args.read_ratio)
        || args.duration <= 0.0
    {
        return Err(exit::usage(
            "--concurrency and --keys must be at least 1, --duration above 0, --read-ratio between 0 and 1",
        ));
    }
    let client = connect(home)?;
    let contexts: Contexts = Arc::new(Mutex::new(HashMap::new()));
    let targets = targets(home, &client, args.concurrency, args.http)?;

    // Fill the key space so reads find values.
    output::note(format!("filling {} keys…", args.keys));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut fill = tokio::task::JoinSet::new();
    for (w, target) in targets.iter().enumerate().take(args.keys as usize) {
        let (target, contexts, next) = (target.clone(), contexts.clone(), next.clone());
        let size = args.value_size;
        let keys = args.keys;
        fill.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= keys {
                    return Ok::<(), anyhow::Error>(());
                }
                let value: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
                let key = key_name(i);
                // Over whatever an earlier run left: no siblings pile up.
                let (seen, _) = target.get(&key).await?;
                let seen = Some(seen).filter(|t| !t.is_empty());
                let token = target.put(&key, value, seen.as_deref()).await?;
                if let Ok(mut map) = contexts.lock() {
                    map.insert(i, token);
                }
            }
        });
    }
    while let Some(done) = fill.join_next().await {
        done??;
    }

    output::note(format!(
        "running {} tasks for {:.1} s ({}% reads, {}-byte values)…",
        args.concurrency,
        args.duration,
        (args.read_ratio * 100.0).round(),
        args.value_size
    ));
    let before = counters(&client).await;
    let started = Instant::now();
    let stop = started + Duration::from_secs_f64(args.duration);
    let done_ops = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (w, target) in targets.iter().enumerate() {
        let (target, contexts, done_ops) = (target.clone(), contexts.clone(), done_ops.clone());
        let (size, keys, read_ratio) = (args.value_size, args.keys, args.read_ratio);
        tasks.spawn(async move {
            run_worker(
                target, contexts, done_ops, w as u64, size, keys, read_ratio, stop,
            )
            .await
        });
    }
    let mut gets = histogram()?;
    let mut puts = histogram()?;
    let (mut errors, mut siblings) = (0, 0);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let live = output::stderr_is_terminal();
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => {
                    let worker = done??;
                    gets.add(&worker.gets)?;
                    puts.add(&worker.puts)?;
                    errors += worker.errors;
                    siblings += worker.siblings;
                }
                None => break,
            },
            _ = ticker.tick(), if live => {
                let ops = done_ops.load(std::sync::atomic::Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprint!("\r{ops} operations in {secs:.0} s: {:.0} ops/s   ", ops as f64 / secs.max(0.001));
            }
        }
    }
    if live {
        eprintln!();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = counters(&client).await;
    let ops = (gets.len() + puts.len()).max(1) as f64;
    let cost = |grew: u64| -> Option<f64> {
        let all_answered =
            before.nodes == client.manifest().nodes.len() && after.nodes == before.nodes;
        all_answered.then(|| (grew as f64 / ops * 100.0).round() / 100.0)
    };
    let doc = BenchJson {
        duration_s: (elapsed * 100.0).round() / 100.0,
        concurrency: args.concurrency,
        value_size: args.value_size,
        keys: args.keys,
        read_ratio: args.read_ratio,
        ops_per_sec: ((gets.len() + puts.len()) as f64 / elapsed * 10.0).round() / 10.0,
        errors,
        siblings,
        node_cpu_us_per_op: cost(after.cpu_micros.saturating_sub(before.cpu_micros)),
        datagrams_per_op: cost(after.datagrams.saturating_sub(before.datagrams)),
        get: op_json(&gets),
        put: op_json(&puts),
    };
    if args.json {
        output::print_json(&doc)?;
    } else {
        let mut table = output::table(["op", "count", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms"]);
        for (name, op) in [("get", &doc.get), ("put", &doc.put)] {
            table.add_row(vec![
                name.to_string(),
                op.count.to_string(),
                format!("{:.2}", op.p50_ms),
                format!("{:.2}", op.p95_ms),
                format!("{:.2}", op.p99_ms),
                format!("{:.2}", op.p999_ms),
            ]);
        }
        output::print_table(&table)?;
        output::print(format!(
            "{:.0} ops/s over {:.1} s with {} in flight; {} errors, {} reads saw siblings",
            doc.ops_per_sec, doc.duration_s, doc.concurrency, doc.errors, doc.siblings
        ))?;
        let shown = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
        output::print(format!(
            "cost per operation: {} us of node CPU, {} UDP datagrams",
            shown(doc.node_cpu_us_per_op),
            shown(doc.datagrams_per_op)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
async fn run_worker(
    target: Target,
    contexts: Contexts,
    done_ops: Arc<std::sync::atomic::AtomicU64>,
    seed: u64,
    size: usize,
    keys: u64,
    read_ratio: f64,
    stop: Instant,
) -> anyhow::Result<Worker> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut worker = Worker {
        gets: histogram()?,
        puts: histogram()?,
        errors: 0,
        siblings: 0,
    };
    let mut value = vec![0u8; size];
    while Instant::now() < stop {
        let i = rng.gen_range(0..keys);
        let key = key_name(i);
        let t = Instant::now();
        done_ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if rng.gen_bool(read_ratio) {
            match target.get(&key).await {
                Ok((token, siblings)) => {
                    worker
                        .gets
                        .saturating_record(t.elapsed().as_micros() as u64);
                    if siblings > 1 {
                        worker.siblings += 1;
                    }
                    if let Ok(mut map) = contexts.lock() {
                        map.insert(i, token);
                    }
                }
                Err(_) => worker.errors += 1,
            }
        } else {
            rng.fill(&mut value[..]);
            let context = contexts.lock().ok().and_then(|m| m.get(&i).cloned());
            match target
                .put(
                    &key,
                    value.clone(),
                    context.as_deref().filter(|c| !c.is_empty()),
                )
                .await
            {
                Ok(token) => {
                    worker
                        .puts
                        .saturating_record(t.elapsed().as_micros() as u64);
                    if let Ok(mut map) = contexts.lock() {
                        map.insert(i, token);
                    }
                }
                Err(_) => worker.errors += 1,
            }
        }
    }
    Ok(worker)
}
