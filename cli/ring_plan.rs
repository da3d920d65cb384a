//! `dynamo ring plan (--add K | --remove NODE)`: what a membership change
//! would do, before doing it (issue 4 item 6). The plan is the core's
//! ([`dynamo::core::ring_plan`]): the same one `add-node` and `leave` carry
//! out. Shown: the partitions whose owner changes (from, to), ownership per
//! node afterwards, the paper's load-balance measure (fraction of members
//! whose replica load is 15% or more off the mean, and max/mean) before and
//! after, and how much data would move.
//!
//! Data moves per replica, not per owner: when a partition changes owner,
//! the preference lists of it and of its N-1 predecessors change, and every
//! node that newly appears in a partition's preference list must receive
//! that partition's keys. `replica_transfers` counts those (partition, node)
//! pairs. The bytes (and keys) to move are an ESTIMATE: the cluster's data
//! (the size of the nodes' data files on this machine; keys as the running
//! nodes report them) spread evenly over the Q × N partition replicas, times
//! the transfers. The nodes keep no per-partition byte counts yet.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use dynamo::core::ring::Ring;
use dynamo::core::ring_plan::{balance, ownership, plan_add, plan_remove, Move};
use dynamo::home::Home;
use serde::Serialize;

use crate::args::RingPlanArgs;
use crate::devcluster::DevCluster;
use crate::{exit, output, up};

/// How long a node may take to report its key count.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The load-balance measure of one ring.
#[derive(Debug, Serialize)]
struct BalanceJson {
    /// Fraction of members whose replica load is 15% or more off the mean.
    out_of_balance: f64,
    /// Largest replica load over the mean.
    max_over_mean: f64,
}

impl BalanceJson {
    fn of(ring: &Ring, n: usize) -> Self {
        let (out_of_balance, max_over_mean) = balance(ring, n);
        Self {
            out_of_balance,
            max_over_mean,
        }
    }
}

/// `dynamo ring plan --json`.
#[derive(Debug, Serialize)]
struct PlanJson {
    /// Nodes the change adds (named n6, n7, ...: the next free names).
    added: Vec<String>,
    /// The node the change removes.
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<String>,
    moves: Vec<Move>,
    ownership_before: BTreeMap<String, usize>,
    ownership_after: BTreeMap<String, usize>,
    balance_before: BalanceJson,
    balance_after: BalanceJson,
    /// (partition, node) pairs where a node must receive a partition's keys.
    replica_transfers: usize,
    /// Estimated bytes to move (see `bytes_estimated`).
    bytes_to_move: u64,
    /// Always true for now: bytes are the data files' size spread evenly
    /// over the partition replicas, not counted per partition.
    bytes_estimated: bool,
    /// Estimated keys to move; absent when no node answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    keys_to_move: Option<u64>,
}

/// The next `k` free node names after the members' (`n6`, `n7`, ... for n1-n5).
pub fn next_names(members: &[String], k: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(k);
    let mut i = members.len() + 1;
    while names.len() < k {
        let name = format!("n{i}");
        if !members.contains(&name) {
            names.push(name);
        }
        i += 1;
    }
    names
}

/// (partition, node) pairs in `after` that were not in `before`'s
/// preference lists: each is one partition replica to copy.
fn replica_transfers(before: &Ring, after: &Ring, n: usize) -> usize {
    (0..after.partitions())
        .map(|p| {
            let old = before.preference_list(p, n);
            after
                .preference_list(p, n)
                .into_iter()
                .filter(|m| !old.contains(m))
                .count()
        })
        .sum()
}

/// `dynamo ring plan`.
pub async fn plan(
    home: &Home,
    ring: &Ring,
    n: usize,
    args: &RingPlanArgs,
) -> anyhow::Result<ExitCode> {
    let members = ring.members().to_vec();
    let q = ring.partitions() as usize;
    let mut after = ring.clone();
    let mut moves: Vec<Move> = Vec::new();
    let mut added = Vec::new();
    let mut removed = None;
    match (args.add, &args.remove) {
        (Some(k), None) => {
            if k == 0 {
                return Err(exit::usage("--add needs at least 1 node"));
            }
            if members.len() + k > q {
                return Err(exit::usage(format!(
                    "cannot add {k} nodes: {} members would exceed the {q} partitions",
                    members.len() + k
                )));
            }
            added = next_names(&members, k);
            for name in &added {
                let step = plan_add(&after, name, n).map_err(|e| exit::usage(e.to_string()))?;
                moves.extend(step.moves);
                after = step.after;
            }
        }
        (None, Some(node)) => {
            if !members.contains(node) {
                return Err(exit::no_node(node, &members));
            }
            let step = plan_remove(ring, node, n).map_err(|e| exit::usage(e.to_string()))?;
            moves = step.moves;
            after = step.after;
            removed = Some(node.clone());
        }
        _ => return Err(exit::usage("give exactly one of --add K or --remove NODE")),
    }
    // A partition moved twice (over several adds) shows once, first owner to last.
    let mut net: BTreeMap<u32, Move> = BTreeMap::new();
    for m in moves {
        net.entry(m.partition)
            .and_modify(|e| e.to = m.to.clone())
            .or_insert(m);
    }
    let moves: Vec<Move> = net.into_values().filter(|m| m.from != m.to).collect();

    let transfers = replica_transfers(ring, &after, n);
    let replicas_total = (q * n.min(members.len()).max(1)) as u64;
    let data_bytes: u64 = members
        .iter()
        .filter_map(|m| std::fs::metadata(home.node_data_dir(m).join("data.redb")).ok())
        .map(|meta| meta.len())
        .sum();
    let bytes_to_move = data_bytes / replicas_total * transfers as u64;
    let keys_to_move = cluster_keys(home)
        .await
        .map(|keys| keys * transfers as u64 / replicas_total);

    let doc = PlanJson {
        added,
        removed,
        moves,
        ownership_before: ownership(ring),
        ownership_after: ownership(&after),
        balance_before: BalanceJson::of(ring, n),
        balance_after: BalanceJson::of(&after, n),
        replica_transfers: transfers,
        bytes_to_move,
        bytes_estimated: true,
        keys_to_move,
    };
    if args.json {
        output::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(["partition", "from", "to"]);
    for m in &doc.moves {
        table.add_row(vec![m.partition.to_string(), m.from.clone(), m.to.clone()]);
    }
    output::print(format!("{} partitions move:", doc.moves.len()))?;
    output::print_table(&table)?;
    let mut owners = output::table(["node", "partitions now", "partitions after"]);
    let mut names: Vec<&String> = doc.ownership_after.keys().collect();
    for m in doc.ownership_before.keys() {
        if !names.contains(&m) {
            names.push(m);
        }
    }
    names.sort_by_key(|m| (m.len(), m.to_string()));
    for m in names {
        let count = |map: &BTreeMap<String, usize>| {
            map.get(m)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into())
        };
        owners.add_row(vec![
            m.clone(),
            count(&doc.ownership_before),
            count(&doc.ownership_after),
        ]);
    }
    output::print_table(&owners)?;
    output::print(format!(
        "balance (members 15%+ off the mean replica load; max/mean): before {:.0}%, {:.2}; after {:.0}%, {:.2}",
        doc.balance_before.out_of_balance * 100.0,
        doc.balance_before.max_over_mean,
        doc.balance_after.out_of_balance * 100.0,
        doc.balance_after.max_over_mean,
    ))?;
    let keys = doc
        .keys_to_move
        .map(|k| format!(", about {k} keys"))
        .unwrap_or_default();
    output::print(format!(
        "data to move: {} partition replicas, about {} bytes{keys} (an estimate: the data spread evenly over the {} partition replicas)",
        doc.replica_transfers, doc.bytes_to_move, replicas_total
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The sum of the keys the running nodes report (each key counted once per
/// replica that holds it); `None` when no node answers.
async fn cluster_keys(home: &Home) -> Option<u64> {
    let cluster = DevCluster::open(home).ok()?;
    let client = up::connect(&cluster).ok()?;
    let mut queries = tokio::task::JoinSet::new();
    for member in &cluster.manifest().nodes {
        if cluster.running(&member.name).is_none() {
            continue;
        }
        let client = client.clone();
        let name = member.name.clone();
        queries.spawn(async move {
            tokio::time::timeout(STATUS_TIMEOUT, client.status(&name))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|s| s.report.keys)
        });
    }
    let mut total = None;
    while let Some(joined) = queries.join_next().await {
        if let Ok(Some(keys)) = joined {
            *total.get_or_insert(0) += keys;
        }
    }
    total
}
