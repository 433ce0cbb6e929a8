//! The classic group state machine on a fake clock: no sockets, no sleeps.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

struct Clock {
    base: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }
    fn at(&self, ms: u64) -> Now {
        Now {
            mono: self.base + Duration::from_millis(ms),
            wall_ms: 1_700_000_000_000 + ms as i64,
        }
    }
}

fn config(initial_delay_ms: u64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::from_millis(initial_delay_ms),
        ..GroupConfig::default()
    }
}

fn params(
    member_id: &str,
    instance: Option<&str>,
    protocols: &[(&str, &'static [u8])],
) -> JoinParams {
    JoinParams {
        member_id: member_id.into(),
        instance_id: instance.map(str::to_owned),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(n, m)| ((*n).to_owned(), Bytes::from_static(m)))
            .collect(),
        require_known_member_id: true,
    }
}

const RANGE: &[(&str, &[u8])] = &[("range", b"sub")];

fn now_result<T: std::fmt::Debug>(a: Answer<T>) -> T {
    match a {
        Answer::Now(r) => r,
        Answer::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn waiting<T>(a: Answer<T>) -> oneshot::Receiver<T> {
    match a {
        Answer::Wait(rx) => rx,
        Answer::Now(_) => panic!("expected to wait"),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("answer should be ready")
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// A dynamic member joins the two-step way (KIP-394) and waits for its generation.
fn join_new(g: &mut Group, now: Now, cfg: &GroupConfig) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_result(g.join(params("", None, RANGE), now, cfg));
    assert_eq!(first.error, code(ResponseError::MemberIdRequired));
    assert!(!first.member_id.is_empty());
    let rx = waiting(g.join(params(&first.member_id, None, RANGE), now, cfg));
    (first.member_id, rx)
}

fn sync(
    g: &mut Group,
    member: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
    now: Now,
) -> Answer<SyncResult> {
    g.sync(
        SyncParams {
            member_id: member.into(),
            instance_id: None,
            generation,
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::from_static(a)))
                .collect(),
        },
        now,
    )
}

/// One member, Stable at generation 1 with assignment `a1`.
fn stable_single(clock: &Clock, cfg: &GroupConfig) -> (Group, String) {
    let mut g = Group::new(clock.at(0), cfg);
    let (m1, mut rx) = join_new(&mut g, clock.at(0), cfg);
    let joined = ready(&mut rx);
    assert_eq!((joined.error, joined.generation), (0, 1));
    assert_eq!(joined.leader, m1);
    assert_eq!(joined.members.len(), 1);
    let mut srx = waiting(sync(&mut g, &m1, 1, &[(&m1, b"a1")], clock.at(0)));
    assert!(g.take_persist(), "the assignment must be written");
    g.persisted(None, clock.at(0));
    assert_eq!(ready(&mut srx).assignment, Bytes::from_static(b"a1"));
    assert_eq!(g.state(), State::Stable);
    (g, m1)
}

/// Two members at generation 2, CompletingRebalance: `m1` (the leader) was alone, `m2`
/// joined, both got the new generation and nobody has synced yet.
fn second_generation(clock: &Clock, cfg: &GroupConfig) -> (Group, String, String) {
    let (mut g, m1) = stable_single(clock, cfg);
    let (m2, mut rx2) = join_new(&mut g, clock.at(0), cfg);
    let mut rx1 = waiting(g.join(params(&m1, None, RANGE), clock.at(0), cfg));
    assert_eq!(ready(&mut rx1).generation, 2);
    assert_eq!(ready(&mut rx2).generation, 2);
    assert_eq!(g.state(), State::CompletingRebalance);
    (g, m1, m2)
}

#[test]
fn a_single_member_gets_generation_one_and_its_assignment() {
    let clock = Clock::new();
    let cfg = config(0);
    let (g, m1) = stable_single(&clock, &cfg);
    let r = g.record();
    assert_eq!(r.generation, 1);
    assert_eq!(r.leader.as_deref(), Some(m1.as_str()));
    assert_eq!(r.members[0].assignment, Bytes::from_static(b"a1"));
    assert_eq!(r.members[0].subscription, Bytes::from_static(b"sub"));
}

#[test]
fn a_second_member_rebalances_and_both_get_the_new_generation() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, m1) = stable_single(&clock, &cfg);
    let (m2, mut rx2) = join_new(&mut g, clock.at(10), &cfg);
    assert_eq!(g.state(), State::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&m1, None, 1, clock.at(20)),
        code(ResponseError::RebalanceInProgress)
    );
    assert!(rx2.try_recv().is_err(), "waits for the existing member");
    let mut rx1 = waiting(g.join(params(&m1, None, RANGE), clock.at(30), &cfg));
    let (j1, j2) = (ready(&mut rx1), ready(&mut rx2));
    assert_eq!((j1.generation, j2.generation), (2, 2));
    assert_eq!(j1.leader, m1);
    assert_eq!(j1.members.len(), 2, "the leader sees every member");
    assert!(j2.members.is_empty(), "followers do not");
    // A follower's sync waits for the leader's.
    let mut s2 = waiting(sync(&mut g, &m2, 2, &[], clock.at(40)));
    assert!(s2.try_recv().is_err());
    let mut s1 = waiting(sync(
        &mut g,
        &m1,
        2,
        &[(&m1, b"p0"), (&m2, b"p1")],
        clock.at(50),
    ));
    assert!(
        s1.try_recv().is_err(),
        "nothing is answered before the record is durable"
    );
    assert!(g.take_persist());
    g.persisted(None, clock.at(50));
    assert_eq!(ready(&mut s1).assignment, Bytes::from_static(b"p0"));
    assert_eq!(ready(&mut s2).assignment, Bytes::from_static(b"p1"));
    assert_eq!(g.heartbeat(&m2, None, 2, clock.at(60)), 0);
    assert_eq!(
        g.heartbeat(&m2, None, 1, clock.at(60)),
        code(ResponseError::IllegalGeneration)
    );
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances_the_rest() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, m1, m2) = second_generation(&clock, &cfg);
    let _s2 = sync(&mut g, &m2, 2, &[], clock.at(0));
    let _s1 = sync(&mut g, &m1, 2, &[(&m1, b"x"), (&m2, b"y")], clock.at(0));
    g.persisted(None, clock.at(0));
    // m1 keeps heartbeating; m2 goes silent.
    for t in (3_000..=12_000).step_by(3_000) {
        assert_eq!(g.heartbeat(&m1, None, 2, clock.at(t)), 0);
        g.tick(clock.at(t));
    }
    assert_eq!(g.state(), State::PreparingRebalance, "m2 expired at 10 s");
    assert_eq!(
        g.heartbeat(&m2, None, 2, clock.at(12_500)),
        code(ResponseError::UnknownMemberId)
    );
    let mut rx1 = waiting(g.join(params(&m1, None, RANGE), clock.at(13_000), &cfg));
    let j = ready(&mut rx1);
    assert_eq!((j.generation, j.members.len()), (3, 1));
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, m1) = stable_single(&clock, &cfg);
    let (m2, mut rx2) = join_new(&mut g, clock.at(0), &cfg);
    // m1 heartbeats (so its session lives) but never rejoins.
    let mut t = 0;
    while rx2.try_recv().is_err() {
        t += 1_000;
        assert!(
            t <= REBALANCE_MS as u64 + 1_000,
            "rebalance never completed"
        );
        g.heartbeat(&m1, None, 1, clock.at(t));
        g.tick(clock.at(t));
    }
    assert!(t >= REBALANCE_MS as u64);
    assert_eq!(
        g.heartbeat(&m1, None, 1, clock.at(t)),
        code(ResponseError::UnknownMemberId)
    );
    let view = g.view();
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.members[0].member_id, m2);
}

#[test]
fn the_initial_delay_waits_for_more_members_then_caps_at_the_rebalance_timeout() {
    let clock = Clock::new();
    let cfg = config(3_000);
    let mut g = Group::new(clock.at(0), &cfg);
    let (_m1, mut rx1) = join_new(&mut g, clock.at(0), &cfg);
    g.tick(clock.at(2_000));
    let (_m2, mut rx2) = join_new(&mut g, clock.at(2_500), &cfg);
    g.tick(clock.at(3_000));
    assert!(
        rx1.try_recv().is_err(),
        "a member arrived during the delay: wait again"
    );
    g.tick(clock.at(5_999));
    assert!(rx1.try_recv().is_err());
    g.tick(clock.at(6_000));
    let (j1, j2) = (ready(&mut rx1), ready(&mut rx2));
    assert_eq!((j1.generation, j2.generation), (1, 1));
    assert_eq!(j1.members.len() + j2.members.len(), 2);
}

#[test]
fn a_static_member_that_comes_back_keeps_its_assignment_without_a_rebalance() {
    let clock = Clock::new();
    let cfg = config(0);
    let mut g = Group::new(clock.at(0), &cfg);
    let mut rx = waiting(g.join(params("", Some("ward-7"), RANGE), clock.at(0), &cfg));
    let j = ready(&mut rx);
    let old = j.member_id.clone();
    assert!(old.starts_with("ward-7-"), "{old}");
    let _s = sync(&mut g, &old, 1, &[(&old, b"mine")], clock.at(0));
    g.persisted(None, clock.at(0));
    // The process restarts: a new JoinGroup with the same instance id and no member id.
    let mut rx = waiting(g.join(params("", Some("ward-7"), RANGE), clock.at(1_000), &cfg));
    assert!(
        g.take_persist(),
        "the new member id is written before the answer"
    );
    g.persisted(None, clock.at(1_000));
    let j = ready(&mut rx);
    assert_eq!(
        (j.error, j.generation),
        (0, 1),
        "same generation: no rebalance"
    );
    assert!(j.skip_assignment, "the leader must not reassign");
    assert_ne!(j.member_id, old);
    assert_eq!(g.state(), State::Stable);
    let s = now_result(g.sync(
        SyncParams {
            member_id: j.member_id.clone(),
            instance_id: Some("ward-7".into()),
            generation: 1,
            protocol_type: None,
            protocol: None,
            assignments: vec![],
        },
        clock.at(1_100),
    ));
    assert_eq!(s.assignment, Bytes::from_static(b"mine"));
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&old, Some("ward-7"), 1, clock.at(1_200)),
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(
        g.validate_commit(&old, Some("ward-7"), 1, clock.at(1_200)),
        Err(code(ResponseError::FencedInstanceId))
    );
    assert_eq!(
        g.leave(&old, Some("ward-7"), clock.at(1_300)),
        code(ResponseError::FencedInstanceId)
    );
    // An admin removes it by instance id alone.
    assert_eq!(g.leave("", Some("ward-7"), clock.at(1_400)), 0);
    assert_eq!(g.state(), State::Empty);
}

#[test]
fn commits_are_checked_against_membership_and_generation() {
    let clock = Clock::new();
    let cfg = config(0);
    let mut simple = Group::new(clock.at(0), &cfg);
    assert_eq!(
        simple.validate_commit("", None, -1, clock.at(0)),
        Ok(()),
        "simple group"
    );
    let (mut g, m1) = stable_single(&clock, &cfg);
    assert_eq!(g.validate_commit(&m1, None, 1, clock.at(0)), Ok(()));
    assert_eq!(
        g.validate_commit(&m1, None, 0, clock.at(0)),
        Err(code(ResponseError::IllegalGeneration))
    );
    assert_eq!(
        g.validate_commit("stranger", None, 1, clock.at(0)),
        Err(code(ResponseError::UnknownMemberId))
    );
    assert_eq!(
        g.validate_commit("", None, -1, clock.at(0)),
        Err(code(ResponseError::UnknownMemberId)),
        "an active group refuses generation-less commits"
    );
    // A new member arrives and the generation completes, but nobody has synced yet.
    let (mut g, _m1, m2) = second_generation(&clock, &cfg);
    assert_eq!(
        g.validate_commit(&m2, None, 2, clock.at(0)),
        Err(code(ResponseError::RebalanceInProgress))
    );
}

#[test]
fn joins_with_bad_parameters_are_refused_with_kafkas_codes() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, _m1) = stable_single(&clock, &cfg);
    let mut p = params("", None, RANGE);
    p.session_timeout_ms = 10;
    assert_eq!(
        now_result(g.join(p, clock.at(0), &cfg)).error,
        code(ResponseError::InvalidSessionTimeout)
    );
    let p = params("", None, &[("roundrobin", b"")]);
    assert_eq!(
        now_result(g.join(p, clock.at(0), &cfg)).error,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let mut p = params("", None, RANGE);
    p.protocol_type = "connect".into();
    assert_eq!(
        now_result(g.join(p, clock.at(0), &cfg)).error,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let p = params("nobody", None, RANGE);
    assert_eq!(
        now_result(g.join(p, clock.at(0), &cfg)).error,
        code(ResponseError::UnknownMemberId)
    );
    let small = GroupConfig {
        max_size: 1,
        ..config(0)
    };
    assert_eq!(
        now_result(g.join(params("", None, RANGE), clock.at(0), &small)).error,
        code(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn the_most_voted_common_protocol_wins() {
    let clock = Clock::new();
    let cfg = config(0);
    let mut g = Group::new(clock.at(0), &cfg);
    let both: &[(&str, &[u8])] = &[("cooperative-sticky", b"c"), ("range", b"r")];
    let (m1, mut rx1) = join_new(&mut g, clock.at(0), &cfg);
    ready(&mut rx1);
    let _ = m1;
    let first = now_result(g.join(params("", None, both), clock.at(0), &cfg));
    let mut rx2 = waiting(g.join(params(&first.member_id, None, both), clock.at(0), &cfg));
    let mut rx1 = waiting(g.join(params(&m1, None, RANGE), clock.at(0), &cfg));
    let (j1, j2) = (ready(&mut rx1), ready(&mut rx2));
    // Only range is common to both.
    assert_eq!(j1.protocol.as_deref(), Some("range"));
    assert_eq!(j2.protocol.as_deref(), Some("range"));
    let meta: Vec<_> = j1.members.iter().map(|(_, _, m)| m.clone()).collect();
    assert!(
        meta.contains(&Bytes::from_static(b"r")),
        "metadata of the chosen protocol"
    );
}

#[test]
fn a_failed_write_fails_the_sync_and_the_group_rebalances() {
    let clock = Clock::new();
    let cfg = config(0);
    let mut g = Group::new(clock.at(0), &cfg);
    let (m1, mut rx) = join_new(&mut g, clock.at(0), &cfg);
    ready(&mut rx);
    let mut s = waiting(sync(&mut g, &m1, 1, &[(&m1, b"a")], clock.at(0)));
    assert!(g.take_persist());
    g.persisted(Some(code(ResponseError::NotCoordinator)), clock.at(0));
    assert_eq!(ready(&mut s).error, code(ResponseError::NotCoordinator));
    assert_eq!(g.state(), State::PreparingRebalance);
}

#[test]
fn a_follower_that_never_syncs_is_removed_at_the_rebalance_timeout() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, m1, m2) = second_generation(&clock, &cfg);
    let _s1 = sync(&mut g, &m1, 2, &[], clock.at(0));
    g.persisted(None, clock.at(0));
    assert_eq!(g.state(), State::Stable);
    let mut t = 0;
    while g.state() == State::Stable {
        t += 1_000;
        assert!(t <= REBALANCE_MS as u64, "the follower was never removed");
        // Both stay alive; only m2 never sends its SyncGroup.
        g.heartbeat(&m1, None, 2, clock.at(t));
        g.heartbeat(&m2, None, 2, clock.at(t));
        g.tick(clock.at(t));
    }
    assert_eq!(t, REBALANCE_MS as u64);
    assert_eq!(g.view().members.len(), 1);
}

#[test]
fn the_record_restores_a_stable_group() {
    let clock = Clock::new();
    let cfg = config(0);
    let (g, m1) = stable_single(&clock, &cfg);
    let mut restored = Group::from_record(g.record(), clock.at(5_000), &cfg);
    assert_eq!(restored.state(), State::Stable);
    assert_eq!(restored.generation(), 1);
    assert_eq!(restored.heartbeat(&m1, None, 1, clock.at(5_001)), 0);
    let s = now_result(sync(&mut restored, &m1, 1, &[], clock.at(5_002)));
    assert_eq!(s.assignment, Bytes::from_static(b"a1"));
    // Nobody comes back: the session expires and the group empties.
    restored.tick(clock.at(5_002 + SESSION_MS as u64));
    assert_eq!(restored.state(), State::Empty);
    assert!(restored.take_persist(), "the empty group is written");
    assert_eq!(restored.record().generation, 2);
}

#[test]
fn leaving_members_trigger_a_rebalance_and_the_last_one_empties_the_group() {
    let clock = Clock::new();
    let cfg = config(0);
    let (mut g, m1) = stable_single(&clock, &cfg);
    assert_eq!(
        g.leave("nobody", None, clock.at(0)),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(g.leave(&m1, None, clock.at(0)), 0);
    assert_eq!(g.state(), State::Empty);
    assert!(g.is_idle());
    assert_eq!(g.generation(), 2);
}

#[test]
fn any_protocol_type_works_with_opaque_metadata() {
    // Schema registries elect their leader through a group of protocol type `sr`.
    let clock = Clock::new();
    let cfg = config(0);
    let mut g = Group::new(clock.at(0), &cfg);
    let sr = |member: &str, meta: &'static [u8]| JoinParams {
        protocol_type: "sr".into(),
        protocols: vec![("v0".into(), Bytes::from_static(meta))],
        ..params(member, None, &[])
    };
    let first = now_result(g.join(sr("", b"\x00\x01host-a:8081"), clock.at(0), &cfg));
    let mut rx = waiting(g.join(
        sr(&first.member_id, b"\x00\x01host-a:8081"),
        clock.at(0),
        &cfg,
    ));
    let j = ready(&mut rx);
    assert_eq!(j.protocol_type.as_deref(), Some("sr"));
    assert_eq!(j.members[0].2, Bytes::from_static(b"\x00\x01host-a:8081"));
    assert_eq!(g.view().protocol_type, "sr");
    // A member of another protocol type cannot join.
    assert_eq!(
        now_result(g.join(params("", None, RANGE), clock.at(0), &cfg)).error,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(g.subscribed_topics(), None, "not a consumer-protocol group");
}

#[test]
fn member_ids_handed_out_and_never_used_are_bounded() {
    let clock = Clock::new();
    let cfg = config(0);
    let mut g = Group::new(clock.at(0), &cfg);
    for _ in 0..crate::limits::PENDING_MEMBERS_PER_GROUP_MAX {
        let r = now_result(g.join(params("", None, RANGE), clock.at(0), &cfg));
        assert_eq!(r.error, code(ResponseError::MemberIdRequired));
    }
    let r = now_result(g.join(params("", None, RANGE), clock.at(0), &cfg));
    assert_eq!(r.error, code(ResponseError::GroupMaxSizeReached));
    // They expire with the session timeout they asked for.
    g.tick(clock.at(SESSION_MS as u64));
    let r = now_result(g.join(params("", None, RANGE), clock.at(SESSION_MS as u64), &cfg));
    assert_eq!(r.error, code(ResponseError::MemberIdRequired));
}
