//! One name, one certificate (issue 8): every identity the cluster must
//! refuse is refused, what it tried changes nothing, and the cluster serves
//! throughout. The CLI is driven as a user would; the attacks a CLI cannot
//! make (a stolen node certificate, forged gossip) are made with the
//! library's own transport.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dynamo::config::ClusterManifest;
use dynamo::core::membership::{ClusterState, EntryProof, MemberStatus};
use dynamo::core::message::{ErrorKind, Request, Response};
use dynamo::net::tls::{self, ClusterCa, Credentials, Identity, IssuedCert};
use dynamo::net::transport::{self, RpcClient};

use crate::support::{dynamo_in, poll, Cluster};

const DAY: u64 = 24 * 3600;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cluster_ca(cluster: &Cluster) -> ClusterCa {
    let read = |f: &str| std::fs::read_to_string(cluster.home().join(f)).expect(f);
    ClusterCa {
        cert_pem: read("ca.pem"),
        key_pem: read("ca.key"),
    }
}

/// A copy of the cluster's client files in `to`, with `identity` as the
/// client's certificate.
fn home_with(cluster: &Cluster, to: &Path, identity: &IssuedCert) -> PathBuf {
    std::fs::create_dir_all(to).expect("make the home copy");
    for file in ["cluster.toml", "ca.pem"] {
        std::fs::copy(cluster.home().join(file), to.join(file)).expect(file);
    }
    std::fs::write(to.join("client.pem"), &identity.cert_pem).expect("client.pem");
    std::fs::write(to.join("client.key"), &identity.key_pem).expect("client.key");
    to.to_path_buf()
}

fn manifest(cluster: &Cluster) -> ClusterManifest {
    ClusterManifest::load(&cluster.home().join("cluster.toml")).expect("the manifest")
}

fn node_addr(cluster: &Cluster, name: &str) -> SocketAddr {
    manifest(cluster).member(name).expect("a member").addr
}

fn node_creds(cluster: &Cluster, name: &str) -> Credentials {
    let dir = cluster.home().join(name);
    Credentials::load(
        &cluster.home().join("ca.pem"),
        &dir.join("node.pem"),
        &dir.join("node.key"),
    )
    .expect("the node's credentials")
}

/// An RPC client bound to `bind` presenting `creds`.
fn rpc(creds: &Credentials, bind: SocketAddr) -> RpcClient<Request, Response> {
    let config = tls::client_config(creds).expect("client config");
    RpcClient::new(transport::endpoint(bind, None, config).expect("endpoint"))
}

async fn call(
    rpc: &RpcClient<Request, Response>,
    cluster: &Cluster,
    to: &str,
    request: Request,
) -> Response {
    rpc.call(
        node_addr(cluster, to),
        &tls::server_name(to),
        request,
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("calling {to}: {e}"))
}

/// What `node` gossips now, read as the client reads it.
async fn state_of(
    client: &RpcClient<Request, Response>,
    cluster: &Cluster,
    node: &str,
) -> ClusterState {
    match call(client, cluster, node, Request::Gossip(Box::default())).await {
        Response::Gossip(state) => *state,
        other => panic!("{node} answered {other:?}"),
    }
}

fn is_forbidden(response: &Response) -> bool {
    matches!(response, Response::Error(e) if e.kind == ErrorKind::Forbidden)
}

#[test]
fn expired_and_not_yet_valid_client_certificates_are_refused_with_the_reason() {
    let cluster = Cluster::start(3);
    cluster.put("guarded", "value", &[]);
    let ca = cluster_ca(&cluster);
    let now = now_secs();
    let cases = [
        ("expired", now - 2 * DAY, now - DAY, "expired"),
        ("future", now + DAY, now + 2 * DAY, "not valid yet"),
    ];
    for (name, from, until, reason) in cases {
        let issued = ca
            .issue_valid_between(&Identity::Client, from, until)
            .expect("issue");
        let home = home_with(&cluster, &cluster.scratch(name), &issued);
        let run = dynamo_in(&home, &["get", "guarded"], None);
        let message = run.expect_clean_error(1).to_lowercase();
        assert!(
            message.contains("refused") && message.contains(reason),
            "{name}: expected 'refused' and {reason:?}, got: {message}"
        );
        assert!(
            !message.contains("is it running"),
            "{name}: a refusal is not a stopped cluster: {message}"
        );
        cluster.expect_value("guarded", b"value", &[]);
    }
}

#[test]
fn a_home_whose_ca_is_not_the_clusters_says_so() {
    let cluster = Cluster::start(3);
    let other = ClusterCa::generate("another").expect("a CA");
    let issued = other.issue(&Identity::Client).expect("issue");
    let home = cluster.scratch("other-ca");
    home_with(&cluster, &home, &issued);
    std::fs::write(home.join("ca.pem"), &other.cert_pem).expect("ca.pem");
    let run = dynamo_in(&home, &["get", "anything"], None);
    let message = run.expect_clean_error(1).to_lowercase();
    assert!(
        message.contains("not signed by this home's ca"),
        "expected the CA mismatch to be named, got: {message}"
    );
    cluster.put("still", "serving", &[]);
}

#[test]
fn a_node_refuses_to_start_under_a_name_its_certificate_does_not_carry() {
    let cluster = Cluster::start(3);
    let ca = cluster_ca(&cluster);
    let now = now_secs();
    // n9's folder: n1's node.toml renamed, seeded through n1, on a free port.
    let make = |folder: &str, cert: &str, key: &str| -> PathBuf {
        let dir = cluster.scratch(folder);
        std::fs::create_dir_all(&dir).expect("folder");
        for file in ["cluster.toml", "ca.pem"] {
            std::fs::copy(cluster.home().join(file), dir.join(file)).expect(file);
        }
        std::fs::write(dir.join("node.pem"), cert).expect("node.pem");
        std::fs::write(dir.join("node.key"), key).expect("node.key");
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port");
        let seed = node_addr(&cluster, "n1");
        let toml = format!(
            "name = \"n9\"\nlisten = \"{port}\"\ndata_dir = \"data\"\nlog_file = \"node.log\"\n\
             cluster = \"cluster.toml\"\nseeds = [{{ name = \"n1\", addr = \"{seed}\" }}]\n\
             [tls]\nca_cert = \"ca.pem\"\ncert = \"node.pem\"\nkey = \"node.key\"\n"
        );
        std::fs::write(dir.join("node.toml"), toml).expect("node.toml");
        dir
    };
    let n2_cert = std::fs::read_to_string(cluster.home().join("n2/node.pem")).expect("n2 cert");
    let n2_key = std::fs::read_to_string(cluster.home().join("n2/node.key")).expect("n2 key");
    let expired = ca
        .issue_valid_between(&Identity::Node("n9".into()), now - 2 * DAY, now - DAY)
        .expect("issue");
    let client = std::fs::read_to_string(cluster.home().join("client.pem")).expect("client");
    let client_key = std::fs::read_to_string(cluster.home().join("client.key")).expect("key");
    let cases = [
        (
            "impostor",
            make("impostor", &n2_cert, &n2_key),
            vec!["n9", "n2"],
        ),
        (
            "expired",
            make("expired", &expired.cert_pem, &expired.key_pem),
            vec!["n9", "expired"],
        ),
        (
            "client",
            make("as-client", &client, &client_key),
            vec!["n9", "client certificate"],
        ),
    ];
    for (case, dir, words) in cases {
        let config = dir.join("node.toml");
        let run = dynamo_in(
            cluster.home(),
            &["node", "--config", &config.to_string_lossy()],
            None,
        );
        let message = run.expect_clean_error(1).to_lowercase();
        for word in words {
            assert!(
                message.contains(word),
                "{case}: expected {word:?} in the refusal, got: {message}"
            );
        }
    }
    // Nothing joined: three members, the first owner table.
    let status = cluster.json(&["status"]);
    let nodes = status["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{status}");
    cluster.put("after", "impostors", &[]);
    cluster.expect_value("after", b"impostors", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_node_certificate_and_forged_gossip_change_nothing() {
    let cluster = tokio::task::block_in_place(|| {
        let cluster = Cluster::start(4);
        cluster.put("guarded", "value", &[]);
        cluster
    });
    let home_creds = Credentials::load(
        &cluster.home().join("ca.pem"),
        &cluster.home().join("client.pem"),
        &cluster.home().join("client.key"),
    )
    .expect("client credentials");
    let client = rpc(&home_creds, "127.0.0.1:0".parse().expect("addr"));
    // Every member's entry reaches every node signed by that member (the
    // manifest's unsigned entries are re-issued at start and gossiped).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut unsigned = Vec::new();
        for node in ["n1", "n2", "n3", "n4"] {
            let state = state_of(&client, &cluster, node).await;
            for (name, entry) in &state.members {
                if entry.signer() != Some(name.as_str()) {
                    unsigned.push(format!("{name} at {node}"));
                }
            }
        }
        if unsigned.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "entries not signed by their members: {unsigned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = state_of(&client, &cluster, "n1").await;
    let n2 = node_creds(&cluster, "n2");

    // n2's certificate from another address: refused at the first message.
    let thief = rpc(&n2, "127.0.0.1:0".parse().expect("addr"));
    for request in [
        Request::Ping,
        Request::Gossip(Box::new(before.clone())),
        Request::Read {
            key: dynamo::core::key::ObjectKey::new("default", b"guarded").expect("key"),
        },
    ] {
        let answer = call(&thief, &cluster, "n1", request).await;
        assert!(is_forbidden(&answer), "a stolen certificate got {answer:?}");
    }

    // From n2's own address (n2 stopped so the port is free), the
    // certificate is n2's and may speak for n2 only.
    tokio::task::block_in_place(|| {
        cluster.run(&["stop", "n2"]).ok();
    });
    let n2_at_home = rpc(&n2, node_addr(&cluster, "n2"));
    assert!(matches!(
        call(&n2_at_home, &cluster, "n1", Request::Ping).await,
        Response::Pong
    ));
    let sign = |state: &mut ClusterState, name: &str| {
        let entry = state.members.get_mut(name).expect("entry");
        entry.proof = Some(EntryProof {
            signer: "n2".into(),
            cert: n2.cert_der().to_vec(),
            signature: n2.sign(&entry.signed_bytes(name)).expect("sign"),
        });
    };
    let mut forged = before.clone();
    // Another member's entry, signed by n2; one signed by nobody; a new
    // member n9 vouched for by n2; an owner table giving n2 everything.
    forged.set_member("n3", "127.0.0.1:1", MemberStatus::Leaving);
    sign(&mut forged, "n3");
    forged.set_member("n4", "127.0.0.1:2", MemberStatus::Leaving);
    forged.set_member("n9", "127.0.0.1:3", MemberStatus::Joining);
    sign(&mut forged, "n9");
    let partitions = forged.owners.as_ref().map_or(0, |t| t.owners.len());
    forged.set_owners(vec!["n2".to_string(); partitions]);
    let answer = call(
        &n2_at_home,
        &cluster,
        "n1",
        Request::Gossip(Box::new(forged)),
    )
    .await;
    assert!(matches!(answer, Response::Gossip(_)), "{answer:?}");
    // The client certificate cannot send node requests, and its gossip is
    // read, not merged.
    let mut from_client = before.clone();
    from_client.set_member("n3", "127.0.0.1:1", MemberStatus::Leaving);
    let _ = call(
        &client,
        &cluster,
        "n1",
        Request::Gossip(Box::new(from_client)),
    )
    .await;
    let replicate = Request::ReplicateMany { entries: vec![] };
    assert!(is_forbidden(
        &call(&client, &cluster, "n1", replicate).await
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in ["n1", "n3", "n4"] {
        let after = state_of(&client, &cluster, node).await;
        for name in ["n3", "n4"] {
            assert_eq!(
                after.members.get(name).map(|e| e.status),
                Some(MemberStatus::Up),
                "{node} took in a forged entry for {name}"
            );
        }
        assert!(!after.members.contains_key("n9"), "{node} took in n9");
        assert_eq!(
            after.owners_version(),
            before.owners_version(),
            "{node} took in a forged owner table"
        );
    }
    drop(n2_at_home);
    let n2_addr = node_addr(&cluster, "n2");
    tokio::task::block_in_place(|| {
        poll(Duration::from_secs(10), "n2's port is free again", || {
            std::net::UdpSocket::bind(n2_addr)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        cluster.run(&["start", "n2"]).ok();
        poll(Duration::from_secs(30), "the cluster serves", || {
            let run = cluster.run(&["get", "guarded"]);
            if run.code == 0 && run.stdout == b"value" {
                Ok(())
            } else {
                Err(run.stderr)
            }
        });
        // Every node logged what it refused.
        let log = std::fs::read_to_string(cluster.home().join("n1/node.log")).expect("log");
        assert!(log.contains("refused a request"), "no refusal logged");
        assert!(
            log.contains("refused part of a gossiped cluster state"),
            "no gossip refusal logged"
        );
    });
}
