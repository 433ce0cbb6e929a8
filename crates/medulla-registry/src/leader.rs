//! One writer among several registry instances, as Confluent's: every instance joins
//! the group `schema-registry` (protocol type `sr`, medulla-client's [`Election`]); the
//! elected leader applies writes, the others forward write requests to it over HTTP and
//! relay its answer. Reads are answered by every instance from its own state.
//!
//! Until the first election completes (and during a rebalance) a write waits, up to
//! `wait`, for a leader; then it is 50004 (unknown leader). A request already forwarded
//! once is never forwarded again: an instance that gets one while it is not the leader
//! answers 50003, so a stale view on two instances cannot bounce a request between them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medulla_client::{ClientConfig, Election, Identity, Leader};
use tokio::sync::watch;

use crate::error::ApiError;

/// The header a forwarded request carries.
pub const FORWARDED: &str = "x-medulla-forwarded";

/// Confluent's `schema.registry.group.id` default and its protocol type.
pub const GROUP: &str = "schema-registry";
pub const PROTOCOL_TYPE: &str = "sr";

pub struct Leadership {
    leader: watch::Receiver<Option<Leader>>,
    http: reqwest::Client,
    wait: Duration,
    body_limit: usize,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Leadership {
    /// Joins the election in the background (retrying until it succeeds or `stop`).
    pub fn start(
        kafka: ClientConfig,
        me: Identity,
        wait: Duration,
        body_limit: usize,
    ) -> Arc<Leadership> {
        let (tx, leader) = watch::channel(None);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let joined = tokio::select! {
                    j = Election::join(&kafka, GROUP, PROTOCOL_TYPE, me.clone()) => j,
                    _ = stopped.changed() => return,
                };
                let election = match joined {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "joining the schema registry's leader election failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = stopped.changed() => return,
                        }
                    }
                };
                let mut current = election.leader();
                loop {
                    let now = current.borrow_and_update().clone();
                    if let Some(l) = &now {
                        tracing::info!(leader = %l.identity.url(), is_me = l.is_me, "schema registry leader elected");
                    }
                    let _ = tx.send(now);
                    tokio::select! {
                        changed = current.changed() => if changed.is_err() { break },
                        _ = stopped.changed() => {
                            election.leave().await;
                            return;
                        }
                    }
                }
                let _ = tx.send(None);
                election.leave().await;
            }
        });
        Arc::new(Leadership {
            leader,
            http: reqwest::Client::new(),
            wait,
            body_limit,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Leaves the group (so the others elect a new leader at once, not after the
    /// session timeout) and waits for that.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// The current leader, waiting up to `self.wait` while there is none.
    async fn current(&self) -> Option<Leader> {
        let mut rx = self.leader.clone();
        match tokio::time::timeout(self.wait, rx.wait_for(Option::is_some)).await {
            Ok(Ok(l)) => l.clone(),
            _ => None,
        }
    }
}

/// Whether a request changes state (and so belongs to the leader). Lookups
/// (`POST /subjects/{s}`) and compatibility tests are reads, as in Confluent.
fn is_write(method: &Method, path: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS {
        return false;
    }
    if *method == Method::POST {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if segments.first() == Some(&"compatibility")
            || (segments.len() == 2 && segments[0] == "subjects")
        {
            return false;
        }
    }
    true
}

/// The middleware: writes run here only on the leader.
///
/// A leader that cannot be reached (it stopped, and the group has not noticed yet) is
/// waited out: the write is retried as the election moves on, until `wait` has passed.
pub async fn route_writes(State(l): State<Arc<Leadership>>, req: Request, next: Next) -> Response {
    if !is_write(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let deadline = tokio::time::Instant::now() + l.wait;
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, l.body_limit).await {
        Ok(b) => b,
        Err(_) => return ApiError::payload_too_large(l.body_limit).into_response(),
    };
    let mut leader_rx = l.leader.clone();
    loop {
        let Some(leader) = l.current().await else {
            return ApiError::unknown_leader(format!(
                "no schema registry leader was elected within {:?}",
                l.wait
            ))
            .into_response();
        };
        if leader.is_me {
            return next.run(Request::from_parts(parts, Body::from(body))).await;
        }
        if parts.headers.contains_key(FORWARDED) {
            return ApiError::forwarding_failed(
                "this instance received a forwarded write but is not the leader",
            )
            .into_response();
        }
        match forward(&l, &leader, &parts, body.clone()).await {
            Ok(r) => return r,
            Err((e, unreachable)) => {
                if !unreachable || tokio::time::Instant::now() >= deadline {
                    return e.into_response();
                }
                tracing::info!(leader = %leader.identity.url(), "the registry leader is unreachable; waiting for the election");
                // Until the leader changes, or a short pause (then try it again).
                leader_rx.mark_unchanged();
                let _ = tokio::time::timeout(Duration::from_millis(200), leader_rx.changed()).await;
            }
        }
    }
}

/// Forwards a write; the error says whether the leader could not be reached at all.
async fn forward(
    l: &Leadership,
    leader: &Leader,
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Result<Response, (ApiError, bool)> {
    let url = format!(
        "{}{}",
        leader.identity.url(),
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut out = l
        .http
        .request(parts.method.clone(), &url)
        .header(FORWARDED, "1");
    for h in [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION] {
        if let Some(v) = parts.headers.get(&h) {
            out = out.header(h, v);
        }
    }
    let resp = out.body(body).send().await.map_err(|e| {
        let unreachable = e.is_connect();
        (
            ApiError::forwarding_failed(format!(
                "Error while forwarding the request to the leader {url}: {e}"
            )),
            unreachable,
        )
    })?;
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = resp.bytes().await.map_err(|e| {
        (
            ApiError::forwarding_failed(format!(
                "Error while reading the leader's answer from {url}: {e}"
            )),
            false,
        )
    })?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    let ct = content_type.unwrap_or_else(|| HeaderValue::from_static(crate::api::CONTENT_TYPE));
    r.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_what_change_state() {
        assert!(is_write(&Method::POST, "/subjects/a/versions"));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(is_write(&Method::DELETE, "/subjects/a"));
        assert!(is_write(&Method::POST, "/dek-registry/v1/keks"));
        assert!(!is_write(&Method::POST, "/subjects/a"));
        assert!(!is_write(
            &Method::POST,
            "/compatibility/subjects/a/versions/latest"
        ));
        assert!(!is_write(&Method::GET, "/subjects"));
    }
}
