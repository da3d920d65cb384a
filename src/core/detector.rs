//! Local failure detection (paper §4.8.3, DESIGN.md §2 "failure detection"):
//! one node's own view of which peers it can reach.
//!
//! Dynamo needs no global agreement on who is up: each node routes around
//! the peers *it* cannot reach. A peer becomes unreachable as soon as a
//! request to it fails or times out, or a heartbeat goes unanswered; it
//! becomes reachable again when anything it is asked succeeds. Every peer,
//! reachable or not, is probed with a cheap heartbeat every
//! [`DetectorConfig::probe_interval`], so a peer that came back is noticed
//! within about one interval and a silent one within interval + timeout.
//!
//! [`Detector`] is pure: time comes in as `now` (time since any fixed
//! origin), decisions go out as values (the peers to probe). The driver
//! sends the probes and reports each outcome back; the simulator drives the
//! same code with virtual time.

use std::collections::BTreeMap;
use std::time::Duration;

/// How often peers are probed and how long a probe may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Time between two heartbeats to one peer.
    pub probe_interval: Duration,
    /// A heartbeat unanswered for this long counts as failed.
    pub probe_timeout: Duration,
}

/// Heartbeat every 500 ms.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// A heartbeat unanswered after 1 s marks the peer unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            probe_interval: PROBE_INTERVAL,
            probe_timeout: PROBE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PeerView {
    reachable: bool,
    /// When it last answered anything.
    last_ok: Option<Duration>,
    /// When it last failed.
    last_failure: Option<Duration>,
    /// When the last heartbeat went out.
    last_probe: Option<Duration>,
    /// A heartbeat sent at this time has not been answered yet.
    probe_in_flight: Option<Duration>,
}

/// One node's view of its peers' reachability.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    peers: BTreeMap<String, PeerView>,
}

impl Detector {
    /// A view of `peers` at time zero, all presumed reachable until
    /// something fails; the first heartbeats are due one interval later.
    pub fn new(peers: impl IntoIterator<Item = String>, config: DetectorConfig) -> Self {
        Self {
            config,
            peers: peers
                .into_iter()
                .map(|p| {
                    (
                        p,
                        PeerView {
                            reachable: true,
                            // The first heartbeat goes out one interval
                            // after time zero: peers started together get
                            // time to listen before anyone judges them.
                            last_probe: Some(Duration::ZERO),
                            ..PeerView::default()
                        },
                    )
                })
                .collect(),
        }
    }

    /// Follows a membership change: peers not watched yet are added as
    /// reachable, their first heartbeat one interval after `now`; peers
    /// not in `peers` any more are forgotten.
    pub fn set_peers(&mut self, peers: impl IntoIterator<Item = String>, now: Duration) {
        let peers: Vec<String> = peers.into_iter().collect();
        self.peers.retain(|name, _| peers.contains(name));
        for peer in peers {
            self.peers.entry(peer).or_insert_with(|| PeerView {
                reachable: true,
                last_probe: Some(now),
                ..PeerView::default()
            });
        }
    }

    /// The timings in use.
    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// Whether requests should be routed to `peer`. A name this view does
    /// not know is reachable (the driver decides about strangers).
    pub fn is_reachable(&self, peer: &str) -> bool {
        self.peers.get(peer).is_none_or(|v| v.reachable)
    }

    /// A request to `peer` (or a heartbeat) was answered at `now`.
    pub fn on_success(&mut self, peer: &str, now: Duration) {
        if let Some(v) = self.peers.get_mut(peer) {
            v.reachable = true;
            v.last_ok = Some(now);
            v.probe_in_flight = None;
        }
    }

    /// A request to `peer` (or a heartbeat) failed or timed out at `now`.
    pub fn on_failure(&mut self, peer: &str, now: Duration) {
        if let Some(v) = self.peers.get_mut(peer) {
            v.reachable = false;
            v.last_failure = Some(now);
            v.probe_in_flight = None;
        }
    }

    /// Advances time: heartbeats unanswered for longer than the timeout
    /// count as failures; returns the peers to send a heartbeat now (each
    /// is marked as probed at `now`).
    pub fn tick(&mut self, now: Duration) -> Vec<String> {
        let DetectorConfig {
            probe_interval,
            probe_timeout,
        } = self.config;
        let mut due = Vec::new();
        for (name, v) in &mut self.peers {
            if let Some(sent) = v.probe_in_flight {
                if now.saturating_sub(sent) >= probe_timeout {
                    v.reachable = false;
                    v.last_failure = Some(now);
                    v.probe_in_flight = None;
                } else {
                    continue;
                }
            }
            let probe_due = v
                .last_probe
                .is_none_or(|last| now.saturating_sub(last) >= probe_interval);
            if probe_due {
                v.last_probe = Some(now);
                v.probe_in_flight = Some(now);
                due.push(name.clone());
            }
        }
        due
    }

    /// The peers currently considered unreachable, in name order.
    pub fn unreachable(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, v)| !v.reachable)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn detector() -> Detector {
        Detector::new(
            ["n2".to_string(), "n3".to_string()],
            DetectorConfig::default(),
        )
    }

    #[test]
    fn peers_start_reachable_and_strangers_are_reachable() {
        let d = detector();
        assert!(d.is_reachable("n2"));
        assert!(d.is_reachable("n9"));
        assert!(d.unreachable().is_empty());
    }

    #[test]
    fn set_peers_adds_new_peers_reachable_and_forgets_old_ones() {
        let mut d = detector();
        d.on_failure("n2", ms(10));
        d.set_peers(["n2".to_string(), "n4".to_string()], ms(100));
        assert!(!d.is_reachable("n2"), "a known peer keeps its view");
        assert!(d.is_reachable("n4"));
        assert!(
            !d.tick(ms(550)).contains(&"n4".to_string()),
            "n4 gets an interval"
        );
        assert!(d.tick(ms(600)).contains(&"n4".to_string()));
        assert!(!d.unreachable().contains(&"n3".to_string()));
        d.on_failure("n3", ms(700));
        assert!(d.is_reachable("n3"), "n3 is forgotten: a stranger");
    }

    #[test]
    fn a_failed_request_marks_unreachable_until_a_success() {
        let mut d = detector();
        d.on_failure("n2", ms(10));
        assert!(!d.is_reachable("n2"));
        assert_eq!(d.unreachable(), vec!["n2"]);
        d.on_success("n2", ms(20));
        assert!(d.is_reachable("n2"));
    }

    #[test]
    fn heartbeats_go_out_every_interval_and_one_at_a_time() {
        let mut d = detector();
        assert!(d.tick(ms(0)).is_empty(), "peers get one interval to start");
        assert_eq!(d.tick(ms(500)), vec!["n2", "n3"]);
        assert!(d.tick(ms(600)).is_empty(), "probes still in flight");
        d.on_success("n2", ms(505));
        d.on_success("n3", ms(505));
        assert!(d.tick(ms(999)).is_empty(), "interval not over");
        assert_eq!(d.tick(ms(1000)), vec!["n2", "n3"]);
    }

    #[test]
    fn an_unanswered_heartbeat_marks_unreachable_and_probing_goes_on() {
        let mut d = detector();
        d.tick(ms(500));
        d.on_success("n3", ms(503));
        assert!(d.tick(ms(1499)).contains(&"n3".to_string()));
        // n2 never answered its heartbeat sent at 500.
        let due = d.tick(ms(1500));
        assert!(!d.is_reachable("n2"));
        assert!(d.is_reachable("n3"));
        assert_eq!(due, vec!["n2"], "n2 is probed again at once");
        d.on_success("n2", ms(1502));
        assert!(d.is_reachable("n2"));
    }
}
