//! Faults on purpose: `dynamo kill` (crash a node), `stop` (graceful),
//! `start` (bring it back with its data), and `partition` / `heal`.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dynamo::home::Home;

use crate::args::{NodeName, PartitionArgs};
use crate::devcluster::{DevCluster, Stopped, STOP_TIMEOUT};
use crate::output;
use crate::{exit, up};

/// How long a node may take to answer `partition` or `heal`.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `start` waits for the node to serve.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// `dynamo kill NODE`: SIGKILL, as a crash would.
pub async fn kill(home: &Home, args: &NodeName) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let pid = tokio::task::block_in_place(|| cluster.kill(&args.node))?;
    output::print(format!("killed {} (pid {pid})", args.node))?;
    Ok(ExitCode::SUCCESS)
}

/// `dynamo stop NODE`: SIGTERM, then SIGKILL if it does not exit in time.
pub async fn stop(home: &Home, args: &NodeName) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let started = Instant::now();
    let (pid, how) = tokio::task::block_in_place(|| cluster.stop(&args.node))?;
    let seconds = started.elapsed().as_secs_f64();
    match how {
        Stopped::Gracefully => output::print(format!(
            "stopped {} (pid {pid}) in {seconds:.2}s",
            args.node
        ))?,
        Stopped::Killed => output::print(format!(
            "killed {} (pid {pid}): it did not stop within {}s",
            args.node,
            STOP_TIMEOUT.as_secs()
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `dynamo start NODE`: starts a stopped node with its data and waits
/// until it serves.
pub async fn start(home: &Home, args: &NodeName) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let name = &args.node;
    cluster.check_node(name)?;
    if let Some(pid) = cluster.running(name) {
        return Err(exit::error(format!(
            "node {name} is already running (pid {pid})"
        )));
    }
    let started = Instant::now();
    let client = up::connect(&cluster)?;
    let mut spawned = vec![cluster.start(name)?];
    let pid = spawned[0].pid();
    let names = [name.clone()];
    if let Err(e) = cluster
        .wait_serving(&client, &names, &mut spawned, START_TIMEOUT)
        .await
    {
        if cluster.running(name).is_some() {
            let _ = tokio::task::block_in_place(|| cluster.stop(name));
        }
        return Err(e.into());
    }
    output::print(format!(
        "started {name} (pid {pid}), serving after {:.2}s",
        started.elapsed().as_secs_f64()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `dynamo partition`: checks the groups, then tells every running node
/// to drop node traffic with the nodes outside its group. A node that is
/// not running is skipped (and said so): it starts with the network whole.
pub async fn partition(home: &Home, args: &PartitionArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let groups = partition_groups(&cluster, args)?;
    let told = tell_all(&cluster, groups.clone()).await?;
    let shown: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
    output::print(format!(
        "partitioned into {} (told {})",
        shown.join(" | "),
        told.join(", ")
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `dynamo heal`: tells every running node to end any partition.
pub async fn heal(home: &Home) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let told = tell_all(&cluster, Vec::new()).await?;
    output::print(format!("healed the network (told {})", told.join(", ")))?;
    Ok(ExitCode::SUCCESS)
}

/// Sends the partition (empty: heal) to every running node at once.
/// Returns the nodes that took it; fails when a running node refused it or
/// none took it.
async fn tell_all(cluster: &DevCluster, groups: Vec<Vec<String>>) -> anyhow::Result<Vec<String>> {
    let client = up::connect(cluster)?;
    let mut calls = tokio::task::JoinSet::new();
    for name in cluster.names() {
        if cluster.running(&name).is_none() {
            output::note(format!(
                "{name} is not running; it will start with the network whole"
            ));
            continue;
        }
        let client = client.clone();
        let groups = groups.clone();
        calls.spawn(async move {
            let result = tokio::time::timeout(ADMIN_TIMEOUT, client.partition(&name, groups)).await;
            (name, result)
        });
    }
    let mut told = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((name, Ok(Ok(())))) => told.push(name),
            Ok((name, Ok(Err(e)))) => failures.push(format!("{name}: {e}")),
            Ok((name, Err(_))) => failures.push(format!("{name}: no answer")),
            Err(e) => failures.push(format!("internal error: {e}")),
        }
    }
    told.sort();
    failures.sort();
    if !failures.is_empty() {
        return Err(exit::error(format!(
            "not every running node took it ({}); run the command again",
            failures.join("; ")
        )));
    }
    if told.is_empty() {
        return Err(exit::unavailable(
            "no node of the cluster is running; start it with `dynamo up`",
        ));
    }
    Ok(told)
}

/// The groups a `partition` command names, checked: known nodes, each in
/// exactly one group (a node left out of every group is refused, naming
/// it: say where it goes), at least two non-empty groups. `--isolate NODE`
/// means that node against all the others.
pub fn partition_groups(
    cluster: &DevCluster,
    args: &PartitionArgs,
) -> anyhow::Result<Vec<Vec<String>>> {
    if let Some(node) = &args.isolate {
        cluster.check_node(node)?;
        let rest: Vec<String> = cluster.names().into_iter().filter(|n| n != node).collect();
        if rest.is_empty() {
            return Err(exit::usage(format!(
                "{node} is the only node; there is nothing to isolate it from"
            )));
        }
        return Ok(vec![vec![node.clone()], rest]);
    }
    let mut seen = BTreeSet::new();
    let mut groups = Vec::with_capacity(args.groups.len());
    for text in &args.groups {
        let mut group = Vec::new();
        for name in text.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(exit::usage(format!(
                    "the group {text:?} has an empty node name; write groups like n1,n2 n3"
                )));
            }
            cluster.check_node(name)?;
            if !seen.insert(name.to_string()) {
                return Err(exit::usage(format!(
                    "{name} is named twice; each node belongs to at most one group"
                )));
            }
            group.push(name.to_string());
        }
        groups.push(group);
    }
    if groups.len() < 2 {
        return Err(exit::usage(
            "name at least two groups, like `dynamo partition n1,n2 n3,n4,n5`",
        ));
    }
    let left: Vec<String> = cluster
        .names()
        .into_iter()
        .filter(|n| !seen.contains(n))
        .collect();
    if !left.is_empty() {
        return Err(exit::usage(format!(
            "{} {} in no group; put every node in a group (or use --isolate NODE)",
            left.join(", "),
            if left.len() == 1 { "is" } else { "are" }
        )));
    }
    Ok(groups)
}
