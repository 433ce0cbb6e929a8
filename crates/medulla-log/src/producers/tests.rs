//! The producer-state rules on their own: sequences, epochs, duplicates, transactions.

use super::*;

fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64, txn: bool) -> BatchHeader {
    BatchHeader {
        base_offset: offset,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: if txn { 0x10 } else { 0 },
        last_offset_delta: count - 1,
        base_timestamp: 1000,
        max_timestamp: 1000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        records_count: count,
    }
}

fn append(state: &mut ProducerState, h: BatchHeader) -> crate::Result<Option<BatchMeta>> {
    match state.check(&[h], AppendOrigin::Client)? {
        Check::Append(u) => {
            state.apply(u);
            Ok(None)
        }
        Check::Duplicate(meta) => Ok(Some(meta)),
    }
}

fn marker(state: &mut ProducerState, pid: i64, epoch: i16, commit: bool, offset: i64) {
    let m = TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        commit,
        coordinator_epoch: 0,
    };
    let u = state.check_marker(&m, offset, 2000).unwrap();
    state.apply(u);
}

#[test]
fn sequences_must_follow_on() {
    let mut s = ProducerState::default();
    // A producer new to the partition may start anywhere (Kafka accepts it).
    append(&mut s, header(7, 0, 0, 3, 0, false)).unwrap();
    append(&mut s, header(7, 0, 3, 2, 3, false)).unwrap();
    let gap = append(&mut s, header(7, 0, 9, 1, 5, false));
    assert!(
        matches!(gap, Err(LogError::OutOfOrderSequence(_))),
        "{gap:?}"
    );
    // The refused batch changed nothing: 5 is still next.
    append(&mut s, header(7, 0, 5, 1, 5, false)).unwrap();
}

#[test]
fn a_retried_batch_is_answered_with_its_original_offsets() {
    let mut s = ProducerState::default();
    append(&mut s, header(7, 0, 0, 3, 10, false)).unwrap();
    append(&mut s, header(7, 0, 3, 3, 13, false)).unwrap();
    let dup = append(&mut s, header(7, 0, 0, 3, 99, false))
        .unwrap()
        .unwrap();
    assert_eq!((dup.first_offset, dup.last_offset), (10, 12));
    // Only the last five batches are remembered; an older retry is out of order.
    for i in 0..5 {
        append(&mut s, header(7, 0, 6 + i, 1, 16 + i as i64, false)).unwrap();
    }
    let old = append(&mut s, header(7, 0, 3, 3, 99, false));
    assert!(
        matches!(old, Err(LogError::OutOfOrderSequence(_))),
        "{old:?}"
    );
}

#[test]
fn an_older_epoch_is_fenced_and_a_new_one_starts_at_zero() {
    let mut s = ProducerState::default();
    append(&mut s, header(7, 3, 0, 1, 0, false)).unwrap();
    let zombie = append(&mut s, header(7, 2, 1, 1, 1, false));
    assert!(
        matches!(zombie, Err(LogError::InvalidProducerEpoch(_))),
        "{zombie:?}"
    );
    let bad = append(&mut s, header(7, 4, 5, 1, 1, false));
    assert!(
        matches!(bad, Err(LogError::OutOfOrderSequence(_))),
        "{bad:?}"
    );
    append(&mut s, header(7, 4, 0, 1, 1, false)).unwrap();
}

#[test]
fn sequences_wrap_after_i32_max() {
    let mut s = ProducerState::default();
    append(&mut s, header(7, 0, i32::MAX - 1, 2, 0, false)).unwrap();
    append(&mut s, header(7, 0, 0, 1, 2, false)).unwrap();
    assert_eq!(last_sequence(i32::MAX - 1, 2), 0);
}

#[test]
fn open_transactions_bound_the_last_stable_offset_and_aborts_are_listed() {
    let mut s = ProducerState::default();
    append(&mut s, header(1, 0, 0, 2, 0, true)).unwrap();
    append(&mut s, header(2, 0, 0, 2, 2, true)).unwrap();
    append(&mut s, header(1, 0, 2, 2, 4, true)).unwrap();
    assert_eq!(s.first_unstable_offset(), Some(0));
    marker(&mut s, 1, 0, false, 6);
    assert_eq!(s.first_unstable_offset(), Some(2));
    marker(&mut s, 2, 0, true, 7);
    assert_eq!(s.first_unstable_offset(), None);
    assert_eq!(
        s.aborted_between(0, 8),
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 6
        }]
    );
    assert!(s.aborted_between(7, 8).is_empty());
    assert!(s.is_aborted(1, 4));
    assert!(!s.is_aborted(2, 3));
    // A non-transactional write while a transaction is open is refused.
    append(&mut s, header(3, 0, 0, 1, 8, true)).unwrap();
    let mixed = append(&mut s, header(3, 0, 1, 1, 9, false));
    assert!(
        matches!(mixed, Err(LogError::InvalidTxnState(_))),
        "{mixed:?}"
    );
}

#[test]
fn a_fencing_marker_bumps_the_epoch() {
    let mut s = ProducerState::default();
    append(&mut s, header(1, 0, 0, 1, 0, true)).unwrap();
    marker(&mut s, 1, 1, false, 1);
    let zombie = append(&mut s, header(1, 0, 1, 1, 2, true));
    assert!(
        matches!(zombie, Err(LogError::InvalidProducerEpoch(_))),
        "{zombie:?}"
    );
    let stale = s.check_marker(
        &TxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            commit: true,
            coordinator_epoch: 0,
        },
        2,
        0,
    );
    assert!(matches!(stale, Err(LogError::InvalidProducerEpoch(_))));
}

#[test]
fn snapshots_round_trip_and_expiry_spares_open_transactions() {
    let mut s = ProducerState::default();
    append(&mut s, header(1, 0, 0, 1, 0, true)).unwrap();
    append(&mut s, header(2, 0, 0, 1, 1, false)).unwrap();
    append(&mut s, header(3, 0, 0, 1, 2, true)).unwrap();
    marker(&mut s, 3, 0, false, 3);
    let (back, offset) = ProducerState::from_snapshot(&s.to_snapshot(4)).unwrap();
    assert_eq!(offset, 4);
    assert_eq!(back, s);
    assert!(ProducerState::from_snapshot(b"{not json").is_err());

    // Producer 3's marker is newer (2000) than the batches (1000).
    assert_eq!(s.expire(1000 + 500, 500), 1);
    assert_eq!(
        s.producers()
            .iter()
            .map(|p| p.producer_id)
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    s.truncate_below(4);
    assert!(s.aborted_between(0, 10).is_empty());
}
