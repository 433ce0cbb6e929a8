//! `medulla acl add|remove|list`, as Kafka's `kafka-acls.sh --add|--remove|--list` with
//! its flags and output: CreateAcls, DeleteAcls and DescribeAcls at the highest version
//! both sides serve.

use anyhow::{bail, ensure};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use medulla::admin::{Client, check};
use medulla_client::ClientConfig;

/// ACL subcommands.
#[derive(Subcommand)]
pub enum AclCommand {
    /// Add ACLs: each principal × host × operation on each resource.
    Add(AclArgs),
    /// Remove ACLs: with principals, those exact ACLs; without, every ACL of the
    /// resources (pattern type `match` also removes the prefixed and wildcard ACLs that
    /// apply to them).
    Remove(AclArgs),
    /// List ACLs, of the given resources or all.
    List(AclArgs),
}

/// The flags of kafka-acls.sh.
#[derive(Args, Debug, Default)]
pub struct AclArgs {
    /// A principal to allow, `User:NAME` (repeatable).
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principals: Vec<String>,
    /// A principal to deny, `User:NAME` (repeatable).
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principals: Vec<String>,
    /// A host the allow principals may connect from (repeatable; default `*`).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A host the deny principals are denied from (repeatable; default `*`).
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// An operation (repeatable; default All): Read, Write, Create, Delete, Alter,
    /// Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All.
    #[arg(long = "operation", value_name = "OPERATION")]
    operations: Vec<String>,
    /// A topic (repeatable; `*` for all topics).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// A consumer group (repeatable; `*` for all groups).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (repeatable; `*` for all).
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// literal (default), prefixed; for list and remove also match and any.
    #[arg(long = "resource-pattern-type", default_value = "literal")]
    resource_pattern_type: String,
    /// list: only the ACLs of this principal.
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    principal: Option<String>,
}

// Kafka's codes (org.apache.kafka.common.resource / acl).
const RESOURCE_ANY: i8 = 1;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_GROUP: i8 = 3;
const RESOURCE_CLUSTER: i8 = 4;
const RESOURCE_TRANSACTIONAL_ID: i8 = 5;
const PATTERN_ANY: i8 = 1;
const PATTERN_MATCH: i8 = 2;
const PATTERN_LITERAL: i8 = 3;
const PATTERN_PREFIXED: i8 = 4;
const OPERATION_ANY: i8 = 1;
const OPERATION_ALL: i8 = 2;
const PERMISSION_ANY: i8 = 1;
const PERMISSION_DENY: i8 = 2;
const PERMISSION_ALLOW: i8 = 3;
/// The one name a cluster resource has.
const CLUSTER_NAME: &str = "kafka-cluster";

/// Operations by Kafka code, in `AclOperation`'s order (0 UNKNOWN, 1 ANY).
const OPERATIONS: &[(i8, &str)] = &[
    (2, "ALL"),
    (3, "READ"),
    (4, "WRITE"),
    (5, "CREATE"),
    (6, "DELETE"),
    (7, "ALTER"),
    (8, "DESCRIBE"),
    (9, "CLUSTER_ACTION"),
    (10, "DESCRIBE_CONFIGS"),
    (11, "ALTER_CONFIGS"),
    (12, "IDEMPOTENT_WRITE"),
    (13, "CREATE_TOKENS"),
    (14, "DESCRIBE_TOKENS"),
    (15, "TWO_PHASE_COMMIT"),
];

/// What each resource type accepts (Kafka's `AclCommand.ResourceTypeToValidOperations`).
fn valid_operations(resource_type: i8) -> &'static [&'static str] {
    match resource_type {
        RESOURCE_TOPIC => &[
            "READ",
            "WRITE",
            "CREATE",
            "DESCRIBE",
            "DELETE",
            "ALTER",
            "DESCRIBE_CONFIGS",
            "ALTER_CONFIGS",
            "ALL",
        ],
        RESOURCE_GROUP => &["READ", "DESCRIBE", "DELETE", "ALL"],
        RESOURCE_CLUSTER => &[
            "CREATE",
            "CLUSTER_ACTION",
            "DESCRIBE_CONFIGS",
            "ALTER_CONFIGS",
            "IDEMPOTENT_WRITE",
            "ALTER",
            "DESCRIBE",
            "ALL",
        ],
        RESOURCE_TRANSACTIONAL_ID => &["DESCRIBE", "WRITE", "TWO_PHASE_COMMIT", "ALL"],
        _ => &[],
    }
}

fn resource_type_name(code: i8) -> String {
    match code {
        RESOURCE_ANY => "ANY".into(),
        RESOURCE_TOPIC => "TOPIC".into(),
        RESOURCE_GROUP => "GROUP".into(),
        RESOURCE_CLUSTER => "CLUSTER".into(),
        RESOURCE_TRANSACTIONAL_ID => "TRANSACTIONAL_ID".into(),
        6 => "DELEGATION_TOKEN".into(),
        7 => "USER".into(),
        other => format!("UNKNOWN({other})"),
    }
}

fn pattern_type_name(code: i8) -> String {
    match code {
        PATTERN_ANY => "ANY".into(),
        PATTERN_MATCH => "MATCH".into(),
        PATTERN_LITERAL => "LITERAL".into(),
        PATTERN_PREFIXED => "PREFIXED".into(),
        other => format!("UNKNOWN({other})"),
    }
}

fn operation_name(code: i8) -> String {
    OPERATIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("UNKNOWN({code})"), |(_, n)| (*n).to_owned())
}

fn permission_name(code: i8) -> String {
    match code {
        PERMISSION_ALLOW => "ALLOW".into(),
        PERMISSION_DENY => "DENY".into(),
        PERMISSION_ANY => "ANY".into(),
        other => format!("UNKNOWN({other})"),
    }
}

/// `Read`, `read`, `IdempotentWrite`, `idempotent-write`, `IDEMPOTENT_WRITE` → the code.
fn parse_operation(text: &str) -> anyhow::Result<(i8, &'static str)> {
    let folded: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    OPERATIONS
        .iter()
        .find(|(_, name)| name.replace('_', "") == folded)
        .map(|(c, n)| (*c, *n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--operation {text:?}: expected one of Read, Write, Create, Delete, Alter, \
                 Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All"
            )
        })
}

fn parse_pattern_type(text: &str) -> anyhow::Result<i8> {
    match text.to_ascii_lowercase().as_str() {
        "literal" => Ok(PATTERN_LITERAL),
        "prefixed" => Ok(PATTERN_PREFIXED),
        "match" => Ok(PATTERN_MATCH),
        "any" => Ok(PATTERN_ANY),
        _ => bail!("--resource-pattern-type {text:?}: expected literal, prefixed, match or any"),
    }
}

/// Kafka's principals are `Type:name` (`SecurityUtils.parseKafkaPrincipal`).
fn check_principal(principal: &str) -> anyhow::Result<()> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => bail!("principal {principal:?} is not of the form Type:name (e.g. User:alice)"),
    }
}

/// A resource pattern: (type, name, pattern type).
type Resource = (i8, String, i8);

impl AclArgs {
    /// The resources named on the command line, with the pattern type.
    fn resources(&self) -> anyhow::Result<Vec<Resource>> {
        let pattern = parse_pattern_type(&self.resource_pattern_type)?;
        let mut out: Vec<Resource> = Vec::new();
        for t in &self.topics {
            out.push((RESOURCE_TOPIC, t.clone(), pattern));
        }
        for g in &self.groups {
            out.push((RESOURCE_GROUP, g.clone(), pattern));
        }
        if self.cluster {
            out.push((RESOURCE_CLUSTER, CLUSTER_NAME.to_owned(), pattern));
        }
        for id in &self.transactional_ids {
            out.push((RESOURCE_TRANSACTIONAL_ID, id.clone(), pattern));
        }
        Ok(out)
    }

    /// (permission, principals, hosts) for allow then deny.
    fn principals(&self) -> anyhow::Result<Vec<(i8, String, String)>> {
        let mut out = Vec::new();
        for (permission, principals, hosts) in [
            (PERMISSION_ALLOW, &self.allow_principals, &self.allow_hosts),
            (PERMISSION_DENY, &self.deny_principals, &self.deny_hosts),
        ] {
            if principals.is_empty() && !hosts.is_empty() {
                bail!(
                    "--{}-host needs --{}-principal",
                    permission_flag(permission),
                    permission_flag(permission)
                );
            }
            let hosts: Vec<String> = if hosts.is_empty() {
                vec!["*".to_owned()]
            } else {
                hosts.clone()
            };
            for p in principals {
                check_principal(p)?;
                for h in &hosts {
                    out.push((permission, p.clone(), h.clone()));
                }
            }
        }
        Ok(out)
    }

    fn operations(&self) -> anyhow::Result<Vec<(i8, &'static str)>> {
        if self.operations.is_empty() {
            return Ok(vec![(OPERATION_ALL, "ALL")]);
        }
        let mut out = Vec::new();
        for o in &self.operations {
            let op = parse_operation(o)?;
            if !out.contains(&op) {
                out.push(op);
            }
        }
        Ok(out)
    }
}

fn permission_flag(permission: i8) -> &'static str {
    if permission == PERMISSION_ALLOW {
        "allow"
    } else {
        "deny"
    }
}

/// The ACLs `acl add` creates, by resource.
fn creations(args: &AclArgs) -> anyhow::Result<Vec<(Resource, Vec<AclCreation>)>> {
    let resources = args.resources()?;
    ensure!(
        !resources.is_empty(),
        "give a resource: --topic, --group, --cluster or --transactional-id"
    );
    let principals = args.principals()?;
    ensure!(
        !principals.is_empty(),
        "give --allow-principal or --deny-principal"
    );
    let operations = args.operations()?;
    let mut out = Vec::new();
    for resource in resources {
        let (kind, name, pattern) = &resource;
        ensure!(
            *pattern == PATTERN_LITERAL || *pattern == PATTERN_PREFIXED,
            "acl add needs --resource-pattern-type literal or prefixed, not {}",
            pattern_type_name(*pattern).to_lowercase()
        );
        for (_, op) in &operations {
            ensure!(
                valid_operations(*kind).contains(op),
                "ResourceType {} only supports operations {}",
                resource_type_name(*kind),
                valid_operations(*kind).join(",")
            );
        }
        let mut acls = Vec::new();
        for (permission, principal, host) in &principals {
            for (op, _) in &operations {
                acls.push(
                    AclCreation::default()
                        .with_resource_type(*kind)
                        .with_resource_name(s(name))
                        .with_resource_pattern_type(*pattern)
                        .with_principal(s(principal))
                        .with_host(s(host))
                        .with_operation(*op)
                        .with_permission_type(*permission),
                );
            }
        }
        out.push((resource, acls));
    }
    Ok(out)
}

/// The filters `acl remove` sends: the exact ACLs with principals, else everything on
/// each resource.
fn deletion_filters(args: &AclArgs) -> anyhow::Result<Vec<DeleteAclsFilter>> {
    let resources = args.resources()?;
    ensure!(
        !resources.is_empty(),
        "give a resource: --topic, --group, --cluster or --transactional-id"
    );
    let principals = args.principals()?;
    let operations = args.operations()?;
    let mut out = Vec::new();
    for (kind, name, pattern) in &resources {
        // kafka-protocol defaults a nullable string to Some(""): say None (any) outright.
        let base = DeleteAclsFilter::default()
            .with_resource_type_filter(*kind)
            .with_resource_name_filter(Some(s(name)))
            .with_pattern_type_filter(*pattern)
            .with_principal_filter(None)
            .with_host_filter(None);
        if principals.is_empty() {
            out.push(
                base.with_operation(OPERATION_ANY)
                    .with_permission_type(PERMISSION_ANY),
            );
            continue;
        }
        for (permission, principal, host) in &principals {
            for (op, _) in &operations {
                out.push(
                    base.clone()
                        .with_principal_filter(Some(s(principal)))
                        .with_host_filter(Some(s(host)))
                        .with_operation(*op)
                        .with_permission_type(*permission),
                );
            }
        }
    }
    Ok(out)
}

/// The filters `acl list` sends: one per resource, or one for everything.
fn describe_filters(args: &AclArgs) -> anyhow::Result<Vec<DescribeAclsRequest>> {
    if let Some(p) = &args.principal {
        check_principal(p)?;
    }
    // kafka-protocol defaults a nullable string to Some(""): say None (any) outright.
    let base = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_host_filter(None)
        .with_principal_filter(args.principal.as_deref().map(s))
        .with_operation(OPERATION_ANY)
        .with_permission_type(PERMISSION_ANY);
    let resources = args.resources()?;
    if resources.is_empty() {
        return Ok(vec![
            base.with_resource_type_filter(RESOURCE_ANY)
                .with_pattern_type_filter(PATTERN_ANY),
        ]);
    }
    Ok(resources
        .into_iter()
        .map(|(kind, name, pattern)| {
            base.clone()
                .with_resource_type_filter(kind)
                .with_resource_name_filter(Some(s(&name)))
                .with_pattern_type_filter(pattern)
        })
        .collect())
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Kafka's `ResourcePattern.toString`.
fn resource_text(kind: i8, name: &str, pattern: i8) -> String {
    format!(
        "ResourcePattern(resourceType={}, name={name}, patternType={})",
        resource_type_name(kind),
        pattern_type_name(pattern)
    )
}

/// Kafka's `AccessControlEntry.toString`.
fn entry_text(principal: &str, host: &str, operation: i8, permission: i8) -> String {
    format!(
        "(principal={principal}, host={host}, operation={}, permissionType={})",
        operation_name(operation),
        permission_name(permission)
    )
}

/// Runs one ACL subcommand.
pub async fn run(cfg: &ClientConfig, command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Add(args) => {
            let creations = creations(&args)?;
            let mut client = Client::connect_with(cfg).await?;
            for ((kind, name, pattern), acls) in creations {
                println!(
                    "Adding ACLs for resource `{}`: ",
                    resource_text(kind, &name, pattern)
                );
                for a in &acls {
                    println!(
                        " \t{} ",
                        entry_text(&a.principal, &a.host, a.operation, a.permission_type)
                    );
                }
                println!();
                let response = client
                    .send(CreateAclsRequest::default().with_creations(acls))
                    .await?;
                for r in &response.results {
                    check(r.error_code, r.error_message.as_ref(), "add ACLs")?;
                }
            }
            list(&mut client, &args).await
        }
        AclCommand::Remove(args) => {
            let filters = deletion_filters(&args)?;
            let mut client = Client::connect_with(cfg).await?;
            let response = client
                .send(DeleteAclsRequest::default().with_filters(filters))
                .await?;
            let mut removed = 0usize;
            for f in &response.filter_results {
                check(f.error_code, f.error_message.as_ref(), "remove ACLs")?;
                for m in &f.matching_acls {
                    check(m.error_code, m.error_message.as_ref(), "remove ACL")?;
                    println!(
                        "Removed ACL {} from resource `{}`",
                        entry_text(&m.principal, &m.host, m.operation, m.permission_type),
                        resource_text(m.resource_type, &m.resource_name, m.pattern_type)
                    );
                    removed += 1;
                }
            }
            if removed == 0 {
                println!("No matching ACLs to remove.");
            }
            Ok(())
        }
        AclCommand::List(args) => {
            let mut client = Client::connect_with(cfg).await?;
            list(&mut client, &args).await
        }
    }
}

/// Prints the ACLs matching `args`, grouped by resource, as kafka-acls.sh --list does.
async fn list(client: &mut Client, args: &AclArgs) -> anyhow::Result<()> {
    for filter in describe_filters(args)? {
        let response = client.send(filter).await?;
        check(
            response.error_code,
            response.error_message.as_ref(),
            "list ACLs",
        )?;
        for r in &response.resources {
            println!(
                "Current ACLs for resource `{}`: ",
                resource_text(r.resource_type, &r.resource_name, r.pattern_type)
            );
            for a in &r.acls {
                println!(
                    " \t{} ",
                    entry_text(&a.principal, &a.host, a.operation, a.permission_type)
                );
            }
            println!();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut AclArgs)) -> AclArgs {
        let mut a = AclArgs {
            resource_pattern_type: "literal".into(),
            ..AclArgs::default()
        };
        f(&mut a);
        a
    }

    #[test]
    fn operations_parse_in_kafkas_spellings() {
        for (text, code) in [
            ("Read", 3),
            ("read", 3),
            ("IdempotentWrite", 12),
            ("idempotent-write", 12),
            ("DESCRIBE_CONFIGS", 10),
            ("All", 2),
        ] {
            assert_eq!(parse_operation(text).unwrap().0, code, "{text}");
        }
        assert!(parse_operation("Any").is_err());
        assert!(parse_operation("Fly").is_err());
    }

    #[test]
    fn add_is_principals_times_hosts_times_operations() {
        let a = args(|a| {
            a.allow_principals = vec!["User:alice".into(), "User:bob".into()];
            a.allow_hosts = vec!["10.0.0.1".into(), "10.0.0.2".into()];
            a.deny_principals = vec!["User:mallory".into()];
            a.operations = vec!["Read".into(), "Write".into(), "read".into()];
            a.topics = vec!["clinical.lab.results".into()];
        });
        let c = creations(&a).unwrap();
        assert_eq!(c.len(), 1);
        let (resource, acls) = &c[0];
        assert_eq!(
            resource,
            &(
                RESOURCE_TOPIC,
                "clinical.lab.results".into(),
                PATTERN_LITERAL
            )
        );
        // 2 principals × 2 hosts × 2 operations allowed, 1 × * × 2 denied.
        assert_eq!(acls.len(), 10);
        let deny: Vec<_> = acls
            .iter()
            .filter(|a| a.permission_type == PERMISSION_DENY)
            .collect();
        assert_eq!(deny.len(), 2);
        assert!(deny.iter().all(|a| a.host.as_str() == "*"));
    }

    #[test]
    fn add_refuses_what_kafka_refuses() {
        let base = |a: &mut AclArgs| {
            a.allow_principals = vec!["User:alice".into()];
        };
        let e = |a: AclArgs| creations(&a).unwrap_err().to_string();
        assert!(e(args(base)).contains("give a resource"));
        assert!(
            e(args(|a| {
                base(a);
                a.cluster = true;
                a.operations = vec!["Read".into()];
            }))
            .contains("ResourceType CLUSTER only supports operations")
        );
        assert!(
            e(args(|a| {
                base(a);
                a.topics = vec!["t".into()];
                a.resource_pattern_type = "match".into();
            }))
            .contains("literal or prefixed")
        );
        assert!(
            e(args(|a| {
                a.allow_principals = vec!["alice".into()];
                a.topics = vec!["t".into()];
            }))
            .contains("Type:name")
        );
        assert!(e(args(|a| a.topics = vec!["t".into()])).contains("--allow-principal"));
        assert!(
            e(args(|a| {
                a.deny_hosts = vec!["h".into()];
                a.allow_principals = vec!["User:a".into()];
                a.topics = vec!["t".into()];
            }))
            .contains("--deny-host needs --deny-principal")
        );
    }

    #[test]
    fn remove_without_principals_removes_everything_on_the_resource() {
        let f = deletion_filters(&args(|a| {
            a.groups = vec!["billing".into()];
            a.resource_pattern_type = "prefixed".into();
        }))
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].resource_type_filter, RESOURCE_GROUP);
        assert_eq!(f[0].pattern_type_filter, PATTERN_PREFIXED);
        assert_eq!(f[0].principal_filter, None);
        assert_eq!(f[0].operation, OPERATION_ANY);
        assert_eq!(f[0].permission_type, PERMISSION_ANY);

        let f = deletion_filters(&args(|a| {
            a.transactional_ids = vec!["tx".into()];
            a.deny_principals = vec!["User:eve".into()];
            a.operations = vec!["Write".into()];
        }))
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].principal_filter.as_deref(), Some("User:eve"));
        assert_eq!(f[0].host_filter.as_deref(), Some("*"));
        assert_eq!(f[0].permission_type, PERMISSION_DENY);
        assert_eq!(f[0].operation, 4);
    }

    #[test]
    fn list_without_resources_lists_everything() {
        let f = describe_filters(&args(|a| a.principal = Some("User:alice".into()))).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].resource_type_filter, RESOURCE_ANY);
        assert_eq!(f[0].pattern_type_filter, PATTERN_ANY);
        assert_eq!(f[0].resource_name_filter, None);
        assert_eq!(f[0].principal_filter.as_deref(), Some("User:alice"));
        let f = describe_filters(&args(|a| {
            a.topics = vec!["a".into(), "b".into()];
            a.cluster = true;
        }))
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[2].resource_name_filter.as_deref(), Some(CLUSTER_NAME));
    }

    #[test]
    fn output_is_kafkas() {
        assert_eq!(
            resource_text(RESOURCE_TOPIC, "clinical.", PATTERN_PREFIXED),
            "ResourcePattern(resourceType=TOPIC, name=clinical., patternType=PREFIXED)"
        );
        assert_eq!(
            entry_text("User:alice", "*", 3, PERMISSION_ALLOW),
            "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"
        );
    }
}
