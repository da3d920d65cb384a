//! The versioned cluster state nodes gossip (paper §4.8): members, their
//! addresses and status, and the partition owners.
//!
//! Every member's entry carries a version that only its changer increases;
//! the owner table carries its own version. Two states merge entry by entry,
//! the higher version winning (ties broken by comparing the entries, so that
//! merge is commutative, associative and idempotent: every node ends with
//! the same state whatever order gossip arrives in). A node gossips with
//! one random peer per round; [`rounds_to_converge`] measures in simulation
//! how many rounds a change needs to reach every node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Known, receiving its partitions.
    Joining,
    /// Serving its partitions.
    Up,
    /// Handing its partitions away.
    Leaving,
    /// Gone; kept so that the departure spreads and is not undone.
    Left,
}

/// One member as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Increased by whoever changes this entry.
    pub version: u64,
    /// Where it listens (`host:port`).
    pub addr: String,
    /// Its status.
    pub status: MemberStatus,
}

/// The partition owners, versioned as one value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnerTable {
    /// Increased with every ownership change.
    pub version: u64,
    /// `owners[p]` owns partition `p`.
    pub owners: Vec<String>,
}

/// What one node believes about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Every member ever known, by name.
    pub members: BTreeMap<String, MemberEntry>,
    /// Who owns which partition.
    pub owners: Option<OwnerTable>,
}

impl ClusterState {
    /// Merges `other` into `self`; returns whether anything changed.
    pub fn merge(&mut self, other: &ClusterState) -> bool {
        let mut changed = false;
        for (name, theirs) in &other.members {
            match self.members.get(name) {
                Some(ours) if newer_or_equal(ours, theirs) => {}
                _ => {
                    self.members.insert(name.clone(), theirs.clone());
                    changed = true;
                }
            }
        }
        match (&self.owners, &other.owners) {
            (_, None) => {}
            (Some(ours), Some(theirs)) if (ours.version, ours) >= (theirs.version, theirs) => {}
            (_, Some(theirs)) => {
                self.owners = Some(theirs.clone());
                changed = true;
            }
        }
        changed
    }

    /// Sets a member's address and status, with a version above any seen.
    pub fn set_member(&mut self, name: &str, addr: &str, status: MemberStatus) {
        let version = self.members.get(name).map_or(1, |e| e.version + 1);
        self.members.insert(
            name.to_string(),
            MemberEntry {
                version,
                addr: addr.to_string(),
                status,
            },
        );
    }

    /// Replaces the owner table, with a version above the current one.
    pub fn set_owners(&mut self, owners: Vec<String>) {
        let version = self.owners.as_ref().map_or(1, |t| t.version + 1);
        self.owners = Some(OwnerTable { version, owners });
    }

    /// Members that are not gone, by name.
    pub fn live_members(&self) -> impl Iterator<Item = (&String, &MemberEntry)> {
        self.members
            .iter()
            .filter(|(_, e)| e.status != MemberStatus::Left)
    }

    /// A short digest to compare states cheaply before exchanging them.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        *blake3::hash(&bytes).as_bytes()
    }
}

fn newer_or_equal(ours: &MemberEntry, theirs: &MemberEntry) -> bool {
    (ours.version, ours) >= (theirs.version, theirs)
}

/// A small deterministic generator for the gossip simulation (xorshift64*).
#[derive(Debug, Clone)]
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Simulates push-pull gossip in a cluster of `nodes` in which one node
/// learns of a change: each round every node exchanges states with one peer
/// chosen at random. Returns the rounds until every node knows the change.
pub fn rounds_to_converge(nodes: usize, seed: u64) -> u32 {
    if nodes <= 1 {
        return 0;
    }
    let mut rng = Xorshift(seed | 1);
    let mut informed = vec![false; nodes];
    informed[0] = true;
    let mut count = 1;
    let mut rounds = 0;
    while count < nodes {
        rounds += 1;
        let before = informed.clone();
        for node in 0..nodes {
            let mut peer = rng.below(nodes - 1);
            if peer >= node {
                peer += 1;
            }
            if before[node] || before[peer] {
                for n in [node, peer] {
                    if !informed[n] {
                        informed[n] = true;
                        count += 1;
                    }
                }
            }
        }
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(
        entries: &[(&str, u64, MemberStatus)],
        owners: Option<(u64, &[&str])>,
    ) -> ClusterState {
        ClusterState {
            members: entries
                .iter()
                .map(|(n, v, s)| {
                    (
                        n.to_string(),
                        MemberEntry {
                            version: *v,
                            addr: format!("127.0.0.1:{v}"),
                            status: *s,
                        },
                    )
                })
                .collect(),
            owners: owners.map(|(version, o)| OwnerTable {
                version,
                owners: o.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn higher_versions_win_and_merge_reports_change() {
        let mut a = state(
            &[
                ("n1", 1, MemberStatus::Up),
                ("n2", 3, MemberStatus::Leaving),
            ],
            Some((1, &["n1", "n2"])),
        );
        let b = state(
            &[
                ("n1", 2, MemberStatus::Leaving),
                ("n2", 2, MemberStatus::Up),
                ("n3", 1, MemberStatus::Joining),
            ],
            Some((2, &["n1", "n1"])),
        );
        assert!(a.merge(&b));
        assert_eq!(a.members["n1"].status, MemberStatus::Leaving);
        assert_eq!(
            a.members["n2"].status,
            MemberStatus::Leaving,
            "n2 version 3 stays"
        );
        assert_eq!(a.members["n3"].status, MemberStatus::Joining);
        assert_eq!(a.owners.as_ref().map(|t| t.version), Some(2));
        assert!(!a.clone().merge(&b), "merging again changes nothing");
    }

    #[test]
    fn gossip_reaches_everyone_in_logarithmic_rounds() {
        for (nodes, max) in [(5, 8), (50, 12), (500, 16), (5000, 20)] {
            let rounds: Vec<u32> = (1..=5)
                .map(|seed| rounds_to_converge(nodes, seed))
                .collect();
            assert!(
                rounds.iter().all(|&r| r <= max),
                "{nodes} nodes took {rounds:?} rounds"
            );
        }
    }

    fn arb_state() -> impl Strategy<Value = ClusterState> {
        let entry = (
            1u64..4,
            prop_oneof![
                Just(MemberStatus::Up),
                Just(MemberStatus::Leaving),
                Just(MemberStatus::Left)
            ],
        );
        (
            proptest::collection::btree_map(
                prop_oneof![Just("n1"), Just("n2"), Just("n3")],
                entry,
                0..3,
            ),
            proptest::option::of((
                1u64..3,
                proptest::collection::vec(prop_oneof![Just("n1"), Just("n2")], 2),
            )),
        )
            .prop_map(|(m, o)| ClusterState {
                members: m
                    .into_iter()
                    .map(|(n, (v, s))| {
                        (
                            n.to_string(),
                            MemberEntry {
                                version: v,
                                addr: format!("a{}", v % 2),
                                status: s,
                            },
                        )
                    })
                    .collect(),
                owners: o.map(|(version, owners)| OwnerTable {
                    version,
                    owners: owners.into_iter().map(String::from).collect(),
                }),
            })
    }

    fn merged(a: &ClusterState, b: &ClusterState) -> ClusterState {
        let mut m = a.clone();
        m.merge(b);
        m
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(a in arb_state(), b in arb_state(), c in arb_state()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
        }
    }
}
