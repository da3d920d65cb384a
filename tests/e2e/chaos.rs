//! The chaos test (issues 3 and 8): writers put unique keys with the
//! client's default routing (each `dynamo put` a fresh process, as a
//! user's script runs it) while a driver crashes, stops and restarts nodes
//! and cuts and heals partitions at random, one fault at a time, so W
//! nodes of every key's extended list stay reachable. Afterwards every
//! acknowledged put must be readable with its exact value, once (a put
//! retried on another coordinator is one version), and at least 99% of the
//! puts must have been acknowledged; the share is printed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::faults::{preference_list, sibling_values, wait_hints_drained, DRAIN_TIMEOUT};
use crate::support::{dynamo_in, Cluster};

/// How long the faults go on.
const CHAOS: Duration = Duration::from_secs(30);
/// Writer threads.
const WRITERS: usize = 4;

/// The share of puts, in percent, that must be acknowledged: with one
/// fault at a time every put has W reachable nodes, and the client retries
/// on the next node of the key's extended list within its deadline.
const ACKED_PERCENT_MIN: f64 = 99.0;

#[test]
fn chaos_loses_no_acknowledged_write() {
    let cluster = Cluster::start(5);
    let seed: u64 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    eprintln!("chaos: seed {seed}");
    let stop = AtomicBool::new(false);
    let attempts = AtomicU64::new(0);
    let names = cluster.names.clone();
    let mut log: Vec<String> = Vec::new();

    let acked: Vec<(String, String)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (cluster, stop, attempts) = (&cluster, &stop, &attempts);
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64 + 1));
                    let mut acked = Vec::new();
                    let mut failed = BTreeMap::<i32, u64>::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("chaos-{w}-{i}");
                        let value = format!("{w}:{i}:{}", rng.gen::<u32>());
                        i += 1;
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let run = dynamo_in(cluster.home(), &["put", &key, &value], None);
                        if run.code == 0 {
                            acked.push((key, value));
                        } else {
                            *failed.entry(run.code).or_default() += 1;
                            if failed.values().sum::<u64>() <= 3 {
                                eprintln!(
                                    "chaos: {} failed: exit {}: {}",
                                    run.line,
                                    run.code,
                                    run.stderr.trim()
                                );
                            }
                        }
                    }
                    if !failed.is_empty() {
                        eprintln!("chaos: writer {w} failures by exit code: {failed:?}");
                    }
                    acked
                })
            })
            .collect();

        // The driver: one fault at a time, so every coordinator has W = 2
        // nodes on its side (a 2|3 cut, or one node down).
        let driver = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut rng = StdRng::seed_from_u64(seed);
            let started = Instant::now();
            while started.elapsed() < CHAOS {
                let hold = Duration::from_millis(rng.gen_range(1000..3000));
                let pause = Duration::from_millis(rng.gen_range(300..1200));
                let node = names.choose(&mut rng).expect("nodes").clone();
                match rng.gen_range(0..3) {
                    0 | 1 => {
                        let how = if rng.gen_bool(0.5) { "kill" } else { "stop" };
                        log.push(format!("{how} {node}"));
                        cluster.run(&[how, &node]).ok();
                        std::thread::sleep(hold);
                        cluster.run(&["start", &node]).ok();
                    }
                    _ => {
                        let mut shuffled = names.clone();
                        shuffled.shuffle(&mut rng);
                        let (a, b) = shuffled.split_at(2);
                        let (a, b) = (a.join(","), b.join(","));
                        log.push(format!("partition {a} {b}"));
                        cluster.run(&["partition", &a, &b]).ok();
                        std::thread::sleep(hold);
                        cluster.run(&["heal"]).ok();
                    }
                }
                std::thread::sleep(pause);
            }
        }));
        // Writers stop even when the driver failed, so the scope ends.
        stop.store(true, Ordering::Relaxed);
        let acked = writers
            .into_iter()
            .flat_map(|w| w.join().expect("a writer thread"))
            .collect();
        if let Err(panic) = driver {
            std::panic::resume_unwind(panic);
        }
        acked
    });
    eprintln!("chaos: faults: {}", log.join("; "));

    // Everything back: healed, every node up, every hint handed off.
    cluster.run(&["heal"]).ok();
    wait_hints_drained(&cluster, DRAIN_TIMEOUT);

    let attempts = attempts.load(Ordering::Relaxed);
    // Lost: the value is not among the key's siblings. Duplicated: it is,
    // more than once (one put that became several versions).
    let lost = Mutex::new(Vec::new());
    let duplicated = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for chunk in acked.chunks(acked.len().div_ceil(WRITERS).max(1)) {
            let (cluster, lost, duplicated) = (&cluster, &lost, &duplicated);
            scope.spawn(move || {
                for (key, value) in chunk {
                    match sibling_values(cluster, key, &[]) {
                        Ok(values) if values.iter().all(|v| v == value) && !values.is_empty() => {
                            if values.len() > 1 {
                                duplicated.lock().expect("duplicated").push(key.clone());
                            }
                        }
                        other => lost
                            .lock()
                            .expect("lost")
                            .push(format!("{key}: expected {value:?}, got {other:?}")),
                    }
                }
            });
        }
    });
    let duplicated = duplicated.into_inner().expect("duplicated");
    if !duplicated.is_empty() {
        eprintln!(
            "chaos: {} acknowledged puts came back as several identical siblings (one put, several dots): {:?}",
            duplicated.len(),
            duplicated.iter().take(10).collect::<Vec<_>>()
        );
    }
    let lost = lost.into_inner().expect("lost");
    let share = 100.0 * acked.len() as f64 / attempts.max(1) as f64;
    println!(
        "chaos: {}/{attempts} puts acknowledged ({share:.2}%), {} acknowledged writes lost, {} duplicated, {} faults in {}s",
        acked.len(),
        lost.len(),
        duplicated.len(),
        log.len(),
        CHAOS.as_secs()
    );
    assert!(
        share >= ACKED_PERCENT_MIN,
        "expected at least {ACKED_PERCENT_MIN}% of puts acknowledged through one fault at a \
         time, got {}/{attempts} ({share:.2}%)",
        acked.len()
    );
    assert!(
        duplicated.is_empty(),
        "one put came back as several versions: {duplicated:?}"
    );
    for line in lost.iter().take(3) {
        let key = line.split(':').next().unwrap_or_default();
        let all = cluster.run(&["get", key, "-R", "3", "--json"]);
        let explain = cluster.run(&["get", key, "--explain"]);
        eprintln!(
            "chaos: lost {line}\n  R = 3: exit {} {} {}\n  explain: {}{}\n  ring: {:?}",
            all.code,
            all.text().trim(),
            all.stderr.trim(),
            explain.text(),
            explain.stderr,
            preference_list(&cluster, key)
        );
    }
    assert!(
        lost.is_empty(),
        "expected every acknowledged write readable with its value; lost {}:\n{}",
        lost.len(),
        lost.join("\n")
    );
}
