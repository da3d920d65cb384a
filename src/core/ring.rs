//! The ring: Q equal partitions of a 64-bit hash space, their owners, and
//! preference lists (Dynamo paper §4.2 and §6.2, partitioning strategy 3).
//!
//! The space of key positions (see [`crate::core::key`]) is cut into `Q`
//! equal partitions, `Q` a power of two, so partition `p` holds the positions
//! whose top `log2 Q` bits equal `p`. Partition `p` is owned by the
//! `p mod S`-th of the `S` members sorted by name, which gives every member
//! `⌊Q/S⌋` or `⌈Q/S⌉` partitions and makes any `S` consecutive partitions
//! belong to `S` distinct members. A key's *preference list* is the first `N`
//! distinct owners met walking clockwise from its partition; the *extended*
//! list keeps walking past `N` and names every member once, in the order
//! fallbacks are tried when a replica is unreachable (sloppy quorum).
//!
//! The ring is a value: the same members and `Q` always give the same owners,
//! and [`Ring::fingerprint`] lets nodes check that they agree on it.

use serde::{Deserialize, Serialize};

/// A partition number, `0..Q`.
pub type PartitionId = u32;

/// Why a ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// `Q` is not a power of two in `1..=4096`.
    #[error("partitions must be a power of two between 1 and 4096, not {0}")]
    BadPartitionCount(u32),
    /// No members.
    #[error("a ring needs at least one member")]
    NoMembers,
    /// More members than partitions.
    #[error("{members} members cannot share {partitions} partitions")]
    TooManyMembers {
        /// Members.
        members: usize,
        /// Partitions.
        partitions: u32,
    },
    /// A name appears twice.
    #[error("member {0:?} appears twice")]
    DuplicateMember(String),
    /// A name that is not a member.
    #[error("{0:?} is not a member of the ring")]
    UnknownMember(String),
    /// An owner table that does not fit the partitions.
    #[error("an owner table must name one member per partition")]
    BadOwners,
}

/// Partitions, their owners and preference lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    members: Vec<String>,
    owners: Vec<u16>,
    partition_bits: u32,
}

impl Ring {
    /// Builds the ring for these members (any order) and `Q` partitions.
    pub fn new(members: &[String], partitions: u32) -> Result<Self, RingError> {
        if !partitions.is_power_of_two() || partitions > 4096 {
            return Err(RingError::BadPartitionCount(partitions));
        }
        if members.is_empty() {
            return Err(RingError::NoMembers);
        }
        if members.len() > partitions as usize {
            return Err(RingError::TooManyMembers {
                members: members.len(),
                partitions,
            });
        }
        let mut sorted = members.to_vec();
        sorted.sort();
        for pair in sorted.windows(2) {
            if pair[0] == pair[1] {
                return Err(RingError::DuplicateMember(pair[0].clone()));
            }
        }
        let owners = (0..partitions)
            .map(|p| (p as usize % sorted.len()) as u16)
            .collect();
        Ok(Self {
            members: sorted,
            owners,
            partition_bits: partitions.trailing_zeros(),
        })
    }

    /// A ring with an explicit owner per partition (after a membership
    /// change, see [`crate::core::ring_plan`]). `owners[p]` must name a
    /// member; `owners.len()` is Q.
    pub fn from_owners(members: &[String], owners: &[String]) -> Result<Self, RingError> {
        let q = u32::try_from(owners.len()).map_err(|_| RingError::BadOwners)?;
        let mut ring = Self::new(members, q)?;
        for (p, owner) in owners.iter().enumerate() {
            let index = ring
                .members
                .iter()
                .position(|m| m == owner)
                .ok_or_else(|| RingError::UnknownMember(owner.clone()))?;
            ring.owners[p] = index as u16;
        }
        Ok(ring)
    }

    /// The owner of every partition, by name, in partition order (the owner
    /// table a [`Ring::from_owners`] would rebuild this ring from).
    pub fn owner_table(&self) -> Vec<String> {
        (0..self.partitions())
            .map(|p| self.owner(p).to_string())
            .collect()
    }

    /// Q, the number of partitions.
    pub fn partitions(&self) -> u32 {
        self.owners.len() as u32
    }

    /// The members, sorted by name.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The partition holding a ring position.
    pub fn partition_of(&self, position: u64) -> PartitionId {
        if self.partition_bits == 0 {
            0
        } else {
            (position >> (64 - self.partition_bits)) as PartitionId
        }
    }

    /// The first and last ring position of a partition (inclusive).
    pub fn range(&self, partition: PartitionId) -> (u64, u64) {
        if self.partition_bits == 0 {
            return (0, u64::MAX);
        }
        let width = 1u64 << (64 - self.partition_bits);
        let start = u64::from(partition) * width;
        (start, start + (width - 1))
    }

    /// The member that owns a partition (the first of its preference list).
    pub fn owner(&self, partition: PartitionId) -> &str {
        &self.members[self.owners[partition as usize % self.owners.len()] as usize]
    }

    /// Every member once, in the order met walking clockwise from `partition`:
    /// the first `N` are the preference list, the rest are fallbacks.
    pub fn extended_list(&self, partition: PartitionId) -> Vec<&str> {
        let q = self.owners.len();
        let mut seen = vec![false; self.members.len()];
        let mut list = Vec::with_capacity(self.members.len());
        for step in 0..q {
            let member = self.owners[(partition as usize + step) % q] as usize;
            if !seen[member] {
                seen[member] = true;
                list.push(self.members[member].as_str());
                if list.len() == self.members.len() {
                    break;
                }
            }
        }
        list
    }

    /// The first `n` distinct members walking clockwise from `partition`.
    pub fn preference_list(&self, partition: PartitionId, n: usize) -> Vec<&str> {
        let mut list = self.extended_list(partition);
        list.truncate(n);
        list
    }

    /// How many partitions a member owns.
    pub fn owned_by(&self, member: &str) -> usize {
        match self.members.iter().position(|m| m == member) {
            Some(index) => self.owners.iter().filter(|&&o| o as usize == index).count(),
            None => 0,
        }
    }

    /// A 64-bit digest of members and owners: equal rings, equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = blake3::Hasher::new();
        for member in &self.members {
            hasher.update(&(member.len() as u32).to_be_bytes());
            hasher.update(member.as_bytes());
        }
        for owner in &self.owners {
            hasher.update(&owner.to_be_bytes());
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        u64::from_be_bytes(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: usize) -> Vec<String> {
        (1..=s).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn ownership_is_balanced_for_1_to_16_members() {
        for q in [16u32, 64, 256, 4096] {
            for s in 1..=16usize {
                if s > q as usize {
                    continue;
                }
                let ring = Ring::new(&names(s), q).unwrap();
                let floor = q as usize / s;
                let total: usize = names(s).iter().map(|m| ring.owned_by(m)).sum();
                assert_eq!(total, q as usize);
                for m in names(s) {
                    let owned = ring.owned_by(&m);
                    assert!(
                        owned == floor || owned == floor + 1,
                        "Q={q} S={s}: {m} owns {owned}"
                    );
                }
            }
        }
    }

    #[test]
    fn preference_lists_are_distinct_and_start_at_the_owner() {
        for s in 1..=16usize {
            let ring = Ring::new(&names(s), 64).unwrap();
            for p in 0..64 {
                let ext = ring.extended_list(p);
                assert_eq!(ext.len(), s);
                let mut sorted = ext.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), s, "duplicates in {ext:?}");
                assert_eq!(ext[0], ring.owner(p));
                let n = s.min(3);
                assert_eq!(ring.preference_list(p, n), ext[..n].to_vec());
            }
        }
    }

    #[test]
    fn assignments_are_stable_when_nothing_changes() {
        let a = Ring::new(&names(5), 64).unwrap();
        let mut shuffled = names(5);
        shuffled.reverse();
        let b = Ring::new(&shuffled, 64).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = Ring::new(&names(6), 64).unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn partitions_cover_the_ring_exactly() {
        for q in [1u32, 2, 64, 4096] {
            let ring = Ring::new(&names(1), q).unwrap();
            let mut next = 0u64;
            for p in 0..q {
                let (start, end) = ring.range(p);
                assert_eq!(start, next);
                assert_eq!(ring.partition_of(start), p);
                assert_eq!(ring.partition_of(end), p);
                next = end.wrapping_add(1);
            }
            assert_eq!(next, 0, "the last partition ends at u64::MAX");
        }
    }

    #[test]
    fn bad_rings_are_refused() {
        assert_eq!(
            Ring::new(&names(3), 48),
            Err(RingError::BadPartitionCount(48))
        );
        assert_eq!(Ring::new(&[], 64), Err(RingError::NoMembers));
        assert!(Ring::new(&names(5), 4).is_err());
        let dup = vec!["a".to_string(), "a".to_string()];
        assert_eq!(
            Ring::new(&dup, 64),
            Err(RingError::DuplicateMember("a".into()))
        );
    }
}
