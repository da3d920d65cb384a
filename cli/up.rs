//! `dynamo up` and `dynamo down`: bring the local dev cluster up (making
//! its home the first time) and take it down again.
//!
//! `up` starts every node process first and only then polls them all in
//! parallel, so startup costs about one node's start time, not the sum.
//! Without `--detach` it stays in the foreground, reaps its nodes, and
//! stops the cluster gracefully on Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dynamo::client::{Client, NodeStatus};
use dynamo::config::ClusterManifest;
use dynamo::home::{ClusterSpec, Home};
use serde::Serialize;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::args::{DownArgs, UpArgs};
use crate::devcluster::{describe_exit, DevCluster, Spawned, StartError, Stopped};
use crate::exit;
use crate::output;

/// How long `up` waits for every node to serve and agree on the ring.
pub const SERVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the foreground `up` looks for nodes that exited.
const REAP_INTERVAL: Duration = Duration::from_millis(250);

/// One node in `up`'s report.
#[derive(Debug, Serialize)]
struct NodeRow {
    name: String,
    addr: String,
    pid: Option<u32>,
    partitions: usize,
    keys: u64,
    hints: u64,
}

/// `up --json`.
#[derive(Debug, Serialize)]
struct UpReport {
    home: String,
    already_running: bool,
    nodes: Vec<NodeRow>,
    seconds: f64,
}

/// `dynamo up`.
pub async fn up(home: &Home, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let created = if home.exists() {
        let manifest = home.load_manifest()?;
        check_flags_match(home, &manifest, args)?;
        if let Some(durability) = args.durability {
            home.set_durability(durability.into()).with_context(|| {
                format!(
                    "cannot update the node configs in {}",
                    home.root().display()
                )
            })?;
        }
        false
    } else {
        create(home, &spec_from(args))?;
        true
    };
    if let Some(grace_ms) = args.tombstone_grace_ms {
        home.set_tombstone_grace(grace_ms).with_context(|| {
            format!(
                "cannot update the node configs in {}",
                home.root().display()
            )
        })?;
    }
    let mut cluster = DevCluster::open(home)?;
    // Watched from before the nodes start: a Ctrl-C that comes after they
    // serve but before the foreground loop runs must not be lost.
    let signals = if args.detach {
        None
    } else {
        Some(StopSignals::watch()?)
    };
    let mut retried = false;
    let (spawned, statuses, already_running) = loop {
        match start_cluster(&cluster).await {
            Ok(started) => break started,
            Err(StartFailure::Start(e))
                if e.port_taken() && created && !retried && args.base_port == Some(0) =>
            {
                // Another process took a port we picked: pick fresh ones.
                retried = true;
                output::note(format!("{e}\nretrying with fresh ports"));
                std::fs::remove_dir_all(home.root())
                    .with_context(|| format!("cannot remove {}", home.root().display()))?;
                create(home, &spec_from(args))?;
                cluster = DevCluster::open(home)?;
            }
            Err(StartFailure::Start(e)) => return Err(e.into()),
            Err(StartFailure::Other(e)) => return Err(e),
        }
    };
    let report = UpReport {
        home: home.root().display().to_string(),
        already_running,
        nodes: rows(&cluster, &statuses),
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(&report, args.json)?;
    match signals {
        Some(signals) if !already_running => foreground(&cluster, spawned, signals).await,
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The signals that end a foreground `up`: Ctrl-C, SIGTERM, SIGHUP.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Starts watching; a signal that arrives from now on is kept until
    /// [`StopSignals::recv`] looks.
    fn watch() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?,
        })
    }

    /// Waits for any of them.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

fn create(home: &Home, spec: &ClusterSpec) -> anyhow::Result<()> {
    Home::create(home.root(), spec)
        .with_context(|| format!("cannot create a cluster at {}", home.root().display()))?;
    Ok(())
}

fn spec_from(args: &UpArgs) -> ClusterSpec {
    let default = ClusterSpec::default();
    ClusterSpec {
        // A fresh name per cluster: context tokens carry a tag derived from it,
        // so a token from another cluster is refused rather than misread.
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{:08x}", default.name, rand::random::<u32>())),
        nodes: args.nodes.unwrap_or(default.nodes),
        replicas: args.replicas.unwrap_or(default.replicas),
        read_quorum: args.read_quorum.unwrap_or(default.read_quorum),
        write_quorum: args.write_quorum.unwrap_or(default.write_quorum),
        partitions: args.partitions.unwrap_or(default.partitions),
        base_port: args.base_port.unwrap_or(default.base_port),
        durability: args.durability.map_or(default.durability, Into::into),
    }
}

/// Refuses flags that contradict the cluster an existing home holds.
fn check_flags_match(home: &Home, manifest: &ClusterManifest, args: &UpArgs) -> anyhow::Result<()> {
    let first_port = manifest.nodes.first().map(|n| n.addr.port());
    let base_port = args.base_port.filter(|p| *p != 0);
    let checks: [(&str, Option<String>, String); 7] = [
        (
            "--nodes",
            args.nodes.map(|v| v.to_string()),
            manifest.nodes.len().to_string(),
        ),
        (
            "--replicas",
            args.replicas.map(|v| v.to_string()),
            manifest.replicas.to_string(),
        ),
        (
            "--read-quorum",
            args.read_quorum.map(|v| v.to_string()),
            manifest.read_quorum.to_string(),
        ),
        (
            "--write-quorum",
            args.write_quorum.map(|v| v.to_string()),
            manifest.write_quorum.to_string(),
        ),
        (
            "--partitions",
            args.partitions.map(|v| v.to_string()),
            manifest.partitions.to_string(),
        ),
        (
            "--base-port",
            base_port.map(|v| v.to_string()),
            first_port.map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("--name", args.name.clone(), manifest.name.clone()),
    ];
    for (flag, given, existing) in checks {
        if let Some(given) = given {
            if given != existing {
                return Err(exit::error(format!(
                    "the cluster at {} has {flag} {existing}, not {given}; drop the flag to \
                     restart it as it is, or run `dynamo down --purge` first to make a new one",
                    home.root().display()
                )));
            }
        }
    }
    Ok(())
}

enum StartFailure {
    Start(StartError),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartFailure {
    fn from(e: anyhow::Error) -> Self {
        StartFailure::Other(e)
    }
}

/// Starts the nodes that are not running and waits until all serve.
/// Returns the processes started, every node's status, and whether all
/// were running already. On failure, stops the nodes it started.
async fn start_cluster(
    cluster: &DevCluster,
) -> Result<(Vec<Spawned>, Vec<NodeStatus>, bool), StartFailure> {
    let names = cluster.names();
    let to_start: Vec<String> = names
        .iter()
        .filter(|n| cluster.running(n).is_none())
        .cloned()
        .collect();
    let already_running = to_start.is_empty();
    if already_running {
        output::note(format!(
            "the cluster at {} is already running",
            cluster.home().root().display()
        ));
    } else if to_start.len() < names.len() {
        output::note(format!(
            "the cluster at {} is partly running; starting {}",
            cluster.home().root().display(),
            to_start.join(", ")
        ));
    }
    let mut spawned = Vec::with_capacity(to_start.len());
    for name in &to_start {
        match cluster.start(name) {
            Ok(s) => spawned.push(s),
            Err(e) => {
                stop_spawned(cluster, &mut spawned).await;
                return Err(e.into());
            }
        }
    }
    let client = match connect(cluster) {
        Ok(client) => client,
        Err(e) => {
            stop_spawned(cluster, &mut spawned).await;
            return Err(e.into());
        }
    };
    let result = cluster
        .wait_serving(&client, &names, &mut spawned, SERVE_TIMEOUT)
        .await;
    match result {
        Ok(statuses) => Ok((spawned, statuses, already_running)),
        Err(e) => {
            stop_spawned(cluster, &mut spawned).await;
            Err(StartFailure::Start(e))
        }
    }
}

/// A client of the cluster, with the home's client identity.
pub fn connect(cluster: &DevCluster) -> anyhow::Result<Arc<Client>> {
    let creds = cluster.home().client_credentials()?;
    let client = Client::new(cluster.manifest().clone(), creds)?;
    Ok(Arc::new(client))
}

/// [`connect`], for a command that needs running nodes: fails at once
/// (exit 5) when none of the cluster's nodes is running.
pub fn connect_running(cluster: &DevCluster) -> anyhow::Result<Arc<Client>> {
    if cluster.running_nodes().is_empty() {
        return Err(exit::not_running(cluster.home().root()));
    }
    connect(cluster)
}

/// Stops (and reaps) the nodes this call started.
async fn stop_spawned(cluster: &DevCluster, spawned: &mut Vec<Spawned>) {
    let names: Vec<String> = spawned
        .iter()
        .filter(|s| cluster.running(&s.name).is_some())
        .map(|s| s.name.clone())
        .collect();
    for (name, result) in stop_in_background(cluster, names).await {
        if let Err(e) = result {
            eprintln!("warning: cannot stop node {name}: {}", exit::sentence(&e));
        }
    }
    for s in spawned.iter_mut() {
        let _ = s.child.wait();
    }
    spawned.clear();
}

type StopResults = Vec<(String, anyhow::Result<(u32, Stopped)>)>;

/// Runs [`DevCluster::stop_all`] off the async threads.
async fn stop_in_background(cluster: &DevCluster, names: Vec<String>) -> StopResults {
    if names.is_empty() {
        return Vec::new();
    }
    tokio::task::block_in_place(|| cluster.stop_all(&names))
}

fn rows(cluster: &DevCluster, statuses: &[NodeStatus]) -> Vec<NodeRow> {
    statuses
        .iter()
        .map(|s| NodeRow {
            name: s.report.name.clone(),
            addr: s.addr.to_string(),
            pid: cluster.running(&s.report.name),
            partitions: s.report.partitions as usize,
            keys: s.report.keys,
            hints: s.report.hints,
        })
        .collect()
}

fn print_report(report: &UpReport, json: bool) -> anyhow::Result<()> {
    if json {
        return output::print_json(report);
    }
    let mut table = output::table([
        "node",
        "address",
        "pid",
        "state",
        "partitions",
        "keys",
        "hints",
    ]);
    for node in &report.nodes {
        table.add_row(vec![
            comfy_table::Cell::new(&node.name),
            comfy_table::Cell::new(&node.addr),
            comfy_table::Cell::new(node.pid.map(|p| p.to_string()).unwrap_or_default()),
            output::state_cell("up"),
            comfy_table::Cell::new(node.partitions),
            comfy_table::Cell::new(node.keys),
            comfy_table::Cell::new(node.hints),
        ]);
    }
    output::print_table(&table)?;
    if report.already_running {
        output::print(format!("the cluster at {} is already running", report.home))?;
    } else {
        output::print(format!(
            "cluster up in {:.2}s (home {})",
            report.seconds, report.home
        ))?;
    }
    Ok(())
}

/// Stays in the foreground until Ctrl-C (or SIGTERM, SIGHUP), reaping the
/// nodes; then stops every running node of the cluster gracefully.
async fn foreground(
    cluster: &DevCluster,
    mut spawned: Vec<Spawned>,
    mut signals: StopSignals,
) -> anyhow::Result<ExitCode> {
    output::note("press Ctrl-C to stop the cluster");
    let mut reap = tokio::time::interval(REAP_INTERVAL);
    loop {
        tokio::select! {
            () = signals.recv() => break,
            _ = reap.tick() => {
                spawned.retain_mut(|s| match s.child.try_wait() {
                    Ok(Some(status)) => {
                        eprintln!("node {} {}", s.name, describe_exit(status));
                        false
                    }
                    _ => true,
                });
                if spawned.is_empty() && cluster.running_nodes().is_empty() {
                    eprintln!("every node has stopped");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
    eprintln!("stopping the cluster…");
    let names: Vec<String> = cluster
        .running_nodes()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let results = stop_in_background(cluster, names).await;
    let failed = report_stops(&results);
    for s in spawned.iter_mut() {
        let _ = s.child.wait();
    }
    if failed > 0 {
        return Err(exit::error(format!(
            "{failed} node(s) could not be stopped"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what happened to each node on stderr; returns how many failed.
fn report_stops(results: &StopResults) -> usize {
    let mut failed = 0;
    for (name, result) in results {
        match result {
            Ok((pid, Stopped::Gracefully)) => eprintln!("stopped {name} (pid {pid})"),
            Ok((pid, Stopped::Killed)) => eprintln!(
                "killed {name} (pid {pid}): it did not stop within {}s",
                crate::devcluster::STOP_TIMEOUT.as_secs()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("cannot stop {name}: {}", exit::sentence(e));
            }
        }
    }
    failed
}

/// `down --json`.
#[derive(Debug, Serialize)]
struct DownReport {
    home: String,
    stopped: Vec<String>,
    killed: Vec<String>,
    purged: bool,
}

/// `dynamo down`.
pub async fn down(home: &Home, args: &DownArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    let started = Instant::now();
    let names: Vec<String> = cluster
        .running_nodes()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let results = stop_in_background(&cluster, names).await;
    let mut report = DownReport {
        home: home.root().display().to_string(),
        stopped: Vec::new(),
        killed: Vec::new(),
        purged: false,
    };
    let mut errors = Vec::new();
    for (name, result) in results {
        match result {
            Ok((_, Stopped::Gracefully)) => report.stopped.push(name),
            Ok((_, Stopped::Killed)) => report.killed.push(name),
            Err(e) => errors.push(format!("{name}: {}", exit::sentence(&e))),
        }
    }
    if !errors.is_empty() {
        return Err(exit::error(format!(
            "cannot stop every node ({}); nothing was purged",
            errors.join("; ")
        )));
    }
    if args.purge {
        purge(home)?;
        report.purged = true;
    }
    if args.json {
        output::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = Vec::new();
    if report.stopped.is_empty() && report.killed.is_empty() {
        lines.push(format!("no node of {} was running", report.home));
    } else {
        if !report.stopped.is_empty() {
            lines.push(format!(
                "stopped {} in {:.2}s",
                report.stopped.join(", "),
                started.elapsed().as_secs_f64()
            ));
        }
        if !report.killed.is_empty() {
            lines.push(format!(
                "killed {} (they did not stop within {}s)",
                report.killed.join(", "),
                crate::devcluster::STOP_TIMEOUT.as_secs()
            ));
        }
    }
    if report.purged {
        lines.push(format!("removed {}", report.home));
    }
    output::print(lines.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Deletes the home, refusing folders that are obviously not only a home.
fn purge(home: &Home) -> anyhow::Result<()> {
    let root = home.root();
    let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    if root.parent().is_none() || user_home.as_deref() == Some(root) {
        return Err(exit::error(format!(
            "refusing to delete {}; remove the cluster's files by hand",
            root.display()
        )));
    }
    std::fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))
}
