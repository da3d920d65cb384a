//! `dynamo ring plan`: a join moves exactly the new node's share, all of it
//! to the new node, and leaves ownership balanced; a leave moves exactly the
//! leaving node's partitions; bad changes are usage errors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::Cluster;

fn ownership(doc: &Value, field: &str) -> BTreeMap<String, u64> {
    doc[field]
        .as_object()
        .unwrap_or_else(|| panic!("expected an object in {field}: {doc}"))
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_u64()
                    .unwrap_or_else(|| panic!("expected a count for {k}: {doc}")),
            )
        })
        .collect()
}

fn moves(doc: &Value) -> Vec<(u64, String, String)> {
    doc["moves"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a moves array: {doc}"))
        .iter()
        .map(|m| {
            (
                m["partition"].as_u64().expect("a partition number"),
                m["from"].as_str().expect("a from node").to_string(),
                m["to"].as_str().expect("a to node").to_string(),
            )
        })
        .collect()
}

#[test]
fn plans_for_a_join_and_a_leave_are_minimal_and_balanced() {
    let cluster = Cluster::start(5);
    for i in 0..50 {
        cluster.put(&format!("plan-{i}"), "some value", &[]);
    }
    let ring = cluster.json(&["ring"]);

    let add = cluster.json(&["ring", "plan", "--add", "1"]);
    let moved = moves(&add);
    assert_eq!(moved.len(), 64 / 6, "expected 10 moves: {add}");
    for (p, from, to) in &moved {
        assert_eq!(to, "n6", "expected every move to the new node: {add}");
        assert_eq!(
            ring["ring"][*p as usize]["owner"].as_str(),
            Some(from.as_str()),
            "expected partition {p} to move from its current owner"
        );
    }
    let after = ownership(&add, "ownership_after");
    assert_eq!(after.len(), 6, "expected six owners after: {add}");
    assert!(
        after.values().all(|&c| c == 10 || c == 11),
        "expected 10 or 11 partitions each: {after:?}"
    );
    assert!(add["balance_before"]["max_over_mean"].as_f64().is_some());
    assert!(add["balance_after"]["out_of_balance"].as_f64().is_some());
    assert!(
        add["bytes_to_move"].as_u64().is_some_and(|b| b > 0),
        "expected some bytes to move: {add}"
    );

    let remove = cluster.json(&["ring", "plan", "--remove", "n2"]);
    let moved = moves(&remove);
    let n2_owns = ring["nodes"]["n2"]["partitions"]
        .as_u64()
        .expect("n2's count");
    assert_eq!(
        moved.len() as u64,
        n2_owns,
        "expected n2's partitions: {remove}"
    );
    assert!(moved.iter().all(|(_, from, to)| from == "n2" && to != "n2"));
    let after = ownership(&remove, "ownership_after");
    assert!(!after.contains_key("n2"), "expected n2 gone: {after:?}");
    assert!(
        after.values().all(|&c| c == 16),
        "expected 16 each: {after:?}"
    );

    // Several joins at once name the next free nodes.
    let add3 = cluster.json(&["ring", "plan", "--add", "3"]);
    let after = ownership(&add3, "ownership_after");
    for name in ["n6", "n7", "n8"] {
        assert!(after.contains_key(name), "expected {name}: {add3}");
    }
    assert!(
        after.values().all(|&c| c == 8),
        "expected 8 each: {after:?}"
    );

    // A table for people.
    let text = cluster.run(&["ring", "plan", "--add", "1"]);
    text.ok();
    assert!(text.text().contains("estimate"), "{}", text.text());

    cluster
        .run(&["ring", "plan", "--remove", "n9"])
        .expect_clean_error(2);
    cluster
        .run(&["ring", "plan", "--add", "0"])
        .expect_clean_error(2);
    cluster
        .run(&["ring", "plan", "--add", "100"])
        .expect_clean_error(2);
}
