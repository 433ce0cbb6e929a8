//! `medulla topic create|list|describe|alter|delete` against a running broker.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use medulla::admin::{Client, check};
use medulla_client::ClientConfig;

/// Topic subcommands.
#[derive(Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// A topic config KEY=VALUE (repeatable), e.g. retention.ms=86400000.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Only check that the broker would accept it.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topics (internal ones too, as `kafka-topics --list` does).
    List {
        /// Leave out internal topics (`__consumer_offsets`, `_medulla_audit`, …).
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Show a topic's partitions, offsets and non-default configs.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Change a topic's configs or grow its partitions.
    Alter {
        /// Topic name.
        name: String,
        /// Grow to this many partitions.
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a config KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Revert a config to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn split_config(kv: &str) -> anyhow::Result<(&str, &str)> {
    kv.split_once('=')
        .ok_or_else(|| anyhow!("--config {kv:?} is not KEY=VALUE"))
}

/// Runs one topic subcommand.
pub async fn run(cfg: &ClientConfig, command: TopicCommand) -> anyhow::Result<()> {
    let mut client = Client::connect_with(cfg).await?;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            configs,
            validate_only,
        } => {
            let mut creatable = CreatableTopic::default()
                .with_name(TopicName(s(&name)))
                .with_num_partitions(partitions.unwrap_or(-1))
                .with_replication_factor(-1);
            for kv in &configs {
                let (k, v) = split_config(kv)?;
                creatable.configs.push(
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v))),
                );
            }
            let response = client
                .send(
                    CreateTopicsRequest::default()
                        .with_topics(vec![creatable])
                        .with_timeout_ms(30_000)
                        .with_validate_only(validate_only),
                )
                .await?;
            for t in &response.topics {
                check(
                    t.error_code,
                    t.error_message.as_ref(),
                    &format!("create {name}"),
                )?;
                if validate_only {
                    println!(
                        "topic {name} would be created with {} partitions",
                        t.num_partitions
                    );
                } else {
                    println!("created topic {name} with {} partitions", t.num_partitions);
                }
            }
        }
        TopicCommand::List { exclude_internal } => {
            let response = client
                .send(MetadataRequest::default().with_topics(None))
                .await?;
            let mut names: Vec<String> = response
                .topics
                .iter()
                .filter(|t| !(exclude_internal && t.is_internal))
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
        }
        TopicCommand::Describe { name } => describe(&mut client, &name).await?,
        TopicCommand::Alter {
            name,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            if let Some(count) = partitions {
                let response = client
                    .send(
                        CreatePartitionsRequest::default()
                            .with_topics(vec![
                                CreatePartitionsTopic::default()
                                    .with_name(TopicName(s(&name)))
                                    .with_count(count),
                            ])
                            .with_timeout_ms(30_000),
                    )
                    .await?;
                for r in &response.results {
                    check(
                        r.error_code,
                        r.error_message.as_ref(),
                        &format!("grow {name}"),
                    )?;
                }
                println!("topic {name} now has {count} partitions");
            }
            if !configs.is_empty() || !delete_configs.is_empty() {
                let mut alterable = Vec::new();
                for kv in &configs {
                    let (k, v) = split_config(kv)?;
                    alterable.push(
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(0)
                            .with_value(Some(s(v))),
                    );
                }
                for k in &delete_configs {
                    alterable.push(
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(1),
                    );
                }
                let response = client
                    .send(
                        IncrementalAlterConfigsRequest::default().with_resources(vec![
                            AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s(&name))
                                .with_configs(alterable),
                        ]),
                    )
                    .await?;
                for r in &response.responses {
                    check(
                        r.error_code,
                        r.error_message.as_ref(),
                        &format!("alter {name}"),
                    )?;
                }
                println!("altered configs of topic {name}");
            }
        }
        TopicCommand::Delete { name } => {
            let response = client
                .send(DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s(&name))]).with_topics(vec![
                    kafka_protocol::messages::delete_topics_request::DeleteTopicState::default().with_name(Some(TopicName(s(&name)))),
                ]).with_timeout_ms(30_000))
                .await?;
            for r in &response.responses {
                check(
                    r.error_code,
                    r.error_message.as_ref(),
                    &format!("delete {name}"),
                )?;
            }
            println!("deleted topic {name}");
        }
    }
    Ok(())
}

async fn describe(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let topic = client.topic_metadata(name).await?;
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
    println!(
        "topic {name}  id {}  partitions {}",
        topic.topic_id,
        partitions.len()
    );
    let starts = client.list_offsets(name, &partitions, -2).await?;
    let ends = client.list_offsets(name, &partitions, -1).await?;
    for p in &partitions {
        println!(
            "  partition {p}  leader {}  log-start {}  log-end {}",
            topic
                .partitions
                .iter()
                .find(|x| x.partition_index == *p)
                .map_or(-1, |x| x.leader_id.0),
            starts.get(p).copied().unwrap_or(-1),
            ends.get(p).copied().unwrap_or(-1)
        );
    }
    let configs = client
        .send(DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None),
            ]))
        .await?;
    for r in &configs.results {
        check(
            r.error_code,
            r.error_message.as_ref(),
            &format!("describe configs of {name}"),
        )?;
        for c in r.configs.iter().filter(|c| c.config_source == 1) {
            println!(
                "  config {}={}",
                c.name.as_str(),
                c.value.as_ref().map(|v| v.as_str()).unwrap_or("null")
            );
        }
    }
    Ok(())
}
