//! `dynamo node --config FILE`: runs one node in the foreground until
//! SIGTERM or Ctrl-C. This is what `dynamo up` starts for each node, and how
//! a node runs on a real host. Logs go to the config's `log_file` (standard
//! error when it names none), filtered by `DYNAMO_LOG` (default `info`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dynamo::config::NodeConfig;
use tracing_subscriber::EnvFilter;

use crate::args::NodeArgs;

/// `dynamo node`.
pub fn run(args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(&args.config)?;
    let name = config.name.clone();
    let filter = EnvFilter::try_from_env("DYNAMO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The guard flushes buffered log lines when the node returns.
    let (writer, _guard) = match &config.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            tracing_appender::non_blocking(file)
        }
        None => tracing_appender::non_blocking(std::io::stderr()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    // A panic is one line in the log, not a trace on stderr; one the
    // storage turns into an error (redb asserting on a damaged file) is
    // said by that error alone.
    std::panic::set_hook(Box::new(|info| {
        if dynamo::storage::panic_is_contained() {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            "panic{at}: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }));
    let mut builder = match config.runtime_threads {
        0 => tokio::runtime::Builder::new_multi_thread(),
        1 => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
    };
    let runtime = builder
        .enable_all()
        .thread_name("dynamo-node")
        .build()
        .context("cannot start the async runtime")?;
    let stderr_is_the_log = config.log_file.as_deref().is_some_and(stderr_is);
    let result = runtime.block_on(dynamo::node::run(config));
    if let Err(e) = &result {
        tracing::error!("node {name} stopped: {e:#}");
        // Said once: `dynamo up` sends a node's stderr to its log file, so
        // the sentence on stderr would be the same line twice there.
        if stderr_is_the_log {
            drop(_guard);
            return Err(crate::exit::Reported.into());
        }
    }
    result.with_context(|| format!("node {name} failed"))?;
    Ok(ExitCode::SUCCESS)
}

/// Whether this process's standard error is the file at `path` (the same
/// device and inode), as when `dynamo up` starts a node.
fn stderr_is(path: &Path) -> bool {
    match (
        std::fs::metadata("/proc/self/fd/2"),
        std::fs::metadata(path),
    ) {
        (Ok(err), Ok(log)) => err.dev() == log.dev() && err.ino() == log.ino(),
        _ => false,
    }
}
