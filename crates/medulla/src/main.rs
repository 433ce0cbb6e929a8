//! `medulla`: the command line. `medulla serve` runs the broker; `medulla topic …`,
//! `medulla group …`, `medulla acl …` and `medulla user …` administer topics, consumer
//! groups, ACLs and SCRAM users on a running broker (or any Kafka cluster).

mod acl;
mod group;
mod registry_security;
mod schema;
mod serve;
mod topic;
mod user;

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
    /// Add, remove and list ACLs (Kafka's kafka-acls.sh).
    Acl {
        #[command(flatten)]
        broker: Remote,
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Add, remove and list SCRAM users (kafka-configs.sh --entity-type users).
    User {
        #[command(flatten)]
        broker: Remote,
        #[command(subcommand)]
        command: user::UserCommand,
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

/// The broker an admin command talks to, and how.
#[derive(clap::Args)]
struct Remote {
    /// The broker to talk to (HOST:PORT[,HOST:PORT…]).
    #[arg(
        long,
        env = "MEDULLA_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap: String,
    /// A Kafka client properties file with the security settings, as Kafka's tools take
    /// it: `security.protocol`, `sasl.mechanism`, `sasl.jaas.config`, PEM
    /// `ssl.truststore.*` / `ssl.keystore.*`, or librdkafka's names (`sasl.username`,
    /// `ssl.ca.location`, `sasl.oauthbearer.token`…).
    #[arg(
        long,
        env = "MEDULLA_COMMAND_CONFIG",
        value_name = "FILE",
        global = true
    )]
    command_config: Option<PathBuf>,
}

impl Remote {
    /// The client configuration: bootstrap plus the command config's properties.
    fn client_config(&self) -> anyhow::Result<medulla_client::ClientConfig> {
        let cfg = medulla_client::ClientConfig::new(self.bootstrap.clone());
        Ok(match &self.command_config {
            Some(path) => cfg.with_properties_file(path)?,
            None => cfg,
        })
    }
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
            Command::Topic { broker, command } => {
                topic::run(&broker.client_config()?, command).await
            }
            Command::Group { broker, command } => {
                group::run(&broker.client_config()?, command).await
            }
            Command::Acl { broker, command } => acl::run(&broker.client_config()?, command).await,
            Command::User { broker, command } => user::run(&broker.client_config()?, command).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("medulla").chain(args.iter().copied()))
    }

    #[test]
    fn command_config_is_global_on_every_remote_command() {
        for args in [
            &["topic", "list", "--command-config", "c.properties"][..],
            &["group", "--command-config", "c.properties", "list"][..],
            &["acl", "--command-config", "c.properties", "list"][..],
            &["user", "list", "--command-config", "c.properties"][..],
        ] {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let remote = match cli.command {
                Command::Topic { broker, .. }
                | Command::Group { broker, .. }
                | Command::Acl { broker, .. }
                | Command::User { broker, .. } => broker,
                _ => panic!("{args:?}"),
            };
            assert_eq!(remote.command_config, Some(PathBuf::from("c.properties")));
        }
    }

    #[test]
    fn acl_flags_are_kafka_acls_flags() {
        let cli = parse(&[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--allow-host",
            "10.0.0.1",
            "--deny-principal",
            "User:eve",
            "--operation",
            "Read",
            "--operation",
            "Write",
            "--topic",
            "clinical.",
            "--group",
            "g",
            "--cluster",
            "--transactional-id",
            "tx",
            "--resource-pattern-type",
            "prefixed",
            "--bootstrap",
            "b:9093",
        ])
        .unwrap();
        let Command::Acl { broker, command } = cli.command else {
            panic!()
        };
        assert_eq!(broker.bootstrap, "b:9093");
        assert!(matches!(command, acl::AclCommand::Add(_)));
        assert!(parse(&["acl", "list", "--principal", "User:alice", "--topic", "t"]).is_ok());
        assert!(
            parse(&[
                "acl",
                "remove",
                "--topic",
                "t",
                "--resource-pattern-type",
                "match"
            ])
            .is_ok()
        );
        assert!(parse(&["acl", "add", "--operations", "Read"]).is_err());
    }

    #[test]
    fn user_flags() {
        let cli = parse(&[
            "user",
            "add",
            "alice",
            "--mechanism",
            "SCRAM-SHA-256",
            "--iterations",
            "8192",
            "--password-file",
            "pw",
        ])
        .unwrap();
        let Command::User {
            command:
                user::UserCommand::Add {
                    name,
                    mechanism,
                    iterations,
                    password,
                    password_file,
                },
            ..
        } = cli.command
        else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), mechanism.as_str(), iterations, password),
            ("alice", "SCRAM-SHA-256", 8192, None)
        );
        assert_eq!(password_file, Some(PathBuf::from("pw")));
        assert!(
            parse(&[
                "user",
                "add",
                "a",
                "--password",
                "p",
                "--password-file",
                "f"
            ])
            .is_err()
        );
        assert!(parse(&["user", "remove", "alice", "--mechanism", "SCRAM-SHA-512"]).is_ok());
        assert!(parse(&["user", "list", "alice", "bob"]).is_ok());
    }
}
