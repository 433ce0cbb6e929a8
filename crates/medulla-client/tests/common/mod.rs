//! Shared test harness: Medulla's broker started in-process on a loopback port with a
//! temporary data directory, and waits with deadlines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use medulla_broker::{BrokerConfig, Running};
use medulla_client::ClientConfig;
use tokio::sync::watch;

/// How long any wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running broker and its data directory.
pub struct Broker {
    running: Option<Running>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on `127.0.0.1:0`. Groups start their first rebalance at once
    /// (no `group.initial.rebalance.delay.ms`) so election tests stay short.
    pub async fn start() -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = run(dir.path(), "127.0.0.1:0").await;
        Broker {
            addr: running.local_addr.to_string(),
            running: Some(running),
            _dir: dir,
        }
    }

    /// Starts the stopped broker again on the same address and data directory.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "stop it first");
        self.running = Some(run(self._dir.path(), &self.addr).await);
    }

    /// The client configuration for this broker.
    pub fn client(&self) -> ClientConfig {
        ClientConfig::new(self.addr.clone())
    }

    /// Stops the broker (the data directory stays until drop).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("shutdown");
        }
    }
}

async fn run(dir: &std::path::Path, listen: &str) -> Running {
    let props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.display().to_string()),
        ("listeners".to_owned(), format!("PLAINTEXT://{listen}")),
        ("offsets.topic.num.partitions".to_owned(), "1".to_owned()),
        (
            "group.initial.rebalance.delay.ms".to_owned(),
            "0".to_owned(),
        ),
    ]);
    let (config, _) = BrokerConfig::from_properties(&props).expect("config");
    medulla_broker::start(config).await.expect("start")
}

/// Waits until `pred` holds for the watched value, or fails the test at [`DEADLINE`].
pub async fn wait_until<T>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    pred: impl FnMut(&T) -> bool,
) -> T
where
    T: Clone,
{
    match tokio::time::timeout(DEADLINE, rx.wait_for(pred)).await {
        Ok(Ok(v)) => v.clone(),
        Ok(Err(_)) => panic!("the sender closed while waiting for {what}"),
        Err(_) => panic!("{what} did not happen within {DEADLINE:?}"),
    }
}
