//! `medulla group list|describe|reset-offsets|delete` against a running broker, as
//! Kafka's `kafka-consumer-groups.sh` does it: ListGroups, DescribeGroups, OffsetFetch,
//! ListOffsets, OffsetCommit (generation -1: only for a group with no active members),
//! DeleteGroups and OffsetDelete.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use medulla::admin::{Client, check};
use medulla_client::ClientConfig;

/// Group subcommands.
#[derive(Subcommand)]
pub enum GroupCommand {
    /// List groups with their state and protocol type.
    List,
    /// Show a group's state, members, assignments, committed offsets and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets (the group must have no active members). Prints
    /// the plan; applies it only with --execute, as kafka-consumer-groups.sh.
    ResetOffsets {
        /// Group id.
        group: String,
        /// The topic whose offsets move.
        #[arg(long)]
        topic: String,
        /// Only these partitions (repeatable; default all).
        #[arg(long = "partition")]
        partitions: Vec<i32>,
        /// Where to: earliest, latest, an offset (`offset:N`), a shift from the committed
        /// offset (`shift:N`, negative goes back) or a time (`time:MS`, the first record
        /// at or after it).
        #[arg(long)]
        to: String,
        /// Apply the plan.
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group (it must have no active members), or with --topic only its
    /// offsets for that topic.
    Delete {
        /// Group id.
        group: String,
        /// Delete only the committed offsets of this topic.
        #[arg(long)]
        topic: Option<String>,
    },
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Where `reset-offsets --to` moves an offset.
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Shift(i64),
    Time(i64),
}

fn parse_target(to: &str) -> anyhow::Result<Target> {
    let number = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| anyhow!("--to {to:?}: {v:?} is not an integer"))
    };
    match to.split_once(':') {
        None if to == "earliest" => Ok(Target::Earliest),
        None if to == "latest" => Ok(Target::Latest),
        Some(("offset", v)) => Ok(Target::Offset(number(v)?)),
        Some(("shift", v)) => Ok(Target::Shift(number(v)?)),
        Some(("time", v)) => Ok(Target::Time(number(v)?)),
        _ => bail!("--to {to:?}: expected earliest, latest, offset:N, shift:N or time:MS"),
    }
}

/// Runs one group subcommand.
pub async fn run(cfg: &ClientConfig, command: GroupCommand) -> anyhow::Result<()> {
    let mut client = Client::connect_with(cfg).await?;
    match command {
        GroupCommand::List => {
            let r = client.send(ListGroupsRequest::default()).await?;
            check(r.error_code, None, "list groups")?;
            let mut groups: Vec<_> = r.groups.iter().collect();
            groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
            for g in groups {
                let kind = if g.protocol_type.is_empty() {
                    "-"
                } else {
                    g.protocol_type.as_str()
                };
                println!(
                    "{}  {}  {}",
                    g.group_id.0.as_str(),
                    g.group_state.as_str(),
                    kind
                );
            }
        }
        GroupCommand::Describe { group } => describe(&mut client, &group).await?,
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to,
            execute,
        } => reset(&mut client, &group, &topic, partitions, &to, execute).await?,
        GroupCommand::Delete { group, topic: None } => {
            let r = client
                .send(DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]))
                .await?;
            for g in &r.results {
                check(g.error_code, None, &format!("delete group {group}"))?;
            }
            println!("deleted group {group}");
        }
        GroupCommand::Delete {
            group,
            topic: Some(topic),
        } => {
            let partitions = topic_partitions(&mut client, &topic).await?;
            let r = client
                .send(
                    OffsetDeleteRequest::default()
                        .with_group_id(GroupId(s(&group)))
                        .with_topics(vec![
                            OffsetDeleteRequestTopic::default()
                                .with_name(TopicName(s(&topic)))
                                .with_partitions(
                                    partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetDeleteRequestPartition::default()
                                                .with_partition_index(*p)
                                        })
                                        .collect(),
                                ),
                        ]),
                )
                .await?;
            check(r.error_code, None, &format!("delete offsets of {group}"))?;
            for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
                check(
                    p.error_code,
                    None,
                    &format!(
                        "delete offsets of {group} for {topic}-{}",
                        p.partition_index
                    ),
                )?;
            }
            println!("deleted the offsets of group {group} for topic {topic}");
        }
    }
    Ok(())
}

/// The partition numbers of `topic`, in order.
async fn topic_partitions(client: &mut Client, topic: &str) -> anyhow::Result<Vec<i32>> {
    let t = client.topic_metadata(topic).await?;
    let mut partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    partitions.sort();
    Ok(partitions)
}

/// Every committed offset of `group`: (topic, partition) → (offset, metadata).
async fn committed(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), (i64, String)>> {
    let r = client
        .send_at(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None),
            7,
        )
        .await?;
    check(r.error_code, None, &format!("fetch offsets of {group}"))?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            check(p.error_code, None, &format!("fetch offsets of {group}"))?;
            out.insert(
                (t.name.0.to_string(), p.partition_index),
                (
                    p.committed_offset,
                    p.metadata.as_deref().unwrap_or("").to_owned(),
                ),
            );
        }
    }
    Ok(out)
}

/// A `consumer`-protocol assignment as `topic-p,topic-p`; other protocols' bytes are
/// opaque and shown by size.
fn assignment_text(protocol_type: &str, bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    if protocol_type == "consumer" && bytes.len() >= 2 {
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        let mut body = bytes::Bytes::copy_from_slice(&bytes[2..]);
        if let Ok(a) = ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3)) {
            let parts: Vec<String> = a
                .assigned_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| format!("{}-{p}", t.topic.0.as_str()))
                })
                .collect();
            return if parts.is_empty() {
                "-".to_owned()
            } else {
                parts.join(",")
            };
        }
    }
    format!("{} bytes", bytes.len())
}

async fn describe(client: &mut Client, group: &str) -> anyhow::Result<()> {
    let r = client
        .send_at(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]),
            6,
        )
        .await?;
    let g = r
        .groups
        .first()
        .ok_or_else(|| anyhow!("no answer for group {group}"))?;
    check(
        g.error_code,
        g.error_message.as_ref(),
        &format!("describe group {group}"),
    )?;
    let protocol_type = g.protocol_type.as_str();
    println!(
        "group {group}  state {}  protocol-type {}  assignor {}",
        g.group_state.as_str(),
        if protocol_type.is_empty() {
            "-"
        } else {
            protocol_type
        },
        if g.protocol_data.is_empty() {
            "-"
        } else {
            g.protocol_data.as_str()
        }
    );
    for m in &g.members {
        println!(
            "  member {}  instance {}  client {}  host {}  assigned {}",
            m.member_id.as_str(),
            m.group_instance_id.as_deref().unwrap_or("-"),
            m.client_id.as_str(),
            m.client_host.as_str(),
            assignment_text(protocol_type, &m.member_assignment)
        );
    }
    let offsets = committed(client, group).await?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in offsets.keys() {
        by_topic.entry(t).or_default().push(*p);
    }
    for (topic, partitions) in by_topic {
        let ends = client.list_offsets(topic, &partitions, -1).await?;
        for p in partitions {
            let (offset, metadata) = &offsets[&(topic.to_owned(), p)];
            let end = ends.get(&p).copied().unwrap_or(-1);
            let lag = if *offset >= 0 && end >= 0 {
                (end - offset).to_string()
            } else {
                "-".to_owned()
            };
            let metadata = if metadata.is_empty() {
                String::new()
            } else {
                format!("  metadata {metadata:?}")
            };
            println!("  {topic}-{p}  committed {offset}  log-end {end}  lag {lag}{metadata}");
        }
    }
    Ok(())
}

async fn reset(
    client: &mut Client,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
    to: &str,
    execute: bool,
) -> anyhow::Result<()> {
    let target = parse_target(to)?;
    let partitions = if partitions.is_empty() {
        topic_partitions(client, topic).await?
    } else {
        partitions
    };
    let earliest = client.list_offsets(topic, &partitions, -2).await?;
    let latest = client.list_offsets(topic, &partitions, -1).await?;
    let current = committed(client, group).await?;
    let at_time = match target {
        Target::Time(ms) => Some(client.list_offsets(topic, &partitions, ms).await?),
        _ => None,
    };
    let mut plan = Vec::with_capacity(partitions.len());
    for p in &partitions {
        let (lo, hi) = (earliest[p], latest[p]);
        let now = current
            .get(&(topic.to_owned(), *p))
            .map(|(o, _)| *o)
            .filter(|o| *o >= 0);
        let wanted = match target {
            Target::Earliest => lo,
            Target::Latest => hi,
            Target::Offset(n) => n,
            Target::Shift(n) => now.unwrap_or(lo).saturating_add(n),
            // No record at or after the time: the end, as Kafka's tool does.
            Target::Time(_) => at_time
                .as_ref()
                .and_then(|m| m.get(p).copied())
                .filter(|o| *o >= 0)
                .unwrap_or(hi),
        };
        // Kafka's tool clamps to the partition's range.
        plan.push((*p, now, wanted.clamp(lo, hi)));
    }
    for (p, now, new) in &plan {
        let now = now.map_or("-".to_owned(), |o| o.to_string());
        println!("  {topic}-{p}  committed {now}  new {new}");
    }
    if !execute {
        println!("dry run: nothing changed (add --execute to apply)");
        return Ok(());
    }
    let r = client
        .send_at(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(
                            plan.iter()
                                .map(|(p, _, new)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(*new)
                                })
                                .collect(),
                        ),
                ]),
            8,
        )
        .await?;
    for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
        if p.error_code == kafka_protocol::ResponseError::UnknownMemberId.code() {
            bail!("group {group} has active members: stop them before resetting its offsets");
        }
        check(
            p.error_code,
            None,
            &format!("reset {group} on {topic}-{}", p.partition_index),
        )?;
    }
    println!("reset the offsets of group {group} on topic {topic}");
    Ok(())
}
