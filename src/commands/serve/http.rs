//! `serve`'s HTTP endpoints (axum): /metrics, /-/healthy, /-/ready and
//! POST /api/v1/backup.
//!
//! /-/ready answers 200 while serve runs, also when backups fail: in a
//! sidecar, an unready container takes the whole Prometheus pod out of its
//! Service, and a failing backup is for the alerts (/metrics), not for the
//! pod's traffic. It turns 503 once SIGTERM arrived.
//!
//! The trigger is off unless a token file is configured (404), and then
//! needs `Authorization: Bearer TOKEN` (401 otherwise, compared in constant
//! time). It answers 202 when a backup will start, 409 while one runs or
//! is already asked for, 503 while stopping.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Result;
use axum::extract::State as Shared;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use super::State;
use crate::error::Hinted;

/// The server, running.
pub struct Server {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds `address` and serves until `stop` turns true.
pub async fn start(
    address: &str,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        anyhow::Error::new(e).context(Hinted::usage(
            format!("could not listen on {address}"),
            "pass a free --listen-address HOST:PORT (or serve.listen_address), e.g. \
             127.0.0.1:8431",
        ))
    })?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/backup", post(trigger))
        .with_state(state);
    let task = tokio::spawn(async move {
        let stopped = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    Ok(Server {
        address: bound,
        task,
    })
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthy() -> &'static str {
    "promsnap is Healthy.\n"
}

async fn ready(Shared(state): Shared<Arc<State>>) -> Response {
    match state.stopping.load(Ordering::SeqCst) {
        false => (StatusCode::OK, "promsnap is Ready.\n").into_response(),
        true => (StatusCode::SERVICE_UNAVAILABLE, "promsnap is stopping.\n").into_response(),
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn trigger(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(token) = &state.token else {
        return answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({
                "status": "error",
                "error": "the backup trigger is off: start serve with --trigger-token-file",
            }),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes())) {
        let mut response = answer(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({
                "status": "error",
                "error": "missing or wrong bearer token",
            }),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    if state.stopping.load(Ordering::SeqCst) {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "error", "error": "promsnap serve is stopping" }),
        );
    }
    let taken = state.running.load(Ordering::SeqCst)
        || state
            .pending
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err();
    if taken {
        return answer(
            StatusCode::CONFLICT,
            serde_json::json!({
                "status": "error",
                "error": "a backup is already running or about to start",
            }),
        );
    }
    state.trigger.notify_one();
    answer(
        StatusCode::ACCEPTED,
        serde_json::json!({ "status": "started" }),
    )
}

/// Byte strings compared in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
