//! One consumer group of the next-generation protocol (KIP-848): ConsumerGroupHeartbeat
//! with server-side assignment. A pure state machine over an injected clock, as
//! `classic.rs`.
//!
//! The group has an epoch that grows whenever membership, a subscription or the
//! subscribed topics' partitions change; the target assignment is recomputed (by the
//! `uniform` or `range` assignor) when it lags the group epoch. Each member then moves
//! toward its target on its own heartbeats, as Kafka's `CurrentAssignmentBuilder` does: it
//! first gives up the partitions it must lose (keeping its epoch), and only once the
//! client reports them released does it take the new epoch and the partitions no other
//! member still holds. So a partition is never owned by two members at once.
//!
//! Every change of membership, epochs or assignments marks the group dirty; the
//! coordinator then writes a [`Snapshot`] of it to `__consumer_offsets` (fsynced) before
//! the heartbeat is answered, and restores the groups from their last snapshots on
//! start, with fresh sessions, so members carry on with their ids, epochs and partitions
//! and no partition changes hands across a restart until its owner has released it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::classic::Now;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Every topic the broker has: name → (id, partition count).
pub type Topics = BTreeMap<String, (Uuid, u32)>;

/// Settings of consumer groups (Kafka's `group.consumer.*` broker keys).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.assignors`, the first being the default.
    pub assignors: Vec<String>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignors: vec!["uniform".into(), "range".into()],
            max_size: i32::MAX as usize,
        }
    }
}

/// A ConsumerGroupHeartbeat, as the state machine needs it. `None` fields are
/// "unchanged since the last heartbeat".
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// Member id (v1: chosen by the client; v0: empty on the first heartbeat).
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves temporarily (static), else the member's epoch.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 if unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regex (RE2/J syntax, full match).
    pub subscribed_topic_regex: Option<String>,
    /// Server-side assignor asked for.
    pub server_assignor: Option<String>,
    /// The partitions the client owns.
    pub owned: Option<Assignment>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatResult {
    /// Member id.
    pub member_id: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed.
    pub assignment: Option<Assignment>,
}

/// A refused heartbeat: Kafka's code and a message.
pub type Refusal = (i16, String);

fn refuse(e: ResponseError, message: impl Into<String>) -> Refusal {
    (e.code(), message.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum MemberState {
    /// Owns what its epoch's target gives it.
    Stable,
    /// Must release `revoking` before it moves on.
    UnrevokedPartitions,
    /// Waits for partitions other members still hold.
    UnreleasedPartitions,
}

/// One member, as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Instance id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Epoch.
    pub member_epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topics.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex.
    pub subscribed_topic_regex: Option<String>,
    /// Current assignment.
    pub assignment: Assignment,
    /// Target assignment.
    pub target: Assignment,
}

/// A consumer group, as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// Kafka's state name.
    pub state: &'static str,
    /// Group epoch.
    pub epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// The assignor in use.
    pub assignor: String,
    /// Members.
    pub members: Vec<MemberView>,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed: Vec<String>,
    regex: Option<String>,
    /// `regex`, compiled once, anchored at both ends.
    matcher: Option<regex::Regex>,
    assignor: Option<String>,
    rebalance_timeout_ms: i32,
    epoch: i32,
    previous_epoch: i32,
    state: MemberState,
    assigned: Assignment,
    revoking: Assignment,
    /// The client has not been sent `assigned` yet.
    changed: bool,
    /// A static member that left with epoch -2 and may come back.
    away: bool,
    deadline: Instant,
    revoke_deadline: Option<Instant>,
}

/// One consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    instances: HashMap<String, String>,
    target: HashMap<String, Assignment>,
    /// The subscribed topics as of the last target assignment.
    subscribed_metadata: Topics,
    assignor: String,
    /// Changed since the last snapshot was taken.
    dirty: bool,
}

/// Partitions by topic id, as a snapshot stores them (the id as text).
type StoredAssignment = Vec<(String, Vec<i32>)>;

fn store_assignment(a: &Assignment) -> StoredAssignment {
    a.iter()
        .map(|(t, ps)| (t.to_string(), ps.iter().copied().collect()))
        .collect()
}

fn load_assignment(a: StoredAssignment) -> Assignment {
    a.into_iter()
        .filter_map(|(t, ps)| Some((t.parse().ok()?, ps.into_iter().collect())))
        .collect()
}

/// A consumer group's durable state: Medulla's own record in `__consumer_offsets` (JSON,
/// under a key version Kafka does not use), where Kafka writes several record kinds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    epoch: i32,
    assignment_epoch: i32,
    assignor: String,
    subscribed_metadata: Vec<(String, String, u32)>,
    members: Vec<MemberSnapshot>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct MemberSnapshot {
    id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed: Vec<String>,
    regex: Option<String>,
    assignor: Option<String>,
    rebalance_timeout_ms: i32,
    epoch: i32,
    previous_epoch: i32,
    state: MemberState,
    assigned: StoredAssignment,
    revoking: StoredAssignment,
    target: StoredAssignment,
    away: bool,
}

fn union(a: &mut Assignment, b: &Assignment) {
    for (t, ps) in b {
        a.entry(*t).or_default().extend(ps);
    }
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(other) => ps.difference(other).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    minus(a, &minus(a, b))
}

fn is_empty(a: &Assignment) -> bool {
    a.values().all(BTreeSet::is_empty)
}

/// `regex` compiled to match whole topic names only (Kafka's RE2/J `matches`).
fn full_matcher(regex: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{regex})$")).ok()
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(config: &ConsumerConfig) -> ConsumerGroup {
        ConsumerGroup {
            epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            instances: HashMap::new(),
            target: HashMap::new(),
            subscribed_metadata: Topics::new(),
            assignor: config
                .assignors
                .first()
                .cloned()
                .unwrap_or_else(|| "uniform".into()),
            dirty: false,
        }
    }

    /// Asks for a snapshot at the next opportunity (the last write failed).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Whether the group changed since the last call (and a snapshot is due).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The group's durable state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.clone(),
            subscribed_metadata: self
                .subscribed_metadata
                .iter()
                .map(|(n, (id, p))| (n.clone(), id.to_string(), *p))
                .collect(),
            members: self
                .members
                .values()
                .map(|m| MemberSnapshot {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed: m.subscribed.clone(),
                    regex: m.regex.clone(),
                    assignor: m.assignor.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    epoch: m.epoch,
                    previous_epoch: m.previous_epoch,
                    state: m.state,
                    assigned: store_assignment(&m.assigned),
                    revoking: store_assignment(&m.revoking),
                    target: store_assignment(&self.target.get(&m.id).cloned().unwrap_or_default()),
                    away: m.away,
                })
                .collect(),
        }
    }

    /// A group as its last snapshot left it. Members get a fresh session (those that do
    /// not come back expire) and are sent their assignment again on their next heartbeat.
    pub fn restore(snapshot: Snapshot, now: Now, config: &ConsumerConfig) -> ConsumerGroup {
        let mut g = ConsumerGroup::new(config);
        g.epoch = snapshot.epoch;
        g.assignment_epoch = snapshot.assignment_epoch;
        g.assignor = snapshot.assignor;
        g.subscribed_metadata = snapshot
            .subscribed_metadata
            .into_iter()
            .filter_map(|(n, id, p)| Some((n, (id.parse().ok()?, p))))
            .collect();
        let session = std::time::Duration::from_millis(config.session_timeout_ms.max(0) as u64);
        for m in snapshot.members {
            if let Some(i) = &m.instance_id {
                g.instances.insert(i.clone(), m.id.clone());
            }
            g.target.insert(m.id.clone(), load_assignment(m.target));
            let revoke_deadline = (m.state == MemberState::UnrevokedPartitions).then(|| {
                now.mono + std::time::Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64)
            });
            g.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    instance_id: m.instance_id,
                    rack_id: m.rack_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    subscribed: m.subscribed,
                    matcher: m.regex.as_deref().and_then(full_matcher),
                    regex: m.regex,
                    assignor: m.assignor,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    epoch: m.epoch,
                    previous_epoch: m.previous_epoch,
                    state: m.state,
                    assigned: load_assignment(m.assigned),
                    revoking: load_assignment(m.revoking),
                    changed: true,
                    away: m.away,
                    deadline: now.mono + session,
                    revoke_deadline,
                },
            );
        }
        g
    }

    fn bump(&mut self) {
        self.epoch += 1;
        self.dirty = true;
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's state name: Empty, Assigning, Reconciling or Stable.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The topics `m` subscribes to, by name or regex, that exist.
    fn member_topics<'a>(m: &Member, topics: &'a Topics) -> Vec<&'a str> {
        topics
            .keys()
            .filter(|t| {
                m.subscribed.iter().any(|s| s == *t)
                    || m.matcher
                        .as_ref()
                        .is_some_and(|r| !t.starts_with("__") && r.is_match(t))
            })
            .map(String::as_str)
            .collect()
    }

    /// One heartbeat.
    pub fn heartbeat(
        &mut self,
        mut hb: Heartbeat,
        topics: &Topics,
        now: Now,
        config: &ConsumerConfig,
    ) -> Result<HeartbeatResult, Refusal> {
        if hb.member_id.is_empty() && hb.member_epoch == 0 {
            // v0: the coordinator names the member.
            hb.member_id = Uuid::new_v4().to_string();
        }
        if hb.member_id.is_empty() {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "MemberId can't be empty.",
            ));
        }
        if let Some(a) = &hb.server_assignor
            && !config.assignors.contains(a)
        {
            return Err(refuse(
                ResponseError::UnsupportedAssignor,
                format!("ServerAssignor {a} is not supported"),
            ));
        }
        if let Some(r) = &hb.subscribed_topic_regex
            && full_matcher(r).is_none()
        {
            return Err(refuse(
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex {r} is not a valid regular expression"),
            ));
        }
        match hb.member_epoch {
            -1 => return self.leave(&hb, config),
            -2 => return self.leave_temporarily(&hb, config),
            0 => self.join(&hb, now, config)?,
            epoch if epoch > 0 => self.check_epoch(&hb, epoch)?,
            epoch => {
                return Err(refuse(
                    ResponseError::InvalidRequest,
                    format!("MemberEpoch {epoch} is invalid"),
                ));
            }
        }
        let id = hb.member_id.clone();
        let Some(m) = self.members.get_mut(&id) else {
            return Err(refuse(ResponseError::UnknownMemberId, "unknown member"));
        };
        let session = config.session_timeout_ms;
        m.deadline = now.mono + std::time::Duration::from_millis(session.max(0) as u64);
        m.client_id = hb.client_id;
        m.client_host = hb.client_host;
        if let Some(r) = hb.rack_id {
            m.rack_id = Some(r);
        }
        if hb.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        let mut bump = false;
        if let Some(names) = hb.subscribed_topic_names {
            let mut names = names;
            names.sort();
            names.dedup();
            bump |= names != m.subscribed;
            m.subscribed = names;
        }
        if hb.subscribed_topic_regex.is_some() && hb.subscribed_topic_regex != m.regex {
            m.matcher = hb.subscribed_topic_regex.as_deref().and_then(full_matcher);
            m.regex = hb.subscribed_topic_regex;
            bump = true;
        }
        if hb.server_assignor.is_some() && hb.server_assignor != m.assignor {
            m.assignor = hb.server_assignor;
            bump = true;
        }
        if bump {
            self.bump();
        }
        self.refresh_metadata(topics);
        if self.assignment_epoch < self.epoch {
            self.assign(topics);
        }
        self.reconcile(&id, hb.owned.as_ref(), now);
        let join = hb.member_epoch == 0;
        let m = self.members.get_mut(&id).expect("reconciled member exists");
        let assignment = (m.changed || join).then(|| m.assigned.clone());
        m.changed = false;
        Ok(HeartbeatResult {
            member_id: id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment,
        })
    }

    fn join(&mut self, hb: &Heartbeat, now: Now, config: &ConsumerConfig) -> Result<(), Refusal> {
        if hb.subscribed_topic_names.is_none() && hb.subscribed_topic_regex.is_none() {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            ));
        }
        if hb.owned.as_ref().is_some_and(|o| !is_empty(o)) {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "TopicPartitions must be empty when (re-)joining.",
            ));
        }
        if let Some(instance) = &hb.instance_id
            && let Some(old_id) = self.instances.get(instance).cloned()
        {
            let old = self.members.get(&old_id);
            if old.is_some_and(|m| !m.away) && old_id != hb.member_id {
                return Err(refuse(
                    ResponseError::UnreleasedInstanceId,
                    format!("Static member {instance} is still active under member id {old_id}"),
                ));
            }
            if let Some(mut m) = self.members.remove(&old_id) {
                // KIP-848 static membership: the returning instance takes over the old
                // member's epoch and assignment; no rebalance.
                m.id = hb.member_id.clone();
                m.away = false;
                m.changed = true;
                self.dirty = true;
                if let Some(t) = self.target.remove(&old_id) {
                    self.target.insert(m.id.clone(), t);
                }
                self.instances.insert(instance.clone(), m.id.clone());
                self.members.insert(m.id.clone(), m);
                return Ok(());
            }
        }
        if let Some(old) = self.members.remove(&hb.member_id) {
            // A member that lost its epoch rejoins: it starts over, and what it held
            // is free for the others.
            self.target.remove(&old.id);
            self.bump();
        }
        if self.members.len() >= config.max_size {
            return Err(refuse(
                ResponseError::GroupMaxSizeReached,
                "the group is full",
            ));
        }
        if let Some(instance) = &hb.instance_id {
            self.instances
                .insert(instance.clone(), hb.member_id.clone());
        }
        self.members.insert(
            hb.member_id.clone(),
            Member {
                id: hb.member_id.clone(),
                instance_id: hb.instance_id.clone(),
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed: Vec::new(),
                regex: None,
                matcher: None,
                assignor: None,
                rebalance_timeout_ms: hb.rebalance_timeout_ms.max(0),
                epoch: 0,
                previous_epoch: -1,
                state: MemberState::Stable,
                assigned: Assignment::new(),
                revoking: Assignment::new(),
                changed: true,
                away: false,
                deadline: now.mono,
                revoke_deadline: None,
            },
        );
        self.bump();
        Ok(())
    }

    fn check_epoch(&self, hb: &Heartbeat, epoch: i32) -> Result<(), Refusal> {
        let Some(m) = self.members.get(&hb.member_id) else {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("member {} is not in the group", hb.member_id),
            ));
        };
        if let Some(instance) = &hb.instance_id
            && self.instances.get(instance) != Some(&hb.member_id)
        {
            return Err(refuse(
                ResponseError::FencedInstanceId,
                format!("instance {instance} belongs to another member"),
            ));
        }
        // Kafka also accepts the previous epoch from a member that has not yet seen its
        // new one, provided it owns nothing it should not.
        let owned_ok = hb
            .owned
            .as_ref()
            .is_none_or(|o| is_empty(&minus(o, &m.assigned)));
        if epoch == m.epoch || (epoch == m.previous_epoch && owned_ok) {
            Ok(())
        } else {
            Err(refuse(
                ResponseError::FencedMemberEpoch,
                format!(
                    "the member epoch {epoch} is fenced; the current epoch is {}",
                    m.epoch
                ),
            ))
        }
    }

    fn leave(
        &mut self,
        hb: &Heartbeat,
        config: &ConsumerConfig,
    ) -> Result<HeartbeatResult, Refusal> {
        let id = match &hb.instance_id {
            Some(instance) => self.instances.get(instance).cloned(),
            None => Some(hb.member_id.clone()),
        };
        match id.filter(|id| self.members.contains_key(id)) {
            Some(id) => self.remove(&id),
            None => {
                return Err(refuse(
                    ResponseError::UnknownMemberId,
                    format!("member {} is not in the group", hb.member_id),
                ));
            }
        }
        Ok(HeartbeatResult {
            member_id: hb.member_id.clone(),
            member_epoch: -1,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: None,
        })
    }

    fn leave_temporarily(
        &mut self,
        hb: &Heartbeat,
        config: &ConsumerConfig,
    ) -> Result<HeartbeatResult, Refusal> {
        let Some(instance) = &hb.instance_id else {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "MemberEpoch -2 is only for static members",
            ));
        };
        match self
            .instances
            .get(instance)
            .and_then(|id| self.members.get_mut(id))
        {
            // Its partitions stay with it until its session expires.
            Some(m) => {
                m.away = true;
                self.dirty = true;
            }
            None => {
                return Err(refuse(
                    ResponseError::UnknownMemberId,
                    format!("static member {instance} is not in the group"),
                ));
            }
        }
        Ok(HeartbeatResult {
            member_id: hb.member_id.clone(),
            member_epoch: -2,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: None,
        })
    }

    fn remove(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id)
            && let Some(i) = &m.instance_id
            && self.instances.get(i).map(String::as_str) == Some(id)
        {
            self.instances.remove(i);
        }
        self.target.remove(id);
        self.bump();
    }

    /// Bumps the group epoch when a subscribed topic appeared, vanished or grew.
    fn refresh_metadata(&mut self, topics: &Topics) {
        let mut subscribed = Topics::new();
        for m in self.members.values() {
            for t in Self::member_topics(m, topics) {
                subscribed.insert(t.to_owned(), topics[t]);
            }
        }
        if subscribed != self.subscribed_metadata {
            self.subscribed_metadata = subscribed;
            self.bump();
        }
    }

    /// Computes the target assignment for the current group epoch.
    fn assign(&mut self, topics: &Topics) {
        let assignor = self
            .members
            .values()
            .find_map(|m| m.assignor.clone())
            .unwrap_or_else(|| self.assignor.clone());
        let subscriptions: BTreeMap<String, Vec<String>> = self
            .members
            .values()
            .map(|m| {
                let ts = Self::member_topics(m, topics)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                (m.id.clone(), ts)
            })
            .collect();
        let target = if assignor == "range" {
            assign_range(&subscriptions, topics)
        } else {
            assign_uniform(&subscriptions, topics, &self.target)
        };
        self.assignor = assignor;
        self.target = target;
        self.assignment_epoch = self.epoch;
        self.dirty = true;
    }

    /// Partitions held (assigned or being revoked) by members other than `id`.
    fn held_by_others(&self, id: &str) -> Assignment {
        let mut held = Assignment::new();
        for m in self.members.values().filter(|m| m.id != id) {
            union(&mut held, &m.assigned);
            union(&mut held, &m.revoking);
        }
        held
    }

    /// Moves one member toward its target (Kafka's CurrentAssignmentBuilder); marks the
    /// group dirty if the member's state, epoch or partitions moved.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Now) {
        let before = self
            .members
            .get(id)
            .map(|m| (m.epoch, m.state, m.assigned.clone(), m.revoking.clone()));
        self.reconcile_step(id, owned, now);
        let after = self
            .members
            .get(id)
            .map(|m| (m.epoch, m.state, m.assigned.clone(), m.revoking.clone()));
        if before != after {
            self.dirty = true;
        }
    }

    fn reconcile_step(&mut self, id: &str, owned: Option<&Assignment>, now: Now) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held = self.held_by_others(id);
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if m.state == MemberState::UnrevokedPartitions {
            let released = owned.is_some_and(|o| is_empty(&intersect(o, &m.revoking)));
            if !released {
                return;
            }
            m.revoking.clear();
            m.revoke_deadline = None;
            m.state = MemberState::Stable;
        }
        if m.epoch == assignment_epoch && m.state == MemberState::Stable {
            return;
        }
        let revoke = minus(&m.assigned, &target);
        if !is_empty(&revoke) {
            m.assigned = intersect(&m.assigned, &target);
            m.revoking = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_deadline = Some(
                now.mono + std::time::Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
            );
            m.changed = true;
            return;
        }
        let wanted = minus(&target, &m.assigned);
        let free = minus(&wanted, &held);
        let unreleased = intersect(&wanted, &held);
        if !is_empty(&free) {
            union(&mut m.assigned, &free);
            m.changed = true;
        }
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
            m.changed = true;
        }
        m.state = if is_empty(&unreleased) {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }

    /// Expires sessions and revocations that took longer than the rebalance timeout.
    pub fn tick(&mut self, now: Now) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.deadline <= now.mono || m.revoke_deadline.is_some_and(|d| d <= now.mono))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(member = %id, "consumer group member expired");
            self.remove(&id);
        }
    }

    /// Kafka's offset-commit check for a consumer group: the member must exist with this
    /// epoch; an empty group takes commits without a member (admin tools).
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> Result<(), i16> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        if epoch != m.epoch {
            return Err(ResponseError::StaleMemberEpoch.code());
        }
        Ok(())
    }

    /// The topics subscribed by any member (OffsetDelete refuses those).
    pub fn subscribed_topics(&self) -> std::collections::HashSet<String> {
        self.subscribed_metadata.keys().cloned().collect()
    }

    /// ConsumerGroupDescribe's view.
    pub fn view(&self) -> GroupView {
        GroupView {
            state: self.state(),
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberView {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.clone(),
                    subscribed_topic_regex: m.regex.clone(),
                    assignment: m.assigned.clone(),
                    target: self.target.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The members subscribed to `topic`, in member-id order.
fn subscribers<'a>(
    subscriptions: &'a BTreeMap<String, Vec<String>>,
    topic: &str,
) -> Vec<&'a String> {
    subscriptions
        .iter()
        .filter(|(_, ts)| ts.iter().any(|t| t == topic))
        .map(|(m, _)| m)
        .collect()
}

/// Kafka's range assignor: per topic, the members subscribed to it in id order each take
/// a contiguous range, the first ones one partition more.
fn assign_range(
    subscriptions: &BTreeMap<String, Vec<String>>,
    topics: &Topics,
) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, (id, partitions)) in topics {
        let members = subscribers(subscriptions, topic);
        if members.is_empty() {
            continue;
        }
        let n = members.len() as u32;
        let (each, extra) = (partitions / n, partitions % n);
        let mut next = 0u32;
        for (i, m) in members.into_iter().enumerate() {
            let count = each + u32::from((i as u32) < extra);
            let set: BTreeSet<i32> = (next..next + count).map(|p| p as i32).collect();
            next += count;
            if !set.is_empty() {
                out.entry(m.clone()).or_default().insert(*id, set);
            }
        }
    }
    out
}

/// A uniform, sticky assignor: partitions spread evenly over the members subscribed to
/// them; a partition stays with its previous owner while that owner is under its share.
fn assign_uniform(
    subscriptions: &BTreeMap<String, Vec<String>>,
    topics: &Topics,
    previous: &HashMap<String, Assignment>,
) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut load: BTreeMap<String, usize> = subscriptions.keys().map(|m| (m.clone(), 0)).collect();
    // Every (topic, partition) with the members that may take it.
    let mut all: Vec<(Uuid, i32, Vec<&String>)> = Vec::new();
    for (topic, (id, partitions)) in topics {
        let members = subscribers(subscriptions, topic);
        if !members.is_empty() {
            for p in 0..*partitions as i32 {
                all.push((*id, p, members.clone()));
            }
        }
    }
    // Kafka's quotas: every member gets `min` partitions, `extra` of them one more.
    let members = subscriptions.len().max(1);
    let (min, extra) = (all.len() / members, all.len() % members);
    let previous_owner = |topic: &Uuid, p: i32, candidates: &[&String]| -> Option<String> {
        candidates
            .iter()
            .find(|m| {
                previous
                    .get(**m)
                    .and_then(|a| a.get(topic))
                    .is_some_and(|ps| ps.contains(&p))
            })
            .map(|m| (*m).clone())
    };
    // Sticky passes: previous owners keep up to their quota, then up to one more while
    // the extra slots last.
    let mut extra = extra;
    let mut rest = all;
    for pass in 0..2 {
        let todo = std::mem::take(&mut rest);
        let mut next = Vec::new();
        for (topic, p, candidates) in todo {
            let keep = previous_owner(&topic, p, &candidates).filter(|m| {
                let l = load[m];
                l < min || (pass == 1 && l == min && extra > 0)
            });
            match keep {
                Some(m) => {
                    let l = load.get_mut(&m).expect("member has a load");
                    if *l == min {
                        extra -= 1;
                    }
                    *l += 1;
                    out.entry(m)
                        .or_default()
                        .entry(topic)
                        .or_default()
                        .insert(p);
                }
                None => next.push((topic, p, candidates)),
            }
        }
        rest = next;
    }
    // Then the least loaded candidate takes each remaining partition.
    for (topic, p, candidates) in rest {
        if let Some(m) = candidates
            .into_iter()
            .min_by_key(|m| (load[*m], (*m).clone()))
        {
            *load.get_mut(m).expect("member has a load") += 1;
            out.entry(m.clone())
                .or_default()
                .entry(topic)
                .or_default()
                .insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests;
