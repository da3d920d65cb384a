//! `dynamo node --config FILE`: runs one node in the foreground until
//! SIGTERM or Ctrl-C. This is what `dynamo up` starts for each node, and how
//! a node runs on a real host.

use std::process::ExitCode;

use anyhow::Context;
use dynamo::config::NodeConfig;

use crate::args::NodeArgs;

/// `dynamo node`.
pub fn run(args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(&args.config)?;
    let name = config.name.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dynamo-node")
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(dynamo::node::run(config))
        .with_context(|| format!("node {name} failed"))?;
    Ok(ExitCode::SUCCESS)
}
