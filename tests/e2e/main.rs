//! End-to-end tests: real `dynamo` processes, real clusters on loopback.
//!
//! One test binary with a module per area (ripgrep's layout). Every test
//! starts its own cluster in its own temporary home with free ports
//! ([`support::Cluster`]), so tests run in parallel and independently; a
//! cluster is taken down when its test ends, passing or failing.
//!
//! Nothing here measures time: benchmarks are never asserted by timed
//! tests, and waits poll a condition with a generous limit.

mod bad_input;
mod buckets;
mod chaos;
mod completions;
mod data;
mod faults;
mod http;
mod identity;
mod lifecycle;
mod membership;
mod operations;
mod repair;
mod ring;
mod ring_plan;
mod security;
mod support;
mod tombstones;
mod wire;
