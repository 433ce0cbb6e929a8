//! `medulla`: the command line. `medulla serve` runs the broker; `medulla topic …` and
//! `medulla group …` administer topics and consumer groups on a running broker.

mod group;
mod schema;
mod serve;
mod topic;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Medulla: a Kafka-compatible event broker and healthcare event platform.
#[derive(Parser)]
#[command(name = "medulla", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Create, list, describe, alter and delete topics on a running broker.
    Topic {
        #[command(flatten)]
        broker: Remote,
        #[command(subcommand)]
        command: topic::TopicCommand,
    },
    /// List, describe and delete consumer groups; reset their committed offsets.
    Group {
        #[command(flatten)]
        broker: Remote,
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Register, get, list and check schemas on a running schema registry.
    Schema {
        /// The schema registry's URL.
        #[arg(
            long,
            env = "MEDULLA_REGISTRY",
            default_value = "http://127.0.0.1:8081",
            global = true
        )]
        registry: String,
        #[command(subcommand)]
        command: schema::SchemaCommand,
    },
}

/// The broker an admin command talks to.
#[derive(clap::Args)]
struct Remote {
    /// The broker to talk to.
    #[arg(
        long,
        env = "MEDULLA_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap: String,
}

/// `medulla serve` flags. Precedence: the config file, then the shorthand flags, then
/// each `--override` in order (so an explicit key always wins).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// A Kafka `server.properties`-style config file.
    #[arg(long, env = "MEDULLA_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (shorthand for `log.dirs`). Default `./medulla-data`.
    #[arg(long, env = "MEDULLA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The Kafka listener address HOST:PORT (shorthand for `listeners=PLAINTEXT://ADDR`).
    /// Default `127.0.0.1:9092`.
    #[arg(long, env = "MEDULLA_KAFKA_LISTEN")]
    pub kafka_listen: Option<String>,
    /// The address given to clients HOST:PORT (shorthand for `advertised.listeners`).
    #[arg(long, env = "MEDULLA_ADVERTISE")]
    pub advertise: Option<String>,
    /// Set a config key, e.g. `--override num.partitions=4`. Repeatable. From the
    /// environment, `MEDULLA_OVERRIDE` takes several, one per line (a value such as a
    /// JAAS config may itself hold `;`).
    #[arg(
        long = "override",
        value_name = "KEY=VALUE",
        env = "MEDULLA_OVERRIDE",
        value_delimiter = '\n'
    )]
    pub overrides: Vec<String>,
    /// The schema registry's HTTP address HOST:PORT, or `off`. Default `127.0.0.1:8081`.
    #[arg(
        long,
        env = "MEDULLA_REGISTRY_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub registry_listen: String,
    /// HOST:PORT other registry instances forward writes to (default: the listen address).
    #[arg(long, env = "MEDULLA_REGISTRY_ADVERTISE")]
    pub registry_advertise: Option<String>,
    /// Whether this registry instance may be elected the writer (Confluent's
    /// `leader.eligibility`).
    #[arg(long, env = "MEDULLA_REGISTRY_LEADER_ELIGIBLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub registry_leader_eligible: bool,
    /// Run the platform services (the schema registry) against this Kafka cluster
    /// instead of an embedded broker: no broker is started.
    #[arg(long, env = "MEDULLA_KAFKA_BOOTSTRAP")]
    pub kafka_bootstrap: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("medulla: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Topic { broker, command } => topic::run(&broker.bootstrap, command).await,
            Command::Group { broker, command } => group::run(&broker.bootstrap, command).await,
            Command::Schema { registry, command } => schema::run(&registry, command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medulla: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
