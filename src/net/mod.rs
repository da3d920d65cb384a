//! The network edge of a node: QUIC connections with mutual TLS, frames on
//! streams, and RPC over them (DESIGN.md §4, "Wire and security").
//!
//! Three layers, each usable and tested alone:
//! - [`tls`] makes the cluster CA and certificates and turns them into
//!   quinn configurations that refuse any peer without a certificate of the
//!   cluster's CA; it also says who a connected peer is ([`Identity`]).
//! - [`wire`] is the frame format: a length-checked prefix and a postcard
//!   payload, with decoders that never allocate on a peer's word.
//! - [`transport`] carries requests and responses as frames over one
//!   reused connection per peer and a few long-lived pipelined streams;
//!   it is generic over the message types, so it does not know the
//!   protocol enum.
//!
//! Nothing here decides what a message means; the node driver does.

pub mod tls;
pub mod transport;
pub mod wire;

pub use tls::{
    client_config, peer_identity, server_config, server_name, ClusterCa, Credentials, Identity,
    IssuedCert, TlsError, ALPN,
};
pub use transport::{endpoint, serve, Handler, RpcClient, TransportError};
pub use wire::{encode_frame, read_frame, FrameDecoder, WireError, FRAME_BYTES_MAX};
