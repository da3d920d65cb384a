//! What every end-to-end test shares: [`Cluster`], a dev cluster of real
//! `dynamo node` processes in its own temporary home, started with
//! `dynamo up --base-port 0 --detach` and taken down when dropped; and
//! [`Run`], one finished `dynamo` command with its exit code and output.
//!
//! Tests run in parallel, so nothing here is shared between tests: each
//! cluster has its own home and its own free ports. Every command runs with
//! a time limit, so a hang fails its test instead of the whole suite.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `dynamo` binary under test.
pub const DYNAMO: &str = env!("CARGO_BIN_EXE_dynamo");

/// How long any one command may run before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How often to look again while polling for a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One finished `dynamo` command.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub line: String,
    /// Its exit code (`-1` when a signal ended it).
    pub code: i32,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails unless the command exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "`{}`: expected exit {code}, got {}\nstdout: {}\nstderr: {}",
            self.line,
            self.code,
            self.text(),
            self.stderr
        );
        self
    }

    /// Fails unless the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: expected one JSON document on stdout ({e}), got: {}\nstderr: {}",
                self.line,
                self.text(),
                self.stderr
            )
        })
    }

    /// Fails unless the command failed with `code` and said so the way
    /// CLI.md asks: one `error: ` sentence on stderr (on one line), nothing
    /// on stdout, no panic and no backtrace hint. Returns stderr, for more
    /// checks of its wording.
    #[track_caller]
    pub fn expect_clean_error(&self, code: i32) -> &str {
        self.expect_code(code);
        let stderr = self.stderr.trim_end();
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !stderr.contains(bad),
                "`{}`: expected a plain error, got a panic ({bad:?} on stderr):\n{stderr}",
                self.line
            );
        }
        assert!(
            stderr.starts_with("error: ") && stderr.len() > "error: ".len() + 10,
            "`{}`: expected stderr to be one sentence starting with \"error: \", got:\n{stderr}",
            self.line
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "`{}`: expected one line on stderr, got:\n{stderr}",
            self.line
        );
        assert!(
            self.stdout.is_empty(),
            "`{}`: expected nothing on stdout after an error, got: {}",
            self.line,
            self.text()
        );
        stderr
    }
}

/// Runs `dynamo` with `args`, the cluster home `home`, no colour, and
/// `stdin` as standard input; waits at most [`COMMAND_TIMEOUT`].
pub fn dynamo_in(home: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let line = format!("dynamo {}", args.join(" "));
    // Long keys make unreadable messages.
    let line = if line.len() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    };
    let mut child = Command::new(DYNAMO)
        .args(args)
        .env("DYNAMO_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("DYNAMO_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{line}` ({DYNAMO}): {e}"));
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            // The command may exit early (an error) and close the pipe.
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = drain(child.stdout.take().expect("stdout is piped"));
    let err = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{line}` did not finish within {}s",
                    COMMAND_TIMEOUT.as_secs()
                );
            }
            Err(e) => panic!("cannot wait for `{line}`: {e}"),
        }
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    Run {
        line,
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with
/// `what` and the last thing `check` saw.
#[track_caller]
pub fn poll<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!(
                    "{what}: not within {}s; last seen: {last}",
                    timeout.as_secs_f64()
                )
            }
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// The state letter of a process from `/proc/PID/stat` (`R`, `S`, `Z`…),
/// or `None` when there is no such process.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S …": the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// Whether a process is running: it exists and is not a zombie (PID 1 of
/// the test machine may never reap the nodes `up --detach` left behind).
pub fn is_running(pid: u32) -> bool {
    !matches!(process_state(pid), None | Some('Z') | Some('X') | Some('x'))
}

/// Whether the process's command line mentions `path`.
pub fn cmdline_mentions(pid: u32, path: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = path.as_os_str().as_encoded_bytes();
    raw.windows(needle.len()).any(|w| w == needle)
}

/// A dev cluster of real node processes in a temporary home.
pub struct Cluster {
    /// Holds the home and scratch files; deleted when the cluster drops.
    dir: tempfile::TempDir,
    /// The cluster home (`DYNAMO_HOME`).
    home: PathBuf,
    /// The node names, `n1`…
    pub names: Vec<String>,
}

impl Cluster {
    /// `dynamo up --nodes N --base-port 0 --detach`.
    #[track_caller]
    pub fn start(nodes: usize) -> Cluster {
        Cluster::start_with(nodes, &[])
    }

    /// `dynamo up --nodes N --base-port 0 --detach` with more flags.
    #[track_caller]
    pub fn start_with(nodes: usize, extra: &[&str]) -> Cluster {
        let cluster = Cluster::unstarted(nodes);
        let count = nodes.to_string();
        let mut args = vec!["up", "--nodes", &count, "--base-port", "0", "--detach"];
        args.extend_from_slice(extra);
        let up = cluster.run(&args);
        up.ok();
        cluster
    }

    /// A cluster of `nodes` nodes yet to be made: its home does not exist.
    pub fn unstarted(nodes: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("dynamo-e2e-")
            .tempdir()
            .expect("a temporary folder");
        let home = dir.path().join("home");
        Cluster {
            dir,
            home,
            names: (1..=nodes).map(|i| format!("n{i}")).collect(),
        }
    }

    /// A `dynamo` command for this cluster, to spawn by hand.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(DYNAMO);
        command
            .args(args)
            .env("DYNAMO_HOME", &self.home)
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("DYNAMO_LOG");
        command
    }

    /// The cluster home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// A path for scratch files beside (not inside) the home.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `dynamo ARGS` against this cluster.
    pub fn run(&self, args: &[&str]) -> Run {
        dynamo_in(&self.home, args, None)
    }

    /// Runs `dynamo ARGS` with `stdin` as standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        dynamo_in(&self.home, args, Some(stdin))
    }

    /// Runs `dynamo ARGS --json`, expects exit 0, parses stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all);
        run.ok();
        run.json()
    }

    /// `dynamo put KEY VALUE [extra…]`, expected to succeed; returns the
    /// context token it printed.
    #[track_caller]
    pub fn put(&self, key: &str, value: &str, extra: &[&str]) -> String {
        let mut args = vec!["put", key, value];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        run.ok();
        let token = run.text().trim().to_string();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "`{}`: expected one context token on stdout, got {:?}",
            run.line,
            run.text()
        );
        token
    }

    /// `dynamo get KEY [extra…]`, expected to print exactly `value`.
    #[track_caller]
    pub fn expect_value(&self, key: &str, value: &[u8], extra: &[&str]) {
        let mut args = vec!["get", key];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        run.ok();
        assert!(
            run.stdout == value,
            "`{}`: expected {:?}, got {:?}",
            run.line,
            String::from_utf8_lossy(value),
            run.text()
        );
    }

    /// The pids in the nodes' pid files (nodes without one are skipped).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.names
            .iter()
            .filter_map(|name| {
                let text = std::fs::read_to_string(self.home.join(name).join("node.pid")).ok()?;
                Some((name.clone(), text.trim().parse().ok()?))
            })
            .collect()
    }

    /// The node processes of this cluster still running, found by their
    /// pid files and checked by their command line.
    pub fn running_nodes(&self) -> Vec<(String, u32)> {
        self.pids()
            .into_iter()
            .filter(|(_, pid)| is_running(*pid) && cmdline_mentions(*pid, &self.home))
            .collect()
    }

    /// `dynamo down`, expected to succeed.
    #[track_caller]
    pub fn down(&self) {
        self.run(&["down"]).ok();
    }

    /// `dynamo up` on the existing home, expected to succeed.
    #[track_caller]
    pub fn up_again(&self) -> Run {
        let run = self.run(&["up", "--detach"]);
        run.ok();
        run
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.home.join("cluster.toml").exists() {
            return;
        }
        // Pids first: `down` removes the pid files.
        let pids = self.running_nodes();
        if pids.is_empty() {
            return;
        }
        let down = dynamo_in(&self.home, &["down"], None);
        if down.code != 0 {
            eprintln!("`dynamo down` failed in cleanup: {}", down.stderr);
        }
        for (name, pid) in pids {
            if is_running(pid) && cmdline_mentions(pid, &self.home) {
                eprintln!("node {name} (pid {pid}) survived `dynamo down`; killing it");
                if let Ok(raw) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(raw),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}
