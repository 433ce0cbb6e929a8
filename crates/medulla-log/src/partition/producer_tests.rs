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

/// The producer state rebuilt in the recovery pass equals the one a separate replay of
/// the recovered log gives (what the partition did before issue 7 merged the passes).
fn assert_state_matches_a_separate_replay(f: &Fixture, log: &PartitionLog) {
    let state = lock(&log.state);
    let separate = load_producer_state(
        f.path(),
        &state.segments,
        state.log_start_offset,
        state.log_end_offset,
        "t",
        0,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(state.producers.to_snapshot(state.log_end_offset)).unwrap(),
        String::from_utf8(separate.to_snapshot(state.log_end_offset)).unwrap()
    );
}

/// Two new producers, `pid` idempotent and `pid + 1` transactional with an aborted and
/// an open transaction (ten offsets); returns the log end.
fn write_history(log: &PartitionLog, pid: i64) -> i64 {
    log.append(&producer_batch(2, pid, 0, 0, false)).unwrap();
    log.append(&producer_batch(1, pid + 1, 0, 0, true)).unwrap();
    log.append(&simple_batch(3, super::tests::START_MS))
        .unwrap();
    log.append_marker(&commit(pid + 1, 0, false)).unwrap();
    log.append(&producer_batch(2, pid, 0, 2, false)).unwrap();
    log.append(&producer_batch(1, pid + 1, 0, 1, true)).unwrap();
    log.flush().unwrap();
    log.log_end_offset()
}

#[test]
fn recovery_rebuilds_producers_in_its_scan_without_a_snapshot() {
    // Issue 7: the scan that checks the log after a crash also replays the producers.
    let f = Fixture::new(&[("index.interval.bytes", "64")]);
    drop({
        let log = f.open();
        write_history(&log, 5);
        log
    });
    assert!(!f.path().join(producers::SNAPSHOT_FILE).exists());
    let log = f.open_with(false);
    assert_state_matches_a_separate_replay(&f, &log);
    assert_eq!(log.aborted_transactions(0, 100).len(), 1);
    assert_eq!(
        log.last_stable_offset(),
        9,
        "the second transaction is open"
    );
    assert!(
        log.append(&producer_batch(2, 5, 0, 2, false))
            .unwrap()
            .duplicate
    );
}

#[test]
fn recovery_replays_only_the_batches_it_keeps() {
    let f = Fixture::new(&[]);
    let end = {
        let log = f.open();
        let end = write_history(&log, 5);
        log.flush_final().unwrap();
        // Written after the snapshot, then torn by the crash.
        log.append(&producer_batch(3, 5, 0, 4, false)).unwrap();
        log.flush().unwrap();
        end
    };
    let path = f.path().join("00000000000000000000.log");
    let size = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(size - 10).unwrap();
    let log = f.open_with(false);
    assert_eq!(log.log_end_offset(), end);
    assert_state_matches_a_separate_replay(&f, &log);
    let retry = log.append(&producer_batch(3, 5, 0, 4, false)).unwrap();
    assert!(!retry.duplicate, "the torn batch was never kept");
}

#[test]
fn a_trusted_index_replays_from_the_snapshot_offset_only() {
    // A clean open trusts the index; the producers written after the last snapshot are
    // found by walking from the index entry below the snapshot's offset.
    let f = Fixture::new(&[("index.interval.bytes", "64")]);
    {
        let log = f.open();
        write_history(&log, 5);
        log.flush_final().unwrap();
        let older = std::fs::read(f.path().join(producers::SNAPSHOT_FILE)).unwrap();
        log.append_marker(&commit(6, 0, true)).unwrap();
        write_history(&log, 15);
        log.flush_final().unwrap();
        // As if the last snapshot were the earlier one (a roll's): the next open must
        // replay everything written after it.
        std::fs::write(f.path().join(producers::SNAPSHOT_FILE), older).unwrap();
    }
    let log = f.open();
    assert!(
        lock(&log.state)
            .segments
            .values()
            .next()
            .unwrap()
            .offset_index_entries()
            > 2
    );
    assert_state_matches_a_separate_replay(&f, &log);
    assert_eq!(log.aborted_transactions(0, 100).len(), 2);
}

#[test]
fn a_snapshot_past_a_lost_tail_is_rebuilt_from_the_log() {
    let f = Fixture::new(&[]);
    let kept = {
        let log = f.open();
        let kept = write_history(&log, 5);
        log.append(&producer_batch(2, 5, 0, 4, false)).unwrap();
        log.flush_final().unwrap();
        kept
    };
    // A power loss took the last batch but not the snapshot written after it.
    let path = f.path().join("00000000000000000000.log");
    let size = std::fs::metadata(&path).unwrap().len();
    let last = producer_batch(2, 5, 0, 4, false).len() as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size - last)
        .unwrap();
    let log = f.open_with(false);
    assert_eq!(log.log_end_offset(), kept);
    assert_state_matches_a_separate_replay(&f, &log);
    assert!(
        !log.append(&producer_batch(2, 5, 0, 4, false))
            .unwrap()
            .duplicate
    );
}
