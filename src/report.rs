//! The JSON documents the CLI prints and the HTTP API serves (CLI.md's
//! `--json` shapes, HTTP.md's bodies): one definition each, so `dynamo get
//! --json` and `GET /buckets/{b}/keys/{k}` cannot drift apart, nor `dynamo
//! status --json` and `GET /status`, nor `dynamo ring --json` and `GET
//! /ring`.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;

use crate::core::clock::{Object, Sibling};
use crate::core::message::NodeReport;
use crate::core::ring::Ring;

/// One sibling of a read.
#[derive(Debug, Clone, Serialize)]
pub struct SiblingJson {
    /// The value as text when it is UTF-8.
    pub value: Option<String>,
    /// The value's bytes, base64.
    pub value_base64: String,
    /// Its vector clock, by node.
    pub clock: BTreeMap<String, u64>,
    /// Whether it is a tombstone.
    pub deleted: bool,
    /// The event that wrote it.
    pub dot: DotJson,
    /// What its writer had seen.
    pub seen: BTreeMap<String, u64>,
}

/// A sibling's dot.
#[derive(Debug, Clone, Serialize)]
pub struct DotJson {
    /// The node that minted it.
    pub node: String,
    /// That node's incarnation, hex.
    pub incarnation: String,
    /// The counter.
    pub counter: u64,
}

/// A read: `dynamo get --json`, and the JSON body of a key's GET.
#[derive(Debug, Clone, Serialize)]
pub struct GetJson {
    /// The bucket.
    pub bucket: String,
    /// The key (lossy UTF-8).
    pub key: String,
    /// The context token for the next write.
    pub context: String,
    /// Every version a person sees.
    pub siblings: Vec<SiblingJson>,
}

/// A sibling as JSON.
pub fn sibling_json(s: &Sibling) -> SiblingJson {
    let bytes = s.value.as_deref().unwrap_or_default();
    SiblingJson {
        value: s
            .value
            .as_ref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string),
        value_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        clock: s.clock().display_map(),
        deleted: s.is_tombstone(),
        dot: DotJson {
            node: s.dot.replica.node.clone(),
            incarnation: format!("{:016x}", s.dot.replica.incarnation),
            counter: s.dot.counter,
        },
        seen: s.past.display_map(),
    }
}

/// The siblings a person sees: every live one, plus tombstones when they
/// conflict with live values; nothing when the key is missing or deleted.
/// Copies of one retried write are one version (`Object::versions`).
pub fn shown_siblings(object: &Object) -> Vec<&Sibling> {
    if object.is_deleted() {
        Vec::new()
    } else {
        object.versions()
    }
}

/// One partition in `dynamo ring --json`.
#[derive(Debug, Serialize)]
pub struct PartitionJson {
    /// The partition.
    pub partition: u32,
    /// Its first ring position, hex.
    pub start: String,
    /// Its last ring position, hex.
    pub end: String,
    /// Its owner.
    pub owner: String,
    /// Its first N distinct owners clockwise.
    pub preference_list: Vec<String>,
}

/// One node in `dynamo ring --json`.
#[derive(Debug, Serialize)]
pub struct RingNodeJson {
    /// Partitions it owns.
    pub partitions: usize,
}

/// `dynamo ring --json` and `GET /ring`.
#[derive(Debug, Serialize)]
pub struct RingJson {
    /// The document's version.
    pub version: u64,
    /// The ring's fingerprint, hex.
    pub fingerprint: String,
    /// Q.
    pub partitions: u32,
    /// N.
    pub replicas: usize,
    /// Every partition.
    pub ring: Vec<PartitionJson>,
    /// Every member.
    pub nodes: BTreeMap<String, RingNodeJson>,
}

/// The ring as JSON, with preference lists of `n` replicas.
pub fn ring_json(ring: &Ring, n: usize) -> RingJson {
    let list = |p: u32| {
        ring.preference_list(p, n)
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let partitions = (0..ring.partitions())
        .map(|p| {
            let (start, end) = ring.range(p);
            PartitionJson {
                partition: p,
                start: format!("{start:#018x}"),
                end: format!("{end:#018x}"),
                owner: ring.owner(p).to_string(),
                preference_list: list(p),
            }
        })
        .collect();
    let nodes = ring
        .members()
        .iter()
        .map(|m| {
            let json = RingNodeJson {
                partitions: ring.owned_by(m),
            };
            (m.clone(), json)
        })
        .collect();
    RingJson {
        version: 1,
        fingerprint: format!("{:016x}", ring.fingerprint()),
        partitions: ring.partitions(),
        replicas: n,
        ring: partitions,
        nodes,
    }
}

/// One node in `dynamo status --json` (CLI.md) and `GET /status`; the
/// counts and views are left out when it did not answer (so
/// `n.get("hints", 0)` sums cleanly).
#[derive(Debug, Serialize)]
pub struct NodeRow {
    /// Its name.
    pub name: String,
    /// Its QUIC address.
    pub addr: String,
    /// Its HTTPS address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// up, down, unreachable, joining, leaving, left.
    pub state: String,
    /// Partitions it owns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Objects it holds (tombstones included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// Hints it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hints: Option<u64>,
    /// Keys holding only tombstones (deleted, not yet collected), as of the
    /// node's last collection sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<u64>,
    /// Tombstones it collected since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstones_collected: Option<u64>,
    /// Peers this node considers unreachable (its own view; absent when it
    /// did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_peers: Option<Vec<String>>,
    /// Answering nodes that consider this node unreachable.
    pub unreachable_from: Vec<String>,
    /// Hints it holds for nodes no longer in the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphan_hints: Option<u64>,
    /// Hints it handed off since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hints_delivered: Option<u64>,
    /// Read repairs it sent since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_repairs: Option<u64>,
    /// The partition groups in force at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Vec<Vec<String>>>,
    /// The owner-table version it routes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners_version: Option<u64>,
    /// Partitions it is pulling for a membership change: total and done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming: Option<Transfer>,
    /// Partitions it holds but no longer replicates (being handed over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handover_partitions: Option<u32>,
}

/// Progress of a node's pulls.
#[derive(Debug, Serialize)]
pub struct Transfer {
    /// Partitions to pull.
    pub total: u32,
    /// Partitions pulled.
    pub done: u32,
}

/// `dynamo status --json` and `GET /status`.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    /// Every member.
    pub nodes: Vec<NodeRow>,
}

impl NodeRow {
    /// A member's row: its report when it answered, else `state` (down or
    /// unreachable) and nothing else.
    pub fn new(name: &str, addr: String, state: &str, report: Option<&NodeReport>) -> NodeRow {
        NodeRow {
            name: name.to_string(),
            addr,
            http: report.and_then(|r| r.http.clone()),
            state: report.map_or(state.to_string(), |r| r.member.clone()),
            partitions: report.map(|r| r.partitions),
            keys: report.map(|r| r.keys),
            hints: report.map(|r| r.hints),
            tombstones: report.map(|r| r.tombstones),
            tombstones_collected: report.map(|r| r.tombstones_collected),
            unreachable_peers: report.map(|r| r.unreachable.clone()),
            unreachable_from: Vec::new(),
            orphan_hints: report.map(|r| r.orphan_hints),
            hints_delivered: report.map(|r| r.hints_delivered),
            read_repairs: report.map(|r| r.read_repairs),
            partition: report.map(|r| r.partition.clone()),
            owners_version: report.map(|r| r.owners_version),
            incoming: report.filter(|r| r.incoming_total > 0).map(|r| Transfer {
                total: r.incoming_total,
                done: r.incoming_done,
            }),
            handover_partitions: report.map(|r| r.handover_partitions),
        }
    }
}

impl StatusJson {
    /// The rows, each told which answering nodes cannot reach it.
    pub fn new(mut nodes: Vec<NodeRow>) -> StatusJson {
        let views: Vec<(String, Vec<String>)> = nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), n.unreachable_peers.clone()?)))
            .collect();
        for node in &mut nodes {
            node.unreachable_from = views
                .iter()
                .filter(|(_, view)| view.contains(&node.name))
                .map(|(who, _)| who.clone())
                .collect();
        }
        StatusJson { nodes }
    }
}
