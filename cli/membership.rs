//! `dynamo add-node` and `dynamo leave NODE`: membership changes of the dev
//! cluster. The nodes do the work (gossip, pulls, handover; see
//! `dynamo::node`'s membership module); these commands make or stop the
//! node's process, start the change, show its progress from `status`, and
//! keep the manifest in step so that clients route with the new ring.
//!
//! `add-node` makes the node's folder, certificate and `node.toml` (settings
//! copied from the first node, every member as a seed), adds it to the
//! manifest with the current owners, starts it, and waits until it is up
//! and every node routes with the same ring and holds nothing it does not
//! replicate. `leave` asks the node to leave, waits until it has handed
//! everything over and says it has left, then stops it, removes it from the
//! manifest and deletes its folder. `leave --force` removes a node that is
//! down for good: a running node marks it removed and the others pull its
//! partitions from the surviving replicas (its folder is kept).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo::client::{Client, NodeStatus};
use dynamo::config::MemberEntry;
use dynamo::core::membership::ClusterState;
use dynamo::core::ring::Ring;
use dynamo::core::ring_plan::plan_add;
use dynamo::home::Home;
use serde::Serialize;

use crate::args::{AddNodeArgs, LeaveArgs};
use crate::devcluster::DevCluster;
use crate::{exit, output, up};

/// How long a membership change may take before the command gives up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one node may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// What `add-node --json` and `leave --json` print.
#[derive(Debug, Serialize)]
struct ChangeReport {
    node: String,
    addr: String,
    /// `joined` or `left`.
    outcome: &'static str,
    /// Partition ownerships that moved.
    moved_partitions: usize,
    /// Partitions each node owns afterwards.
    ownership: BTreeMap<String, usize>,
    /// Keys the added node holds at the end (0 for a leave).
    keys: u64,
    seconds: f64,
}

/// `dynamo add-node`.
pub async fn add_node(home: &Home, args: &AddNodeArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let members = cluster.names();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => crate::ring_plan::next_names(&members, 1)
            .pop()
            .unwrap_or_else(|| "n1".into()),
    };
    dynamo::config::validate_node_name(&name).map_err(exit::usage)?;
    if members.contains(&name) {
        return Err(exit::usage(format!("{name} is already a member")));
    }
    let client = up::connect(&cluster)?;
    let (asked, state) = any_state(&cluster, &client).await?;
    if state.owners.as_ref().is_some_and(|t| t.next.is_some()) {
        return Err(exit::error(format!(
            "a membership change is already in progress (as {asked} sees it); wait for it to end"
        )));
    }
    let current = state.ring().map_err(|e| exit::error(e.to_string()))?;
    let plan = plan_add(&current, &name, cluster.manifest().replicas)
        .map_err(|e| exit::usage(e.to_string()))?;
    let addr = free_addr(&cluster)?;
    let member = MemberEntry {
        name: name.clone(),
        addr,
        http: Some(free_http_addr(addr.port())?),
    };
    let seeds = cluster.manifest().nodes.clone();
    let template = members.first().cloned().unwrap_or_default();
    home.add_node(&member, &template, seeds)?;
    let mut manifest = cluster.manifest().clone();
    manifest.nodes.push(member);
    manifest.owners = Some(current.owner_table());
    manifest.save(&home.manifest())?;
    let started = Instant::now();
    output::note(format!(
        "{name} joining at {addr}: {} partitions move to it",
        plan.moves.len()
    ));
    let cluster = DevCluster::open(home)?;
    let mut spawned = vec![cluster.start(&name)?];
    let client = up::connect(&cluster)?;
    let done = wait(&cluster, &client, &mut spawned, |statuses| {
        let new = statuses.iter().find(|s| s.report.name == name)?;
        (new.report.member == "up" && settled(statuses)).then_some(())
    })
    .await;
    if let Err(e) = done {
        return Err(exit::error(format!(
            "{name} did not finish joining: {e} (see `dynamo logs {name}`; it keeps trying \
             while it runs)"
        )));
    }
    let final_state = client.cluster_state(&name).await?;
    let ring = final_state.ring().map_err(|e| exit::error(e.to_string()))?;
    let mut manifest = cluster.manifest().clone();
    manifest.owners = Some(ring.owner_table());
    manifest.save(&home.manifest())?;
    let keys = client.status(&name).await.map_or(0, |s| s.report.keys);
    report(
        ChangeReport {
            node: name,
            addr: addr.to_string(),
            outcome: "joined",
            moved_partitions: plan.moves.len(),
            ownership: ownership(&ring),
            keys,
            seconds: started.elapsed().as_secs_f64(),
        },
        args.json,
    )
}

/// `dynamo leave NODE`.
pub async fn leave(home: &Home, args: &LeaveArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let name = args.node.clone();
    cluster.check_node(&name)?;
    if args.force {
        return remove(home, &cluster, args).await;
    }
    if cluster.running(&name).is_none() {
        return Err(exit::error(format!(
            "{name} is not running: start it (`dynamo start {name}`) so it can hand its data \
             over, or if it is lost for good, `dynamo leave --force {name}`"
        )));
    }
    let client = up::connect(&cluster)?;
    let before = client.cluster_state(&name).await?;
    let current = before.ring().map_err(|e| exit::error(e.to_string()))?;
    let owned_before = current.owned_by(&name);
    let started = Instant::now();
    client.leave(&name).await.map_err(|e| match e {
        dynamo::client::ClientError::InvalidInput(m) => exit::usage(m),
        other => other.into(),
    })?;
    output::note(format!(
        "{name} leaving: handing {owned_before} partitions over"
    ));
    let done = wait(&cluster, &client, &mut [], |statuses| {
        let node = statuses.iter().find(|s| s.report.name == name)?;
        let others: Vec<NodeStatus> = statuses
            .iter()
            .filter(|s| s.report.name != name)
            .cloned()
            .collect();
        (node.report.member == "left" && settled(&others)).then_some(())
    })
    .await;
    if let Err(e) = done {
        return Err(exit::error(format!(
            "{name} did not finish leaving: {e} (it keeps trying while it runs)"
        )));
    }
    let others: Vec<String> = cluster.names().into_iter().filter(|n| *n != name).collect();
    let mut final_state = None;
    for other in &others {
        if let Ok(s) = client.cluster_state(other).await {
            final_state = Some(s);
            break;
        }
    }
    let final_state = match final_state {
        Some(state) => state,
        None => client.cluster_state(&name).await?,
    };
    let ring = final_state.ring().map_err(|e| exit::error(e.to_string()))?;
    cluster.stop(&name)?;
    let folder = home.node_dir(&name);
    let result = departed(
        home,
        &cluster,
        &name,
        &ring,
        "left",
        owned_before,
        started,
        args.json,
    );
    if let Err(e) = std::fs::remove_dir_all(&folder) {
        output::note(format!("could not remove {}: {e}", folder.display()));
    }
    result
}

/// `dynamo leave --force NODE`: NODE is down for good; a running node marks
/// it removed, the others pull its partitions from the surviving replicas,
/// and it is marked left. The manifest forgets it; its folder stays.
async fn remove(home: &Home, cluster: &DevCluster, args: &LeaveArgs) -> anyhow::Result<ExitCode> {
    let name = args.node.clone();
    if cluster.running(&name).is_some() {
        return Err(exit::usage(format!(
            "{name} is running: let it hand its data over with `dynamo leave {name}`, or stop it \
             first if it is really lost"
        )));
    }
    let client = up::connect(cluster)?;
    let (via, before) = any_state(cluster, &client).await?;
    let owned_before = before
        .ring()
        .map_err(|e| exit::error(e.to_string()))?
        .owned_by(&name);
    let started = Instant::now();
    client.remove(&via, &name).await.map_err(|e| match e {
        dynamo::client::ClientError::InvalidInput(m) => exit::usage(m),
        other => other.into(),
    })?;
    output::note(format!(
        "removing {name}: its {owned_before} partitions move to the others"
    ));
    let gone = |statuses: &[NodeStatus]| {
        let first = statuses.first()?;
        (settled(statuses) && first.report.owners_version > before.owners_version()).then_some(())
    };
    if let Err(e) = wait(cluster, &client, &mut [], gone).await {
        return Err(exit::error(format!(
            "{name} is not removed yet: {e} (the nodes keep trying)"
        )));
    }
    let state = loop {
        let (_, state) = any_state(cluster, &client).await?;
        if state.status_of(&name) == Some(dynamo::core::membership::MemberStatus::Left) {
            break state;
        }
        if started.elapsed() >= CHANGE_TIMEOUT {
            return Err(exit::error(format!("{name} was not marked left in time")));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let ring = state.ring().map_err(|e| exit::error(e.to_string()))?;
    output::note(format!(
        "{name}'s folder is kept: {}",
        home.node_dir(&name).display()
    ));
    departed(
        home,
        cluster,
        &name,
        &ring,
        "removed",
        owned_before,
        started,
        args.json,
    )
}

/// After a departure: the manifest forgets `name` and takes the new owners;
/// then the report.
#[allow(clippy::too_many_arguments)]
fn departed(
    home: &Home,
    cluster: &DevCluster,
    name: &str,
    ring: &Ring,
    outcome: &'static str,
    moved_partitions: usize,
    started: Instant,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut manifest = cluster.manifest().clone();
    manifest.nodes.retain(|m| m.name != name);
    manifest.owners = Some(ring.owner_table());
    manifest.save(&home.manifest())?;
    report(
        ChangeReport {
            node: name.to_string(),
            addr: cluster
                .addr(name)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            outcome,
            moved_partitions,
            ownership: ownership(ring),
            keys: 0,
            seconds: started.elapsed().as_secs_f64(),
        },
        json,
    )
}

/// The cluster state from the first running node that answers.
async fn any_state(
    cluster: &DevCluster,
    client: &Arc<Client>,
) -> anyhow::Result<(String, ClusterState)> {
    for (name, _) in cluster.running_nodes() {
        if let Ok(Ok(state)) =
            tokio::time::timeout(ANSWER_TIMEOUT, client.cluster_state(&name)).await
        {
            return Ok((name, state));
        }
    }
    Err(exit::not_running(cluster.home().root()))
}

/// Whether the answering nodes agree on the ring, none has a change in
/// progress, pulls to make or data to hand over.
fn settled(statuses: &[NodeStatus]) -> bool {
    let Some(first) = statuses.first() else {
        return false;
    };
    statuses.iter().all(|s| {
        s.report.ring_fingerprint == first.report.ring_fingerprint
            && s.report.owners_version == first.report.owners_version
            && s.report.incoming_total == 0
            && s.report.handover_partitions == 0
    })
}

/// Polls every running node's status until `done` says so, showing pull
/// progress; fails after [`CHANGE_TIMEOUT`] or when a started node exits.
async fn wait(
    cluster: &DevCluster,
    client: &Arc<Client>,
    spawned: &mut [crate::devcluster::Spawned],
    done: impl Fn(&[NodeStatus]) -> Option<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_progress = String::new();
    loop {
        for s in spawned.iter_mut() {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(anyhow::anyhow!(
                    "its process exited ({}): {}",
                    crate::devcluster::describe_exit(status),
                    cluster.log_tail(&s.name, s.log_offset)
                ));
            }
        }
        let mut statuses = Vec::new();
        for (name, _) in cluster.running_nodes() {
            if let Ok(Ok(s)) = tokio::time::timeout(ANSWER_TIMEOUT, client.status(&name)).await {
                statuses.push(s);
            }
        }
        if done(&statuses).is_some() {
            return Ok(());
        }
        let progress: Vec<String> = statuses
            .iter()
            .filter(|s| s.report.incoming_total > 0 || s.report.handover_partitions > 0)
            .map(|s| {
                format!(
                    "{} pulled {}/{}, handing over {}",
                    s.report.name,
                    s.report.incoming_done,
                    s.report.incoming_total,
                    s.report.handover_partitions
                )
            })
            .collect();
        let progress = progress.join("; ");
        if !progress.is_empty() && progress != last_progress {
            output::note(&progress);
            last_progress = progress;
        }
        if started.elapsed() >= CHANGE_TIMEOUT {
            return Err(anyhow::anyhow!(
                "not done after {} s ({})",
                CHANGE_TIMEOUT.as_secs(),
                if last_progress.is_empty() {
                    "no progress reported"
                } else {
                    &last_progress
                }
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Partitions per member that owns any (a joining or removed member with
/// none is left out).
fn ownership(ring: &Ring) -> BTreeMap<String, usize> {
    let mut owned = dynamo::core::ring_plan::ownership(ring);
    owned.retain(|_, c| *c > 0);
    owned
}

/// The port after the highest member's when it is free, else any free one.
fn free_addr(cluster: &DevCluster) -> anyhow::Result<SocketAddr> {
    let highest = cluster.manifest().nodes.iter().map(|m| m.addr.port()).max();
    if let Some(port) = highest.and_then(|p| p.checked_add(1)) {
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| exit::error(format!("cannot find a free UDP port: {e}")))?;
    Ok(socket.local_addr()?)
}

/// A free TCP port for the HTTPS API: the QUIC port's number when free.
fn free_http_addr(port: u16) -> anyhow::Result<SocketAddr> {
    if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| exit::error(format!("cannot find a free TCP port: {e}")))?;
    Ok(listener.local_addr()?)
}

fn report(report: ChangeReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        output::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let shares: Vec<String> = report
        .ownership
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect();
    output::print(format!(
        "{} {} ({}) in {:.1} s: {} partitions moved{}; ownership: {}",
        report.node,
        report.outcome,
        report.addr,
        report.seconds,
        report.moved_partitions,
        if report.outcome == "joined" {
            format!(", it holds {} keys", report.keys)
        } else {
            String::new()
        },
        shares.join(", ")
    ))?;
    Ok(ExitCode::SUCCESS)
}
