//! The fault filter behind `dynamo partition` and `dynamo heal`: which
//! peers a node pretends it cannot reach.
//!
//! An operator cuts the cluster into groups; a node then drops all node
//! traffic to and from nodes outside its own group, in both directions, as
//! a real network partition would. A node named in no group is cut off from
//! everyone (the CLI refuses such partitions, so this only matters for a
//! hand-made request). Client traffic is never filtered.

use serde::{Deserialize, Serialize};

/// The groups currently in force (none: the network is whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFilter {
    groups: Vec<Vec<String>>,
}

impl PartitionFilter {
    /// Cuts the network into `groups`; an empty list heals it.
    pub fn new(groups: Vec<Vec<String>>) -> Self {
        Self { groups }
    }

    /// Whether any partition is in force.
    pub fn is_active(&self) -> bool {
        !self.groups.is_empty()
    }

    /// The groups in force.
    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// Whether `me` may exchange node traffic with `peer`.
    pub fn allows(&self, me: &str, peer: &str) -> bool {
        if !self.is_active() || me == peer {
            return true;
        }
        self.groups
            .iter()
            .any(|g| g.iter().any(|n| n == me) && g.iter().any(|n| n == peer))
    }

    /// Checks groups against the members: every name known, none twice,
    /// none left out. Returns a sentence saying what is wrong.
    pub fn check(groups: &[Vec<String>], members: &[String]) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for name in groups.iter().flatten() {
            if !members.contains(name) {
                return Err(format!("{name} is not a node of this cluster"));
            }
            if seen.contains(&name.as_str()) {
                return Err(format!("{name} is in two groups"));
            }
            seen.push(name);
        }
        let left: Vec<&str> = members
            .iter()
            .map(String::as_str)
            .filter(|m| !seen.contains(m))
            .collect();
        if !groups.is_empty() && !left.is_empty() {
            return Err(format!("{} in no group", left.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(groups: &[&[&str]]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn nodes_reach_only_their_own_group() {
        let f = PartitionFilter::new(g(&[&["n1", "n2"], &["n3", "n4", "n5"]]));
        assert!(f.allows("n1", "n2"));
        assert!(f.allows("n3", "n5"));
        assert!(!f.allows("n1", "n3"));
        assert!(!f.allows("n5", "n2"));
        assert!(f.allows("n1", "n1"));
        assert!(PartitionFilter::default().allows("n1", "n3"));
    }

    #[test]
    fn check_names_what_is_wrong() {
        let members: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        assert!(PartitionFilter::check(&g(&[&["n1"], &["n2", "n3"]]), &members).is_ok());
        assert!(PartitionFilter::check(&g(&[&["n1"], &["n9"]]), &members)
            .unwrap_err()
            .contains("n9"));
        assert!(
            PartitionFilter::check(&g(&[&["n1"], &["n1", "n2", "n3"]]), &members)
                .unwrap_err()
                .contains("two groups")
        );
        assert!(PartitionFilter::check(&g(&[&["n1"], &["n2"]]), &members)
            .unwrap_err()
            .contains("n3 in no group"));
    }
}
