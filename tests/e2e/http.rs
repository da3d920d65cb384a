//! The HTTPS API (HTTP.md) against real clusters: every route, siblings
//! and contexts, tokens shared with the CLI, bucket properties honoured by
//! both, refused certificates, bad input, and listing many keys across
//! pages with a node down. Requests go through `dynamo::http::client`, an
//! HTTPS client with the home's client certificate, as curl would.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use dynamo::http::client::{Answer, HttpsClient};
use dynamo::net::tls::{ClusterCa, Credentials, Identity};
use hyper::Method;
use serde_json::Value;

use crate::support::Cluster;

/// A blocking front for the async client: one node's API.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    client: Arc<HttpsClient>,
}

/// Where `node` serves HTTPS, from the home's `cluster.toml`.
fn http_addr(cluster: &Cluster, node: &str) -> SocketAddr {
    let text = std::fs::read_to_string(cluster.home().join("cluster.toml")).expect("cluster.toml");
    let manifest: toml::Value = toml::from_str(&text).expect("a toml manifest");
    let nodes = manifest["nodes"].as_array().expect("nodes");
    let entry = nodes
        .iter()
        .find(|n| n["name"].as_str() == Some(node))
        .expect("the node in cluster.toml");
    entry["http"]
        .as_str()
        .expect("an http address in cluster.toml")
        .parse()
        .expect("a socket address")
}

fn client_creds(home: &Path) -> Credentials {
    Credentials::load(
        &home.join("ca.pem"),
        &home.join("client.pem"),
        &home.join("client.key"),
    )
    .expect("the client's credentials")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

impl Api {
    pub fn new(cluster: &Cluster, node: &str) -> Api {
        Api::with(cluster, node, &client_creds(cluster.home()))
    }

    fn with(cluster: &Cluster, node: &str, creds: &Credentials) -> Api {
        let client = HttpsClient::new(http_addr(cluster, node), node, creds).expect("a client");
        Api {
            runtime: runtime(),
            client: Arc::new(client),
        }
    }

    #[track_caller]
    fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.try_call(method.clone(), path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn try_call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, dynamo::http::client::HttpError> {
        self.runtime
            .block_on(self.client.request(method, path, headers, body.to_vec()))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[], b"")
    }

    #[track_caller]
    fn put(&self, path: &str, body: &[u8], context: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = context
            .map(|c| ("x-dynamo-context", c))
            .into_iter()
            .collect();
        self.call(Method::PUT, path, &headers, body)
    }
}

#[track_caller]
fn expect_status(answer: &Answer, status: u16, what: &str) {
    assert_eq!(
        answer.status.as_u16(),
        status,
        "{what}: expected {status}, got {} with body {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
}

#[track_caller]
pub fn json(answer: &Answer) -> Value {
    answer
        .json()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&answer.body)))
}

#[track_caller]
fn expect_error(answer: &Answer, status: u16, kind: &str) {
    expect_status(answer, status, kind);
    let body = json(answer);
    assert_eq!(body["kind"], kind, "error body {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "an error sentence in {body}"
    );
}

#[test]
fn every_route_answers_over_https() {
    let cluster = Cluster::start(3);
    let api = Api::new(&cluster, "n2");

    // Keys: put, get (bytes and JSON), delete, missing.
    let put = api.put("/buckets/default/keys/greeting", b"hello", None);
    expect_status(&put, 204, "PUT a key");
    let token = put
        .header("x-dynamo-context")
        .expect("a context")
        .to_string();
    let got = api.get("/buckets/default/keys/greeting");
    expect_status(&got, 200, "GET a key");
    assert_eq!(&got.body[..], b"hello");
    assert!(got.header("x-dynamo-context").is_some());
    let as_json = api.call(
        Method::GET,
        "/buckets/default/keys/greeting",
        &[("accept", "application/json")],
        b"",
    );
    expect_status(&as_json, 200, "GET as JSON");
    let doc = json(&as_json);
    assert_eq!(doc["bucket"], "default");
    assert_eq!(doc["key"], "greeting");
    assert_eq!(doc["siblings"][0]["value"], "hello");
    assert!(doc["siblings"][0]["clock"].is_object(), "{doc}");
    expect_error(&api.get("/buckets/default/keys/nobody"), 404, "not_found");
    let deleted = api.call(
        Method::DELETE,
        "/buckets/default/keys/greeting",
        &[("x-dynamo-context", token.as_str())],
        b"",
    );
    expect_status(&deleted, 204, "DELETE with the context");
    let gone = api.get("/buckets/default/keys/greeting");
    expect_error(&gone, 404, "not_found");
    assert!(
        gone.header("x-dynamo-context").is_some(),
        "a deleted key's 404 carries the tombstone's context"
    );
    // The CLI sees the same store.
    cluster.run(&["get", "greeting"]).expect_code(3);

    // A key that needs percent-encoding, and the binary value of a CLI put.
    expect_status(
        &api.put("/buckets/default/keys/a%2Fb%20c", b"x", None),
        204,
        "odd key",
    );
    cluster.run(&["get", "a/b c"]).ok();

    // Listing.
    for i in 0..5 {
        expect_status(
            &api.put(&format!("/buckets/list/keys/k{i}"), b"v", None),
            204,
            "put",
        );
    }
    let page = json(&api.get("/buckets/list/keys?limit=3"));
    assert_eq!(page["keys"], serde_json::json!(["k0", "k1", "k2"]));
    assert_eq!(page["next"], "k2");
    let rest = json(&api.get("/buckets/list/keys?limit=3&after=k2"));
    assert_eq!(rest["keys"], serde_json::json!(["k3", "k4"]));
    assert_eq!(rest["next"], Value::Null);

    // Buckets and their properties.
    let buckets = json(&api.get("/buckets"));
    assert_eq!(
        buckets["buckets"][0],
        serde_json::json!({"name": "default", "n": 3, "r": 2, "w": 2})
    );
    let props = json(&api.get("/buckets/fresh/props"));
    assert_eq!(
        props,
        serde_json::json!({"name": "fresh", "n": 3, "r": 2, "w": 2})
    );
    expect_status(
        &api.put("/buckets/fresh/props", br#"{"r": 1, "w": 3}"#, None),
        204,
        "PUT props",
    );
    let props = json(&api.get("/buckets/fresh/props"));
    assert_eq!(
        props,
        serde_json::json!({"name": "fresh", "n": 3, "r": 1, "w": 3})
    );
    expect_error(
        &api.put("/buckets/fresh/props", br#"{"n": 4}"#, None),
        400,
        "invalid_input",
    );
    expect_error(
        &api.put("/buckets/fresh/props", br#"{"r": 0}"#, None),
        400,
        "invalid_input",
    );
    expect_error(
        &api.put("/buckets/fresh/props", b"nonsense", None),
        400,
        "invalid_input",
    );
    // N of a bucket that holds keys stays; the CLI says the same (exit 2).
    expect_error(
        &api.put("/buckets/list/props", br#"{"n": 2}"#, None),
        409,
        "conflict",
    );
    cluster
        .run(&["bucket", "set", "list", "-N", "2"])
        .expect_clean_error(2);
    let listed = cluster.json(&["bucket", "list"]);
    assert!(
        listed["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .any(|b| b["name"] == "fresh"),
        "the CLI lists the bucket set over HTTP: {listed}"
    );

    // Cluster documents.
    let status = json(&api.get("/status"));
    let nodes = status["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert_eq!(node["state"], "up", "{node}");
        assert!(
            node["http"].as_str().is_some_and(|a| a.contains(':')),
            "{node}"
        );
    }
    let ring = json(&api.get("/ring"));
    assert_eq!(ring["partitions"], 64);
    assert_eq!(ring["ring"].as_array().map(Vec::len), Some(64));
    let metrics = api.get("/metrics");
    expect_status(&metrics, 200, "metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    for needle in [
        "dynamo_requests_total{op=\"put\",outcome=\"ok\"}",
        "dynamo_requests_total{op=\"get\",outcome=\"not_found\"}",
        "dynamo_request_duration_seconds_bucket{",
        "dynamo_http_requests_total{",
        "dynamo_hints_pending ",
        "dynamo_read_repairs_total ",
        "dynamo_datagrams_sent_total ",
        "dynamo_bytes_sent_total ",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }

    // Bad input: unknown route, bad token, oversized body, bad numbers.
    expect_error(&api.get("/nowhere"), 404, "not_found");
    expect_error(
        &api.put("/buckets/default/keys/k", b"v", Some("garbage")),
        400,
        "invalid_input",
    );
    let big = vec![b'x'; 1024 * 1024 + 1];
    expect_error(
        &api.put("/buckets/default/keys/big", &big, None),
        413,
        "too_large",
    );
    expect_error(
        &api.get("/buckets/default/keys/k?r=0"),
        400,
        "invalid_input",
    );
    expect_error(
        &api.get("/buckets/bad%20bucket/keys/k"),
        400,
        "invalid_input",
    );
    let method = api.call(Method::POST, "/buckets/default/keys/k", &[], b"");
    expect_error(&method, 405, "method_not_allowed");
    // None of it hurt the node.
    expect_status(&api.get("/buckets/list/keys"), 200, "after bad input");
}

#[test]
fn siblings_over_http_collapse_with_the_context_and_tokens_cross_over() {
    let cluster = Cluster::start(3);
    let api = Api::new(&cluster, "n1");
    // Two blind writes through two nodes: siblings.
    expect_status(
        &api.put("/buckets/default/keys/cart", b"milk", None),
        204,
        "first",
    );
    let other = Api::new(&cluster, "n3");
    expect_status(
        &other.put("/buckets/default/keys/cart", b"eggs", None),
        204,
        "second",
    );
    let conflict = api.get("/buckets/default/keys/cart");
    expect_status(&conflict, 300, "siblings");
    let doc = json(&conflict);
    let values: BTreeSet<&str> = doc["siblings"]
        .as_array()
        .expect("siblings")
        .iter()
        .filter_map(|s| s["value"].as_str())
        .collect();
    assert_eq!(values, BTreeSet::from(["eggs", "milk"]));
    let context = doc["context"].as_str().expect("a context").to_string();
    assert_eq!(conflict.header("x-dynamo-context"), Some(context.as_str()));
    // The CLI sees the same two.
    cluster.run(&["get", "cart"]).expect_code(4);
    // A PUT with the read's context replaces both.
    expect_status(
        &api.put("/buckets/default/keys/cart", b"milk,eggs", Some(&context)),
        204,
        "resolve",
    );
    let resolved = api.get("/buckets/default/keys/cart");
    expect_status(&resolved, 200, "one value");
    assert_eq!(&resolved.body[..], b"milk,eggs");

    // CLI token -> HTTP: a put with it replaces the CLI's value.
    let token = cluster.put("shared", "from-cli", &[]);
    expect_status(
        &api.put("/buckets/default/keys/shared", b"from-http", Some(&token)),
        204,
        "put",
    );
    cluster.expect_value("shared", b"from-http", &[]);
    // HTTP token -> CLI.
    let read = api.get("/buckets/default/keys/shared");
    let token = read
        .header("x-dynamo-context")
        .expect("a context")
        .to_string();
    cluster.put("shared", "from-cli-again", &["--context", &token]);
    let last = api.get("/buckets/default/keys/shared");
    expect_status(&last, 200, "no siblings after the CLI used the HTTP token");
    assert_eq!(&last.body[..], b"from-cli-again");
}

#[test]
fn https_refuses_every_certificate_but_the_clusters_client() {
    let cluster = Cluster::start(3);
    let home = cluster.home();
    let ok = Api::new(&cluster, "n1");
    expect_status(&ok.get("/buckets"), 200, "the client certificate");
    // A node's certificate is not a client's.
    let node = Credentials::load(
        &home.join("ca.pem"),
        &home.join("n1/node.pem"),
        &home.join("n1/node.key"),
    )
    .expect("n1's credentials");
    let refused = Api::with(&cluster, "n1", &node);
    assert!(
        refused.try_call(Method::GET, "/buckets", &[], b"").is_err(),
        "a node certificate must be refused over HTTPS"
    );
    // A client certificate of another CA.
    let other = ClusterCa::generate("another").expect("a CA");
    let issued = other.issue(&Identity::Client).expect("a certificate");
    let ca = std::fs::read_to_string(home.join("ca.pem")).expect("ca.pem");
    let foreign = Credentials::from_pem(&ca, &issued.cert_pem, &issued.key_pem).expect("creds");
    let refused = Api::with(&cluster, "n1", &foreign);
    assert!(
        refused.try_call(Method::GET, "/buckets", &[], b"").is_err(),
        "another CA's client certificate must be refused"
    );
    // No certificate at all: a plain TLS client that trusts the CA.
    let addr = http_addr(&cluster, "n1");
    let runtime = runtime();
    let answered = runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(home.join("ca.pem")).expect("ca.pem");
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.expect("a cert")).expect("a root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let name = rustls::pki_types::ServerName::try_from("n1.node.dynamo").expect("name");
        let Ok(mut tls) = connector.connect(name, tcp).await else {
            return false;
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = b"GET /buckets HTTP/1.1\r\nhost: x\r\n\r\n";
        if tls.write_all(request).await.is_err() {
            return false;
        }
        let mut buf = vec![0u8; 256];
        matches!(tls.read(&mut buf).await, Ok(n) if n > 0)
    });
    assert!(!answered, "a client with no certificate must get no answer");
    // The node still serves.
    expect_status(&ok.get("/buckets"), 200, "after the refusals");
}

#[test]
fn buckets_carry_their_own_n_r_and_w() {
    let cluster = Cluster::start(5);
    // N = 1: exactly one copy of each key, on its one home replica.
    cluster
        .run(&["bucket", "set", "single", "-N", "1", "-R", "1", "-W", "1"])
        .ok();
    let shown = cluster.json(&["bucket", "show", "single"]);
    assert_eq!(
        shown,
        serde_json::json!({"name": "single", "n": 1, "r": 1, "w": 1})
    );
    for i in 0..30 {
        cluster.put(&format!("s{i}"), "v", &["--bucket", "single"]);
    }
    let keys: u64 = cluster.json(&["status"])["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["keys"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        keys, 30,
        "a bucket with N = 1 keeps exactly one copy of each key"
    );
    let placed = cluster.json(&["ring", "--key", "s1", "--bucket", "single"]);
    assert_eq!(
        placed["preference_list"].as_array().map(Vec::len),
        Some(1),
        "{placed}"
    );
    // Listing it gives each key once.
    // A quorum above the bucket's N could never be met: a usage error.
    cluster
        .run(&["put", "s0", "v", "--bucket", "single", "-W", "2"])
        .expect_clean_error(2);
    let listed = cluster.json(&["keys", "--bucket", "single"]);
    assert_eq!(listed["count"], 30, "{listed}");
    // N = 5, W = 5: no fallback is left with a node down, so a put fails;
    // the default bucket's succeeds.
    cluster
        .run(&["bucket", "set", "all", "-N", "5", "-W", "5", "-R", "1"])
        .ok();
    cluster.put("before", "v", &["--bucket", "all"]);
    cluster.run(&["kill", "n4"]).ok();
    let failed = cluster.run(&["put", "after", "v", "--bucket", "all"]);
    failed.expect_code(5);
    cluster.put("after", "v", &[]);
    // R and W may change while the bucket holds keys; N may not.
    cluster.run(&["bucket", "set", "all", "-W", "4"]).ok();
    cluster.put("after", "v", &["--bucket", "all"]);
    cluster
        .run(&["bucket", "set", "all", "-N", "3"])
        .expect_clean_error(2);
    let api = Api::new(&cluster, "n2");
    assert_eq!(
        json(&api.get("/buckets/all/props")),
        serde_json::json!({"name": "all", "n": 5, "r": 1, "w": 4})
    );
    // HTTP puts use the bucket's settings too: W = 4 of the 4 nodes up.
    expect_status(
        &api.put("/buckets/all/keys/http", b"v", None),
        204,
        "W = 4 with 4 up",
    );
    expect_status(
        &api.put("/buckets/all/props", br#"{"w": 5}"#, None),
        204,
        "W back to 5",
    );
    poll_props(&cluster, "all", 5);
    let refused = api.put("/buckets/all/keys/http", b"v2", None);
    expect_error(&refused, 503, "unavailable");
    let body = json(&refused);
    assert_eq!(
        (body["acks"].as_u64(), body["needed"].as_u64()),
        (Some(4), Some(5)),
        "{body}"
    );
}

/// Waits until every running node's view of `bucket` has this W.
fn poll_props(cluster: &Cluster, bucket: &str, w: u64) {
    crate::support::poll(
        std::time::Duration::from_secs(20),
        "the new W everywhere",
        || {
            for (name, _) in cluster.running_nodes() {
                let api = Api::new(cluster, &name);
                let props = json(&api.get(&format!("/buckets/{bucket}/props")));
                if props["w"].as_u64() != Some(w) {
                    return Err(format!("{name} has {props}"));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn listing_ten_thousand_keys_pages_with_none_missing_or_repeated_while_a_node_is_down() {
    const KEYS: usize = 10_000;
    let cluster = Cluster::start(5);
    let addr = http_addr(&cluster, "n1");
    let creds = client_creds(cluster.home());
    let runtime = runtime();
    // Forty connections write the keys.
    runtime.block_on(async {
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..40 {
            let client = HttpsClient::new(addr, "n1", &creds).expect("a client");
            writers.spawn(async move {
                for i in (w..KEYS).step_by(40) {
                    let path = format!("/buckets/many/keys/key-{i:05}");
                    let answer = client
                        .request(Method::PUT, &path, &[], b"v".to_vec())
                        .await
                        .expect("a put");
                    assert_eq!(answer.status.as_u16(), 204, "{path}");
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.expect("a writer");
        }
    });
    // A deleted key is not listed.
    let api = Api::new(&cluster, "n1");
    let read = api.get("/buckets/many/keys/key-00007");
    let token = read
        .header("x-dynamo-context")
        .expect("a context")
        .to_string();
    let deleted = api.call(
        Method::DELETE,
        "/buckets/many/keys/key-00007",
        &[("x-dynamo-context", token.as_str())],
        b"",
    );
    expect_status(&deleted, 204, "delete");
    cluster.run(&["kill", "n3"]).ok();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/buckets/many/keys?limit=1000&after={a}"),
            None => "/buckets/many/keys?limit=1000".to_string(),
        };
        let page = api.get(&path);
        expect_status(&page, 200, "a page with n3 down");
        let doc = json(&page);
        for key in doc["keys"].as_array().expect("keys") {
            seen.push(key.as_str().expect("a key").to_string());
        }
        pages += 1;
        match doc["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 100, "the listing does not end");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a key was listed twice");
    assert_eq!(
        seen.len(),
        KEYS - 1,
        "every live key once, the deleted one not"
    );
    assert!(!unique.contains(&"key-00007".to_string()));
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "keys come in a stable (sorted) order");
    assert!(pages >= 10, "{pages} pages of at most 1000");
    // The CLI streams the same keys.
    let listed = cluster.run(&["keys", "--bucket", "many"]);
    listed.ok();
    assert_eq!(listed.text().lines().count(), KEYS - 1);
}

#[test]
fn the_python_example_runs_against_a_cluster() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 is not on this machine; the example is not run");
        return;
    }
    let cluster = Cluster::start(3);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/http_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("DYNAMO_HOME", cluster.home())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("siblings: 2"), "{stdout}");
    assert!(stdout.contains("resolved: eggs,milk"), "{stdout}");
    cluster.expect_value("cart-py", b"eggs,milk", &[]);
}
