//! The dev cluster's life: `up` on a new, a stopped and a running home,
//! `down`, and crashing, stopping and starting single nodes.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{cmdline_mentions, is_running, poll, process_state, Cluster};

#[test]
fn down_leaves_no_node_process() {
    let cluster = Cluster::start(5);
    let pids = cluster.pids();
    assert_eq!(pids.len(), 5, "expected a pid file per node, got {pids:?}");
    for (name, pid) in &pids {
        assert!(
            is_running(*pid) && cmdline_mentions(*pid, cluster.home()),
            "expected node {name} (pid {pid}) to be running before `down`"
        );
    }
    let down = cluster.run(&["down", "--json"]);
    down.ok();
    let report = down.json();
    let mut stopped: Vec<&str> = report["stopped"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    stopped.sort_unstable();
    assert_eq!(
        stopped,
        ["n1", "n2", "n3", "n4", "n5"],
        "expected `down` to stop all 5 gracefully: {report}"
    );
    // `down` returns once they are gone: no waiting needed. A zombie is
    // gone too (nothing here reaps the detached nodes).
    for (name, pid) in &pids {
        let state = process_state(*pid);
        assert!(
            matches!(state, None | Some('Z') | Some('X')),
            "expected node {name} (pid {pid}) to be gone after `down`, its state is {state:?}"
        );
    }
    assert_eq!(
        cluster.pids(),
        [],
        "expected `down` to remove the pid files"
    );
    let status = cluster.run(&["status"]);
    status.expect_code(5);

    // --purge deletes the home as well.
    cluster.run(&["down", "--purge"]).ok();
    assert!(
        !cluster.home().exists(),
        "expected `down --purge` to delete the home"
    );
}

#[test]
fn foreground_up_stops_the_cluster_on_ctrl_c() {
    let cluster = Cluster::unstarted(3);
    let log = |name: &str| std::fs::File::create(cluster.scratch(name)).expect("a log file");
    let mut up = cluster
        .command(&["up", "--nodes", "3", "--base-port", "0"])
        .stdin(Stdio::null())
        .stdout(log("up.out"))
        .stderr(log("up.err"))
        .spawn()
        .expect("run `dynamo up` in the foreground");
    let up_pid = Pid::from_raw(i32::try_from(up.id()).expect("a pid"));
    let up_stderr = || std::fs::read_to_string(cluster.scratch("up.err")).unwrap_or_default();
    let serving = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll(
            Duration::from_secs(20),
            "the foreground cluster serving",
            || {
                if let Ok(Some(status)) = up.try_wait() {
                    return Ok(Err(format!("`up` exited early: {status}")));
                }
                let status = cluster.run(&["status", "--json"]);
                let doc = (status.code == 0).then(|| status.json());
                let up_count = doc
                    .as_ref()
                    .and_then(|d| d["nodes"].as_array())
                    .map_or(0, |nodes| {
                        nodes.iter().filter(|n| n["state"] == "up").count()
                    });
                if up_count == 3 {
                    Ok(Ok(()))
                } else {
                    Err(format!("exit {}: {}", status.code, status.stderr))
                }
            },
        )
    }));
    match serving {
        Ok(Ok(())) => {}
        Ok(Err(early)) => panic!(
            "expected the foreground `up` to keep running: {early}\n{}",
            up_stderr()
        ),
        Err(panic) => {
            let _ = kill(up_pid, Signal::SIGINT);
            let _ = up.wait();
            std::panic::resume_unwind(panic);
        }
    }
    cluster.put("k", "v", &[]);
    let pids = cluster.pids();
    assert_eq!(pids.len(), 3, "expected 3 pid files, got {pids:?}");

    // Once `up` has shown the cluster, one Ctrl-C stops it.
    let up_stdout = || std::fs::read_to_string(cluster.scratch("up.out")).unwrap_or_default();
    poll(Duration::from_secs(10), "`up` showing the cluster", || {
        if up_stdout().contains("cluster up") {
            Ok(())
        } else {
            Err(up_stdout())
        }
    });
    kill(up_pid, Signal::SIGINT).expect("send Ctrl-C to `up`");
    let status = poll(
        Duration::from_secs(20),
        "`up` ending after Ctrl-C",
        || match up.try_wait() {
            Ok(Some(status)) => Ok(status),
            other => Err(format!("{other:?}")),
        },
    );
    let stderr = up_stderr();
    assert!(
        status.success(),
        "expected `up` to exit 0 after Ctrl-C, got {status}; stderr:\n{stderr}"
    );
    for (name, pid) in &pids {
        // `up` reaped its children: not even a zombie is left.
        assert_eq!(
            process_state(*pid),
            None,
            "expected node {name} (pid {pid}) stopped and reaped by `up` after Ctrl-C"
        );
    }
    assert!(
        stderr.contains("stopping"),
        "expected `up` to say it stops the cluster, got:\n{stderr}"
    );
    // The data outlives the foreground session.
    cluster.up_again();
    cluster.expect_value("k", b"v", &[]);
}

#[test]
fn up_restarts_a_stopped_home_with_its_data_and_knows_a_running_one() {
    let cluster = Cluster::start(3);
    for i in 0..10 {
        cluster.put(&format!("k{i}"), &format!("v{i}"), &[]);
    }
    let keys_held = |cluster: &Cluster| -> u64 {
        cluster.json(&["status"])["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["keys"].as_u64())
            .sum()
    };
    // W = 2: the third replica may be a moment behind the answer.
    poll(
        Duration::from_secs(10),
        "every replica holding the 10 keys",
        || match keys_held(&cluster) {
            30 => Ok(()),
            other => Err(format!("{other} keys held")),
        },
    );
    let before = cluster.json(&["status"]);

    // Running already: `up` says so and changes nothing.
    let pids = cluster.pids();
    let again = cluster.run(&["up", "--detach"]);
    again.ok();
    assert!(
        again.text().contains("already running"),
        "expected `up` on a running cluster to say it is already running, got {:?}",
        again.text()
    );
    let report = cluster.json(&["up", "--detach"]);
    assert_eq!(
        report["already_running"], true,
        "expected already_running in {report}"
    );
    assert_eq!(
        cluster.pids(),
        pids,
        "expected `up` to leave running nodes alone"
    );

    // Stopped: `up` restarts the same cluster with its data.
    cluster.down();
    let restart = cluster.json(&["up", "--detach"]);
    assert_eq!(
        restart["already_running"], false,
        "expected a restart: {restart}"
    );
    let addrs = |doc: &serde_json::Value| -> Vec<String> {
        doc["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["addr"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        addrs(&restart),
        addrs(&before),
        "expected the same addresses after a restart"
    );
    for i in 0..10 {
        cluster.expect_value(&format!("k{i}"), format!("v{i}").as_bytes(), &[]);
    }
    assert_eq!(
        keys_held(&cluster),
        30,
        "expected 10 keys on 3 replicas each after the restart"
    );

    // Partly running: `up` starts only the node that is missing.
    let before: Vec<(String, u32)> = cluster.pids();
    cluster.run(&["kill", "n1"]).ok();
    let report = cluster.json(&["up", "--detach"]);
    assert_eq!(
        report["already_running"], false,
        "expected n1 started again: {report}"
    );
    let after = cluster.pids();
    assert_eq!(after.len(), 3, "expected 3 nodes running, got {after:?}");
    assert_ne!(after[0], before[0], "expected a new n1 process");
    assert_eq!(after[1..], before[1..], "expected n2 and n3 left alone");
    cluster.expect_value("k1", b"v1", &["--node", "n1", "-R", "3"]);

    // Flags that contradict the home are refused, not silently ignored.
    cluster.down();
    let run = cluster.run(&["up", "--nodes", "5", "--detach"]);
    let message = run.expect_clean_error(1);
    assert!(
        message.contains("--nodes") && message.contains("down --purge"),
        "expected the error to name --nodes and `down --purge`, got {message}"
    );
    assert_eq!(
        cluster.running_nodes(),
        [],
        "expected a refused `up` to start nothing"
    );
}

#[test]
fn a_killed_node_is_down_and_start_brings_it_back_with_its_data() {
    let cluster = Cluster::start(3);
    for i in 0..10 {
        cluster.put(&format!("k{i}"), &format!("v{i}"), &[]);
    }
    let (_, pid) = cluster.pids()[1].clone();
    cluster.run(&["kill", "n2"]).ok();
    assert!(
        !is_running(pid),
        "expected n2 (pid {pid}) to be gone after `kill`"
    );
    let status = cluster.json(&["status"]);
    let states: Vec<&str> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["state"].as_str())
        .collect();
    assert_eq!(
        states,
        ["up", "down", "up"],
        "expected n2 down after `kill n2`: {status}"
    );
    // R = W = 2 of N = 3: still readable and writable.
    for i in 0..10 {
        cluster.expect_value(&format!("k{i}"), format!("v{i}").as_bytes(), &[]);
    }
    cluster.put("while-down", "written", &[]);
    cluster.run(&["kill", "n2"]).expect_code(1);

    // Quorums that need n2 cannot be reached: exit 5, saying how far it got.
    let put = cluster.run(&["put", "all-three", "v", "-W", "3"]);
    let message = put.expect_clean_error(5);
    assert!(
        message.contains('2') && message.contains('3'),
        "expected the error to say 2 of 3 acknowledged, got {message}"
    );
    cluster.run(&["get", "k1", "-R", "3"]).expect_clean_error(5);
    // Asking n2 itself names n2, and does not call the cluster down.
    for args in [
        &["get", "k1", "--node", "n2"][..],
        &["put", "k1", "v", "--node", "n2"],
    ] {
        let run = cluster.run(args);
        let message = run.expect_clean_error(5);
        assert!(
            message.contains("n2") && !message.contains("no node of the cluster"),
            "`{}`: expected the error to be about n2 alone, got {message}",
            run.line
        );
    }

    cluster.run(&["start", "n2"]).ok();
    cluster.run(&["start", "n2"]).expect_code(1);
    poll(Duration::from_secs(10), "n2 serving its old keys", || {
        let run = cluster.run(&["get", "k1", "--node", "n2", "-R", "3"]);
        if run.code == 0 && run.stdout == b"v1" {
            Ok(())
        } else {
            Err(format!("exit {}: {}", run.code, run.stderr))
        }
    });
    cluster.run(&["stop", "n2"]).ok();
    cluster.run(&["start", "n2"]).ok();
    cluster.expect_value("while-down", b"written", &["-R", "3"]);
}
