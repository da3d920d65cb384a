//! A bucket's own N through every background path (issue 10 item 2): with
//! a narrow bucket (N = 2) and a wide one (N = 4) beside the default N = 3,
//! hinted handoff, read repair, anti-entropy, tombstone collection and a
//! join and a leave each end with every key on exactly the home replicas
//! its bucket's N names — no copy missing, none left on a node that does
//! not replicate it (a rule that used the cluster's N would leave one copy
//! too many of every narrow key, or one too few of every wide one).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::faults::{node_keys, status_rows, total_hints, wait_hints_drained, wipe, DRAIN_TIMEOUT};
use crate::http::{json, Api};
use crate::support::{poll, Cluster};

/// The two buckets and their N, R, W.
const NARROW: (&str, &str, &str, &str) = ("narrow", "2", "1", "2");
const WIDE: (&str, &str, &str, &str) = ("wide", "4", "2", "2");
/// Keys written to each bucket.
const KEYS: usize = 40;
/// How long copies may take to reach their replicas.
const SETTLE: Duration = Duration::from_secs(90);

/// A bucket's N as the CLI takes it.
fn n_of(bucket: &str) -> &'static str {
    if bucket == NARROW.0 {
        NARROW.1
    } else {
        WIDE.1
    }
}

fn key(bucket: &str, i: usize) -> String {
    format!("{bucket}-{i}")
}

/// Sets up both buckets and waits until every running node has them.
fn make_buckets(cluster: &Cluster) {
    for (name, n, r, w) in [NARROW, WIDE] {
        cluster
            .run(&["bucket", "set", name, "-N", n, "-R", r, "-W", w])
            .ok();
    }
    poll(Duration::from_secs(20), "both buckets everywhere", || {
        for (node, _) in cluster.running_nodes() {
            let api = Api::new(cluster, &node);
            for (name, n, _, _) in [NARROW, WIDE] {
                let props = json(&api.get(&format!("/buckets/{name}/props")));
                if props["n"].as_u64().map(|v| v.to_string()).as_deref() != Some(n) {
                    return Err(format!("{node} has {props}"));
                }
            }
        }
        Ok(())
    });
}

/// The home replicas of a key of `bucket` (`ring --key K --bucket B`).
fn homes(cluster: &Cluster, bucket: &str, key: &str) -> Vec<String> {
    let doc = cluster.json(&["ring", "--key", key, "--bucket", bucket]);
    doc["preference_list"]
        .as_array()
        .unwrap_or_else(|| panic!("a preference_list in {doc}"))
        .iter()
        .map(|n| n.as_str().expect("a node name").to_string())
        .collect()
}

/// How many of the live keys each node should hold: one for every key of
/// which it is a home replica under its bucket's N.
fn expected_copies(cluster: &Cluster, live: &[(&str, String)]) -> BTreeMap<String, u64> {
    let mut want: BTreeMap<String, u64> = cluster
        .running_nodes()
        .into_iter()
        .map(|(n, _)| (n, 0))
        .collect();
    for (bucket, key) in live {
        let list = homes(cluster, bucket, key);
        let n: usize = n_of(bucket).parse().expect("an N");
        assert_eq!(list.len(), n, "{bucket}/{key} has homes {list:?}");
        for node in list {
            *want.entry(node).or_default() += 1;
        }
    }
    want
}

/// Waits until every node holds exactly `want` live keys.
#[track_caller]
fn wait_copies(cluster: &Cluster, want: &BTreeMap<String, u64>, when: &str) {
    poll(SETTLE, when, || {
        let held: BTreeMap<String, u64> = status_rows(cluster)?
            .iter()
            .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["keys"].as_u64()?)))
            .collect();
        if held == *want {
            Ok(())
        } else {
            Err(format!("nodes hold {held:?}, expected {want:?}"))
        }
    });
}

/// Every key of both buckets, as (bucket, key).
fn all_keys() -> Vec<(&'static str, String)> {
    [NARROW.0, WIDE.0]
        .into_iter()
        .flat_map(|b| (0..KEYS).map(move |i| (b, key(b, i))))
        .collect()
}

#[test]
fn handoff_read_repair_and_anti_entropy_keep_each_bucket_at_its_own_n() {
    let cluster = Cluster::start(5);
    make_buckets(&cluster);
    let keys = all_keys();
    let want = expected_copies(&cluster, &keys);
    let total: u64 = want.values().sum();
    assert_eq!(total, (KEYS * 2 + KEYS * 4) as u64);

    // Hinted handoff: n3 is down while every key is written. A narrow key
    // of n3's needs a fallback's ack for W = 2, so every put succeeds.
    cluster.run(&["kill", "n3"]).ok();
    for (bucket, k) in &keys {
        cluster.put(k, "v", &["--bucket", bucket, "--node", "n1"]);
    }
    assert!(
        total_hints(&cluster).expect("status") > 0,
        "expected hints for n3's keys"
    );
    cluster.run(&["start", "n3"]).ok();
    wait_hints_drained(&cluster, DRAIN_TIMEOUT);
    wait_copies(
        &cluster,
        &want,
        "after handoff, every key on exactly its bucket's N home replicas",
    );

    // Read repair: n3 restored empty; gets that read every home replica
    // (R = N) give n3 back its copies, and only n3.
    let repairs_before: u64 = read_repairs(&cluster);
    wipe(&cluster, "n3");
    let mut lacking = 0;
    for (bucket, k) in &keys {
        if !homes(&cluster, bucket, k).iter().any(|n| n == "n3") {
            continue;
        }
        lacking += 1;
        // R = N: every home replica answers.
        let r = n_of(bucket);
        cluster.expect_value(k, b"v", &["--bucket", bucket, "-R", r, "--node", "n1"]);
    }
    assert!(lacking > 0, "expected some keys homed on n3");
    wait_copies(&cluster, &want, "after read repair of the wiped n3");
    assert!(
        read_repairs(&cluster) > repairs_before,
        "the gets repaired n3 by read repair"
    );

    // Anti-entropy: n3 wiped again, nothing read; `repair` brings back
    // exactly n3's share (no key of a narrow bucket goes to a third node).
    wipe(&cluster, "n3");
    let repair = cluster.json(&["repair"]);
    let to_n3 = repair["keys_repaired"]["n3"].as_u64().unwrap_or(0);
    assert!(to_n3 > 0, "{repair}");
    wait_copies(&cluster, &want, "after anti-entropy of the wiped n3");
    assert_eq!(node_keys(&cluster, "n3").ok(), want.get("n3").copied());
}

/// Read repairs counted by the nodes that answer `status`.
fn read_repairs(cluster: &Cluster) -> u64 {
    status_rows(cluster)
        .expect("status")
        .iter()
        .filter_map(|r| r["read_repairs"].as_u64())
        .sum()
}

#[test]
fn tombstones_and_membership_changes_keep_each_bucket_at_its_own_n() {
    let cluster = Cluster::start_with(4, &["--tombstone-grace-ms", "1000"]);
    make_buckets(&cluster);
    let keys = all_keys();
    for (bucket, k) in &keys {
        cluster.put(k, "v", &["--bucket", bucket]);
    }
    // Delete half of each bucket: their tombstones live on N replicas only
    // and are collected once those hold them.
    let (gone, live): (Vec<_>, Vec<_>) = keys
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    for (_, (bucket, k)) in &gone {
        let context = cluster.json(&["get", k, "--bucket", bucket])["context"]
            .as_str()
            .expect("a context")
            .to_string();
        cluster
            .run(&["delete", k, "--bucket", bucket, "--context", &context])
            .ok();
    }
    let live: Vec<(&str, String)> = live.into_iter().map(|(_, k)| k).collect();
    let want = expected_copies(&cluster, &live);
    poll(SETTLE, "every tombstone collected", || {
        let rows = status_rows(&cluster)?;
        let tombstones: u64 = rows.iter().filter_map(|r| r["tombstones"].as_u64()).sum();
        if tombstones == 0 {
            Ok(())
        } else {
            Err(format!("{tombstones} tombstones left"))
        }
    });
    wait_copies(&cluster, &want, "after collection, the live keys' copies");
    for (_, (bucket, k)) in gone.iter().step_by(7) {
        cluster.run(&["get", k, "--bucket", bucket]).expect_code(3);
    }

    // A join: n5 takes its share of both buckets' keys, the old owners let
    // go of theirs (the wide bucket now leaves one node out of each list).
    let joined = cluster.json(&["add-node"]);
    assert_eq!(joined["outcome"], "joined", "{joined}");
    let want = expected_copies(&cluster, &live);
    assert!(want.get("n5").is_some_and(|&c| c > 0), "{want:?}");
    wait_copies(&cluster, &want, "after add-node");

    // A leave: n2's share goes to the others.
    let left = cluster.json(&["leave", "n2"]);
    assert_eq!(left["outcome"], "left", "{left}");
    let want = expected_copies(&cluster, &live);
    assert!(!want.contains_key("n2"), "{want:?}");
    wait_copies(&cluster, &want, "after leave");
    for (bucket, k) in &live {
        cluster.expect_value(k, b"v", &["--bucket", bucket]);
    }
}
