//! The one message enum: every request a client or a peer can send a node,
//! and every answer (DESIGN.md §4; toydb's habit of one message file).
//!
//! Requests are tagged with who may send them: `Get`, `Put`, `Status`,
//! `Explain`, the fault-injection requests `Partition` and `Heal` and the
//! admin requests `MerkleRoots`, `Repair` and `Leave` need the client
//! certificate; `Coordinate`, `Replicate`, `Read`, `Ping`, `MerkleHashes`
//! and the tombstone checks need a node certificate; `LeafObjects`
//! (anti-entropy, `merkle diff`) and `Gossip` either (a client's gossip
//! only reads the state: the node does not merge it).
//! [`Request::allowed_from`] is the check. The transport wraps
//! each message in a frame with a request id; the enum itself is the
//! versioned wire format (the version is in the ALPN string).

use serde::{Deserialize, Serialize};

use crate::core::clock::{Object, VersionVector, WriteId};
use crate::core::explain::Explanation;
use crate::core::key::ObjectKey;
use crate::core::membership::ClusterState;
use crate::core::merkle::{Digest, NodeId, TreeId};
use crate::core::tombstone::Holding;

/// Who is on the other end of a connection, proven by its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The cluster's client (operator) certificate.
    Client,
    /// A node certificate of this cluster.
    Node,
}

/// A put as the client asked for it, forwarded unchanged to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    /// What to write.
    pub key: ObjectKey,
    /// What the client had seen (empty: a blind write that adds a sibling).
    pub context: VersionVector,
    /// The value; `None` writes a tombstone.
    pub value: Option<Vec<u8>>,
    /// Acknowledgements to wait for; the cluster's W when absent.
    pub w: Option<u8>,
    /// The client's id of this user write; every retry of the put carries
    /// the same one, so copies of it are known to be one write.
    pub write_id: Option<WriteId>,
    /// The client has no other node left to try: coordinate even when this
    /// node expects not to reach W replicas (see [`ErrorKind::CannotReach`]).
    pub last_resort: bool,
}

/// A request to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Client: read a key from R replicas.
    Get {
        /// The key.
        key: ObjectKey,
        /// Replies to wait for; the cluster's R when absent.
        r: Option<u8>,
        /// Ask the replicas even when this node expects not to reach R.
        last_resort: bool,
    },
    /// Client: write a key; any node accepts it and forwards it to a coordinator.
    Put(PutRequest),
    /// Client: how this node is doing.
    Status,
    /// Node → node: coordinate this put (the receiver mints the dot).
    Coordinate(PutRequest),
    /// Node → node: merge this object into your replica, or, with
    /// `hint_for`, keep it as a hint for that home replica (sloppy quorum)
    /// until it can be handed off.
    Replicate {
        /// The key.
        key: ObjectKey,
        /// The coordinator's object after the put.
        object: Object,
        /// The unreachable home replica this fallback stands in for.
        hint_for: Option<String>,
    },
    /// Node → node: send your replica of this key (a fallback answers with
    /// the merge of its replica and the hints it holds for the key).
    Read {
        /// The key.
        key: ObjectKey,
    },
    /// Node → node: a heartbeat of the failure detector; answered `Pong`.
    Ping,
    /// Client: like `Get`, but answer with how the answer came about.
    Explain {
        /// The key.
        key: ObjectKey,
        /// Replies to wait for; the cluster's R when absent.
        r: Option<u8>,
        /// Ask the replicas even when this node expects not to reach R.
        last_resort: bool,
    },
    /// Client (operator): cut the network into these groups of node names
    /// (fault injection); node traffic between groups is dropped both ways.
    Partition {
        /// Node names, each in exactly one group.
        groups: Vec<Vec<String>>,
    },
    /// Client (operator): end any partition.
    Heal,
    /// Node → node: for each (key, tombstone), what do you hold for the key
    /// compared with this tombstone (tombstone collection); answered
    /// `Holdings` in the same order.
    TombstoneCheck {
        /// Keys with the collector's tombstone-only object, at most
        /// [`TOMBSTONE_BATCH_MAX`](crate::core::tombstone::TOMBSTONE_BATCH_MAX).
        entries: Vec<(ObjectKey, Object)>,
    },
    /// Node → node: drop each key whose object is still exactly the given
    /// tombstone and for which you hold no hint; answered `Dropped`.
    TombstoneDrop {
        /// Keys with the tombstone to compare with, at most
        /// [`TOMBSTONE_BATCH_MAX`](crate::core::tombstone::TOMBSTONE_BATCH_MAX).
        entries: Vec<(ObjectKey, Object)>,
    },
    /// Node → node (anti-entropy): the hashes of these nodes of your Merkle
    /// tree `tree` of this partition (at most [`MERKLE_NODES_MAX`]).
    MerkleHashes {
        /// The partition.
        partition: u32,
        /// Which of its trees ([`TreeId`]: the keys of one replica count).
        tree: TreeId,
        /// The tree nodes asked for.
        nodes: Vec<NodeId>,
    },
    /// Node → node (anti-entropy), or client (`merkle diff`): one page of the
    /// objects in the Merkle leaves `leaf..=last_leaf` of a partition (a run
    /// of neighbouring leaves is contiguous on the ring), after the storage
    /// key `after`.
    LeafObjects {
        /// The partition.
        partition: u32,
        /// The first leaf (`0..1024`).
        leaf: u32,
        /// The last leaf, `leaf..1024`.
        last_leaf: u32,
        /// Where the previous page ended.
        after: Option<Vec<u8>>,
    },
    /// Client (operator): Merkle roots of the partitions this node is a home
    /// replica of; with `partition`, only that one, with its leaves.
    MerkleRoots {
        /// Only this partition (and its 1 024 leaves).
        partition: Option<u32>,
    },
    /// Client (operator): run anti-entropy now with the other home replicas
    /// of these partitions (every partition this node replicates when empty).
    Repair {
        /// The partitions.
        partitions: Vec<u32>,
    },
    /// Node → node (anti-entropy, handover): merge each object into this
    /// replica, like one `Replicate` (no hint) per entry; at most
    /// [`REPLICATE_BATCH_MAX`] entries. Answered `Replicated` once all are
    /// stored.
    ReplicateMany {
        /// The objects, each with its key.
        entries: Vec<(ObjectKey, Object)>,
    },
    /// Gossip: the sender's cluster state; the answer is the receiver's
    /// state after merging it. A client sends an empty state to read it.
    Gossip(Box<ClusterState>),
    /// Asks the receiving node to leave the cluster: it hands its
    /// partitions away, then marks itself left (`dynamo leave`).
    Leave,
    /// Asks the receiving node to remove `node`, a member that is down for
    /// good: the others take its partitions from the surviving replicas
    /// (`dynamo leave --force`).
    Remove {
        /// The member to remove.
        node: String,
    },
    /// Client: the settings of the default bucket and of every bucket with
    /// its own ([`Response::Buckets`]).
    Buckets,
    /// Client (operator): give a bucket its own N, R and W. The edge checks
    /// them (and that a bucket holding keys keeps its N) before the node
    /// takes them into its cluster state, which gossip spreads.
    SetBucket {
        /// The bucket.
        bucket: String,
        /// Replicas per key.
        n: u8,
        /// Replies a get waits for.
        r: u8,
        /// Acknowledgements a put waits for.
        w: u8,
    },
    /// Client: one page of a bucket's live keys across the cluster, in
    /// storage order, after `after` ([`Response::Keys`]).
    Keys {
        /// The bucket.
        bucket: String,
        /// The last key of the previous page.
        after: Option<Vec<u8>>,
        /// Most keys to answer (at most [`KEYS_PAGE_MAX`]).
        limit: u32,
    },
    /// Node → node (or client): up to `limit` keys of a bucket this node
    /// holds, after `after`, in order, from these partitions (all when
    /// `None`); keys holding only tombstones too with `deleted`
    /// ([`Response::KeyPage`]).
    KeyPage {
        /// The bucket.
        bucket: String,
        /// Where the previous page ended.
        after: Option<Vec<u8>>,
        /// Most keys to answer (at most [`KEYS_PAGE_MAX`]).
        limit: u32,
        /// Only keys of these partitions.
        partitions: Option<Vec<u32>>,
        /// Tombstone-only keys too.
        deleted: bool,
    },
}

/// Most keys one [`Request::Keys`] or [`Request::KeyPage`] answers.
pub const KEYS_PAGE_MAX: u32 = 10_000;

/// A bucket's settings as [`Response::Buckets`] gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketView {
    /// The bucket.
    pub name: String,
    /// Replicas per key.
    pub n: u8,
    /// Replies a get waits for.
    pub r: u8,
    /// Acknowledgements a put waits for.
    pub w: u8,
}

impl BucketView {
    /// Bucket `name`'s settings in a [`Response::Buckets`] list: its own,
    /// else the default bucket's (the list's first: the cluster's).
    pub fn of(list: &[BucketView], name: &str) -> BucketView {
        let found = list
            .iter()
            .find(|b| b.name == name)
            .or_else(|| list.first());
        BucketView {
            name: name.to_string(),
            n: found.map_or(0, |b| b.n),
            r: found.map_or(0, |b| b.r),
            w: found.map_or(0, |b| b.w),
        }
    }
}

/// Most objects one [`Request::ReplicateMany`] may carry.
pub const REPLICATE_BATCH_MAX: usize = 256;

/// Most tree nodes one [`Request::MerkleHashes`] may ask for (a whole level
/// of leaves).
pub const MERKLE_NODES_MAX: usize = crate::core::merkle::LEAVES;

/// One tree of one partition at one replica ([`Response::MerkleRoots`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRoot {
    /// The partition.
    pub partition: u32,
    /// Which of its trees ([`TreeId`]).
    pub tree: TreeId,
    /// The replicas that keep this tree (the first N of the preference
    /// list for the tree's N), as this node sees the ring.
    pub replicas: Vec<String>,
    /// This node's root.
    pub root: Digest,
    /// This node's leaves, when one partition was asked for.
    pub leaves: Option<Vec<Digest>>,
}

/// What one node's anti-entropy run did ([`Response::Repaired`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Partitions compared (each with every reachable other home replica).
    pub partitions_checked: u32,
    /// Exchanges made (one per partition and peer).
    pub exchanges: u32,
    /// Keys changed, per node: merged here (this node's name) or pushed to a peer.
    pub repaired: std::collections::BTreeMap<String, u64>,
    /// Hashes asked for and received.
    pub hashes: u64,
    /// Bytes of the requests sent (encoded messages).
    pub bytes_sent: u64,
    /// Bytes of the answers received.
    pub bytes_received: u64,
    /// Peers skipped as unreachable or cut off by a partition.
    pub skipped: Vec<String>,
}

impl Request {
    /// Whether a peer with this role may send this request.
    pub fn allowed_from(&self, role: Role) -> bool {
        match self {
            Request::Get { .. }
            | Request::Put(_)
            | Request::Explain { .. }
            | Request::Partition { .. }
            | Request::Heal
            | Request::MerkleRoots { .. }
            | Request::Repair { .. }
            | Request::Leave
            | Request::Remove { .. }
            | Request::SetBucket { .. }
            | Request::Keys { .. } => role == Role::Client,
            Request::Coordinate(_)
            | Request::Replicate { .. }
            | Request::Read { .. }
            | Request::Ping
            | Request::MerkleHashes { .. }
            | Request::TombstoneCheck { .. }
            | Request::TombstoneDrop { .. }
            | Request::ReplicateMany { .. } => role == Role::Node,
            // A node asks every node for its status (`GET /status`), its
            // bucket settings (waiting for new ones to spread) and pages of
            // keys (listing).
            Request::LeafObjects { .. }
            | Request::Gossip(_)
            | Request::Status
            | Request::Buckets
            | Request::KeyPage { .. } => true,
        }
    }
}

/// What a node reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Its name.
    pub name: String,
    /// Where it serves the HTTPS API, if it does.
    pub http: Option<String>,
    /// Fingerprint of the ring it uses.
    pub ring_fingerprint: u64,
    /// Partitions it owns.
    pub partitions: u32,
    /// Objects in its store.
    pub keys: u64,
    /// Hints it holds for other nodes.
    pub hints: u64,
    /// Its current replica incarnation.
    pub incarnation: u64,
    /// Peers this node currently considers unreachable (its own view).
    pub unreachable: Vec<String>,
    /// Hints it holds for nodes that are no longer members.
    pub orphan_hints: u64,
    /// Read repairs it has sent since it started.
    pub read_repairs: u64,
    /// Hints it has handed off since it started.
    pub hints_delivered: u64,
    /// The partition groups in force at this node (empty: none).
    pub partition: Vec<Vec<String>>,
    /// Objects holding only tombstones, as of the last collection sweep.
    pub tombstones: u64,
    /// Tombstones this node dropped since it started.
    pub tombstones_collected: u64,
    /// Its membership status: joining, up, leaving or left.
    pub member: String,
    /// The version of the owner table it uses.
    pub owners_version: u64,
    /// Partitions it must pull for the membership change in progress, and
    /// how many of them it has pulled (0 and 0 when none).
    pub incoming_total: u32,
    /// See `incoming_total`.
    pub incoming_done: u32,
    /// Partitions it holds data of but no longer replicates (being handed
    /// over to their replicas).
    pub handover_partitions: u32,
    /// CPU time its process has used since it started (user + system),
    /// microseconds: `dynamo bench` divides the cluster's growth by the
    /// operations it made.
    pub cpu_micros: u64,
    /// UDP datagrams its connections sent since it started.
    pub datagrams_sent: u64,
    /// UDP datagrams its connections received since it started.
    pub datagrams_received: u64,
}

/// What kind of failure an error answer reports; the caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request is invalid (too large, bad key); retrying will not help.
    InvalidInput,
    /// The quorum could not be met. For a put, the write may be stored on
    /// the replicas that acknowledged it.
    Unavailable,
    /// This node refused to coordinate: its failure detector and partition
    /// view count fewer reachable replicas of the key than the quorum needs.
    /// Nothing was stored; another node may succeed.
    CannotReach,
    /// The sender's certificate does not allow this request.
    Forbidden,
    /// The node failed (storage); try another node.
    Internal,
    /// The request contradicts what is stored (a bucket that holds keys
    /// keeps its N); retrying will not help until that changes.
    Conflict,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What kind.
    pub kind: ErrorKind,
    /// One sentence for a person.
    pub message: String,
    /// For `Unavailable`: acknowledgements or replies received.
    pub acks: u8,
    /// For `Unavailable`: how many were needed.
    pub needed: u8,
}

/// An answer from a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A get's merged object (empty when the key was never written).
    Object(Object),
    /// A put succeeded; the new object's context.
    Written {
        /// The context after the write.
        context: VersionVector,
    },
    /// A node's status (boxed: the largest answer, kept off the enum's size).
    Status(Box<NodeReport>),
    /// A replica took the object.
    Replicated,
    /// A replica's object, `None` when it has none.
    Replica(Option<Object>),
    /// Answer to a heartbeat.
    Pong,
    /// An admin request was carried out.
    Done,
    /// A get's answer with how it came about.
    Explained(Box<Explanation>),
    /// The request failed.
    Error(ErrorReply),
    /// What this node holds for each key of a `TombstoneCheck`.
    Holdings(Vec<Holding>),
    /// How many keys a `TombstoneDrop` dropped.
    Dropped(u32),
    /// The hashes of the asked Merkle tree nodes.
    MerkleHashes(Vec<(NodeId, Digest)>),
    /// One page of a Merkle leaf's objects.
    LeafObjects {
        /// Keys and objects, in ring order.
        entries: Vec<(ObjectKey, Object)>,
        /// Ask again with this as `after` for the next page; `None`: done.
        next: Option<Vec<u8>>,
    },
    /// Merkle roots per partition.
    MerkleRoots(Vec<PartitionRoot>),
    /// What an anti-entropy run did.
    Repaired(RepairReport),
    /// The answer to [`Request::Gossip`].
    Gossip(Box<ClusterState>),
    /// Bucket settings: the default bucket first, then every bucket with
    /// its own (or just the one asked for).
    Buckets(Vec<BucketView>),
    /// One page of a bucket's live keys across the cluster.
    Keys {
        /// The keys, in storage order.
        keys: Vec<Vec<u8>>,
        /// Ask again with this as `after`; `None`: that was the last page.
        next: Option<Vec<u8>>,
    },
    /// One node's page of a bucket's keys.
    KeyPage {
        /// The keys, in storage order.
        keys: Vec<Vec<u8>>,
        /// Every key of the bucket up to this one was considered; `None`:
        /// the node holds no more of the bucket.
        scanned_to: Option<Vec<u8>>,
    },
}

impl Response {
    /// An error answer of this kind.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response::Error(ErrorReply {
            kind,
            message: message.into(),
            acks: 0,
            needed: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_requests_need_the_right_certificate() {
        for peer_only in [
            Request::MerkleHashes {
                partition: 0,
                tree: 0,
                nodes: vec![NodeId::ROOT],
            },
            Request::ReplicateMany { entries: vec![] },
        ] {
            assert!(peer_only.allowed_from(Role::Node));
            assert!(!peer_only.allowed_from(Role::Client), "{peer_only:?}");
        }
        for admin in [
            Request::MerkleRoots { partition: None },
            Request::Repair { partitions: vec![] },
            Request::Leave,
        ] {
            assert!(admin.allowed_from(Role::Client));
            assert!(!admin.allowed_from(Role::Node), "{admin:?}");
        }
        let leaf = Request::LeafObjects {
            partition: 0,
            leaf: 0,
            last_leaf: 0,
            after: None,
        };
        assert!(leaf.allowed_from(Role::Node) && leaf.allowed_from(Role::Client));
        let gossip = Request::Gossip(Box::default());
        assert!(gossip.allowed_from(Role::Node) && gossip.allowed_from(Role::Client));
    }
}
