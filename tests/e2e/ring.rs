//! `dynamo ring`: the shape CLI.md fixes, a ring that covers the whole hash
//! space with balanced owners and N distinct replicas per partition, and
//! `--key` naming the nodes that really hold the key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::support::{poll, Cluster};

fn hex(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex string, got {value}"));
    let digits = text
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("expected 0x before {text}"));
    assert_eq!(digits.len(), 16, "expected 16 hex digits in {text}");
    u64::from_str_radix(digits, 16).unwrap_or_else(|e| panic!("expected hex, got {text}: {e}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list of node names, got {list}"))
        .iter()
        .map(|n| {
            n.as_str()
                .unwrap_or_else(|| panic!("expected a name, got {n}"))
                .to_string()
        })
        .collect()
}

#[test]
fn the_ring_covers_the_hash_space_with_balanced_owners() {
    let cluster = Cluster::start(5);
    let ring = cluster.json(&["ring"]);
    assert!(
        ring["version"].as_u64().is_some(),
        "expected a numeric version: {ring}"
    );
    assert_eq!(ring["partitions"], 64, "expected Q = 64");
    assert_eq!(ring["replicas"], 3, "expected N = 3");
    let partitions = ring["ring"].as_array().expect("a ring array");
    assert_eq!(partitions.len(), 64, "expected one entry per partition");

    let mut next_start = 0u64;
    let mut owned: BTreeMap<String, u64> = BTreeMap::new();
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i, "expected partitions in order: {p}");
        let (start, end) = (hex(&p["start"]), hex(&p["end"]));
        assert_eq!(
            start,
            next_start,
            "expected partition {i} to start where {} ended: {p}",
            i.saturating_sub(1)
        );
        assert!(end >= start, "expected a non-empty range: {p}");
        next_start = end.wrapping_add(1);
        let list = names(&p["preference_list"]);
        let distinct: BTreeSet<&String> = list.iter().collect();
        assert_eq!(
            (list.len(), distinct.len()),
            (3, 3),
            "expected 3 distinct nodes in partition {i}'s preference list: {list:?}"
        );
        assert_eq!(
            p["owner"].as_str(),
            Some(list[0].as_str()),
            "expected the owner to lead the list: {p}"
        );
        *owned.entry(list[0].clone()).or_default() += 1;
    }
    assert_eq!(
        next_start, 0,
        "expected the last partition to end at 0xffffffffffffffff"
    );

    let nodes = ring["nodes"].as_object().expect("a nodes object");
    let counts: BTreeMap<String, u64> = nodes
        .iter()
        .map(|(name, n)| (name.clone(), n["partitions"].as_u64().unwrap_or(u64::MAX)))
        .collect();
    assert_eq!(
        counts, owned,
        "expected nodes.partitions to count the partitions each owns"
    );
    assert_eq!(
        counts.len(),
        5,
        "expected all 5 nodes to own partitions: {counts:?}"
    );
    let (min, max) = (counts.values().min(), counts.values().max());
    assert!(
        matches!((min, max), (Some(min), Some(max)) if max - min <= 1),
        "expected ownership balanced to within one partition, got {counts:?}"
    );
    // The nodes themselves agree with the manifest's ring.
    let status = cluster.json(&["status"]);
    for node in status["nodes"].as_array().into_iter().flatten() {
        let name = node["name"].as_str().unwrap_or("?");
        assert_eq!(
            node["partitions"].as_u64(),
            counts.get(name).copied(),
            "expected {name} to report the partitions the ring gives it: {node}"
        );
    }
}

#[test]
fn ring_key_names_the_nodes_that_hold_the_key() {
    let cluster = Cluster::start(5);
    let ring = cluster.json(&["ring"]);
    let doc = cluster.json(&["ring", "--key", "where-am-i"]);
    assert_eq!(doc["key"], "where-am-i", "expected the key echoed: {doc}");
    let partition = doc["partition"].as_u64().expect("a partition number");
    assert!(partition < 64, "expected a partition below Q = 64: {doc}");
    let list = names(&doc["preference_list"]);
    assert_eq!(
        list,
        names(&ring["ring"][partition as usize]["preference_list"]),
        "expected --key to give its partition's preference list"
    );
    assert_eq!(
        list.iter().collect::<BTreeSet<_>>().len(),
        3,
        "expected 3 distinct replicas: {list:?}"
    );

    // Write the key into the empty cluster: exactly those nodes hold it.
    cluster.put("where-am-i", "here", &[]);
    poll(
        Duration::from_secs(10),
        "the key on exactly its preference list",
        || {
            let status = cluster.json(&["status"]);
            let holders: Vec<String> = status["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["keys"].as_u64() == Some(1))
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect();
            let mut want = list.clone();
            want.sort();
            if holders == want {
                Ok(())
            } else {
                Err(format!("holders {holders:?}, want {want:?}: {status}"))
            }
        },
    );
    // Without --json: one line naming the partition and the replicas.
    let text = cluster.run(&["ring", "--key", "where-am-i"]);
    text.ok();
    for name in &list {
        assert!(
            text.text().contains(name.as_str()),
            "expected {name} in {:?}",
            text.text()
        );
    }
}
