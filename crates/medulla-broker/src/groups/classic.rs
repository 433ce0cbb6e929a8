//! One classic consumer group (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), as
//! Apache Kafka's `ClassicGroup` behaves: a pure state machine over an injected clock, no
//! I/O. The coordinator (`coordinator.rs`) owns the locking, the persistence and the
//! timer that calls [`Group::tick`].
//!
//! States: `Empty` → `PreparingRebalance` (members (re)join; ends when every known member
//! has joined, or at the rebalance timeout, or after the initial delay for a group that
//! was empty) → `CompletingRebalance` (the generation is out; waiting for the leader's
//! SyncGroup with the assignment) → `Stable`. Any membership change in `Stable` or
//! `CompletingRebalance` starts a new rebalance. A member whose session expires is
//! removed; so is one that does not rejoin within the rebalance timeout, and one that
//! does not send SyncGroup within it (Kafka's pending-sync rule).
//!
//! Static members (KIP-345, `group.instance.id`) keep their identity across restarts:
//! a static member rejoining a `Stable` group with the same protocols takes over its
//! old member id's place and assignment without a rebalance, and the old id is fenced
//! (FENCED_INSTANCE_ID).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::store::{GroupRecord, MemberRecord};

/// Kafka's error codes, as `i16`.
fn code(e: ResponseError) -> i16 {
    e.code()
}

/// A group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No members.
    Empty,
    /// Members are (re)joining.
    PreparingRebalance,
    /// The generation is out; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl State {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// Coordinator settings that shape group behaviour (Kafka's `group.*` broker keys).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub session_timeout_min_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub session_timeout_max_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(3000),
            session_timeout_min_ms: 6000,
            session_timeout_max_ms: 1_800_000,
            max_size: i32::MAX as usize,
        }
    }
}

/// The current time, monotonic (deadlines) and wall-clock (what is persisted).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For deadlines.
    pub mono: Instant,
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
}

impl Now {
    /// The real time.
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            wall_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }

    fn after(self, ms: i32) -> Instant {
        self.mono + Duration::from_millis(ms.max(0) as u64)
    }
}

/// A JoinGroup, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// Member id; empty for a new member.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (the session timeout for v0).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols (assignors) in the member's order of preference, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResult {
    /// Error code.
    pub error: i16,
    /// Generation, or -1.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// KIP-814: the leader already has a valid assignment and must not compute one.
    pub skip_assignment: bool,
    /// The member's id.
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    fn error(error: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            member_id: member_id.to_owned(),
            ..Default::default()
        }
    }
}

/// A SyncGroup, as the state machine needs it.
#[derive(Debug, Clone)]
pub struct SyncParams {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Generation.
    pub generation: i32,
    /// Protocol type (v5+), checked when present.
    pub protocol_type: Option<String>,
    /// Protocol name (v5+), checked when present.
    pub protocol: Option<String>,
    /// The leader's assignment; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    /// Error code.
    pub error: i16,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Protocol name.
    pub protocol: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            ..Default::default()
        }
    }
}

/// An answer now, or later through a channel.
#[derive(Debug)]
pub enum Answer<T> {
    /// Ready.
    Now(T),
    /// Arrives when the rebalance moves on.
    Wait(oneshot::Receiver<T>),
}

/// One member, as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol (only in `Stable`, as Kafka).
    pub metadata: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

/// A group, as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// State.
    pub state: State,
    /// Protocol type (empty for a group with offsets only).
    pub protocol_type: String,
    /// The chosen protocol, in `Stable` only.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberView>,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    join: Option<oneshot::Sender<JoinResult>>,
    sync: Option<oneshot::Sender<SyncResult>>,
    /// The session expires here unless the member is heard from.
    deadline: Instant,
    /// Order of joining: the first member still present leads.
    seq: u64,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// Answers held back until the group's record is durable.
#[derive(Debug)]
enum Deferred {
    Join(oneshot::Sender<JoinResult>, JoinResult),
    Sync(oneshot::Sender<SyncResult>, SyncResult),
}

/// One classic group.
#[derive(Debug)]
pub struct Group {
    state: State,
    state_since_ms: i64,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// `group.instance.id` → member id.
    instances: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending: HashMap<String, Instant>,
    /// Members of the current generation that have not sent SyncGroup yet.
    awaiting_sync: HashSet<String>,
    /// PreparingRebalance ends here at the latest (or CompletingRebalance's pending-sync
    /// timeout).
    deadline: Option<Instant>,
    /// PreparingRebalance of a group that was empty: Kafka's initial delay, extended while
    /// new members arrive, up to this cap.
    initial_cap: Option<Instant>,
    new_member_during_delay: bool,
    /// `group.initial.rebalance.delay.ms`.
    initial_delay_ms: u64,
    seq: u64,
    /// The group's record must be written before `deferred` is answered.
    persist: bool,
    deferred: Vec<Deferred>,
}

fn same_protocols(a: &[(String, Bytes)], b: &[(String, Bytes)]) -> bool {
    a == b
}

impl Group {
    /// A new, empty group.
    pub fn new(now: Now, config: &GroupConfig) -> Group {
        Group {
            state: State::Empty,
            state_since_ms: now.wall_ms,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: HashMap::new(),
            instances: HashMap::new(),
            pending: HashMap::new(),
            awaiting_sync: HashSet::new(),
            deadline: None,
            initial_cap: None,
            new_member_during_delay: false,
            initial_delay_ms: config.initial_rebalance_delay.as_millis() as u64,
            seq: 0,
            persist: false,
            deferred: Vec::new(),
        }
    }

    /// A group as its last record left it. Members get a fresh session: those that do not
    /// come back are removed when it expires, which starts a rebalance.
    pub fn from_record(record: GroupRecord, now: Now, config: &GroupConfig) -> Group {
        let mut g = Group::new(now, config);
        g.state_since_ms = record.state_timestamp_ms;
        g.protocol_type = Some(record.protocol_type).filter(|t| !t.is_empty());
        g.protocol = record.protocol;
        g.generation = record.generation;
        g.leader = record.leader;
        for m in record.members {
            g.seq += 1;
            if let Some(i) = &m.instance_id {
                g.instances.insert(i.clone(), m.member_id.clone());
            }
            let protocols = g
                .protocol
                .clone()
                .map(|p| vec![(p, m.subscription.clone())])
                .unwrap_or_default();
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols,
                    assignment: m.assignment,
                    join: None,
                    sync: None,
                    deadline: now.after(m.session_timeout_ms),
                    seq: g.seq,
                },
            );
        }
        if g.leader
            .as_ref()
            .is_some_and(|l| !g.members.contains_key(l))
        {
            g.leader = None;
        }
        g.state = if g.members.is_empty() {
            State::Empty
        } else {
            State::Stable
        };
        g
    }

    /// The record to persist.
    pub fn record(&self) -> GroupRecord {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_since_ms,
            members: members
                .into_iter()
                .map(|m| MemberRecord {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// State.
    pub fn state(&self) -> State {
        self.state
    }

    /// Generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Since when (wall clock) the group is in its state.
    pub fn state_since_ms(&self) -> i64 {
        self.state_since_ms
    }

    /// Protocol type, empty for a group that only has offsets.
    pub fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    /// Whether the group holds nothing but (possibly) offsets: no members, no pending ids.
    pub fn is_idle(&self) -> bool {
        self.state == State::Empty && self.pending.is_empty()
    }

    /// Whether the group's record must be written; clears the flag.
    pub fn take_persist(&mut self) -> bool {
        std::mem::take(&mut self.persist)
    }

    /// After the record is written (or failed to be): answers what waited for it.
    pub fn persisted(&mut self, error: Option<i16>, now: Now) {
        let deferred = std::mem::take(&mut self.deferred);
        let Some(error) = error else {
            for d in deferred {
                match d {
                    Deferred::Join(tx, r) => {
                        let _ = tx.send(r);
                    }
                    Deferred::Sync(tx, r) => {
                        let _ = tx.send(r);
                    }
                }
            }
            return;
        };
        // Kafka: the assignment is lost; every waiting member gets the error and rejoins.
        for d in deferred {
            match d {
                Deferred::Join(tx, r) => {
                    let _ = tx.send(JoinResult::error(error, &r.member_id));
                }
                Deferred::Sync(tx, _) => {
                    let _ = tx.send(SyncResult::error(error));
                }
            }
        }
        if matches!(self.state, State::Stable | State::CompletingRebalance) {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
            }
            self.prepare_rebalance(now);
        }
    }

    /// Marks the group deleted: every waiter learns it is gone.
    pub fn kill(&mut self) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join.take() {
                let _ = tx.send(JoinResult::error(
                    code(ResponseError::CoordinatorNotAvailable),
                    &m.id,
                ));
            }
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(SyncResult::error(code(
                    ResponseError::CoordinatorNotAvailable,
                )));
            }
        }
        self.members.clear();
        self.instances.clear();
        self.pending.clear();
        self.state = State::Dead;
    }

    fn max_rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Protocols every member supports.
    fn candidates(&self) -> HashSet<&str> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return HashSet::new();
        };
        let mut set: HashSet<&str> = first.protocols.iter().map(|(n, _)| n.as_str()).collect();
        for m in it {
            let theirs: HashSet<&str> = m.protocols.iter().map(|(n, _)| n.as_str()).collect();
            set.retain(|n| theirs.contains(n));
        }
        set
    }

    /// Kafka's `supportsProtocols`: a member may join if its protocol type matches and it
    /// shares at least one protocol with every current member.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidates();
        protocols
            .iter()
            .any(|(n, _)| candidates.contains(n.as_str()))
    }

    /// Each member votes for its most preferred candidate; the most votes wins (ties go to
    /// the leader's preference).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(n.as_str()))
            {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        let order: Vec<&str> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().min_by_key(|m| m.seq))
            .map(|m| m.protocols.iter().map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default();
        order
            .into_iter()
            .find(|n| votes.get(n) == Some(&best))
            .or_else(|| votes.iter().find(|(_, v)| **v == best).map(|(n, _)| *n))
            .map(str::to_owned)
    }

    /// Kafka's `validateMember`: a static member's id must be the one on record.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(instance) = instance_id {
            return match self.instances.get(instance) {
                None => Err(code(ResponseError::UnknownMemberId)),
                Some(id) if id != member_id => Err(code(ResponseError::FencedInstanceId)),
                Some(_) => Ok(()),
            };
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(code(ResponseError::UnknownMemberId))
        }
    }

    fn touch(&mut self, member_id: &str, now: Now) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.deadline = now.after(m.session_timeout_ms);
        }
    }

    fn set_state(&mut self, state: State, now: Now) {
        self.state = state;
        self.state_since_ms = now.wall_ms;
    }

    /// JoinGroup.
    pub fn join(&mut self, p: JoinParams, now: Now, config: &GroupConfig) -> Answer<JoinResult> {
        let fail = |e: ResponseError| Answer::Now(JoinResult::error(code(e), &p.member_id));
        if self.state == State::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if p.session_timeout_ms < config.session_timeout_min_ms
            || p.session_timeout_ms > config.session_timeout_max_ms
        {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if p.member_id.is_empty() {
            self.join_new(p, now, config)
        } else {
            self.join_known(p, now)
        }
    }

    fn new_member_id(p: &JoinParams) -> String {
        let prefix = p.instance_id.as_deref().unwrap_or(&p.client_id);
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    fn join_new(&mut self, p: JoinParams, now: Now, config: &GroupConfig) -> Answer<JoinResult> {
        let new_id = Group::new_member_id(&p);
        if let Some(instance) = &p.instance_id
            && let Some(old_id) = self.instances.get(instance).cloned()
        {
            return self.replace_static_member(&old_id, new_id, p, now);
        }
        if self.members.len() + self.pending.len() >= config.max_size
            || self.pending.len() >= crate::limits::PENDING_MEMBERS_PER_GROUP_MAX
        {
            return Answer::Now(JoinResult::error(
                code(ResponseError::GroupMaxSizeReached),
                "",
            ));
        }
        if p.instance_id.is_none() && p.require_known_member_id {
            // KIP-394: the member learns its id first, so a lost response cannot leave an
            // unknown member behind in the group.
            self.pending
                .insert(new_id.clone(), now.after(p.session_timeout_ms));
            return Answer::Now(JoinResult::error(
                code(ResponseError::MemberIdRequired),
                &new_id,
            ));
        }
        self.add_member(new_id, p, now)
    }

    fn join_known(&mut self, p: JoinParams, now: Now) -> Answer<JoinResult> {
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, now);
        }
        if let Err(e) = self.validate_member(&p.member_id, p.instance_id.as_deref()) {
            return Answer::Now(JoinResult::error(e, &p.member_id));
        }
        self.touch(&p.member_id, now);
        let is_leader = self.leader.as_deref() == Some(&p.member_id);
        let unchanged = self
            .members
            .get(&p.member_id)
            .is_some_and(|m| same_protocols(&m.protocols, &p.protocols));
        match self.state {
            State::PreparingRebalance => self.update_member_and_wait(p, now),
            State::CompletingRebalance if unchanged => {
                // The member missed its JoinGroup answer: send the current generation again.
                Answer::Now(self.join_result(&p.member_id))
            }
            State::Stable if unchanged && !is_leader => Answer::Now(self.join_result(&p.member_id)),
            State::CompletingRebalance | State::Stable => {
                let answer = self.update_member_and_wait(p, now);
                self.prepare_rebalance(now);
                answer
            }
            State::Empty | State::Dead => Answer::Now(JoinResult::error(
                code(ResponseError::UnknownMemberId),
                &p.member_id,
            )),
        }
    }

    /// The JoinGroup answer for the current generation.
    fn join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            let mut ms: Vec<&Member> = self.members.values().collect();
            ms.sort_by_key(|m| m.seq);
            ms.into_iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.metadata(self.protocol.as_deref()),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members,
        }
    }

    fn update_member_and_wait(&mut self, p: JoinParams, now: Now) -> Answer<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let Some(m) = self.members.get_mut(&p.member_id) else {
            return Answer::Now(JoinResult::error(
                code(ResponseError::UnknownMemberId),
                &p.member_id,
            ));
        };
        if let Some(old) = m.join.replace(tx) {
            // A second JoinGroup from the same member: the first one is superseded.
            let _ = old.send(JoinResult::error(
                code(ResponseError::RebalanceInProgress),
                &p.member_id,
            ));
        }
        m.protocols = p.protocols;
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.deadline = now.after(m.session_timeout_ms);
        self.maybe_complete_join(now);
        Answer::Wait(rx)
    }

    fn add_member(&mut self, id: String, p: JoinParams, now: Now) -> Answer<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.seq += 1;
        if let Some(i) = &p.instance_id {
            self.instances.insert(i.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: p.instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout_ms: p.session_timeout_ms,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                protocols: p.protocols,
                assignment: Bytes::new(),
                join: Some(tx),
                sync: None,
                deadline: now.after(p.session_timeout_ms),
                seq: self.seq,
            },
        );
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        if self.state == State::PreparingRebalance {
            self.new_member_during_delay = true;
            self.maybe_complete_join(now);
        } else {
            self.prepare_rebalance(now);
        }
        Answer::Wait(rx)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        now: Now,
    ) -> Answer<JoinResult> {
        let Some(mut m) = self.members.remove(old_id) else {
            self.instances
                .remove(p.instance_id.as_deref().unwrap_or(""));
            return self.add_member(new_id, p, now);
        };
        // The old incarnation is fenced: whatever it still waits for, it will not get.
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinResult::error(
                code(ResponseError::FencedInstanceId),
                old_id,
            ));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncResult::error(code(ResponseError::FencedInstanceId)));
        }
        let unchanged = same_protocols(&m.protocols, &p.protocols);
        m.id = new_id.clone();
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.deadline = now.after(p.session_timeout_ms);
        self.members.insert(new_id.clone(), m);
        if let Some(i) = &p.instance_id {
            self.instances.insert(i.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.awaiting_sync.remove(old_id) {
            self.awaiting_sync.insert(new_id.clone());
        }
        let p = JoinParams {
            member_id: new_id.clone(),
            ..p
        };
        match self.state {
            State::Stable if unchanged => {
                // KIP-345: back without a rebalance. The leader gets the members but must
                // not reassign (KIP-814's skip_assignment). Answered once the new id is
                // durable, so a broker restart does not fence the member that holds it.
                let mut result = self.join_result(&new_id);
                result.skip_assignment = self.leader.as_deref() == Some(&new_id);
                let (tx, rx) = oneshot::channel();
                self.deferred.push(Deferred::Join(tx, result));
                self.persist = true;
                Answer::Wait(rx)
            }
            State::PreparingRebalance => self.update_member_and_wait(p, now),
            _ => {
                let answer = self.update_member_and_wait(p, now);
                self.prepare_rebalance(now);
                answer
            }
        }
    }

    fn prepare_rebalance(&mut self, now: Now) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(SyncResult::error(code(ResponseError::RebalanceInProgress)));
                }
            }
        }
        let was_empty = self.state == State::Empty;
        self.awaiting_sync.clear();
        self.set_state(State::PreparingRebalance, now);
        let timeout = self.max_rebalance_timeout_ms();
        if was_empty {
            let delay = self.initial_delay_ms.min(timeout.max(0) as u64);
            self.deadline = Some(now.mono + Duration::from_millis(delay));
            self.initial_cap = Some(now.after(timeout));
            self.new_member_during_delay = false;
        } else {
            self.deadline = Some(now.after(timeout));
            self.initial_cap = None;
        }
        self.maybe_complete_join(now);
    }

    fn maybe_complete_join(&mut self, now: Now) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let due = self.deadline.is_some_and(|d| now.mono >= d);
        if let Some(cap) = self.initial_cap {
            if !due {
                return;
            }
            if self.new_member_during_delay && now.mono < cap {
                // Kafka's InitialDelayedJoin: wait another delay while members keep coming.
                self.new_member_during_delay = false;
                let next = now.mono + Duration::from_millis(self.initial_delay_ms);
                self.deadline = Some(next.min(cap));
                return;
            }
            self.complete_join(now);
            return;
        }
        let all_joined = self.members.values().all(|m| m.join.is_some()) && self.pending.is_empty();
        if all_joined || due {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Now) {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.initial_cap = None;
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.deadline = None;
            self.set_state(State::Empty, now);
            self.persist = true;
            return;
        }
        self.protocol = self.select_protocol();
        if self.leader.is_none() {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.seq)
                .map(|m| m.id.clone());
        }
        self.set_state(State::CompletingRebalance, now);
        // Kafka's pending-sync timeout: members that do not sync in time are removed.
        self.deadline = Some(now.after(self.max_rebalance_timeout_ms()));
        self.awaiting_sync = self.members.keys().cloned().collect();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.deadline = now.after(m.session_timeout_ms);
                if let Some(tx) = m.join.take() {
                    let _ = tx.send(result);
                }
            }
        }
    }

    fn remove_member(&mut self, id: &str) {
        let Some(mut m) = self.members.remove(id) else {
            return;
        };
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinResult::error(code(ResponseError::UnknownMemberId), id));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncResult::error(code(ResponseError::UnknownMemberId)));
        }
        if let Some(i) = &m.instance_id
            && self.instances.get(i).map(String::as_str) == Some(id)
        {
            self.instances.remove(i);
        }
        self.awaiting_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.seq)
                .map(|m| m.id.clone());
        }
    }

    /// After members left or expired: rebalance, or finish the one under way.
    fn after_removal(&mut self, now: Now) {
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now),
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::Empty | State::Dead => {}
        }
    }

    /// SyncGroup.
    pub fn sync(&mut self, p: SyncParams, now: Now) -> Answer<SyncResult> {
        let fail = |e: ResponseError| Answer::Now(SyncResult::error(code(e)));
        if self.state == State::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(e) = self.validate_member(&p.member_id, p.instance_id.as_deref()) {
            return Answer::Now(SyncResult::error(e));
        }
        if p.generation != self.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        if p.protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || p.protocol
                .as_ref()
                .is_some_and(|n| Some(n) != self.protocol.as_ref())
        {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        self.touch(&p.member_id, now);
        match self.state {
            State::Empty | State::Dead => fail(ResponseError::UnknownMemberId),
            State::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            State::Stable => {
                self.awaiting_sync.remove(&p.member_id);
                Answer::Now(self.sync_result(&p.member_id))
            }
            State::CompletingRebalance => {
                self.awaiting_sync.remove(&p.member_id);
                let (tx, rx) = oneshot::channel();
                let is_leader = self.leader.as_deref() == Some(&p.member_id);
                if let Some(m) = self.members.get_mut(&p.member_id)
                    && let Some(old) = m.sync.replace(tx)
                {
                    let _ = old.send(SyncResult::error(code(ResponseError::RebalanceInProgress)));
                }
                if is_leader {
                    let assigned: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = assigned.get(&m.id).cloned().unwrap_or_default();
                    }
                    // Stable once the assignment is durable; the coordinator writes it
                    // and calls `persisted`.
                    self.set_state(State::Stable, now);
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let result = self.sync_result(&id);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync.take()) {
                            self.deferred.push(Deferred::Sync(tx, result));
                        }
                    }
                    self.persist = true;
                    if self.awaiting_sync.is_empty() {
                        self.deadline = None;
                    }
                }
                Answer::Wait(rx)
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Now,
    ) -> i16 {
        if self.state == State::Dead {
            return code(ResponseError::CoordinatorNotAvailable);
        }
        if self.state == State::Empty {
            return code(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.validate_member(member_id, instance_id) {
            return e;
        }
        if generation != self.generation {
            return code(ResponseError::IllegalGeneration);
        }
        self.touch(member_id, now);
        if self.state == State::PreparingRebalance {
            code(ResponseError::RebalanceInProgress)
        } else {
            0
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id with an empty member
    /// id, as an admin removes a static member).
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Now) -> i16 {
        if self.state == State::Dead {
            return code(ResponseError::CoordinatorNotAvailable);
        }
        let id = match instance_id {
            Some(instance) => match self.instances.get(instance) {
                None => return code(ResponseError::UnknownMemberId),
                Some(id) if !member_id.is_empty() && id != member_id => {
                    return code(ResponseError::FencedInstanceId);
                }
                Some(id) => id.clone(),
            },
            None => {
                if self.pending.remove(member_id).is_some() {
                    self.maybe_complete_join(now);
                    return 0;
                }
                if !self.members.contains_key(member_id) {
                    return code(ResponseError::UnknownMemberId);
                }
                member_id.to_owned()
            }
        };
        self.remove_member(&id);
        self.after_removal(now);
        0
    }

    /// Kafka's `validateOffsetCommit` for a classic group.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Now,
    ) -> Result<(), i16> {
        // The member and generation, as for a transactional commit; then the state.
        self.validate_txn_commit(member_id, instance_id, generation)?;
        if generation < 0 && self.state == State::Empty {
            // An admin client, or a consumer without group management.
            return Ok(());
        }
        let member_given = generation >= 0 || !member_id.is_empty() || instance_id.is_some();
        if !member_given && self.state != State::Empty {
            return Err(code(ResponseError::UnknownMemberId));
        }
        if self.state == State::CompletingRebalance {
            return Err(code(ResponseError::RebalanceInProgress));
        }
        self.touch(member_id, now);
        Ok(())
    }

    /// Kafka's `validateOffsetCommit` for a transactional commit (TxnOffsetCommit): the
    /// member fields are checked only when given (before v3 they are not sent), the
    /// group's state is not (a commit inside a transaction may span a rebalance), and the
    /// member's session is not extended.
    pub fn validate_txn_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == State::Dead {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if generation < 0 && self.state == State::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(code(ResponseError::IllegalGeneration));
            }
        }
        Ok(())
    }

    /// Expires sessions, pending member ids and rebalance deadlines.
    pub fn tick(&mut self, now: Now) {
        if self.state == State::Dead {
            return;
        }
        self.pending.retain(|_, deadline| *deadline > now.mono);
        let state = self.state;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.deadline <= now.mono)
            // A member waiting for its JoinGroup or SyncGroup answer is alive (Kafka's
            // shouldKeepAlive); the rebalance deadlines below cover it.
            .filter(|m| {
                let waiting = (state == State::PreparingRebalance && m.join.is_some())
                    || (state == State::CompletingRebalance && m.sync.is_some());
                !waiting
            })
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(member = %id, "member session expired");
                self.remove_member(id);
            }
            self.after_removal(now);
        }
        let due = self.deadline.is_some_and(|d| now.mono >= d);
        match self.state {
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::CompletingRebalance | State::Stable if due => {
                self.deadline = None;
                if !self.awaiting_sync.is_empty() {
                    let late: Vec<String> = self.awaiting_sync.drain().collect();
                    for id in &late {
                        tracing::info!(member = %id, "member did not sync in time");
                        self.remove_member(id);
                    }
                    self.after_removal(now);
                }
            }
            _ => {}
        }
    }

    /// DescribeGroups' view.
    pub fn view(&self) -> GroupView {
        let stable = self.state == State::Stable;
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        GroupView {
            state: self.state,
            protocol_type: self.protocol_type().to_owned(),
            protocol: if stable {
                self.protocol.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: members
                .into_iter()
                .map(|m| MemberView {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(self.protocol.as_deref())
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// The topics the members subscribe to, if the group speaks the `consumer` protocol
    /// (OffsetDelete refuses to delete offsets of subscribed topics).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let mut topics = HashSet::new();
        for m in self.members.values() {
            let mut meta = m.metadata(self.protocol.as_deref());
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]);
            bytes::Buf::advance(&mut meta, 2);
            if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3)) {
                topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
            }
        }
        Some(topics)
    }
}

#[cfg(test)]
mod tests;
