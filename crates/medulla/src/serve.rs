//! `medulla serve`: assemble the configuration, start the broker, stop cleanly on
//! SIGTERM / SIGINT.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use medulla_broker::BrokerConfig;

use crate::ServeArgs;

/// Builds the flat key → value map: config file, shorthands, overrides.
pub fn properties(args: &ServeArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut props = BTreeMap::new();
    if let Some(path) = &args.config {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open config file {}", path.display()))?;
        let read = java_properties::read(std::io::BufReader::new(file))
            .with_context(|| format!("cannot parse config file {}", path.display()))?;
        props.extend(read);
    }
    if let Some(dir) = &args.data_dir {
        props.remove("log.dir");
        props.insert("log.dirs".to_owned(), dir.display().to_string());
    }
    if let Some(addr) = &args.kafka_listen {
        props.insert("listeners".to_owned(), format!("PLAINTEXT://{addr}"));
    }
    if let Some(addr) = &args.advertise {
        props.insert(
            "advertised.listeners".to_owned(),
            format!("PLAINTEXT://{addr}"),
        );
    }
    for o in &args.overrides {
        let Some((k, v)) = o.split_once('=') else {
            bail!("--override {o:?} is not KEY=VALUE");
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("--override {o:?} has an empty key");
        }
        props.insert(k.to_owned(), v.trim().to_owned());
    }
    Ok(props)
}

/// Runs the broker until a signal.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let props = properties(&args)?;
    let (config, warnings) = BrokerConfig::from_properties(&props)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let data_dir = config.data_dir.clone();
    // Handlers go in before anything announces readiness: a SIGTERM that arrives right
    // after the ready line must still mean a clean shutdown.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let running = medulla_broker::start(config).await?;
    // A stable line for scripts and tests that start Medulla on port 0.
    println!(
        "medulla: kafka listener on {} (data dir {})",
        running.local_addr,
        data_dir.display()
    );
    tracing::info!(addr = %running.local_addr, data_dir = %data_dir.display(), "medulla started");

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests, flushing");
    running.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
