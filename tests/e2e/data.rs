//! The data commands against a running cluster: put and get through any
//! node, siblings from concurrent writes and their resolution, deletes,
//! and binary values.

use base64::Engine;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::Cluster;

/// The values of `get --json`'s siblings, in the order shown.
fn sibling_values(doc: &Value) -> Vec<String> {
    doc["siblings"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a \"siblings\" array in {doc}"))
        .iter()
        .map(|s| {
            s["value"]
                .as_str()
                .unwrap_or_else(|| panic!("expected a text value in sibling {s}"))
                .to_string()
        })
        .collect()
}

#[test]
fn five_nodes_serve_every_key_through_every_node() {
    let cluster = Cluster::start(5);
    let status = cluster.json(&["status"]);
    let nodes = status["nodes"]
        .as_array()
        .expect("status has a nodes array");
    let states: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or("?"),
                n["state"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("n1", "up"),
            ("n2", "up"),
            ("n3", "up"),
            ("n4", "up"),
            ("n5", "up")
        ],
        "expected 5 nodes up in `status --json`, got {status}"
    );
    let owned: u64 = nodes.iter().filter_map(|n| n["partitions"].as_u64()).sum();
    assert_eq!(
        owned, 64,
        "expected the 5 nodes to own all 64 partitions: {status}"
    );

    // 100 keys, each written through one random node and read through another.
    let mut rng = rand::rngs::StdRng::seed_from_u64(100);
    let plan: Vec<(String, String, String, String)> = (0..100)
        .map(|i| {
            let a = rng.gen_range(1..=5);
            let b = (a + rng.gen_range(1..5) - 1) % 5 + 1;
            let value = format!("value {i} {:016x}", rng.gen::<u64>());
            (format!("key-{i}"), value, format!("n{a}"), format!("n{b}"))
        })
        .collect();
    std::thread::scope(|scope| {
        for chunk in plan.chunks(25) {
            let cluster = &cluster;
            scope.spawn(move || {
                for (key, value, writer, reader) in chunk {
                    assert_ne!(writer, reader, "expected a different node to read {key}");
                    cluster.put(key, value, &["--node", writer]);
                    cluster.expect_value(key, value.as_bytes(), &["--node", reader]);
                }
            });
        }
    });
    // Every key is still there, read through yet another node.
    for (i, (key, value, _, _)) in plan.iter().enumerate() {
        let node = format!("n{}", i % 5 + 1);
        cluster.expect_value(key, value.as_bytes(), &["--node", &node]);
    }
}

#[test]
fn concurrent_puts_through_one_coordinator_become_siblings_and_resolve() {
    let cluster = Cluster::start(3);
    let context = cluster.put("cart", "v0", &["--node", "n1"]);
    cluster.put("cart", "alpha", &["--context", &context, "--node", "n1"]);
    cluster.put("cart", "beta", &["--context", &context, "--node", "n1"]);

    // Plain get: exit 4, both siblings with their clocks on stderr.
    let get = cluster.run(&["get", "cart"]);
    get.expect_code(4);
    assert!(
        get.stdout.is_empty(),
        "expected no value on stdout with siblings, got {:?}",
        get.text()
    );
    for want in ["alpha", "beta", "clock", "dynamo resolve"] {
        assert!(
            get.stderr.contains(want),
            "expected {want:?} in get's sibling report, got:\n{}",
            get.stderr
        );
    }

    // get --json: exit 0, exactly the two siblings, each with a clock.
    let doc = cluster.json(&["get", "cart"]);
    let mut values = sibling_values(&doc);
    values.sort();
    assert_eq!(
        values,
        ["alpha", "beta"],
        "expected both concurrent writes as siblings: {doc}"
    );
    for sibling in doc["siblings"].as_array().into_iter().flatten() {
        let clock = sibling["clock"].as_object();
        assert!(
            clock.is_some_and(
                |c| !c.is_empty() && c.values().all(|v| v.as_u64().is_some_and(|n| n > 0))
            ),
            "expected a non-empty vector clock of positive counters, got {sibling}"
        );
        assert_eq!(
            sibling["deleted"], false,
            "expected a live sibling: {sibling}"
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sibling["value_base64"].as_str().unwrap_or_default())
            .expect("value_base64 is base64");
        assert_eq!(
            Some(String::from_utf8_lossy(&bytes).as_ref()),
            sibling["value"].as_str(),
            "expected value_base64 to hold the same bytes as value: {sibling}"
        );
    }
    assert_eq!(
        doc["bucket"], "default",
        "expected the default bucket: {doc}"
    );
    assert_eq!(doc["key"], "cart", "expected the key echoed: {doc}");
    assert!(
        doc["context"].as_str().is_some_and(|c| !c.is_empty()),
        "expected a context: {doc}"
    );

    // resolve --pick 1 keeps the first sibling shown.
    let first = sibling_values(&doc)[0].clone();
    cluster.run(&["resolve", "cart", "--pick", "1"]).ok();
    cluster.expect_value("cart", first.as_bytes(), &[]);
    let after = cluster.json(&["get", "cart"]);
    assert_eq!(
        sibling_values(&after),
        [first],
        "expected one version after resolve: {after}"
    );

    // Siblings again, then resolve --value writes a new value over both.
    let context = after["context"].as_str().expect("a context").to_string();
    cluster.put("cart", "gamma", &["--context", &context, "--node", "n1"]);
    cluster.put("cart", "delta", &["--context", &context, "--node", "n1"]);
    let doc = cluster.json(&["get", "cart"]);
    let mut values = sibling_values(&doc);
    values.sort();
    assert_eq!(
        values,
        ["delta", "gamma"],
        "expected two new siblings: {doc}"
    );
    cluster
        .run(&["resolve", "cart", "--value", "gamma+delta"])
        .ok();
    cluster.expect_value("cart", b"gamma+delta", &[]);
    for node in ["n1", "n2", "n3"] {
        cluster.expect_value("cart", b"gamma+delta", &["--node", node]);
    }

    // --pick out of range is a usage error that writes nothing.
    cluster.put("cart", "epsilon", &[]);
    let bad = cluster.run(&["resolve", "cart", "--pick", "3"]);
    let message = bad.expect_clean_error(2);
    assert!(
        message.contains("--pick 3"),
        "expected the error to name --pick 3, got {message}"
    );
    assert_eq!(
        cluster.json(&["get", "cart"])["siblings"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "expected a refused --pick to leave both siblings"
    );
}

#[test]
fn deleted_keys_are_not_found_with_or_without_context() {
    let cluster = Cluster::start(3);
    let check_gone = |key: &str| {
        let get = cluster.run(&["get", key]);
        let message = get.expect_clean_error(3);
        assert!(
            message.contains("not found"),
            "expected \"not found\", got {message}"
        );
        let json = cluster.run(&["get", key, "--json"]);
        json.expect_code(3);
        let doc = json.json();
        assert_eq!(
            doc["siblings"],
            Value::Array(vec![]),
            "expected no siblings for {key}: {doc}"
        );
        assert_eq!(doc["key"], key, "expected the key echoed: {doc}");
    };

    // Without a context: over what a read sees now.
    cluster.put("plain", "one", &[]);
    cluster.put("plain", "two", &[]); // a blind write: two siblings
    cluster.run(&["delete", "plain"]).ok();
    check_gone("plain");

    // With the context of a read.
    cluster.put("ctx", "one", &[]);
    let doc = cluster.json(&["get", "ctx"]);
    let context = doc["context"].as_str().expect("a context token");
    let delete = cluster.run(&["delete", "ctx", "--context", context]);
    delete.ok();
    assert!(
        !delete.text().trim().is_empty(),
        "expected delete to print a context token"
    );
    check_gone("ctx");

    // Written again after the delete, the key holds only the new value.
    cluster.put("ctx", "again", &["--context", delete.text().trim()]);
    cluster.expect_value("ctx", b"again", &[]);

    // A key never written is not found either.
    check_gone("never-written");
}

#[test]
fn binary_values_round_trip_through_file_and_stdin() {
    let cluster = Cluster::start(3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(64);
    let mut blob = vec![0u8; 64 * 1024];
    rng.fill(&mut blob[..]);
    // Make sure it is not UTF-8 and holds a NUL and a newline at the end.
    blob[0] = 0xff;
    blob[1] = 0;
    *blob.last_mut().expect("not empty") = b'\n';

    let path = cluster.scratch("blob.bin");
    std::fs::write(&path, &blob).expect("write the blob");
    let file = path.to_str().expect("a UTF-8 temp path");
    cluster
        .run(&["put", "from-file", "--file", file, "--node", "n1"])
        .ok();
    for node in ["n1", "n2", "n3"] {
        cluster.expect_value("from-file", &blob, &["--node", node]);
    }

    blob.reverse();
    cluster.run_with_stdin(&["put", "from-stdin"], &blob).ok();
    cluster.expect_value("from-stdin", &blob, &["--node", "n2"]);

    // In JSON a binary value is null as text and exact in base64.
    let doc = cluster.json(&["get", "from-stdin"]);
    let sibling = &doc["siblings"][0];
    assert_eq!(
        sibling["value"],
        Value::Null,
        "expected no text for a binary value"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sibling["value_base64"].as_str().unwrap_or_default())
        .expect("value_base64 is base64");
    assert!(
        bytes == blob,
        "expected value_base64 to hold the exact 64 KiB value"
    );

    // An empty value is a value, not a missing key.
    cluster.run_with_stdin(&["put", "empty"], b"").ok();
    cluster.expect_value("empty", b"", &[]);
}

#[test]
fn buckets_keep_their_keys_apart() {
    let cluster = Cluster::start(3);
    cluster.put("shared-name", "in a", &["--bucket", "a"]);
    cluster.put("shared-name", "in b", &["--bucket", "b"]);
    cluster.expect_value("shared-name", b"in a", &["--bucket", "a"]);
    cluster.expect_value("shared-name", b"in b", &["--bucket", "b"]);
    cluster.run(&["get", "shared-name"]).expect_code(3);
    let doc = cluster.json(&["get", "shared-name", "--bucket", "b"]);
    assert_eq!(
        doc["bucket"], "b",
        "expected the bucket in get --json: {doc}"
    );
    cluster
        .run(&["delete", "shared-name", "--bucket", "a"])
        .ok();
    cluster
        .run(&["get", "shared-name", "--bucket", "a"])
        .expect_code(3);
    cluster.expect_value("shared-name", b"in b", &["--bucket", "b"]);
}
