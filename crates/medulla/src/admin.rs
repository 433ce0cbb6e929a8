//! The command line's Kafka client: [`medulla_client::wire`]'s connection (TLS and SASL
//! from `--command-config`) with what the `medulla topic|group|acl|user` commands share:
//! the highest common version of each API, topic lookups, Kafka error names.

use anyhow::bail;
use kafka_protocol::protocol::{Request, StrBytes};
use medulla_client::ClientConfig;
use medulla_client::limits::REQUEST_TIMEOUT;
use medulla_client::wire::{Connection, bootstrap_addrs};

/// The client id the CLI sends unless the properties set `client.id`.
const CLIENT_ID: &str = "medulla-cli";

/// One connection to a broker.
pub struct Client {
    conn: Connection,
}

impl Client {
    /// Connects to `addr` in plaintext and learns the broker's API versions.
    pub async fn connect(addr: &str) -> anyhow::Result<Client> {
        Client::connect_with(&ClientConfig::new(addr)).await
    }

    /// Connects to the first reachable bootstrap server of `cfg`, with its security
    /// settings, and learns the broker's API versions. An authentication or TLS failure
    /// is final: trying the next server with the same credentials would not help.
    pub async fn connect_with(cfg: &ClientConfig) -> anyhow::Result<Client> {
        let mut cfg = cfg.clone();
        if cfg.property("client.id").is_none() {
            cfg = cfg.with_property("client.id", CLIENT_ID);
        }
        let addrs = bootstrap_addrs(&cfg.bootstrap);
        let mut last = None;
        for addr in &addrs {
            match Connection::open(&cfg, addr).await {
                Ok(conn) => return Ok(Client { conn }),
                Err(e @ medulla_client::ClientError::Io { .. }) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        match last {
            Some(e) => Err(e.into()),
            None => bail!("no bootstrap server given"),
        }
    }

    /// Sends `request` at the highest version both sides support.
    pub async fn send<R: Request>(&mut self, request: R) -> anyhow::Result<R::Response> {
        let version = self.conn.version::<R>((R::VERSIONS.min, R::VERSIONS.max))?;
        self.send_at(request, version).await
    }

    /// Sends `request` at `version`.
    pub async fn send_at<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        Ok(self.conn.send(&request, version, REQUEST_TIMEOUT).await?)
    }
}

/// Lookups the `medulla topic` and `medulla group` commands share.
impl Client {
    /// The metadata of one existing topic (never auto-created).
    pub async fn topic_metadata(
        &mut self,
        topic: &str,
    ) -> anyhow::Result<kafka_protocol::messages::metadata_response::MetadataResponseTopic> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::{MetadataRequest, TopicName};
        let mut md = self
            .send(
                MetadataRequest::default()
                    .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                        TopicName(StrBytes::from_string(topic.to_owned())),
                    ))]))
                    .with_allow_auto_topic_creation(false),
            )
            .await?;
        if md.topics.is_empty() {
            bail!("no metadata for {topic}");
        }
        let t = md.topics.swap_remove(0);
        check(t.error_code, None, &format!("topic {topic}"))?;
        Ok(t)
    }

    /// ListOffsets for `spec` (-2 earliest, -1 latest, else a timestamp) of each of
    /// `partitions`: partition → offset.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        spec: i64,
    ) -> anyhow::Result<std::collections::BTreeMap<i32, i64>> {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
        let r = self
            .send(
                ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_partitions(
                                partitions
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_timestamp(spec)
                                    })
                                    .collect(),
                            ),
                    ]),
            )
            .await?;
        let mut out = std::collections::BTreeMap::new();
        for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
            check(
                p.error_code,
                None,
                &format!("list offsets of {topic}-{}", p.partition_index),
            )?;
            out.insert(p.partition_index, p.offset);
        }
        Ok(out)
    }
}

/// Turns a Kafka error code into an error naming it as Kafka does
/// (`TOPIC_AUTHORIZATION_FAILED`), with the broker's message or Kafka's description.
pub fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let (name, description) = medulla_client::error::error_name_and_description(code);
    match message {
        Some(m) if !m.is_empty() => bail!("{what}: {name}: {}", m.as_str()),
        _ => bail!("{what}: {name}: {description}"),
    }
}
