//! Process control of the local dev cluster: the `dynamo node` processes
//! that `dynamo up` and `dynamo start` run from a cluster home.
//!
//! A node is started as this same executable, `node --config
//! <home>/<name>/node.toml`, in its own process group (so a Ctrl-C in the
//! terminal reaches only `dynamo up`, which then stops the nodes in order),
//! with its output appended to its log. Its pid goes to `<name>/node.pid`.
//!
//! A pid file alone proves nothing: the process may have died and its pid
//! been reused. A node counts as running only if `/proc/<pid>/cmdline` is
//! `… node --config <its node.toml>` and the process is not a zombie; we
//! check that immediately before sending any signal, so we never signal a
//! process we did not start. Stale pid files are removed when found.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dynamo::client::{Client, NodeStatus};
use dynamo::config::ClusterManifest;
use dynamo::home::Home;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::exit;

/// How long a node gets to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a process to vanish after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to look at a process that is stopping.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How often to ask starting nodes whether they serve.
const SERVE_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long one status request may take while waiting for nodes.
const STATUS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `up` waits for every node to see every peer reachable.
const PEERS_SETTLE_MAX: Duration = Duration::from_secs(5);
/// Log lines shown when a node fails to start.
const LOG_TAIL_LINES: usize = 12;

/// The dev cluster of one home.
pub struct DevCluster {
    home: Home,
    manifest: ClusterManifest,
}

/// A node process this program started.
pub struct Spawned {
    /// The node's name.
    pub name: String,
    /// Its process.
    pub child: Child,
    /// Length of its log before it started: what follows is this run's.
    pub log_offset: u64,
}

impl Spawned {
    /// The node's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// How a node was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Gracefully,
    /// It ignored SIGTERM for [`STOP_TIMEOUT`] and was killed.
    Killed,
}

/// Why waiting for nodes to serve failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A node's process exited while the others were starting.
    #[error("node {name} {status} while starting{}", why_exited(.name, .log_tail))]
    Exited {
        /// The node.
        name: String,
        /// How it ended, in words.
        status: String,
        /// The end of its log from this run.
        log_tail: String,
    },
    /// Nodes did not answer in time.
    #[error("{} did not answer within {}s{}", .names.join(", "), .waited.as_secs(), last_error(.error))]
    Timeout {
        /// The nodes that never answered.
        names: Vec<String>,
        /// How long we waited.
        waited: Duration,
        /// The last error a status request gave.
        error: Option<String>,
    },
    /// Every node answers, but they do not agree on the ring.
    #[error("the nodes do not agree on the ring after {}s", .0.as_secs())]
    RingDisagrees(Duration),
    /// The user pressed Ctrl-C.
    #[error("interrupted while the nodes were starting")]
    Interrupted,
}

impl StartError {
    /// Whether a node failed because its port was taken.
    pub fn port_taken(&self) -> bool {
        match self {
            StartError::Exited { log_tail, .. } => {
                let text = log_tail.to_lowercase();
                text.contains("address already in use")
                    || text.contains("address in use")
                    || text.contains("os error 98")
            }
            _ => false,
        }
    }
}

/// What follows "node n2 exited … while starting": the node's own last
/// error when its log ends with one (what `dynamo node` printed before
/// exiting), with what to do about it; else the end of its log.
fn why_exited(name: &str, tail: &str) -> String {
    // `dynamo node` logs its last error ("node n2 stopped: …"); a node
    // that failed before its log was open printed it ("error: …").
    let stopped = format!("node {name} stopped: ");
    let last_error = tail.lines().rev().find_map(|line| {
        let line = line.trim();
        line.strip_prefix("error: ")
            .or_else(|| line.split_once(&stopped).map(|(_, reason)| reason))
    });
    let Some(reason) = last_error else {
        return log_excerpt(tail);
    };
    let reason = reason
        .strip_prefix(&format!("node {name} failed: "))
        .unwrap_or(reason);
    let advice = if reason.contains("corrupted") {
        format!(
            "; restore that file from a backup, or move it away to start {name} with an \
             empty store"
        )
    } else {
        String::new()
    };
    format!(": {reason}{advice} (see `dynamo logs {name}`)")
}

fn log_excerpt(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; the end of its log:\n{}", tail.trim_end())
    }
}

fn last_error(error: &Option<String>) -> String {
    error
        .as_ref()
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default()
}

impl DevCluster {
    /// The dev cluster of this home; fails if the home holds no cluster.
    pub fn open(home: &Home) -> anyhow::Result<DevCluster> {
        if !home.exists() {
            return Err(exit::no_cluster(home.root()));
        }
        let manifest = home.load_manifest()?;
        Ok(DevCluster {
            home: home.clone(),
            manifest,
        })
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The manifest.
    pub fn manifest(&self) -> &ClusterManifest {
        &self.manifest
    }

    /// Every node's name, in manifest order.
    pub fn names(&self) -> Vec<String> {
        self.manifest.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// A node's address.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.manifest.member(name).map(|m| m.addr)
    }

    /// Fails (exit 2, the command line names no such node) unless the
    /// cluster has a node with this name.
    pub fn check_node(&self, name: &str) -> anyhow::Result<()> {
        if self.manifest.member(name).is_some() {
            return Ok(());
        }
        Err(exit::no_node(name, &self.names()))
    }

    /// The pid of the node if it is running, checked against its command
    /// line; removes a stale pid file.
    pub fn running(&self, name: &str) -> Option<u32> {
        let pid_file = self.home.node_pid(name);
        let text = std::fs::read_to_string(&pid_file).ok()?;
        let pid = text.trim().parse::<u32>().ok().filter(|pid| *pid > 1);
        match pid {
            Some(pid) if self.is_our_node(name, pid) => Some(pid),
            _ => {
                // Only remove the file if it still says what we read.
                if std::fs::read_to_string(&pid_file).is_ok_and(|now| now == text) {
                    let _ = std::fs::remove_file(&pid_file);
                }
                None
            }
        }
    }

    /// Every running node with its pid.
    pub fn running_nodes(&self) -> Vec<(String, u32)> {
        self.names()
            .into_iter()
            .filter_map(|name| self.running(&name).map(|pid| (name, pid)))
            .collect()
    }

    /// Whether `pid` is a live `dynamo node` running this node's config.
    fn is_our_node(&self, name: &str, pid: u32) -> bool {
        is_alive(pid) && runs_config(pid, &self.home.node_config(name))
    }

    /// Starts a node: this executable, `node --config <its node.toml>`.
    pub fn start(&self, name: &str) -> anyhow::Result<Spawned> {
        let config = self.home.node_config(name);
        let log_path = self.home.node_log(name);
        let exe = std::env::current_exe().context("cannot find the dynamo executable")?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log
            .try_clone()
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(&config)
            .current_dir(self.home.node_dir(name))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start node {name} ({})", exe.display()))?;
        let spawned = Spawned {
            name: name.to_string(),
            child,
            log_offset,
        };
        write_pid_file(&self.home.node_pid(name), spawned.pid())?;
        Ok(spawned)
    }

    /// Stops a running node gracefully: SIGTERM, then SIGKILL after
    /// [`STOP_TIMEOUT`]. Blocks until it is gone.
    pub fn stop(&self, name: &str) -> anyhow::Result<(u32, Stopped)> {
        let pid = self.require_running(name)?;
        self.signal(name, pid, Signal::SIGTERM)?;
        if self.wait_gone(name, pid, STOP_TIMEOUT) {
            self.forget(name);
            return Ok((pid, Stopped::Gracefully));
        }
        self.signal(name, pid, Signal::SIGKILL)?;
        self.wait_gone(name, pid, KILL_TIMEOUT);
        self.forget(name);
        Ok((pid, Stopped::Killed))
    }

    /// Crashes a running node with SIGKILL. Blocks until it is gone.
    pub fn kill(&self, name: &str) -> anyhow::Result<u32> {
        let pid = self.require_running(name)?;
        self.signal(name, pid, Signal::SIGKILL)?;
        if !self.wait_gone(name, pid, KILL_TIMEOUT) {
            return Err(exit::error(format!(
                "node {name} (pid {pid}) is still there {}s after SIGKILL",
                KILL_TIMEOUT.as_secs()
            )));
        }
        self.forget(name);
        Ok(pid)
    }

    /// Stops these nodes in parallel. Returns what happened to each.
    pub fn stop_all(&self, names: &[String]) -> Vec<(String, anyhow::Result<(u32, Stopped)>)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| (name.clone(), scope.spawn(|| self.stop(name))))
                .collect();
            handles
                .into_iter()
                .map(|(name, handle)| {
                    let result = handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("stopping {name} panicked")));
                    (name, result)
                })
                .collect()
        })
    }

    fn require_running(&self, name: &str) -> anyhow::Result<u32> {
        self.check_node(name)?;
        self.running(name)
            .ok_or_else(|| exit::error(format!("node {name} is not running")))
    }

    /// Sends a signal, after checking once more that the pid is our node.
    fn signal(&self, name: &str, pid: u32, signal: Signal) -> anyhow::Result<()> {
        if !self.is_our_node(name, pid) {
            return Ok(()); // It exited on its own meanwhile.
        }
        let raw = i32::try_from(pid).context("pid out of range")?;
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(errno) => Err(anyhow::anyhow!(
                "cannot send {signal} to node {name} (pid {pid}): {errno}"
            )),
        }
    }

    /// Waits until the process is no longer our running node: gone, a
    /// zombie, or (the pid reused) another program. A process in the middle
    /// of exiting has an empty command line but is not gone yet.
    fn wait_gone(&self, name: &str, pid: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let config = self.home.node_config(name);
        loop {
            if !is_alive(pid) || (!runs_config(pid, &config) && !is_exiting(pid)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(EXIT_POLL_INTERVAL);
        }
    }

    fn forget(&self, name: &str) {
        let _ = std::fs::remove_file(self.home.node_pid(name));
    }

    /// The last lines a node logged since `offset`.
    pub fn log_tail(&self, name: &str, offset: u64) -> String {
        log_tail(&self.home.node_log(name), offset, LOG_TAIL_LINES)
    }

    /// Waits until every node in `names` answers a status request and all
    /// report the same ring, or one of `spawned` exits, or `timeout` passes.
    pub async fn wait_serving(
        &self,
        client: &Arc<Client>,
        names: &[String],
        spawned: &mut [Spawned],
        timeout: Duration,
    ) -> Result<Vec<NodeStatus>, StartError> {
        let started = Instant::now();
        let mut answers: Vec<Option<NodeStatus>> = vec![None; names.len()];
        let mut last_error: Option<String> = None;
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            if let Some(failed) = first_exited(spawned) {
                let (name, status, offset) = failed;
                return Err(StartError::Exited {
                    log_tail: self.log_tail(&name, offset),
                    name,
                    status,
                });
            }
            let mut queries = tokio::task::JoinSet::new();
            for (index, name) in names.iter().enumerate() {
                if answers[index].is_some() {
                    continue;
                }
                // Asking before the node has bound its port would cost a
                // QUIC retransmission timeout; wait for the bind instead.
                let addr = self.addr(name);
                if addr.is_some_and(|a| udp_port_bound(a.port()) == Some(false)) {
                    continue;
                }
                let client = Arc::clone(client);
                let name = name.clone();
                queries.spawn(async move {
                    let answer =
                        tokio::time::timeout(STATUS_ATTEMPT_TIMEOUT, client.status(&name)).await;
                    (index, answer)
                });
            }
            let collect = async {
                while let Some(joined) = queries.join_next().await {
                    match joined {
                        Ok((index, Ok(Ok(status)))) => answers[index] = Some(status),
                        Ok((_, Ok(Err(e)))) => last_error = Some(e.to_string()),
                        Ok((index, Err(_))) => {
                            last_error = Some(format!("{} timed out", names[index]))
                        }
                        Err(e) => last_error = Some(e.to_string()),
                    }
                }
            };
            tokio::select! {
                () = collect => {}
                _ = &mut interrupted => return Err(StartError::Interrupted),
            }
            if answers.iter().all(Option::is_some) {
                let statuses: Vec<NodeStatus> = answers.iter().flatten().cloned().collect();
                let ring = statuses.first().map(|s| s.report.ring_fingerprint);
                // Every node should also see every other one: a node that
                // started before its peers marked them unreachable and
                // would route writes to fallbacks until its next probe.
                // A cut made by `dynamo partition` is left as it is, and a
                // view that does not settle in time is only advice.
                let settled = statuses.iter().all(|s| {
                    !s.report.partition.is_empty()
                        || !s.report.unreachable.iter().any(|u| names.contains(u))
                });
                if statuses
                    .iter()
                    .all(|s| Some(s.report.ring_fingerprint) == ring)
                    && (settled || started.elapsed() >= PEERS_SETTLE_MAX)
                {
                    return Ok(statuses);
                }
                if started.elapsed() >= timeout {
                    return Err(StartError::RingDisagrees(timeout));
                }
                // Ask everyone again: the ring or the peers' views are still settling.
                answers.iter_mut().for_each(|a| *a = None);
            } else if started.elapsed() >= timeout {
                return Err(StartError::Timeout {
                    names: names
                        .iter()
                        .zip(&answers)
                        .filter(|(_, a)| a.is_none())
                        .map(|(n, _)| n.clone())
                        .collect(),
                    waited: timeout,
                    error: last_error,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(SERVE_POLL_INTERVAL) => {}
                _ = &mut interrupted => return Err(StartError::Interrupted),
            }
        }
    }
}

/// The first spawned node whose process has exited: name, how, log offset.
fn first_exited(spawned: &mut [Spawned]) -> Option<(String, String, u64)> {
    spawned.iter_mut().find_map(|s| match s.child.try_wait() {
        Ok(Some(status)) => Some((s.name.clone(), describe_exit(status), s.log_offset)),
        _ => None,
    })
}

/// "exited with status 1", "was killed by SIGKILL".
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal().map(Signal::try_from) {
        Some(Ok(signal)) => format!("was killed by {signal}"),
        Some(Err(_)) | None => format!("ended ({status})"),
    }
}

fn write_pid_file(path: &Path, pid: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{pid}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a process exists and is not a zombie.
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S …": the state follows the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X") | Some("x"))
}

/// Whether the process's command line is `… node --config <config>`.
/// Whether a live process has no command line left: it is exiting (its
/// memory is gone) but has not become a zombie yet.
fn is_exiting(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| raw.is_empty())
}

fn runs_config(pid: u32, config: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let config = config.as_os_str().as_encoded_bytes();
    let has_node = args.iter().skip(1).any(|a| *a == b"node");
    let has_config = args
        .windows(2)
        .any(|w| w[0] == b"--config" && w[1] == config);
    has_node && has_config
}

/// Whether some UDP socket on this machine is bound to `port`, from
/// `/proc/net/udp{,6}`; `None` when that cannot be read.
pub fn udp_port_bound(port: u16) -> Option<bool> {
    bound_udp_ports().map(|ports| ports.contains(&port))
}

/// Every UDP port some socket on this machine is bound to, from one read of
/// `/proc/net/udp{,6}`; `None` when neither can be read.
pub fn bound_udp_ports() -> Option<std::collections::BTreeSet<u16>> {
    let mut ports = std::collections::BTreeSet::new();
    let mut readable = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        readable = true;
        for line in text.lines().skip(1) {
            let port = line
                .split_whitespace()
                .nth(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            ports.extend(port);
        }
    }
    readable.then_some(ports)
}

/// The last `lines` lines of a file from byte `offset` on.
pub fn log_tail(path: &Path, offset: u64, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_not_a_node() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(!runs_config(me, Path::new("/nowhere/node.toml")));
        assert!(!is_alive(u32::MAX));
    }

    #[test]
    fn a_bound_port_is_seen() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(udp_port_bound(port), Some(true));
        drop(socket);
        assert_eq!(udp_port_bound(port), Some(false));
    }

    #[test]
    fn the_log_tail_starts_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        std::fs::write(&path, "old\nnew 1\n\nnew 2\n").unwrap();
        assert_eq!(log_tail(&path, 4, 10), "  new 1\n  new 2");
        assert_eq!(log_tail(&path, 0, 1), "  new 2");
    }

    #[test]
    fn port_taken_is_recognised() {
        let err = StartError::Exited {
            name: "n1".into(),
            status: "exited with status 1".into(),
            log_tail: "error: cannot bind 127.0.0.1:7101: Address already in use (os error 98)"
                .into(),
        };
        assert!(err.port_taken());
        assert_eq!(
            err.to_string(),
            "node n1 exited with status 1 while starting: cannot bind 127.0.0.1:7101: \
             Address already in use (os error 98) (see `dynamo logs n1`)"
        );
    }

    #[test]
    fn a_node_without_a_last_error_shows_its_log() {
        let err = StartError::Exited {
            name: "n2".into(),
            status: "was killed by SIGKILL".into(),
            log_tail: "  INFO starting\n  INFO opening the store".into(),
        };
        let text = err.to_string();
        assert!(text.contains("the end of its log"), "{text}");
        assert!(text.contains("opening the store"), "{text}");
    }

    #[test]
    fn a_corrupted_store_says_what_to_do() {
        let err = StartError::Exited {
            name: "n2".into(),
            status: "exited with status 1".into(),
            log_tail: "  2026 ERROR dynamo::node_cmd: node n2 stopped: storage file \
                       /h/n2/data/data.redb is corrupted"
                .into(),
        };
        let text = err.to_string();
        assert!(
            text.starts_with(
                "node n2 exited with status 1 while starting: storage file \
                 /h/n2/data/data.redb is corrupted; restore that file"
            ),
            "{text}"
        );
        assert!(
            text.contains("move it away") && !text.contains('\n'),
            "{text}"
        );
    }
}
