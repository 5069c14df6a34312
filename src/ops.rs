//! The operator's HTTP endpoint (`http.listen`, local only by default): `/metrics` in the
//! Prometheus text format, `/health/live` (the process answers), `/health/ready` (not draining,
//! the directory answered its last login, a port free) and `POST /reload`, each a short answer
//! a load balancer or an orchestrator can act on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use axum::extract::State;
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

/// Reloads as SIGHUP does and says how it went.
async fn reload(State(status): State<Status>) -> impl IntoResponse {
    let (reply, answer) = oneshot::channel();
    if status.control.send(Control::Reload(Some(reply))).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_string());
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, "reloaded".to_string()),
        Ok(Err(why)) => (StatusCode::UNPROCESSABLE_ENTITY, why),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_string()),
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
