//! What `dynamo get --explain` shows: how one get's answer came about.
//!
//! The coordinating node fills an [`Explanation`] while it runs the get:
//! the key's partition and preference list, every replica or fallback it
//! asked with the time its answer took, the hints its own store holds for
//! the key, the read repair it did, and the merged object (whose siblings
//! carry their dots and clocks). It is a plain value sent back to the
//! client; nothing here decides anything.

use serde::{Deserialize, Serialize};

use crate::core::clock::Object;

/// What became of one request a coordinator sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetOutcome {
    /// It answered; `found` says whether it held any version of the key.
    Answered {
        /// Whether it had an object for the key.
        found: bool,
    },
    /// It failed or timed out.
    Failed,
    /// No answer by the time the explanation was sent.
    Pending,
}

/// One node a get asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    /// The node asked.
    pub node: String,
    /// For a fallback: the home replica it stood in for.
    pub hint_for: Option<String>,
    /// What it did.
    pub outcome: TargetOutcome,
    /// Microseconds from the start of the get to its answer or failure.
    pub micros: Option<u64>,
}

/// How a get's answer came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The node that coordinated the get.
    pub coordinator: String,
    /// The key's partition.
    pub partition: u32,
    /// The key's preference list (home replicas).
    pub preference_list: Vec<String>,
    /// Peers the coordinator considered unreachable when it planned the get.
    pub unreachable: Vec<String>,
    /// R.
    pub needed: u8,
    /// Whether R replies arrived.
    pub quorum_reached: bool,
    /// Every node asked, in the order asked.
    pub targets: Vec<TargetReport>,
    /// Owners for whom the coordinator's node holds a hint of this key.
    pub hints_held_for: Vec<String>,
    /// Whether read repair ran (some home replica was behind the merge).
    pub read_repair: bool,
    /// Home replicas that read repair sent the merged object to, and
    /// whether each acknowledged.
    pub repaired: Vec<(String, bool)>,
    /// The merged object: siblings with their dots and clocks.
    pub object: Object,
}
