//! A running `dynamo node` (DESIGN.md §3): it opens the store, the
//! certificates, the endpoint and the cluster state, then hands them to the
//! thin driver ([`driver`]), one task around the protocol's state machine
//! ([`crate::core::node::Node`]), the same type the simulator runs.
//!
//! On start the node opens its store and picks its replica incarnation: it
//! keeps the stored one only if the store is not new and its last run shut
//! down cleanly; otherwise it draws a new random one, so no dot it minted
//! before can be minted again (KV679). A node not in its manifest joins
//! through its seeds before it serves ([`membership`]). On SIGTERM or
//! SIGINT it stops accepting, flushes the store and marks it cleanly
//! closed.

mod driver;
mod http_api;
mod listing;
mod membership;
pub mod metrics;

use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;

use crate::config::{ClusterManifest, ConfigError, NodeConfig};
use crate::core::clock::Object;
use crate::core::message::{Request, Response};
use crate::core::node::INCARNATION_META;
use crate::net::tls::{self, Credentials, Identity};
use crate::net::transport::{self, RpcClient};
use crate::storage::{StorageError, Store};

pub use crate::core::node::OBJECT_VALUE_BYTES_MAX;

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A configuration file is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node is not in the manifest, or the manifest does not make a ring.
    #[error("{0}")]
    Membership(String),
    /// The certificates could not be loaded.
    #[error("{0}")]
    Tls(String),
    /// The data file is corrupted or unreadable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The endpoint could not be opened (address in use, say).
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        message: String,
    },
}

/// Runs a node until SIGTERM or SIGINT, then shuts it down cleanly.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    driver::run(config).await
}

/// What a node has once its store, certificates, endpoint and cluster
/// state are ready, before it serves.
struct Opened {
    manifest: ClusterManifest,
    creds: Credentials,
    store: Store<Object>,
    incarnation: u64,
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    rpc: RpcClient<Request, Response>,
    timeout: Duration,
    state: crate::core::membership::ClusterState,
    /// The HTTPS API's listener and TLS configuration, when configured.
    https: Option<(
        tokio::net::TcpListener,
        std::sync::Arc<rustls::ServerConfig>,
    )>,
}

/// Opens the store and picks the incarnation, loads the certificates,
/// binds the endpoint and finds the cluster state (stored, the manifest's,
/// or from the seeds when joining), with this node's entry signed.
async fn open(config: &NodeConfig) -> Result<Opened, NodeError> {
    let manifest = ClusterManifest::load(&config.cluster)?;
    let creds = Credentials::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    check_own_certificate(&creds, config)?;

    let (store, opened) = Store::<Object>::open_with_partitions(
        &config.data_file(),
        &config.storage,
        manifest.partitions,
    )?;
    let stored = store.meta_get(INCARNATION_META)?.and_then(|b| {
        <[u8; 8]>::try_from(b.as_slice())
            .ok()
            .map(u64::from_be_bytes)
    });
    let incarnation = match stored {
        Some(i) if !opened.fresh && opened.clean_shutdown => i,
        previous => {
            let fresh = fresh_incarnation(previous);
            store
                .meta_put(INCARNATION_META, fresh.to_be_bytes().to_vec())
                .await?;
            info!(
                fresh_store = opened.fresh,
                clean_shutdown = opened.clean_shutdown,
                "new replica incarnation {fresh:016x}"
            );
            fresh
        }
    };

    let server_config = tls::server_config(&creds).map_err(|e| NodeError::Tls(e.to_string()))?;
    let client_config = tls::client_config(&creds).map_err(|e| NodeError::Tls(e.to_string()))?;
    let endpoint =
        transport::endpoint(config.listen, Some(server_config), client_config).map_err(|e| {
            NodeError::Bind {
                addr: config.listen,
                message: e.to_string(),
            }
        })?;
    let local_addr = endpoint.local_addr().map_err(|e| NodeError::Bind {
        addr: config.listen,
        message: e.to_string(),
    })?;
    let https = match config.http_listen {
        None => None,
        Some(addr) => {
            let tls = crate::net::tls::https_server_config(&creds)
                .map_err(|e| NodeError::Tls(e.to_string()))?;
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| NodeError::Bind {
                        addr,
                        message: e.to_string(),
                    })?;
            Some((listener, std::sync::Arc::new(tls)))
        }
    };
    let rpc = RpcClient::new(endpoint.clone());
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let stored = store.meta_get(membership::STATE_META)?;
    let has_seeds = !config.seeds.is_empty();
    let state = match membership::initial_state(stored, &manifest, &config.name, has_seeds)? {
        Some(state) => state,
        None => {
            let state = membership::join(
                &rpc,
                &creds,
                &config.name,
                local_addr,
                &config.seeds,
                timeout,
            )
            .await?;
            store
                .meta_put(membership::STATE_META, membership::encode(&state))
                .await?;
            state
        }
    };
    // The manifest's entries are nobody's word but the manifest's: ours
    // is signed before we serve, so gossip can carry it to nodes that did
    // not read the manifest (it spreads with the next rounds; pushing it
    // now would wait on peers that are still starting).
    let state = membership::with_own_entry_signed(state, &creds, &config.name);
    store
        .meta_put(membership::STATE_META, membership::encode(&state))
        .await?;
    Ok(Opened {
        manifest,
        creds,
        store,
        incarnation,
        endpoint,
        local_addr,
        rpc,
        timeout,
        state,
        https,
    })
}

/// One name, one certificate: a node runs only under the name its
/// certificate carries, with a certificate of its own CA valid now. A node
/// configured as `n9` with `n2`'s certificate would otherwise join as `n9`
/// while every peer takes its messages for `n2`'s.
fn check_own_certificate(creds: &Credentials, config: &NodeConfig) -> Result<(), NodeError> {
    let cert = config.tls.cert.display();
    match creds.own_identity() {
        Ok(Identity::Node(name)) if name == config.name => Ok(()),
        Ok(Identity::Node(name)) => Err(NodeError::Tls(format!(
            "the certificate {cert} is node {name}'s, but this node is configured as {}: \
             a node runs only under the name in its certificate (issue one for {} from the \
             cluster CA, or set name = \"{name}\")",
            config.name, config.name
        ))),
        Ok(Identity::Client) => Err(NodeError::Tls(format!(
            "the certificate {cert} is the cluster's client certificate, not node {}'s",
            config.name
        ))),
        Err(e) => Err(NodeError::Tls(format!(
            "the certificate {cert} cannot serve as node {}: {e}",
            config.name
        ))),
    }
}

/// The CPU time (user + system) this process has used, microseconds; 0
/// where the OS does not say.
fn process_cpu_micros() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return 0;
    };
    let micros = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec()).unwrap_or(0)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// A random incarnation, never 0 and never `previous`.
fn fresh_incarnation(previous: Option<u64>) -> u64 {
    loop {
        let candidate: u64 = rand::random();
        if candidate != 0 && Some(candidate) != previous {
            return candidate;
        }
    }
}
