//! `dynamo merkle`, `dynamo merkle diff` and `dynamo repair`: the Merkle
//! trees of every replica set, where two replicas differ, and anti-entropy
//! on demand (DESIGN.md §2, CLI.md "Inspection and repair").
//!
//! Every node answers for the partitions it is a home replica of; a
//! partition's replicas agree when their roots are equal. `repair` asks each
//! node (or the named one) to run anti-entropy partition by partition, with
//! progress on stderr when it is a terminal, and repeats until every replica
//! set in scope agrees (at most [`REPAIR_ROUNDS_MAX`] rounds).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dynamo::client::Client;
use dynamo::core::clock::Object;
use dynamo::core::key::ObjectKey;
use dynamo::core::merkle::{Digest, MerkleTree, TreeId, DEFAULT_TREE, DEPTH};
use dynamo::core::message::PartitionRoot;
use dynamo::home::Home;
use dynamo::storage::MerkleLayout;
use serde::Serialize;

use crate::args::{MerkleArgs, MerkleCommand, MerkleDiffArgs, RepairArgs};
use crate::devcluster::DevCluster;
use crate::{exit, output, up};

/// Most rounds `repair` makes before giving up on agreement.
pub const REPAIR_ROUNDS_MAX: u32 = 5;
/// How often `repair` redraws its progress line.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The members of the cluster, or only `node` (checked).
fn scope(cluster: &DevCluster, node: &Option<String>) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = cluster
        .manifest()
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    match node {
        Some(n) if !names.contains(n) => Err(exit::no_node(n, &names)),
        Some(n) => Ok(vec![n.clone()]),
        None => Ok(names),
    }
}

/// The home replicas of a partition, as the client's ring says.
fn replicas(client: &Client, p: u32) -> Vec<String> {
    client
        .ring()
        .preference_list(p, client.manifest().replicas)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// One partition's roots per replica: its default tree (the keys of
/// buckets with the cluster's N), and one row per other N a bucket has.
#[derive(Debug, Serialize)]
struct PartitionRow {
    partition: u32,
    roots: BTreeMap<String, String>,
    /// Every tree of the partition agrees.
    agree: bool,
    /// Replicas that did not answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<String>,
    /// The trees of buckets with their own N, each kept by that bucket's
    /// first N replicas.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trees: Vec<TreeRow>,
}

/// One tree of a partition, other than the default, across its replicas.
#[derive(Debug, Serialize)]
struct TreeRow {
    /// The N of the buckets whose keys it holds.
    n: u8,
    roots: BTreeMap<String, String>,
    agree: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<String>,
}

/// The roots `replicas` answered from `answers`, those that did not, and
/// whether they agree.
fn compare(
    replicas: &[String],
    answers: &BTreeMap<String, BTreeMap<(u32, TreeId), Digest>>,
    slot: (u32, TreeId),
) -> (BTreeMap<String, String>, Vec<String>, bool) {
    let mut roots = BTreeMap::new();
    let mut missing = Vec::new();
    for h in replicas {
        match answers.get(h).and_then(|m| m.get(&slot)) {
            Some(root) => {
                roots.insert(h.clone(), hex(root));
            }
            None => missing.push(h.clone()),
        }
    }
    let agree = roots.values().collect::<BTreeSet<_>>().len() <= 1 && missing.is_empty();
    (roots, missing, agree)
}

/// Asks every member for its roots; partitions where one of `focus` is a
/// home replica.
async fn roots(
    client: &Arc<Client>,
    members: &[String],
    focus: &[String],
) -> anyhow::Result<Vec<PartitionRow>> {
    let mut calls = tokio::task::JoinSet::new();
    for name in members {
        let (client, name) = (Arc::clone(client), name.clone());
        calls.spawn(async move {
            let answer = client.merkle_roots(&name, None).await;
            (name, answer)
        });
    }
    let mut by_node: BTreeMap<String, BTreeMap<(u32, TreeId), Digest>> = BTreeMap::new();
    // The other trees of each partition, with the replicas that keep them
    // (as the answering nodes see the ring).
    let mut others: BTreeMap<u32, BTreeMap<TreeId, Vec<String>>> = BTreeMap::new();
    while let Some(joined) = calls.join_next().await {
        let (name, answer) = joined?;
        match answer {
            Ok(list) => {
                let mut mine = BTreeMap::new();
                for r in list {
                    if r.tree != DEFAULT_TREE {
                        others
                            .entry(r.partition)
                            .or_default()
                            .entry(r.tree)
                            .or_insert(r.replicas);
                    }
                    mine.insert((r.partition, r.tree), r.root);
                }
                by_node.insert(name, mine);
            }
            Err(e) => output::note(format!("{name} did not answer: {e}")),
        }
    }
    let mut rows = Vec::new();
    for p in 0..client.ring().partitions() {
        let homes = replicas(client, p);
        let extra = others.remove(&p).unwrap_or_default();
        let in_focus = |list: &[String]| list.iter().any(|h| focus.contains(h));
        if !in_focus(&homes) && !extra.values().any(|l| in_focus(l)) {
            continue;
        }
        let (roots, missing, agree) = compare(&homes, &by_node, (p, DEFAULT_TREE));
        let trees: Vec<TreeRow> = extra
            .into_iter()
            .map(|(n, list)| {
                let (roots, missing, agree) = compare(&list, &by_node, (p, n));
                TreeRow {
                    n,
                    roots,
                    agree,
                    missing,
                }
            })
            .collect();
        rows.push(PartitionRow {
            partition: p,
            roots,
            agree: agree && trees.iter().all(|t| t.agree),
            missing,
            trees,
        });
    }
    Ok(rows)
}

/// `dynamo merkle` and `dynamo merkle diff`.
pub async fn merkle(home: &Home, args: &MerkleArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let client = up::connect_running(&cluster)?;
    if let Some(MerkleCommand::Diff(diff_args)) = &args.command {
        return diff(&cluster, &client, diff_args).await;
    }
    let focus = scope(&cluster, &args.node)?;
    if let Some(p) = args.partition {
        return one_tree(&client, p, &focus, args.json).await;
    }
    let members = scope(&cluster, &None)?;
    let rows = roots(&client, &members, &focus).await?;
    if args.json {
        output::print_json(&serde_json::json!({ "partitions": rows }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(["partition", "replicas and roots", "agree"]);
    for row in &rows {
        let mut cells: Vec<String> = row
            .roots
            .iter()
            .map(|(n, r)| format!("{n} {}", &r[..12]))
            .collect();
        cells.extend(row.missing.iter().map(|n| format!("{n} ?")));
        for tree in &row.trees {
            cells.push(format!("| N={}:", tree.n));
            cells.extend(tree.roots.iter().map(|(n, r)| format!("{n} {}", &r[..12])));
            cells.extend(tree.missing.iter().map(|n| format!("{n} ?")));
        }
        table.add_row(vec![
            row.partition.to_string(),
            cells.join("  "),
            if row.agree { "yes" } else { "NO" }.to_string(),
        ]);
    }
    output::print_table(&table)?;
    let diverging = rows.iter().filter(|r| !r.agree).count();
    output::print(format!(
        "{} partitions, {diverging} with replicas that differ",
        rows.len()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Each replica's whole tree of one partition, by asking for its leaves.
async fn trees(
    client: &Client,
    p: u32,
    homes: &[String],
) -> anyhow::Result<BTreeMap<String, MerkleTree>> {
    let mut out = BTreeMap::new();
    for h in homes {
        let answer: Vec<PartitionRoot> = client.merkle_roots(h, Some(p)).await?;
        let leaves = answer
            .into_iter()
            .find(|r| r.tree == DEFAULT_TREE)
            .and_then(|r| r.leaves)
            .ok_or_else(|| exit::error(format!("{h} sent no leaves of partition {p}")))?;
        let tree = MerkleTree::from_leaves(leaves)
            .ok_or_else(|| exit::error(format!("{h} sent a tree of the wrong shape")))?;
        out.insert(h.clone(), tree);
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
struct LevelRow {
    level: u32,
    nodes: u32,
    /// Indices of nodes where the replicas' hashes differ.
    differing: Vec<u32>,
}

/// `dynamo merkle --partition P`: that partition's tree level by level.
async fn one_tree(
    client: &Client,
    p: u32,
    focus: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    if p >= client.ring().partitions() {
        return Err(exit::usage(format!(
            "no partition {p}: the ring has {}",
            client.ring().partitions()
        )));
    }
    // Every home replica is shown (with `--node`, the named one among them).
    let shown: Vec<String> = replicas(client, p);
    if focus.len() == 1 && !shown.contains(&focus[0]) {
        return Err(exit::usage(format!(
            "{} is not a home replica of partition {p} ({})",
            focus[0],
            shown.join(", ")
        )));
    }
    let trees = trees(client, p, &shown).await?;
    let mut levels = Vec::new();
    for level in 0..=DEPTH {
        let width = 1u32 << level;
        let differing: Vec<u32> = (0..width)
            .filter(|&i| {
                let hashes: BTreeSet<&Digest> = trees
                    .values()
                    .filter_map(|t| t.level(level).get(i as usize))
                    .collect();
                hashes.len() > 1
            })
            .collect();
        levels.push(LevelRow {
            level,
            nodes: width,
            differing,
        });
    }
    let roots: BTreeMap<&String, String> = trees.iter().map(|(n, t)| (n, hex(&t.root()))).collect();
    let agree = roots.values().collect::<BTreeSet<_>>().len() <= 1;
    if json {
        output::print_json(&serde_json::json!({
            "partition": p,
            "replicas": shown,
            "roots": roots,
            "agree": agree,
            "levels": levels,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    output::print(format!(
        "partition {p}: replicas {}; {}",
        shown.join(", "),
        if agree { "roots agree" } else { "roots DIFFER" }
    ))?;
    for row in &levels {
        let mut line = format!(
            "level {:>2} ({:>4} nodes): {} differing",
            row.level,
            row.nodes,
            row.differing.len()
        );
        if !row.differing.is_empty() {
            let list: Vec<String> = row.differing.iter().take(16).map(u32::to_string).collect();
            let more = row.differing.len().saturating_sub(16);
            line.push_str(&format!(
                " [{}{}]",
                list.join(" "),
                if more > 0 {
                    format!(" +{more}")
                } else {
                    String::new()
                }
            ));
        }
        output::print(line)?;
        if row.level <= 2 || !row.differing.is_empty() && row.differing.len() <= 4 {
            let indices: Vec<u32> = if row.level <= 2 {
                (0..row.nodes).collect()
            } else {
                row.differing.clone()
            };
            for i in indices {
                let hashes: Vec<String> = trees
                    .iter()
                    .map(|(n, t)| {
                        let h = t
                            .level(row.level)
                            .get(i as usize)
                            .map_or(String::new(), hex);
                        format!("{n} {}", &h[..h.len().min(12)])
                    })
                    .collect();
                output::print(format!("    [{i}] {}", hashes.join("  ")))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct DiffKey {
    bucket: String,
    key: String,
    /// `only_left`, `only_right` or `different`.
    state: &'static str,
}

#[derive(Debug, Serialize)]
struct DiffLeaf {
    partition: u32,
    leaf: u32,
    /// First and last ring position of the leaf, hex.
    range: [String; 2],
    keys: Vec<DiffKey>,
}

/// `dynamo merkle diff A B`: differing leaves and keys between two replicas.
async fn diff(
    cluster: &DevCluster,
    client: &Client,
    args: &MerkleDiffArgs,
) -> anyhow::Result<ExitCode> {
    scope(cluster, &Some(args.left.clone()))?;
    scope(cluster, &Some(args.right.clone()))?;
    if args.left == args.right {
        return Err(exit::usage("name two different nodes"));
    }
    let layout = MerkleLayout::new(client.ring().partitions())
        .ok_or_else(|| exit::error("the ring's partition count is not a power of two"))?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p >= client.ring().partitions() => {
            return Err(exit::usage(format!("no partition {p}")))
        }
        Some(p) => vec![p],
        None => (0..client.ring().partitions()).collect(),
    };
    let pair = [args.left.clone(), args.right.clone()];
    let mut leaves_out = Vec::new();
    let mut shared = 0;
    for p in partitions {
        let homes = replicas(client, p);
        if !pair.iter().all(|n| homes.contains(n)) && args.partition.is_none() {
            continue;
        }
        shared += 1;
        let trees = trees(client, p, &pair).await?;
        let (a, b) = (&trees[&pair[0]], &trees[&pair[1]]);
        if a.root() == b.root() {
            continue;
        }
        for leaf in 0..a.leaves().len() {
            if a.leaves()[leaf] == b.leaves()[leaf] {
                continue;
            }
            let leaf = leaf as u32;
            let left: BTreeMap<ObjectKey, Object> = client
                .leaf_objects(&pair[0], p, leaf)
                .await?
                .into_iter()
                .collect();
            let right: BTreeMap<ObjectKey, Object> = client
                .leaf_objects(&pair[1], p, leaf)
                .await?
                .into_iter()
                .collect();
            let names: BTreeSet<&ObjectKey> = left.keys().chain(right.keys()).collect();
            let mut keys = Vec::new();
            for k in names {
                let state = match (left.get(k), right.get(k)) {
                    (Some(x), Some(y)) if x == y => continue,
                    (Some(_), Some(_)) => "different",
                    (Some(_), None) => "only_left",
                    _ => "only_right",
                };
                keys.push(DiffKey {
                    bucket: k.bucket.clone(),
                    key: k.display_key(),
                    state,
                });
            }
            let (first, last) = layout.leaf_range(p, leaf);
            leaves_out.push(DiffLeaf {
                partition: p,
                leaf,
                range: [format!("{first:016x}"), format!("{last:016x}")],
                keys,
            });
        }
    }
    let key_count: usize = leaves_out.iter().map(|l| l.keys.len()).sum();
    if args.json {
        output::print_json(&serde_json::json!({
            "left": pair[0],
            "right": pair[1],
            "partitions_compared": shared,
            "leaves": leaves_out,
            "differing_keys": key_count,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for l in &leaves_out {
        output::print(format!(
            "partition {} leaf {} (ring {}..{}):",
            l.partition, l.leaf, l.range[0], l.range[1]
        ))?;
        for k in &l.keys {
            let what = match k.state {
                "only_left" => format!("only on {}", pair[0]),
                "only_right" => format!("only on {}", pair[1]),
                _ => "different versions".to_string(),
            };
            output::print(format!("  {}/{}: {what}", k.bucket, k.key))?;
        }
    }
    output::print(format!(
        "{} and {}: {shared} shared partitions compared, {} differing leaves, {key_count} differing keys",
        pair[0],
        pair[1],
        leaves_out.len()
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct RepairSummary {
    partitions_checked: usize,
    keys_repaired: BTreeMap<String, u64>,
    diverging_after: usize,
    rounds: u32,
    hashes: u64,
    bytes_sent: u64,
    bytes_received: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<String>,
}

/// `dynamo repair`.
pub async fn repair(home: &Home, args: &RepairArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let client = up::connect_running(&cluster)?;
    let members = scope(&cluster, &None)?;
    let drivers = scope(&cluster, &args.node)?;
    let mut summary = RepairSummary {
        partitions_checked: 0,
        keys_repaired: members.iter().map(|m| (m.clone(), 0)).collect(),
        diverging_after: 0,
        rounds: 0,
        hashes: 0,
        bytes_sent: 0,
        bytes_received: 0,
        failed: Vec::new(),
    };
    let focus = drivers.clone();
    loop {
        summary.rounds += 1;
        // One node after the other, partition by partition (one request
        // each), so a key is repaired once, by the first exchange that finds
        // it, and counted once; a shared counter feeds the progress line.
        let done = Arc::new(AtomicUsize::new(0));
        let mut plan = Vec::new();
        for name in &drivers {
            let mine: Vec<u32> = (0..client.ring().partitions())
                .filter(|&p| replicas(&client, p).contains(name))
                .collect();
            plan.push((name.clone(), mine));
        }
        let work: usize = plan.iter().map(|(_, m)| m.len()).sum();
        let mut calls = tokio::task::JoinSet::new();
        {
            let (client, done) = (Arc::clone(&client), Arc::clone(&done));
            calls.spawn(async move {
                let mut out = Vec::new();
                for (name, mine) in plan {
                    let mut reports = Vec::new();
                    let mut failure = None;
                    for p in mine {
                        let answer = client.repair(&name, vec![p]).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        match answer {
                            Ok(r) => reports.push(r),
                            Err(e) => {
                                failure = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    out.push((name, reports, failure));
                }
                out
            });
        }
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        let mut results = Vec::new();
        loop {
            tokio::select! {
                joined = calls.join_next() => match joined {
                    Some(r) => results.extend(r?),
                    None => break,
                },
                _ = ticker.tick() => {
                    if output::stderr_is_terminal() {
                        eprint!("\rrepair round {}: {}/{work} partition exchanges", summary.rounds, done.load(Ordering::Relaxed));
                    }
                }
            }
        }
        if output::stderr_is_terminal() {
            eprintln!(
                "\rrepair round {}: {work}/{work} partition exchanges",
                summary.rounds
            );
        }
        for (name, reports, failure) in results {
            if let Some(f) = failure {
                output::note(format!("{name}: {f}"));
                if !summary.failed.contains(&name) {
                    summary.failed.push(name.clone());
                }
            }
            for r in reports {
                summary.hashes += r.hashes;
                summary.bytes_sent += r.bytes_sent;
                summary.bytes_received += r.bytes_received;
                for (node, n) in r.repaired {
                    *summary.keys_repaired.entry(node).or_default() += n;
                }
            }
        }
        let rows = roots(&client, &members, &focus).await?;
        summary.partitions_checked = rows.len();
        summary.diverging_after = rows.iter().filter(|r| !r.agree).count();
        if summary.diverging_after == 0 || summary.rounds >= REPAIR_ROUNDS_MAX {
            break;
        }
        output::note(format!(
            "{} partitions still differ; another round",
            summary.diverging_after
        ));
    }
    if args.json {
        output::print_json(&summary)?;
    } else {
        let repaired: Vec<String> = summary
            .keys_repaired
            .iter()
            .map(|(n, k)| format!("{n} {k}"))
            .collect();
        output::print(format!(
            "{} partitions checked in {} round(s); keys repaired: {}; {} hashes, {} bytes sent, {} bytes received; {} partitions diverging after",
            summary.partitions_checked,
            summary.rounds,
            repaired.join(", "),
            summary.hashes,
            summary.bytes_sent,
            summary.bytes_received,
            summary.diverging_after
        ))?;
    }
    if summary.diverging_after > 0 {
        return Err(exit::error(format!(
            "{} partitions still differ after {} rounds",
            summary.diverging_after, summary.rounds
        )));
    }
    Ok(ExitCode::SUCCESS)
}
