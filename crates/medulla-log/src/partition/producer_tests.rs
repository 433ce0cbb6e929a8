//! Idempotence and transactions through a real partition: de-duplication, markers,
//! the last stable offset, and the state surviving a crash and a clean restart.

use super::tests::Fixture;
use super::*;
use crate::batch::parse_header;
use crate::test_support::{producer_batch, simple_batch};

fn commit(pid: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        commit,
        coordinator_epoch: 0,
    }
}

#[test]
fn duplicates_are_not_written_twice() {
    let f = Fixture::new(&[]);
    let log = f.open();
    let first = log.append(&producer_batch(3, 5, 0, 0, false)).unwrap();
    let again = log.append(&producer_batch(3, 5, 0, 0, false)).unwrap();
    assert!(again.duplicate && !first.duplicate);
    assert_eq!((again.base_offset, again.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 3);
    let gap = log.append(&producer_batch(1, 5, 0, 7, false));
    assert!(
        matches!(gap, Err(LogError::OutOfOrderSequence(_))),
        "{gap:?}"
    );
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn read_committed_stops_at_the_open_transaction() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&simple_batch(2, super::tests::START_MS))
        .unwrap();
    log.append(&producer_batch(2, 9, 0, 0, true)).unwrap();
    log.append(&simple_batch(1, super::tests::START_MS))
        .unwrap();
    assert_eq!(log.last_stable_offset(), 2);
    let committed = log.read_committed(0, 1 << 20, true).unwrap();
    assert_eq!(parse_header(&committed).unwrap().last_offset(), 1);
    assert_eq!(
        committed.len(),
        parse_header(&committed).unwrap().size_bytes()
    );
    assert!(log.read_committed(2, 1 << 20, true).unwrap().is_empty());

    let end = log.append_marker(&commit(9, 0, false)).unwrap();
    assert_eq!(end.base_offset, 5);
    assert_eq!(log.last_stable_offset(), 6);
    let aborted = log.aborted_transactions(0, 6);
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].first_offset, aborted[0].last_offset), (2, 5));
    // The marker is a control batch holding an abort.
    let bytes = log.read(5, 1 << 20, true).unwrap();
    let header = parse_header(&bytes).unwrap();
    assert!(header.is_control() && header.is_transactional());
    let marker = batch::control_record(&bytes, &header).unwrap().unwrap();
    assert!(!marker.commit);
}

#[test]
fn producer_state_survives_a_crash_and_a_clean_restart() {
    let f = Fixture::new(&[("segment.bytes", "1048576")]);
    {
        let log = f.open();
        log.append(&producer_batch(2, 5, 0, 0, false)).unwrap();
        log.append(&producer_batch(2, 6, 0, 0, true)).unwrap();
        log.append(&producer_batch(1, 7, 0, 0, true)).unwrap();
        log.append_marker(&commit(7, 0, false)).unwrap();
        log.flush().unwrap();
        // Dropped without a clean close: the next open replays the log.
    }
    let check = |log: &PartitionLog| {
        let dup = log.append(&producer_batch(2, 5, 0, 0, false)).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 0);
        assert_eq!(log.last_stable_offset(), 2);
        assert_eq!(log.aborted_transactions(0, 100).len(), 1);
    };
    {
        let log = f.open_with(false);
        check(&log);
        log.flush_final().unwrap();
    }
    assert!(f.path().join(producers::SNAPSHOT_FILE).exists());
    let log = f.open();
    check(&log);
    let infos = log.producers();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[1].current_txn_start_offset, 2);
}

#[test]
fn a_roll_snapshots_so_recovery_replays_only_the_new_segment() {
    let f = Fixture::new(&[("segment.bytes", "1048576")]);
    {
        let log = f.open();
        log.append(&producer_batch(2, 5, 0, 0, true)).unwrap();
        let mut state = lock(&log.state);
        let config = log.config();
        log.roll(&mut state, f.clock.now_ms(), &config).unwrap();
        drop(state);
        log.append(&producer_batch(2, 5, 0, 2, true)).unwrap();
        log.flush().unwrap();
    }
    // The open transaction spans the roll: the snapshot carries its start.
    let log = f.open_with(false);
    assert_eq!(log.last_stable_offset(), 0);
    assert!(
        log.append(&producer_batch(2, 5, 0, 2, true))
            .unwrap()
            .duplicate
    );
    log.append_marker(&commit(5, 0, true)).unwrap();
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}
