//! `medulla schema …`: register, fetch, list and check schemas on a running registry
//! over its REST API (any Confluent-compatible registry).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A schema given on the command line.
#[derive(clap::Args)]
pub struct SchemaInput {
    /// The schema file (`-` for stdin).
    #[arg(long, short)]
    file: PathBuf,
    /// AVRO, JSON or PROTOBUF (default: from the file name, else AVRO).
    #[arg(long = "type", short = 't')]
    schema_type: Option<String>,
    /// A reference NAME=SUBJECT:VERSION (repeatable).
    #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION")]
    references: Vec<String>,
}

#[derive(Subcommand)]
pub enum SchemaCommand {
    /// Register a schema under a subject; prints its id.
    Register {
        subject: String,
        #[command(flatten)]
        input: SchemaInput,
        /// Store the normalized form.
        #[arg(long)]
        normalize: bool,
    },
    /// Print a subject's version (default the latest), or a schema by `--id`.
    Get {
        subject: Option<String>,
        #[arg(long, default_value = "latest")]
        version: String,
        #[arg(long, conflicts_with = "subject")]
        id: Option<i32>,
    },
    /// List subjects, or a subject's versions.
    List {
        subject: Option<String>,
        /// Only subjects starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Include soft-deleted subjects or versions.
        #[arg(long)]
        deleted: bool,
    },
    /// Check a schema against a subject's versions (per its compatibility level) or
    /// one `--version`; exits 1 when it is incompatible.
    Check {
        subject: String,
        #[command(flatten)]
        input: SchemaInput,
        #[arg(long)]
        version: Option<String>,
    },
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base.trim_end_matches('/'), path);
        let mut req = self
            .http
            .request(method, &url)
            .header("Accept", CONTENT_TYPE);
        if let Some(b) = body {
            req = req
                .header("Content-Type", CONTENT_TYPE)
                .body(serde_json::to_vec(&b)?);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the schema registry at {url}"))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the registry's answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let code = value.get("error_code").cloned().unwrap_or(Value::Null);
            let msg = value
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("{status} (error_code {code}): {msg}");
        }
        Ok(value)
    }
}

/// A path segment, percent-encoded (subjects may hold `/`, `:` and spaces).
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn schema_body(input: &SchemaInput) -> anyhow::Result<Value> {
    let (file, schema_type, references) =
        (&input.file, input.schema_type.as_deref(), &input.references);
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the schema from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let ty = match schema_type {
        Some(t) => t.to_ascii_uppercase(),
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("proto") => "PROTOBUF".into(),
            Some("json")
                if !text.contains("\"type\": \"record\"")
                    && !text.contains("\"type\":\"record\"") =>
            {
                "JSON".into()
            }
            _ => "AVRO".into(),
        },
    };
    let mut refs = Vec::new();
    for r in references {
        let Some((name, rest)) = r.split_once('=') else {
            bail!("--reference {r:?} is not NAME=SUBJECT:VERSION")
        };
        let Some((subject, version)) = rest.rsplit_once(':') else {
            bail!("--reference {r:?} is not NAME=SUBJECT:VERSION")
        };
        let version: i32 = version
            .parse()
            .with_context(|| format!("--reference {r:?}: bad version"))?;
        refs.push(json!({"name": name, "subject": subject, "version": version}));
    }
    let mut body = json!({"schema": text, "schemaType": ty});
    if !refs.is_empty() {
        body["references"] = Value::Array(refs);
    }
    Ok(body)
}

pub async fn run(registry: &str, command: SchemaCommand) -> anyhow::Result<()> {
    let c = Client {
        base: registry.to_owned(),
        http: reqwest::Client::new(),
    };
    use reqwest::Method;
    match command {
        SchemaCommand::Register {
            subject,
            input,
            normalize,
        } => {
            let body = schema_body(&input)?;
            let q = if normalize { "?normalize=true" } else { "" };
            let v = c
                .call(
                    Method::POST,
                    &format!("/subjects/{}/versions{q}", seg(&subject)),
                    Some(body),
                )
                .await?;
            println!("{}", v.get("id").cloned().unwrap_or(Value::Null));
        }
        SchemaCommand::Get {
            subject,
            version,
            id,
        } => {
            let v = match (id, subject) {
                (Some(id), _) => {
                    c.call(Method::GET, &format!("/schemas/ids/{id}"), None)
                        .await?
                }
                (None, Some(s)) => {
                    c.call(
                        Method::GET,
                        &format!("/subjects/{}/versions/{}", seg(&s), seg(&version)),
                        None,
                    )
                    .await?
                }
                (None, None) => bail!("give a subject or --id"),
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        SchemaCommand::List {
            subject,
            prefix,
            deleted,
        } => {
            let v = match subject {
                Some(s) => {
                    c.call(
                        Method::GET,
                        &format!("/subjects/{}/versions?deleted={deleted}", seg(&s)),
                        None,
                    )
                    .await?
                }
                None => {
                    c.call(
                        Method::GET,
                        &format!("/subjects?deleted={deleted}&subjectPrefix={}", seg(&prefix)),
                        None,
                    )
                    .await?
                }
            };
            for item in v.as_array().into_iter().flatten() {
                match item {
                    Value::String(s) => println!("{s}"),
                    other => println!("{other}"),
                }
            }
        }
        SchemaCommand::Check {
            subject,
            input,
            version,
        } => {
            let body = schema_body(&input)?;
            let path = match version {
                Some(v) => format!(
                    "/compatibility/subjects/{}/versions/{}?verbose=true",
                    seg(&subject),
                    seg(&v)
                ),
                None => format!(
                    "/compatibility/subjects/{}/versions?verbose=true",
                    seg(&subject)
                ),
            };
            let v = c.call(Method::POST, &path, Some(body)).await?;
            if v.get("is_compatible").and_then(Value::as_bool) == Some(true) {
                println!("compatible");
            } else {
                println!("incompatible");
                for m in v
                    .get("messages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    println!(
                        "  {}",
                        m.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| m.to_string())
                    );
                }
                bail!("the schema is not compatible with {subject}");
            }
        }
    }
    Ok(())
}
