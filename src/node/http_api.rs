//! The node behind the HTTPS API ([`crate::http::Backend`]): requests go
//! through the same edge as the QUIC client's; `/status` asks every member
//! as `dynamo status` does; `/ring` and `/metrics` come from the node's
//! own view and counts.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::driver::Edge;
use crate::core::message::{Request, Response};
use crate::report::{ring_json, NodeRow, RingJson, StatusJson};

/// How long a member may take to answer `/status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The node as the HTTPS API sees it.
pub(super) struct Api {
    edge: Arc<Edge>,
    cluster_tag: u32,
}

impl Api {
    pub(super) fn new(edge: Arc<Edge>, cluster_tag: u32) -> Self {
        Self { edge, cluster_tag }
    }
}

impl crate::http::Backend for Api {
    async fn call(&self, request: Request) -> Response {
        self.edge.client(request).await
    }

    async fn status(&self) -> StatusJson {
        let me = self.edge.name().to_string();
        let asks = self.edge.members().into_iter().map(|(name, addr)| {
            let me = me.clone();
            async move {
                let ask = async {
                    if name == me {
                        self.edge.ask_machine(Request::Status).await
                    } else {
                        self.edge
                            .call_peer(&name, Request::Status)
                            .await
                            .unwrap_or_else(|e| {
                                Response::error(crate::core::message::ErrorKind::Unavailable, e)
                            })
                    }
                };
                let report = match tokio::time::timeout(STATUS_TIMEOUT, ask).await {
                    Ok(Response::Status(report)) => Some(report),
                    _ => None,
                };
                NodeRow::new(&name, addr.to_string(), "down", report.as_deref())
            }
        });
        StatusJson::new(join_all(asks).await)
    }

    fn ring(&self) -> Option<RingJson> {
        let view = self.edge.view()?;
        Some(ring_json(&view.ring, view.params.n))
    }

    async fn metrics(&self) -> String {
        let snapshot = self.edge.snapshot().await.unwrap_or_default();
        self.edge.metrics().render(snapshot)
    }

    fn observe(&self, op: &'static str, outcome: &'static str) {
        self.edge.metrics().http(op, outcome);
    }

    fn cluster_tag(&self) -> u32 {
        self.cluster_tag
    }

    fn value_bytes_max(&self) -> usize {
        self.edge.value_bytes_max()
    }
}
