//! `dynamo sim`: the deterministic simulator in users' hands. Runs a seeded
//! cluster in one process (no cluster home, no sockets): prints the seed and
//! the fault settings drawn from it first, then operations, faults injected
//! by kind, siblings, invariant results, simulated and wall time, and last
//! the one command that replays the run. `--seeds A..B` runs a range of seeds
//! and stops at the first failure. Exit 1 when an invariant is broken.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use dynamo::sim::{FaultSet, Invariant, SimConfig, SimReport, World};
use serde_json::json;

use crate::args::SimArgs;
use crate::exit;
use crate::output;

const INVARIANTS: [Invariant; 4] = [
    Invariant::NoLostWrite,
    Invariant::Convergence,
    Invariant::NoPhantom,
    Invariant::NoResurrection,
];

/// `dynamo sim`.
pub fn run(args: &SimArgs) -> anyhow::Result<ExitCode> {
    let faults = match &args.faults {
        Some(list) => Some(FaultSet::parse(list).map_err(|e| exit::usage(e.to_string()))?),
        None => None,
    };
    let mut config = SimConfig::new(args.seed.unwrap_or_else(rand::random));
    config.nodes = args.nodes;
    config.ops = args.ops;
    config.faults = faults;
    config.replicas = args.replicas;
    config.read_quorum = args.read_quorum;
    config.write_quorum = args.write_quorum;
    config.validate().map_err(|e| exit::usage(e.to_string()))?;
    match &args.seeds {
        Some(range) => run_range(config, range, args.json),
        None => run_one(config, args.json),
    }
}

/// Runs one seed; the wall time it took.
fn simulate(
    config: &SimConfig,
    before: impl FnOnce(&World) -> anyhow::Result<()>,
) -> anyhow::Result<(SimReport, f64)> {
    let started = Instant::now();
    let mut world = World::new(config.clone());
    before(&world)?;
    world.run_safety();
    world.run_liveness();
    let report = world.finish();
    Ok((report, started.elapsed().as_secs_f64()))
}

fn run_one(config: SimConfig, json: bool) -> anyhow::Result<ExitCode> {
    let (report, wall_s) = simulate(&config, |world| {
        if !json {
            output::print(format!(
                "seed {} · {} nodes · N={} R={} W={} · {} operations",
                config.seed,
                config.nodes,
                config.replicas,
                config.read_quorum,
                config.write_quorum,
                config.ops
            ))?;
            output::print(format!("settings  {}", world.settings()))?;
            output::print(format!("membership  {}", world.membership()))?;
        }
        Ok(())
    })?;
    if json {
        output::print_json(&report_json(&report, wall_s))?;
    } else {
        output::print(report_text(&report, wall_s))?;
    }
    Ok(exit_code(&report))
}

fn exit_code(report: &SimReport) -> ExitCode {
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::ERROR)
    }
}

fn ops_per_sec(ops: u64, wall_s: f64) -> f64 {
    if wall_s > 0.0 {
        ops as f64 / wall_s
    } else {
        0.0
    }
}

fn invariant_results(report: &SimReport) -> BTreeMap<String, &'static str> {
    INVARIANTS
        .iter()
        .map(|i| {
            let broken = report.violations.iter().any(|v| v.invariant == *i);
            (i.to_string(), if broken { "broken" } else { "ok" })
        })
        .collect()
}

fn report_json(report: &SimReport, wall_s: f64) -> serde_json::Value {
    let s = &report.stats;
    json!({
        "seed": report.config.seed,
        "config": report.config,
        "settings": report.settings,
        "operations": s.ops,
        "gets": {"ok": s.gets_ok, "failed": s.gets_failed, "with_siblings": s.gets_with_siblings},
        "puts": {"ok": s.puts_ok, "failed": s.puts_failed, "deletes": s.deletes},
        "faults": s.faults,
        "faults_total": s.faults_total(),
        "siblings_created": s.siblings_created,
        "keys": s.keys,
        "keys_with_siblings": s.keys_with_siblings,
        "messages": s.messages,
        "hints_delivered": s.counts.hints_delivered,
        "read_repairs": s.counts.read_repairs,
        "paths": PathTally::of(report),
        "membership": {
            "plan": report.membership,
            "joins": s.joins,
            "leaves": s.leaves,
            "leaves_skipped": s.leaves_skipped,
            "nodes_lost": s.nodes_lost,
            "joiners_lost": s.joiners_lost,
            "losses_skipped": s.losses_skipped,
            "removals": s.removals,
            "removals_done": s.removals_done,
            "ring_aborts": s.ring_aborts,
            "nodes_left": s.nodes_left,
            "ring_proposals": s.ring_proposals,
            "ring_installs": s.ring_installs,
            "ring_installs_in_safety": s.ring_installs_in_safety,
            "partitions_pulled": s.counts.partitions_pulled,
            "keys_handed_over": s.counts.keys_handed_over,
        },
        "events": s.events,
        "converged": s.converged,
        "invariants": invariant_results(report),
        "violations": report.violations,
        "passed": report.passed(),
        "sim_time_s": s.sim_us as f64 / 1e6,
        "safety_time_s": s.safety_us as f64 / 1e6,
        "wall_time_s": wall_s,
        "sim_ops_per_sec": ops_per_sec(s.ops, wall_s),
        "replay": report.config.replay_command(),
    })
}

fn report_text(report: &SimReport, wall_s: f64) -> String {
    let s = &report.stats;
    let faults: Vec<String> = s.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let invariants: Vec<String> = invariant_results(report)
        .iter()
        .map(|(name, result)| format!("{name} {result}"))
        .collect();
    let mut text = format!(
        "operations  {} (gets {} ok, {} failed; puts {} ok, {} failed; {} deletes)\n\
         faults      {} ({})\n\
         siblings    {} created by concurrent puts, {} gets saw several, {} of {} keys end with several\n\
         background  {} messages, {} hints handed off, {} read repairs\n\
         membership  {} joins, {} leaves ({} done, {} skipped), {} nodes lost for good ({} mid-join, {} skipped) and {} force-removed ({} done, {} changes abandoned), {} ring changes installed ({} with faults on), {} partition pulls, {} keys handed over\n\
         invariants  {}\n\
         time        {:.3} s simulated ({:.3} s with faults), {:.3} s wall, {:.0} simulated ops/s",
        s.ops,
        s.gets_ok,
        s.gets_failed,
        s.puts_ok,
        s.puts_failed,
        s.deletes,
        s.faults_total(),
        faults.join(", "),
        s.siblings_created,
        s.gets_with_siblings,
        s.keys_with_siblings,
        s.keys,
        s.messages,
        s.counts.hints_delivered,
        s.counts.read_repairs,
        s.joins,
        s.leaves,
        s.nodes_left,
        s.leaves_skipped,
        s.nodes_lost,
        s.joiners_lost,
        s.losses_skipped,
        s.removals,
        s.removals_done,
        s.ring_aborts,
        s.ring_installs,
        s.ring_installs_in_safety,
        s.counts.partitions_pulled,
        s.counts.keys_handed_over,
        invariants.join(", "),
        s.sim_us as f64 / 1e6,
        s.safety_us as f64 / 1e6,
        wall_s,
        ops_per_sec(s.ops, wall_s),
    );
    for v in report.violations.iter().take(VIOLATIONS_SHOWN) {
        text.push_str(&format!(
            "\nBROKEN      {} on key {}: {}",
            v.invariant, v.key, v.detail
        ));
    }
    if report.violations.len() > VIOLATIONS_SHOWN {
        text.push_str(&format!(
            "\nBROKEN      … and {} more (--json lists them all)",
            report.violations.len() - VIOLATIONS_SHOWN
        ));
    }
    text.push_str(&format!("\nreplay      {}", report.config.replay_command()));
    text
}

/// Violations the text report lists (the rest are counted).
const VIOLATIONS_SHOWN: usize = 20;

/// How often each path of the node state machine ran, summed over runs
/// (issue 9: each real path must run under the seeds).
#[derive(Debug, Default, serde::Serialize)]
struct PathTally {
    fallback_puts: u64,
    hints_handed_off: u64,
    read_repairs: u64,
    merkle_exchanges: u64,
    keys_repaired: u64,
    tombstones_collected: u64,
    incarnations_renewed: u64,
    suspicions: u64,
    gossip_rounds: u64,
    joins: u64,
    leaves: u64,
}

impl PathTally {
    fn of(report: &SimReport) -> Self {
        let mut tally = Self::default();
        tally.add(report);
        tally
    }

    fn add(&mut self, report: &SimReport) {
        let s = &report.stats;
        self.fallback_puts += s.counts.fallback_puts;
        self.hints_handed_off += s.counts.hints_delivered;
        self.read_repairs += s.counts.read_repairs;
        self.merkle_exchanges += s.counts.merkle_exchanges;
        self.tombstones_collected += s.counts.tombstones_collected;
        self.gossip_rounds += s.counts.gossip_rounds;
        self.keys_repaired += s.counts.keys_repaired;
        self.incarnations_renewed += s.counts.incarnations_renewed;
        self.suspicions += s.counts.suspicions;
        self.joins += s.joins;
        self.leaves += s.leaves;
    }
}

/// Membership changes summed over a range of seeds.
#[derive(Debug, Default, serde::Serialize)]
struct MembershipTally {
    joins: u64,
    leaves: u64,
    nodes_lost: u64,
    joiners_lost: u64,
    removals_done: u64,
    ring_aborts: u64,
    ring_installs: u64,
}

impl MembershipTally {
    fn add(&mut self, report: &SimReport) {
        let s = &report.stats;
        self.joins += s.joins;
        self.leaves += s.leaves;
        self.nodes_lost += s.nodes_lost;
        self.joiners_lost += s.joiners_lost;
        self.removals_done += s.removals_done;
        self.ring_aborts += s.ring_aborts;
        self.ring_installs += s.ring_installs;
    }
}

fn parse_range(range: &str) -> anyhow::Result<(u64, u64)> {
    let bad = || {
        exit::usage(format!(
            "--seeds takes a range A..B of seeds, like 0..1000, not {range:?}"
        ))
    };
    let (a, b) = range.split_once("..").ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b <= a {
        return Err(bad());
    }
    Ok((a, b))
}

fn run_range(config: SimConfig, range: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (first, end) = parse_range(range)?;
    let started = Instant::now();
    let progress = output::stderr_is_terminal();
    let (mut seeds, mut ops, mut faults, mut sim_us) = (0u64, 0u64, 0u64, 0u64);
    let mut tally = MembershipTally::default();
    let mut paths = PathTally::default();
    let mut failed: Option<(SimReport, f64)> = None;
    let mut last_progress = Instant::now();
    for seed in first..end {
        let config = SimConfig {
            seed,
            ..config.clone()
        };
        let (report, wall_s) = simulate(&config, |_| Ok(()))?;
        seeds += 1;
        ops += report.stats.ops;
        faults += report.stats.faults_total();
        sim_us += report.stats.sim_us;
        tally.add(&report);
        paths.add(&report);
        if !report.passed() {
            failed = Some((report, wall_s));
            break;
        }
        if progress && last_progress.elapsed().as_secs_f64() >= 1.0 {
            last_progress = Instant::now();
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{seeds} of {} seeds passed ({ops} operations)",
                end - first
            );
            let _ = err.flush();
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let wall_s = started.elapsed().as_secs_f64();
    if json {
        output::print_json(&json!({
            "seeds": seeds,
            "first_seed": first,
            "passed": failed.is_none(),
            "operations": ops,
            "faults_total": faults,
            "sim_time_s": sim_us as f64 / 1e6,
            "wall_time_s": wall_s,
            "sim_ops_per_sec": ops_per_sec(ops, wall_s),
            "membership": tally,
            "paths": paths,
            "failure": failed.as_ref().map(|(r, w)| report_json(r, *w)),
        }))?;
    } else {
        output::print(format!(
            "{seeds} seeds ({first}..{}), {ops} operations, {faults} faults injected, {:.1} s simulated, {:.1} s wall, {:.0} simulated ops/s",
            first + seeds,
            sim_us as f64 / 1e6,
            wall_s,
            ops_per_sec(ops, wall_s)
        ))?;
        output::print(format!(
            "membership  {} joins, {} leaves, {} nodes lost for good ({} mid-join) and {} removed, {} changes abandoned, {} ring changes installed",
            tally.joins,
            tally.leaves,
            tally.nodes_lost,
            tally.joiners_lost,
            tally.removals_done,
            tally.ring_aborts,
            tally.ring_installs
        ))?;
        output::print(format!(
            "paths       {} fallback puts, {} hints handed off, {} read repairs, {} Merkle exchanges ({} keys repaired), {} tombstones collected, {} incarnations renewed, {} suspicions, {} gossip rounds",
            paths.fallback_puts,
            paths.hints_handed_off,
            paths.read_repairs,
            paths.merkle_exchanges,
            paths.keys_repaired,
            paths.tombstones_collected,
            paths.incarnations_renewed,
            paths.suspicions,
            paths.gossip_rounds
        ))?;
        match &failed {
            Some((report, _)) => {
                if let Some(failure) = report.failure() {
                    output::print(format!("FAILED {failure}"))?;
                }
            }
            None => output::print("every invariant held for every seed")?,
        }
    }
    Ok(match failed {
        Some((report, _)) => exit_code(&report),
        None => ExitCode::SUCCESS,
    })
}
