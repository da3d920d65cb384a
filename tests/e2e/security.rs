//! Nobody gets in without a certificate of this cluster's CA, and a
//! refused client is told why while the cluster keeps serving.

use std::path::Path;

use crate::support::{dynamo_in, Cluster};

/// A copy of `cluster`'s client files in `to`, with the client identity
/// replaced by `cert` and `key`.
fn home_with_identity(cluster: &Cluster, to: &Path, cert: &Path, key: &Path) {
    std::fs::create_dir_all(to).expect("make the copied home");
    for file in ["cluster.toml", "ca.pem"] {
        std::fs::copy(cluster.home().join(file), to.join(file))
            .unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    std::fs::copy(cert, to.join("client.pem")).expect("copy the certificate");
    std::fs::copy(key, to.join("client.key")).expect("copy the key");
}

#[test]
fn a_client_certificate_of_another_cluster_is_refused() {
    let cluster = Cluster::start(3);
    cluster.put("guarded", "value", &[]);
    let other = Cluster::start_with(1, &["-N", "1", "-R", "1", "-W", "1"]);

    // Only the four files CLI.md names are needed by a client: prove it
    // with this cluster's own identity first.
    let copy = cluster.scratch("copy");
    home_with_identity(
        &cluster,
        &copy,
        &cluster.home().join("client.pem"),
        &cluster.home().join("client.key"),
    );
    let run = dynamo_in(&copy, &["get", "guarded"], None);
    run.ok();
    assert_eq!(
        run.stdout, b"value",
        "expected a copy of the client files to work"
    );

    let fake = cluster.scratch("fake");
    home_with_identity(
        &cluster,
        &fake,
        &other.home().join("client.pem"),
        &other.home().join("client.key"),
    );
    for args in [
        &["get", "guarded"][..],
        &["put", "guarded", "intruder"],
        &["delete", "guarded"],
        &["status"],
    ] {
        let run = dynamo_in(&fake, args, None);
        assert_ne!(
            run.code, 0,
            "`{}`: expected a foreign certificate to be refused",
            run.line
        );
        let message = run.expect_clean_error(run.code).to_lowercase();
        assert!(
            ["certificate", "handshake", "refused"]
                .iter()
                .any(|w| message.contains(w)),
            "`{}`: expected the error to say the certificate was refused, got: {message}",
            run.line
        );
        assert!(
            !message.contains("not running"),
            "`{}`: a refused certificate is not a stopped cluster: {message}",
            run.line
        );
    }
    // The cluster keeps serving, the intruder's write did not land.
    for node in ["n1", "n2", "n3"] {
        cluster.expect_value("guarded", b"value", &["--node", node]);
    }
}

#[test]
fn a_node_certificate_cannot_act_as_a_client() {
    let cluster = Cluster::start(3);
    cluster.put("guarded", "value", &[]);
    let fake = cluster.scratch("as-node");
    home_with_identity(
        &cluster,
        &fake,
        &cluster.home().join("n1").join("node.pem"),
        &cluster.home().join("n1").join("node.key"),
    );
    let run = dynamo_in(&fake, &["put", "guarded", "from a node"], None);
    assert_ne!(
        run.code, 0,
        "expected a node certificate to be refused client requests"
    );
    let message = run.expect_clean_error(run.code).to_lowercase();
    assert!(
        message.contains("certificate"),
        "expected the error to be about the certificate, got: {message}"
    );
    cluster.expect_value("guarded", b"value", &[]);
}
