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

/// Where the registry listens and whether over HTTPS.
#[derive(Debug, Clone, Copy)]
struct RegistryListen {
    addr: std::net::SocketAddr,
    https: bool,
}

/// `--registry-listen`: `[http://|https://]HOST:PORT`, or `off`.
fn registry_listen(args: &ServeArgs) -> anyhow::Result<Option<RegistryListen>> {
    let v = args.registry_listen.trim();
    if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (https, hostport) = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
        Some((scheme, _)) => {
            bail!("--registry-listen {v:?}: the scheme must be http or https, not {scheme}")
        }
        None => (false, v),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport.trim_end_matches('/'))
        .with_context(|| format!("--registry-listen {v:?} is not [https://]HOST:PORT or off"))?
        .next()
        .with_context(|| format!("--registry-listen {v:?} resolves to no address"))?;
    Ok(Some(RegistryListen { addr, https }))
}

/// The name of the loopback listener the embedded platform services use when the
/// broker is secured (see [`add_internal_listener`]).
const INTERNAL_LISTENER: &str = "MEDULLA_INTERNAL";
/// The user the embedded platform services authenticate as on it.
const INTERNAL_USER: &str = "_medulla";

/// Whether the broker's listeners or authorizer make it a secured broker.
fn secured(config: &BrokerConfig) -> bool {
    config.authorizer.is_some()
        || config
            .listeners
            .iter()
            .any(|l| l.protocol != medulla_broker::session::SecurityProtocol::Plaintext)
}

/// Adds the loopback listener the embedded platform services (the registry) use on a
/// secured broker: `MEDULLA_INTERNAL://127.0.0.1:0`, SASL_PLAINTEXT with PLAIN, whose
/// one static user `_medulla` has a random password that lives only in this process's
/// memory, and is a super user (the registry writes `_schemas` and joins its group).
/// Other users may authenticate there too, with their own credentials and ACLs; no
/// SCRAM user may be named `_medulla…`. Returns the client properties to use it.
fn add_internal_listener(props: &mut BTreeMap<String, String>) -> Vec<(String, String)> {
    let password =
        medulla_auth::credentials::base64_encode(&medulla_auth::credentials::random_bytes(24));
    let lower = INTERNAL_LISTENER.to_ascii_lowercase();
    let listeners = props.get("listeners").cloned().unwrap_or_default();
    let listeners = if listeners.trim().is_empty() {
        // No listener given: Kafka's default, as the broker would take.
        "PLAINTEXT://127.0.0.1:9092".to_owned()
    } else {
        listeners
    };
    props.insert(
        "listeners".to_owned(),
        format!("{listeners},{INTERNAL_LISTENER}://127.0.0.1:0"),
    );
    let map = props
        .get("listener.security.protocol.map")
        .cloned()
        .unwrap_or_else(|| medulla_broker::listeners::DEFAULT_PROTOCOL_MAP.to_owned());
    props.insert(
        "listener.security.protocol.map".to_owned(),
        format!("{map},{INTERNAL_LISTENER}:SASL_PLAINTEXT"),
    );
    props.insert(
        format!("listener.name.{lower}.sasl.enabled.mechanisms"),
        "PLAIN".to_owned(),
    );
    props.insert(
        format!("listener.name.{lower}.plain.sasl.jaas.config"),
        format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_{INTERNAL_USER}=\"{password}\";"
        ),
    );
    let supers = props.get("super.users").cloned().unwrap_or_default();
    let supers = if supers.trim().is_empty() {
        format!("User:{INTERNAL_USER}")
    } else {
        format!("{supers};User:{INTERNAL_USER}")
    };
    props.insert("super.users".to_owned(), supers);
    vec![
        ("security.protocol".to_owned(), "sasl_plaintext".to_owned()),
        ("sasl.mechanism".to_owned(), "PLAIN".to_owned()),
        ("sasl.username".to_owned(), INTERNAL_USER.to_owned()),
        ("sasl.password".to_owned(), password),
    ]
}

/// Takes the registry's own keys (`registry.authentication.methods`,
/// `registry.ssl.*`) out of the broker's; any other `registry.*` key is an error.
fn registry_keys(props: &mut BTreeMap<String, String>) -> anyhow::Result<BTreeMap<String, String>> {
    let keys: Vec<String> = props
        .keys()
        .filter(|k| k.starts_with("registry."))
        .cloned()
        .collect();
    for k in &keys {
        if k != "registry.authentication.methods" && !k.starts_with("registry.ssl.") {
            bail!(
                "unknown config key {k} (the registry's keys are registry.authentication.methods and registry.ssl.*)"
            );
        }
    }
    Ok(keys
        .into_iter()
        .filter_map(|k| props.remove(&k).map(|v| (k, v)))
        .collect())
}

/// The registry's security on a broker of this process: `registry.authentication.methods`
/// (default: BASIC, plus BEARER when the broker validates JWTs, on a secured broker;
/// NONE otherwise), and with `https://` the certificates from `registry.ssl.*`, else the
/// broker's `ssl.*`.
fn registry_security(
    listen: RegistryListen,
    keys: &BTreeMap<String, String>,
    props: &BTreeMap<String, String>,
    config: &BrokerConfig,
    broker: &medulla_broker::Broker,
) -> anyhow::Result<(
    Option<medulla_registry::security::Security>,
    Option<std::sync::Arc<medulla_auth::tls::TlsSettings>>,
)> {
    use crate::registry_security::{BrokerSecurity, Methods};
    let jwt = config.sasl.values().find_map(|s| s.jwt.clone());
    let methods = match keys.get("registry.authentication.methods") {
        Some(v) => Methods::parse(v)
            .map_err(|e| anyhow::anyhow!("registry.authentication.methods={v}: {e}"))?,
        None if secured(config) => Some(Methods {
            basic: true,
            bearer: jwt.is_some(),
        }),
        None => None,
    };
    let security = match methods {
        Some(methods) => {
            let validator = match (&jwt, methods.bearer) {
                (Some(c), true) => Some(std::sync::Arc::new(
                    medulla_auth::jwt::JwtValidator::new(c.clone())
                        .map_err(|e| anyhow::anyhow!("registry bearer tokens: {e}"))?,
                )),
                (None, true) => bail!(
                    "registry.authentication.methods has BEARER but sasl.oauthbearer.jwks.endpoint.url is not set"
                ),
                _ => None,
            };
            Some(medulla_registry::security::Security(std::sync::Arc::new(
                BrokerSecurity::new(broker.clone(), methods, validator),
            )))
        }
        None => None,
    };
    let tls = if listen.https {
        let get = |k: &str| {
            keys.get(&format!("registry.{k}"))
                .or_else(|| props.get(k))
                .cloned()
        };
        let name = |k: &str| format!("registry.{k}");
        let cfg = medulla_auth::tls::TlsConfig::from_keys(&get, &name)?;
        Some(std::sync::Arc::new(medulla_auth::tls::TlsSettings::new(
            cfg,
        )?))
    } else {
        None
    };
    Ok((security, tls))
}

/// Starts the schema registry against `bootstrap` and prints its ready line.
async fn start_registry(
    args: &ServeArgs,
    listen: RegistryListen,
    kafka: medulla_client::ClientConfig,
    security: Option<medulla_registry::security::Security>,
    tls: Option<std::sync::Arc<medulla_auth::tls::TlsSettings>>,
) -> anyhow::Result<medulla_registry::service::RunningRegistry> {
    let mut cfg = medulla_registry::service::RegistryConfig::new(listen.addr, kafka);
    cfg.advertised = args.registry_advertise.clone();
    cfg.leader_eligible = args.registry_leader_eligible;
    cfg.security = security;
    cfg.tls = tls;
    let running = medulla_registry::service::start(cfg).await?;
    // A stable line for scripts and tests that start the registry on port 0.
    let scheme = if listen.https { "https" } else { "http" };
    println!(
        "medulla: schema registry on {scheme}://{}",
        running.local_addr
    );
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
        if listen.https {
            bail!(
                "an https:// registry needs the embedded broker's TLS settings; with --kafka-bootstrap it serves plain HTTP only (put a TLS proxy in front)"
            );
        }
        let kafka = medulla_client::ClientConfig {
            bootstrap,
            properties: Vec::new(),
        };
        let registry = start_registry(&args, listen, kafka, None, None).await?;
        wait_for_signal(&mut term, &mut interrupt).await;
        tracing::info!("shutting down");
        registry.shutdown().await?;
        tracing::info!("stopped cleanly");
        return Ok(());
    }

    let mut props = properties(&args)?;
    let registry_keys = registry_keys(&mut props)?;
    let (first, _) = BrokerConfig::from_properties(&props)?;
    // A secured broker gets a loopback listener for the embedded registry.
    let internal_client =
        (registry_addr.is_some() && secured(&first)).then(|| add_internal_listener(&mut props));
    let (mut config, warnings) = BrokerConfig::from_properties(&props)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let check = std::sync::Arc::new(RegistryCheck::default());
    if registry_addr.is_some() {
        config.schema_check = Some(check.clone());
    }
    let data_dir = config.data_dir.clone();
    let broker_config = config.clone();
    let running = medulla_broker::start(config).await?;
    // Stable lines for scripts and tests that start Medulla on port 0, one per listener
    // (the first token after "on " is the address, as before there were several).
    for l in running
        .listeners
        .iter()
        .filter(|l| l.name != INTERNAL_LISTENER)
    {
        println!(
            "medulla: kafka listener on {} (data dir {}) name={} protocol={}",
            l.addr,
            data_dir.display(),
            l.name,
            l.protocol.name()
        );
        tracing::info!(addr = %l.addr, listener = %l.name, protocol = l.protocol.name(), data_dir = %data_dir.display(), "medulla started");
    }
    // The embedded registry is a client of the internal listener on a secured broker,
    // else of the first listener (PLAINTEXT).
    let kafka = match &internal_client {
        Some(properties) => medulla_client::ClientConfig {
            bootstrap: running
                .listeners
                .iter()
                .find(|l| l.name == INTERNAL_LISTENER)
                .map_or(running.local_addr, |l| l.addr)
                .to_string(),
            properties: properties.clone(),
        },
        None => medulla_client::ClientConfig {
            bootstrap: running.local_addr.to_string(),
            properties: Vec::new(),
        },
    };

    let registry = match registry_addr {
        Some(listen) => match async {
            let (security, tls) = registry_security(
                listen,
                &registry_keys,
                &props,
                &broker_config,
                running.broker(),
            )?;
            start_registry(&args, listen, kafka, security, tls).await
        }
        .await
        {
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
