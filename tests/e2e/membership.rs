//! Join and leave with data (issue 4): `add-node` gives a sixth node its
//! share of partitions while writers keep writing, `leave` hands them back;
//! through both, every key written before and every write acknowledged
//! during the changes stays readable with its value, the ring stays
//! balanced, and in the end every key lives on exactly its N replicas.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::{dynamo_in, poll, Cluster};

/// Keys written before the changes.
const KEYS: usize = 1000;
/// Threads that load the keys and later check them.
const THREADS: usize = 4;
/// Writer threads running during the changes.
const WRITERS: usize = 2;

/// Partitions per node from `ring --json`.
fn ownership(cluster: &Cluster) -> BTreeMap<String, u64> {
    let ring = cluster.json(&["ring"]);
    ring["nodes"]
        .as_object()
        .expect("nodes")
        .iter()
        .map(|(n, v)| (n.clone(), v["partitions"].as_u64().expect("a count")))
        .collect()
}

fn statuses(cluster: &Cluster) -> BTreeMap<String, Value> {
    cluster.json(&["status"])["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["name"].as_str().expect("name").to_string(), n.clone()))
        .collect()
}

/// Puts `count` keys `{prefix}{i}` with values `v{i}`, in parallel.
fn load(cluster: &Cluster, prefix: &str, count: usize) -> Vec<(String, String)> {
    let keys: Vec<(String, String)> = (0..count)
        .map(|i| (format!("{prefix}{i}"), format!("v{i}")))
        .collect();
    in_parallel(keys.len(), |i| {
        cluster.put(&keys[i].0, &keys[i].1, &[]);
    });
    keys
}

/// Every node owns Q/S or Q/S+1 partitions.
#[track_caller]
fn assert_balanced(owned: &BTreeMap<String, u64>) {
    let (min, max) = (owned.values().min(), owned.values().max());
    assert!(
        max.zip(min).is_some_and(|(a, b)| a - b <= 1),
        "unbalanced: {owned:?}"
    );
}

/// Runs `f(i)` for `0..count` on [`THREADS`] threads.
fn in_parallel(count: usize, f: impl Fn(usize) + Sync) {
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let f = &f;
            scope.spawn(move || {
                for i in (t..count).step_by(THREADS) {
                    f(i);
                }
            });
        }
    });
}

/// What one writer did: puts acknowledged, and keys of puts that failed
/// (which may or may not have been applied).
type Written = (Vec<(String, String)>, Vec<String>);

/// Puts fresh keys until `stop`.
fn write_until(
    cluster: &Cluster,
    stop: &AtomicBool,
    mut next: impl FnMut() -> (String, String),
) -> Written {
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let (key, value) = next();
        let run = dynamo_in(cluster.home(), &["put", &key, &value], None);
        if run.code == 0 {
            acked.push((key, value));
        } else {
            eprintln!("membership: {} failed: {}", run.line, run.stderr.trim());
            failed.push(key);
        }
    }
    (acked, failed)
}

/// Runs `action` while `writers` threads put fresh keys (`{tag}{w}-{i}`);
/// the writers stop when it returns.
fn while_writing<T: Send>(
    cluster: &Cluster,
    writers: usize,
    tag: &str,
    action: impl FnOnce() -> T + Send,
) -> (Vec<Written>, T) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let stop = &stop;
                scope.spawn(move || {
                    let mut i = 0;
                    write_until(cluster, stop, || {
                        i += 1;
                        (format!("{tag}{w}-{i}"), format!("x{tag}{w}-{i}"))
                    })
                })
            })
            .collect();
        let outcome = action();
        stop.store(true, Ordering::Relaxed);
        let written = threads
            .into_iter()
            .map(|t| t.join().expect("a writer"))
            .collect();
        (written, outcome)
    })
}

/// The acknowledged writes, and the keys of failed puts (which may or may
/// not have been applied).
fn settle_writes(written: Vec<Written>) -> (Vec<(String, String)>, Vec<String>) {
    let mut acked = Vec::new();
    let mut unsure = Vec::new();
    for (ok, failed) in written {
        acked.extend(ok);
        unsure.extend(failed);
    }
    (acked, unsure)
}

/// Every key has its value, read through random nodes.
fn check_all(cluster: &Cluster, keys: &[(String, String)], when: &str) {
    in_parallel(keys.len(), |i| {
        let (key, value) = &keys[i];
        let run = cluster.run(&["get", key]);
        assert!(
            run.code == 0 && run.text() == *value,
            "{when}: {key} should be {value:?}, got exit {} {:?} {:?}",
            run.code,
            run.text(),
            run.stderr
        );
    });
}

/// Every node settles: total keys equal N times the distinct keys (no
/// copy left on a node that does not replicate it, none missing) and every
/// replica set's Merkle roots agree. The distinct keys are the `known` ones
/// plus those of `unsure` (failed puts) that exist, counted anew each time:
/// a failed put applied at its coordinator alone can spread later (a get
/// that answers "not found" still read-repairs the replica holding it).
fn wait_settled(cluster: &Cluster, known: usize, unsure: &[String], when: &str) {
    poll(Duration::from_secs(90), when, || {
        let distinct = known
            + unsure
                .iter()
                .filter(|key| cluster.run(&["get", key]).code == 0)
                .count();
        let total: u64 = statuses(cluster)
            .values()
            .map(|s| s["keys"].as_u64().unwrap_or(0))
            .sum();
        let merkle = cluster.json(&["merkle"]);
        let diverging = merkle["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .filter(|p| p["agree"] == false)
            .count();
        if total == 3 * distinct as u64 && diverging == 0 {
            Ok(())
        } else {
            Err(format!(
                "{total} copies of {distinct} keys, {diverging} partitions diverge"
            ))
        }
    });
}

#[test]
fn add_node_and_leave_move_data_while_writers_run_and_lose_nothing() {
    let cluster = Cluster::start(5);
    let keys = load(&cluster, "m", KEYS);

    let (acked, change) = while_writing(&cluster, WRITERS, "w", || {
        cluster.run(&["add-node", "--json"])
    });
    change.ok();
    let report = change.json();
    assert_eq!(report["node"], "n6", "{report}");
    assert_eq!(report["outcome"], "joined", "{report}");
    assert!(report["moved_partitions"].as_u64() > Some(0), "{report}");
    let (acked, mut unsure) = settle_writes(acked);
    assert!(!acked.is_empty(), "the writers wrote during add-node");

    let owned = ownership(&cluster);
    assert_eq!(owned.len(), 6, "{owned:?}");
    assert_balanced(&owned);
    let status = statuses(&cluster);
    assert_eq!(status["n6"]["state"], "up", "{:?}", status["n6"]);
    assert_eq!(status["n6"]["partitions"], owned["n6"]);
    assert!(
        status["n6"]["keys"].as_u64() > Some(0),
        "{:?}",
        status["n6"]
    );

    let mut all = keys.clone();
    all.extend(acked);
    check_all(&cluster, &all, "after add-node");
    wait_settled(
        &cluster,
        all.len(),
        &unsure,
        "after add-node every key on its N replicas",
    );

    // Leave again, writers running.
    let (acked, change) =
        while_writing(&cluster, 1, "l", || cluster.run(&["leave", "n6", "--json"]));
    let (acked, more_unsure) = settle_writes(acked);
    unsure.extend(more_unsure);
    change.ok();
    assert_eq!(change.json()["outcome"], "left");
    let owned = ownership(&cluster);
    assert_eq!(owned.len(), 5, "{owned:?}");
    assert!(!owned.contains_key("n6"));
    assert_balanced(&owned);
    assert!(
        !cluster.home().join("n6").exists(),
        "the node that left is stopped and its folder removed"
    );
    all.extend(acked);
    check_all(&cluster, &all, "after leave");
    wait_settled(
        &cluster,
        all.len(),
        &unsure,
        "after leave every key on its N replicas",
    );
}

#[test]
fn membership_changes_refuse_bad_input_and_survive_a_restart() {
    let cluster = Cluster::start(3);
    cluster.put("a", "1", &[]);
    // Unknown node, a node already there, N = 3 with 3 nodes.
    let run = cluster.run(&["leave", "n9"]);
    run.expect_clean_error(2);
    let run = cluster.run(&["add-node", "--name", "n2"]);
    run.expect_clean_error(2);
    let run = cluster.run(&["add-node", "--name", "Bad_Name"]);
    run.expect_clean_error(2);
    let run = cluster.run(&["leave", "n3"]);
    assert!(
        run.expect_clean_error(2).contains("at least 3 nodes"),
        "{}",
        run.stderr
    );
    // Add one, restart the whole cluster: the nodes come back with the
    // ring they gossiped, not the one the manifest started with.
    cluster.run(&["add-node", "--name", "n4"]).ok();
    let before = ownership(&cluster);
    assert_eq!(before.len(), 4);
    cluster.run(&["down"]).ok();
    cluster.up_again().ok();
    assert_eq!(ownership(&cluster), before);
    let status = statuses(&cluster);
    assert_eq!(status.len(), 4);
    assert!(status.values().all(|s| s["state"] == "up"), "{status:?}");
    let fingerprints: std::collections::BTreeSet<String> = cluster.json(&["status"])["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["owners_version"].to_string())
        .collect();
    assert_eq!(fingerprints.len(), 1, "every node on one owner table");
    cluster.expect_value("a", b"1", &[]);
}

/// A node process started by a test; killed when dropped.
struct Foreground(std::process::Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_configured_with_seeds_joins_from_elsewhere_without_being_in_the_manifest() {
    use dynamo::config::{ClusterManifest, MemberEntry, NodeConfig, StorageConfig, TlsPaths};
    use dynamo::net::tls::{ClusterCa, Identity};

    let cluster = Cluster::start(5);
    let keys = load(&cluster, "s", 200);

    // "Another host": a folder outside the home with the manifest, the CA
    // certificate, and a certificate the operator issued for n7.
    let host = cluster.scratch("host2");
    std::fs::create_dir_all(&host).expect("a folder");
    let read = |name: &str| std::fs::read_to_string(cluster.home().join(name)).expect(name);
    let ca = ClusterCa {
        cert_pem: read("ca.pem"),
        key_pem: read("ca.key"),
    };
    let issued = ca
        .issue(&Identity::Node("n7".into()))
        .expect("a certificate");
    std::fs::write(host.join("ca.pem"), &ca.cert_pem).expect("write");
    std::fs::write(host.join("node.pem"), &issued.cert_pem).expect("write");
    std::fs::write(host.join("node.key"), &issued.key_pem).expect("write");
    std::fs::copy(
        cluster.home().join("cluster.toml"),
        host.join("cluster.toml"),
    )
    .expect("copy");
    let manifest = ClusterManifest::load(&host.join("cluster.toml")).expect("the manifest");
    let seed = manifest.member("n2").expect("n2").clone();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    let config = NodeConfig {
        name: "n7".into(),
        listen: port,
        http_listen: None,
        data_dir: "data".into(),
        log_file: Some("node.log".into()),
        cluster: "cluster.toml".into(),
        tls: TlsPaths {
            ca_cert: "ca.pem".into(),
            cert: "node.pem".into(),
            key: "node.key".into(),
        },
        storage: StorageConfig::default(),
        request_timeout_ms: 2000,
        runtime_threads: 1,
        tombstone_grace_ms: 60_000,
        seeds: vec![MemberEntry {
            name: seed.name.clone(),
            addr: seed.addr,
            http: None,
        }],
    };
    config.save(&host.join("node.toml")).expect("node.toml");
    let config_path = host.join("node.toml").to_string_lossy().into_owned();
    let start_n7 = || {
        Foreground(
            cluster
                .command(&["node", "--config", &config_path])
                .current_dir(&host)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("dynamo node"),
        )
    };
    let n7 = start_n7();

    // The members (which still know n7 only by gossip) give it its share:
    // with six owners, n1..n5 keep 54 of the 64 partitions, and once the
    // handover is over they hold fewer than all 3 x 200 copies.
    let held_elsewhere = poll(Duration::from_secs(90), "n7 joins through its seed", || {
        let status = statuses(&cluster);
        let owned: u64 = status
            .values()
            .map(|s| s["partitions"].as_u64().unwrap_or(0))
            .sum();
        let busy = status
            .values()
            .any(|s| s.get("incoming").is_some() || s["handover_partitions"].as_u64() != Some(0));
        let keys: u64 = status
            .values()
            .map(|s| s["keys"].as_u64().unwrap_or(0))
            .sum();
        if owned == 54 && !busy {
            Ok(keys)
        } else {
            Err(format!("n1..n5 own {owned} partitions, busy {busy}"))
        }
    });
    assert!(
        held_elsewhere < 600,
        "n7 should hold some of the 600 copies; n1..n5 hold {held_elsewhere}"
    );
    check_all(&cluster, &keys, "after n7 joined");

    // Restarted, n7 starts from the state it stored: it is a member, not a
    // stranger asking its seed again (which would make it joining anew,
    // with a newer entry), and the others see it back.
    let home = dynamo::home::Home::at(cluster.home());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let n7_entry = || {
        let client = {
            let _entered = runtime.enter();
            dynamo::client::Client::new(
                home.load_manifest().expect("the manifest"),
                home.client_credentials().expect("the client credentials"),
            )
            .expect("a client")
        };
        let state = runtime
            .block_on(client.cluster_state("n1"))
            .expect("n1's cluster state");
        state.members.get("n7").cloned().expect("n7 is a member")
    };
    let joined = n7_entry();
    assert_eq!(joined.status, dynamo::core::membership::MemberStatus::Up);
    drop(n7);
    poll(
        Duration::from_secs(30),
        "the others notice n7 is gone",
        || {
            let status = statuses(&cluster);
            let noticed = status
                .values()
                .all(|s| s["unreachable_peers"].to_string().contains("n7"));
            noticed.then_some(()).ok_or_else(|| format!("{status:?}"))
        },
    );
    let _n7 = start_n7();
    poll(Duration::from_secs(30), "n7 is back as a member", || {
        let status = statuses(&cluster);
        let owned: u64 = status
            .values()
            .map(|s| s["partitions"].as_u64().unwrap_or(0))
            .sum();
        let back = status
            .values()
            .all(|s| !s["unreachable_peers"].to_string().contains("n7"));
        (back && owned == 54)
            .then_some(())
            .ok_or_else(|| format!("owned {owned}, {status:?}"))
    });
    check_all(&cluster, &keys, "after n7 restarted");
    assert_eq!(n7_entry(), joined, "n7 came back without joining again");
}

#[test]
fn a_node_lost_for_good_is_removed_with_force_and_its_keys_survive() {
    let cluster = Cluster::start(5);
    let keys = load(&cluster, "f", 300);
    cluster.run(&["add-node"]).ok();
    cluster.run(&["kill", "n6"]).ok();
    let refused = cluster.run(&["leave", "n6"]);
    assert!(
        refused.expect_clean_error(1).contains("--force"),
        "{}",
        refused.stderr
    );
    cluster
        .run(&["leave", "--force", "n1"])
        .expect_clean_error(2);

    let removed = cluster.json(&["leave", "--force", "n6"]);
    assert_eq!(removed["outcome"], "removed", "{removed}");
    let owned = ownership(&cluster);
    assert_eq!(owned.len(), 5, "{owned:?}");
    assert_balanced(&owned);
    assert!(
        cluster.home().join("n6").exists(),
        "a removed node's folder is kept"
    );
    check_all(&cluster, &keys, "after removing n6");
    wait_settled(
        &cluster,
        keys.len(),
        &[],
        "after removing n6 every key on its N replicas",
    );
}

#[test]
fn add_node_completes_through_a_crash_and_restart_of_a_member_and_loses_nothing() {
    let cluster = Cluster::start(5);
    let keys = load(&cluster, "c", 400);
    let (written, added) = while_writing(&cluster, 1, "c", || {
        std::thread::scope(|scope| {
            let adder = scope.spawn(|| cluster.run(&["add-node", "--json"]));
            // A member crashes while partitions move, and comes back.
            std::thread::sleep(Duration::from_millis(300));
            cluster.run(&["kill", "n2"]).ok();
            std::thread::sleep(Duration::from_secs(2));
            cluster.run(&["start", "n2"]).ok();
            adder.join().expect("add-node")
        })
    });
    added.ok();
    assert_eq!(added.json()["outcome"], "joined");
    let (acked, unsure) = settle_writes(written);
    let owned = ownership(&cluster);
    assert_eq!(owned.len(), 6, "{owned:?}");
    let mut all = keys;
    all.extend(acked);
    check_all(&cluster, &all, "after add-node through a crash");
    wait_settled(
        &cluster,
        all.len(),
        &unsure,
        "after add-node through a crash every key on N nodes",
    );
}
