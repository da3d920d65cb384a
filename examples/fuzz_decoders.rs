//! Runs the seeded mutation fuzzer of `dynamo::fuzz` over the decoders of
//! peer input and prints one JSON line per target, then a summary line
//! with the process's peak memory. Exit 1 when any input panicked.
//!
//! ```sh
//! cargo run --release --example fuzz_decoders -- --inputs 1500000 --seed 1
//! cargo run --release --example fuzz_decoders -- --target gossip --inputs 100000
//! ```
//! `scripts/fuzz` runs every target with millions of inputs on every core.

use std::process::ExitCode;
use std::time::Instant;

use dynamo::fuzz::{fuzz, peak_memory_kib, Target};

fn main() -> ExitCode {
    let mut inputs: u64 = 100_000;
    let mut seed: u64 = 1;
    let mut targets: Vec<Target> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value.as_deref()) {
            ("--inputs", Some(v)) => v.parse().map(|v| inputs = v).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|v| seed = v).is_ok(),
            ("--target", Some(v)) => Target::from_name(v).map(|t| targets.push(t)).is_some(),
            _ => false,
        };
        if !parsed {
            eprintln!(
                "usage: fuzz_decoders [--inputs N] [--seed S] [--target NAME]...; targets: {}",
                Target::ALL.map(Target::name).join(", ")
            );
            return ExitCode::from(2);
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    let (mut total, mut panics) = (0u64, 0u64);
    let started = Instant::now();
    for target in targets {
        let t = Instant::now();
        let report = fuzz(target, inputs, seed);
        total += report.inputs;
        panics += report.panics;
        let line = serde_json::json!({
            "target": target.name(),
            "seed": seed,
            "inputs": report.inputs,
            "decoded": report.decoded,
            "panics": report.panics,
            "first_panic": report.first_panic,
            "longest_input": report.longest_input,
            "seconds": t.elapsed().as_secs_f64(),
        });
        println!("{line}");
    }
    println!(
        "{}",
        serde_json::json!({
            "inputs": total,
            "panics": panics,
            "seconds": started.elapsed().as_secs_f64(),
            "peak_memory_kib": peak_memory_kib(),
        })
    );
    if panics > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
