//! Membership change plans: which partitions move, from where to where, when
//! a node joins or leaves (paper §4.9 and §6.2, strategy 3).
//!
//! A plan keeps ownership balanced (every member owns ⌊Q/S⌋ or ⌈Q/S⌉
//! partitions afterwards) and moves as few partitions as possible: on a join
//! exactly the partitions the new member must own, each taken from a member
//! that owns more than its share; on a leave exactly the leaving member's
//! partitions, each given to a member that owns less than its share. Among
//! equally good choices it prefers partitions whose neighbourhood (the N-1
//! partitions on either side) the receiving member does not own yet, so
//! preference lists keep spreading over distinct members. Ties go to the
//! lowest partition and the first member by name: the same ring and change
//! always give the same plan. `dynamo ring plan` shows a plan;
//! `add-node`/`leave` carry out exactly that plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::ring::{PartitionId, Ring, RingError};

/// One partition changing owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The partition.
    pub partition: PartitionId,
    /// Its owner now.
    pub from: String,
    /// Its owner after the change.
    pub to: String,
}

/// What a membership change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPlan {
    /// Partitions that change owner, in partition order.
    pub moves: Vec<Move>,
    /// The ring afterwards.
    pub after: Ring,
}

impl RingPlan {
    /// Partitions owned per member afterwards.
    pub fn ownership_after(&self) -> BTreeMap<String, usize> {
        ownership(&self.after)
    }
}

/// Partitions owned per member.
pub fn ownership(ring: &Ring) -> BTreeMap<String, usize> {
    ring.members()
        .iter()
        .map(|m| (m.clone(), ring.owned_by(m)))
        .collect()
}

/// The paper's load-balance measure applied to replica placement: each
/// member's load is the number of partitions it holds a replica of (it is
/// in their top `n`); a member is out of balance when its load deviates from
/// the mean by 15% or more. Returns the fraction of members out of balance
/// and the ratio of the largest load to the mean.
pub fn balance(ring: &Ring, n: usize) -> (f64, f64) {
    let mut load: BTreeMap<&str, usize> = ring.members().iter().map(|m| (m.as_str(), 0)).collect();
    for p in 0..ring.partitions() {
        for m in ring.preference_list(p, n) {
            if let Some(l) = load.get_mut(m) {
                *l += 1;
            }
        }
    }
    let mean = load.values().sum::<usize>() as f64 / load.len().max(1) as f64;
    if mean == 0.0 {
        return (0.0, 1.0);
    }
    let out = load
        .values()
        .filter(|&&l| ((l as f64 - mean) / mean).abs() >= 0.15)
        .count();
    let max = load.values().copied().max().unwrap_or(0) as f64;
    (out as f64 / load.len() as f64, max / mean)
}

/// How many of the `span` partitions on either side of `p` `member` owns.
fn neighbours_owned(owners: &[String], p: usize, member: &str, span: usize) -> usize {
    let q = owners.len();
    (1..=span)
        .flat_map(|d| [(p + d) % q, (p + q - d % q) % q])
        .filter(|&i| i != p && owners[i] == member)
        .count()
}

/// The plan for `new` joining `ring`, with `n` replicas per key.
pub fn plan_add(ring: &Ring, new: &str, n: usize) -> Result<RingPlan, RingError> {
    if ring.members().iter().any(|m| m == new) {
        return Err(RingError::DuplicateMember(new.to_string()));
    }
    let mut members = ring.members().to_vec();
    members.push(new.to_string());
    let q = ring.partitions() as usize;
    if members.len() > q {
        return Err(RingError::TooManyMembers {
            members: members.len(),
            partitions: ring.partitions(),
        });
    }
    let mut owners: Vec<String> = ring.owner_table();
    let mut counts = ownership(ring);
    let share = q / members.len();
    let span = n.saturating_sub(1).max(1);
    let mut moves = Vec::new();
    for _ in 0..share {
        // The donor: the member owning the most (first by name on ties).
        let Some((donor, _)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            break;
        };
        let donor = donor.clone();
        let best = (0..q)
            .filter(|&p| owners[p] == donor)
            .min_by_key(|&p| (neighbours_owned(&owners, p, new, span), p));
        let Some(p) = best else { break };
        owners[p] = new.to_string();
        if let Some(c) = counts.get_mut(&donor) {
            *c -= 1;
        }
        moves.push(Move {
            partition: p as PartitionId,
            from: donor,
            to: new.to_string(),
        });
    }
    moves.sort_by_key(|m| m.partition);
    Ok(RingPlan {
        moves,
        after: Ring::from_owners(&members, &owners)?,
    })
}

/// The plan for `leaving` leaving `ring`, with `n` replicas per key.
pub fn plan_remove(ring: &Ring, leaving: &str, n: usize) -> Result<RingPlan, RingError> {
    let members: Vec<String> = ring
        .members()
        .iter()
        .filter(|m| *m != leaving)
        .cloned()
        .collect();
    if members.len() == ring.members().len() {
        return Err(RingError::UnknownMember(leaving.to_string()));
    }
    if members.is_empty() {
        return Err(RingError::NoMembers);
    }
    let q = ring.partitions() as usize;
    let mut owners: Vec<String> = ring.owner_table();
    let mut counts: BTreeMap<String, usize> = members
        .iter()
        .map(|m| (m.clone(), ring.owned_by(m)))
        .collect();
    let span = n.saturating_sub(1).max(1);
    let mut moves = Vec::new();
    for p in 0..q {
        if owners[p] != leaving {
            continue;
        }
        // The receiver: fewest partitions, then fewest neighbours of p, then name.
        let Some(to) = counts
            .iter()
            .min_by_key(|(m, c)| (**c, neighbours_owned(&owners, p, m, span), (*m).clone()))
            .map(|(m, _)| m.clone())
        else {
            break;
        };
        owners[p] = to.clone();
        if let Some(c) = counts.get_mut(&to) {
            *c += 1;
        }
        moves.push(Move {
            partition: p as PartitionId,
            from: leaving.to_string(),
            to,
        });
    }
    Ok(RingPlan {
        moves,
        after: Ring::from_owners(&members, &owners)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: usize) -> Vec<String> {
        (1..=s).map(|i| format!("n{i}")).collect()
    }

    fn assert_balanced(ring: &Ring) {
        let q = ring.partitions() as usize;
        let s = ring.members().len();
        for (m, owned) in ownership(ring) {
            assert!(
                owned == q / s || owned == q / s + 1,
                "{m} owns {owned} of {q} with {s} members"
            );
        }
    }

    #[test]
    fn a_join_moves_exactly_the_new_members_share_and_stays_balanced() {
        for q in [16u32, 64, 256] {
            for s in 1..=12usize {
                let ring = Ring::new(&names(s), q).unwrap();
                let plan = plan_add(&ring, "new", 3).unwrap();
                assert_eq!(plan.moves.len(), q as usize / (s + 1), "Q={q} S={s}");
                assert!(plan.moves.iter().all(|m| m.to == "new"));
                assert_balanced(&plan.after);
                // Nothing else moved.
                for p in 0..q {
                    if !plan.moves.iter().any(|m| m.partition == p) {
                        assert_eq!(ring.owner(p), plan.after.owner(p));
                    }
                }
            }
        }
    }

    #[test]
    fn a_leave_moves_exactly_the_leavers_partitions_and_stays_balanced() {
        for q in [16u32, 64, 256] {
            for s in 2..=12usize {
                let ring = Ring::new(&names(s), q).unwrap();
                let plan = plan_remove(&ring, "n2", 3).unwrap();
                assert_eq!(plan.moves.len(), ring.owned_by("n2"));
                assert!(plan.moves.iter().all(|m| m.from == "n2"));
                assert!(!plan.after.members().iter().any(|m| m == "n2"));
                assert_balanced(&plan.after);
            }
        }
    }

    #[test]
    fn plans_are_deterministic_and_join_then_leave_is_balanced() {
        let ring = Ring::new(&names(5), 64).unwrap();
        assert_eq!(
            plan_add(&ring, "n6", 3).unwrap(),
            plan_add(&ring, "n6", 3).unwrap()
        );
        let joined = plan_add(&ring, "n6", 3).unwrap().after;
        let left = plan_remove(&joined, "n6", 3).unwrap().after;
        assert_balanced(&left);
        assert_eq!(left.members(), ring.members());
    }

    #[test]
    fn preference_lists_stay_distinct_after_changes() {
        let ring = Ring::new(&names(5), 64).unwrap();
        let joined = plan_add(&ring, "n6", 3).unwrap().after;
        for p in 0..64 {
            let pl = joined.preference_list(p, 3);
            let mut d = pl.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3, "partition {p}: {pl:?}");
        }
        let (out, max_ratio) = balance(&joined, 3);
        assert!(
            max_ratio < 1.5,
            "replica load max/mean {max_ratio}, out of balance {out}"
        );
    }

    #[test]
    fn bad_changes_are_refused() {
        let ring = Ring::new(&names(3), 4).unwrap();
        assert!(plan_add(&ring, "n1", 3).is_err());
        assert!(plan_remove(&ring, "n9", 3).is_err());
        let full = Ring::new(&names(4), 4).unwrap();
        assert!(plan_add(&full, "n5", 3).is_err());
        let one = Ring::new(&names(1), 4).unwrap();
        assert!(plan_remove(&one, "n1", 3).is_err());
    }
}
