//! `Election` against Medulla's group coordinator over a real socket.

mod common;

use std::time::Duration;

use common::{Broker, wait_until};
use medulla_client::{ClientConfig, Election, GroupTimings, Identity, Leader};

const GROUP: &str = "schema-registry";

/// Short timings so rebalances are noticed within a fraction of a second
/// (Medulla's `group.min.session.timeout.ms` is Kafka's 6 s).
fn timings() -> GroupTimings {
    GroupTimings {
        session_timeout: Duration::from_secs(6),
        heartbeat_interval: Duration::from_millis(100),
        rebalance_timeout: Duration::from_secs(5),
        join_timeout: common::DEADLINE,
    }
}

fn identity(port: u16, leader_eligible: bool) -> Identity {
    Identity {
        host: "127.0.0.1".into(),
        port,
        scheme: "http".into(),
        leader_eligible,
    }
}

async fn join(cfg: &ClientConfig, me: Identity) -> Election {
    Election::join_with(cfg, GROUP, "sr", me, timings())
        .await
        .expect("join")
}

fn leads(me: &Identity) -> impl Fn(&Option<Leader>) -> bool + '_ {
    move |l| matches!(l, Some(l) if l.is_me && &l.identity == me)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_eligible_member_leads() {
    let broker = Broker::start().await;
    let me = identity(8081, true);
    let election = join(&broker.client(), me.clone()).await;
    // join returns after the first rebalance: the result is already there.
    let leader = election.leader().borrow().clone();
    assert_eq!(
        leader,
        Some(Leader {
            identity: me,
            is_me: true
        })
    );
    election.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_agree_on_one_leader_and_the_other_takes_over_when_it_leaves() {
    let broker = Broker::start().await;
    let cfg = broker.client();
    let (a_id, b_id) = (identity(8081, true), identity(8082, true));
    let a = join(&cfg, a_id.clone()).await;
    let b = join(&cfg, b_id.clone()).await;

    // Both settle on the smaller URL (a), each knowing whether it is the one.
    let mut a_rx = a.leader();
    let mut b_rx = b.leader();
    wait_until(&mut a_rx, "a to lead", leads(&a_id)).await;
    let seen_by_b = wait_until(&mut b_rx, "b to see a leader", |l| l.is_some()).await;
    assert_eq!(
        seen_by_b,
        Some(Leader {
            identity: a_id.clone(),
            is_me: false
        })
    );
    assert_eq!(
        a_rx.borrow().clone(),
        Some(Leader {
            identity: a_id,
            is_me: true
        }),
        "still agreeing once both have settled"
    );

    a.leave().await;
    wait_until(&mut b_rx, "b to take over after a left", leads(&b_id)).await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ineligible_member_never_leads() {
    let broker = Broker::start().await;
    let cfg = broker.client();
    // The ineligible member has the smaller URL: eligibility, not order, keeps it out.
    let (reader_id, writer_id) = (identity(8081, false), identity(8082, true));
    let reader = join(&cfg, reader_id).await;
    assert_eq!(*reader.leader().borrow(), None, "no eligible member yet");

    let writer = join(&cfg, writer_id.clone()).await;
    let mut writer_rx = writer.leader();
    let mut reader_rx = reader.leader();
    wait_until(
        &mut writer_rx,
        "the eligible member to lead",
        leads(&writer_id),
    )
    .await;
    let seen = wait_until(&mut reader_rx, "the reader to see the leader", |l| {
        l.is_some()
    })
    .await;
    assert_eq!(
        seen,
        Some(Leader {
            identity: writer_id,
            is_me: false
        })
    );

    writer.leave().await;
    wait_until(
        &mut reader_rx,
        "no leader after the only eligible member left",
        |l| l.is_none(),
    )
    .await;
    reader.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_without_a_reachable_broker_times_out_naming_the_group() {
    let mut broker = Broker::start().await;
    let cfg = broker.client();
    broker.stop().await;
    let join_timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = Election::join_with(
        &cfg,
        GROUP,
        "sr",
        identity(8081, true),
        GroupTimings {
            join_timeout,
            ..timings()
        },
    )
    .await
    .err()
    .expect("no broker");
    assert!(started.elapsed() < join_timeout + Duration::from_secs(2));
    let message = err.to_string();
    assert!(
        message.contains("timed out") && message.contains(GROUP),
        "{message}"
    );
}
