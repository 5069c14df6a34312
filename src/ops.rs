//! The operator's HTTP endpoint (`http.listen`, local only by default): `/metrics` in the
//! Prometheus text format, `/health/live` (the process answers), `/health/ready` (not draining,
//! the directory answered its last login, a port free) and `POST /reload`, each a short answer
//! a load balancer or an orchestrator can act on.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use crate::directory::Directory;
use crate::media::ports::PortPool;
use crate::metrics::METRICS;

/// What the process asks of the server.
#[derive(Debug)]
pub enum Control {
    /// The first stop signal: no new calls, the others go on for the grace.
    Drain,
    /// A second stop signal: every call ends now.
    Now,
    /// Re-read what can change live; the answer, when someone waits for it.
    Reload(Option<oneshot::Sender<Result<(), String>>>),
}

/// What the endpoint reads from the running server.
#[derive(Clone)]
pub struct Status {
    pub ports: PortPool,
    pub draining: Arc<AtomicBool>,
    pub control: mpsc::UnboundedSender<Control>,
    /// The directory new calls verify against (a reload may replace it).
    pub directory: Arc<RwLock<Arc<dyn Directory>>>,
    /// Set while a reload runs: a second asks again later instead of queueing behind it.
    pub reloading: Arc<AtomicBool>,
}

/// Binds `listen` and serves until the process ends.
pub async fn serve(listen: SocketAddr, status: Status) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding http.listen {listen}"))?;
    tracing::info!(%listen, "operations endpoint: /metrics, /health/live, /health/ready");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/reload", post(reload))
        .with_state(status);
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("operations endpoint stopped: {e}");
        }
    });
    Ok(())
}

async fn metrics(State(status): State<Status>) -> impl IntoResponse {
    METRICS
        .rtp_port_pairs_free
        .set(i64::try_from(status.ports.available()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        METRICS.encode(),
    )
}

/// Whether `POST /reload` is taken from `peer`: only from this machine, whatever address the
/// endpoint listens on (it has no credentials of its own; `/metrics` and `/health` may be
/// scraped from afar, a reload may not).
pub fn may_reload(peer: IpAddr) -> bool {
    peer.is_loopback()
}

/// Reloads as SIGHUP does and says how it went; one at a time.
async fn reload(
    State(status): State<Status>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    if !may_reload(peer.ip()) {
        tracing::warn!(%peer, "POST /reload from another machine: refused");
        return (
            StatusCode::FORBIDDEN,
            "reload only from this machine".to_string(),
        );
    }
    let Some(_running) = ReloadRunning::begin(&status.reloading) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "a reload is running".to_string(),
        );
    };
    let (reply, answer) = oneshot::channel();
    let answer = if status.control.send(Control::Reload(Some(reply))).is_err() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_string())
    } else {
        match answer.await {
            Ok(Ok(())) => (StatusCode::OK, "reloaded".to_string()),
            Ok(Err(why)) => (StatusCode::UNPROCESSABLE_ENTITY, why),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_string()),
        }
    };
    answer
}

/// The one reload under way. Dropping it (the answer sent, or the request abandoned when its
/// client hung up) lets the next one in, so a client that leaves never blocks reloads.
struct ReloadRunning<'a>(&'a AtomicBool);

impl<'a> ReloadRunning<'a> {
    fn begin(flag: &'a AtomicBool) -> Option<ReloadRunning<'a>> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(ReloadRunning(flag))
    }
}

impl Drop for ReloadRunning<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn live() -> impl IntoResponse {
    json(StatusCode::OK, "live")
}

async fn ready(State(status): State<Status>) -> impl IntoResponse {
    if status.draining.load(Ordering::Relaxed) {
        json(StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if !status.directory.read().is_ok_and(|d| d.reachable()) {
        json(StatusCode::SERVICE_UNAVAILABLE, "directory unreachable")
    } else if status.ports.available() == 0 {
        json(StatusCode::SERVICE_UNAVAILABLE, "no free RTP port")
    } else {
        json(StatusCode::OK, "ready")
    }
}

fn json(code: StatusCode, state: &str) -> impl IntoResponse {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"status\":\"{state}\"}}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reload_at_a_time_and_the_next_when_it_ends() {
        let flag = AtomicBool::new(false);
        let first = ReloadRunning::begin(&flag).expect("the first reload runs");
        assert!(
            ReloadRunning::begin(&flag).is_none(),
            "a second waits for the first"
        );
        drop(first);
        assert!(
            ReloadRunning::begin(&flag).is_some(),
            "the next runs once it ended"
        );
    }

    #[test]
    fn reloads_are_taken_from_this_machine_only() {
        for here in ["127.0.0.1", "127.8.0.3", "::1"] {
            assert!(may_reload(here.parse().unwrap()), "{here}");
        }
        for away in [
            "203.0.113.5",
            "10.0.0.2",
            "192.168.1.9",
            "2001:db8::1",
            "0.0.0.0",
        ] {
            assert!(!may_reload(away.parse().unwrap()), "{away}");
        }
    }
}
