//! Rewriting one stored batch record by record for the cleaner.
//!
//! A batch whose records all stay, and that needs no delete horizon, is kept byte for
//! byte. Otherwise it is rebuilt as Kafka's `MemoryRecords.filterTo` rebuilds it: the
//! same base offset, `lastOffsetDelta` (so a producer's last sequence survives), producer
//! id, epoch and base sequence, partition leader epoch and codec; only the kept records,
//! each with its own offset delta and timestamp; `maxTimestamp` recomputed from them
//! (kept for LogAppendTime batches, where it is the append time); a new CRC-32C.
//! Compressed batches are decompressed and re-compressed with the same codec (snappy
//! with the xerial framing Kafka itself writes), so compaction never inflates a topic
//! that producers compress.
//!
//! Tombstones follow KIP-534 (Kafka 3.0+): the first pass that rewrites a batch holding
//! a tombstone it has seen in its key map sets the batch's delete-horizon attribute bit
//! and stores `now + delete.retention.ms` in the base timestamp (record timestamp deltas
//! are re-encoded against it, so every record keeps its timestamp); passes from the
//! horizon on drop the batch's tombstones. The horizon travels with the batch, so it
//! survives restarts and segment merges, which the older "segment last modified +
//! delete.retention.ms" rule did not (a merge reset the clock).

use crate::batch::{
    self, ATTR_DELETE_HORIZON, BatchHeader, Deltas, build_batch, for_each_raw_record,
};

/// What became of one batch.
#[derive(Debug)]
pub(crate) enum Filtered {
    /// Every record stays and nothing changes: write the original bytes.
    Unchanged,
    /// Some records go, or a delete horizon was set: write these bytes instead.
    Rewritten {
        /// The new batch.
        bytes: Vec<u8>,
        /// Its header.
        header: BatchHeader,
    },
    /// No record stays: write nothing.
    Dropped,
}

/// The outcome of [`filter_batch`].
#[derive(Debug)]
pub(crate) struct FilterResult {
    pub filtered: Filtered,
    /// Records removed.
    pub dropped_records: usize,
    /// The delete horizon of the batch as written, when it still holds tombstones the
    /// pass covered: from then on the next pass removes them. (Tombstones past the key
    /// map wait for a pass that covers them, so they do not count: a partition due for
    /// its horizon is always cleared of it by one pass.)
    pub tombstone_horizon_ms: Option<i64>,
}

/// The pass's view of the records it may drop.
pub(crate) struct Rules {
    /// The cleaner's clock.
    pub now_ms: i64,
    /// `delete.retention.ms` of the topic.
    pub delete_retention_ms: i64,
    /// Records at or past this offset are beyond the key map: always kept.
    pub covered_end: i64,
}

/// Filters one whole batch: a record at an offset below `rules.covered_end` goes when it
/// has no key (a compacted topic only holds keyed records; Kafka drops strays too), when
/// `superseded(key, offset)` says a later offset of its key exists, or when it is a
/// tombstone whose batch's delete horizon has passed.
///
/// Control batches stay as they are: transaction markers are Kafka's to remove once the
/// transaction's data is gone, and there are no transactions yet.
pub(crate) fn filter_batch(
    batch_bytes: &[u8],
    header: &BatchHeader,
    rules: &Rules,
    mut superseded: impl FnMut(&[u8], i64) -> bool,
) -> crate::Result<FilterResult> {
    if header.is_control() {
        return Ok(FilterResult {
            filtered: Filtered::Unchanged,
            dropped_records: 0,
            tombstone_horizon_ms: None,
        });
    }
    let horizon = header.delete_horizon_ms();
    let horizon_passed = horizon.is_some_and(|h| rules.now_ms >= h);
    // (offset delta, kept, tombstone) of every record; the bytes are walked again only
    // when the batch has to be rebuilt.
    let mut decisions: Vec<(bool, bool)> = Vec::with_capacity(header.records_count.max(0) as usize);
    let mut covered_tombstone = false;
    for_each_raw_record(batch_bytes, header, Deltas::Increasing, |record| {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let tombstone = record.value.is_none();
        let keep = if offset >= rules.covered_end {
            true
        } else {
            match record.key {
                None => false,
                Some(key) if superseded(key, offset) => false,
                Some(_) => !(tombstone && horizon_passed),
            }
        };
        if keep && tombstone && offset < rules.covered_end {
            covered_tombstone = true;
        }
        decisions.push((keep, tombstone));
        std::ops::ControlFlow::Continue(())
    })?;
    let kept = decisions.iter().filter(|(keep, _)| *keep).count();
    let dropped_records = decisions.len() - kept;
    let set_horizon = horizon.is_none() && covered_tombstone;
    let written_horizon = if set_horizon {
        Some(rules.now_ms.saturating_add(rules.delete_retention_ms))
    } else {
        horizon
    };
    let tombstone_horizon_ms = written_horizon.filter(|_| covered_tombstone);
    let filtered = if kept == 0 {
        Filtered::Dropped
    } else if dropped_records == 0 && !set_horizon {
        Filtered::Unchanged
    } else {
        let (bytes, header) = rebuild(batch_bytes, header, &decisions, written_horizon)?;
        Filtered::Rewritten { bytes, header }
    };
    Ok(FilterResult {
        filtered,
        dropped_records,
        tombstone_horizon_ms,
    })
}

/// The batch with only the records `decisions` keeps, with `horizon` (if any) set.
fn rebuild(
    batch_bytes: &[u8],
    header: &BatchHeader,
    decisions: &[(bool, bool)],
    horizon: Option<i64>,
) -> crate::Result<(Vec<u8>, BatchHeader)> {
    let mut new_header = *header;
    if let Some(h) = horizon {
        new_header.attributes |= ATTR_DELETE_HORIZON;
        new_header.base_timestamp = h;
    }
    let rebase = new_header.base_timestamp != header.base_timestamp;
    let mut raw = Vec::with_capacity(batch_bytes.len());
    let mut max_written_timestamp = i64::MIN;
    let mut index = 0usize;
    let mut kept = 0i32;
    for_each_raw_record(batch_bytes, header, Deltas::Increasing, |record| {
        let (keep, _) = decisions[index];
        index += 1;
        if !keep {
            return std::ops::ControlFlow::Continue(());
        }
        kept += 1;
        max_written_timestamp = max_written_timestamp.max(record.written_timestamp);
        if rebase {
            batch::put_record(
                &mut raw,
                record.attributes,
                record
                    .written_timestamp
                    .wrapping_sub(new_header.base_timestamp),
                record.offset_delta,
                record.tail,
            );
        } else {
            raw.extend_from_slice(record.encoded);
        }
        std::ops::ControlFlow::Continue(())
    })?;
    new_header.records_count = kept;
    if !header.is_log_append_time() {
        new_header.max_timestamp = max_written_timestamp;
    }
    let bytes = build_batch(&new_header, &raw)?;
    let built = batch::parse_header(&bytes)?;
    Ok((bytes, built))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Compression, for_each_record, parse_header};
    use crate::test_support::{TestRecord, encode_batch};

    const T0: i64 = 1_000_000;

    fn rules(now_ms: i64) -> Rules {
        Rules {
            now_ms,
            delete_retention_ms: 100,
            covered_end: i64::MAX,
        }
    }

    /// Four records k0..k3 at offsets 10..13; k1's value is a tombstone.
    fn batch(codec: Compression) -> (Vec<u8>, BatchHeader) {
        let records: Vec<TestRecord> = (0..4)
            .map(|i| {
                let value = (i != 1).then_some(&b"value"[..]);
                TestRecord::new(Some(format!("k{i}").as_bytes()), value, i * 10)
            })
            .collect();
        let mut bytes = encode_batch(&records, codec, T0, 0);
        batch::set_base_offset(&mut bytes, 10);
        let header = parse_header(&bytes).unwrap();
        (bytes, header)
    }

    /// (offset, timestamp) of every record, read back with the CRC checked.
    fn records(bytes: &[u8]) -> Vec<(i64, i64)> {
        let header = parse_header(bytes).unwrap();
        batch::check_crc(bytes, &header).unwrap();
        let mut out = Vec::new();
        for_each_record(bytes, &header, |r| {
            out.push((header.base_offset + i64::from(r.offset_delta), r.timestamp));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn nothing_to_drop_keeps_the_bytes() {
        let (bytes, header) = batch(Compression::None);
        let result = filter_batch(&bytes, &header, &rules(T0), |_, _| false).unwrap();
        // The tombstone needs a horizon: the batch is rewritten once for it.
        let Filtered::Rewritten {
            bytes: first,
            header: h,
        } = result.filtered
        else {
            panic!("{result:?}")
        };
        assert_eq!(h.delete_horizon_ms(), Some(T0 + 100));
        assert_eq!(result.tombstone_horizon_ms, Some(T0 + 100));
        // Every record kept its offset and timestamp.
        assert_eq!(records(&first), records(&bytes));
        // A second pass before the horizon changes nothing.
        let again = filter_batch(&first, &h, &rules(T0 + 99), |_, _| false).unwrap();
        assert!(matches!(again.filtered, Filtered::Unchanged));
        assert_eq!(again.tombstone_horizon_ms, Some(T0 + 100));
    }

    #[test]
    fn superseded_records_go_and_offsets_stay_in_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let (bytes, header) = batch(codec);
            let result = filter_batch(&bytes, &header, &rules(T0), |key, _| {
                key == b"k0" || key == b"k3"
            })
            .unwrap();
            let Filtered::Rewritten {
                bytes: out,
                header: h,
            } = result.filtered
            else {
                panic!("{codec:?}: {result:?}")
            };
            assert_eq!(result.dropped_records, 2);
            assert_eq!(h.compression().unwrap(), codec);
            assert_eq!(
                (h.base_offset, h.last_offset_delta, h.records_count),
                (10, 3, 2)
            );
            assert_eq!(
                records(&out),
                vec![(11, T0 + 10), (12, T0 + 20)],
                "{codec:?}"
            );
            assert_eq!(h.max_timestamp, T0 + 20);
            assert_eq!(h.producer_id, header.producer_id);
            // What the log's recovery checks of stored batches accepts.
            batch::check_stored_counts(&h).unwrap();
        }
    }

    #[test]
    fn tombstones_go_once_the_horizon_passes() {
        let (bytes, header) = batch(Compression::Lz4);
        let first = filter_batch(&bytes, &header, &rules(T0), |_, _| false).unwrap();
        let Filtered::Rewritten { bytes, header } = first.filtered else {
            panic!()
        };
        let late = filter_batch(&bytes, &header, &rules(T0 + 100), |_, _| false).unwrap();
        let Filtered::Rewritten {
            bytes: out,
            header: h,
        } = late.filtered
        else {
            panic!("{late:?}")
        };
        assert_eq!(late.tombstone_horizon_ms, None);
        assert_eq!(records(&out), vec![(10, T0), (12, T0 + 20), (13, T0 + 30)]);
        assert_eq!(
            h.delete_horizon_ms(),
            Some(T0 + 100),
            "the flag stays, as in Kafka"
        );
    }

    #[test]
    fn records_past_the_map_stay_and_start_no_horizon() {
        let (bytes, header) = batch(Compression::None);
        let rules = Rules {
            covered_end: 11,
            ..rules(T0)
        };
        // Only offset 10 is covered; everything else stays untouched.
        let result = filter_batch(&bytes, &header, &rules, |_, _| true).unwrap();
        let Filtered::Rewritten {
            bytes: out,
            header: h,
        } = result.filtered
        else {
            panic!()
        };
        assert_eq!(h.delete_horizon_ms(), None);
        assert_eq!(result.tombstone_horizon_ms, None);
        assert_eq!(records(&out).len(), 3);
        let all = filter_batch(&bytes, &header, &super::tests::rules(T0), |_, _| true).unwrap();
        assert!(matches!(all.filtered, Filtered::Dropped));
        assert_eq!(all.dropped_records, 4);
    }

    #[test]
    fn keyless_records_go_and_control_batches_stay() {
        let records = vec![
            TestRecord::new(None, Some(b"v"), 0),
            TestRecord::new(Some(b"k"), Some(b"v"), 1),
        ];
        let bytes = encode_batch(&records, Compression::None, T0, 0);
        let header = parse_header(&bytes).unwrap();
        let result = filter_batch(&bytes, &header, &rules(T0), |_, _| false).unwrap();
        assert_eq!(result.dropped_records, 1);
        let control = encode_batch(&records, Compression::None, T0, 0x20);
        let header = parse_header(&control).unwrap();
        let result = filter_batch(&control, &header, &rules(T0), |_, _| true).unwrap();
        assert!(matches!(result.filtered, Filtered::Unchanged));
    }
}
