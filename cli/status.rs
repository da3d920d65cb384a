//! `dynamo status`: every node of the cluster with its address, state,
//! partitions, keys (tombstones included), tombstones not yet collected and
//! pending hints. Nodes are asked in parallel; one
//! that does not answer is `down`, or `unreachable` when its process is
//! running on this machine. `state` is this client's view; each node's own
//! failure-detector view is shown beside it: `unreachable_peers` (the peers
//! that node cannot reach) and `unreachable_from` (the answering nodes that
//! cannot reach it), so a partition shows as views, not as `down`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use dynamo::client::{Client, ClientError, NodeStatus};
use dynamo::home::Home;
use dynamo::report::{NodeRow, StatusJson};

use crate::args::StatusArgs;
use crate::devcluster::{udp_port_bound, DevCluster};
use crate::output;
use crate::{exit, up};

/// How long a node may take to answer `status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node whose process runs on this machine may take: a busy
/// machine can starve a live node for a moment, and calling it unreachable
/// then would be wrong (a frozen node costs this much once).
const RUNNING_STATUS_TIMEOUT: Duration = Duration::from_secs(6);

/// `dynamo status`.
pub async fn status(home: &Home, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let client = up::connect(&cluster)?;
    let (answers, refusal) = ask_all(&cluster, &client).await;
    let mut nodes = Vec::with_capacity(answers.len());
    for (member, answer) in cluster.manifest().nodes.iter().zip(answers) {
        // An answering node says where it is in its life (joining, up,
        // leaving, left); one that does not answer is down or unreachable.
        let state = match cluster.running(&member.name) {
            Some(_) => "unreachable",
            None => "down",
        };
        let mut row = NodeRow::new(
            &member.name,
            member.addr.to_string(),
            state,
            answer.as_ref().map(|s| &s.report),
        );
        row.http = row.http.or(member.http.map(|a| a.to_string()));
        nodes.push(row);
    }
    if nodes
        .iter()
        .all(|n| n.state == "down" || n.state == "unreachable")
    {
        // Nodes that refuse our certificate are running: say that, not "down".
        if let Some(refusal) = refusal {
            return Err(refusal.into());
        }
        let root = home.root().display();
        if nodes.iter().any(|n| n.state == "unreachable") {
            return Err(exit::unavailable(format!(
                "no node of the cluster at {root} answers although some are running; \
                 see `dynamo logs NODE`"
            )));
        }
        return Err(exit::not_running(home.root()));
    }
    let report = StatusJson::new(nodes);
    if args.json {
        output::print_json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks every node for its status at once; `None` for those that do not
/// answer. Also returns the first refusal of our certificate, if any.
async fn ask_all(
    cluster: &DevCluster,
    client: &Arc<Client>,
) -> (Vec<Option<NodeStatus>>, Option<ClientError>) {
    let mut queries = tokio::task::JoinSet::new();
    for (index, member) in cluster.manifest().nodes.iter().enumerate() {
        // A loopback port nobody has bound cannot answer: don't wait for it.
        if member.addr.ip().is_loopback() && udp_port_bound(member.addr.port()) == Some(false) {
            continue;
        }
        let client = Arc::clone(client);
        let name = member.name.clone();
        let timeout = if cluster.running(&member.name).is_some() {
            RUNNING_STATUS_TIMEOUT
        } else {
            STATUS_TIMEOUT
        };
        queries.spawn(async move {
            let answer = tokio::time::timeout(timeout, ask_until_answered(&client, &name)).await;
            (index, answer.ok())
        });
    }
    let mut answers = vec![None; cluster.manifest().nodes.len()];
    let mut refusal = None;
    while let Some(joined) = queries.join_next().await {
        match joined {
            Ok((index, Some(Ok(status)))) => answers[index] = Some(status),
            Ok((
                _,
                Some(Err(
                    e @ (ClientError::Refused(_)
                    | ClientError::Untrusted(_)
                    | ClientError::Forbidden { .. }),
                )),
            )) => {
                refusal.get_or_insert(e);
            }
            _ => {}
        }
    }
    (answers, refusal)
}

/// Asks one node for its status, asking again after a failure that is not a
/// refusal (a connection attempt can time out on a starved machine); the
/// caller bounds the whole with its timeout.
async fn ask_until_answered(client: &Client, name: &str) -> Result<NodeStatus, ClientError> {
    loop {
        match client.status(name).await {
            Err(ClientError::NotRunning { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

fn print_table(report: &StatusJson) -> anyhow::Result<()> {
    let count = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let mut table = output::table([
        "node",
        "address",
        "https",
        "state",
        "partitions",
        "keys",
        "tombstones",
        "hints",
        "cannot reach (its view)",
    ]);
    for node in &report.nodes {
        let view = match &node.unreachable_peers {
            None => "-".to_string(),
            Some(v) if v.is_empty() => "none".to_string(),
            Some(v) => v.join(", "),
        };
        table.add_row(vec![
            comfy_table::Cell::new(&node.name),
            comfy_table::Cell::new(&node.addr),
            comfy_table::Cell::new(node.http.as_deref().unwrap_or("-")),
            output::state_cell(&node.state),
            comfy_table::Cell::new(count(node.partitions.map(|p| p as u64))),
            comfy_table::Cell::new(count(node.keys)),
            comfy_table::Cell::new(count(node.tombstones)),
            comfy_table::Cell::new(count(node.hints)),
            comfy_table::Cell::new(view),
        ]);
    }
    output::print_table(&table)?;
    for node in &report.nodes {
        if let Some(t) = &node.incoming {
            output::note(format!(
                "{} is pulling partitions for a membership change: {}/{} done",
                node.name, t.done, t.total
            ));
        }
        if let Some(h) = node.handover_partitions.filter(|&h| h > 0) {
            output::note(format!(
                "{} is handing {h} partitions over to their new replicas",
                node.name
            ));
        }
    }
    let orphans: u64 = report.nodes.iter().filter_map(|n| n.orphan_hints).sum();
    if orphans > 0 {
        output::note(format!(
            "{orphans} hints are kept for nodes that are no longer members"
        ));
    }
    let partitioned: Vec<String> = report
        .nodes
        .iter()
        .filter_map(|n| n.partition.as_ref())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.iter()
                .map(|g| g.join(","))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    if let Some(p) = partitioned.first() {
        output::note(format!(
            "the network is partitioned: {p} (end it with `dynamo heal`)"
        ));
    }
    Ok(())
}
