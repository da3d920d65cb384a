//! Inspection, repair and membership commands: `ring` (and `ring plan`),
//! `merkle` (and `merkle diff`), `repair`, `add-node` and `leave` (`sim`
//! has its own file). Not implemented yet: each fails with a clear message.

use std::process::ExitCode;

use dynamo::home::Home;

use crate::args::{AddNodeArgs, MerkleArgs, NodeName, RepairArgs, RingArgs};
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

/// `dynamo merkle` and `dynamo merkle diff`.
pub async fn merkle(_home: &Home, _args: &MerkleArgs) -> anyhow::Result<ExitCode> {
    not_yet("merkle")
}

/// `dynamo repair`.
pub async fn repair(_home: &Home, _args: &RepairArgs) -> anyhow::Result<ExitCode> {
    not_yet("repair")
}

/// `dynamo add-node`.
pub async fn add_node(_home: &Home, _args: &AddNodeArgs) -> anyhow::Result<ExitCode> {
    not_yet("add-node")
}

/// `dynamo leave`.
pub async fn leave(_home: &Home, _args: &NodeName) -> anyhow::Result<ExitCode> {
    not_yet("leave")
}
