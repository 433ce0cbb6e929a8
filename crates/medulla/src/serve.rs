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

/// The registry, as the broker's schema id check. The broker starts before the
/// registry (which is its client), so until the registry is up every check fails
/// closed: validated topics refuse records for those few moments.
#[derive(Default)]
struct RegistryCheck(std::sync::OnceLock<std::sync::Arc<medulla_registry::registry::Registry>>);

impl medulla_broker::schema_validation::SchemaIdCheck for RegistryCheck {
    fn check(
        &self,
        topic: &str,
        is_key: bool,
        strategy: medulla_broker::schema_validation::SubjectNameStrategy,
        id: i32,
    ) -> Result<(), String> {
        use medulla_broker::schema_validation::SubjectNameStrategy as S;
        use medulla_registry::registry::SubjectStrategy;
        let Some(registry) = self.0.get() else {
            return Err("the schema registry is not running yet".to_owned());
        };
        let strategy = match strategy {
            S::Topic => SubjectStrategy::Topic,
            S::Record => SubjectStrategy::Record,
            S::TopicRecord => SubjectStrategy::TopicRecord,
        };
        registry.check_schema_id(topic, is_key, strategy, id)
    }
}

/// `--registry-listen`: an address, or `off`.
fn registry_listen(args: &ServeArgs) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let v = args.registry_listen.trim();
    if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let addr = std::net::ToSocketAddrs::to_socket_addrs(v)
        .with_context(|| format!("--registry-listen {v:?} is not HOST:PORT or off"))?
        .next()
        .with_context(|| format!("--registry-listen {v:?} resolves to no address"))?;
    Ok(Some(addr))
}

/// Starts the schema registry against `bootstrap` and prints its ready line.
async fn start_registry(
    args: &ServeArgs,
    listen: std::net::SocketAddr,
    bootstrap: String,
) -> anyhow::Result<medulla_registry::service::RunningRegistry> {
    let kafka = medulla_client::ClientConfig {
        bootstrap,
        properties: Vec::new(),
    };
    let mut cfg = medulla_registry::service::RegistryConfig::new(listen, kafka);
    cfg.advertised = args.registry_advertise.clone();
    cfg.leader_eligible = args.registry_leader_eligible;
    let running = medulla_registry::service::start(cfg).await?;
    // A stable line for scripts and tests that start the registry on port 0.
    println!("medulla: schema registry on http://{}", running.local_addr);
    tracing::info!(addr = %running.local_addr, "schema registry started");
    Ok(running)
}

async fn wait_for_signal(
    term: &mut tokio::signal::unix::Signal,
    interrupt: &mut tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
}

/// Runs the broker (and the schema registry) until a signal. With `--kafka-bootstrap`
/// only the platform services run, against that cluster.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let registry_addr = registry_listen(&args)?;
    // Handlers go in before anything announces readiness: a SIGTERM that arrives right
    // after the ready line must still mean a clean shutdown.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    if let Some(bootstrap) = args.kafka_bootstrap.clone() {
        let Some(listen) = registry_addr else {
            bail!("--kafka-bootstrap runs the platform services only, and every one is off");
        };
        let registry = start_registry(&args, listen, bootstrap).await?;
        wait_for_signal(&mut term, &mut interrupt).await;
        tracing::info!("shutting down");
        registry.shutdown().await?;
        tracing::info!("stopped cleanly");
        return Ok(());
    }

    let props = properties(&args)?;
    let (mut config, warnings) = BrokerConfig::from_properties(&props)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let check = std::sync::Arc::new(RegistryCheck::default());
    if registry_addr.is_some() {
        config.schema_check = Some(check.clone());
    }
    let data_dir = config.data_dir.clone();
    let running = medulla_broker::start(config).await?;
    // Stable lines for scripts and tests that start Medulla on port 0, one per listener
    // (the first token after "on " is the address, as before there were several).
    for l in &running.listeners {
        println!(
            "medulla: kafka listener on {} (data dir {}) name={} protocol={}",
            l.addr,
            data_dir.display(),
            l.name,
            l.protocol.name()
        );
        tracing::info!(addr = %l.addr, listener = %l.name, protocol = l.protocol.name(), data_dir = %data_dir.display(), "medulla started");
    }
    // The embedded registry is a client without security settings: it uses the first
    // PLAINTEXT listener (or, failing one, the first listener).
    let registry_bootstrap = running
        .listeners
        .iter()
        .find(|l| l.protocol == medulla_broker::session::SecurityProtocol::Plaintext)
        .map_or(running.local_addr, |l| l.addr)
        .to_string();

    let registry = match registry_addr {
        Some(listen) => match start_registry(&args, listen, registry_bootstrap).await {
            Ok(r) => {
                let _ = check.0.set(r.registry.clone());
                Some(r)
            }
            Err(e) => {
                running.shutdown().await?;
                return Err(e);
            }
        },
        None => None,
    };

    wait_for_signal(&mut term, &mut interrupt).await;
    tracing::info!("shutting down: finishing in-flight requests, flushing");
    if let Some(r) = registry {
        r.shutdown().await?;
    }
    running.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
