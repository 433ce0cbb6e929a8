//! The KIP-848 consumer group on a fake clock: assignment, reconciliation without double
//! ownership, fencing, static members, expiry.

use std::time::{Duration, Instant};

use super::*;

struct Clock(Instant);

impl Clock {
    fn at(&self, ms: u64) -> Now {
        Now {
            mono: self.0 + Duration::from_millis(ms),
            wall_ms: 1_700_000_000_000 + ms as i64,
        }
    }
}

fn topics(list: &[(&str, u32)]) -> Topics {
    list.iter()
        .enumerate()
        .map(|(i, (n, p))| ((*n).to_owned(), (Uuid::from_u128(i as u128 + 1), *p)))
        .collect()
}

fn join(member: &str, subscribed: &[&str]) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(subscribed.iter().map(|s| (*s).to_owned()).collect()),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Default::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..Default::default()
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// A client that does what the protocol tells it: adopts every assignment it receives.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn join(g: &mut ConsumerGroup, id: &str, t: &Topics, now: Now, cfg: &ConsumerConfig) -> Client {
        let r = g.heartbeat(join(id, &["t"]), t, now, cfg).unwrap();
        Client {
            id: id.into(),
            epoch: r.member_epoch,
            owned: r.assignment.unwrap(),
        }
    }

    fn beat(&mut self, g: &mut ConsumerGroup, t: &Topics, now: Now, cfg: &ConsumerConfig) {
        let r = g
            .heartbeat(beat(&self.id, self.epoch, &self.owned), t, now, cfg)
            .unwrap();
        self.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            self.owned = a;
        }
    }
}

/// No partition is owned by two clients.
fn exclusive(clients: &[&Client]) {
    let mut seen = Assignment::new();
    for c in clients {
        assert!(is_empty(&intersect(&seen, &c.owned)), "double ownership");
        union(&mut seen, &c.owned);
    }
}

#[test]
fn members_converge_to_a_balanced_assignment_without_double_ownership() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig::default();
    let t = topics(&[("t", 6)]);
    let mut g = ConsumerGroup::new(&cfg);
    let mut a = Client::join(&mut g, "a", &t, clock.at(0), &cfg);
    assert_eq!(count(&a.owned), 6);
    assert_eq!(g.state(), "Stable");
    let mut b = Client::join(&mut g, "b", &t, clock.at(1), &cfg);
    assert_eq!(count(&b.owned), 0, "b waits until a releases");
    exclusive(&[&a, &b]);
    for step in 0..4 {
        a.beat(&mut g, &t, clock.at(10 + step), &cfg);
        b.beat(&mut g, &t, clock.at(10 + step), &cfg);
        exclusive(&[&a, &b]);
    }
    assert_eq!((count(&a.owned), count(&b.owned)), (3, 3));
    assert_eq!(a.epoch, b.epoch);
    assert_eq!(g.state(), "Stable");
    let mut c = Client::join(&mut g, "c", &t, clock.at(20), &cfg);
    for step in 0..4 {
        for x in [&mut a, &mut b, &mut c] {
            x.beat(&mut g, &t, clock.at(30 + step), &cfg);
        }
        exclusive(&[&a, &b, &c]);
    }
    assert_eq!(
        (count(&a.owned), count(&b.owned), count(&c.owned)),
        (2, 2, 2)
    );
}

#[test]
fn a_stale_epoch_is_fenced_and_an_unknown_member_refused() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig::default();
    let t = topics(&[("t", 2)]);
    let mut g = ConsumerGroup::new(&cfg);
    let a = Client::join(&mut g, "a", &t, clock.at(0), &cfg);
    let err = g
        .heartbeat(beat("a", a.epoch + 5, &a.owned), &t, clock.at(1), &cfg)
        .unwrap_err();
    assert_eq!(err.0, ResponseError::FencedMemberEpoch.code());
    let err = g
        .heartbeat(beat("zz", 3, &Assignment::new()), &t, clock.at(1), &cfg)
        .unwrap_err();
    assert_eq!(err.0, ResponseError::UnknownMemberId.code());
    assert_eq!(g.validate_commit("a", a.epoch), Ok(()));
    assert_eq!(
        g.validate_commit("a", a.epoch - 1),
        Err(ResponseError::StaleMemberEpoch.code())
    );
    assert_eq!(
        g.validate_commit("zz", 1),
        Err(ResponseError::UnknownMemberId.code())
    );
    let mut bad = join("b", &["t"]);
    bad.server_assignor = Some("sticky-unknown".into());
    assert_eq!(
        g.heartbeat(bad, &t, clock.at(2), &cfg).unwrap_err().0,
        ResponseError::UnsupportedAssignor.code()
    );
}

#[test]
fn a_silent_member_expires_and_its_partitions_move() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig {
        session_timeout_ms: 1_000,
        ..ConsumerConfig::default()
    };
    let t = topics(&[("t", 4)]);
    let mut g = ConsumerGroup::new(&cfg);
    let mut a = Client::join(&mut g, "a", &t, clock.at(0), &cfg);
    let mut b = Client::join(&mut g, "b", &t, clock.at(0), &cfg);
    for step in 0..3 {
        a.beat(&mut g, &t, clock.at(100 + step), &cfg);
        b.beat(&mut g, &t, clock.at(100 + step), &cfg);
    }
    assert_eq!(count(&b.owned), 2);
    // b goes silent.
    a.beat(&mut g, &t, clock.at(900), &cfg);
    g.tick(clock.at(1_200));
    a.beat(&mut g, &t, clock.at(1_300), &cfg);
    assert_eq!(count(&a.owned), 4);
    assert_eq!(g.view().members.len(), 1);
}

#[test]
fn a_static_member_that_leaves_temporarily_comes_back_to_its_partitions() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig::default();
    let t = topics(&[("t", 4)]);
    let mut g = ConsumerGroup::new(&cfg);
    let mut hb = join("a1", &["t"]);
    hb.instance_id = Some("ward".into());
    let r = g.heartbeat(hb, &t, clock.at(0), &cfg).unwrap();
    let (epoch, owned) = (r.member_epoch, r.assignment.unwrap());
    let mut bye = beat("a1", -2, &owned);
    bye.instance_id = Some("ward".into());
    assert_eq!(
        g.heartbeat(bye, &t, clock.at(1), &cfg)
            .unwrap()
            .member_epoch,
        -2
    );
    let mut back = join("a2", &["t"]);
    back.instance_id = Some("ward".into());
    let r = g.heartbeat(back, &t, clock.at(2), &cfg).unwrap();
    assert_eq!(r.member_epoch, epoch, "same epoch: no rebalance");
    assert_eq!(r.assignment, Some(owned));
    // While it is active, another process with the same instance id is refused.
    let mut twin = join("a3", &["t"]);
    twin.instance_id = Some("ward".into());
    assert_eq!(
        g.heartbeat(twin, &t, clock.at(3), &cfg).unwrap_err().0,
        ResponseError::UnreleasedInstanceId.code()
    );
}

#[test]
fn new_partitions_and_regex_subscriptions_are_picked_up() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig::default();
    let mut t = topics(&[("adt-a01", 1), ("orders", 1)]);
    let mut g = ConsumerGroup::new(&cfg);
    let mut hb = join("a", &[]);
    hb.subscribed_topic_names = None;
    hb.subscribed_topic_regex = Some("adt-.*".into());
    let r = g.heartbeat(hb, &t, clock.at(0), &cfg).unwrap();
    assert_eq!(
        count(&r.assignment.clone().unwrap()),
        1,
        "only the matching topic"
    );
    let mut c = Client {
        id: "a".into(),
        epoch: r.member_epoch,
        owned: r.assignment.unwrap(),
    };
    t.insert("adt-a03".into(), (Uuid::from_u128(99), 2));
    c.beat(&mut g, &t, clock.at(10), &cfg);
    assert_eq!(count(&c.owned), 3, "a new matching topic is assigned");
    let mut bad = join("b", &[]);
    bad.subscribed_topic_regex = Some("(".into());
    assert_eq!(
        g.heartbeat(bad, &t, clock.at(11), &cfg).unwrap_err().0,
        ResponseError::InvalidRegularExpression.code()
    );
}

#[test]
fn range_splits_each_topic_into_contiguous_ranges() {
    let t = topics(&[("t", 5)]);
    let subs: BTreeMap<String, Vec<String>> = [("m1", "t"), ("m2", "t")]
        .iter()
        .map(|(m, t)| ((*m).to_owned(), vec![(*t).to_owned()]))
        .collect();
    let out = assign_range(&subs, &t);
    let id = t["t"].0;
    assert_eq!(out["m1"][&id], BTreeSet::from([0, 1, 2]));
    assert_eq!(out["m2"][&id], BTreeSet::from([3, 4]));
}

#[test]
fn uniform_keeps_partitions_where_they_were() {
    let t = topics(&[("t", 6)]);
    let id = t["t"].0;
    let subs = |ms: &[&str]| -> BTreeMap<String, Vec<String>> {
        ms.iter()
            .map(|m| ((*m).to_owned(), vec!["t".to_owned()]))
            .collect()
    };
    let first = assign_uniform(&subs(&["a", "b"]), &t, &HashMap::new());
    let second = assign_uniform(&subs(&["a", "b", "c"]), &t, &first);
    for m in ["a", "b", "c"] {
        assert_eq!(second[m][&id].len(), 2, "{m}");
    }
    for m in ["a", "b"] {
        assert!(second[m][&id].is_subset(&first[m][&id]), "{m} kept its own");
    }
}

#[test]
fn a_restored_snapshot_keeps_members_epochs_and_pending_revocations() {
    let clock = Clock(Instant::now());
    let cfg = ConsumerConfig::default();
    let t = topics(&[("t", 4)]);
    let mut g = ConsumerGroup::new(&cfg);
    let mut a = Client::join(&mut g, "a", &t, clock.at(0), &cfg);
    assert_eq!(count(&a.owned), 4);
    // b joins: a must give up two partitions, and has not yet said it did.
    let mut b = Client::join(&mut g, "b", &t, clock.at(1), &cfg);
    a.beat(&mut g, &t, clock.at(2), &cfg);
    assert_eq!(count(&a.owned), 2, "a was told to keep two");
    assert!(g.take_dirty(), "the changes ask for a snapshot");

    // The broker restarts from the snapshot (through its JSON form).
    let json = serde_json::to_vec(&g.snapshot()).unwrap();
    let mut g = ConsumerGroup::restore(serde_json::from_slice(&json).unwrap(), clock.at(10), &cfg);
    assert!(!g.take_dirty());
    // b heartbeats first: the two partitions a still holds are not given out yet.
    b.beat(&mut g, &t, clock.at(11), &cfg);
    assert_eq!(count(&b.owned), 0, "a has not released them");
    // a reports it released them; then b gets them, and nobody owned them twice.
    a.beat(&mut g, &t, clock.at(12), &cfg);
    b.beat(&mut g, &t, clock.at(13), &cfg);
    exclusive(&[&a, &b]);
    assert_eq!((count(&a.owned), count(&b.owned)), (2, 2));
    assert_eq!(a.epoch, b.epoch);
    assert_eq!(g.state(), "Stable");
}
