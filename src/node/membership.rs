//! Membership at the edges of the running node; the protocol itself (gossip,
//! pulls, ready, install, handover, removal) runs in the state machine
//! ([`crate::core::node`]) with the rules of [`crate::core::membership`].
//!
//! - **Start**: the state a node starts from: the one it stored (so a
//!   restarted node does not need the manifest again), else the manifest's.
//! - **Join**: a node that is not in its manifest and has no stored state
//!   asks its seeds for the state before it serves, adds itself as
//!   joining, and from then on follows the state like everyone else.
//! - **Signatures** ([`CertAuthority`]): the member entries a node makes
//!   carry its node certificate's signature, and those it hears must carry
//!   one of a node certificate of the cluster CA.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{ClusterManifest, MemberEntry as ManifestMember};
use crate::core::membership::{
    ClusterState, EntryAuthority, EntryProof, MemberEntry, MemberStatus,
};
use crate::core::message::{Request, Response};
use crate::net::tls::{self, Credentials};

use super::NodeError;

/// Time between two gossip rounds.
pub const GOSSIP_INTERVAL: Duration = Duration::from_secs(1);
/// How long a joining node keeps asking its seeds before it gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The meta-table entry holding the cluster state.
pub(super) const STATE_META: &str = "cluster_state";

/// The state a node starts from: the stored one when it has one; else
/// `None` when it has seeds (it must join through them); else the
/// manifest's members, all up, when the manifest names this node.
pub(super) fn initial_state(
    stored: Option<Vec<u8>>,
    manifest: &ClusterManifest,
    me: &str,
    has_seeds: bool,
) -> Result<Option<ClusterState>, NodeError> {
    if let Some(bytes) = stored {
        match decode(&bytes) {
            Ok(state) if state.members.contains_key(me) && state.owners.is_some() => {
                return Ok(Some(state))
            }
            Ok(_) => {}
            Err(e) => warn!("the stored cluster state is unreadable ({e}); starting over"),
        }
    }
    if has_seeds {
        return Ok(None);
    }
    if manifest.member(me).is_none() {
        return Err(NodeError::Membership(format!(
            "node {me} is not a member of the cluster manifest and has no seeds to join through"
        )));
    }
    let ring = manifest
        .ring()
        .map_err(|e| NodeError::Membership(format!("bad cluster manifest: {e}")))?;
    let members: Vec<(String, String)> = manifest
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.addr.to_string()))
        .collect();
    Ok(Some(ClusterState::bootstrap(&members, ring.owner_table())))
}

/// Joins through the seeds: sends them a state naming this node as joining
/// until one answers with a cluster state that has owners.
pub(super) async fn join(
    rpc: &crate::net::transport::RpcClient<Request, Response>,
    creds: &Credentials,
    me: &str,
    listen: SocketAddr,
    seeds: &[ManifestMember],
    timeout: Duration,
) -> Result<ClusterState, NodeError> {
    let mut mine = ClusterState::default();
    mine.set_member(me, &listen.to_string(), MemberStatus::Joining);
    sign_entry(creds, me, &mut mine, me);
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    let mut last_error = String::new();
    loop {
        for seed in seeds {
            let request = Request::Gossip(Box::new(mine.clone()));
            match rpc
                .call(seed.addr, &tls::server_name(&seed.name), request, timeout)
                .await
            {
                Ok(Response::Gossip(theirs)) => {
                    let mut state = *theirs;
                    state.merge(&mine);
                    if state.status_of(me) != Some(MemberStatus::Joining) {
                        // The cluster remembers an earlier life of this
                        // name (it left): join again with a newer entry.
                        state.set_member(me, &listen.to_string(), MemberStatus::Joining);
                        sign_entry(creds, me, &mut state, me);
                        mine = state;
                        continue;
                    }
                    if state.owners.is_some() {
                        info!(seed = seed.name, "joined the cluster through a seed");
                        return Ok(state);
                    }
                }
                Ok(other) => last_error = format!("{} answered {other:?}", seed.name),
                Err(e) => last_error = format!("{}: {e}", seed.name),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::Membership(format!(
                "no seed let node {me} join within {} s (last: {last_error})",
                JOIN_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Signs `name`'s entry in `state` as `me` (see [`EntryProof`]). A node
/// whose key cannot sign leaves the entry unsigned, and peers will not take
/// it in: said in the log.
fn sign_entry(creds: &Credentials, me: &str, state: &mut ClusterState, name: &str) {
    let Some(entry) = state.members.get_mut(name) else {
        return;
    };
    entry.proof = None;
    match creds.sign(&entry.signed_bytes(name)) {
        Ok(signature) => {
            entry.proof = Some(EntryProof {
                signer: me.to_string(),
                cert: creds.cert_der().to_vec(),
                signature,
            })
        }
        Err(e) => warn!(member = name, "cannot sign a member entry: {e}"),
    }
}

/// The running node's authority over member entries: it signs with its
/// node certificate, and a proof must be a signature by a node certificate
/// of the cluster CA ([`Credentials::verify_signed`]).
pub(super) struct CertAuthority(pub Credentials);

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertAuthority")
    }
}

impl EntryAuthority for CertAuthority {
    fn sign(&self, me: &str, state: &mut ClusterState, name: &str) {
        sign_entry(&self.0, me, state, name);
    }

    fn verify(&self, name: &str, entry: &MemberEntry) -> Result<(), String> {
        let Some(proof) = &entry.proof else {
            return Err(format!(
                "version {} of {name}'s entry is signed by nobody",
                entry.version
            ));
        };
        self.0
            .verify_signed(
                &proof.signer,
                &proof.cert,
                &entry.signed_bytes(name),
                &proof.signature,
            )
            .map_err(|e| {
                format!(
                    "version {} of {name}'s entry, signed as {}: {e}",
                    entry.version, proof.signer
                )
            })
    }
}

/// `state` with this node's own entry signed by it: re-issued one version
/// up when it is not signed by `me` yet (the manifest's first entries are
/// nobody's word), as it is.
pub(super) fn with_own_entry_signed(
    mut state: ClusterState,
    creds: &Credentials,
    me: &str,
) -> ClusterState {
    let Some(entry) = state.members.get(me) else {
        return state;
    };
    if entry.signer() != Some(me) {
        let (addr, status) = (entry.addr.clone(), entry.status);
        state.set_member(me, &addr, status);
        sign_entry(creds, me, &mut state, me);
    }
    state
}

/// A stored state; one stored before buckets had settings (members and
/// owners only) reads as having none.
fn decode(bytes: &[u8]) -> Result<ClusterState, postcard::Error> {
    postcard::from_bytes::<ClusterState>(bytes).or_else(|e| {
        type Before = (
            std::collections::BTreeMap<String, crate::core::membership::MemberEntry>,
            Option<crate::core::membership::OwnerTable>,
        );
        match postcard::from_bytes::<Before>(bytes) {
            Ok((members, owners)) => Ok(ClusterState {
                members,
                owners,
                buckets: Default::default(),
            }),
            Err(_) => Err(e),
        }
    })
}

/// The encoded state for the meta table.
pub(super) fn encode(state: &ClusterState) -> Vec<u8> {
    postcard::to_allocvec(state).unwrap_or_default()
}
