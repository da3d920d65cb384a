//! The world: virtual time, the event queue, the nodes, the clients, the
//! fault injector and the two phases of a run.
//!
//! Time is a `u64` of simulated microseconds that only moves when the next
//! event is taken from the queue; events at the same time run in the order
//! they were scheduled. Every random choice comes from the one seeded
//! generator (nodes get their own generators seeded from it), and every map
//! is ordered, so a seed replays exactly.
//!
//! Clients issue one operation at a time against a random running node:
//! gets (remembering the context), puts with the context of their last get
//! of the key, blind puts, and deletes. Values are unique (`c3-17`), so the
//! oracle can tell every write apart.
//!
//! Membership: the world keeps the one [`ClusterState`] every node reads and
//! applies the changes nodes ask for ([`MemberAction`]); on a membership
//! tick it proposes the change [`ClusterState::proposal`] names and installs
//! it once [`ClusterState::ready_to_install`] holds, as any node of a real
//! cluster may, in the real node's order: abandon a change towards a
//! removed member, mark removed members that own nothing left, install,
//! propose. Joins, leaves and losses come from the seed's [`MembershipPlan`]
//! (or from tests through [`World::join`], [`World::leave`],
//! [`World::lose`] and [`World::remove`]); a joining node is a new node
//! with an empty store, a node that left is stopped for good, a lost node
//! is crashed with its store gone and force-removed after a seeded delay
//! (a `ForceRemove` event). While a lost node is not left yet, the planned
//! changes after it wait.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::core::clock::{Dot, Object, VersionVector};
use crate::core::key::ObjectKey;
use crate::core::membership::{BucketProps, ClusterState, MemberStatus};
use crate::core::merkle::MerkleTree;
use crate::core::message::Request;
use crate::core::message::{ErrorKind, PutRequest};
use crate::core::node::{
    ClientOutcome, MemberAction, MembershipStep, OpId, Params, Payload, Ready, Shared, Timer,
    HANDOFF_BATCH_MAX, HANDOVER_BATCH_MAX,
};
use crate::core::ring::Ring;
use crate::sim::check::{Invariant, Oracle, Violation};
use crate::sim::host::Host;
use crate::sim::network::{Addr, Network};
use crate::sim::{
    Bug, Change, FaultKind, FaultSettings, MembershipPlan, SimConfig, SimReport, Stats,
};
use crate::storage::StorageRead;

/// The bucket the simulated clients write to.
pub const SIM_BUCKET: &str = "sim";
/// The bucket with its own N, wider or narrower, some seeds also write to.
pub const SIM_OWN_BUCKET: &str = "sim-own";

/// For half the seeds (with room for it), a bucket with its own N: for
/// half of those one below the cluster's, with the same R and W (when they
/// fit: the wipe budget stays), else one or two above with W raised as much
/// (R + W > N still holds either way).
fn own_bucket(config: &SimConfig, names: &[String]) -> Option<BucketProps> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x00b0_c4e7_0000_0001);
    if !config.own_bucket || config.nodes <= config.replicas || !rng.gen_bool(0.5) {
        return None;
    }
    let small = |v: usize| u8::try_from(v).unwrap_or(u8::MAX);
    let narrow = config.replicas.saturating_sub(1);
    if rng.gen_bool(0.5) && config.read_quorum.max(config.write_quorum) <= narrow {
        return Some(BucketProps {
            version: 1,
            by: names.first()?.clone(),
            n: small(narrow),
            r: small(config.read_quorum),
            w: small(config.write_quorum),
        });
    }
    let n = rng.gen_range(config.replicas + 1..=config.nodes.min(config.replicas + 2));
    Some(BucketProps {
        version: 1,
        by: names.first()?.clone(),
        n: small(n),
        r: small(config.read_quorum),
        w: small(config.write_quorum + n - config.replicas),
    })
}
/// Simulated time the liveness phase may take before convergence is
/// declared failed.
pub const LIVENESS_US_MAX: u64 = 120_000_000;
/// Nodes a random client tries one operation on before it reports failure
/// (the real client goes down the key's extended list within its deadline).
pub const CLIENT_ATTEMPTS_MAX: u32 = 3;
/// Attempts of a force-removal of a lost node no running member knows yet
/// (its gossip may still be in flight).
pub const FORCE_REMOVE_TRIES_UNKNOWN: u32 = 20;
/// Events one run may process (a limit against a runaway schedule).
pub const EVENTS_PER_OP_MAX: u64 = 5_000;

#[derive(Debug)]
enum EventKind {
    Deliver {
        from: Addr,
        to: Addr,
        payload: Payload,
    },
    NodeTimer {
        node: usize,
        generation: u64,
        timer: Timer,
    },
    /// A node's group commit.
    Sync {
        node: usize,
        generation: u64,
    },
    ClientNext {
        client: usize,
    },
    ClientTimeout {
        client: usize,
        op: OpId,
    },
    FaultTick,
    MembershipTick,
    Heal,
    Restart {
        node: usize,
    },
    ForceRemove {
        node: usize,
        /// Earlier attempts.
        tries: u32,
    },
}

#[derive(Debug)]
struct Event {
    at: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // Reversed: the heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Clone)]
enum OpKind {
    Get,
    Put { value: Option<Vec<u8>> },
}

/// A client operation in flight: one user get, put or delete, tried on up
/// to [`CLIENT_ATTEMPTS_MAX`] nodes as the real client does (same write id
/// on every attempt of a put; each attempt has its own op id so a late
/// answer of an abandoned attempt is ignored).
#[derive(Debug, Clone)]
struct InFlight {
    op: OpId,
    key: ObjectKey,
    kind: OpKind,
    context: VersionVector,
    write_id: u64,
    attempt: u32,
    tried: Vec<usize>,
}

#[derive(Debug, Default)]
struct Client {
    in_flight: Option<InFlight>,
    contexts: BTreeMap<ObjectKey, VersionVector>,
    last: Option<ClientOutcome>,
    scripted: bool,
}

/// A whole simulated cluster.
pub struct World {
    config: SimConfig,
    /// Why the cluster had not converged at the last liveness check.
    unconverged: Option<String>,
    settings: FaultSettings,
    membership: MembershipPlan,
    membership_fired: usize,
    membership_us: u64,
    gone: Vec<bool>,
    lost: Vec<bool>,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Event>,
    nodes: Vec<Host>,
    shared: Shared,
    network: Network,
    clients: Vec<Client>,
    keys: Vec<ObjectKey>,
    oracle: Oracle,
    stats: Stats,
    next_id: u64,
    next_op: OpId,
    used_incarnations: Vec<u64>,
    wipes: usize,
    wiped: Vec<bool>,
    faults_on: bool,
    in_liveness: bool,
    violations: Vec<Violation>,
    /// Membership steps counted (each once, whichever node took it).
    steps_seen: BTreeSet<MembershipStep>,
    client_timeout_us: u64,
    request_timeout_us: u64,
}

impl World {
    /// Builds the cluster for `config`; the seed and the fault settings are
    /// fixed here. Call [`World::run_safety`], [`World::run_liveness`] and
    /// [`World::finish`], or drive it step by step (tests).
    pub fn new(config: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let settings = FaultSettings::draw(&mut rng, config.faults.as_ref());
        let names: Vec<String> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        let partitions = (config.nodes.next_power_of_two() * 4).clamp(16, 4096) as u32;
        let ring = match Ring::new(&names, partitions) {
            Ok(ring) => ring,
            Err(e) => panic!("the simulator's ring is valid by construction: {e}"),
        };
        let members: Vec<(String, String)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), sim_addr(i)))
            .collect();
        let mut cluster = ClusterState::bootstrap(&members, ring.owner_table());
        // Half the seeds also write a bucket with its own N (and a W that
        // keeps the wipe budget), so every path runs with keys of two N in
        // one partition. Drawn apart, so the seeds' schedules stay.
        let wide = own_bucket(&config, &names);
        if let Some(props) = &wide {
            cluster
                .buckets
                .insert(SIM_OWN_BUCKET.to_string(), props.clone());
        }
        let key_count = rng.gen_range(3..=24usize);
        let keys: Vec<ObjectKey> = (0..key_count)
            .filter_map(|i| {
                let bucket = match wide.is_some() && i % 2 == 1 {
                    true => SIM_OWN_BUCKET,
                    false => SIM_BUCKET,
                };
                ObjectKey::new(bucket, format!("k{i}").as_bytes()).ok()
            })
            .collect();
        let client_count = rng.gen_range(2..=8usize);
        let delay_max = settings.delay_us_max;
        let request_timeout_us = 2 * delay_max + settings.sync_us_max + 2_000;
        // Gossip as often as a request may take, or up to four times
        // slower: slow gossip lets members decide from older knowledge
        // (concurrent proposals, removals heard late).
        let gossip_us = rng.gen_range(1..=4) * request_timeout_us;
        let params = Params {
            n: config.replicas,
            r: config.read_quorum,
            w: config.write_quorum,
            request_timeout_us,
            put_deadline_us: 4 * request_timeout_us,
            forward_timeout_us: 6 * request_timeout_us,
            probe_us: 2 * request_timeout_us,
            probe_timeout_us: request_timeout_us,
            handoff_us: 2 * request_timeout_us,
            handoff_batch: HANDOFF_BATCH_MAX,
            handover_batch: HANDOVER_BATCH_MAX,
            anti_entropy_us: 5 * request_timeout_us,
            anti_entropy_first_us: None,
            membership_us: 2 * request_timeout_us,
            gossip_us,
            tombstone_sweep_us: 4 * request_timeout_us,
            tombstone_grace_us: 10 * request_timeout_us,
            read_slow_us: request_timeout_us / 2,
            bug: config.bug,
        };
        let membership_us = params.membership_us;
        let shared = match Shared::new(cluster, names.clone(), params) {
            Ok(shared) => shared,
            Err(e) => panic!("the simulator's cluster state is valid by construction: {e}"),
        };
        let mut used_incarnations = Vec::new();
        let mut nodes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let incarnation = fresh_incarnation(&mut rng, &mut used_incarnations);
            let seed = rng.gen();
            nodes.push(Host::new(
                i,
                name,
                incarnation,
                seed,
                partitions,
                shared.clone(),
            ));
        }
        let network = Network::new(
            settings.loss_probability,
            settings.dup_probability,
            settings.delay_us_min,
            settings.delay_us_max,
            !settings.kinds.contains(FaultKind::Reorder),
        );
        let mut clients: Vec<Client> = (0..client_count).map(|_| Client::default()).collect();
        // The last client is driven by tests, never at random.
        clients.push(Client {
            scripted: true,
            ..Client::default()
        });
        let membership = if config.membership {
            MembershipPlan::draw(&mut rng, config.ops)
        } else {
            MembershipPlan::default()
        };
        let faults_on = settings.partition_probability > 0.0
            || settings.crash_probability > 0.0
            || settings.wipe_probability > 0.0;
        let mut world = Self {
            stats: Stats {
                faults: FaultKind::ALL
                    .iter()
                    .map(|k| (k.name().to_string(), 0))
                    .collect(),
                ..Stats::default()
            },
            config,
            settings,
            membership,
            membership_fired: 0,
            unconverged: None,
            membership_us,
            gone: vec![false; names.len()],
            lost: vec![false; names.len()],
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            shared,
            network,
            clients,
            keys,
            oracle: Oracle::default(),
            next_id: 0,
            next_op: 0,
            used_incarnations,
            wipes: 0,
            wiped: vec![false; names.len()],
            faults_on,
            in_liveness: false,
            violations: Vec::new(),
            steps_seen: BTreeSet::new(),
            client_timeout_us: 12 * request_timeout_us,
            request_timeout_us,
        };
        for i in 0..world.nodes.len() {
            let mut out = world.out();
            let now = Duration::from_micros(world.now);
            world.nodes[i].node.boot(now, &mut out);
            world.apply(i, out);
        }
        for client in 0..client_count {
            let at = world.rng.gen_range(0..1_000);
            world.schedule(at, EventKind::ClientNext { client });
        }
        if world.faults_on {
            let at = world.settings.fault_tick_us;
            world.schedule(at, EventKind::FaultTick);
        }
        world.schedule(membership_us, EventKind::MembershipTick);
        world
    }

    /// The membership changes drawn from the seed.
    pub fn membership(&self) -> &MembershipPlan {
        &self.membership
    }

    /// Nodes ever started (joined ones included, left ones too).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The cluster state all nodes read.
    pub fn cluster(&self) -> &ClusterState {
        &self.shared.cluster
    }

    /// Whether no membership change is in progress or waiting: no change
    /// proposed, nobody joining or leaving, every planned change made.
    pub fn membership_settled(&self) -> bool {
        self.membership_fired >= self.membership.changes.len()
            && !self.removal_outstanding()
            && self
                .shared
                .cluster
                .owners
                .as_ref()
                .is_some_and(|t| t.next.is_none())
            && self
                .shared
                .cluster
                .live_members()
                .all(|(_, e)| e.status == MemberStatus::Up)
    }

    /// Whether a node is a member that has not left (nor been lost).
    fn is_member(&self, node: usize) -> bool {
        !self.gone.get(node).copied().unwrap_or(true)
    }

    /// Whether a lost node has not been marked left yet (not removed, or
    /// its removal is in progress).
    fn removal_outstanding(&self) -> bool {
        (0..self.nodes.len()).any(|i| {
            self.lost[i]
                && self
                    .shared
                    .cluster
                    .status_of(self.nodes[i].name())
                    .is_some_and(|s| s != MemberStatus::Left)
        })
    }

    /// Members that are up or joining in the cluster state and not lost.
    fn staying(&self) -> usize {
        self.shared
            .cluster
            .live_members()
            .filter(|(name, e)| {
                matches!(e.status, MemberStatus::Up | MemberStatus::Joining)
                    && self
                        .shared
                        .index_of(name)
                        .is_some_and(|i| self.is_member(i))
            })
            .count()
    }

    /// A new node joins: it starts empty, with a fresh incarnation, as a
    /// joining member. Returns its index.
    pub fn join(&mut self) -> usize {
        let index = self.nodes.len();
        let name = format!("n{}", index + 1);
        let incarnation = fresh_incarnation(&mut self.rng, &mut self.used_incarnations);
        let seed = self.rng.gen();
        let partitions = self.shared.ring.partitions();
        // It starts from a running member's cluster state (its seed's),
        // marks itself joining, and gossip tells the others.
        let seeds: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_member(i) && self.nodes[i].up)
            .collect();
        let mut view = match seeds.choose(&mut self.rng) {
            Some(&seed) => self.nodes[seed].node.view().cloned(),
            None => None,
        }
        .unwrap_or_else(|| self.shared.clone());
        view.names.push(name.clone());
        view.cluster
            .set_member(&name, &sim_addr(index), MemberStatus::Joining);
        view.refresh();
        self.nodes
            .push(Host::new(index, &name, incarnation, seed, partitions, view));
        for host in &mut self.nodes {
            host.node.learn_name(&name);
        }
        self.gone.push(false);
        self.lost.push(false);
        self.wiped.push(false);
        self.shared.names.push(name.clone());
        self.stats.joins += 1;
        let mut out = self.out();
        self.nodes[index]
            .node
            .boot(Duration::from_micros(self.now), &mut out);
        self.apply(index, out);
        index
    }

    /// Tells a member to leave; `false` if it is not a member that is up
    /// (in the cluster state) or fewer than N members would remain.
    pub fn leave(&mut self, node: usize) -> bool {
        let Some(name) = self.shared.names.get(node).cloned() else {
            return false;
        };
        let staying = self.staying();
        if !self.is_member(node)
            || self.shared.cluster.status_of(&name) != Some(MemberStatus::Up)
            || staying <= self.config.replicas
        {
            return false;
        }
        // The operator asks the node itself (`dynamo leave`).
        let mut out = self.out();
        self.nodes[node].node.on_operator(
            Duration::from_micros(self.now),
            Request::Leave,
            &mut out,
        );
        self.apply(node, out);
        self.stats.leaves += 1;
        true
    }

    fn leave_random(&mut self) {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.is_member(i)
                    && self.shared.cluster.status_of(self.nodes[i].name()) == Some(MemberStatus::Up)
            })
            .collect();
        let chosen = candidates.choose(&mut self.rng).copied();
        if !chosen.is_some_and(|node| self.leave(node)) {
            self.stats.leaves_skipped += 1;
        }
    }

    /// Makes the planned changes whose operation count has been reached
    /// (all of them with `all`).
    fn fire_membership(&mut self, all: bool) {
        while let Some(&(at, change)) = self.membership.changes.get(self.membership_fired) {
            if !all && self.stats.ops < at {
                break;
            }
            match change {
                Change::Join => {
                    self.join();
                }
                Change::Leave => self.leave_random(),
                Change::Lose => {
                    if !self.lose_random() {
                        break;
                    }
                }
            }
            self.membership_fired += 1;
        }
    }

    /// Loses a random node for good and schedules its force-removal after a
    /// seeded delay. The victim is a joining node that owns nothing yet
    /// when there is one (70 %), else a member that is up, whatever change
    /// is in progress ([`ClusterState::proposal`] plans removals first, so
    /// a change towards a removed member is abandoned once and not
    /// proposed again). `false`: postponed (try again later); a loss that
    /// can never happen is skipped.
    fn lose_random(&mut self) -> bool {
        let staying = self.staying();
        if self.wipes + 1 >= self.config.write_quorum || staying <= self.config.replicas {
            self.stats.losses_skipped += 1;
            return true;
        }
        let owns = |cluster: &ClusterState, name: &str| {
            cluster
                .owners
                .as_ref()
                .is_some_and(|t| t.owners.iter().any(|o| o == name))
        };
        let with_status = |world: &Self, status: MemberStatus| -> Vec<usize> {
            (0..world.nodes.len())
                .filter(|&i| {
                    let name = world.nodes[i].name();
                    world.is_member(i)
                        && world.nodes[i].up
                        && world.shared.cluster.status_of(name) == Some(status)
                        && (status != MemberStatus::Joining || !owns(&world.shared.cluster, name))
                })
                .collect()
        };
        let joiners = with_status(self, MemberStatus::Joining);
        let ups = with_status(self, MemberStatus::Up);
        let pick_joiner = !joiners.is_empty() && (ups.is_empty() || self.rng.gen_bool(0.7));
        let pool = if pick_joiner { &joiners } else { &ups };
        let Some(&node) = pool.choose(&mut self.rng) else {
            return false;
        };
        if !self.lose(node) {
            return false;
        }
        let delay = self.rng.gen_range(3..40) * self.request_timeout_us;
        self.schedule(delay, EventKind::ForceRemove { node, tries: 0 });
        true
    }

    /// A node is lost for good now: it crashes, its store is gone and it
    /// never restarts (one of the run's at most W - 1 wipes). `false` if it
    /// is not a running member that is up or joining, the wipe budget is
    /// spent, or fewer than N members that are up or joining would remain.
    /// The others learn nothing until [`World::remove`].
    pub fn lose(&mut self, node: usize) -> bool {
        let Some(name) = self.shared.names.get(node).cloned() else {
            return false;
        };
        let status = self.shared.cluster.status_of(&name);
        if !self.is_member(node)
            || !self.nodes[node].up
            || !matches!(status, Some(MemberStatus::Up | MemberStatus::Joining))
            || self.wipes + 1 >= self.config.write_quorum
            || self.staying() <= self.config.replicas
        {
            return false;
        }
        if status == Some(MemberStatus::Joining) {
            self.stats.joiners_lost += 1;
        }
        self.nodes[node].crash(true);
        self.wipes += 1;
        self.lost[node] = true;
        self.gone[node] = true;
        self.stats.nodes_lost += 1;
        self.learn_views();
        true
    }

    /// An operator force-removes a lost node (`dynamo leave --force`): its
    /// status becomes removed in the cluster state, and the others move
    /// its partitions (or abandon its join). `false` if it is not a lost
    /// node still up, joining or leaving in the cluster state.
    pub fn remove(&mut self, node: usize) -> bool {
        let Some(name) = self.shared.names.get(node).cloned() else {
            return false;
        };
        let removable = matches!(
            self.shared.cluster.status_of(&name),
            Some(MemberStatus::Up | MemberStatus::Joining | MemberStatus::Leaving)
        );
        if !self.lost.get(node).copied().unwrap_or(false) || !removable {
            return false;
        }
        // The operator asks a running member that knows the node
        // (`dynamo leave --force`).
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.is_member(i)
                    && self.nodes[i].up
                    && self.nodes[i].node.view().is_some_and(|v| {
                        matches!(
                            v.cluster.status_of(&name),
                            Some(MemberStatus::Up | MemberStatus::Joining | MemberStatus::Leaving)
                        )
                    })
            })
            .collect();
        let Some(&via) = running.choose(&mut self.rng) else {
            return false;
        };
        let mut out = self.out();
        self.nodes[via].node.on_operator(
            Duration::from_micros(self.now),
            Request::Remove { node: name },
            &mut out,
        );
        self.apply(via, out);
        self.stats.removals += 1;
        true
    }

    /// Counts the membership steps a node took (each once, whichever node
    /// took it first) and records the owner tables nodes refused.
    fn on_steps(&mut self, steps: &[MembershipStep], refused: &[String]) {
        for step in steps {
            if !self.steps_seen.insert(step.clone()) {
                continue;
            }
            match step {
                MembershipStep::Aborted(_) => self.stats.ring_aborts += 1,
                MembershipStep::RemovalDone(_) => self.stats.removals_done += 1,
                MembershipStep::Installed(_) => {
                    self.stats.ring_installs += 1;
                    if !self.in_liveness {
                        self.stats.ring_installs_in_safety += 1;
                    }
                }
                MembershipStep::Proposed(_) => self.stats.ring_proposals += 1,
            }
        }
        for why in refused {
            self.violations.push(Violation {
                invariant: Invariant::AdmittedStep,
                key: "-".into(),
                detail: why.clone(),
            });
        }
    }

    /// A node marked itself left: it stops for good.
    fn on_member_action(&mut self, node: usize, action: MemberAction) {
        match action {
            MemberAction::Left => {
                if !self.gone[node] {
                    self.nodes[node].crash(false);
                    self.gone[node] = true;
                    self.stats.nodes_left += 1;
                    self.learn_views();
                }
            }
        }
    }

    /// Recomputes the world's view (what `cluster()` answers) as the merge
    /// of the cluster states of the running members: what the cluster as a
    /// whole knows (a node lost before it told anyone takes its news with
    /// it).
    fn learn_views(&mut self) {
        let mut union = ClusterState::default();
        for (i, host) in self.nodes.iter().enumerate() {
            if self.gone[i] || !host.up {
                continue;
            }
            if let Some(view) = host.node.view() {
                union.merge(&view.cluster);
            }
        }
        if union.owners.is_some() && union != self.shared.cluster {
            self.shared.cluster = union;
            self.shared.refresh();
        }
    }

    /// The fault settings drawn from the seed.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Simulated time now, in microseconds.
    pub fn now_us(&self) -> u64 {
        self.now
    }

    /// The stats so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The keys clients use.
    pub fn keys(&self) -> &[ObjectKey] {
        &self.keys
    }

    /// The home replicas (node indices) of a key.
    pub fn home(&self, key: &ObjectKey) -> Vec<usize> {
        self.shared
            .home(key)
            .iter()
            .filter_map(|n| self.shared.index_of(n))
            .collect()
    }

    /// A node's current incarnation.
    pub fn incarnation(&self, node: usize) -> u64 {
        self.nodes[node].node.replica.incarnation
    }

    /// A node's durable object for a key.
    pub fn stored(&self, node: usize, key: &ObjectKey) -> Option<Object> {
        self.nodes[node].node.stored(key)
    }

    fn out(&self) -> Ready {
        Ready {
            next_id: self.next_id,
            ..Ready::default()
        }
    }

    fn schedule(&mut self, delay: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Event {
            at: self.now + delay,
            seq: self.seq,
            kind,
        });
    }

    fn send(&mut self, from: Addr, to: Addr, payload: Payload) {
        if matches!((from, to), (Addr::Node(_), Addr::Node(_))) {
            self.stats.messages += 1;
        }
        let routing = self.network.route(&mut self.rng, self.now, from, to);
        if routing.lost {
            *self.stats.faults.entry("loss".into()).or_insert(0) += 1;
        }
        if routing.duplicated {
            *self.stats.faults.entry("dup".into()).or_insert(0) += 1;
        }
        if routing.reordered {
            *self.stats.faults.entry("reorder".into()).or_insert(0) += 1;
        }
        let copies = routing.deliveries.len();
        let mut payload = Some(payload);
        for (i, at) in routing.deliveries.into_iter().enumerate() {
            let copy = if i + 1 == copies {
                payload.take()
            } else {
                payload.clone()
            };
            let Some(payload) = copy else { break };
            self.seq += 1;
            self.queue.push(Event {
                at,
                seq: self.seq,
                kind: EventKind::Deliver { from, to, payload },
            });
        }
    }

    fn apply(&mut self, node: usize, mut out: Ready) {
        self.next_id = out.next_id;
        self.stats.counts.add(&out.counts);
        for (key, tombstone) in &out.collected {
            self.oracle.collect(key, tombstone);
        }
        for mint in &out.mints {
            self.oracle
                .mint(&mint.key, &mint.dot, &mint.value, &mint.seen);
            if mint.concurrent {
                self.stats.siblings_created += 1;
            }
        }
        let generation = self.nodes[node].generation;
        if self.nodes[node].take_batch(&mut out) {
            let delay = self.rng.gen_range(1..=self.settings.sync_us_max.max(1));
            self.schedule(delay, EventKind::Sync { node, generation });
        }
        for (delay, timer) in out.timers {
            self.schedule(
                delay,
                EventKind::NodeTimer {
                    node,
                    generation,
                    timer,
                },
            );
        }
        for (to, payload) in out.sends {
            self.send(Addr::Node(node), to, payload);
        }
        self.on_steps(&out.steps, &out.refused_tables);
        let known = self.nodes[node]
            .node
            .view()
            .is_some_and(|v| v.cluster == self.shared.cluster);
        if out.view_changed && !known {
            self.learn_views();
        }
        for action in out.membership {
            self.on_member_action(node, action);
        }
    }

    /// Takes and runs the next event; `false` when none is left.
    fn step(&mut self) -> bool {
        let Some(event) = self.queue.pop() else {
            return false;
        };
        self.now = event.at;
        self.stats.events += 1;
        match event.kind {
            EventKind::Deliver { from, to, payload } => match to {
                Addr::Node(i) => {
                    if self.nodes[i].up {
                        let mut out = self.out();
                        self.nodes[i].node.on_message(
                            Duration::from_micros(self.now),
                            from,
                            payload,
                            &mut out,
                        );
                        self.apply(i, out);
                    }
                }
                Addr::Client(c) => self.on_client_reply(c, payload),
            },
            EventKind::NodeTimer {
                node,
                generation,
                timer,
            } => {
                if self.nodes[node].up && self.nodes[node].generation == generation {
                    let mut out = self.out();
                    self.nodes[node].node.on_timer(
                        Duration::from_micros(self.now),
                        timer,
                        &mut out,
                    );
                    self.apply(node, out);
                }
            }
            EventKind::Sync { node, generation } => {
                if self.nodes[node].up && self.nodes[node].generation == generation {
                    let mut out = self.out();
                    self.nodes[node].sync(Duration::from_micros(self.now), &mut out);
                    self.apply(node, out);
                }
            }
            EventKind::ClientNext { client } => self.client_next(client),
            EventKind::ClientTimeout { client, op } => {
                let timed_out = self.clients[client]
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.op == op);
                if timed_out {
                    self.attempt_done(
                        client,
                        ClientOutcome::failed(ErrorKind::Unavailable, "client timeout"),
                    );
                }
            }
            EventKind::FaultTick => self.fault_tick(),
            EventKind::MembershipTick => {
                let all = self.in_liveness;
                self.fire_membership(all);
                let tick = self.membership_us;
                self.schedule(tick, EventKind::MembershipTick);
            }
            EventKind::Heal => self.network.heal(),
            EventKind::Restart { node } => self.restart(node),
            EventKind::ForceRemove { node, tries } => {
                // The operator tries again while the cluster still counts
                // the node as a member nobody removed, or may still hear
                // of it (its last gossip can arrive after it died).
                let name = self.nodes[node].name().to_string();
                let status = self.shared.cluster.status_of(&name);
                let pending = matches!(
                    status,
                    Some(MemberStatus::Up | MemberStatus::Joining | MemberStatus::Leaving)
                ) || (status.is_none() && tries < FORCE_REMOVE_TRIES_UNKNOWN);
                if !self.remove(node) && pending {
                    let again = 3 * self.request_timeout_us;
                    let tries = tries + 1;
                    self.schedule(again, EventKind::ForceRemove { node, tries });
                }
            }
        }
        true
    }

    fn client_next(&mut self, client: usize) {
        self.fire_membership(false);
        if self.stats.ops >= self.config.ops || self.clients[client].in_flight.is_some() {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        let Some(&node) = up.choose(&mut self.rng) else {
            let wait = self.request_timeout_us;
            self.schedule(wait, EventKind::ClientNext { client });
            return;
        };
        let key = self.keys[self.rng.gen_range(0..self.keys.len())].clone();
        let known = self.clients[client].contexts.get(&key).cloned();
        let op = self.next_op + 1;
        let live = Some(format!("c{client}-{op}").into_bytes());
        let (kind, context) = match (self.rng.gen_range(0..100u32), known) {
            (0..=39, _) | (90.., None) => (OpKind::Get, VersionVector::new()),
            (40..=79, Some(context)) => (OpKind::Put { value: live }, context),
            (40..=89, _) => (OpKind::Put { value: live }, VersionVector::new()),
            (_, Some(context)) => (OpKind::Put { value: None }, context),
        };
        self.issue(client, node, op, key, kind, context);
    }

    fn issue(
        &mut self,
        client: usize,
        node: usize,
        op: OpId,
        key: ObjectKey,
        kind: OpKind,
        context: VersionVector,
    ) {
        self.next_op = op;
        self.stats.ops += 1;
        if matches!(kind, OpKind::Put { value: None }) {
            self.stats.deletes += 1;
        }
        self.clients[client].in_flight = Some(InFlight {
            op,
            key,
            kind,
            context,
            write_id: op,
            attempt: 1,
            tried: vec![node],
        });
        self.send_attempt(client, node);
    }

    /// Sends the current attempt of `client`'s operation to `node`. A
    /// scripted client's operation is pinned to its node and sent as a last
    /// resort (like `--node`); a random client's last attempt is one.
    fn send_attempt(&mut self, client: usize, node: usize) {
        let scripted = self.clients[client].scripted;
        let Some(flight) = self.clients[client].in_flight.as_ref() else {
            return;
        };
        let last_resort = scripted || flight.attempt >= CLIENT_ATTEMPTS_MAX;
        let write_id = match self.config.bug {
            // The planted bug: a retry that is a new write to the cluster.
            Some(Bug::RetryWithNewWriteId) => flight.op,
            _ => flight.write_id,
        };
        let op = flight.op;
        let payload = match &flight.kind {
            OpKind::Get => Payload::ClientGet {
                op,
                key: flight.key.clone(),
                r: None,
                explain: false,
                last_resort,
            },
            OpKind::Put { value } => Payload::ClientPut {
                op,
                put: PutRequest {
                    key: flight.key.clone(),
                    context: flight.context.clone(),
                    value: value.clone(),
                    w: None,
                    write_id: Some(write_id),
                    last_resort,
                },
            },
        };
        self.send(Addr::Client(client), Addr::Node(node), payload);
        let timeout = if scripted {
            self.client_timeout_us
        } else {
            self.client_timeout_us / u64::from(CLIENT_ATTEMPTS_MAX)
        };
        self.schedule(timeout, EventKind::ClientTimeout { client, op });
    }

    fn on_client_reply(&mut self, client: usize, payload: Payload) {
        let Payload::ClientReply { op, outcome } = payload else {
            return;
        };
        let current = self.clients[client]
            .in_flight
            .as_ref()
            .is_some_and(|f| f.op == op);
        if current {
            self.attempt_done(client, outcome);
        }
    }

    /// One attempt ended: a failure of a random client's operation is
    /// tried again on another running node (a new op id, the same write
    /// id), up to [`CLIENT_ATTEMPTS_MAX`] attempts; anything else ends the
    /// operation.
    fn attempt_done(&mut self, client: usize, outcome: ClientOutcome) {
        let retry = matches!(outcome, ClientOutcome::Failed(_))
            && !self.clients[client].scripted
            && self.clients[client]
                .in_flight
                .as_ref()
                .is_some_and(|f| f.attempt < CLIENT_ATTEMPTS_MAX);
        if !retry {
            self.client_done(client, outcome);
            return;
        }
        let tried = self.clients[client]
            .in_flight
            .as_ref()
            .map(|f| f.tried.clone())
            .unwrap_or_default();
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && !tried.contains(&i))
            .collect();
        let Some(&node) = up.choose(&mut self.rng) else {
            self.client_done(client, outcome);
            return;
        };
        let op = self.next_op + 1;
        self.next_op = op;
        self.stats.client_retries += 1;
        if let Some(flight) = self.clients[client].in_flight.as_mut() {
            flight.op = op;
            flight.attempt += 1;
            flight.tried.push(node);
        }
        self.send_attempt(client, node);
    }

    fn client_done(&mut self, client: usize, outcome: ClientOutcome) {
        let Some(flight) = self.clients[client].in_flight.take() else {
            return;
        };
        match (&flight.kind, &outcome) {
            (OpKind::Get, ClientOutcome::Got(object)) => {
                self.stats.gets_ok += 1;
                if object.live_siblings().count() > 1 {
                    self.stats.gets_with_siblings += 1;
                }
                self.oracle.observe(&flight.key, object);
                if let Some(v) = self.oracle.check_get(&flight.key, object) {
                    let known = self
                        .violations
                        .iter()
                        .any(|k| k.invariant == v.invariant && k.key == v.key);
                    if !known {
                        self.violations.push(v);
                    }
                }
                self.clients[client]
                    .contexts
                    .insert(flight.key.clone(), object.context().clone());
            }
            (OpKind::Get, _) => self.stats.gets_failed += 1,
            (OpKind::Put { value }, ClientOutcome::Written { dot: Some(dot), .. }) => {
                self.stats.puts_ok += 1;
                self.oracle.ack(&flight.key, dot, value.clone());
            }
            (OpKind::Put { .. }, _) => self.stats.puts_failed += 1,
        }
        let scripted = self.clients[client].scripted;
        self.clients[client].last = Some(outcome);
        if !scripted {
            let think = self.rng.gen_range(0..=self.request_timeout_us / 2);
            self.schedule(think, EventKind::ClientNext { client });
        }
    }

    fn fault_tick(&mut self) {
        if !self.faults_on {
            return;
        }
        let s = self.settings.clone();
        let count = self.nodes.len();
        if s.partition_probability > 0.0
            && count > 1
            && !self.network.partitioned()
            && self.rng.gen_bool(s.partition_probability)
        {
            if self.rng.gen_bool(0.7) {
                let mut order: Vec<usize> = (0..count).collect();
                order.shuffle(&mut self.rng);
                let cut = self.rng.gen_range(1..count);
                let groups = vec![order[..cut].to_vec(), order[cut..].to_vec()];
                self.network.partition(&groups);
            } else {
                let links = self.rng.gen_range(1..=count);
                for _ in 0..links {
                    let a = self.rng.gen_range(0..count);
                    let b = self.rng.gen_range(0..count);
                    if a != b {
                        self.network.block_one_way(a, b);
                    }
                }
            }
            *self.stats.faults.entry("partition".into()).or_insert(0) += 1;
            let lasts = self.rng.gen_range(5..40) * self.request_timeout_us;
            self.schedule(lasts, EventKind::Heal);
        }
        let members = (0..count).filter(|&i| self.is_member(i)).count();
        let down = self.members_down();
        let down_max = (members / 2).max(1);
        if s.crash_probability > 0.0 && down < down_max && self.rng.gen_bool(s.crash_probability) {
            self.crash_random(false);
        }
        let down = self.members_down();
        // Losses still planned keep their share of the W - 1 budget.
        let reserved = self
            .membership
            .changes
            .iter()
            .skip(self.membership_fired)
            .filter(|(_, c)| *c == Change::Lose)
            .count();
        if s.wipe_probability > 0.0
            && down < down_max
            && self.wipes + reserved + 1 < self.config.write_quorum
            && self.rng.gen_bool(s.wipe_probability)
        {
            self.crash_random(true);
        }
        let tick = s.fault_tick_us;
        self.schedule(tick, EventKind::FaultTick);
    }

    fn members_down(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| self.is_member(i) && !self.nodes[i].up)
            .count()
    }

    fn crash_random(&mut self, wipe: bool) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        let Some(&node) = up.choose(&mut self.rng) else {
            return;
        };
        self.crash(node, wipe);
        let downtime = self.rng.gen_range(3..40) * self.request_timeout_us;
        self.schedule(downtime, EventKind::Restart { node });
    }

    /// Crashes a node now (with `wipe`, its store is lost too).
    pub fn crash(&mut self, node: usize, wipe: bool) {
        if !self.nodes[node].up {
            return;
        }
        self.nodes[node].crash(wipe);
        self.learn_views();
        let kind = if wipe { "wipe" } else { "crash" };
        *self.stats.faults.entry(kind.into()).or_insert(0) += 1;
        if wipe {
            self.wipes += 1;
            self.wiped[node] = true;
        }
    }

    /// Starts a crashed node again; a wiped one gets a new incarnation.
    pub fn restart(&mut self, node: usize) {
        if self.nodes[node].up || !self.is_member(node) {
            return;
        }
        let wiped = std::mem::take(&mut self.wiped[node]);
        let incarnation = match (wiped, self.config.bug) {
            (true, Some(Bug::ReuseIncarnationAfterWipe)) | (false, _) => None,
            (true, _) => Some(fresh_incarnation(
                &mut self.rng,
                &mut self.used_incarnations,
            )),
        };
        let seed = self.rng.gen();
        let mut out = self.out();
        self.nodes[node].restart(incarnation, seed);
        self.nodes[node]
            .node
            .boot(Duration::from_micros(self.now), &mut out);
        self.apply(node, out);
    }

    /// Runs the safety phase: clients issue `ops` operations while faults
    /// are injected.
    pub fn run_safety(&mut self) {
        let events_max = self.config.ops.saturating_mul(EVENTS_PER_OP_MAX) + 1_000_000;
        while self.stats.ops < self.config.ops || self.clients.iter().any(|c| c.in_flight.is_some())
        {
            if self.stats.events >= events_max || !self.step() {
                break;
            }
        }
        self.stats.safety_us = self.now;
    }

    /// Cuts the nodes into groups (tests).
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        self.network.partition(groups);
    }

    /// Ends a partition (tests).
    pub fn heal(&mut self) {
        self.network.heal();
    }

    /// Runs the events due in the next `us` microseconds.
    pub fn advance(&mut self, us: u64) {
        let until = self.now + us;
        while self.queue.peek().is_some_and(|e| e.at <= until) {
            self.step();
        }
        self.now = until;
    }

    /// A scripted get through `node`: runs until it is answered.
    pub fn get(&mut self, node: usize, key: &ObjectKey) -> ClientOutcome {
        self.scripted(node, key, OpKind::Get)
    }

    /// A scripted put through `node` with the context of the scripted
    /// client's last get of the key (none: a blind put); `None` deletes.
    pub fn put(&mut self, node: usize, key: &ObjectKey, value: Option<&[u8]>) -> ClientOutcome {
        let value = value.map(<[u8]>::to_vec);
        self.scripted(node, key, OpKind::Put { value })
    }

    /// Forgets the scripted client's context for a key (the next put is blind).
    pub fn forget_context(&mut self, key: &ObjectKey) {
        if let Some(c) = self.clients.last_mut() {
            c.contexts.remove(key);
        }
    }

    /// Sets the scripted client's context for a key.
    pub fn set_context(&mut self, key: &ObjectKey, context: VersionVector) {
        if let Some(c) = self.clients.last_mut() {
            c.contexts.insert(key.clone(), context);
        }
    }

    fn scripted(&mut self, node: usize, key: &ObjectKey, kind: OpKind) -> ClientOutcome {
        let client = self.clients.len() - 1;
        let op = self.next_op + 1;
        // Scripted operations do not count against the random clients' budget.
        self.config.ops += 1;
        let context = self.clients[client]
            .contexts
            .get(key)
            .cloned()
            .unwrap_or_default();
        self.issue(client, node, op, key.clone(), kind, context);
        while self.clients[client].in_flight.is_some() {
            if !self.step() {
                break;
            }
        }
        self.clients[client]
            .last
            .take()
            .unwrap_or_else(|| ClientOutcome::failed(ErrorKind::Unavailable, "no answer"))
    }

    /// Why the cluster has not converged yet (`None`: it has).
    fn unconverged(&self) -> Option<String> {
        if self.membership_fired < self.membership.changes.len() {
            return Some("membership changes not all fired".into());
        }
        if self.removal_outstanding() {
            return Some("a lost node's removal is outstanding".into());
        }
        match &self.shared.cluster.owners {
            None => return Some("no owner table".into()),
            Some(t) if t.next.is_some() => {
                return Some(format!(
                    "a ring change from version {} is in progress",
                    t.version
                ))
            }
            Some(_) => {}
        }
        if let Some((name, e)) = self
            .shared
            .cluster
            .live_members()
            .find(|(_, e)| e.status != MemberStatus::Up)
        {
            let detail = match self.nodes.iter().find(|h| h.name() == name.as_str()) {
                Some(h) => {
                    let own = h.node.view();
                    format!(
                        " ({}; its own view says {:?}, it owns {} partitions there{}, holds {} keys and {} hints)",
                        if h.up { "up" } else { "down" },
                        own.and_then(|v| v.cluster.status_of(name)),
                        own.map_or(0, |v| v.ring.owned_by(name)),
                        if own.is_some_and(|v| v.next.is_some()) { " with a change in progress" } else { "" },
                        h.node.stored_keys().len(),
                        h.node.hint_total(),
                    )
                }
                None => String::new(),
            };
            return Some(format!("member {name} is {:?}{detail}", e.status));
        }
        let members = (0..self.nodes.len()).filter(|&i| self.is_member(i));
        for i in members {
            let n = &self.nodes[i];
            let name = n.name();
            if !n.up {
                return Some(format!("{name} is down"));
            }
            if n.has_unsynced() {
                return Some(format!("{name} has unsynced writes"));
            }
            if n.node.hint_total() > 0 {
                return Some(format!("{name} holds {} hints", n.node.hint_total()));
            }
            // Gossip has told it everything.
            if n.node
                .view()
                .is_none_or(|v| v.cluster != self.shared.cluster)
            {
                return Some(format!("{name} has not heard the whole cluster state"));
            }
            // Nothing left to hand over.
            if let Some(k) = n
                .node
                .stored_keys()
                .iter()
                .find(|k| !self.home(k).contains(&i))
            {
                return Some(format!("{name} still holds {k:?}, which it does not own"));
            }
        }
        self.keys.iter().find_map(|key| {
            let home = self.home(key);
            let first = self.stored(home[0], key);
            (!home.iter().all(|&i| self.stored(i, key) == first))
                .then(|| format!("the home replicas of {key:?} differ"))
        })
    }

    /// Every (partition, tree) whose replicas' roots differ.
    fn trees_disagreeing(&self) -> Vec<Violation> {
        let shared = &self.shared;
        let mut out = Vec::new();
        for p in 0..shared.ring.partitions() {
            for (tree, n) in shared.trees() {
                let roots: BTreeMap<String, String> = shared
                    .ring
                    .preference_list(p, n)
                    .into_iter()
                    .filter_map(|name| {
                        let host = &self.nodes[shared.index_of(name)?];
                        let leaves = host.node.store().leaves(p, tree).ok()?;
                        let root = MerkleTree::from_leaves(leaves)?.root();
                        Some((name.to_string(), format!("{:02x}{:02x}", root[0], root[1])))
                    })
                    .collect();
                if roots.values().collect::<BTreeSet<_>>().len() > 1 {
                    out.push(Violation {
                        invariant: Invariant::TreesAgree,
                        key: format!("partition {p} tree {tree}"),
                        detail: format!("roots {roots:?}"),
                    });
                }
            }
        }
        out
    }

    /// Runs the liveness phase: the network heals, every node restarts,
    /// faults stop, and the replicas must converge.
    pub fn run_liveness(&mut self) {
        self.faults_on = false;
        self.in_liveness = true;
        self.fire_membership(true);
        self.network.heal_all();
        for node in 0..self.nodes.len() {
            self.restart(node);
        }
        let start = self.now;
        let check_every = self.request_timeout_us * 2;
        let mut next_check = self.now;
        loop {
            if self.now >= next_check {
                self.unconverged = self.unconverged();
                if self.unconverged.is_none() {
                    self.stats.converged = true;
                    break;
                }
                next_check = self.now + check_every;
            }
            if self.now - start > LIVENESS_US_MAX || !self.step() {
                break;
            }
        }
    }

    /// Checks the invariants and returns the report.
    pub fn finish(mut self) -> SimReport {
        self.stats.sim_us = self.now;
        self.stats.lost_unheard = (0..self.nodes.len())
            .filter(|&i| {
                self.lost[i]
                    && self
                        .shared
                        .cluster
                        .status_of(self.nodes[i].name())
                        .is_none()
            })
            .count() as u64;
        let mut replicas: BTreeMap<ObjectKey, Vec<(String, Object)>> = BTreeMap::new();
        for key in &self.keys {
            let holders = self
                .home(key)
                .into_iter()
                .map(|i| {
                    let host = &self.nodes[i];
                    (
                        host.name().to_string(),
                        host.node.stored(key).unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>();
            if holders.iter().any(|(_, o)| o.siblings().len() > 1) {
                self.stats.keys_with_siblings += 1;
            }
            replicas.insert(key.clone(), holders);
        }
        self.stats.keys = self.keys.len() as u64;
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(self.oracle.check(&replicas));
        if !self.stats.converged {
            let left: u64 = self.nodes.iter().map(|n| n.node.hint_total()).sum();
            if left > 0
                || violations
                    .iter()
                    .all(|v| v.invariant != Invariant::Convergence)
            {
                violations.push(Violation {
                    invariant: Invariant::Convergence,
                    key: "(all)".into(),
                    detail: format!(
                        "replicas did not converge within {} s of simulated time after healing ({left} hints left; at the last check {})",
                        LIVENESS_US_MAX / 1_000_000,
                        self.unconverged.as_deref().unwrap_or("nothing was checked")
                    ),
                });
            }
        }
        if self.stats.converged {
            violations.extend(self.trees_disagreeing());
        }
        violations.sort_by_key(|v| v.invariant);
        SimReport {
            config: self.config,
            settings: self.settings,
            membership: self.membership,
            stats: self.stats,
            violations,
        }
    }

    /// The acknowledged dots so far (tests).
    pub fn acked(&self) -> Vec<Dot> {
        self.oracle.acked.iter().map(|a| a.dot.clone()).collect()
    }
}

/// The address a simulated node announces in the cluster state.
fn sim_addr(index: usize) -> String {
    format!("sim:{index}")
}

fn fresh_incarnation(rng: &mut StdRng, used: &mut Vec<u64>) -> u64 {
    loop {
        let candidate: u64 = rng.gen();
        if candidate != 0 && !used.contains(&candidate) {
            used.push(candidate);
            return candidate;
        }
    }
}
