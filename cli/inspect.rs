//! Inspection and membership commands: `ring` (and `ring plan`),
//! `add-node` and `leave` (`merkle` and `repair` are in `merkle.rs`, `sim`
//! has its own file). Not implemented yet: each fails with a clear message.

use std::process::ExitCode;

use dynamo::home::Home;

use crate::args::{AddNodeArgs, NodeName, RingArgs};
use crate::exit;

fn not_yet(command: &str) -> anyhow::Result<ExitCode> {
    Err(exit::error(format!(
        "`dynamo {command}` is not implemented yet"
    )))
}

/// `dynamo ring` and `dynamo ring plan`.
#[allow(dead_code)]
pub async fn ring(_home: &Home, _args: &RingArgs) -> anyhow::Result<ExitCode> {
    not_yet("ring")
}

/// `dynamo add-node`.
pub async fn add_node(_home: &Home, _args: &AddNodeArgs) -> anyhow::Result<ExitCode> {
    not_yet("add-node")
}

/// `dynamo leave`.
pub async fn leave(_home: &Home, _args: &NodeName) -> anyhow::Result<ExitCode> {
    not_yet("leave")
}
