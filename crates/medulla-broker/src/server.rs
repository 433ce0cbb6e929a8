//! The accept loop: bounded connections, back-off on accept errors, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::broker::Broker;
use crate::connection;
use crate::limits;

/// Accepts connections until `shutdown` turns true, then waits (up to
/// [`limits::SHUTDOWN_GRACE_MS`]) for every connection to finish its in-flight requests.
pub async fn run(broker: Broker, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(broker.config().connections_max));
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff_ms = 1u64;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff_ms = 1;
                let broker = broker.clone();
                // Plaintext TCP, the only listener there is, sends records from files.
                let zero_copy = broker.config().zero_copy;
                tasks.spawn(async move {
                    connection::serve(broker, stream, peer, zero_copy).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Typically EMFILE: back off rather than spin, as mini-redis does.
                tracing::warn!(error = %e, backoff_ms, "accept failed");
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(1000);
            }
        }
        // Reap finished connection tasks so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let grace = tokio::time::sleep(Duration::from_millis(limits::SHUTDOWN_GRACE_MS));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tracing::warn!(remaining = tasks.len(), "connections still busy after the grace period; closing them");
                tasks.abort_all();
                break;
            }
        }
    }
}
