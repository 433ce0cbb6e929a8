//! ListOffsets: earliest (-2), latest (-1), max-timestamp (-3), earliest-local (-4) and
//! lookup by timestamp. Latest-tiered (-5) answers offset -1: there is no tiered storage.
//!
//! With isolation level `read_committed` (v2+), as Kafka's `fetchOffsetForTimestamp`:
//! latest is the last stable offset, and a lookup (by timestamp or max-timestamp) that
//! lands at or past it finds nothing (offset -1), since such a consumer could not read
//! that record yet. Earliest is not limited.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use medulla_log::TimestampLookup;

use crate::broker::Broker;
use crate::error::kafka_code;
use crate::handlers::blocking;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Kafka's `IsolationLevel.READ_COMMITTED`.
const READ_COMMITTED: i8 = 1;

/// Answers ListOffsets.
pub async fn handle(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let base =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let Some(log) = broker.log().partition(&topic.name.0, p.partition_index) else {
                partitions.push(
                    base.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_timestamp(-1)
                        .with_offset(-1),
                );
                continue;
            };
            // The end a consumer of this isolation level can read up to.
            let fetchable_end = if read_committed {
                log.last_stable_offset()
            } else {
                log.log_end_offset()
            };
            let below_end = |found: medulla_log::Result<Option<TimestampLookup>>| {
                found.map(|f| f.filter(|f| f.offset < fetchable_end))
            };
            let found: medulla_log::Result<Option<TimestampLookup>> = match p.timestamp {
                LATEST => Ok(Some(TimestampLookup {
                    offset: fetchable_end,
                    timestamp: -1,
                })),
                EARLIEST | EARLIEST_LOCAL => Ok(Some(TimestampLookup {
                    offset: log.log_start_offset(),
                    timestamp: -1,
                })),
                LATEST_TIERED => Ok(None),
                MAX_TIMESTAMP => {
                    let log = log.clone();
                    below_end(blocking(move || log.max_timestamp()).await)
                }
                ts if ts >= 0 => {
                    let log = log.clone();
                    below_end(blocking(move || log.lookup_timestamp(ts)).await)
                }
                _ => {
                    partitions.push(
                        base.with_error_code(ResponseError::InvalidRequest.code())
                            .with_timestamp(-1)
                            .with_offset(-1),
                    );
                    continue;
                }
            };
            partitions.push(match found {
                Ok(Some(found)) => base
                    .with_timestamp(found.timestamp)
                    .with_offset(found.offset)
                    .with_leader_epoch(0),
                // No record at or after the timestamp: Kafka answers offset -1, timestamp -1.
                Ok(None) => base
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1),
                Err(e) => base
                    .with_error_code(kafka_code(&e))
                    .with_timestamp(-1)
                    .with_offset(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
