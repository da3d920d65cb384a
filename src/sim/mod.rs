//! The deterministic simulator (DESIGN.md §3, issue 3 items 6 and 7): many
//! Dynamo nodes built from [`crate::core`] in one process, one seeded random
//! number generator, virtual time, and a network that delays, drops,
//! duplicates, reorders and partitions messages, with nodes that crash,
//! restart and lose their disks. A seed is a whole run: the same seed (and the
//! same [`SimConfig`]) replays the same schedule exactly, in the manner of
//! FoundationDB's simulation and TigerBeetle's VOPR.
//!
//! A run has two phases. In the **safety phase** clients issue gets, puts
//! (with contexts from earlier gets, and blind) and deletes against random
//! nodes while faults are injected at rates drawn from the seed, and nodes
//! join, leave and are lost for good ([`MembershipPlan`], also drawn from
//! the seed). In the
//! **liveness phase** the network heals, every member comes back up and
//! faults stop; membership changes in progress finish, and hinted handoff,
//! read repair and anti-entropy must bring every replica of every key to the
//! same state. Then the invariants are checked ([`check`]):
//!
//! - **no lost write**: every acknowledged put is still a sibling (with its
//!   value) or was causally superseded by a put whose context saw it, on every
//!   home replica of its key in the final ring;
//! - **convergence**: every home replica of a key (final ring) holds the same
//!   object, no hints are left, no change is in progress, nobody is joining
//!   or leaving, and no node holds a key it does not replicate;
//! - **no phantom**: every sibling was minted by some client put, with that
//!   value;
//! - **no resurrection**: a value an acknowledged delete's context covered
//!   never shows again in an object that saw the delete (checked on every
//!   get's answer), nor on any home replica at the end (see [`check`] for why
//!   this is exact).
//!
//! Nodes lost for good are not members at the end: no home replica of the
//! final ring is one, and convergence waits until each was removed and
//! marked left.
//!
//! **Membership changes** run the protocol of [`crate::core::membership`]
//! with its own functions, under the same faults as everything else: a
//! joining node starts empty and is added as a joining member; a leaving
//! member (drawn among the members that are up, never leaving fewer than N)
//! is marked leaving. The world proposes [`ClusterState::proposal`]'s owner
//! table (`propose`) while the current owners keep serving every read and
//! write; every member that
//! [`incoming`](crate::core::membership::incoming) names pulls those
//! partitions from all their current replicas (a merge, retried each
//! membership tick until every replica answered and the merge is synced)
//! and reports itself ready; once [`ClusterState::ready_to_install`] holds
//! the world installs the table and every node routes with the new ring.
//! Nodes then hand over every key they replicate in neither the current nor
//! the target ring: pushed to all current home replicas, dropped only after
//! each acknowledged it and only if it did not change meanwhile
//! (compare-and-delete). A joining node marks itself up once it owns
//! partitions; a leaving one marks itself left once it owns nothing and holds
//! nothing, and stops for good; hints for a member that left move into their
//! holder's own store and are handed over from there. There is one cluster
//! state, kept by the world and read by every node: gossip delay is not what
//! this tests (`membership::rounds_to_converge` measures it).
//!
//! **A node lost for good** ([`Change::Lose`]): a running node crashes, its
//! store is gone and it never restarts (one of the run's at most `W - 1`
//! wipes: the wipes injected as faults leave room for the losses still
//! planned); after a seeded delay an operator force-removes it, setting its
//! status to removed in the shared cluster state (`dynamo leave --force`).
//! The world then does what any node's membership step does, in its order:
//! [`ClusterState::must_abort`] abandons a change whose target gives
//! partitions to a removed member (`abort`), a removed member that owns
//! nothing is marked left ([`ClusterState::removals_done`]), and one that
//! owns partitions is proposed away like a leaver; its partitions are
//! pulled from the surviving current replicas (a removed replica is never
//! asked). The victim is a joining node that owns nothing yet when there
//! is one (so its join, often already proposed and transferring, is
//! abandoned), else a member that is up; never leaving fewer than N
//! members that are up or joining, whatever change is in progress: the
//! core's [`ClusterState::proposal`] plans removals first, so a change
//! towards a removed member is abandoned once and not proposed again
//! (`a_member_removed_during_a_join_does_not_livelock`). The lost
//! node takes no part in the final checks: the final ring no longer has it.
//!
//! Durability model: **group commit with immediate durability**. A node's
//! writes land in an un-synced buffer and become durable at the next sync,
//! a short, seeded delay later; acknowledgements (a replica's `Replicated`, a
//! fallback's hint ack, a coordinator's start of replication after minting)
//! wait for that sync, and other nodes are only ever served synced state. A
//! crash loses the un-synced buffer, as a real crash of a buffered writer
//! would, but never anything acknowledged. A restarted node keeps its synced
//! store and its incarnation; a **wiped** node comes back empty with a new
//! incarnation. At most `W - 1` wipes happen in a run, a node lost for good
//! counting as one: losing W disks that hold the only copies of a write is
//! data loss no protocol can prevent.
//!
//! Layout: [`network`] (links, delays, partitions), [`host`] (one simulated
//! machine: the node state machine of [`crate::core::node`], the one the
//! real node's driver runs, over an in-memory store, with group commit and
//! crashes), [`world`] (the event loop, clients,
//! fault injection, the cluster state and membership changes, phases),
//! [`check`] (the oracle and the invariants).

pub mod check;
pub mod host;
pub mod network;
pub mod world;

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;

#[cfg(doc)]
use crate::core::membership::ClusterState;

pub use check::{Invariant, Violation};
pub use world::World;

/// A fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Messages between nodes are dropped at random.
    Loss,
    /// Messages between nodes are delivered twice.
    Dup,
    /// Message delays vary widely, so messages overtake each other.
    Reorder,
    /// The nodes are cut into groups (both directions) or one link is cut
    /// one way; clients still reach every node.
    Partition,
    /// A node crashes (losing what it had not synced) and restarts later.
    Crash,
    /// A node crashes, loses its whole store, and restarts empty with a new
    /// incarnation.
    Wipe,
}

impl FaultKind {
    /// Every kind, in the order they are listed.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Loss,
        FaultKind::Dup,
        FaultKind::Reorder,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Wipe,
    ];

    /// The name used by `--faults`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Dup => "dup",
            FaultKind::Reorder => "reorder",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Wipe => "wipe",
        }
    }
}

/// Why a `--faults` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultListError {
    /// A name that is not a fault kind.
    #[error("unknown fault {0:?}: use a comma list of loss, dup, reorder, partition, crash, wipe, or all, or none")]
    Unknown(String),
}

/// Which fault kinds a run may inject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultSet(Vec<FaultKind>);

impl FaultSet {
    /// Every kind.
    pub fn all() -> Self {
        Self(FaultKind::ALL.to_vec())
    }

    /// No faults at all.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses `loss,dup,...`, `all` or `none`.
    pub fn parse(list: &str) -> Result<Self, FaultListError> {
        let mut kinds = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "none" => {}
                "all" => kinds.extend(FaultKind::ALL),
                _ => match FaultKind::ALL.iter().find(|k| k.name() == word) {
                    Some(k) => kinds.push(*k),
                    None => return Err(FaultListError::Unknown(word.to_string())),
                },
            }
        }
        kinds.sort();
        kinds.dedup();
        Ok(Self(kinds))
    }

    /// Whether `kind` may be injected.
    pub fn contains(&self, kind: FaultKind) -> bool {
        self.0.contains(&kind)
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let names: Vec<&str> = self.0.iter().map(|k| k.name()).collect();
        write!(f, "{}", names.join(","))
    }
}

pub use crate::core::node::Bug;

/// A membership change the simulator can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A new node joins (status joining until it owns partitions).
    Join,
    /// A random member that is up leaves (never leaving fewer than N
    /// members that are up or joining).
    Leave,
    /// A node is lost for good (its disk is gone, it never restarts; one of
    /// the run's at most W - 1 wipes) and, after a seeded delay, an operator
    /// force-removes it (`dynamo leave --force`: status removed). The
    /// victim is a joining node whose join is not installed yet when there
    /// is one (its change is abandoned), else a member that is up, taken
    /// only while no other change is in progress (see [`world`]); never
    /// leaving fewer than N members that are up or joining.
    Lose,
}

/// The membership changes of one run, drawn from its seed: each fires when
/// the safety phase has issued `at_op` operations, so it meets the faults and
/// the client load of that phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembershipPlan {
    /// (operations issued, change), in firing order.
    pub changes: Vec<(u64, Change)>,
}

impl MembershipPlan {
    /// Draws the plan: none, one or two joins and/or one leave, at random
    /// points of the safety phase, and sometimes a node lost for good
    /// (half of those right after a join, so that they often hit the
    /// joiner mid-join); none when `ops` is 0.
    pub fn draw(rng: &mut StdRng, ops: u64) -> Self {
        const SHAPES: [&[Change]; 8] = [
            &[],
            &[Change::Join],
            &[Change::Join, Change::Join],
            &[Change::Leave],
            &[Change::Join, Change::Leave],
            &[Change::Leave, Change::Join],
            &[Change::Join, Change::Join, Change::Leave],
            &[Change::Leave, Change::Join, Change::Join],
        ];
        let shape = SHAPES[rng.gen_range(0..SHAPES.len())];
        if ops == 0 {
            return Self::default();
        }
        let mut at: Vec<u64> = shape
            .iter()
            .map(|_| rng.gen_range(ops / 10..=ops * 7 / 10))
            .collect();
        at.sort_unstable();
        let mut changes: Vec<(u64, Change)> = at.into_iter().zip(shape.iter().copied()).collect();
        if rng.gen_bool(0.45) {
            let first_join = changes
                .iter()
                .find(|(_, c)| *c == Change::Join)
                .map(|(a, _)| *a);
            let after_join = rng.gen_bool(0.5);
            let soon = rng.gen_range(0..=ops / 20);
            let anywhere = rng.gen_range(ops / 10..=ops * 7 / 10);
            let at = match first_join {
                Some(join) if after_join => join + soon,
                _ => anywhere,
            };
            // After the changes planned for the same point: a join fires
            // before the loss that may hit it.
            let index = changes.partition_point(|(a, _)| *a <= at);
            changes.insert(index, (at, Change::Lose));
        }
        Self { changes }
    }

    /// Joins planned.
    pub fn joins(&self) -> usize {
        self.changes
            .iter()
            .filter(|(_, c)| *c == Change::Join)
            .count()
    }

    /// Leaves planned.
    pub fn leaves(&self) -> usize {
        self.changes
            .iter()
            .filter(|(_, c)| *c == Change::Leave)
            .count()
    }

    /// Nodes planned to be lost for good (and force-removed).
    pub fn losses(&self) -> usize {
        self.changes
            .iter()
            .filter(|(_, c)| *c == Change::Lose)
            .count()
    }
}

impl fmt::Display for MembershipPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "none");
        }
        let steps: Vec<String> = self
            .changes
            .iter()
            .map(|(at, c)| {
                let name = match c {
                    Change::Join => "join",
                    Change::Leave => "leave",
                    Change::Lose => "lose",
                };
                format!("{name}@op{at}")
            })
            .collect();
        write!(f, "{}", steps.join(","))
    }
}

/// What a run simulates. The fault *rates* are drawn from the seed; `faults`
/// only chooses which kinds may happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimConfig {
    /// The seed.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Client operations in the safety phase.
    pub ops: u64,
    /// Fault kinds allowed; `None` draws them from the seed.
    pub faults: Option<FaultSet>,
    /// N.
    pub replicas: usize,
    /// R.
    pub read_quorum: usize,
    /// W.
    pub write_quorum: usize,
    /// Whether nodes join and leave during the run (the changes themselves
    /// are drawn from the seed, see [`MembershipPlan`]).
    pub membership: bool,
    /// Whether half the seeds also write a bucket with its own N
    /// (see `world::SIM_OWN_BUCKET`).
    pub own_bucket: bool,
    /// A deliberate bug (tests only).
    pub bug: Option<Bug>,
}

/// Nodes allowed in a simulation.
pub const SIM_NODES_MAX: usize = 64;
/// Operations allowed in one run.
pub const SIM_OPS_MAX: u64 = 10_000_000;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Out of range.
    #[error("{0}")]
    Invalid(String),
}

impl SimConfig {
    /// The defaults of `dynamo sim` for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 5,
            ops: 10_000,
            faults: None,
            replicas: 3,
            read_quorum: 2,
            write_quorum: 2,
            membership: true,
            own_bucket: true,
            bug: None,
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.nodes == 0 || self.nodes > SIM_NODES_MAX {
            return bad(format!(
                "--nodes must be between 1 and {SIM_NODES_MAX}, not {}",
                self.nodes
            ));
        }
        if self.replicas == 0 || self.replicas > self.nodes {
            return bad(format!(
                "-N must be between 1 and the number of nodes ({}), not {}",
                self.nodes, self.replicas
            ));
        }
        if self.read_quorum == 0 || self.read_quorum > self.replicas {
            return bad(format!(
                "-R must be between 1 and N ({}), not {}",
                self.replicas, self.read_quorum
            ));
        }
        if self.write_quorum == 0 || self.write_quorum > self.replicas {
            return bad(format!(
                "-W must be between 1 and N ({}), not {}",
                self.replicas, self.write_quorum
            ));
        }
        if self.ops > SIM_OPS_MAX {
            return bad(format!("--ops must be at most {SIM_OPS_MAX}"));
        }
        Ok(())
    }

    /// The arguments of `dynamo sim` that replay this run exactly.
    pub fn replay_args(&self) -> String {
        let mut args = format!(
            "--seed {} --nodes {} --ops {} -N {} -R {} -W {}",
            self.seed, self.nodes, self.ops, self.replicas, self.read_quorum, self.write_quorum
        );
        if let Some(faults) = &self.faults {
            args.push_str(&format!(" --faults {faults}"));
        }
        args
    }

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!("dynamo sim {}", self.replay_args());
        if !self.membership {
            command.push_str("   (without membership changes)");
        }
        if let Some(bug) = self.bug {
            command.push_str(&format!("   (with the injected bug {bug:?})"));
        }
        command
    }
}

/// The fault rates of one run, drawn from its seed (TigerBeetle's habit:
/// the settings themselves are random, so many seeds cover many regimes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSettings {
    /// Kinds in force.
    pub kinds: FaultSet,
    /// Chance a node-to-node message is dropped.
    pub loss_probability: f64,
    /// Chance a node-to-node message is delivered twice.
    pub dup_probability: f64,
    /// Shortest one-way delay.
    pub delay_us_min: u64,
    /// Longest one-way delay (wide when reordering).
    pub delay_us_max: u64,
    /// Time from a write to its sync (group commit).
    pub sync_us_max: u64,
    /// Time between fault decisions.
    pub fault_tick_us: u64,
    /// Chance per fault tick of a new partition.
    pub partition_probability: f64,
    /// Chance per fault tick of a crash.
    pub crash_probability: f64,
    /// Chance per fault tick of a wipe (at most W - 1 per run).
    pub wipe_probability: f64,
}

impl FaultSettings {
    /// Draws the settings. Every draw is made whatever `chosen` says, so a
    /// `--faults` list changes which faults happen but not the rest of the
    /// run's randomness.
    pub fn draw(rng: &mut StdRng, chosen: Option<&FaultSet>) -> Self {
        let drawn: Vec<FaultKind> = FaultKind::ALL
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.6))
            .collect();
        let kinds = match chosen {
            Some(set) => set.clone(),
            None => FaultSet(drawn),
        };
        let loss = rng.gen_range(0.001..0.15);
        let dup = rng.gen_range(0.001..0.10);
        let delay_us_min = rng.gen_range(50..500);
        let narrow = delay_us_min + rng.gen_range(10..500);
        let wide = delay_us_min + rng.gen_range(2_000..20_000);
        let sync_us_max = rng.gen_range(100..3_000);
        let fault_tick_us = rng.gen_range(5_000..40_000);
        let partition = rng.gen_range(0.05..0.5);
        let crash = rng.gen_range(0.05..0.4);
        let wipe = rng.gen_range(0.02..0.2);
        let on = |k: FaultKind, p: f64| if kinds.contains(k) { p } else { 0.0 };
        Self {
            loss_probability: on(FaultKind::Loss, loss),
            dup_probability: on(FaultKind::Dup, dup),
            delay_us_min,
            delay_us_max: if kinds.contains(FaultKind::Reorder) {
                wide
            } else {
                narrow
            },
            sync_us_max,
            fault_tick_us,
            partition_probability: on(FaultKind::Partition, partition),
            crash_probability: on(FaultKind::Crash, crash),
            wipe_probability: on(FaultKind::Wipe, wipe),
            kinds,
        }
    }
}

impl fmt::Display for FaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults={} loss={:.3} dup={:.3} delay={}..{}us sync<={}us tick={}us partition={:.2} crash={:.2} wipe={:.2}",
            self.kinds,
            self.loss_probability,
            self.dup_probability,
            self.delay_us_min,
            self.delay_us_max,
            self.sync_us_max,
            self.fault_tick_us,
            self.partition_probability,
            self.crash_probability,
            self.wipe_probability
        )
    }
}

/// What happened in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// How often each counted path of the node state machine ran.
    #[serde(flatten)]
    pub counts: crate::core::node::PathCounts,
    /// Client operations issued.
    pub ops: u64,
    /// Attempts of an operation on another node after one failed, timed
    /// out, or was refused (the coordinator could not reach a quorum).
    pub client_retries: u64,
    /// Gets answered.
    pub gets_ok: u64,
    /// Gets that failed or timed out.
    pub gets_failed: u64,
    /// Gets whose answer had more than one live sibling.
    pub gets_with_siblings: u64,
    /// Puts (deletes included) acknowledged.
    pub puts_ok: u64,
    /// Puts that failed or timed out (they may still have landed).
    pub puts_failed: u64,
    /// Deletes among the puts issued.
    pub deletes: u64,
    /// Puts that kept a concurrent sibling at their coordinator.
    pub siblings_created: u64,
    /// Faults injected, by kind (`loss` and `dup` count messages).
    pub faults: BTreeMap<String, u64>,
    /// Node-to-node messages sent.
    pub messages: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end of the safety phase.
    pub safety_us: u64,
    /// Virtual time at the end of the run.
    pub sim_us: u64,
    /// Whether the liveness phase converged.
    pub converged: bool,
    /// Keys with more than one sibling at the end.
    pub keys_with_siblings: u64,
    /// Keys checked at the end.
    pub keys: u64,
    /// Nodes that joined (were added as joining members).
    pub joins: u64,
    /// Nodes that were told to leave.
    pub leaves: u64,
    /// Leaves skipped because fewer than N members would remain.
    pub leaves_skipped: u64,
    /// Leaving nodes that handed everything over and stopped.
    pub nodes_left: u64,
    /// Owner tables proposed (changes started).
    pub ring_proposals: u64,
    /// Owner tables installed (changes completed).
    pub ring_installs: u64,
    /// Of those, installed during the safety phase (with faults on).
    pub ring_installs_in_safety: u64,
    /// Nodes lost for good (disk gone, never restarted; each counts as a
    /// wipe against the W - 1 budget, not in `faults`).
    pub nodes_lost: u64,
    /// Of those, joining nodes whose join was not installed yet.
    pub joiners_lost: u64,
    /// Of those, nodes lost before any running member heard of them (a
    /// joiner that died before its first gossip): nothing to remove.
    pub lost_unheard: u64,
    /// Planned losses skipped (fewer than N members would remain, or the
    /// wipe budget was spent).
    pub losses_skipped: u64,
    /// Lost nodes force-removed (status removed set by the others).
    pub removals: u64,
    /// Removed nodes that came to own nothing and were marked left.
    pub removals_done: u64,
    /// Changes in progress abandoned because their target gave partitions
    /// to a removed member.
    pub ring_aborts: u64,
}

impl Stats {
    /// Faults injected, all kinds together.
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// What was run.
    pub config: SimConfig,
    /// The fault rates drawn from the seed.
    pub settings: FaultSettings,
    /// The membership changes drawn from the seed.
    pub membership: MembershipPlan,
    /// What happened.
    pub stats: Stats,
    /// Invariants broken (empty: the run passed).
    pub violations: Vec<Violation>,
}

impl SimReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// One paragraph naming the first broken invariant, its key, the seed
    /// and the replay command; `None` when the run passed.
    pub fn failure(&self) -> Option<String> {
        let v = self.violations.first()?;
        Some(format!(
            "seed {}: invariant {} broken for key {}: {}\n  settings: {}\n  membership: {}\n  replay: {}",
            self.config.seed,
            v.invariant,
            v.key,
            v.detail,
            self.settings,
            self.membership,
            self.config.replay_command()
        ))
    }
}

/// Runs one seeded simulation: safety phase, liveness phase, invariants.
pub fn run(config: &SimConfig) -> Result<SimReport, ConfigError> {
    config.validate()?;
    let mut world = World::new(config.clone());
    world.run_safety();
    world.run_liveness();
    Ok(world.finish())
}
