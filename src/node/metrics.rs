//! The node's metrics, in Prometheus' (OpenMetrics) text format for `GET
//! /metrics` (HTTP.md): client requests by operation and outcome, their
//! latency, siblings returned, and at each scrape the machine's own counts
//! (hints pending and handed off, read repairs, anti-entropy, tombstones)
//! and the bytes and datagrams the node's connections sent and received.
//!
//! The edge records every client request, QUIC or HTTP, as it answers it;
//! the machine's counts come in a [`Snapshot`] the driver's task takes when
//! asked, so nothing on the request path locks more than one counter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A request's operation and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    op: &'static str,
    outcome: &'static str,
}

/// A request's operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

type Latencies = Family<Op, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // 100 us to about 3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What the machine and the transport counted, taken at a scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Objects in the store.
    pub keys: u64,
    /// Hints held for other nodes.
    pub hints: u64,
    /// Tombstone-only keys held.
    pub tombstones: u64,
    /// Hints handed off since the start.
    pub hints_delivered: u64,
    /// Read repairs sent.
    pub read_repairs: u64,
    /// Merkle exchanges made.
    pub merkle_exchanges: u64,
    /// Keys repaired by anti-entropy.
    pub keys_repaired: u64,
    /// Tombstones collected.
    pub tombstones_collected: u64,
    /// Puts coordinated with no home replica reachable.
    pub fallback_puts: u64,
    /// Peers the detector suspected.
    pub suspicions: u64,
    /// Gossip rounds.
    pub gossip_rounds: u64,
    /// UDP datagrams sent.
    pub datagrams_sent: u64,
    /// UDP datagrams received.
    pub datagrams_received: u64,
    /// UDP bytes sent.
    pub bytes_sent: u64,
    /// UDP bytes received.
    pub bytes_received: u64,
}

/// The registry and the request-path metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    latencies: Latencies,
    http: Family<Outcome, Counter>,
    siblings: Counter,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dynamo");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "requests",
            "Client requests (QUIC and HTTP) by operation and outcome",
            requests.clone(),
        );
        let latencies = Latencies::new_with_constructor(latency);
        registry.register_with_unit(
            "request_duration",
            "How long client requests took, by operation",
            prometheus_client::registry::Unit::Seconds,
            latencies.clone(),
        );
        let http = Family::<Outcome, Counter>::default();
        registry.register(
            "http_requests",
            "HTTPS API requests by operation and outcome",
            http.clone(),
        );
        let siblings = Counter::default();
        registry.register(
            "siblings_returned",
            "Siblings returned by gets that found more than one",
            siblings.clone(),
        );
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(Machine(snapshot.clone())));
        Self {
            registry,
            requests,
            latencies,
            http,
            siblings,
            snapshot,
        }
    }
}

impl Metrics {
    /// Records one client request.
    pub fn request(&self, op: &'static str, outcome: &'static str, elapsed: Duration) {
        self.requests.get_or_create(&Outcome { op, outcome }).inc();
        self.latencies
            .get_or_create(&Op { op })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one HTTPS API request (its client request, if any, is
    /// recorded by the edge like a QUIC one).
    pub fn http(&self, op: &'static str, outcome: &'static str) {
        self.http.get_or_create(&Outcome { op, outcome }).inc();
    }

    /// Records the siblings a get returned.
    pub fn siblings(&self, count: usize) {
        if count > 1 {
            self.siblings.inc_by(count as u64);
        }
    }

    /// The text exposition, with the machine's counts as of `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The machine's counts as metrics, from the latest [`Snapshot`].
#[derive(Debug)]
struct Machine(Arc<Mutex<Snapshot>>);

impl prometheus_client::collector::Collector for Machine {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let gauges = [
            (
                "keys",
                "Objects in this node's store (tombstones included)",
                s.keys,
            ),
            (
                "hints_pending",
                "Hints this node holds for other nodes",
                s.hints,
            ),
            ("tombstones", "Keys holding only tombstones", s.tombstones),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let counters = [
            (
                "hints_handed_off",
                "Hints handed off to their home replicas",
                s.hints_delivered,
            ),
            ("read_repairs", "Read repairs sent", s.read_repairs),
            (
                "merkle_exchanges",
                "Anti-entropy Merkle exchanges",
                s.merkle_exchanges,
            ),
            (
                "keys_repaired",
                "Keys anti-entropy repaired",
                s.keys_repaired,
            ),
            (
                "tombstones_collected",
                "Tombstones collected",
                s.tombstones_collected,
            ),
            (
                "fallback_puts",
                "Puts coordinated by a fallback",
                s.fallback_puts,
            ),
            (
                "suspicions",
                "Peers the failure detector suspected",
                s.suspicions,
            ),
            ("gossip_rounds", "Gossip rounds", s.gossip_rounds),
            (
                "datagrams_sent",
                "UDP datagrams the node's connections sent",
                s.datagrams_sent,
            ),
            (
                "datagrams_received",
                "UDP datagrams received",
                s.datagrams_received,
            ),
            (
                "bytes_sent",
                "UDP bytes the node's connections sent",
                s.bytes_sent,
            ),
            ("bytes_received", "UDP bytes received", s.bytes_received),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_follow_prometheus_conventions() {
        let metrics = Metrics::default();
        metrics.request("get", "ok", Duration::from_millis(3));
        metrics.http("get", "siblings");
        metrics.siblings(2);
        let text = metrics.render(Snapshot {
            hints: 7,
            read_repairs: 3,
            ..Snapshot::default()
        });
        for needle in [
            "dynamo_requests_total{op=\"get\",outcome=\"ok\"} 1",
            "dynamo_request_duration_seconds_bucket{",
            "dynamo_request_duration_seconds_count{op=\"get\"} 1",
            "dynamo_siblings_returned_total 2",
            "dynamo_hints_pending 7",
            "dynamo_read_repairs_total 3",
            "dynamo_datagrams_sent_total 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
