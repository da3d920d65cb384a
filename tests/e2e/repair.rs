//! Merkle anti-entropy end to end (issue 4): replicas that really diverge
//! (a replica restored on an empty disk: no hint, no read repair can bring
//! its keys back) show as differing roots in `merkle --json`, `merkle diff`
//! names the missing keys, and `repair --json` ends with every replica set
//! agreeing and every key back on the wiped node.

use serde_json::Value;

use crate::support::Cluster;

/// Partitions whose replicas' roots differ in `merkle --json`.
fn diverging(merkle: &Value) -> Vec<u64> {
    merkle["partitions"]
        .as_array()
        .expect("a partitions array")
        .iter()
        .filter(|p| {
            let roots: std::collections::BTreeSet<String> = p["roots"]
                .as_object()
                .expect("roots per replica")
                .values()
                .map(|v| v.to_string())
                .collect();
            roots.len() > 1 || p["agree"] == false
        })
        .map(|p| p["partition"].as_u64().expect("a partition number"))
        .collect()
}

#[test]
fn a_replica_restored_empty_diverges_until_repair_and_then_agrees() {
    let cluster = Cluster::start(5);
    for i in 0..200 {
        cluster.put(&format!("k{i}"), &format!("v{i}"), &[]);
    }
    let healthy = cluster.json(&["merkle"]);
    assert_eq!(healthy["partitions"].as_array().map(Vec::len), Some(64));
    assert!(diverging(&healthy).is_empty(), "healthy cluster: {healthy}");

    // n3 restored from an empty disk: stopped cleanly, its file deleted.
    cluster.run(&["stop", "n3"]).ok();
    let data = cluster.home().join("n3").join("data");
    for entry in std::fs::read_dir(&data).expect("n3's data folder") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "redb") {
            std::fs::remove_file(&path).expect("delete the redb file");
        }
    }
    cluster.run(&["start", "n3"]).ok();

    let before = cluster.json(&["merkle"]);
    let bad = diverging(&before);
    assert!(
        !bad.is_empty(),
        "n3 is empty, yet every root agrees: {before}"
    );
    for p in &bad {
        let row = &before["partitions"][*p as usize];
        assert!(
            row["roots"].get("n3").is_some(),
            "partition {p} differs without n3 among its replicas: {row}"
        );
    }
    // n3's status says it holds nothing; merkle diff names missing keys.
    let diff = cluster.json(&["merkle", "diff", "n1", "n3"]);
    let missing = diff["differing_keys"].as_u64().expect("a count");
    assert!(missing > 0, "{diff}");
    let only_left = diff["leaves"]
        .as_array()
        .expect("leaves")
        .iter()
        .flat_map(|l| l["keys"].as_array().cloned().unwrap_or_default())
        .all(|k| k["state"] == "only_left");
    assert!(only_left, "n3 lacks keys, it has none n1 lacks: {diff}");

    let repair = cluster.json(&["repair"]);
    assert_eq!(repair["diverging_after"], 0, "{repair}");
    assert_eq!(repair["partitions_checked"], 64, "{repair}");
    let to_n3 = repair["keys_repaired"]["n3"].as_u64().expect("n3's count");
    assert!(to_n3 > 0, "{repair}");
    assert!(
        repair["bytes_sent"].as_u64().is_some_and(|b| b > 0),
        "{repair}"
    );

    let after = cluster.json(&["merkle"]);
    assert!(diverging(&after).is_empty(), "after repair: {after}");
    // n3 holds its share again: every key of which it is a home replica.
    let status = cluster.json(&["status"]);
    let n3_keys = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "n3")
        .and_then(|n| n["keys"].as_u64())
        .expect("n3's key count");
    assert_eq!(
        n3_keys, to_n3,
        "n3 got back exactly what it was sent: {status}"
    );
    let diff = cluster.json(&["merkle", "diff", "n1", "n3"]);
    assert_eq!(diff["differing_keys"], 0, "{diff}");
}
