//! The accept loops: one per listener, one shared bound on connections, back-off on
//! accept errors, TLS handshakes off the loop, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use medulla_auth::Principal;
use medulla_auth::audit::{AuditEvent, Category, Outcome};
use medulla_auth::mapping::SslPrincipalMapper;
use medulla_auth::tls::TlsSettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::broker::Broker;
use crate::connection;
use crate::limits;
use crate::session::{SecurityProtocol, Session};

/// A bound listener, ready to accept.
pub struct BoundListener {
    /// The listener's name.
    pub name: Arc<str>,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The socket.
    pub socket: TcpListener,
    /// Its TLS settings (TLS listeners only).
    pub tls: Option<Arc<TlsSettings>>,
    /// Its `ssl.principal.mapping.rules` (SSL listeners only).
    pub principal_mapper: Option<Arc<SslPrincipalMapper>>,
}

/// Accepts connections on every listener until `shutdown` turns true, then waits (up
/// to [`limits::SHUTDOWN_GRACE_MS`]) for every connection to finish its in-flight
/// requests. `max.connections` bounds the connections of all listeners together.
pub async fn run(broker: Broker, listeners: Vec<BoundListener>, shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(broker.config().connections_max));
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(
            broker.clone(),
            Arc::new(listener),
            permits.clone(),
            shutdown.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
}

async fn accept_loop(
    broker: Broker,
    listener: Arc<BoundListener>,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
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
            a = listener.socket.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff_ms = 1;
                let broker = broker.clone();
                let listener = listener.clone();
                tasks.spawn(async move {
                    serve_connection(broker, &listener, stream, peer).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Typically EMFILE: back off rather than spin, as mini-redis does.
                tracing::warn!(error = %e, backoff_ms, listener = %listener.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(1000);
            }
        }
        // Reap finished connection tasks so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    let grace = tokio::time::sleep(Duration::from_millis(limits::SHUTDOWN_GRACE_MS));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tracing::warn!(remaining = tasks.len(), listener = %listener.name, "connections still busy after the grace period; closing them");
                tasks.abort_all();
                break;
            }
        }
    }
}

/// One connection, in its own task: the TLS handshake (bounded by
/// [`limits::TLS_HANDSHAKE_TIMEOUT_MS`], so a slow or garbage client holds only its own
/// task), the principal from a client certificate, then the Kafka protocol.
async fn serve_connection(
    broker: Broker,
    listener: &BoundListener,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let mut session = Session::new(peer, listener.name.clone(), listener.protocol);
    let Some(tls) = &listener.tls else {
        // Plaintext TCP sends records straight from the segment files.
        let zero_copy = broker.config().zero_copy;
        connection::serve(broker, stream, session, zero_copy).await;
        return;
    };
    let _ = stream.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let mut shutdown = broker.shutdown_signal();
    let deadline = Duration::from_millis(limits::TLS_HANDSHAKE_TIMEOUT_MS);
    let stream = tokio::select! {
        done = tokio::time::timeout(deadline, acceptor.accept(stream)) => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%peer, listener = %listener.name, error = %e, "TLS handshake failed");
                // Kafka counts a failed handshake as a failed authentication.
                let _ = broker
                    .audit(tls_event(listener, peer, Outcome::Failure, &Principal::anonymous(), &format!("TLS handshake failed: {e}")))
                    .await;
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, listener = %listener.name, "TLS handshake timed out");
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    if let Some(mapper) = &listener.principal_mapper {
        let (_, connection) = stream.get_ref();
        match connection.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => match medulla_auth::mapping::principal_from_cert(cert, mapper) {
                Ok(principal) => {
                    tracing::info!(%peer, listener = %listener.name, "authenticated principal={principal}");
                    let event = tls_event(
                        listener,
                        peer,
                        Outcome::Success,
                        &principal,
                        "client certificate",
                    );
                    if let Err(e) = broker.audit(event).await {
                        // Unrecorded, the authentication does not stand.
                        tracing::error!(%peer, error = %e, "cannot audit an authentication; closing the connection");
                        return;
                    }
                    session.principal = principal;
                }
                Err(e) => {
                    // Kafka fails the authentication when no rule maps the subject.
                    tracing::info!(%peer, listener = %listener.name, error = %e, "client certificate refused");
                    let _ = broker
                        .audit(tls_event(
                            listener,
                            peer,
                            Outcome::Failure,
                            &Principal::anonymous(),
                            &e.to_string(),
                        ))
                        .await;
                    return;
                }
            },
            None => session.principal = Principal::anonymous(),
        }
    }
    connection::serve_stream(broker, stream, session).await;
}

/// An authentication event of a TLS listener.
fn tls_event(
    listener: &BoundListener,
    peer: SocketAddr,
    outcome: Outcome,
    principal: &Principal,
    detail: &str,
) -> AuditEvent {
    let mut event = AuditEvent::now(Category::Authentication, outcome);
    event.principal = principal.to_string();
    event.client = peer.to_string();
    event.source = format!("kafka:{}", listener.name);
    event.action = "TLS".to_owned();
    event.detail = detail.to_owned();
    event
}
