//! What the coordinators' internal topics (`__consumer_offsets`, `__transaction_state`)
//! share: their creation as compacted topics and the encoding of the batches the
//! coordinators write to them.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use medulla_log::{LogError, LogManager};

/// Creates `name` as a compacted topic of `partitions` partitions with `segment_bytes`
/// segments unless it exists. Callers serialise concurrent first writes themselves.
pub(crate) fn ensure_compacted(
    log: &LogManager,
    name: &str,
    partitions: u32,
    segment_bytes: u64,
) -> Result<(), LogError> {
    if log.topic(name).is_some() {
        return Ok(());
    }
    // The same guard as any topic creation: never run out of descriptors half-way.
    crate::fds::check_room(u64::from(partitions))
        .map_err(|e| LogError::Io(std::io::Error::other(e)))?;
    let configs = BTreeMap::from([
        ("cleanup.policy".to_owned(), "compact".to_owned()),
        ("segment.bytes".to_owned(), segment_bytes.to_string()),
    ]);
    match log.create_topic(name, partitions, &configs, false) {
        Ok(_) | Err(LogError::TopicAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One uncompressed batch of `(key, value)` records as a coordinator writes them: no
/// sequences; with `txn`, a transactional batch of that producer (id, epoch).
pub(crate) fn encode_batch(
    records: &[(Bytes, Option<Bytes>)],
    timestamp_ms: i64,
    txn: Option<(i64, i16)>,
) -> Result<BytesMut, LogError> {
    encode_records(
        records.iter().map(|(k, v)| (Some(k.clone()), v.clone())),
        timestamp_ms,
        txn,
    )
}

/// [`encode_batch`] for records whose keys may be null (the audit trail's).
pub(crate) fn encode_records(
    records: impl Iterator<Item = (Option<Bytes>, Option<Bytes>)>,
    timestamp_ms: i64,
    txn: Option<(i64, i16)>,
) -> Result<BytesMut, LogError> {
    let (producer_id, producer_epoch) = txn.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: txn.is_some(),
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch with base sequence -1: the encoder splits whenever
            // offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key,
            value,
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::Io(std::io::Error::other(format!("encoding records: {e}"))))?;
    Ok(batch)
}

/// A log over `dir` for unit tests of the stores.
#[cfg(test)]
pub(crate) fn open_test_log(dir: &std::path::Path) -> std::sync::Arc<LogManager> {
    use medulla_log::{FsyncPolicy, LogManagerOptions, SystemClock};
    LogManager::open(LogManagerOptions {
        data_dir: dir.to_owned(),
        fsync: FsyncPolicy::Never,
        broker_defaults: Default::default(),
        clock: std::sync::Arc::new(SystemClock),
        recovery_threads: medulla_log::DEFAULT_RECOVERY_THREADS,
    })
    .expect("open a test log")
}
