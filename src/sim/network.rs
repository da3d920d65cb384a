//! The simulated network (after TigerBeetle's packet simulator): decides for
//! each message whether it arrives, when, and how many times.
//!
//! Node-to-node messages may be dropped (loss), delivered twice (dup), and
//! delayed by a random amount between the settings' bounds; with narrow
//! bounds each link stays first-in first-out, with wide ones (reorder)
//! messages overtake each other. A partition blocks directed node-to-node
//! links: a symmetric partition blocks both directions between groups, a
//! one-way partition blocks one direction of some links. Clients reach every
//! node whatever the partition (as with `dynamo partition`), with delay but
//! no loss; a node that is down simply never answers.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::Rng;

pub use crate::core::node::Addr;

/// What the network did with one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// Delivery times (none: dropped; two: duplicated).
    pub deliveries: Vec<u64>,
    /// Dropped by loss.
    pub lost: bool,
    /// Dropped by a partition.
    pub blocked: bool,
    /// Delivered twice.
    pub duplicated: bool,
    /// Overtakes a message sent earlier on the same link.
    pub reordered: bool,
}

/// Links, their faults, and the partition in force.
#[derive(Debug, Clone)]
pub struct Network {
    /// Chance a node-to-node message is lost.
    pub loss_probability: f64,
    /// Chance a node-to-node message is duplicated.
    pub dup_probability: f64,
    /// Shortest delay.
    pub delay_us_min: u64,
    /// Longest delay.
    pub delay_us_max: u64,
    /// Keep each link first-in first-out.
    pub fifo: bool,
    blocked: BTreeSet<(usize, usize)>,
    last_delivery: BTreeMap<(Addr, Addr), u64>,
}

impl Network {
    /// A network with these rates and no partition.
    pub fn new(
        loss_probability: f64,
        dup_probability: f64,
        delay_us_min: u64,
        delay_us_max: u64,
        fifo: bool,
    ) -> Self {
        Self {
            loss_probability,
            dup_probability,
            delay_us_min,
            delay_us_max: delay_us_max.max(delay_us_min),
            fifo,
            blocked: BTreeSet::new(),
            last_delivery: BTreeMap::new(),
        }
    }

    /// Ends every fault: no loss, no duplication, no partition, narrow
    /// first-in first-out delays (the liveness phase).
    pub fn heal_all(&mut self) {
        self.loss_probability = 0.0;
        self.dup_probability = 0.0;
        self.delay_us_max = self.delay_us_min + 200;
        self.fifo = true;
        self.blocked.clear();
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// Cuts the nodes into `groups` (both directions).
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            self.blocked.insert((x, y));
                        }
                    }
                }
            }
        }
    }

    /// Blocks messages from `from` to `to` only.
    pub fn block_one_way(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
    }

    /// Whether messages from node `from` to node `to` are blocked.
    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Routes one message sent at `now`.
    pub fn route(&mut self, rng: &mut StdRng, now: u64, from: Addr, to: Addr) -> Routing {
        let mut routing = Routing::default();
        let between_nodes = match (from, to) {
            (Addr::Node(a), Addr::Node(b)) => {
                if self.is_blocked(a, b) {
                    routing.blocked = true;
                    return routing;
                }
                true
            }
            _ => false,
        };
        if between_nodes && self.loss_probability > 0.0 && rng.gen_bool(self.loss_probability) {
            routing.lost = true;
            return routing;
        }
        let copies =
            if between_nodes && self.dup_probability > 0.0 && rng.gen_bool(self.dup_probability) {
                routing.duplicated = true;
                2
            } else {
                1
            };
        for _ in 0..copies {
            let mut at = now + rng.gen_range(self.delay_us_min..=self.delay_us_max);
            let last = self.last_delivery.entry((from, to)).or_insert(0);
            if self.fifo {
                at = at.max(*last);
            } else if at < *last {
                routing.reordered = true;
            }
            *last = (*last).max(at);
            routing.deliveries.push(at);
        }
        routing
    }
}
