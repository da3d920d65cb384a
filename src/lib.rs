//! dynamo: an always-writeable, leaderless replicated key-value store after
//! Amazon's Dynamo (DeCandia et al., SOSP 2007).
//!
//! The crate is layered as `../shared/DESIGN.md` describes: [`core`] is the
//! pure, deterministic protocol (ring, clocks, coordinators); [`storage`]
//! keeps objects in redb with group commit; [`net`] owns QUIC, mutual TLS
//! and the wire format; [`node`] is the driver that runs a node; [`client`]
//! is the async client the `dynamo` binary and library users share.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod core;
pub mod fuzz;
pub mod home;
pub mod http;
pub mod net;
pub mod node;
pub mod report;
pub mod sim;
pub mod storage;
