//! The deterministic simulator in CI: many seeds, each a whole cluster run
//! with faults drawn from the seed, then targeted scenarios and tests that
//! prove the invariants catch deliberate bugs.
//!
//! A failing seed prints the one command that replays it. To replay inside
//! the test suite: `DYNAMO_SIM_SEED=12345 cargo test --test sim`. To run more
//! seeds: `DYNAMO_SIM_SEEDS=5000 cargo test --release --test sim`.

use dynamo::core::clock::VersionVector;
use dynamo::core::key::ObjectKey;
use dynamo::sim::node::ClientOutcome;
use dynamo::sim::{self, Bug, FaultSet, Invariant, SimConfig, SimReport, World};

/// Seeds `cargo test` runs (split over [`SHARDS`] tests so both cores work).
const SEEDS_DEFAULT: u64 = 600;
const SHARDS: u64 = 4;
/// Client operations per seed: small, so hundreds of seeds stay fast in a
/// debug build.
const OPS_PER_SEED: u64 = 120;

/// The configuration of CI seed `seed`: the cluster shape varies with it.
fn config_for(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.ops = OPS_PER_SEED;
    let shapes = [
        (5, 3, 2, 2),
        (5, 3, 1, 3),
        (5, 3, 3, 1),
        (4, 3, 2, 2),
        (6, 3, 2, 3),
        (7, 5, 3, 3),
        (3, 3, 2, 2),
        (5, 2, 1, 2),
    ];
    let (nodes, n, r, w) = shapes[(seed % shapes.len() as u64) as usize];
    config.nodes = nodes;
    config.replicas = n;
    config.read_quorum = r;
    config.write_quorum = w;
    config
}

fn run(config: &SimConfig) -> SimReport {
    match sim::run(config) {
        Ok(report) => report,
        Err(e) => panic!("bad simulator config: {e}"),
    }
}

fn seed_range(shard: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("DYNAMO_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return if shard == 0 { vec![seed] } else { Vec::new() };
    }
    let total = std::env::var("DYNAMO_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS_DEFAULT);
    (0..total).filter(|s| s % SHARDS == shard).collect()
}

fn run_shard(shard: u64) {
    let mut ops = 0;
    let mut faults = 0;
    let seeds = seed_range(shard);
    for &seed in &seeds {
        let config = config_for(seed);
        let report = run(&config);
        ops += report.stats.ops;
        faults += report.stats.faults_total();
        if let Some(failure) = report.failure() {
            panic!(
                "{failure}\n  replay in tests: DYNAMO_SIM_SEED={seed} cargo test --test sim\n  replay with the binary: cargo run --release -- sim {}",
                config.replay_args()
            );
        }
    }
    eprintln!(
        "sim shard {shard}: {} seeds, {ops} operations, {faults} faults injected, all invariants held",
        seeds.len()
    );
}

#[test]
fn seeds_shard_0() {
    run_shard(0);
}

#[test]
fn seeds_shard_1() {
    run_shard(1);
}

#[test]
fn seeds_shard_2() {
    run_shard(2);
}

#[test]
fn seeds_shard_3() {
    run_shard(3);
}

#[test]
fn a_seed_replays_exactly() {
    let config = config_for(7);
    let a = run(&config);
    let b = run(&config);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.violations, b.violations);
}

fn quiet(seed: u64, bug: Option<Bug>) -> World {
    let mut config = SimConfig::new(seed);
    config.ops = 0;
    config.faults = Some(FaultSet::none());
    config.bug = bug;
    World::new(config)
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(dynamo::sim::world::SIM_BUCKET, name.as_bytes()).expect("valid key")
}

fn written(outcome: ClientOutcome) -> dynamo::core::clock::Dot {
    match outcome {
        ClientOutcome::Written { dot } => dot,
        other => panic!("expected the put to be acknowledged, got {other:?}"),
    }
}

fn finish(mut world: World) -> SimReport {
    world.run_liveness();
    world.finish()
}

#[test]
fn a_wiped_node_comes_back_with_a_new_incarnation_and_loses_no_write() {
    let mut world = quiet(1, None);
    let k = key("k0");
    let home = world.home(&k);
    let coordinator = home[0];
    let first = written(world.put(coordinator, &k, Some(b"first")));
    let before = world.incarnation(coordinator);
    world.advance(100_000);
    world.crash(coordinator, true);
    world.advance(10_000);
    world.restart(coordinator);
    assert_ne!(
        world.incarnation(coordinator),
        before,
        "a wiped node needs a new incarnation"
    );
    // A blind write through the wiped node: it has forgotten everything.
    world.forget_context(&k);
    let second = written(world.put(coordinator, &k, Some(b"second")));
    assert_ne!(first, second, "the wiped node must not re-mint an old dot");
    let report = finish(world);
    assert!(report.passed(), "{:?}", report.failure());
    let values: usize = 2;
    assert_eq!(report.stats.puts_ok, values as u64);
}

#[test]
fn reusing_the_incarnation_after_a_wipe_is_caught() {
    let mut world = quiet(1, Some(Bug::ReuseIncarnationAfterWipe));
    let k = key("k0");
    let coordinator = world.home(&k)[0];
    written(world.put(coordinator, &k, Some(b"first")));
    world.advance(100_000);
    world.crash(coordinator, true);
    world.restart(coordinator);
    world.forget_context(&k);
    written(world.put(coordinator, &k, Some(b"second")));
    let report = finish(world);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.invariant == Invariant::NoLostWrite),
        "expected a lost write, got {:?}",
        report.violations
    );
}

/// Cuts a 5-node cluster so that a key's first home replica and one
/// fallback are on one side, the other two home replicas and the other
/// fallback on the other: both sides can still reach W = 2.
fn split_two_three(world: &World, k: &ObjectKey) -> (Vec<usize>, Vec<usize>) {
    let home = world.home(k);
    let others: Vec<usize> = (0..world.config().nodes)
        .filter(|i| !home.contains(i))
        .collect();
    (vec![home[0], others[0]], vec![home[1], home[2], others[1]])
}

#[test]
fn a_same_context_write_on_both_sides_of_a_partition_gives_two_siblings() {
    let mut world = quiet(2, None);
    let k = key("k1");
    let home = world.home(&k);
    let base = written(world.put(home[0], &k, Some(b"base")));
    world.advance(100_000);
    let context = match world.get(home[0], &k) {
        ClientOutcome::Got(object) => object.context().clone(),
        other => panic!("get failed: {other:?}"),
    };
    assert!(context.covers(&base));
    let (left_side, right_side) = split_two_three(&world, &k);
    world.partition(&[left_side, right_side]);
    world.set_context(&k, context.clone());
    let left = written(world.put(home[0], &k, Some(b"left")));
    world.set_context(&k, context);
    let right = written(world.put(home[1], &k, Some(b"right")));
    world.heal();
    world.run_liveness();
    for &i in &home {
        let object = world
            .stored(i, &k)
            .expect("every replica holds the key")
            .clone();
        let mut values: Vec<Vec<u8>> = object
            .live_siblings()
            .filter_map(|s| s.value.clone())
            .collect();
        values.sort();
        assert_eq!(
            values,
            vec![b"left".to_vec(), b"right".to_vec()],
            "at n{}",
            i + 1
        );
        assert!(object.context().covers(&left) && object.context().covers(&right));
    }
    let report = world.finish();
    assert!(report.passed(), "{:?}", report.failure());
    assert!(
        report.stats.hints_delivered > 0,
        "the fallback's hint went home"
    );
}

#[test]
fn a_replica_that_overwrites_instead_of_merging_is_caught() {
    let mut world = quiet(3, Some(Bug::ReplicaOverwrites));
    let k = key("k2");
    let home = world.home(&k);
    let (left_side, right_side) = split_two_three(&world, &k);
    world.partition(&[left_side, right_side]);
    world.forget_context(&k);
    written(world.put(home[0], &k, Some(b"one")));
    world.forget_context(&k);
    written(world.put(home[1], &k, Some(b"two")));
    world.heal();
    let report = finish(world);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.invariant == Invariant::NoLostWrite),
        "expected a lost write, got {:?}",
        report.violations
    );
}

#[test]
fn random_runs_catch_the_overwrite_bug() {
    let caught = (0..20u64)
        .filter(|&seed| {
            let mut config = config_for(seed);
            config.bug = Some(Bug::ReplicaOverwrites);
            !run(&config).passed()
        })
        .count();
    assert!(
        caught >= 10,
        "only {caught} of 20 seeds caught the overwrite bug"
    );
}

#[test]
fn random_runs_with_wipes_catch_the_reused_incarnation() {
    let caught = (0..40u64)
        .filter(|&seed| {
            let mut config = config_for(seed);
            config.nodes = 5;
            config.replicas = 3;
            config.read_quorum = 2;
            config.write_quorum = 3;
            config.ops = 300;
            config.faults = Some(FaultSet::parse("wipe").expect("valid list"));
            config.bug = Some(Bug::ReuseIncarnationAfterWipe);
            !run(&config).passed()
        })
        .count();
    assert!(caught >= 1, "no seed caught the reused incarnation");
}

#[test]
fn a_run_without_faults_has_no_failed_operations() {
    let mut config = config_for(11);
    config.faults = Some(FaultSet::none());
    let report = run(&config);
    assert!(report.passed(), "{:?}", report.failure());
    assert_eq!(report.stats.gets_failed + report.stats.puts_failed, 0);
    assert_eq!(report.stats.faults_total(), 0);
    let _ = VersionVector::new();
}
