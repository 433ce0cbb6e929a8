//! Serving the registry over TLS: accept, handshake (off the accept loop, with a
//! deadline), then HTTP/1.1 or HTTP/2 on the TLS stream through hyper. The certificates
//! come from `medulla-auth`'s `TlsSettings`, so replacing the files on disk takes effect
//! for new connections without a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use medulla_auth::tls::TlsSettings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::security::ClientAddr;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; beyond it, accepting waits.
const CONNECTIONS_MAX: usize = 4096;

/// Serves `app` on `listener` over TLS until `stop` fires, then waits for requests in
/// flight (up to the grace period) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Arc<TlsSettings>,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "registry accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let app = app.clone();
        tasks.spawn(async move {
            let _permit = permit;
            serve_one(acceptor, stream, peer, app).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let grace = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tasks.abort_all();
                break;
            }
        }
    }
    Ok(())
}

async fn serve_one(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "registry TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "registry TLS handshake timed out");
            return;
        }
    };
    // Every request on this connection carries the client's address (for the
    // security middleware and the audit trail).
    let app = app.layer(axum::Extension(ClientAddr(peer)));
    let service = TowerToHyperService::new(app);
    if let Err(e) = Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "registry connection ended with an error");
    }
}
