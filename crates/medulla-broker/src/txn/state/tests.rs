//! The transaction state machine on chosen instants: no sockets, no sleeps, no disk.

use kafka_protocol::ResponseError;

use super::*;

const T0: i64 = 1_700_000_000_000;
const TIMEOUT_MS: i32 = 60_000;

fn err(e: ResponseError) -> Code {
    e.code()
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    (topic.to_owned(), p)
}

/// A new id after its first InitProducerId: producer 100, epoch 0, Empty.
fn initialized() -> TxnMetadata {
    let m = TxnMetadata::new(100, TIMEOUT_MS, T0);
    match m.init(TIMEOUT_MS, None, T0).unwrap() {
        InitPlan::Ready(next) => next,
        other => panic!("{other:?}"),
    }
}

fn ongoing() -> TxnMetadata {
    initialized()
        .add(100, 0, &[tp("t", 0), tp("t", 1)], &[], T0 + 10)
        .unwrap()
        .unwrap()
}

fn ready(plan: Result<InitPlan, Code>) -> TxnMetadata {
    match plan {
        Ok(InitPlan::Ready(m)) => m,
        other => panic!("expected a ready epoch, got {other:?}"),
    }
}

#[test]
fn names_and_ids_are_kafkas() {
    let named: Vec<(i8, &str)> = TxnState::ALL.iter().map(|s| (s.id(), s.name())).collect();
    assert_eq!(
        named,
        vec![
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ]
    );
    for s in TxnState::ALL {
        assert_eq!(TxnState::from_id(s.id()), Some(s));
        assert_eq!(TxnState::from_name(s.name()), Some(s));
    }
    assert_eq!(TxnState::from_id(8), None);
    assert_eq!(TxnState::from_name("ongoing"), None);
}

#[test]
fn a_new_id_starts_at_epoch_0_and_each_init_bumps() {
    let m = initialized();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (100, 0, TxnState::Empty)
    );
    assert_eq!(m.start_ms, -1);
    let again = ready(m.init(5000, None, T0 + 1));
    assert_eq!((again.producer_id, again.producer_epoch), (100, 1));
    assert_eq!(again.last_producer_epoch, NO_PRODUCER_EPOCH);
    assert_eq!(again.timeout_ms, 5000, "the new instance's timeout applies");
    assert_eq!(again.last_update_ms, T0 + 1);
}

#[test]
fn init_on_an_open_transaction_fences_it_with_the_next_epoch() {
    let m = ongoing();
    let Ok(InitPlan::Fence(fenced)) = m.init(TIMEOUT_MS, None, T0 + 20) else {
        panic!("an open transaction is aborted first");
    };
    assert_eq!(fenced.state, TxnState::PrepareAbort);
    assert_eq!(fenced.producer_epoch, 1);
    assert_eq!(
        fenced.partitions, m.partitions,
        "the abort covers every partition"
    );
    let done = fenced.complete(T0 + 30).unwrap();
    assert_eq!(done.state, TxnState::CompleteAbort);
    assert!(done.partitions.is_empty());
    // The producer's retry then gets the epoch after the fencing one.
    let retried = ready(done.init(TIMEOUT_MS, None, T0 + 40));
    assert_eq!(retried.producer_epoch, 2);
    // The old epoch is fenced everywhere.
    assert_eq!(
        done.end(100, 0, true, T0 + 50),
        Err(err(ResponseError::ProducerFenced))
    );
    assert_eq!(
        retried.add(100, 0, &[tp("t", 0)], &[], T0 + 50),
        Err(err(ResponseError::ProducerFenced))
    );
}

#[test]
fn init_while_prepared_is_concurrent() {
    let Ok(EndPlan::Prepare(prepared)) = ongoing().end(100, 0, true, T0 + 20) else {
        panic!()
    };
    assert_eq!(
        prepared.init(TIMEOUT_MS, None, T0 + 21),
        Err(err(ResponseError::ConcurrentTransactions))
    );
}

#[test]
fn kip_360_resume_bumps_once_and_a_retry_gets_the_same_epoch() {
    let m = ready(initialized().init(TIMEOUT_MS, None, T0)); // epoch 1
    // The producer at epoch 1 resumes after an error.
    let bumped = ready(m.init(TIMEOUT_MS, Some((100, 1)), T0 + 1));
    assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (2, 1));
    // Its retry (the answer was lost) gets epoch 2 again, not 3.
    let retried = ready(bumped.init(TIMEOUT_MS, Some((100, 1)), T0 + 2));
    assert_eq!((retried.producer_id, retried.producer_epoch), (100, 2));
    // An older epoch, or another producer id, is fenced.
    for expected in [(100, 0), (99, 2)] {
        assert_eq!(
            bumped.init(TIMEOUT_MS, Some(expected), T0 + 3),
            Err(err(ResponseError::ProducerFenced)),
            "{expected:?}"
        );
    }
    // A new instance (no expected epoch) fences the resuming one: its retry is refused.
    let new_instance = ready(bumped.init(TIMEOUT_MS, None, T0 + 4));
    assert_eq!(new_instance.producer_epoch, 3);
    assert_eq!(
        new_instance.init(TIMEOUT_MS, Some((100, 1)), T0 + 5),
        Err(err(ResponseError::ProducerFenced))
    );
    // A brand-new id accepts any expected id (the producer lost its coordinator state).
    let fresh = TxnMetadata::new(7, TIMEOUT_MS, T0);
    let m = ready(fresh.init(TIMEOUT_MS, Some((3, 9)), T0));
    assert_eq!((m.producer_id, m.producer_epoch), (7, 0));
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut m = initialized();
    m.producer_epoch = i16::MAX - 1;
    assert_eq!(
        m.init(TIMEOUT_MS, None, T0),
        Ok(InitPlan::NeedsNewProducerId {
            record_last_epoch: false
        })
    );
    assert_eq!(
        m.init(TIMEOUT_MS, Some((100, i16::MAX - 1)), T0),
        Ok(InitPlan::NeedsNewProducerId {
            record_last_epoch: true
        })
    );
    let rotated = m.rotate(200, TIMEOUT_MS, T0 + 1, true);
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (200, 0));
    assert_eq!(rotated.last_producer_id, 100);
    // The retry of the rotating request, naming the old id and its exhausted epoch, gets
    // the same answer.
    let retried = ready(rotated.init(TIMEOUT_MS, Some((100, i16::MAX - 1)), T0 + 2));
    assert_eq!((retried.producer_id, retried.producer_epoch), (200, 0));
    // The old id with an epoch that is not exhausted is a fenced producer.
    assert_eq!(
        rotated.init(TIMEOUT_MS, Some((100, 5)), T0 + 2),
        Err(err(ResponseError::ProducerFenced))
    );
    // Fencing at the last usable epoch still fits in an i16.
    let mut open = ongoing();
    open.producer_epoch = i16::MAX - 1;
    let Ok(InitPlan::Fence(fenced)) = open.init(TIMEOUT_MS, None, T0) else {
        panic!()
    };
    assert_eq!(fenced.producer_epoch, i16::MAX);
}

#[test]
fn adding_partitions_opens_the_transaction_and_keeps_its_start() {
    let m = initialized();
    let open = ongoing();
    assert_eq!(open.state, TxnState::Ongoing);
    assert_eq!(open.start_ms, T0 + 10);
    // Already there: nothing to write.
    assert_eq!(open.add(100, 0, &[tp("t", 1)], &[], T0 + 20), Ok(None));
    let more = open
        .add(100, 0, &[tp("u", 0)], &["g".into()], T0 + 30)
        .unwrap()
        .unwrap();
    assert_eq!(more.start_ms, T0 + 10);
    assert_eq!(more.partitions.len(), 3);
    assert!(more.groups.contains("g"));
    // A group already there with a new partition, or a new group alone, is a change.
    assert!(more.add(100, 0, &[], &["h".into()], T0).unwrap().is_some());
    // Refusals, in Kafka's order: producer id, epoch, prepared.
    let cases = [
        (
            m.add(101, 0, &[tp("t", 0)], &[], T0),
            ResponseError::InvalidProducerIdMapping,
        ),
        (
            m.add(100, 1, &[tp("t", 0)], &[], T0),
            ResponseError::ProducerFenced,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, Err(err(want)));
    }
    let Ok(EndPlan::Prepare(prepared)) = open.end(100, 0, false, T0) else {
        panic!()
    };
    assert_eq!(
        prepared.add(100, 0, &[tp("t", 0)], &[], T0),
        Err(err(ResponseError::ConcurrentTransactions))
    );
}

#[test]
fn a_transaction_past_the_partition_limit_is_refused() {
    let many: Vec<TopicPartition> = (0..limits::PARTITIONS_PER_TRANSACTION_MAX as i32)
        .map(|p| tp("t", p))
        .collect();
    let full = initialized().add(100, 0, &many, &[], T0).unwrap().unwrap();
    assert_eq!(
        full.add(100, 0, &[tp("u", 0)], &[], T0),
        Err(err(ResponseError::PolicyViolation))
    );
}

#[test]
fn end_txn_follows_kafkas_table() {
    let open = ongoing();
    let Ok(EndPlan::Prepare(commit)) = open.end(100, 0, true, T0 + 20) else {
        panic!()
    };
    assert_eq!(commit.state, TxnState::PrepareCommit);
    assert_eq!(commit.partitions, open.partitions);
    let committed = commit.complete(T0 + 30).unwrap();
    assert_eq!(committed.state, TxnState::CompleteCommit);
    assert!(committed.partitions.is_empty() && committed.groups.is_empty());
    assert_eq!(committed.start_ms, open.start_ms);

    let concurrent = || Err(err(ResponseError::ConcurrentTransactions));
    let invalid = || Err(err(ResponseError::InvalidTxnState));
    let empty = initialized();
    let cases: Vec<(&TxnMetadata, bool, Result<EndPlan, Code>)> = vec![
        // A retry of the same outcome is answered NONE; the other outcome is refused.
        (&committed, true, Ok(EndPlan::AlreadyComplete)),
        (&committed, false, invalid()),
        (&commit, true, concurrent()),
        (&commit, false, invalid()),
        // Nothing to end.
        (&empty, true, invalid()),
    ];
    for (m, outcome, want) in cases {
        assert_eq!(
            m.end(100, 0, outcome, T0 + 40),
            want,
            "{:?} {outcome}",
            m.state
        );
    }
    let Ok(EndPlan::Prepare(abort)) = open.end(100, 0, false, T0) else {
        panic!()
    };
    let aborted = abort.complete(T0).unwrap();
    assert_eq!(aborted.state, TxnState::CompleteAbort);
    assert_eq!(aborted.end(100, 0, false, T0), Ok(EndPlan::AlreadyComplete));
    assert_eq!(aborted.end(100, 0, true, T0), invalid());
    assert_eq!(abort.end(100, 0, false, T0), concurrent());
    // The producer is checked first.
    assert_eq!(
        open.end(100, 1, true, T0),
        Err(err(ResponseError::ProducerFenced))
    );
    assert_eq!(
        open.end(5, 0, true, T0),
        Err(err(ResponseError::InvalidProducerIdMapping))
    );
    // Only prepare states complete.
    assert_eq!(open.complete(T0), None);
}

#[test]
fn timeouts_and_expiry_count_from_kafkas_timestamps() {
    let open = ongoing(); // started at T0 + 10
    let deadline = T0 + 10 + i64::from(TIMEOUT_MS);
    assert!(!open.timed_out(deadline));
    assert!(open.timed_out(deadline + 1));
    assert!(!initialized().timed_out(i64::MAX));
    // Expiry: idle ids in Empty or a complete state, never an open transaction.
    let idle = initialized(); // last update T0
    assert!(!idle.expired(T0 + 999, 1000));
    assert!(idle.expired(T0 + 1000, 1000));
    assert!(!open.expired(i64::MAX, 1000));
    let Ok(EndPlan::Prepare(p)) = open.end(100, 0, true, T0) else {
        panic!()
    };
    assert!(!p.expired(i64::MAX, 1000));
    assert!(p.complete(T0).unwrap().expired(T0 + 1000, 1000));
}

#[test]
fn produce_verification_answers_with_kafkas_produce_codes() {
    let open = ongoing();
    assert_eq!(open.verify_append(100, 0, &tp("t", 1)), Ok(()));
    let codes = |m: &TxnMetadata, pid, epoch, p: TopicPartition| {
        m.verify_append(pid, epoch, &p).map_err(|r| r.code)
    };
    assert_eq!(
        codes(&open, 100, 0, tp("t", 2)),
        Err(err(ResponseError::InvalidTxnState))
    );
    assert_eq!(
        codes(&open, 100, 1, tp("t", 1)),
        Err(err(ResponseError::InvalidProducerEpoch))
    );
    assert_eq!(
        codes(&open, 9, 0, tp("t", 1)),
        Err(err(ResponseError::InvalidProducerIdMapping))
    );
    assert_eq!(
        codes(&initialized(), 100, 0, tp("t", 1)),
        Err(err(ResponseError::InvalidTxnState)),
        "no transaction open"
    );
    let Ok(EndPlan::Prepare(p)) = open.end(100, 0, true, T0) else {
        panic!()
    };
    assert_eq!(
        codes(&p, 100, 0, tp("t", 1)),
        Err(err(ResponseError::NotEnoughReplicas)),
        "retriable while the transaction ends"
    );
    // The coordinator's own answers for AddPartitionsToTxn v4 verify_only.
    assert_eq!(
        open.verify_partitions(100, 0, &[tp("t", 0), tp("x", 0)]),
        Ok(vec![0, err(ResponseError::InvalidTxnState)])
    );
    assert_eq!(
        open.verify_partitions(100, 3, &[tp("t", 0)]),
        Err(err(ResponseError::ProducerFenced))
    );
}
