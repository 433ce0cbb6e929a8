//! `medulla user add|remove|list`: SCRAM credentials through AlterUserScramCredentials
//! and DescribeUserScramCredentials (KIP-554), as `kafka-configs.sh --entity-type users`
//! manages them. The CLI salts and hashes; the password never reaches the broker.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use medulla::admin::{Client, check};
use medulla_client::ClientConfig;
use medulla_client::sasl::{Mechanism, ScramHash};

/// Kafka's default iteration count for a new SCRAM credential.
const DEFAULT_ITERATIONS: u32 = 4096;
/// The environment variable that may hold the password (no prompt, no argv).
const PASSWORD_ENV: &str = "MEDULLA_USER_PASSWORD";

/// User subcommands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a SCRAM credential for a user (or replace it).
    Add {
        /// The user name (the principal is `User:NAME`).
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: u32,
        /// The password (visible to other local users in the process list; prefer
        /// --password-file or MEDULLA_USER_PASSWORD).
        #[arg(long, conflicts_with = "password_file")]
        password: Option<String>,
        /// A file whose first line is the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Remove a user's SCRAM credential for one mechanism, or for every mechanism.
    Remove {
        /// The user name.
        name: String,
        /// Only this mechanism.
        #[arg(long)]
        mechanism: Option<String>,
    },
    /// List users with SCRAM credentials, or the given ones.
    List {
        /// Only these users.
        names: Vec<String>,
    },
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn scram(mechanism: &str) -> anyhow::Result<ScramHash> {
    Mechanism::from_name(mechanism)
        .and_then(Mechanism::scram)
        .ok_or_else(|| {
            anyhow::anyhow!("--mechanism {mechanism:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512")
        })
}

/// The password from --password, --password-file or `MEDULLA_USER_PASSWORD`, in that
/// order.
fn password(flag: Option<String>, file: Option<PathBuf>) -> anyhow::Result<String> {
    let password = match (flag, file) {
        (Some(p), _) => p,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--password-file {}", path.display()))?;
            text.lines().next().unwrap_or("").to_owned()
        }
        (None, None) => std::env::var(PASSWORD_ENV).map_err(|_| {
            anyhow::anyhow!("give the password: --password, --password-file or {PASSWORD_ENV}")
        })?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Runs one user subcommand.
pub async fn run(cfg: &ClientConfig, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            mechanism,
            iterations,
            password: flag,
            password_file,
        } => {
            let hash = scram(&mechanism)?;
            let secret = password(flag, password_file)?;
            let credential = hash.new_credential(&secret, iterations)?;
            let iterations = i32::try_from(credential.iterations)?;
            let mut client = Client::connect_with(cfg).await?;
            let response = client
                .send(
                    AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                        ScramCredentialUpsertion::default()
                            .with_name(s(&name))
                            .with_mechanism(hash.kafka_code())
                            .with_iterations(iterations)
                            .with_salt(credential.salt.into())
                            .with_salted_password(credential.salted_password.into()),
                    ]),
                )
                .await?;
            for r in &response.results {
                check(
                    r.error_code,
                    r.error_message.as_ref(),
                    &format!("add user {name}"),
                )?;
            }
            println!("Completed updating config for user {name}.");
        }
        UserCommand::Remove { name, mechanism } => {
            let mut client = Client::connect_with(cfg).await?;
            let mechanisms: Vec<ScramHash> = match mechanism {
                Some(m) => vec![scram(&m)?],
                None => credentials(&mut client, Some(vec![name.clone()]))
                    .await?
                    .into_iter()
                    .flat_map(|(_, c)| c.into_iter().map(|(h, _)| h))
                    .collect(),
            };
            let response = client
                .send(
                    AlterUserScramCredentialsRequest::default().with_deletions(
                        mechanisms
                            .iter()
                            .map(|h| {
                                ScramCredentialDeletion::default()
                                    .with_name(s(&name))
                                    .with_mechanism(h.kafka_code())
                            })
                            .collect(),
                    ),
                )
                .await?;
            for r in &response.results {
                check(
                    r.error_code,
                    r.error_message.as_ref(),
                    &format!("remove user {name}"),
                )?;
            }
            println!("Completed updating config for user {name}.");
        }
        UserCommand::List { names } => {
            let mut client = Client::connect_with(cfg).await?;
            let users = if names.is_empty() { None } else { Some(names) };
            for (user, creds) in credentials(&mut client, users).await? {
                let list: Vec<String> = creds
                    .iter()
                    .map(|(h, i)| format!("{}=iterations={i}", h.mechanism_name()))
                    .collect();
                println!(
                    "SCRAM credential configs for user-principal '{user}' are {}",
                    list.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Each user's SCRAM mechanisms and iteration counts (all users when `users` is None).
async fn credentials(
    client: &mut Client,
    users: Option<Vec<String>>,
) -> anyhow::Result<Vec<(String, Vec<(ScramHash, i32)>)>> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(s(n)))
            .collect()
    }));
    let response = client.send(request).await?;
    check(
        response.error_code,
        response.error_message.as_ref(),
        "describe users",
    )?;
    let mut out = Vec::new();
    for r in &response.results {
        check(
            r.error_code,
            r.error_message.as_ref(),
            &format!("describe user {}", r.user.as_str()),
        )?;
        let creds = r
            .credential_infos
            .iter()
            .filter_map(|c| ScramHash::from_kafka_code(c.mechanism).map(|h| (h, c.iterations)))
            .collect();
        out.push((r.user.to_string(), creds));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_scram_only() {
        assert_eq!(scram("scram-sha-256").unwrap(), ScramHash::Sha256);
        assert_eq!(scram("SCRAM-SHA-512").unwrap(), ScramHash::Sha512);
        assert!(
            scram("PLAIN")
                .unwrap_err()
                .to_string()
                .contains("expected SCRAM")
        );
    }

    #[test]
    fn the_password_comes_from_the_flag_or_the_first_line_of_a_file() {
        assert_eq!(password(Some("p".into()), None).unwrap(), "p");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\nignored\n").unwrap();
        assert_eq!(password(None, Some(file)).unwrap(), "s3cret");
        assert!(password(Some(String::new()), None).is_err());
        let e = password(None, Some(dir.path().join("missing"))).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
    }
}
