//! A minimal Kafka request/response client for the command line: one connection, one
//! request at a time, every message encoded by `kafka-protocol`. It negotiates each
//! API's version with ApiVersions and uses the highest both sides know.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response the CLI accepts.
const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to a broker.
pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Client {
    /// Connects and learns the broker's API versions.
    pub async fn connect(addr: &str) -> anyhow::Result<Client> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out connecting to {addr}"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        let mut client = Client {
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let response: ApiVersionsResponse = client
            .send_at(
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("medulla-cli"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    ))),
                3,
            )
            .await?;
        if response.error_code != 0 {
            bail!("ApiVersions failed with error code {}", response.error_code);
        }
        client.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(client)
    }

    /// Sends `request` at the highest version both sides support.
    pub async fn send<R: Request>(&mut self, request: R) -> anyhow::Result<R::Response> {
        let (lo, hi) = *self
            .versions
            .get(&R::KEY)
            .ok_or_else(|| anyhow!("the broker does not support API key {}", R::KEY))?;
        let version = hi.min(R::VERSIONS.max);
        if version < lo.max(R::VERSIONS.min) {
            bail!("no common version for API key {}", R::KEY);
        }
        self.send_at(request, version).await
    }

    /// Sends `request` at `version`.
    pub async fn send_at<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.round_trip(request, version))
            .await
            .map_err(|_| anyhow!("request timed out"))?
    }

    async fn round_trip<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let api = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("medulla-cli")))
            .encode(&mut buf, api.request_header_version(version))?;
        request.encode(&mut buf, version)?;
        let size = i32::try_from(buf.len() - 4)?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await?;

        let size = self
            .stream
            .read_i32()
            .await
            .context("the broker closed the connection")?;
        let size = usize::try_from(size).map_err(|_| anyhow!("negative response size"))?;
        if size > RESPONSE_BYTES_MAX {
            bail!("response of {size} bytes is too large");
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await?;
        let mut body = bytes::Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!(
                "correlation id mismatch: sent {}, got {}",
                self.correlation_id,
                header.correlation_id
            );
        }
        let response = R::Response::decode(&mut body, version)?;
        if body.has_remaining() {
            bail!("{} unexpected bytes after the response", body.remaining());
        }
        Ok(response)
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

/// Turns a Kafka error code into an error naming it.
pub fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let name = kafka_protocol::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("error code {code}"));
    match message {
        Some(m) if !m.is_empty() => bail!("{what}: {name}: {}", m.as_str()),
        _ => bail!("{what}: {name}"),
    }
}
