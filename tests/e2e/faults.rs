//! Always writeable (issue 3): a crashed node, a partitioned cluster and a
//! wiped replica, and what must hold through each: sloppy quorum keeps
//! puts succeeding, hints are kept and handed off, read repair and handoff
//! bring the values back together, and no acknowledged write is lost.
//! Also the fault commands' bad input, `status` showing unreachable peers
//! and `get --explain` showing fallbacks.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{poll, Cluster};

/// How long hints may take to be handed off once their owner is back.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

/// `status --json`'s node rows, or why there are none.
pub fn status_rows(cluster: &Cluster) -> Result<Vec<Value>, String> {
    let run = cluster.run(&["status", "--json"]);
    if run.code != 0 {
        return Err(format!("`{}` exit {}: {}", run.line, run.code, run.stderr));
    }
    let doc = run.json();
    doc["nodes"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no \"nodes\" array in {doc}"))
}

/// The pending hints summed over the nodes that answered `status`.
pub fn total_hints(cluster: &Cluster) -> Result<u64, String> {
    Ok(status_rows(cluster)?
        .iter()
        .filter_map(|n| n["hints"].as_u64())
        .sum())
}

/// Waits until the cluster has settled: every node up, no node holding a
/// pending hint, and no node's failure detector seeing a peer unreachable.
#[track_caller]
pub fn wait_hints_drained(cluster: &Cluster, timeout: Duration) {
    poll(
        timeout,
        "every node up, reachable and no hint pending",
        || {
            let rows = status_rows(cluster)?;
            let up = rows.iter().filter(|n| n["state"] == "up").count();
            let hints: u64 = rows.iter().filter_map(|n| n["hints"].as_u64()).sum();
            let cut: Vec<&Value> = rows
                .iter()
                .map(|n| &n["unreachable_peers"])
                .filter(|v| v.as_array().is_none_or(|a| !a.is_empty()))
                .collect();
            if up == cluster.names.len() && hints == 0 && cut.is_empty() {
                Ok(())
            } else {
                Err(format!("{up} up, {hints} hints pending: {rows:?}"))
            }
        },
    );
}

/// Waits until `status` shows every node up.
#[track_caller]
pub fn wait_all_up(cluster: &Cluster) {
    poll(Duration::from_secs(30), "every node up", || {
        let rows = status_rows(cluster)?;
        if rows.iter().all(|n| n["state"] == "up") && rows.len() == cluster.names.len() {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
}

/// The key's preference list from `ring --key K --json`.
#[track_caller]
pub fn preference_list(cluster: &Cluster, key: &str) -> Vec<String> {
    let doc = cluster.json(&["ring", "--key", key]);
    doc["preference_list"]
        .as_array()
        .unwrap_or_else(|| panic!("expected a preference_list in {doc}"))
        .iter()
        .map(|n| n.as_str().expect("node names are strings").to_string())
        .collect()
}

/// The `keys` count `status` reports for one node.
pub fn node_keys(cluster: &Cluster, name: &str) -> Result<u64, String> {
    let rows = status_rows(cluster)?;
    rows.iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["keys"].as_u64())
        .ok_or_else(|| format!("no key count for {name} in {rows:?}"))
}

/// The sibling values `get KEY --json [extra…]` shows, sorted (a deleted
/// or non-UTF-8 sibling shows as `<deleted>` / `<binary>`); `None` when
/// the get fails.
pub fn sibling_values(cluster: &Cluster, key: &str, extra: &[&str]) -> Result<Vec<String>, String> {
    let mut args = vec!["get", key, "--json"];
    args.extend_from_slice(extra);
    let run = cluster.run(&args);
    if run.code != 0 {
        return Err(format!("`{}` exit {}: {}", run.line, run.code, run.stderr));
    }
    let doc = run.json();
    let mut values: Vec<String> = doc["siblings"]
        .as_array()
        .ok_or_else(|| format!("no siblings array in {doc}"))?
        .iter()
        .map(|s| {
            if s["deleted"] == true {
                "<deleted>".to_string()
            } else {
                s["value"].as_str().unwrap_or("<binary>").to_string()
            }
        })
        .collect();
    values.sort();
    Ok(values)
}

/// The context `get KEY --json` returns.
#[track_caller]
fn context_of(cluster: &Cluster, key: &str) -> String {
    let doc = cluster.json(&["get", key]);
    doc["context"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a context in {doc}"))
        .to_string()
}

#[test]
fn a_killed_node_gets_its_writes_by_hinted_handoff() {
    let cluster = Cluster::start(5);
    let keys: Vec<String> = (0..100).map(|i| format!("hinted-{i}")).collect();
    let for_n3: Vec<&String> = keys
        .iter()
        .filter(|k| preference_list(&cluster, k).iter().any(|n| n == "n3"))
        .collect();
    assert!(
        !for_n3.is_empty(),
        "expected some of 100 keys to have n3 among their replicas"
    );

    cluster.run(&["kill", "n3"]).ok();
    for (i, key) in keys.iter().enumerate() {
        // Every put succeeds: W = 2 counts the fallbacks' acks.
        cluster.put(key, &format!("value-{i}"), &["--node", "n1"]);
    }
    let pending = poll(
        Duration::from_secs(20),
        "hints for n3 pending",
        || match total_hints(&cluster)? {
            0 => Err("0 hints".to_string()),
            n => Ok(n),
        },
    );
    eprintln!(
        "handoff: {pending} hints pending for the {} keys n3 should hold",
        for_n3.len()
    );
    // The hints survive while n3 is away and are what the cluster reads:
    // every key is there with n3 down.
    for (i, key) in keys.iter().enumerate() {
        cluster.expect_value(key, format!("value-{i}").as_bytes(), &["--node", "n2"]);
    }

    cluster.run(&["start", "n3"]).ok();
    wait_hints_drained(&cluster, DRAIN_TIMEOUT);
    // n3 now holds exactly the keys it is a replica of: the handed-off ones.
    let expected = for_n3.len() as u64;
    let held = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll(
            Duration::from_secs(20),
            "n3 holding every key it is a replica of",
            || match node_keys(&cluster, "n3")? {
                n if n == expected => Ok(()),
                n => Err(format!("n3 holds {n} keys, expected {expected}")),
            },
        )
    }));
    if let Err(panic) = held {
        // Which keys n3 lacks: what it answered an R = 3 get (which reads
        // every home replica) before any read repair.
        let missing: Vec<String> = for_n3
            .iter()
            .filter_map(|k| {
                let doc = cluster.json(&["get", k, "--explain", "-R", "3", "--node", "n1"]);
                let answered = doc["asked"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|t| t["node"] == "n3" && t["answer"] == "answered")
                });
                (!answered).then(|| format!("{k}: {}", doc["asked"]))
            })
            .collect();
        eprintln!(
            "handoff: keys n3 lacks after every hint was handed off:\n{}",
            missing.join("\n")
        );
        std::panic::resume_unwind(panic);
    }
    for (i, key) in keys.iter().enumerate() {
        cluster.expect_value(key, format!("value-{i}").as_bytes(), &["--node", "n3"]);
    }
}

#[test]
fn a_partition_keeps_both_sides_writeable_and_heal_makes_siblings() {
    let cluster = Cluster::start(5);
    // A key with replicas on both sides of n1,n2 | n3,n4,n5.
    let key = (0..1000)
        .map(|i| format!("split-{i}"))
        .find(|k| {
            let list = preference_list(&cluster, k);
            list.iter().any(|n| n == "n1") && list.iter().any(|n| n == "n3")
        })
        .expect("a key with n1 and n3 among its replicas");
    cluster.put(&key, "v0", &[]);
    // Every replica has v0 before the cut (R = 3 reads all three).
    poll(
        Duration::from_secs(10),
        "v0 on all replicas",
        || match sibling_values(&cluster, &key, &["-R", "3"])? {
            v if v == ["v0"] => Ok(()),
            v => Err(format!("{v:?}")),
        },
    );
    let context = context_of(&cluster, &key);

    cluster.run(&["partition", "n1,n2", "n3,n4,n5"]).ok();
    cluster.put(&key, "left", &["--context", &context, "--node", "n1"]);
    cluster.put(&key, "right", &["--context", &context, "--node", "n3"]);
    let mut written = Vec::new();
    for i in 0..10 {
        let left = ["n1", "n2"][i % 2];
        let right = ["n3", "n4", "n5"][i % 3];
        for (side, node) in [("left", left), ("right", right)] {
            let k = format!("{side}-{i}");
            let v = format!("{side}-value-{i}");
            cluster.put(&k, &v, &["--node", node]);
            written.push((k, v));
        }
    }
    // The cut is real: each side sees only its own write.
    assert_eq!(
        sibling_values(&cluster, &key, &["--node", "n2"]),
        Ok(vec!["left".to_string()]),
        "expected the n1,n2 side to see only its own write during the partition"
    );
    assert_eq!(
        sibling_values(&cluster, &key, &["--node", "n4"]),
        Ok(vec!["right".to_string()]),
        "expected the n3,n4,n5 side to see only its own write during the partition"
    );

    cluster.run(&["heal"]).ok();
    // Handoff and read repair bring both writes together: two siblings,
    // v0 superseded by both.
    poll(
        Duration::from_secs(60),
        "both sides' writes as siblings after heal",
        || match sibling_values(&cluster, &key, &["-R", "3"])? {
            v if v == ["left", "right"] => Ok(()),
            v => Err(format!("{v:?}")),
        },
    );
    // Once the hints are handed off, every key written on either side is
    // on its home replicas. (Before that a get may miss a key whose home
    // replicas were all on the other side: sloppy quorum's known window.)
    wait_hints_drained(&cluster, DRAIN_TIMEOUT);
    for (k, v) in &written {
        cluster.expect_value(k, v.as_bytes(), &[]);
        cluster.expect_value(k, v.as_bytes(), &["-R", "3"]);
    }
    for node in &cluster.names {
        assert_eq!(
            sibling_values(&cluster, &key, &["--node", node]),
            Ok(vec!["left".to_string(), "right".to_string()]),
            "expected {node} to coordinate a get showing both siblings after heal"
        );
    }
}

/// Stops `node`, deletes its redb file, starts it again on an empty store.
#[track_caller]
pub fn wipe(cluster: &Cluster, node: &str) {
    cluster.run(&["stop", node]).ok();
    let data = cluster.home().join(node).join("data");
    let mut removed = 0;
    for entry in std::fs::read_dir(&data).expect("the node's data folder") {
        let path = entry.expect("a data folder entry").path();
        if path.extension().is_some_and(|e| e == "redb") {
            std::fs::remove_file(&path).expect("delete the redb file");
            removed += 1;
        }
    }
    assert!(removed > 0, "expected a redb file in {}", data.display());
    cluster.run(&["start", node]).ok();
    wait_hints_drained(cluster, DRAIN_TIMEOUT);
}

#[test]
fn a_wiped_replica_takes_a_new_incarnation_and_loses_no_write() {
    let cluster = Cluster::start(5);

    // Two writes in sequence, the second with the first's context, through
    // a replica wiped in between: the second supersedes the first.
    let key = "wiped-seq";
    let node = preference_list(&cluster, key)[0].clone();
    let v1 = cluster.put(key, "v1", &["--node", &node]);
    assert_eq!(
        sibling_values(&cluster, key, &["-R", "3"]),
        Ok(vec!["v1".to_string()])
    );
    wipe(&cluster, &node);
    cluster.put(key, "v2", &["--context", &v1, "--node", &node]);
    assert_eq!(
        sibling_values(&cluster, key, &["-R", "3"]),
        Ok(vec!["v2".to_string()]),
        "expected v2 to supersede v1 (written with v1's context) after {node} was wiped"
    );

    // Two writes without context through the same replica, wiped in
    // between: concurrent, so both survive. Were the wiped node to mint
    // its old dot again, one would silently replace the other.
    let key = "wiped-concurrent";
    let node = preference_list(&cluster, key)[0].clone();
    cluster.put(key, "before", &["--node", &node]);
    assert_eq!(
        sibling_values(&cluster, key, &["-R", "3"]),
        Ok(vec!["before".to_string()])
    );
    wipe(&cluster, &node);
    cluster.put(key, "after", &["--node", &node]);
    let want = vec!["after".to_string(), "before".to_string()];
    assert_eq!(
        sibling_values(&cluster, key, &["-R", "3"]),
        Ok(want.clone()),
        "expected both puts without context to survive the wipe of {node}"
    );
    for other in &cluster.names {
        assert_eq!(
            sibling_values(&cluster, key, &["--node", other]),
            Ok(want.clone()),
            "expected a get through {other} to show both siblings"
        );
    }
}

#[test]
fn fault_commands_refuse_bad_input_and_lose_nothing() {
    let cluster = Cluster::start(5);
    cluster.put("kept", "safe", &[]);

    let refused = |args: &[&str], code: i32, words: &[&str]| {
        let run = cluster.run(args);
        let stderr = run.expect_clean_error(code).to_string();
        for word in words {
            assert!(
                stderr.contains(word),
                "`{}`: expected stderr to mention {word:?}, got: {stderr}",
                run.line
            );
        }
    };
    refused(&["partition", "n1,n9", "n2,n3"], 2, &["n9"]);
    refused(&["partition", "n1,n2", "n2,n3,n4,n5"], 2, &["n2"]);
    // One group cuts nothing: a usage error (clap's own, several lines).
    let one = cluster.run(&["partition", "n1,n2"]);
    one.expect_code(2);
    assert!(
        !one.stderr.contains("panicked") && one.stdout.is_empty(),
        "`{}`: expected a usage error, got: {}",
        one.line,
        one.stderr
    );
    refused(&["partition", "--isolate", "n7"], 2, &["n7"]);
    // None of the refused partitions cut anything.
    let cuts: Vec<Value> = status_rows(&cluster)
        .expect("status")
        .iter()
        .map(|r| r["partition"].clone())
        .filter(|p| p.as_array().is_none_or(|a| !a.is_empty()))
        .collect();
    assert!(
        cuts.is_empty(),
        "expected no partition in force after refused `partition` commands, got {cuts:?}"
    );
    refused(&["start", "n1"], 1, &["n1", "already running"]);
    cluster.run(&["stop", "n2"]).ok();
    refused(&["kill", "n2"], 1, &["n2", "not running"]);
    refused(&["stop", "n2"], 1, &["n2", "not running"]);

    // None of it cut the network: every node still coordinates a put that
    // reaches its replicas, and nothing was lost.
    cluster.run(&["start", "n2"]).ok();
    wait_all_up(&cluster);
    for node in &cluster.names {
        cluster.expect_value("kept", b"safe", &["--node", node, "-R", "3"]);
        let key = format!("after-{node}");
        cluster.put(&key, node, &["--node", node, "-W", "3"]);
    }
    // Puts made while a node still thought n2 away left hints: they go.
    wait_hints_drained(&cluster, DRAIN_TIMEOUT);
    cluster.expect_value("kept", b"safe", &["-R", "3"]);
}

#[test]
fn status_shows_an_isolated_node_as_unreachable() {
    let cluster = Cluster::start(5);
    cluster.run(&["partition", "--isolate", "n3"]).ok();
    // Clients still reach every node, so `state` (the client's view) stays
    // up; each node's own failure-detector view is beside it:
    // `unreachable_peers` (whom it cannot reach) and `unreachable_from`
    // (the answering nodes that cannot reach it).
    let names = |row: &Value, field: &str| -> BTreeSet<String> {
        row[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let others: BTreeSet<String> = ["n1", "n2", "n4", "n5"].map(String::from).into();
    let n3: BTreeSet<String> = ["n3".to_string()].into();
    poll(
        Duration::from_secs(30),
        "every node's view showing n3 cut off",
        || {
            let rows = status_rows(&cluster)?;
            let ok = rows.len() == 5
                && rows.iter().all(|row| {
                    let (peers, from) = (
                        names(row, "unreachable_peers"),
                        names(row, "unreachable_from"),
                    );
                    row["state"] == "up"
                        && if row["name"] == "n3" {
                            peers == others && from == others
                        } else {
                            peers == n3 && from == n3
                        }
                });
            if ok {
                Ok(())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    );
    // A put through the isolated node cannot reach W = 2 (it has only
    // itself); through the others it can.
    let alone = cluster.run(&["put", "cut-off", "x", "--node", "n3"]);
    alone.expect_code(5);
    cluster.put("cut-off", "y", &["--node", "n1"]);
    // With default routing every put and get succeeds: the client sends a
    // key whose first replica is n3 there, n3 refuses at once (it reaches
    // fewer than W nodes, nothing stored), and the next node serves it.
    let mut n3_first = 0;
    for i in 0..60 {
        let key = format!("routed-{i}");
        if preference_list(&cluster, &key)[0] == "n3" {
            n3_first += 1;
        }
        cluster.put(&key, "v", &[]);
        cluster.expect_value(&key, b"v", &[]);
    }
    assert!(n3_first > 0, "no key had n3 first; the test proves nothing");
    // A get through n3 with R = 1 of a key n3 does not replicate: n3 can
    // only stand in as a fallback, and it holds nothing for the key.
    let elsewhere = (0..100)
        .map(|i| format!("elsewhere-{i}"))
        .find(|k| !preference_list(&cluster, k).contains(&"n3".to_string()))
        .expect("a key n3 does not replicate");
    cluster.put(&elsewhere, "v", &[]);
    let fallback = cluster.run(&["get", &elsewhere, "--node", "n3", "-R", "1"]);
    let message = fallback.expect_clean_error(5);
    assert!(
        message.contains("0 of R = 1")
            && message.contains("n3 answered as a fallback holding nothing"),
        "expected the fallback's empty answer to be named, got: {message}"
    );

    cluster.run(&["heal"]).ok();
    poll(Duration::from_secs(30), "n3 reachable again", || {
        let rows = status_rows(&cluster)?;
        let clear = rows.iter().all(|r| {
            r["unreachable_peers"]
                .as_array()
                .is_some_and(|a| a.is_empty())
                && r["unreachable_from"]
                    .as_array()
                    .is_some_and(|a| a.is_empty())
        });
        if clear {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
}

#[test]
fn explain_shows_the_failed_replica_and_the_fallback() {
    let cluster = Cluster::start(5);
    let key = "explained";
    let list = preference_list(&cluster, key);
    let (coordinator, down) = (list[0].clone(), list[1].clone());
    cluster.put(key, "before", &[]);
    let context = context_of(&cluster, key);
    cluster.run(&["kill", &down]).ok();
    // Once the coordinator's detector has noticed, a put goes to a
    // fallback with a hint, and a get reads that fallback.
    poll(
        Duration::from_secs(30),
        "the coordinator seeing the killed replica unreachable",
        || {
            let rows = status_rows(&cluster)?;
            let row = rows.iter().find(|r| r["name"] == coordinator.as_str());
            match row {
                Some(r)
                    if r["unreachable_peers"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|n| n == down.as_str())) =>
                {
                    Ok(())
                }
                _ => Err(format!("{rows:?}")),
            }
        },
    );
    cluster.put(
        key,
        "after",
        &["--context", &context, "--node", &coordinator],
    );

    let doc = cluster.json(&["get", key, "--explain", "--node", &coordinator]);
    let text = doc.to_string();
    assert_eq!(doc["coordinator"], coordinator.as_str(), "in {text}");
    assert_eq!(
        doc["preference_list"],
        serde_json::json!(list),
        "expected the key's preference list in {text}"
    );
    assert!(
        doc["unreachable"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n == down.as_str())),
        "expected {down} (killed) among the unreachable in {text}"
    );
    let asked = doc["asked"]
        .as_array()
        .unwrap_or_else(|| panic!("expected the replicas asked in {text}"));
    assert!(
        asked
            .iter()
            .any(|t| t["fallback_for"] == down.as_str() && t["answer"] == "answered"),
        "expected a fallback for {down} that answered with the version in {text}"
    );
    assert!(
        asked.iter().all(|t| t["node"] != down.as_str()),
        "expected the killed {down} not to be asked in {text}"
    );
    assert_eq!(doc["quorum_reached"], true, "in {text}");
    let values: Vec<&Value> = doc["siblings"]
        .as_array()
        .map(|a| a.iter().map(|s| &s["value"]).collect())
        .unwrap_or_default();
    assert_eq!(values, [&Value::from("after")], "in {text}");
}
