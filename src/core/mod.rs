//! The pure protocol core: everything a node decides, with no I/O, no clock
//! and no randomness of its own (DESIGN.md §3).
//!
//! Inputs are requests, replies and `now`; outputs are values the driver acts
//! on: messages to send, objects to store, answers to give. The same code runs
//! inside a real node (`crate::node`) and inside the deterministic simulator,
//! so a seed that finds a bug replays it exactly.
//!
//! - [`ring`]: partitions, owners and preference lists (paper §4.2, strategy 3).
//! - [`clock`]: dotted version vector sets: siblings, contexts, merge (§4.4).
//! - [`coordinator`]: get and put coordination as state machines (§4.5).
//! - [`detector`]: the local view of which peers are reachable (§4.8.3).
//! - [`faults`]: the partition filter behind `dynamo partition`.
//! - [`handoff`]: pacing of hinted handoff (§4.6).
//! - [`explain`]: how a get's answer came about (`dynamo get --explain`).
//! - [`message`]: the one message enum nodes and clients exchange.
//! - [`node`]: the node's protocol as one state machine over a store.
//! - [`key`]: buckets, keys, their limits and their place on the ring.
//! - [`ring_plan`]: what a join or leave moves, balanced and minimal (§6.2).
//! - [`merkle`]: per-partition Merkle trees and the walk that diffs two (§4.7).
//! - [`membership`]: the versioned cluster state nodes gossip, and its merge (§4.8).
//! - [`tombstone`]: when a deleted key may be forgotten without resurrecting.

pub mod clock;
pub mod coordinator;
pub mod detector;
pub mod explain;
pub mod faults;
pub mod handoff;
pub mod key;
pub mod membership;
pub mod merkle;
pub mod message;
pub mod node;
pub mod ring;
pub mod ring_plan;
pub mod tombstone;
