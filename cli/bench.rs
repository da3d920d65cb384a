//! `dynamo bench`: load a running cluster and report throughput and latency.
//!
//! `--concurrency` tasks share one [`Client`] (one QUIC connection per node,
//! requests pipelined on it) and loop for `--duration` seconds over `--keys`
//! keys of the `bench` bucket, reading with probability `--read-ratio` and
//! otherwise writing `--value-size` random bytes with the latest context seen
//! for the key, so keys do not pile up siblings. The key space is filled
//! before the clock starts. Latencies go into HDR histograms (microsecond
//! resolution); the report gives ops/s and p50/p95/p99/p999 per operation.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamo::client::{Client, ClientError, GetOptions, PutOptions};
use dynamo::home::Home;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::args::BenchArgs;
use crate::kv::connect;
use crate::{exit, output};

const BUCKET: &str = "bench";

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
    get: OpJson,
    put: OpJson,
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

/// Key `i` of one bench run. Each run writes its own keys (`run` is drawn
/// at random), so runs on one cluster never pile siblings onto each
/// other's keys with their context-free fill writes.
fn key_name(run: u32, i: u64) -> String {
    format!("bench-{run:08x}-{i:08}")
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
    let run: u32 = rand::random();

    // Fill the key space so reads find values.
    output::note(format!("filling {} keys…", args.keys));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut fill = tokio::task::JoinSet::new();
    for w in 0..args.concurrency.min(args.keys as usize) {
        let (client, contexts, next) = (client.clone(), contexts.clone(), next.clone());
        let size = args.value_size;
        let keys = args.keys;
        fill.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= keys {
                    return Ok::<(), ClientError>(());
                }
                let value: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
                let token = client
                    .put(
                        BUCKET,
                        key_name(run, i).as_bytes(),
                        value,
                        None,
                        &PutOptions::default(),
                    )
                    .await?;
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
    let started = Instant::now();
    let stop = started + Duration::from_secs_f64(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.concurrency {
        let (client, contexts) = (client.clone(), contexts.clone());
        let (size, keys, read_ratio) = (args.value_size, args.keys, args.read_ratio);
        tasks.spawn(async move {
            run_worker(
                run, client, contexts, w as u64, size, keys, read_ratio, stop,
            )
            .await
        });
    }
    let mut gets = histogram()?;
    let mut puts = histogram()?;
    let (mut errors, mut siblings) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let worker = done??;
        gets.add(&worker.gets)?;
        puts.add(&worker.puts)?;
        errors += worker.errors;
        siblings += worker.siblings;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let doc = BenchJson {
        duration_s: (elapsed * 100.0).round() / 100.0,
        concurrency: args.concurrency,
        value_size: args.value_size,
        keys: args.keys,
        read_ratio: args.read_ratio,
        ops_per_sec: ((gets.len() + puts.len()) as f64 / elapsed * 10.0).round() / 10.0,
        errors,
        siblings,
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
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
async fn run_worker(
    run: u32,
    client: Client,
    contexts: Contexts,
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
        let key = key_name(run, i);
        let t = Instant::now();
        if rng.gen_bool(read_ratio) {
            match client
                .get(BUCKET, key.as_bytes(), &GetOptions::default())
                .await
            {
                Ok(reply) => {
                    worker
                        .gets
                        .saturating_record(t.elapsed().as_micros() as u64);
                    if reply.object.live_siblings().count() > 1 {
                        worker.siblings += 1;
                    }
                    if let Ok(mut map) = contexts.lock() {
                        map.insert(i, reply.context_token);
                    }
                }
                Err(_) => worker.errors += 1,
            }
        } else {
            rng.fill(&mut value[..]);
            let context = contexts.lock().ok().and_then(|m| m.get(&i).cloned());
            match client
                .put(
                    BUCKET,
                    key.as_bytes(),
                    value.clone(),
                    context.as_deref(),
                    &PutOptions::default(),
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
