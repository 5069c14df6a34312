//! Status callbacks: an endpoint's `status_url` hears each call of a flow that hands calls to
//! it go from `initiated` to `answered` to `completed` (with its duration and why it ended).
//! Fire and forget: signed like every request, sent from a task of its own, never waited for.

use serde_json::json;

use super::exchange;
use crate::ivr::script::steps::endpoint::{self, Endpoint};

/// Where a call's lifecycle is reported: an endpoint and its `status_url`.
#[derive(Debug, Clone)]
pub struct StatusTarget {
    pub endpoint: Endpoint,
    pub url: String,
}

/// One moment of a call's life.
#[derive(Debug, Clone)]
pub struct CallStatus {
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// `initiated`, `answered` or `completed`.
    pub status: &'static str,
    pub duration_s: Option<f64>,
    pub reason: Option<&'static str>,
}

/// Sends `status` to every target, each from a task of its own.
pub fn notify(http: &reqwest::Client, targets: &[StatusTarget], status: &CallStatus) {
    for target in targets {
        let event = json!({
            "event": "status",
            "status": status.status,
            "call": {"id": status.call_id, "from": status.from, "to": status.to},
            "duration_s": status.duration_s,
            "reason": status.reason,
        });
        let outgoing = exchange::encode(&target.endpoint, &target.url, &event);
        let (http, url) = (http.clone(), target.url.clone());
        let key = format!("{}-status-{}", status.call_id, status.status);
        tokio::spawn(async move {
            let timeout = std::time::Duration::from_secs(10);
            if let Err(why) = endpoint::post(&http, &url, "POST", outgoing, &key, timeout).await {
                tracing::debug!(%why, "status callback not delivered");
            }
        });
    }
}
