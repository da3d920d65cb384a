//! The node's protocol as one deterministic state machine (DESIGN.md §3):
//! get and put coordination with sloppy quorum ([`ReplicaPlan::sloppy`],
//! [`PutCoordinator`], [`GetCoordinator`]), forwarding, minting, replica
//! writes and reads, read repair, durable hints and hinted handoff, the
//! partition transfer and handover of membership changes, and anti-entropy.
//!
//! The machine never reads a clock, a global random source or a disk it
//! writes itself. Its driver hands it messages, timer expiries and storage
//! completions; each step answers with a [`Ready`]: messages to send, timers
//! to set, and the step's writes as one [`WriteBatch`] to persist (one group
//! commit per step). The machine reads its store synchronously through
//! [`StorageRead`] and keeps the writes it handed out and that are not yet
//! durable in an overlay, so its own decisions see them at once; when the
//! driver reports a batch durable ([`Node::persisted`]) the overlay forgets
//! it and the messages that waited for it go out. A crash is the driver
//! dropping the batches it had not persisted and building a new machine on
//! the store. Two drivers run it: `dynamo node` (`crate::node`'s thin
//! driver, over redb) and the simulator (`crate::sim`, over
//! [`MemStore`](crate::storage::MemStore)).
//!
//! Rules the machine keeps, each one a way real stores have lost data:
//! - a coordinator mints a dot in its store and starts replicating only
//!   after that write is durable, and every answer to another node (a read,
//!   an anti-entropy push, a handoff) is built from durable state only, so a
//!   dot that a crash can take back has never been seen by anyone and may be
//!   minted again;
//! - a replica or a fallback acknowledges only after its write is durable;
//! - a hint is deleted only after its owner acknowledged exactly the hint
//!   held (the real node's rule: what was sent equals what is held now);
//! - a node drops a key it no longer replicates (after a membership change)
//!   only once every current home replica acknowledged an object that
//!   includes what it holds, and only if the key did not change meanwhile
//!   (compare-and-delete).
//!
//! Membership changes follow [`crate::core::membership`] exactly: the node
//! reads the cluster state its driver gives it ([`Shared::cluster`]), routes
//! with its current ring, and each membership tick
//! - pulls every partition [`incoming`] names from all of that partition's
//!   current replicas but a removed one (merging, retried every tick until
//!   each has answered and the merge is durable), then reports itself ready
//!   for the change;
//! - hands over every key it replicates in neither the current nor the
//!   target ring (pushing it to the current home replicas, then dropping it);
//! - turns itself up once it owns partitions when joining, and left once it
//!   owns nothing and holds nothing when leaving.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::clock::{Dot, Object, ReplicaId, VersionVector};
use crate::core::coordinator::{GetCoordinator, Outbound, PutCoordinator, Quorum, ReplicaPlan};
use crate::core::detector::{Detector, DetectorConfig};
use crate::core::explain::{Explanation, TargetOutcome, TargetReport};
use crate::core::key::ObjectKey;
use crate::core::membership::{
    admissible, incoming_for, BucketProps, ClusterState, EntryAuthority, MemberStatus, Unsigned,
};
use crate::core::merkle::{
    self, leaf_runs, DiffWalk, MerkleTree, NodeId, TreeId, DEFAULT_TREE, LEAF_PAGE_BYTES,
    LEAF_PAGE_ENTRIES, LEAVES,
};
use crate::core::message::{ErrorKind, ErrorReply, PutRequest, RepairReport, Request, Response};
use crate::core::message::{MERKLE_NODES_MAX, REPLICATE_BATCH_MAX};
use crate::core::ring::{PartitionId, Ring, RingError};
use crate::core::tombstone::{
    decide, holding, is_collectable, Action, Holding, Tracker, Verdict, TOMBSTONES_TRACKED_MAX,
    TOMBSTONE_BATCH_MAX,
};
use crate::storage::{HintKey, StorageError, StorageRead, Write, WriteBatch, SCAN_ENTRIES_MAX};

/// An endpoint: a node or a client, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    /// A node.
    Node(usize),
    /// A client.
    Client(usize),
}

/// A deliberate bug, planted in this machine (or in the simulator's client)
/// so tests can prove the invariants catch one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Bug {
    /// A replica overwrites its object with the incoming one instead of
    /// merging (last writer wins).
    ReplicaOverwrites,
    /// A wiped node comes back with its old incarnation and re-mints dots it
    /// minted before (Riak's KV679).
    ReuseIncarnationAfterWipe,
    /// A node receiving a partition in a membership change (a transfer's pull
    /// reply or a handover push) stores the incoming objects in place of its
    /// own instead of merging them: a stale old owner's handover overwrites
    /// the new owners' tombstones and the deleted value comes back.
    HandoverOverwrites,
    /// A node drops collected tombstones without taking a new incarnation:
    /// it forgets its counters for the keys, mints the same dots again, and
    /// a client's context from before the delete supersedes the new write.
    KeepIncarnationAfterCollection,
    /// A client retries a failed put as a new write (a fresh write id per
    /// attempt) instead of the same one: a put stored by its first
    /// coordinator and again by the next shows as two versions.
    RetryWithNewWriteId,
    /// A get that asked R replicas first never asks the ones it held back
    /// (neither when one of the first fails nor when they are slow): the
    /// read fails although enough replicas hold the key.
    ForgetHeldReplicas,
    /// A node files every key in the default Merkle tree, whatever its
    /// bucket's N: the replicas of a partition keep trees over different
    /// key sets, and those of a bucket with fewer copies never agree.
    FileInDefaultTree,
}

/// A client operation's id (unique in a run).
pub type OpId = u64;
/// A node-to-node request's id (unique in a run).
pub type ReqId = u64;

/// The meta entry holding the node's incarnation (8 bytes, big-endian).
pub const INCARNATION_META: &str = "incarnation";

/// Hints the simulator hands off per handoff tick (`Params::handoff_batch`).
pub const HANDOFF_BATCH_MAX: usize = 8;
/// One get in this many asks every target at once (the others ask R first),
/// so read repair still compares every replica of a sample of reads.
pub const FULL_READ_EVERY: u32 = 8;
/// Largest total of sibling values one object may hold; a put that would
/// exceed it is refused until someone resolves the siblings.
pub const OBJECT_VALUE_BYTES_MAX: usize = 6 * 1024 * 1024;
/// Hints one handoff round reads (a limit on one step's work).
const HANDOFF_SCAN_PAGE: usize = 1000;
/// Between two handover batches while keys are left to hand over.
const HANDOVER_STEP_US: u64 = 50_000;
/// Keys one step of a re-filing reads (see [`Node::refile_page`]).
const REFILE_PAGE: usize = 1000;
/// Objects one step of a tombstone sweep reads (a limit on one step's work).
pub const SWEEP_PAGE: usize = 1000;
/// Between two steps of a tombstone sweep under way.
const SWEEP_STEP_US: u64 = 5_000;
/// Keys the simulator hands over per membership tick (`Params::handover_batch`).
pub const HANDOVER_BATCH_MAX: usize = 32;
/// Objects of a partition a node replicates for some buckets only, looked
/// at per membership tick for keys of the other buckets.
pub const GAP_PAGE: usize = 256;

/// What a client learns from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutcome {
    /// A get's merged object.
    Got(Object),
    /// An explained get: the merged object and how it came about.
    Explained(Box<Explanation>),
    /// An operator's repair ended.
    Repaired(Box<RepairReport>),
    /// A put was acknowledged by W replicas; the dot it minted (known
    /// through a forwarder only to the simulator's oracle: the wire does
    /// not carry it) and the new object's context.
    Written {
        /// The dot.
        dot: Option<Dot>,
        /// The context after the write.
        context: VersionVector,
    },
    /// The operation failed (it may still have landed unless the kind is
    /// [`ErrorKind::CannotReach`]).
    Failed(ErrorReply),
}

impl ClientOutcome {
    /// A failure of this kind.
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientOutcome::Failed(ErrorReply {
            kind,
            message: message.into(),
            acks: 0,
            needed: 0,
        })
    }

    /// A quorum not met: `acks` of `needed`.
    pub fn short(message: impl Into<String>, acks: usize, needed: usize) -> Self {
        ClientOutcome::Failed(ErrorReply {
            kind: ErrorKind::Unavailable,
            message: message.into(),
            acks: acks.min(255) as u8,
            needed: needed.min(255) as u8,
        })
    }

    /// The answer a client gets over the wire.
    pub fn into_response(self) -> Response {
        match self {
            ClientOutcome::Got(object) => Response::Object(object),
            ClientOutcome::Explained(explanation) => Response::Explained(explanation),
            ClientOutcome::Repaired(report) => Response::Repaired(*report),
            ClientOutcome::Written { context, .. } => Response::Written { context },
            ClientOutcome::Failed(e) => Response::Error(e),
        }
    }
}

/// The envelope the drivers deliver: the wire's requests and responses
/// between nodes (heartbeats, partition transfer and handover included) and
/// the client link, with the simulator oracle's bookkeeping (op ids and
/// minted dots; the real driver keeps them off the wire).
#[derive(Debug, Clone)]
pub enum Payload {
    /// Client → node: get.
    ClientGet {
        /// The op.
        op: OpId,
        /// The key.
        key: ObjectKey,
        /// Replies to wait for; the cluster's R when absent.
        r: Option<u8>,
        /// Answer with how the answer came about (asks every target).
        explain: bool,
        /// Read even when the quorum looks out of reach.
        last_resort: bool,
    },
    /// Client → node: put or delete.
    ClientPut {
        /// The op.
        op: OpId,
        /// The put.
        put: PutRequest,
    },
    /// Node → client.
    ClientReply {
        /// The op.
        op: OpId,
        /// The outcome.
        outcome: ClientOutcome,
    },
    /// Node → node request.
    Request {
        /// Matches the response.
        id: ReqId,
        /// The client op behind a `Coordinate`.
        op: Option<OpId>,
        /// The core request.
        request: Request,
    },
    /// Node → node response.
    Response {
        /// The request's id.
        id: ReqId,
        /// The core response.
        response: Response,
        /// For a coordinated put: the dot minted.
        minted: Option<Dot>,
    },
}

/// A node's timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// A request got no answer in time.
    RequestTimeout(ReqId),
    /// A put coordination's deadline.
    PutDeadline(u64),
    /// A get's deadline; read repair runs then at the latest.
    GetDone(u64),
    /// A get's first answers are slow: ask the targets held back.
    GetSlow(u64),
    /// Heartbeats: the failure detector's tick.
    Probe,
    /// Hand hints off.
    Handoff,
    /// Start a Merkle exchange of one partition with one other replica.
    AntiEntropy,
    /// Transfer, handover and status changes of membership.
    Membership,
    /// A tombstone sweep, and a check round if tombstones are due.
    Tombstones,
    /// The next page of the re-filing under way.
    Refile,
    /// The next handover batch, soon after one that found keys.
    Handover,
    /// Gossip with one random member.
    Gossip,
}

impl Timer {
    /// The timers that fire periodically, set at boot at random phases.
    pub const PERIODIC: [Timer; 6] = [
        Timer::Gossip,
        Timer::Probe,
        Timer::Handoff,
        Timer::AntiEntropy,
        Timer::Membership,
        Timer::Tombstones,
    ];

    /// Its period, for a periodic timer.
    pub fn period(&self, p: &Params) -> Option<u64> {
        match self {
            Timer::Gossip => Some(p.gossip_us),
            Timer::Probe => Some(p.probe_us),
            Timer::Handoff => Some(p.handoff_us),
            Timer::AntiEntropy => Some(p.anti_entropy_us),
            Timer::Membership => Some(p.membership_us),
            Timer::Tombstones => Some(p.tombstone_sweep_us),
            _ => None,
        }
    }
}

/// What a node tells its driver about its own membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// It left: owns nothing, holds nothing, and marked itself left; it
    /// stops.
    Left,
}

/// A step of the membership protocol a node took on its own cluster state
/// (any member may take one; gossip spreads it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MembershipStep {
    /// It abandoned the change in progress (towards a removed member).
    Aborted(u64),
    /// It marked a removed member that owns nothing left.
    RemovalDone(String),
    /// It installed the change in progress (every member ready).
    Installed(u64),
    /// It proposed the next change.
    Proposed(u64),
}

/// A version minted by a coordinator, for the oracle.
#[derive(Debug, Clone)]
pub struct Mint {
    /// The client op.
    pub op: Option<OpId>,
    /// The key.
    pub key: ObjectKey,
    /// The dot.
    pub dot: Dot,
    /// The value (`None`: tombstone).
    pub value: Option<Vec<u8>>,
    /// The client's context.
    pub seen: VersionVector,
    /// Whether the new object kept a sibling the client had not seen.
    pub concurrent: bool,
}

/// How often the node's counted paths ran (per step in [`Ready`], summed
/// over a run by the simulator).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PathCounts {
    /// Hints delivered.
    pub hints_delivered: u64,
    /// Read repairs sent.
    pub read_repairs: u64,
    /// Pull replies merged and synced.
    pub partitions_pulled: u64,
    /// Keys handed over and dropped.
    pub keys_handed_over: u64,
    /// Client requests refused before anything was stored (too few
    /// reachable nodes for the quorum).
    pub refusals: u64,
    /// Puts whose write was already stored here by an earlier attempt.
    pub retries_deduplicated: u64,
    /// Puts this node coordinated although it is no home replica of the key
    /// (no home replica would: a fallback mints).
    pub fallback_puts: u64,
    /// Incarnations renewed (before dropping handed-over keys).
    pub incarnations_renewed: u64,
    /// Peers the failure detector newly suspected (a request or a heartbeat
    /// unanswered).
    pub suspicions: u64,
    /// Merkle exchanges completed.
    pub merkle_exchanges: u64,
    /// Gossip exchanges completed (answered).
    pub gossip_rounds: u64,
    /// Owner tables heard by gossip and not taken in (built on knowledge
    /// this node does not have yet; the sender catches up).
    pub gossip_refusals: u64,
    /// Keys this node found held as the same tombstone by every member,
    /// twice, and dropped everywhere (it collected them).
    pub tombstones_collected: u64,
    /// Keys anti-entropy merged here or pushed to the peer.
    pub keys_repaired: u64,
}

impl PathCounts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &PathCounts) {
        self.hints_delivered += other.hints_delivered;
        self.read_repairs += other.read_repairs;
        self.partitions_pulled += other.partitions_pulled;
        self.keys_handed_over += other.keys_handed_over;
        self.refusals += other.refusals;
        self.retries_deduplicated += other.retries_deduplicated;
        self.fallback_puts += other.fallback_puts;
        self.incarnations_renewed += other.incarnations_renewed;
        self.suspicions += other.suspicions;
        self.merkle_exchanges += other.merkle_exchanges;
        self.gossip_rounds += other.gossip_rounds;
        self.gossip_refusals += other.gossip_refusals;
        self.tombstones_collected += other.tombstones_collected;
        self.keys_repaired += other.keys_repaired;
    }
}

/// What a node wants done after one step (raft-rs's `Ready`).
#[derive(Debug, Default)]
pub struct Ready {
    /// The step's writes, to persist as one group commit; the driver calls
    /// [`Node::persisted`] with the id once they (and every earlier batch)
    /// are durable. Messages that must wait for them are held by the node.
    pub persist: Option<(u64, WriteBatch<Object>)>,
    /// Messages that may go now.
    pub sends: Vec<(Addr, Payload)>,
    /// How often each counted path ran in the step.
    pub counts: PathCounts,
    /// Whether the node's cluster state changed in this step.
    pub view_changed: bool,
    /// Membership steps this node took on its own state.
    pub steps: Vec<MembershipStep>,
    /// Owner-table steps this node took that a node knowing what it knew
    /// would refuse by gossip (none should be: they would stall changes).
    pub refused_tables: Vec<String>,
    /// What this node refused of the states gossip brought it, and why.
    pub gossip_refused: Vec<String>,
    /// Timers to set: (delay, timer).
    pub timers: Vec<(u64, Timer)>,
    /// Versions minted.
    pub mints: Vec<Mint>,
    /// The next request id to use (the world's counter, lent).
    pub next_id: u64,
    /// Changes to the cluster state.
    pub membership: Vec<MemberAction>,
    /// What this node collected: each key with its tombstone (for the
    /// oracle: the deletes they held may vanish).
    pub collected: Vec<(ObjectKey, Object)>,
}

impl Ready {
    fn id(&mut self) -> ReqId {
        self.next_id += 1;
        self.next_id
    }
}

/// Settings every node shares.
#[derive(Debug, Clone)]
pub struct Params {
    /// N.
    pub n: usize,
    /// R.
    pub r: usize,
    /// W.
    pub w: usize,
    /// How long a node waits for a peer's answer.
    pub request_timeout_us: u64,
    /// How long a coordinator tries to reach W.
    pub put_deadline_us: u64,
    /// How long a node waits for a coordinator it forwarded a put to.
    pub forward_timeout_us: u64,
    /// Between two heartbeats to one peer.
    pub probe_us: u64,
    /// A heartbeat unanswered this long marks its peer unreachable.
    pub probe_timeout_us: u64,
    /// Between handoff rounds.
    pub handoff_us: u64,
    /// Hints one handoff round sends at most.
    pub handoff_batch: usize,
    /// Keys a membership tick hands over at most (`HANDOVER_BATCH_MAX` in
    /// the simulator; more in the real node, whose ticks are 500 ms apart).
    pub handover_batch: usize,
    /// Between the starts of two Merkle exchanges.
    pub anti_entropy_us: u64,
    /// Before the first one, when set (else a random phase of the period):
    /// a node that just started leaves its peers a round's quiet, as the
    /// running node always did.
    pub anti_entropy_first_us: Option<u64>,
    /// Between membership ticks (transfer, handover, status).
    pub membership_us: u64,
    /// Between tombstone sweeps.
    pub tombstone_sweep_us: u64,
    /// Between two gossip exchanges of one node.
    pub gossip_us: u64,
    /// How long a tombstone stays unchanged before it is checked
    /// (`tombstone_grace_ms`).
    pub tombstone_grace_us: u64,
    /// How long a get waits for its first R targets before it asks the
    /// ones it held back.
    pub read_slow_us: u64,
    /// A deliberate bug.
    pub bug: Option<Bug>,
}

/// One node's view of the cluster: its cluster state, the rings it gives,
/// the names by index, and each partition's extended preference list
/// (recomputed whenever the state changes).
#[derive(Debug, Clone)]
pub struct Shared {
    /// Members, their status and readiness, and the owner table.
    pub cluster: ClusterState,
    /// The ring in force (the current owners).
    pub ring: Ring,
    /// The ring a membership change in progress leads to.
    pub next: Option<Ring>,
    /// Node names by index.
    pub names: Vec<String>,
    /// Settings.
    pub params: Params,
    /// Each partition's extended preference list in the current ring.
    lists: Vec<Vec<String>>,
    /// The replica counts keys have, sorted, each once (the cluster's N
    /// and every bucket's own; see [`ClusterState::replica_counts`]).
    replica_counts: Vec<usize>,
}

impl Shared {
    /// The shape for this cluster state and nodes.
    pub fn new(
        cluster: ClusterState,
        names: Vec<String>,
        params: Params,
    ) -> Result<Self, RingError> {
        let ring = cluster.ring()?;
        let mut shared = Self {
            cluster,
            ring,
            next: None,
            names,
            params,
            lists: Vec::new(),
            replica_counts: Vec::new(),
        };
        shared.refresh();
        Ok(shared)
    }

    /// Recomputes the rings and every key's list after the cluster state
    /// changed (a ring the state cannot give keeps the previous one).
    pub fn refresh(&mut self) {
        if let Ok(ring) = self.cluster.ring() {
            self.ring = ring;
        }
        self.next = self.cluster.next_ring().and_then(Result::ok);
        self.lists = (0..self.ring.partitions())
            .map(|p| {
                self.ring
                    .extended_list(p)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        self.replica_counts = self
            .cluster
            .replica_counts(self.params.n, self.ring.members().len());
    }

    /// Whether `name` replicates `partition` (for some bucket: the most
    /// replicas any bucket keeps) in the current ring or in the ring a
    /// change in progress leads to.
    pub fn replicates(&self, name: &str, partition: PartitionId) -> bool {
        self.replicates_n(name, partition, self.n_max())
    }

    /// The replica counts keys have, sorted (see
    /// [`ClusterState::replica_counts`]).
    pub fn replica_counts(&self) -> &[usize] {
        &self.replica_counts
    }

    /// Whether `name` replicates `partition` for keys of `n` replicas.
    pub fn replicates_n(&self, name: &str, partition: PartitionId, n: usize) -> bool {
        self.ring.preference_list(partition, n).contains(&name)
            || self
                .next
                .as_ref()
                .is_some_and(|r| r.preference_list(partition, n).contains(&name))
    }

    /// Whether `name` is one of `key`'s home replicas (with its bucket's N)
    /// in the current ring or the one a change in progress leads to.
    pub fn holds(&self, name: &str, key: &ObjectKey) -> bool {
        let (partition, _) = self.placement(key);
        self.replicates_n(name, partition, self.n_of(key))
    }

    /// A bucket's N, R and W: its own settings, else the cluster's; N is
    /// at most the members there are.
    pub fn quorums(&self, bucket: &str) -> (usize, usize, usize) {
        let members = self.ring.members().len().max(1);
        match self.cluster.buckets.get(bucket) {
            Some(b) => (
                usize::from(b.n).min(members),
                usize::from(b.r),
                usize::from(b.w),
            ),
            None => (self.params.n, self.params.r, self.params.w),
        }
    }

    /// A bucket's settings as [`Response::Buckets`] lists them.
    pub fn bucket_view(&self, name: &str) -> crate::core::message::BucketView {
        let (n, r, w) = self.quorums(name);
        let small = |v: usize| u8::try_from(v).unwrap_or(u8::MAX);
        crate::core::message::BucketView {
            name: name.to_string(),
            n: small(n),
            r: small(r),
            w: small(w),
        }
    }

    /// How many replicas `key` has (its bucket's N).
    pub fn n_of(&self, key: &ObjectKey) -> usize {
        self.quorums(&key.bucket).0
    }

    /// The most replicas any bucket keeps: what partition-level work
    /// (handover, pulls, anti-entropy partners) counts as a replica.
    pub fn n_max(&self) -> usize {
        self.replica_counts.last().copied().unwrap_or(self.params.n)
    }

    /// The Merkle tree a key of `bucket` is in: [`DEFAULT_TREE`] for a
    /// bucket with the cluster's N, else the bucket's own N.
    pub fn tree_of(&self, bucket: &str) -> TreeId {
        match self.cluster.buckets.get(bucket) {
            Some(b) if usize::from(b.n) != self.params.n => b.n,
            _ => DEFAULT_TREE,
        }
    }

    /// Every tree a partition's keys may be in, each with how many of the
    /// partition's preference list keep it: the default tree first, then
    /// one per other N a bucket has.
    pub fn trees(&self) -> Vec<(TreeId, usize)> {
        let members = self.ring.members().len().max(1);
        let mut trees = vec![(DEFAULT_TREE, self.params.n)];
        for b in self.cluster.buckets.values() {
            let tree = (b.n, usize::from(b.n).min(members));
            if usize::from(b.n) != self.params.n && !trees.contains(&tree) {
                trees.push(tree);
            }
        }
        trees
    }

    /// A key's partition and extended preference list.
    pub fn placement(&self, key: &ObjectKey) -> (u32, &[String]) {
        let p = self.ring.partition_of(key.ring_position());
        let list = self.lists.get(p as usize).map_or(&[][..], Vec::as_slice);
        (p, list)
    }

    /// A key's home replicas (its bucket's N).
    pub fn home(&self, key: &ObjectKey) -> &[String] {
        let (_, list) = self.placement(key);
        &list[..list.len().min(self.n_of(key))]
    }

    /// A node's index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

#[derive(Debug, Clone, Copy)]
enum ReplyTo {
    Client { client: usize, op: OpId },
    Node { node: usize, id: ReqId },
}

#[derive(Debug)]
enum Deferred {
    Send(Addr, Payload),
    StartPut(u64),
    Pulled {
        version: u64,
        partition: PartitionId,
        peer: String,
    },
}

#[derive(Debug)]
enum Purpose {
    Put(u64),
    Get(u64),
    Forward(u64),
    Handoff {
        owner: String,
        key: ObjectKey,
        sent: Object,
    },
    Handover {
        key: ObjectKey,
        sent: Object,
    },
    /// A step of the Merkle exchange with this id.
    Exchange(u64),
    /// A gossip exchange.
    Gossip,
    /// A page of a partition pulled for the change to this owner-table
    /// version.
    Pull {
        version: u64,
        partition: PartitionId,
    },
    /// A member's answer to the tombstone check round with this id.
    TombstoneCheck(u64),
    /// A read repair of the explained get with this id.
    Repair(u64),
}

/// A tombstone check round in progress (one at a time): every member is
/// asked what it holds for each key compared with the tombstone.
#[derive(Debug)]
struct TombstoneRound {
    id: u64,
    entries: Vec<(ObjectKey, Object)>,
    members: Vec<String>,
    answers: BTreeMap<String, Vec<Holding>>,
    waiting: BTreeSet<String>,
}

/// The Merkle exchange in progress (one at a time, as the real node runs
/// them): the walk down the two trees, then the differing leaves fetched
/// run by run, merged here, and what the peer lacks pushed to it.
#[derive(Debug)]
struct MerkleExchange {
    id: u64,
    partition: PartitionId,
    /// Which of the partition's trees.
    tree_id: TreeId,
    peer: String,
    /// This replica's tree when the exchange started (durable state).
    tree: MerkleTree,
    walk: DiffWalk,
    /// Leaf runs still to fetch, after the walk.
    runs: Vec<(u32, u32)>,
    /// The peer's objects of the run being fetched.
    theirs: BTreeMap<ObjectKey, Object>,
    /// What it did so far, for an operator's repair.
    tally: ExchangeTally,
}

/// What one Merkle exchange did.
#[derive(Debug, Default, Clone, Copy)]
struct ExchangeTally {
    merged_here: u64,
    pushed: u64,
    hashes: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

/// An operator's repair (`dynamo repair`): exchanges of each partition
/// asked with each reachable other home replica, one after the other,
/// answered with the report once the last one ended and its merges are
/// durable. While one runs, background anti-entropy waits.
#[derive(Debug)]
struct RepairRun {
    reply: ReplyTo,
    queue: std::collections::VecDeque<(PartitionId, TreeId, String)>,
    /// The exchange of the queue in progress.
    current: Option<String>,
    report: RepairReport,
}

/// A key being handed over: the object pushed, and the replicas that
/// acknowledged it or are being asked.
#[derive(Debug)]
struct Handover {
    sent: Object,
    acked: BTreeSet<String>,
    in_flight: BTreeSet<String>,
}

#[derive(Debug)]
struct Pending {
    peer: String,
    purpose: Purpose,
}

#[derive(Debug)]
struct PutState {
    reply: ReplyTo,
    key: ObjectKey,
    object: Object,
    dot: Dot,
    plan: ReplicaPlan,
    /// Acknowledgements to wait for.
    w: usize,
    coordinator: Option<PutCoordinator>,
    replied: bool,
}

#[derive(Debug)]
struct GetState {
    reply: ReplyTo,
    key: ObjectKey,
    coordinator: GetCoordinator,
    replied: bool,
    /// What `get --explain` reports, noted as the get runs.
    explain: Option<Box<ExplainNotes>>,
}

/// An explained get's notes: it answers once every target answered and its
/// read repairs were acknowledged (or timed out).
#[derive(Debug)]
struct ExplainNotes {
    started: Duration,
    partition: PartitionId,
    preference_list: Vec<String>,
    unreachable: Vec<String>,
    /// Each target's answer: microseconds after the start, and whether it
    /// held the key.
    answered: BTreeMap<String, (u64, bool)>,
    /// Targets that failed or timed out, microseconds after the start.
    failed: BTreeMap<String, u64>,
    /// Read repairs sent: acknowledged (`Some(true)`), failed, or waiting.
    repairs: BTreeMap<String, Option<bool>>,
}

#[derive(Debug)]
struct ForwardState {
    client: usize,
    op: OpId,
    put: PutRequest,
    candidates: Vec<String>,
    next: usize,
}

/// A write handed out in a batch and not yet reported durable: the batch's
/// id and the value (`None`: deleted).
type PendingWrite = (u64, Option<Object>);

/// One node's state machine over a store `S`.
#[derive(Debug)]
pub struct Node<S> {
    /// Its index.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its current incarnation.
    pub replica: ReplicaId,
    store: S,
    /// Its cluster state, the rings it gives and the address book (taken
    /// out while a step runs).
    view: Option<Shared>,
    /// Objects written in batches not yet durable.
    objects_pending: BTreeMap<ObjectKey, PendingWrite>,
    /// Hints written in batches not yet durable: (owner, key).
    hints_pending: BTreeMap<(String, ObjectKey), PendingWrite>,
    /// The writes of the step in progress (batch `issued + 1`).
    batch: WriteBatch<Object>,
    /// The last batch handed out.
    issued: u64,
    /// The last batch reported durable.
    durable: u64,
    /// Actions waiting for a batch to be durable; `None`: for the batch of
    /// the step in progress, or the last one handed out if it writes nothing.
    deferred: Vec<(Option<u64>, Deferred)>,
    /// Which peers this node can reach (its own view, §4.8.3).
    detector: Detector,
    /// The peers the detector watches (the cluster's names but its own).
    watched: usize,
    /// The time of the step in progress.
    now: Duration,
    pending: BTreeMap<ReqId, Pending>,
    puts: BTreeMap<u64, PutState>,
    gets: BTreeMap<u64, GetState>,
    forwards: BTreeMap<u64, ForwardState>,
    handoffs_in_flight: BTreeSet<(String, ObjectKey)>,
    /// Where the next handoff round reads hints from.
    handoff_cursor: Option<HintKey>,
    next_local: u64,
    anti_entropy_cursor: usize,
    /// The Merkle tree each bucket's keys are filed in, as far as this run
    /// knows; a bucket whose tree changes is re-filed.
    filed: BTreeMap<String, TreeId>,
    /// A [`Timer::Handover`] is set.
    handover_soon: bool,
    /// Buckets being re-filed, each with where it goes on.
    refiles: std::collections::VecDeque<(String, Option<Vec<u8>>)>,
    exchange: Option<MerkleExchange>,
    /// Operators' repairs, the first one running.
    repairs: std::collections::VecDeque<RepairRun>,
    /// Per-key timers of the tombstones this node may collect.
    tombstones: Option<Tracker>,
    tombstone_round: Option<TombstoneRound>,
    /// Where the tombstone sweep under way goes on (`None`: none is).
    sweep_cursor: Option<Option<Vec<u8>>>,
    /// Where the last look into each partition this node replicates for
    /// some buckets only ended ([`GAP_PAGE`]).
    gap_cursors: BTreeMap<PartitionId, Vec<u8>>,
    pulled: BTreeMap<(u64, PartitionId), BTreeSet<String>>,
    /// Pulls in progress: (version, partition, peer).
    pulling: BTreeSet<(u64, PartitionId, String)>,
    handovers: BTreeMap<ObjectKey, Handover>,
    /// Signs the member entries this node changes, checks those it hears.
    authority: Box<dyn EntryAuthority>,
    /// The last storage error, logged by the driver.
    storage_error: Option<String>,
    rng: StdRng,
}

impl<S: StorageRead<Object>> Node<S> {
    /// A node over `store`, with nothing in flight (a fresh start or a
    /// restart after a crash: what was not durable is gone).
    /// The incarnation is the one the store keeps, `replica`'s when it
    /// keeps none.
    pub fn new(
        index: usize,
        name: &str,
        replica: ReplicaId,
        store: S,
        view: Shared,
        seed: u64,
    ) -> Self {
        let kept = store
            .meta(INCARNATION_META)
            .ok()
            .flatten()
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(u64::from_be_bytes);
        let replica = match kept {
            Some(incarnation) => ReplicaId::new(name, incarnation),
            None => replica,
        };
        Self {
            index,
            name: name.to_string(),
            replica,
            store,
            view: Some(view),
            objects_pending: BTreeMap::new(),
            hints_pending: BTreeMap::new(),
            batch: WriteBatch::default(),
            issued: 0,
            durable: 0,
            deferred: Vec::new(),
            detector: Detector::new(Vec::new(), DetectorConfig::default()),
            watched: 0,
            now: Duration::ZERO,
            pending: BTreeMap::new(),
            puts: BTreeMap::new(),
            gets: BTreeMap::new(),
            forwards: BTreeMap::new(),
            handoffs_in_flight: BTreeSet::new(),
            handoff_cursor: None,
            next_local: 0,
            anti_entropy_cursor: 0,
            filed: BTreeMap::new(),
            handover_soon: false,
            refiles: std::collections::VecDeque::new(),
            exchange: None,
            repairs: std::collections::VecDeque::new(),
            tombstones: None,
            tombstone_round: None,
            sweep_cursor: None,
            gap_cursors: BTreeMap::new(),
            pulled: BTreeMap::new(),
            pulling: BTreeSet::new(),
            handovers: BTreeMap::new(),
            authority: Box::new(Unsigned),
            storage_error: None,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Signs and checks member entries with `authority` from now on (the
    /// running node's certificate; [`Unsigned`] otherwise).
    pub fn set_authority(&mut self, authority: Box<dyn EntryAuthority>) {
        self.authority = authority;
    }

    /// Its store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Its store, for the driver to apply a batch.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back (a crash: everything else is gone).
    pub fn into_store(self) -> S {
        self.store
    }

    /// Its part in the membership change in progress: partitions it must
    /// pull and how many of them it has pulled from every replica (0 and
    /// 0 when none), and partitions it holds data of but replicates in
    /// neither ring (being handed over).
    pub fn membership_progress(&self) -> (u32, u32, u32) {
        let Some(shared) = self.view.as_ref() else {
            return (0, 0, 0);
        };
        let n = shared.n_max();
        let version = shared.cluster.owners_version();
        let ready = shared
            .cluster
            .members
            .get(&self.name)
            .is_some_and(|e| e.ready_for >= version);
        let (mut total, mut done) = (0, 0);
        if let Some(next) = shared.next.as_ref().filter(|_| !ready) {
            for p in incoming_for(&shared.ring, next, shared.replica_counts(), &self.name) {
                total += 1;
                let answered = self.pulled.get(&(version, p));
                let all = shared.ring.preference_list(p, n).into_iter().all(|peer| {
                    matches!(
                        shared.cluster.status_of(peer),
                        Some(MemberStatus::Removed | MemberStatus::Left)
                    ) || answered.is_some_and(|a| a.contains(peer))
                });
                done += u32::from(all);
            }
        }
        let last = LEAVES as u32 - 1;
        let handover = (0..shared.ring.partitions())
            .filter(|&p| !shared.replicates(&self.name, p))
            .filter(|&p| {
                self.store
                    .leaf_page(p, (0, last), None, 1, LEAF_PAGE_BYTES)
                    .is_ok_and(|page| !page.entries.is_empty())
            })
            .count() as u32;
        (total, done, handover)
    }

    /// Tombstone-only objects as of its last collection sweep.
    pub fn tombstones_held(&self) -> u64 {
        self.tombstones.as_ref().map_or(0, |t| t.len() as u64)
    }

    /// The peers its failure detector takes for unreachable.
    pub fn unreachable(&self) -> Vec<String> {
        self.detector.unreachable()
    }

    /// The last storage error the node met, if any (taken).
    pub fn take_storage_error(&mut self) -> Option<String> {
        self.storage_error.take()
    }

    /// Sets the periodic timers, at random phases (the first step, at
    /// `now`).
    pub fn boot(&mut self, now: Duration, out: &mut Ready) {
        self.step(now, out, |node, shared, out| {
            // Its own entry is its word: re-issued under its signature when
            // another made it (a manifest, a seed's state for a joiner).
            let entry = shared.cluster.members.get(&node.name);
            if let Some(entry) = entry.filter(|e| e.signer() != Some(node.name.as_str())) {
                let (addr, status) = (entry.addr.clone(), entry.status);
                shared.cluster.set_member(&node.name, &addr, status);
                node.authority
                    .sign(&node.name, &mut shared.cluster, &node.name);
                out.view_changed = true;
            }
            for timer in Timer::PERIODIC {
                let first = match timer {
                    Timer::AntiEntropy => shared.params.anti_entropy_first_us,
                    _ => None,
                };
                if let Some(period) = timer.period(&shared.params) {
                    let first = first.unwrap_or_else(|| node.rng.gen_range(1..=period));
                    out.timers.push((first, timer));
                }
            }
        });
    }

    /// Runs one step at `now`: the node's cluster state is taken out for
    /// `f`, and the step's batch is handed out after it.
    fn step(
        &mut self,
        now: Duration,
        out: &mut Ready,
        f: impl FnOnce(&mut Self, &mut Shared, &mut Ready),
    ) {
        let Some(mut shared) = self.view.take() else {
            return;
        };
        self.begin(now, &shared);
        f(self, &mut shared, out);
        self.track_trees(&shared, out);
        self.finish(&shared, out);
        self.view = Some(shared);
    }

    /// Notes each bucket's Merkle tree, and queues the re-filing of a bucket
    /// whose tree is new to this run: its keys may have been written here
    /// before this node learnt the bucket's own N (a replica restored empty
    /// takes writes before gossip brings the buckets), or before a restart.
    fn track_trees(&mut self, shared: &Shared, out: &mut Ready) {
        if self.filed.len() == shared.cluster.buckets.len()
            && shared
                .cluster
                .buckets
                .keys()
                .all(|b| self.filed.get(b) == Some(&shared.tree_of(b)))
        {
            return;
        }
        for bucket in shared.cluster.buckets.keys() {
            let tree = shared.tree_of(bucket);
            let before = self.filed.insert(bucket.clone(), tree);
            let moved = before.map_or(tree != DEFAULT_TREE, |t| t != tree);
            if moved && !self.refiles.iter().any(|(b, _)| b == bucket) {
                if self.refiles.is_empty() {
                    out.timers.push((0, Timer::Refile));
                }
                self.refiles.push_back((bucket.clone(), None));
            }
        }
    }

    /// One page of the re-filing under way (a page per [`Timer::Refile`],
    /// [`SWEEP_STEP_US`] apart): each durable key of the
    /// bucket is filed in the bucket's tree (the store moves only those
    /// filed elsewhere).
    fn refile_page(&mut self, shared: &Shared) {
        let Some((bucket, after)) = self.refiles.pop_front() else {
            return;
        };
        let prefix = ObjectKey {
            bucket: bucket.clone(),
            key: Vec::new(),
        }
        .storage_key();
        let start = after.unwrap_or_else(|| prefix.clone());
        let keys = match self.store.key_page(Some(&start), REFILE_PAGE) {
            Ok(keys) => keys,
            Err(e) => {
                // Tried again at the next tick.
                self.storage_error = Some(e.to_string());
                self.refiles.push_front((bucket, Some(start)));
                return;
            }
        };
        let full = keys.len() == REFILE_PAGE;
        let tree = shared.tree_of(&bucket);
        let mut last = None;
        for key in keys {
            if !key.starts_with(&prefix) {
                return;
            }
            self.batch.writes.push(Write::Refile {
                key: key.clone(),
                tree,
            });
            last = Some(key);
        }
        if let Some(last) = last.filter(|_| full) {
            self.refiles.push_front((bucket, Some(last)));
        }
    }

    /// Whether writes handed out wait to be reported durable.
    pub fn has_unsynced(&self) -> bool {
        self.durable < self.issued
    }

    /// The durable object under `key`.
    pub fn stored(&self, key: &ObjectKey) -> Option<Object> {
        self.store.object(&key.storage_key()).ok().flatten()
    }

    /// Every durable key.
    pub fn stored_keys(&self) -> Vec<ObjectKey> {
        self.scan_keys()
    }

    /// The number of durable hints.
    pub fn hint_total(&self) -> u64 {
        self.store.hint_total().unwrap_or(0)
    }

    /// Records a storage error (the driver logs it); the step that met it
    /// does nothing it cannot undo.
    fn failed<T>(&mut self, result: Result<T, StorageError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.storage_error = Some(e.to_string());
                None
            }
        }
    }

    /// Every durable key, in order.
    fn scan_keys(&self) -> Vec<ObjectKey> {
        let mut found = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let Ok(page) = self.store.key_page(after.as_deref(), SCAN_ENTRIES_MAX) else {
                return found;
            };
            let full = page.len() == SCAN_ENTRIES_MAX;
            found.extend(
                page.iter()
                    .filter_map(|raw| ObjectKey::from_storage_key(raw)),
            );
            after = page.last().cloned();
            if !full {
                return found;
            }
        }
    }

    /// The next page of durable hints in (owner, key) order, from where
    /// the last one ended (from the start again after the last page).
    fn hint_page(&mut self) -> Vec<((String, ObjectKey), Object)> {
        let after = self.handoff_cursor.take();
        let Ok(page) = self
            .store
            .hint_page(None, after.as_ref(), HANDOFF_SCAN_PAGE)
        else {
            return Vec::new();
        };
        if page.len() == HANDOFF_SCAN_PAGE {
            self.handoff_cursor = page.last().map(|(hint, _)| hint.clone());
        }
        page.into_iter()
            .filter_map(|(hint, object)| {
                let key = ObjectKey::from_storage_key(&hint.key)?;
                Some(((hint.owner, key), object))
            })
            .collect()
    }

    fn reachable(&self, peer: &str) -> bool {
        peer == self.name || self.detector.is_reachable(peer)
    }

    /// The check before a coordination stores or asks anything: at least
    /// `needed` nodes of the key's extended list reachable, itself
    /// included; otherwise a [`ErrorKind::CannotReach`] refusal, so the
    /// client tries another node at once (`quorum` names it: "R", "W").
    fn can_reach(
        &self,
        key: &ObjectKey,
        needed: usize,
        quorum: &str,
        shared: &Shared,
    ) -> Result<(), ErrorReply> {
        let (_, extended) = shared.placement(key);
        let needed = needed.clamp(1, shared.n_of(key).min(extended.len()).max(1));
        let reachable: Vec<&str> = extended
            .iter()
            .map(String::as_str)
            .filter(|n| self.reachable(n))
            .collect();
        if reachable.len() >= needed {
            return Ok(());
        }
        Err(ErrorReply {
            kind: ErrorKind::CannotReach,
            message: format!(
                "{} can reach only {} of the cluster's nodes ({}) and {quorum} = {needed}; \
                 nothing was stored",
                self.name,
                reachable.len(),
                reachable.join(", ")
            ),
            acks: reachable.len().min(255) as u8,
            needed: needed.min(255) as u8,
        })
    }

    fn local_id(&mut self) -> u64 {
        self.next_local += 1;
        self.next_local
    }

    /// The object as this node's coordinator sees it (durable or not);
    /// `None` when the store could not be read.
    fn current(&mut self, key: &ObjectKey) -> Option<Object> {
        if let Some((_, pending)) = self.objects_pending.get(key) {
            return Some(pending.clone().unwrap_or_default());
        }
        let read = self.store.object(&key.storage_key());
        self.failed(read).map(Option::unwrap_or_default)
    }

    /// The hint for (`owner`, `key`) as this node sees it (durable or not).
    fn current_hint(&mut self, owner: &str, key: &ObjectKey) -> Option<Option<Object>> {
        if let Some((_, pending)) = self.hints_pending.get(&(owner.to_string(), key.clone())) {
            return Some(pending.clone());
        }
        let hint = HintKey::new(owner, key.storage_key())?;
        let read = self.store.hint(&hint);
        self.failed(read)
    }

    /// What this node tells others about `key`: durable state only, its
    /// replica merged with the hints it holds for the key; `Err` when the
    /// store could not be read.
    fn served(&mut self, key: &ObjectKey) -> Result<Option<Object>, String> {
        let raw = key.storage_key();
        let read = self
            .store
            .object(&raw)
            .and_then(|o| Ok((o, self.store.hints_of_key(&raw)?)));
        match read {
            Ok((mut object, hints)) => {
                for (_, hint) in hints {
                    object = Some(match object {
                        Some(o) => o.merge(&hint),
                        None => hint,
                    });
                }
                Ok(object)
            }
            Err(e) => {
                let message = e.to_string();
                self.storage_error = Some(message.clone());
                Err(message)
            }
        }
    }

    /// Writes `object` under `key` in the step's batch, filed in its
    /// bucket's Merkle tree.
    fn write_object(&mut self, key: &ObjectKey, object: Object, shared: &Shared) {
        let tree = match shared.params.bug {
            Some(Bug::FileInDefaultTree) => DEFAULT_TREE,
            _ => shared.tree_of(&key.bucket),
        };
        self.write_entry(key, Some(object), tree);
    }

    /// Deletes `key` in the step's batch (the store takes its old version
    /// out of the tree it filed it in).
    fn delete_object(&mut self, key: &ObjectKey) {
        self.write_entry(key, None, DEFAULT_TREE);
    }

    fn write_entry(&mut self, key: &ObjectKey, object: Option<Object>, tree: TreeId) {
        self.objects_pending
            .insert(key.clone(), (self.issued + 1, object.clone()));
        self.batch.writes.push(Write::Object {
            key: key.storage_key(),
            value: object,
            tree,
        });
    }

    /// Writes the hint for (`owner`, `key`) in the step's batch.
    fn write_hint(&mut self, owner: &str, key: &ObjectKey, object: Option<Object>) {
        let Some(hint) = HintKey::new(owner, key.storage_key()) else {
            return;
        };
        self.hints_pending.insert(
            (owner.to_string(), key.clone()),
            (self.issued + 1, object.clone()),
        );
        self.batch.writes.push(Write::Hint {
            hint,
            value: object,
        });
    }

    /// Holds `action` until the writes made so far are durable.
    fn after_durable(&mut self, action: Deferred) {
        self.deferred.push((None, action));
    }

    /// Merges `incoming` into the object under `key`; false when the store
    /// could not be read (nothing written).
    fn store_merged(&mut self, key: &ObjectKey, incoming: &Object, shared: &Shared) -> bool {
        let next = match shared.params.bug {
            Some(Bug::ReplicaOverwrites) => incoming.clone(),
            _ => match self.current(key) {
                Some(current) => current.merge(incoming),
                None => return false,
            },
        };
        self.write_object(key, next, shared);
        true
    }

    fn store_hint(&mut self, owner: &str, key: &ObjectKey, incoming: &Object) -> bool {
        let Some(current) = self.current_hint(owner, key) else {
            return false;
        };
        let merged = current.unwrap_or_default().merge(incoming);
        self.write_hint(owner, key, Some(merged));
        true
    }

    /// Ends a step: hands out its batch and releases the actions whose
    /// writes are durable already.
    fn finish(&mut self, shared: &Shared, out: &mut Ready) {
        if !self.batch.is_empty() {
            self.issued += 1;
            out.persist = Some((self.issued, std::mem::take(&mut self.batch)));
        }
        for (batch, _) in &mut self.deferred {
            batch.get_or_insert(self.issued);
        }
        self.release(shared, out);
    }

    /// Reports every batch up to `batch` durable: the overlay forgets them
    /// and the actions that waited for them run.
    pub fn persisted(&mut self, now: Duration, batch: u64, out: &mut Ready) {
        self.step(now, out, |node, shared, out| {
            node.durable = node.durable.max(batch.min(node.issued));
            let durable = node.durable;
            node.objects_pending.retain(|_, (b, _)| *b > durable);
            node.hints_pending.retain(|_, (b, _)| *b > durable);
            node.release(shared, out);
        });
    }

    fn release(&mut self, shared: &Shared, out: &mut Ready) {
        let durable = self.durable;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(b, _)| b.is_some_and(|b| b <= durable));
        self.deferred = waiting;
        for (_, action) in ready {
            match action {
                Deferred::Send(to, payload) => out.sends.push((to, payload)),
                Deferred::StartPut(pid) => self.start_put(pid, shared, out),
                Deferred::Pulled {
                    version,
                    partition,
                    peer,
                } => {
                    out.counts.partitions_pulled += 1;
                    self.pulled
                        .entry((version, partition))
                        .or_default()
                        .insert(peer);
                }
            }
        }
    }

    fn send_request(
        &mut self,
        to: &str,
        op: Option<OpId>,
        request: Request,
        purpose: Option<(Purpose, u64)>,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let Some(index) = shared.index_of(to) else {
            return;
        };
        let id = out.id();
        if let Some((purpose, timeout_us)) = purpose {
            self.pending.insert(
                id,
                Pending {
                    peer: to.to_string(),
                    purpose,
                },
            );
            out.timers.push((timeout_us, Timer::RequestTimeout(id)));
        }
        out.sends
            .push((Addr::Node(index), Payload::Request { id, op, request }));
    }

    /// Handles a message that arrived at `now` (one step).
    pub fn on_message(&mut self, now: Duration, from: Addr, payload: Payload, out: &mut Ready) {
        self.step(now, out, |node, shared, out| {
            node.message(from, payload, shared, out)
        });
    }

    /// Starts a step at `now`: the detector watches every other member.
    fn begin(&mut self, now: Duration, shared: &Shared) {
        self.now = self.now.max(now);
        if self.watched == 0 {
            let config = DetectorConfig {
                probe_interval: Duration::from_micros(shared.params.probe_us),
                probe_timeout: Duration::from_micros(shared.params.probe_timeout_us),
            };
            self.detector = Detector::new(Vec::new(), config);
        }
        if self.watched != shared.names.len() {
            self.watched = shared.names.len();
            let peers = shared.names.iter().filter(|n| **n != self.name).cloned();
            self.detector.set_peers(peers, self.now);
        }
    }

    /// A request to `peer` failed or timed out: it is suspected.
    fn suspect(&mut self, peer: &str, out: &mut Ready) {
        if self.detector.is_reachable(peer) {
            out.counts.suspicions += 1;
        }
        self.detector.on_failure(peer, self.now);
    }

    fn message(&mut self, from: Addr, payload: Payload, shared: &mut Shared, out: &mut Ready) {
        if let Addr::Node(j) = from {
            if let Some(name) = shared.names.get(j) {
                self.detector.on_success(name, self.now);
            }
        }
        match payload {
            Payload::ClientGet {
                op,
                key,
                r,
                explain,
                last_resort,
            } => {
                if let Addr::Client(client) = from {
                    let r = r.map_or(shared.quorums(&key.bucket).1, usize::from);
                    let checked =
                        quorum_fits(&key, r, "R", shared).and_then(|()| match last_resort {
                            true => Ok(()),
                            false => self.can_reach(&key, r, "R", shared),
                        });
                    if let Err(e) = checked {
                        out.counts.refusals += u64::from(e.kind == ErrorKind::CannotReach);
                        let outcome = ClientOutcome::Failed(e);
                        out.sends.push((from, Payload::ClientReply { op, outcome }));
                        return;
                    }
                    let reply = ReplyTo::Client { client, op };
                    self.start_get(reply, key, r, explain, shared, out);
                }
            }
            Payload::ClientPut { op, put } => {
                let Addr::Client(client) = from else { return };
                let w = put.w.map_or(shared.quorums(&put.key.bucket).2, usize::from);
                let checked =
                    quorum_fits(&put.key, w, "W", shared).and_then(|()| match put.last_resort {
                        true => Ok(()),
                        false => self.can_reach(&put.key, w, "W", shared),
                    });
                if let Err(e) = checked {
                    out.counts.refusals += u64::from(e.kind == ErrorKind::CannotReach);
                    let outcome = ClientOutcome::Failed(e);
                    out.sends.push((from, Payload::ClientReply { op, outcome }));
                    return;
                }
                if shared.home(&put.key).contains(&self.name) {
                    self.coordinate(ReplyTo::Client { client, op }, Some(op), put, shared, out);
                } else {
                    self.forward(client, op, put, shared, out);
                }
            }
            Payload::Request { id, op, request } => {
                let Addr::Node(j) = from else { return };
                self.on_request(j, id, op, request, shared, out);
            }
            Payload::Response {
                id,
                response,
                minted,
            } => self.on_response(id, response, minted, shared, out),
            Payload::ClientReply { .. } => {}
        }
    }

    /// Stores an object that moves with a partition (pulled or handed over):
    /// merged, unless the planted bug overwrites. False when the store could
    /// not be read.
    fn receive_moved(&mut self, key: &ObjectKey, object: &Object, shared: &Shared) -> bool {
        if shared.params.bug == Some(Bug::HandoverOverwrites) {
            self.write_object(key, object.clone(), shared);
            return true;
        }
        match self.current(key) {
            Some(current) if current.includes(object) => true,
            Some(_) => self.store_merged(key, object, shared),
            None => false,
        }
    }

    fn on_request(
        &mut self,
        from: usize,
        id: ReqId,
        op: Option<OpId>,
        request: Request,
        shared: &mut Shared,
        out: &mut Ready,
    ) {
        match request {
            Request::Coordinate(put) => {
                let reply = ReplyTo::Node { node: from, id };
                let w = put.w.map_or(shared.quorums(&put.key.bucket).2, usize::from);
                let reach = match put.last_resort {
                    true => Ok(()),
                    false => self.can_reach(&put.key, w, "W", shared),
                };
                if let Err(e) = reach {
                    // Refused before minting, so the forwarder may try the
                    // next home replica without risk.
                    out.counts.refusals += 1;
                    respond(out, from, id, Response::Error(e));
                    return;
                }
                self.coordinate(reply, op, put, shared, out)
            }
            Request::Replicate {
                key,
                object,
                hint_for,
            } => {
                let stored = match hint_for {
                    Some(owner) if owner != self.name => self.store_hint(&owner, &key, &object),
                    _ => self.store_merged(&key, &object, shared),
                };
                if !stored {
                    let response = Response::error(ErrorKind::Internal, "storage failed");
                    respond(out, from, id, response);
                    return;
                }
                // The acknowledgement waits for the write to be durable.
                self.after_durable(Deferred::Send(
                    Addr::Node(from),
                    Payload::Response {
                        id,
                        response: Response::Replicated,
                        minted: None,
                    },
                ));
            }
            Request::Read { key } => {
                let response = match self.served(&key) {
                    Ok(object) => Response::Replica(object),
                    Err(e) => Response::error(ErrorKind::Internal, e),
                };
                respond(out, from, id, response);
            }
            Request::Gossip(theirs) => {
                self.absorb(&theirs, shared, out);
                let response = Response::Gossip(Box::new(shared.cluster.clone()));
                respond(out, from, id, response);
            }
            Request::TombstoneCheck { entries } => {
                let response = if entries.len() > TOMBSTONE_BATCH_MAX {
                    Response::error(ErrorKind::InvalidInput, "too many keys")
                } else {
                    match self.holdings(&entries) {
                        Some(h) => Response::Holdings(h),
                        None => Response::error(ErrorKind::Internal, "storage failed"),
                    }
                };
                respond(out, from, id, response);
            }
            Request::TombstoneDrop { entries } => {
                let response = if entries.len() > TOMBSTONE_BATCH_MAX {
                    Response::error(ErrorKind::InvalidInput, "too many keys")
                } else {
                    Response::Dropped(self.drop_tombstones(&entries, shared, out))
                };
                respond(out, from, id, response);
            }
            Request::MerkleHashes {
                partition,
                tree,
                nodes,
            } => {
                let response = self.answer_hashes(partition, tree, &nodes);
                respond(out, from, id, response);
            }
            Request::LeafObjects {
                partition,
                leaf,
                last_leaf,
                after,
            } => {
                let response = match self.leaf_run(partition, (leaf, last_leaf), after) {
                    Ok((entries, next)) => Response::LeafObjects { entries, next },
                    Err(e) => Response::error(ErrorKind::InvalidInput, e),
                };
                respond(out, from, id, response);
            }
            Request::Ping => respond(out, from, id, Response::Pong),
            Request::ReplicateMany { entries } => {
                // Anti-entropy pushes and handovers.
                if entries.len() > REPLICATE_BATCH_MAX {
                    let response = Response::error(ErrorKind::InvalidInput, "too many entries");
                    respond(out, from, id, response);
                    return;
                }
                let mut stored = true;
                for (key, object) in &entries {
                    stored &= self.receive_moved(key, object, shared);
                }
                if !stored {
                    let response = Response::error(ErrorKind::Internal, "storage failed");
                    respond(out, from, id, response);
                    return;
                }
                self.after_durable(Deferred::Send(
                    Addr::Node(from),
                    Payload::Response {
                        id,
                        response: Response::Replicated,
                        minted: None,
                    },
                ));
            }
            _ => out.sends.push((
                Addr::Node(from),
                Payload::Response {
                    id,
                    response: Response::error(ErrorKind::InvalidInput, "not simulated"),
                    minted: None,
                },
            )),
        }
    }

    fn on_response(
        &mut self,
        id: ReqId,
        response: Response,
        minted: Option<Dot>,
        shared: &mut Shared,
        out: &mut Ready,
    ) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match pending.purpose {
            purpose @ (Purpose::Put(_) | Purpose::Get(_)) => {
                self.replica_answer(&purpose, &pending.peer, Some(response), shared, out)
            }
            Purpose::Forward(fid) => {
                if let Response::Error(e) = &response {
                    if e.kind == ErrorKind::CannotReach {
                        // Refused before minting: the next one may take it.
                        self.try_forward(fid, shared, out);
                        return;
                    }
                }
                let Some(state) = self.forwards.remove(&fid) else {
                    return;
                };
                let outcome = match (response, minted) {
                    (Response::Written { context }, dot) => ClientOutcome::Written { dot, context },
                    (Response::Error(e), _) => ClientOutcome::Failed(e),
                    (other, _) => ClientOutcome::failed(
                        ErrorKind::Internal,
                        format!("unexpected answer {other:?}"),
                    ),
                };
                out.sends.push((
                    Addr::Client(state.client),
                    Payload::ClientReply {
                        op: state.op,
                        outcome,
                    },
                ));
            }
            Purpose::Handoff { owner, key, sent } => {
                let slot = (owner, key);
                self.handoffs_in_flight.remove(&slot);
                if response == Response::Replicated {
                    out.counts.hints_delivered += 1;
                    // Deleted only when what is held is exactly what the
                    // owner acknowledged (a write that came in meanwhile
                    // keeps the hint for the next round).
                    let (owner, key) = slot;
                    if self.current_hint(&owner, &key) == Some(Some(sent)) {
                        self.write_hint(&owner, &key, None);
                    }
                }
            }
            Purpose::Handover { key, sent } => {
                if let Some(state) = self.handovers.get_mut(&key) {
                    state.in_flight.remove(&pending.peer);
                    if response == Response::Replicated && state.sent == sent {
                        state.acked.insert(pending.peer.clone());
                    }
                }
                // Dropped at the next membership tick, with the others.
            }
            Purpose::Exchange(id) => self.on_exchange_answer(id, response, shared, out),
            Purpose::Gossip => {
                if let Response::Gossip(theirs) = response {
                    out.counts.gossip_rounds += 1;
                    self.absorb(&theirs, shared, out);
                    let left = Some(MemberStatus::Left);
                    if shared.cluster.status_of(&self.name) == left
                        && theirs.status_of(&self.name) == left
                        && self.holds_nothing(shared)
                    {
                        // A member knows it left: gossip takes it from there.
                        out.membership.push(MemberAction::Left);
                    }
                }
            }
            Purpose::TombstoneCheck(id) => {
                let holdings = match response {
                    Response::Holdings(h) => Some(h),
                    _ => None,
                };
                self.on_holdings(id, &pending.peer, holdings, shared, out);
            }
            Purpose::Pull { version, partition } => {
                self.on_pulled(version, partition, &pending.peer, response, shared, out)
            }
            Purpose::Repair(gid) => {
                let ok = response == Response::Replicated;
                self.on_repair_answer(gid, &pending.peer, ok, out);
            }
        }
    }

    /// Asks `peer` for one page of `partition` (its synced objects, in ring
    /// order, after `after`), for the change to owner-table `version`.
    fn pull_page(
        &mut self,
        version: u64,
        partition: PartitionId,
        peer: &str,
        after: Option<Vec<u8>>,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let request = Request::LeafObjects {
            partition,
            leaf: 0,
            last_leaf: LEAVES as u32 - 1,
            after,
        };
        let purpose = Purpose::Pull { version, partition };
        let timeout = shared.params.request_timeout_us;
        self.send_request(peer, None, request, Some((purpose, timeout)), shared, out);
    }

    /// A page of a pull: merged here; the next page is asked for, or, after
    /// the last, the partition counts as pulled from `peer` once the merges
    /// are durable.
    fn on_pulled(
        &mut self,
        version: u64,
        partition: PartitionId,
        peer: &str,
        response: Response,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let slot = (version, partition, peer.to_string());
        let current = shared.next.is_some() && shared.cluster.owners_version() == version;
        let Response::LeafObjects { entries, next } = response else {
            self.pulling.remove(&slot);
            return;
        };
        if !current {
            self.pulling.remove(&slot);
            return;
        }
        let mut stored = true;
        for (key, object) in entries {
            // Only the keys whose bucket has this node among its N.
            if shared.holds(&self.name, &key) {
                stored &= self.receive_moved(&key, &object, shared);
            }
        }
        if !stored {
            // Asked again from the start at the next tick.
            self.pulling.remove(&slot);
            return;
        }
        match next {
            Some(after) => self.pull_page(version, partition, peer, Some(after), shared, out),
            None => {
                self.pulling.remove(&slot);
                self.after_durable(Deferred::Pulled {
                    version,
                    partition,
                    peer: peer.to_string(),
                });
            }
        }
    }

    fn send_outbound(
        &mut self,
        outbound: Outbound,
        purpose: Purpose,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let timeout = shared.params.request_timeout_us;
        self.send_request(
            &outbound.to,
            None,
            outbound.request,
            Some((purpose, timeout)),
            shared,
            out,
        );
    }

    /// Handles a timer that expired at `now` (one step).
    pub fn on_timer(&mut self, now: Duration, timer: Timer, out: &mut Ready) {
        self.step(now, out, |node, shared, out| node.timer(timer, shared, out));
    }

    fn timer(&mut self, timer: Timer, shared: &mut Shared, out: &mut Ready) {
        // A periodic timer is set again after its work (a tombstone sweep
        // sets its own: sooner while one is under way).
        if let Some(period) = timer
            .period(&shared.params)
            .filter(|_| timer != Timer::Tombstones)
        {
            out.timers.push((period, timer.clone()));
        }
        match timer {
            Timer::RequestTimeout(id) => self.on_timeout(id, shared, out),
            Timer::PutDeadline(pid) => {
                if let Some(state) = self.puts.remove(&pid) {
                    if !state.replied {
                        let (acks, needed) = state
                            .coordinator
                            .as_ref()
                            .map_or((0, 0), |c| (c.acks(), c.needed()));
                        let message = format!(
                            "write quorum not reached: {acks} of W = {needed} acknowledged \
                             (the write is stored on those replicas and may still spread)"
                        );
                        reply_put(&state, Err(write_shortfall(message, acks, needed)), out);
                    }
                }
            }
            Timer::GetDone(gid) => self.finish_get(gid, shared, out),
            Timer::GetSlow(gid) => {
                let forget = shared.params.bug == Some(Bug::ForgetHeldReplicas);
                let widened = self
                    .gets
                    .get_mut(&gid)
                    .filter(|g| !g.replied && !forget)
                    .map(|g| g.coordinator.widen())
                    .unwrap_or_default();
                for o in widened {
                    self.send_outbound(o, Purpose::Get(gid), shared, out);
                }
            }
            Timer::Probe => {
                let before = self.detector.unreachable().len();
                let due = self.detector.tick(self.now);
                // Heartbeats unanswered in time made suspects.
                out.counts.suspicions +=
                    self.detector.unreachable().len().saturating_sub(before) as u64;
                for peer in due {
                    // The answer (any message) counts for the detector.
                    self.send_request(&peer, None, Request::Ping, None, shared, out);
                }
            }
            Timer::Handoff => self.handoff(shared, out),
            Timer::AntiEntropy => self.anti_entropy(shared, out),
            Timer::Handover => {
                self.handover_soon = false;
                self.handover(shared, out);
            }
            Timer::Refile => {
                self.refile_page(shared);
                if !self.refiles.is_empty() {
                    out.timers.push((SWEEP_STEP_US, Timer::Refile));
                }
            }
            Timer::Membership => self.membership_tick(shared, out),
            Timer::Tombstones => {
                let delay = match self.tombstone_sweep(shared, out) {
                    true => shared.params.tombstone_sweep_us,
                    false => SWEEP_STEP_US,
                };
                out.timers.push((delay, Timer::Tombstones));
            }
            Timer::Gossip => self.gossip(shared, out),
        }
    }

    /// A replica's answer to a put's replication or a get's read (`None`:
    /// it timed out): counted, or replaced by a spare when it failed.
    fn replica_answer(
        &mut self,
        purpose: &Purpose,
        peer: &str,
        response: Option<Response>,
        shared: &Shared,
        out: &mut Ready,
    ) {
        match *purpose {
            Purpose::Put(pid) => {
                let Some(coordinator) =
                    self.puts.get_mut(&pid).and_then(|s| s.coordinator.as_mut())
                else {
                    return;
                };
                if response == Some(Response::Replicated) {
                    coordinator.on_ack(peer);
                } else if let Some(next) = coordinator.on_failure(peer) {
                    self.send_outbound(next, Purpose::Put(pid), shared, out);
                }
                self.check_put(pid, out);
            }
            Purpose::Get(gid) => {
                let Some(state) = self.gets.get_mut(&gid) else {
                    return;
                };
                if let Some(notes) = state.explain.as_mut() {
                    let micros = self.now.saturating_sub(notes.started).as_micros();
                    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
                    match &response {
                        Some(Response::Replica(o)) => {
                            notes
                                .answered
                                .insert(peer.to_string(), (micros, o.is_some()));
                        }
                        _ => {
                            notes.failed.insert(peer.to_string(), micros);
                        }
                    }
                }
                match response {
                    Some(Response::Replica(object)) => {
                        state.coordinator.on_reply(peer, object);
                    }
                    _ => {
                        if let Some(next) = state.coordinator.on_failure(peer) {
                            self.send_outbound(next, Purpose::Get(gid), shared, out);
                        }
                    }
                }
                self.check_get(gid, shared, out);
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, id: ReqId, shared: &Shared, out: &mut Ready) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        self.suspect(&pending.peer, out);
        match pending.purpose {
            purpose @ (Purpose::Put(_) | Purpose::Get(_)) => {
                self.replica_answer(&purpose, &pending.peer, None, shared, out)
            }
            Purpose::Forward(fid) => self.try_forward(fid, shared, out),
            Purpose::Handoff { owner, key, .. } => {
                self.handoffs_in_flight.remove(&(owner, key));
            }
            Purpose::Handover { key, .. } => {
                if let Some(state) = self.handovers.get_mut(&key) {
                    state.in_flight.remove(&pending.peer);
                }
            }
            Purpose::Exchange(id) => {
                if self.exchange.as_ref().is_some_and(|e| e.id == id) {
                    self.exchange_ended(None, shared, out);
                }
            }
            Purpose::TombstoneCheck(id) => {
                self.on_holdings(id, &pending.peer, None, shared, out);
            }
            Purpose::Gossip => {}
            Purpose::Pull { version, partition } => {
                self.pulling
                    .remove(&(version, partition, pending.peer.clone()));
            }
            Purpose::Repair(gid) => self.on_repair_answer(gid, &pending.peer, false, out),
        }
    }

    fn plan(&self, key: &ObjectKey, shared: &Shared) -> ReplicaPlan {
        let (_, extended) = shared.placement(key);
        let names: Vec<&str> = extended.iter().map(String::as_str).collect();
        ReplicaPlan::sloppy(&names, shared.n_of(key), |peer| self.reachable(peer))
    }

    fn start_get(
        &mut self,
        reply: ReplyTo,
        key: ObjectKey,
        r: usize,
        explain: bool,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let plan = self.plan(&key, shared);
        let n = shared.n_of(&key);
        // R first (itself and R-1 others); every target for a sample, so
        // read repair still compares every replica of some reads, and for
        // an explained get.
        let sampled = self.rng.gen_ratio(1, FULL_READ_EVERY);
        let (mut coordinator, outbound) = if sampled || explain {
            GetCoordinator::start(&key, &plan, n, r)
        } else {
            GetCoordinator::start_quorum(&key, &plan, n, r, &self.name)
        };
        let mut notes = explain.then(|| {
            let (partition, extended) = shared.placement(&key);
            Box::new(ExplainNotes {
                started: self.now,
                partition,
                preference_list: extended.iter().take(n).cloned().collect(),
                unreachable: self.detector.unreachable(),
                answered: BTreeMap::new(),
                failed: BTreeMap::new(),
                repairs: BTreeMap::new(),
            })
        });
        let gid = self.local_id();
        let mut remote = Vec::new();
        for o in outbound {
            if o.to == self.name {
                match self.served(&key) {
                    Ok(object) => {
                        if let Some(notes) = notes.as_mut() {
                            notes
                                .answered
                                .insert(self.name.clone(), (0, object.is_some()));
                        }
                        coordinator.on_reply(&self.name, object);
                    }
                    Err(_) => remote.extend(coordinator.on_failure(&self.name)),
                }
            } else {
                remote.push(o);
            }
        }
        self.gets.insert(
            gid,
            GetState {
                reply,
                key,
                coordinator,
                replied: false,
                explain: notes,
            },
        );
        for o in remote {
            self.send_outbound(o, Purpose::Get(gid), shared, out);
        }
        out.timers
            .push((shared.params.request_timeout_us * 3, Timer::GetDone(gid)));
        out.timers
            .push((shared.params.read_slow_us, Timer::GetSlow(gid)));
        self.check_get(gid, shared, out);
    }

    fn check_get(&mut self, gid: u64, shared: &Shared, out: &mut Ready) {
        let Some(state) = self.gets.get_mut(&gid) else {
            return;
        };
        let more = if shared.params.bug == Some(Bug::ForgetHeldReplicas) {
            Vec::new()
        } else {
            state.coordinator.more()
        };
        for o in more {
            self.send_outbound(o, Purpose::Get(gid), shared, out);
        }
        let Some(state) = self.gets.get_mut(&gid) else {
            return;
        };
        match state.coordinator.decision() {
            // An explained get answers at its end, with the read repair.
            Some(Quorum::Reached) if state.explain.is_none() => {
                state.replied = true;
                let merged = state.coordinator.merged();
                reply_get(state.reply, ClientOutcome::Got(merged), out);
            }
            Some(Quorum::Reached) => {}
            Some(_) => {
                state.replied = true;
                let (message, counted) = state.coordinator.shortfall(shared.home(&state.key));
                let needed = state.coordinator.needed();
                reply_get(
                    state.reply,
                    ClientOutcome::short(message, counted, needed),
                    out,
                );
            }
            None => {}
        }
        if state.coordinator.outstanding().is_empty() {
            self.finish_get(gid, shared, out);
        }
    }

    /// An explained get's answer, from its notes.
    fn explanation(&self, state: &GetState) -> Option<Explanation> {
        let notes = state.explain.as_ref()?;
        let coordinator = &state.coordinator;
        let targets = coordinator
            .asked()
            .iter()
            .map(|t| {
                let answered = notes.answered.get(&t.node);
                let (outcome, micros) = match (answered, notes.failed.get(&t.node)) {
                    (Some((micros, found)), _) => {
                        (TargetOutcome::Answered { found: *found }, Some(*micros))
                    }
                    (None, Some(micros)) => (TargetOutcome::Failed, Some(*micros)),
                    (None, None) => (TargetOutcome::Pending, None),
                };
                TargetReport {
                    node: t.node.clone(),
                    hint_for: t.hint_for.clone(),
                    outcome,
                    micros,
                }
            })
            .collect();
        let hints_held_for = self
            .store
            .hints_of_key(&state.key.storage_key())
            .map(|h| h.into_iter().map(|(k, _)| k.owner).collect())
            .unwrap_or_default();
        Some(Explanation {
            coordinator: self.name.clone(),
            partition: notes.partition,
            preference_list: notes.preference_list.clone(),
            unreachable: notes.unreachable.clone(),
            needed: coordinator.needed().min(255) as u8,
            quorum_reached: coordinator.state() == Quorum::Reached,
            targets,
            hints_held_for,
            read_repair: !notes.repairs.is_empty(),
            repaired: notes
                .repairs
                .iter()
                .map(|(node, ack)| (node.clone(), *ack == Some(true)))
                .collect(),
            object: coordinator.merged(),
        })
    }

    /// A read repair of an explained get answered (`ok`) or failed; the get
    /// answers once every repair did.
    fn on_repair_answer(&mut self, gid: u64, peer: &str, ok: bool, out: &mut Ready) {
        let Some(state) = self.gets.get_mut(&gid) else {
            return;
        };
        if let Some(notes) = state.explain.as_mut() {
            notes.repairs.insert(peer.to_string(), Some(ok));
            if notes.repairs.values().all(Option::is_some) {
                self.answer_explained(gid, out);
            }
        }
    }

    /// Sends an explained get's answer and forgets the get.
    fn answer_explained(&mut self, gid: u64, out: &mut Ready) {
        let Some(state) = self.gets.remove(&gid) else {
            return;
        };
        if state.replied {
            return;
        }
        if let Some(explanation) = self.explanation(&state) {
            reply_get(
                state.reply,
                ClientOutcome::Explained(Box::new(explanation)),
                out,
            );
        }
    }

    /// Ends a get: answers if it has not yet, and repairs stale home
    /// replicas; an explained get answers after its repairs.
    fn finish_get(&mut self, gid: u64, shared: &Shared, out: &mut Ready) {
        let Some(mut state) = self.gets.remove(&gid) else {
            return;
        };
        let reached = state.coordinator.state() == Quorum::Reached;
        if let Some(notes) = state.explain.as_ref() {
            if !notes.repairs.is_empty() {
                // The deadline passed while repairs were waiting.
                self.gets.insert(gid, state);
                self.answer_explained(gid, out);
                return;
            }
        }
        let explained_later = reached && state.explain.is_some();
        if !state.replied && !explained_later {
            state.replied = true;
            let (message, counted) = state.coordinator.shortfall(shared.home(&state.key));
            let message = format!("{message} in time");
            let needed = state.coordinator.needed();
            reply_get(
                state.reply,
                ClientOutcome::short(message, counted, needed),
                out,
            );
        }
        if !reached {
            return;
        }
        let explained = state.explain.is_some();
        let timeout = shared.params.request_timeout_us;
        let mut waiting = Vec::new();
        for (node, object) in state.coordinator.stale_replicas() {
            out.counts.read_repairs += 1;
            if node == self.name {
                self.store_merged(&state.key, &object, shared);
                waiting.push((node, Some(true)));
            } else {
                let request = Request::Replicate {
                    key: state.key.clone(),
                    object,
                    hint_for: None,
                };
                let purpose = explained.then_some((Purpose::Repair(gid), timeout));
                self.send_request(&node, None, request, purpose, shared, out);
                waiting.push((node, None));
            }
        }
        if !explained {
            return;
        }
        let all_done = waiting.iter().all(|(_, a)| a.is_some());
        if let Some(notes) = state.explain.as_mut() {
            notes.repairs.extend(waiting);
        }
        self.gets.insert(gid, state);
        if all_done {
            self.answer_explained(gid, out);
        }
    }

    /// Mints the new version locally; replication starts after the sync.
    fn coordinate(
        &mut self,
        reply: ReplyTo,
        op: Option<OpId>,
        put: PutRequest,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let Some(current) = self.current(&put.key) else {
            reply_put_to(reply, Err(internal("storage failed")), None, out);
            return;
        };
        let minted = match put.write_id {
            Some(id) => current.update_once(&put.context, put.value.clone(), &self.replica, id),
            None => {
                let (object, dot) = current.update(&put.context, put.value.clone(), &self.replica);
                (object, Some(dot))
            }
        };
        if minted.0.value_bytes() > OBJECT_VALUE_BYTES_MAX {
            let siblings = minted.0.siblings().len();
            let message = format!(
                "the key's {siblings} siblings would exceed {OBJECT_VALUE_BYTES_MAX} bytes; \
                 resolve them first"
            );
            let e = ErrorReply {
                kind: ErrorKind::InvalidInput,
                message,
                acks: 0,
                needed: 0,
            };
            reply_put_to(reply, Err(e), None, out);
            return;
        }
        let (object, dot) = match minted {
            (object, Some(dot)) => {
                let concurrent = object.siblings().len() > 1;
                out.mints.push(Mint {
                    op,
                    key: put.key.clone(),
                    dot: dot.clone(),
                    value: put.value.clone(),
                    seen: put.context.clone(),
                    concurrent,
                });
                (object, dot)
            }
            (object, None) => {
                // An earlier attempt of this put is here: replicate it again.
                out.counts.retries_deduplicated += 1;
                let held = object
                    .siblings()
                    .iter()
                    .find(|s| s.write == put.write_id)
                    .map(|s| s.dot.clone());
                let Some(dot) = held else {
                    reply_put_to(reply, Err(internal("the write's copy is gone")), None, out);
                    return;
                };
                (object, dot)
            }
        };
        // The mint always goes to this node's objects, even at a fallback,
        // so its counter for the key is never forgotten; at a fallback the
        // object is also kept as a hint for the home replica it stands in
        // for, in the same batch, and handed off from there.
        self.write_object(&put.key, object.clone(), shared);
        let plan = self.plan(&put.key, shared);
        let stands_in_for = plan
            .targets
            .iter()
            .find(|t| t.node == self.name)
            .and_then(|t| t.hint_for.clone());
        if let Some(owner) = stands_in_for {
            if !self.store_hint(&owner, &put.key, &object) {
                reply_put_to(reply, Err(internal("storage failed")), None, out);
                return;
            }
        }
        if !shared.home(&put.key).contains(&self.name) {
            out.counts.fallback_puts += 1;
        }
        let pid = self.local_id();
        let w = put.w.map_or(shared.quorums(&put.key.bucket).2, usize::from);
        self.puts.insert(
            pid,
            PutState {
                reply,
                key: put.key,
                object,
                dot,
                plan,
                w,
                coordinator: None,
                replied: false,
            },
        );
        self.after_durable(Deferred::StartPut(pid));
        out.timers
            .push((shared.params.put_deadline_us, Timer::PutDeadline(pid)));
    }

    fn start_put(&mut self, pid: u64, shared: &Shared, out: &mut Ready) {
        let Some(state) = self.puts.get(&pid) else {
            return;
        };
        let (coordinator, outbound) = PutCoordinator::start(
            &state.key,
            &state.object,
            &state.plan,
            shared.n_of(&state.key),
            &self.name,
            state.w,
        );
        if let Some(state) = self.puts.get_mut(&pid) {
            state.coordinator = Some(coordinator);
        }
        for o in outbound {
            self.send_outbound(o, Purpose::Put(pid), shared, out);
        }
        self.check_put(pid, out);
    }

    fn check_put(&mut self, pid: u64, out: &mut Ready) {
        let Some(state) = self.puts.get_mut(&pid) else {
            return;
        };
        let Some(coordinator) = state.coordinator.as_mut() else {
            return;
        };
        let done = coordinator.outstanding().is_empty();
        match coordinator.decision() {
            Some(Quorum::Reached) => {
                state.replied = true;
                reply_put(state, Ok(()), out);
            }
            Some(_) => {
                state.replied = true;
                let message = format!(
                    "write quorum not reached: only {} of W = {} replicas can be reached",
                    coordinator.acks() + coordinator.outstanding().len(),
                    coordinator.needed()
                );
                let e = write_shortfall(message, coordinator.acks(), coordinator.needed());
                reply_put(state, Err(e), out);
            }
            None => {}
        }
        if done && state.replied {
            self.puts.remove(&pid);
        }
    }

    fn forward(
        &mut self,
        client: usize,
        op: OpId,
        put: PutRequest,
        shared: &Shared,
        out: &mut Ready,
    ) {
        // The reachable home replicas, in ring order; when none of them
        // coordinates it, this node does, as a fallback.
        let candidates: Vec<String> = shared
            .home(&put.key)
            .iter()
            .filter(|c| self.reachable(c))
            .cloned()
            .collect();
        let fid = self.local_id();
        self.forwards.insert(
            fid,
            ForwardState {
                client,
                op,
                put,
                candidates,
                next: 0,
            },
        );
        self.try_forward(fid, shared, out);
    }

    fn try_forward(&mut self, fid: u64, shared: &Shared, out: &mut Ready) {
        let Some(state) = self.forwards.get_mut(&fid) else {
            return;
        };
        let Some(to) = state.candidates.get(state.next).cloned() else {
            // No home replica coordinated it: this node does, as a fallback.
            let Some(state) = self.forwards.remove(&fid) else {
                return;
            };
            let reply = ReplyTo::Client {
                client: state.client,
                op: state.op,
            };
            self.coordinate(reply, Some(state.op), state.put, shared, out);
            return;
        };
        state.next += 1;
        let op = state.op;
        let request = Request::Coordinate(state.put.clone());
        let timeout = shared.params.forward_timeout_us;
        self.send_request(
            &to,
            Some(op),
            request,
            Some((Purpose::Forward(fid), timeout)),
            shared,
            out,
        );
    }

    fn handoff(&mut self, shared: &Shared, out: &mut Ready) {
        // A hint for a member that left can never be handed to it: it moves
        // into this node's own store (one local transaction), and the
        // handover takes it to the key's replicas.
        let hints = self.hint_page();
        let orphaned = hints
            .iter()
            .filter(|((owner, _), _)| shared.cluster.status_of(owner) == Some(MemberStatus::Left));
        for ((owner, key), _) in orphaned {
            // Both writes go in this step's batch: one transaction.
            let (Some(Some(hint)), Some(current)) =
                (self.current_hint(owner, key), self.current(key))
            else {
                continue;
            };
            self.write_object(key, current.merge(&hint), shared);
            self.write_hint(owner, key, None);
        }
        let ready: Vec<((String, ObjectKey), Object)> = hints
            .into_iter()
            .filter(|((owner, _), _)| shared.cluster.status_of(owner) != Some(MemberStatus::Left))
            .filter(|(slot, _)| !self.handoffs_in_flight.contains(slot))
            .filter(|((owner, _), _)| self.reachable(owner))
            .take(shared.params.handoff_batch)
            .collect();
        for ((owner, key), object) in ready {
            self.handoffs_in_flight.insert((owner.clone(), key.clone()));
            let request = Request::Replicate {
                key: key.clone(),
                object: object.clone(),
                hint_for: None,
            };
            let purpose = Purpose::Handoff {
                owner: owner.clone(),
                key,
                sent: object,
            };
            let timeout = shared.params.request_timeout_us;
            self.send_request(&owner, None, request, Some((purpose, timeout)), shared, out);
        }
    }

    /// One membership tick: transfer, status, handover.
    fn membership_tick(&mut self, shared: &mut Shared, out: &mut Ready) {
        let n = shared.n_max();
        let Some(entry) = shared.cluster.members.get(&self.name) else {
            return;
        };
        let version = shared.cluster.owners_version();
        self.pulled.retain(|(v, _), _| *v >= version);
        self.pulling.retain(|(v, _, _)| *v >= version);
        if let Some(next) = &shared.next {
            let wanted = incoming_for(&shared.ring, next, shared.replica_counts(), &self.name);
            if entry.ready_for < version && !wanted.is_empty() {
                let mut done = true;
                for p in wanted {
                    let answered = self.pulled.get(&(version, p)).cloned();
                    for peer in shared.ring.preference_list(p, n) {
                        // A removed member is gone for good: the partition
                        // comes from the surviving replicas.
                        let removed = matches!(
                            shared.cluster.status_of(peer),
                            Some(MemberStatus::Removed | MemberStatus::Left)
                        );
                        if removed || answered.as_ref().is_some_and(|a| a.contains(peer)) {
                            continue;
                        }
                        done = false;
                        let pull = (version, p, peer.to_string());
                        if self.pulling.insert(pull) {
                            let peer = peer.to_string();
                            self.pull_page(version, p, &peer, None, shared, out);
                        }
                    }
                }
                if done {
                    shared.cluster.set_ready(&self.name, version);
                    self.authority
                        .sign(&self.name, &mut shared.cluster, &self.name);
                    shared.refresh();
                    out.view_changed = true;
                }
            }
        }
        let owns = shared.ring.owned_by(&self.name);
        let Some(status) = shared.cluster.status_of(&self.name) else {
            return;
        };
        match status {
            MemberStatus::Joining if owns > 0 => {
                shared.cluster.set_status(&self.name, MemberStatus::Up);
                self.authority
                    .sign(&self.name, &mut shared.cluster, &self.name);
                shared.refresh();
                out.view_changed = true;
            }
            MemberStatus::Leaving if owns == 0 && self.holds_nothing(shared) => {
                shared.cluster.set_status(&self.name, MemberStatus::Left);
                self.authority
                    .sign(&self.name, &mut shared.cluster, &self.name);
                shared.refresh();
                out.view_changed = true;
                // It stops once a member answered that it knows.
                self.gossip(shared, out);
                return;
            }
            // Marked left by another while it still holds keys (a removal
            // it did not hear in time): it hands them over first.
            MemberStatus::Left if self.holds_nothing(shared) => {
                self.gossip(shared, out);
                return;
            }
            _ => {}
        }
        self.advance_membership(shared, out);
        if !self.handover_soon {
            self.handover(shared, out);
        }
    }

    /// What any member may do, in the real node's order: abandons a change
    /// towards a removed member, marks removed members that own nothing
    /// left, installs the change in progress once every member is ready,
    /// and proposes the next one if there is one.
    fn advance_membership(&mut self, shared: &mut Shared, out: &mut Ready) {
        let n = shared.params.n;
        let mut changed = false;
        if shared.cluster.must_abort() {
            let before = shared.cluster.clone();
            shared.cluster.abort();
            judge_own_step(&before, &shared.cluster, n, out);
            out.steps
                .push(MembershipStep::Aborted(shared.cluster.owners_version()));
            changed = true;
        }
        for gone in shared.cluster.removals_done() {
            shared.cluster.set_status(&gone, MemberStatus::Left);
            self.authority.sign(&self.name, &mut shared.cluster, &gone);
            out.steps.push(MembershipStep::RemovalDone(gone));
            changed = true;
        }
        // Proposals and installs are the claimant's (the first member that
        // is up, by name, in this node's view): two members proposing at
        // once from different knowledge would fork the owner table, and
        // readiness is per version.
        let claimant =
            shared.cluster.claimant(&self.name, |p| self.reachable(p)) == Some(self.name.as_str());
        if claimant && shared.cluster.ready_to_install(n) {
            let before = shared.cluster.clone();
            shared.cluster.install();
            judge_own_step(&before, &shared.cluster, n, out);
            out.steps
                .push(MembershipStep::Installed(shared.cluster.owners_version()));
            changed = true;
        }
        if let Some(target) = shared.cluster.proposal(n).filter(|_| claimant) {
            let before = shared.cluster.clone();
            shared.cluster.propose(target);
            judge_own_step(&before, &shared.cluster, n, out);
            out.steps
                .push(MembershipStep::Proposed(shared.cluster.owners_version()));
            changed = true;
        }
        if changed {
            shared.refresh();
            out.view_changed = true;
        }
    }

    /// Sends this node's cluster state to one random member it can reach;
    /// the answer is the peer's state after merging it.
    fn gossip(&mut self, shared: &Shared, out: &mut Ready) {
        let peers: Vec<String> = shared
            .cluster
            .live_members()
            .map(|(name, _)| name.clone())
            .filter(|name| *name != self.name && self.reachable(name))
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.rng.gen_range(0..peers.len())].clone();
        let request = Request::Gossip(Box::new(shared.cluster.clone()));
        let timeout = shared.params.request_timeout_us;
        self.send_request(
            &peer,
            None,
            request,
            Some((Purpose::Gossip, timeout)),
            shared,
            out,
        );
    }

    /// Merges what [`admissible`] takes of a cluster state heard by
    /// gossip (signed entries their signers may make, an owner table that
    /// is a step of the protocol); the refusals are counted and reported.
    fn absorb(&mut self, theirs: &ClusterState, shared: &mut Shared, out: &mut Ready) {
        if *theirs == shared.cluster {
            return;
        }
        // An owner table refused was built on what this node does not know
        // yet (a join or a removal), or is no step at all: ours stays; the
        // sender learns what we know and moves on.
        let (admitted, refused) = admissible(
            &shared.cluster,
            theirs,
            shared.params.n,
            &*self.authority,
            |p| self.reachable(p),
        );
        if !refused.is_empty() {
            out.counts.gossip_refusals += 1;
            out.gossip_refused.extend(refused);
        }
        let mut merged = shared.cluster.clone();
        if !merged.merge(&admitted) {
            return;
        }
        if merged == shared.cluster {
            return;
        }
        shared.cluster = merged;
        shared.refresh();
        out.view_changed = true;
    }

    /// An operator's membership request (`dynamo leave`, `dynamo leave
    /// --force NODE`) at `now`: `Leave` marks this node leaving if it is
    /// up; `Remove` marks a member removed.
    pub fn on_operator(&mut self, now: Duration, request: Request, out: &mut Ready) {
        let (name, status) = match request {
            Request::Leave => (self.name.clone(), MemberStatus::Leaving),
            Request::Remove { node } => (node, MemberStatus::Removed),
            Request::SetBucket { bucket, n, r, w } => {
                self.step(now, out, |node, shared, out| {
                    let version = shared.cluster.buckets.get(&bucket).map_or(0, |b| b.version);
                    let props = BucketProps {
                        version: version + 1,
                        by: node.name.clone(),
                        n,
                        r,
                        w,
                    };
                    shared.cluster.buckets.insert(bucket, props);
                    shared.refresh();
                    out.view_changed = true;
                    node.gossip(shared, out);
                });
                return;
            }
            _ => return,
        };
        self.step(now, out, |node, shared, out| {
            let current = shared.cluster.status_of(&name);
            let allowed = match status {
                MemberStatus::Leaving => current == Some(MemberStatus::Up),
                _ => matches!(
                    current,
                    Some(MemberStatus::Up | MemberStatus::Joining | MemberStatus::Leaving)
                ),
            };
            if allowed {
                shared.cluster.set_status(&name, status);
                node.authority.sign(&node.name, &mut shared.cluster, &name);
                shared.refresh();
                out.view_changed = true;
                node.advance_membership(shared, out);
            }
        });
    }

    /// This node's cluster state and the rings it gives.
    pub fn view(&self) -> Option<&Shared> {
        self.view.as_ref()
    }

    /// A node name joins the address book (a node was started).
    pub fn learn_name(&mut self, name: &str) {
        if let Some(view) = self.view.as_mut() {
            if !view.names.iter().any(|n| n == name) {
                view.names.push(name.to_string());
            }
        }
    }

    /// Whether a leaving node may stop: it owns nothing now or in the change
    /// in progress, and holds no object, hint or write in flight.
    fn holds_nothing(&self, shared: &Shared) -> bool {
        shared
            .next
            .as_ref()
            .is_none_or(|r| r.owned_by(&self.name) == 0)
            && self.store.object_total().is_ok_and(|n| n == 0)
            && self.objects_pending.is_empty()
            && self.store.hint_total().is_ok_and(|n| n == 0)
            && self.hints_pending.is_empty()
            && self.puts.is_empty()
            && self.deferred.is_empty()
    }

    /// Up to [`Params::handover_batch`] durable objects this node holds in
    /// partitions it replicates in neither ring (and not being rewritten):
    /// one look into each such partition of the store, so the cost is the
    /// partitions, never the keys; and, from a partition it replicates for
    /// some buckets only, one page of the keys of the others.
    fn held_not_replicated(&mut self, shared: &Shared) -> Vec<(ObjectKey, Object)> {
        let mut found = Vec::new();
        let narrowest = shared
            .replica_counts()
            .first()
            .copied()
            .unwrap_or(shared.params.n);
        for p in 0..shared.ring.partitions() {
            if found.len() >= shared.params.handover_batch {
                break;
            }
            if shared.replicates(&self.name, p) {
                if !shared.replicates_n(&self.name, p, narrowest) {
                    // It replicates the partition for some buckets only: a
                    // page of it at a time, for keys of the others.
                    self.held_in_gap(p, shared, &mut found);
                }
                continue;
            }
            let limit = shared.params.handover_batch - found.len();
            let last = LEAVES as u32 - 1;
            let Ok(page) = self
                .store
                .leaf_page(p, (0, last), None, limit, LEAF_PAGE_BYTES)
            else {
                continue;
            };
            found.extend(
                page.entries
                    .into_iter()
                    .filter_map(|(raw, o, _)| Some((ObjectKey::from_storage_key(&raw)?, o)))
                    .filter(|(k, _)| !self.objects_pending.contains_key(k)),
            );
        }
        found.truncate(shared.params.handover_batch);
        found
    }

    /// One page of partition `p` (after where the last one ended) searched
    /// for keys whose bucket does not have this node among its replicas.
    fn held_in_gap(
        &mut self,
        p: PartitionId,
        shared: &Shared,
        found: &mut Vec<(ObjectKey, Object)>,
    ) {
        let last = LEAVES as u32 - 1;
        let after = self.gap_cursors.get(&p).cloned();
        let Ok(page) =
            self.store
                .leaf_page(p, (0, last), after.as_deref(), GAP_PAGE, LEAF_PAGE_BYTES)
        else {
            return;
        };
        match page.next {
            Some(next) => self.gap_cursors.insert(p, next),
            None => self.gap_cursors.remove(&p),
        };
        found.extend(
            page.entries
                .into_iter()
                .filter_map(|(raw, o, _)| Some((ObjectKey::from_storage_key(&raw)?, o)))
                .filter(|(k, _)| !self.objects_pending.contains_key(k))
                .filter(|(k, _)| !shared.holds(&self.name, k)),
        );
    }

    fn replicates_key(&self, key: &ObjectKey, shared: &Shared) -> bool {
        shared.holds(&self.name, key)
    }

    /// Pushes the synced keys this node replicates in neither the current
    /// nor the target ring to their current home replicas; a key is dropped
    /// once all of them acknowledged it unchanged ([`Self::try_drop`]).
    fn handover(&mut self, shared: &Shared, out: &mut Ready) {
        let held: Vec<ObjectKey> = self.handovers.keys().cloned().collect();
        for key in held {
            if self.stored(&key).is_none() || self.replicates_key(&key, shared) {
                self.handovers.remove(&key);
            }
        }
        let keys = self.held_not_replicated(shared);
        if !keys.is_empty() && !self.handover_soon {
            // More may follow: the next batch (and the drop of this one's
            // acknowledged keys) a little later, not a whole tick.
            self.handover_soon = true;
            out.timers.push((HANDOVER_STEP_US, Timer::Handover));
        }
        let timeout = shared.params.request_timeout_us;
        let mut droppable = Vec::new();
        for (key, object) in keys {
            let fresh = self.handovers.get(&key).is_none_or(|h| h.sent != object);
            if fresh {
                self.handovers.insert(
                    key.clone(),
                    Handover {
                        sent: object.clone(),
                        acked: BTreeSet::new(),
                        in_flight: BTreeSet::new(),
                    },
                );
            }
            if self.may_drop(&key, shared) {
                droppable.push(key);
                continue;
            }
            let Some(state) = self.handovers.get_mut(&key) else {
                continue;
            };
            for peer in shared.home(&key).to_vec() {
                if state.acked.contains(&peer) || state.in_flight.contains(&peer) {
                    continue;
                }
                let Some(j) = shared.index_of(&peer) else {
                    continue;
                };
                let id = out.id();
                state.in_flight.insert(peer.clone());
                self.pending.insert(
                    id,
                    Pending {
                        peer,
                        purpose: Purpose::Handover {
                            key: key.clone(),
                            sent: object.clone(),
                        },
                    },
                );
                out.timers.push((timeout, Timer::RequestTimeout(id)));
                let request = Request::ReplicateMany {
                    entries: vec![(key.clone(), object.clone())],
                };
                out.sends.push((
                    Addr::Node(j),
                    Payload::Request {
                        id,
                        op: None,
                        request,
                    },
                ));
            }
        }
        self.drop_handed_over(droppable, out);
    }

    /// Compare-and-delete: a handed-over key may be dropped once min(N, W)
    /// of its current home replicas acknowledged the object sent and the
    /// key is unchanged here (the real node's rule: W durable copies, and
    /// anti-entropy takes it to the rest).
    fn may_drop(&self, key: &ObjectKey, shared: &Shared) -> bool {
        let Some(state) = self.handovers.get(key) else {
            return false;
        };
        let home = shared.home(key);
        let needed = home.len().min(shared.quorums(&key.bucket).2).max(1);
        let acked = home.iter().filter(|h| state.acked.contains(*h)).count();
        let unchanged = !self.objects_pending.contains_key(key)
            && self.stored(key).as_ref() == Some(&state.sent);
        acked >= needed && unchanged && !self.replicates_key(key, shared)
    }

    /// Drops handed-over keys, after taking a new incarnation in the same
    /// batch: no dot minted from here on can repeat one minted for a key
    /// dropped here (this node forgets its counters for them).
    fn drop_handed_over(&mut self, keys: Vec<ObjectKey>, out: &mut Ready) {
        if keys.is_empty() {
            return;
        }
        self.renew_incarnation(out);
        for key in keys {
            self.delete_object(&key);
            self.handovers.remove(&key);
            out.counts.keys_handed_over += 1;
        }
    }

    /// Takes a fresh incarnation, written in the step's batch.
    fn renew_incarnation(&mut self, out: &mut Ready) {
        let mut fresh = self.rng.gen::<u64>();
        while fresh == self.replica.incarnation {
            fresh = self.rng.gen();
        }
        self.replica = ReplicaId::new(&self.name, fresh);
        self.batch.writes.push(Write::Meta {
            name: INCARNATION_META.to_string(),
            value: fresh.to_be_bytes().to_vec(),
        });
        out.counts.incarnations_renewed += 1;
    }

    /// Starts a Merkle exchange of the next (partition, tree) this node
    /// keeps with one of the tree's other replicas, unless one is running.
    fn anti_entropy(&mut self, shared: &Shared, out: &mut Ready) {
        if self.exchange.is_some() || !self.repairs.is_empty() {
            return;
        }
        let mine: Vec<(PartitionId, TreeId, Vec<&str>)> = (0..shared.ring.partitions())
            .flat_map(|p| {
                self.trees_kept(p, shared)
                    .into_iter()
                    .map(move |(tree, list)| (p, tree, list))
            })
            .collect();
        if mine.is_empty() {
            return;
        }
        let (partition, tree, list) = &mine[self.anti_entropy_cursor % mine.len()];
        self.anti_entropy_cursor = self.anti_entropy_cursor.wrapping_add(1);
        let peers: Vec<String> = list
            .iter()
            .filter(|p| **p != self.name && self.reachable(p))
            .map(|p| p.to_string())
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.rng.gen_range(0..peers.len())].clone();
        let (partition, tree) = (*partition, *tree);
        self.start_exchange(partition, tree, peer, shared, out);
    }

    /// The trees of `partition` this node keeps, each with the replicas
    /// that keep it (the first N of the preference list for its N).
    fn trees_kept<'s>(
        &self,
        partition: PartitionId,
        shared: &'s Shared,
    ) -> Vec<(TreeId, Vec<&'s str>)> {
        shared
            .trees()
            .into_iter()
            .map(|(tree, n)| (tree, shared.ring.preference_list(partition, n)))
            .filter(|(_, list)| list.contains(&self.name.as_str()))
            .collect()
    }

    /// Starts a Merkle exchange of one tree of `partition` with `peer` from
    /// this replica's durable tree; false when the tree cannot be read.
    fn start_exchange(
        &mut self,
        partition: PartitionId,
        tree_id: TreeId,
        peer: String,
        shared: &Shared,
        out: &mut Ready,
    ) -> bool {
        let leaves = self.store.leaves(partition, tree_id);
        let Some(leaves) = self.failed(leaves) else {
            return false;
        };
        let Some(tree) = MerkleTree::from_leaves(leaves) else {
            return false;
        };
        let id = self.local_id();
        self.exchange = Some(MerkleExchange {
            id,
            partition,
            tree_id,
            peer,
            tree,
            walk: DiffWalk::new(),
            runs: Vec::new(),
            theirs: BTreeMap::new(),
            tally: ExchangeTally::default(),
        });
        self.exchange_next(shared, out);
        true
    }

    /// An operator's repair of `partitions` (every partition this node
    /// replicates when empty; others are left out), answered to `client`'s
    /// op `op` with a [`RepairReport`].
    pub fn on_repair(
        &mut self,
        now: Duration,
        client: usize,
        op: OpId,
        partitions: Vec<u32>,
        out: &mut Ready,
    ) {
        self.step(now, out, |node, shared, out| {
            let n = shared.n_max();
            let home = |p: u32| shared.ring.preference_list(p, n);
            let mine: Vec<u32> = (0..shared.ring.partitions())
                .filter(|&p| home(p).contains(&node.name.as_str()))
                .collect();
            let partitions: Vec<u32> = if partitions.is_empty() {
                mine
            } else {
                partitions
                    .into_iter()
                    .filter(|p| mine.contains(p))
                    .collect()
            };
            let mut run = RepairRun {
                reply: ReplyTo::Client { client, op },
                queue: std::collections::VecDeque::new(),
                current: None,
                report: RepairReport::default(),
            };
            for p in partitions {
                run.report.partitions_checked += 1;
                for (tree, list) in node.trees_kept(p, shared) {
                    for peer in list {
                        if peer == node.name {
                            continue;
                        }
                        if node.reachable(peer) {
                            run.queue.push_back((p, tree, peer.to_string()));
                        } else if !run.report.skipped.iter().any(|s| s == peer) {
                            run.report.skipped.push(peer.to_string());
                        }
                    }
                }
            }
            node.repairs.push_back(run);
            if node.exchange.is_none() {
                node.repair_next(shared, out);
            }
        });
    }

    /// Starts the running repair's next exchange, or answers it when none
    /// is left (once what it merged here is durable).
    fn repair_next(&mut self, shared: &Shared, out: &mut Ready) {
        while let Some(run) = self.repairs.front_mut() {
            match run.queue.pop_front() {
                Some((partition, tree, peer)) => {
                    run.current = Some(peer.clone());
                    if !self.start_exchange(partition, tree, peer, shared, out) {
                        self.exchange_ended(None, shared, out);
                    }
                    return;
                }
                None => {
                    let Some(run) = self.repairs.pop_front() else {
                        return;
                    };
                    if let ReplyTo::Client { client, op } = run.reply {
                        let outcome = ClientOutcome::Repaired(Box::new(run.report));
                        self.after_durable(Deferred::Send(
                            Addr::Client(client),
                            Payload::ClientReply { op, outcome },
                        ));
                    }
                }
            }
        }
    }

    /// The exchange in progress ended: with its tally when it completed,
    /// `None` when it failed. A repair waiting for it goes on.
    fn exchange_ended(&mut self, tally: Option<ExchangeTally>, shared: &Shared, out: &mut Ready) {
        self.exchange = None;
        if let Some(t) = tally {
            out.counts.merkle_exchanges += 1;
            out.counts.keys_repaired += t.merged_here + t.pushed;
        }
        let Some(run) = self.repairs.front_mut() else {
            return;
        };
        let Some(peer) = run.current.take() else {
            return;
        };
        let report = &mut run.report;
        match tally {
            Some(t) => {
                report.exchanges += 1;
                report.hashes += t.hashes;
                report.bytes_sent += t.bytes_sent;
                report.bytes_received += t.bytes_received;
                *report.repaired.entry(self.name.clone()).or_default() += t.merged_here;
                *report.repaired.entry(peer).or_default() += t.pushed;
            }
            None => {
                if !report.skipped.contains(&peer) {
                    report.skipped.push(peer);
                }
            }
        }
        self.repair_next(shared, out);
    }

    /// Sends the exchange's next request: tree hashes while the walk goes
    /// on, then the next page of the next differing leaf run; ends it when
    /// nothing is left.
    fn exchange_next(&mut self, shared: &Shared, out: &mut Ready) {
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        let request = if !exchange.walk.done() {
            let mut nodes = exchange.walk.wanted().to_vec();
            nodes.truncate(MERKLE_NODES_MAX);
            Request::MerkleHashes {
                partition: exchange.partition,
                tree: exchange.tree_id,
                nodes,
            }
        } else if let Some(&(leaf, last_leaf)) = exchange.runs.first() {
            Request::LeafObjects {
                partition: exchange.partition,
                leaf,
                last_leaf,
                after: None,
            }
        } else {
            let tally = exchange.tally;
            self.exchange_ended(Some(tally), shared, out);
            return;
        };
        exchange.tally.bytes_sent += wire_bytes(&request);
        let (id, peer) = (exchange.id, exchange.peer.clone());
        let timeout = shared.params.request_timeout_us;
        self.send_request(
            &peer,
            None,
            request,
            Some((Purpose::Exchange(id), timeout)),
            shared,
            out,
        );
    }

    fn on_exchange_answer(
        &mut self,
        id: u64,
        response: Response,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let Some(exchange) = self.exchange.as_mut().filter(|e| e.id == id) else {
            return;
        };
        exchange.tally.bytes_received += wire_bytes(&response);
        match response {
            Response::MerkleHashes(hashes) if !exchange.walk.done() => {
                exchange.tally.hashes += hashes.len() as u64;
                exchange.walk.on_hashes(&exchange.tree, &hashes);
                if exchange.walk.done() {
                    let leaves: Vec<u32> =
                        exchange.walk.differing_leaves().map(|l| l as u32).collect();
                    exchange.runs = leaf_runs(&leaves);
                }
                self.exchange_next(shared, out);
            }
            Response::LeafObjects { entries, next } if !exchange.runs.is_empty() => {
                exchange.theirs.extend(entries);
                if let Some(after) = next {
                    let (leaf, last_leaf) = exchange.runs[0];
                    let request = Request::LeafObjects {
                        partition: exchange.partition,
                        leaf,
                        last_leaf,
                        after: Some(after),
                    };
                    let peer = exchange.peer.clone();
                    exchange.tally.bytes_sent += wire_bytes(&request);
                    let timeout = shared.params.request_timeout_us;
                    self.send_request(
                        &peer,
                        None,
                        request,
                        Some((Purpose::Exchange(id), timeout)),
                        shared,
                        out,
                    );
                    return;
                }
                let run = exchange.runs.remove(0);
                let theirs = std::mem::take(&mut exchange.theirs);
                let (partition, peer) = (exchange.partition, exchange.peer.clone());
                let (merged, pushed) =
                    self.reconcile_run(partition, run, &peer, theirs, shared, out);
                if let Some(exchange) = self.exchange.as_mut() {
                    exchange.tally.merged_here += merged;
                    exchange.tally.pushed += pushed;
                }
                self.exchange_next(shared, out);
            }
            _ => self.exchange_ended(None, shared, out),
        }
    }

    /// One differing leaf run: the peer's objects merged here where they
    /// add something, and ours it lacks pushed to it; how many keys were
    /// merged here and pushed.
    fn reconcile_run(
        &mut self,
        partition: PartitionId,
        run: (u32, u32),
        peer: &str,
        theirs: BTreeMap<ObjectKey, Object>,
        shared: &Shared,
        out: &mut Ready,
    ) -> (u64, u64) {
        let mut ours = BTreeMap::new();
        let mut after = None;
        let (mut merged, mut pushed) = (0, 0);
        loop {
            let Ok((entries, next)) = self.leaf_run(partition, run, after) else {
                return (merged, pushed);
            };
            ours.extend(entries);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        for (key, object) in &theirs {
            if ours.get(key).is_some_and(|o| o.includes(object)) || !shared.holds(&self.name, key) {
                continue;
            }
            if self.current(key).is_some_and(|c| !c.includes(object))
                && self.store_merged(key, object, shared)
            {
                merged += 1;
            }
        }
        let lacking: Vec<(ObjectKey, Object)> = ours
            .into_iter()
            .filter(|(key, object)| !theirs.get(key).is_some_and(|t| t.includes(object)))
            // A bucket with fewer replicas than the partition's widest is
            // not pushed to the ones it does not have.
            .filter(|(key, _)| shared.holds(peer, key))
            .collect();
        for chunk in lacking.chunks(REPLICATE_BATCH_MAX) {
            pushed += chunk.len() as u64;
            let request = Request::ReplicateMany {
                entries: chunk.to_vec(),
            };
            self.send_request(peer, None, request, None, shared, out);
        }
        (merged, pushed)
    }

    /// Answers [`Request::MerkleHashes`] from the durable tree.
    fn answer_hashes(
        &mut self,
        partition: PartitionId,
        tree: TreeId,
        nodes: &[NodeId],
    ) -> Response {
        if nodes.len() > MERKLE_NODES_MAX {
            return Response::error(ErrorKind::InvalidInput, "too many tree nodes asked for");
        }
        let leaves = self.store.leaves(partition, tree);
        match self.failed(leaves).and_then(MerkleTree::from_leaves) {
            Some(tree) => Response::MerkleHashes(merkle::answer(&tree, nodes)),
            None => Response::error(ErrorKind::Internal, "no Merkle tree for the partition"),
        }
    }

    /// One page of the durable objects of a leaf run, and where the next
    /// page starts.
    #[allow(clippy::type_complexity)]
    fn leaf_run(
        &self,
        partition: PartitionId,
        (leaf, last_leaf): (u32, u32),
        after: Option<Vec<u8>>,
    ) -> Result<(Vec<(ObjectKey, Object)>, Option<Vec<u8>>), String> {
        if leaf > last_leaf || last_leaf as usize >= LEAVES {
            return Err(format!("leaves {leaf}..={last_leaf} are not in the tree"));
        }
        let page = self
            .store
            .leaf_page(
                partition,
                (leaf, last_leaf),
                after.as_deref(),
                LEAF_PAGE_ENTRIES,
                LEAF_PAGE_BYTES,
            )
            .map_err(|e| e.to_string())?;
        let entries = page
            .entries
            .into_iter()
            .filter_map(|(k, o, _)| ObjectKey::from_storage_key(&k).map(|k| (k, o)))
            .collect();
        Ok((entries, page.next))
    }

    /// The members tombstone collection asks: every node of the cluster
    /// state that has not left or been removed.
    fn collection_members(&self, shared: &Shared) -> Vec<String> {
        shared
            .cluster
            .members
            .iter()
            .filter(|(_, e)| !matches!(e.status, MemberStatus::Left | MemberStatus::Removed))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// One page of a tombstone sweep ([`SWEEP_PAGE`] durable objects): each
    /// tombstone-only object is observed by the tracker (checked after the
    /// grace period, one more where this node is not the key's first
    /// replica). True when the sweep ended with this page; a check round
    /// starts then if some are due and none is running.
    fn tombstone_sweep(&mut self, shared: &Shared, out: &mut Ready) -> bool {
        let grace = Duration::from_micros(shared.params.tombstone_grace_us);
        let settle = Duration::from_micros(shared.params.request_timeout_us * 2).max(grace);
        let mut tracker = self
            .tombstones
            .take()
            .unwrap_or_else(|| Tracker::new(grace, settle, TOMBSTONES_TRACKED_MAX));
        let after = match self.sweep_cursor.take() {
            Some(after) => after,
            None => {
                tracker.begin_sweep();
                None
            }
        };
        let page = match self.store.object_page(after.as_deref(), SWEEP_PAGE) {
            Ok(page) => page,
            Err(e) => {
                // Tried again from the start at the next sweep.
                self.storage_error = Some(e.to_string());
                self.tombstones = Some(tracker);
                return true;
            }
        };
        let last = (page.len() == SWEEP_PAGE)
            .then(|| page.last().map(|(raw, _)| raw.clone()))
            .flatten();
        for (raw, object) in page {
            let Some(key) = ObjectKey::from_storage_key(&raw) else {
                continue;
            };
            let first = shared.home(&key).first().is_some_and(|f| *f == self.name);
            let extra = if first { Duration::ZERO } else { grace };
            tracker.observe(&raw, &object, self.now, extra);
        }
        if let Some(last) = last {
            self.sweep_cursor = Some(Some(last));
            self.tombstones = Some(tracker);
            return false;
        }
        tracker.end_sweep();
        let due = tracker.due(self.now, TOMBSTONE_BATCH_MAX);
        self.tombstones = Some(tracker);
        if due.is_empty() || self.tombstone_round.is_some() {
            return true;
        }
        let entries: Vec<(ObjectKey, Object)> = due
            .into_iter()
            .filter_map(|(raw, t)| ObjectKey::from_storage_key(&raw).map(|k| (k, t)))
            .collect();
        let members = self.collection_members(shared);
        let id = self.local_id();
        let mut round = TombstoneRound {
            id,
            entries: entries.clone(),
            members: members.clone(),
            answers: BTreeMap::new(),
            waiting: BTreeSet::new(),
        };
        if let Some(own) = self.holdings(&entries) {
            round.answers.insert(self.name.clone(), own);
        }
        let timeout = shared.params.request_timeout_us;
        let me = self.name.clone();
        for member in members.iter().filter(|m| **m != me) {
            round.waiting.insert(member.clone());
            let request = Request::TombstoneCheck {
                entries: entries.clone(),
            };
            self.send_request(
                member,
                None,
                request,
                Some((Purpose::TombstoneCheck(id), timeout)),
                shared,
                out,
            );
        }
        self.tombstone_round = Some(round);
        self.on_holdings(id, &self.name.clone(), None, shared, out);
        true
    }

    /// What this node holds for each key compared with its tombstone (its
    /// object and hints as it sees them, written or not yet durable).
    fn holdings(&mut self, entries: &[(ObjectKey, Object)]) -> Option<Vec<Holding>> {
        let mut holdings = Vec::with_capacity(entries.len());
        for (key, tombstone) in entries {
            let own = self.current(key)?;
            let own = (!own.siblings().is_empty()).then_some(own);
            let hints = self.holds_hints(key)?;
            holdings.push(holding(own.as_ref(), hints, tombstone));
        }
        Some(holdings)
    }

    /// Whether any hint for `key` is held, durable or not.
    fn holds_hints(&mut self, key: &ObjectKey) -> Option<bool> {
        let pending = self
            .hints_pending
            .iter()
            .any(|((_, k), (_, v))| k == key && v.is_some());
        let read = self.store.hints_of_key(&key.storage_key());
        let durable = self.failed(read)?;
        let deleted_pending = |owner: &str| {
            self.hints_pending
                .get(&(owner.to_string(), key.clone()))
                .is_some_and(|(_, v)| v.is_none())
        };
        Some(pending || durable.iter().any(|(h, _)| !deleted_pending(&h.owner)))
    }

    /// A member's answer to a check round (`None`: it failed or did not
    /// answer); when every member answered, decides each key: members that
    /// are behind get the tombstone, keys whose second check passed are
    /// dropped on every member, this node last.
    fn on_holdings(
        &mut self,
        id: u64,
        member: &str,
        holdings: Option<Vec<Holding>>,
        shared: &Shared,
        out: &mut Ready,
    ) {
        let Some(round) = self.tombstone_round.as_mut().filter(|r| r.id == id) else {
            return;
        };
        round.waiting.remove(member);
        if let Some(h) = holdings.filter(|h| h.len() == round.entries.len()) {
            round.answers.insert(member.to_string(), h);
        }
        if !round.waiting.is_empty() {
            return;
        }
        let Some(round) = self.tombstone_round.take() else {
            return;
        };
        let Some(mut tracker) = self.tombstones.take() else {
            return;
        };
        let mut to_drop = Vec::new();
        for (i, (key, tombstone)) in round.entries.iter().enumerate() {
            let answers: BTreeMap<String, Option<Holding>> = round
                .members
                .iter()
                .map(|m| (m.clone(), round.answers.get(m).map(|h| h[i])))
                .collect();
            let verdict = decide(&round.members, &answers);
            if let Verdict::Repair(behind) = &verdict {
                for member in behind {
                    if *member == self.name {
                        self.store_merged(key, tombstone, shared);
                    } else {
                        let request = Request::Replicate {
                            key: key.clone(),
                            object: tombstone.clone(),
                            hint_for: None,
                        };
                        self.send_request(member, None, request, None, shared, out);
                    }
                }
            }
            if tracker.on_check(&key.storage_key(), &verdict, self.now) == Action::Drop {
                to_drop.push((key.clone(), tombstone.clone()));
            }
        }
        self.tombstones = Some(tracker);
        if to_drop.is_empty() {
            return;
        }
        for chunk in to_drop.chunks(TOMBSTONE_BATCH_MAX) {
            let me = self.name.clone();
            for member in round.members.iter().filter(|m| **m != me) {
                let request = Request::TombstoneDrop {
                    entries: chunk.to_vec(),
                };
                self.send_request(member, None, request, None, shared, out);
            }
        }
        out.counts.tombstones_collected += to_drop.len() as u64;
        self.drop_tombstones(&to_drop, shared, out);
        out.collected.extend(to_drop);
    }

    /// Drops each key whose object is still exactly the given tombstone and
    /// for which no hint is held, after a new incarnation in the same batch
    /// (this node forgets its counters for the keys it drops, so no dot it
    /// mints later may repeat one minted before: a client still holding a
    /// context from before the delete would supersede the new write
    /// unseen). Returns how many it dropped.
    fn drop_tombstones(
        &mut self,
        entries: &[(ObjectKey, Object)],
        shared: &Shared,
        out: &mut Ready,
    ) -> u32 {
        let mut doomed = Vec::new();
        for (key, tombstone) in entries {
            if !is_collectable(tombstone) || self.holds_hints(key) != Some(false) {
                continue;
            }
            if self.current(key).as_ref() == Some(tombstone) {
                doomed.push(key.clone());
            }
        }
        if doomed.is_empty() {
            return 0;
        }
        if shared.params.bug != Some(Bug::KeepIncarnationAfterCollection) {
            self.renew_incarnation(out);
        }
        for key in &doomed {
            self.delete_object(key);
        }
        doomed.len() as u32
    }
}

/// The encoded size of a message (what an exchange sends and receives).
fn wire_bytes(message: &impl serde::Serialize) -> u64 {
    postcard::to_allocvec(message).map_or(0, |b| b.len() as u64)
}

/// Answers node `from`'s request `id` now.
fn respond(out: &mut Ready, from: usize, id: ReqId, response: Response) {
    out.sends.push((
        Addr::Node(from),
        Payload::Response {
            id,
            response,
            minted: None,
        },
    ));
}

/// Judges an owner-table step a node just took from `before` as a node
/// knowing the same would judge it by gossip.
fn judge_own_step(before: &ClusterState, after: &ClusterState, n: usize, out: &mut Ready) {
    if let Some(table) = &after.owners {
        if let Err(why) = before.admit_owners(table, n) {
            out.refused_tables.push(why);
        }
    }
}

fn reply_get(reply: ReplyTo, outcome: ClientOutcome, out: &mut Ready) {
    match reply {
        ReplyTo::Client { client, op } => {
            out.sends
                .push((Addr::Client(client), Payload::ClientReply { op, outcome }));
        }
        ReplyTo::Node { .. } => {}
    }
}

fn reply_put(state: &PutState, result: Result<(), ErrorReply>, out: &mut Ready) {
    reply_put_to(
        state.reply,
        result.map(|()| state.object.context().clone()),
        Some(state.dot.clone()),
        out,
    );
}

/// A put's shortfall: `acks` of `needed`, in one sentence.
fn write_shortfall(message: String, acks: usize, needed: usize) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Unavailable,
        message,
        acks: acks.min(255) as u8,
        needed: needed.min(255) as u8,
    }
}

/// A client's R or W must not exceed the replicas its key's bucket keeps:
/// such a quorum could never be met.
fn quorum_fits(
    key: &ObjectKey,
    quorum: usize,
    what: &str,
    shared: &Shared,
) -> Result<(), ErrorReply> {
    let n = shared.n_of(key);
    if quorum <= n {
        return Ok(());
    }
    Err(ErrorReply {
        kind: ErrorKind::InvalidInput,
        message: format!(
            "{what} = {quorum} is more than the {n} replicas a key of bucket {} has",
            key.bucket
        ),
        acks: 0,
        needed: 0,
    })
}

fn internal(message: &str) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Internal,
        message: message.to_string(),
        acks: 0,
        needed: 0,
    }
}

fn reply_put_to(
    reply: ReplyTo,
    result: Result<VersionVector, ErrorReply>,
    dot: Option<Dot>,
    out: &mut Ready,
) {
    match reply {
        ReplyTo::Client { client, op } => {
            let outcome = match (result, dot) {
                (Ok(context), Some(dot)) => ClientOutcome::Written {
                    dot: Some(dot),
                    context,
                },
                (Ok(_), None) => ClientOutcome::Failed(internal("no dot minted")),
                (Err(e), _) => ClientOutcome::Failed(e),
            };
            out.sends
                .push((Addr::Client(client), Payload::ClientReply { op, outcome }));
        }
        ReplyTo::Node { node, id } => {
            let (response, minted) = match result {
                Ok(context) => (Response::Written { context }, dot),
                Err(e) => (Response::Error(e), None),
            };
            out.sends.push((
                Addr::Node(node),
                Payload::Response {
                    id,
                    response,
                    minted,
                },
            ));
        }
    }
}
