//! [`Election`]: leader election among a service's instances through a Kafka group with
//! a custom protocol type, as Confluent Schema Registry's `KafkaGroupLeaderElector` does.
//!
//! Each instance joins the group (JoinGroup, protocol type e.g. `sr`, one sub-protocol
//! `v0` whose metadata is its JSON identity). The member the coordinator makes group
//! leader picks the service leader ([`protocol::assign`]) and hands every member the same
//! JSON assignment in SyncGroup. A background task then heartbeats; a rebalance
//! (someone joined or left), an eviction or a lost coordinator makes it join again.
//! While a rebalance runs the published leader is `None`, as Confluent's non-sticky
//! `onRevoked` clears it.
//!
//! Request versions are the highest both the broker and this module serve, from
//! ApiVersions; fields are set only for the versions that have them.

pub mod protocol;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{oneshot, watch};

use crate::limits::{
    GROUP_MEMBERS_MAX, LEAVE_TIMEOUT, REQUEST_TIMEOUT, RETRY_BACKOFF, RETRY_BACKOFF_MAX,
};
use crate::wire::{Connection, bootstrap_addrs};
use crate::{ClientConfig, ClientError};
use protocol::{Assignment, IdentityJson};

// Kafka error codes the member reacts to.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

// Versions whose fields this module sets (see each request).
const FIND_COORDINATOR_VERSIONS: (i16, i16) = (0, 3);
const JOIN_GROUP_VERSIONS: (i16, i16) = (0, 9);
const SYNC_GROUP_VERSIONS: (i16, i16) = (0, 5);
const HEARTBEAT_VERSIONS: (i16, i16) = (0, 4);
const LEAVE_GROUP_VERSIONS: (i16, i16) = (0, 5);

/// How an instance presents itself to the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Host other instances reach it on.
    pub host: String,
    /// Port other instances reach it on.
    pub port: u16,
    /// `http` or `https`.
    pub scheme: String,
    /// Whether it may become leader.
    pub leader_eligible: bool,
}

impl Identity {
    /// `scheme://host:port`.
    pub fn url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    fn to_json(&self) -> IdentityJson {
        IdentityJson {
            version: 1,
            host: self.host.clone(),
            port: self.port,
            master_eligibility: self.leader_eligible,
            scheme: self.scheme.clone(),
        }
    }

    fn from_json(j: IdentityJson) -> Identity {
        Identity {
            host: j.host,
            port: j.port,
            scheme: j.scheme,
            leader_eligible: j.master_eligibility,
        }
    }
}

/// The elected leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// Its identity, as it advertised it.
    pub identity: Identity,
    /// Whether it is this instance.
    pub is_me: bool,
}

/// The group's timing settings. The defaults are Confluent Schema Registry's
/// (`kafkagroup.session.timeout.ms`, `kafkagroup.heartbeat.interval.ms`,
/// `kafkagroup.rebalance.timeout.ms`, `kafkastore.init.timeout.ms`).
#[derive(Clone, Debug)]
pub struct GroupTimings {
    /// How long the coordinator keeps a member that stopped heartbeating.
    pub session_timeout: Duration,
    /// Time between heartbeats (also how soon a member notices a rebalance).
    pub heartbeat_interval: Duration,
    /// How long a rebalance waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// How long [`Election::join_with`] waits for the first completed rebalance.
    pub join_timeout: Duration,
}

impl Default for GroupTimings {
    fn default() -> Self {
        GroupTimings {
            session_timeout: Duration::from_millis(10_000),
            heartbeat_interval: Duration::from_millis(3_000),
            rebalance_timeout: Duration::from_millis(300_000),
            join_timeout: Duration::from_millis(60_000),
        }
    }
}

/// Membership in a leader-election group. Dropping it leaves the group in the
/// background; [`Election::leave`] waits for that.
pub struct Election {
    leader: watch::Receiver<Option<Leader>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Election {
    /// Joins `group` with Confluent's default timings and returns once the first
    /// rebalance has completed (so [`Election::leader`] holds its result).
    pub async fn join(
        cfg: &ClientConfig,
        group: &str,
        protocol_type: &str,
        me: Identity,
    ) -> Result<Election, ClientError> {
        Self::join_with(cfg, group, protocol_type, me, GroupTimings::default()).await
    }

    /// [`Election::join`] with explicit timings.
    pub async fn join_with(
        cfg: &ClientConfig,
        group: &str,
        protocol_type: &str,
        me: Identity,
        timings: GroupTimings,
    ) -> Result<Election, ClientError> {
        if group.is_empty() || protocol_type.is_empty() {
            return Err(ClientError::Config(
                "the election group and protocol type must not be empty".into(),
            ));
        }
        if bootstrap_addrs(&cfg.bootstrap).is_empty() {
            return Err(ClientError::Config(format!(
                "no bootstrap server in {:?}",
                cfg.bootstrap
            )));
        }
        let (leader_tx, leader) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let (first_tx, first_rx) = oneshot::channel();
        let join_timeout = timings.join_timeout;
        let member = Member {
            cfg: cfg.clone(),
            group: group.to_owned(),
            protocol_type: protocol_type.to_owned(),
            metadata: protocol::encode_identity(&me.to_json()),
            timings,
            member_id: String::new(),
            generation: -1,
            coordinator: None,
            coordinator_addr: None,
            leader: leader_tx,
        };
        let task = tokio::spawn(member.run(first_tx, stop_rx));
        let election = Election { leader, stop, task };
        match tokio::time::timeout(join_timeout, first_rx).await {
            Ok(Ok(Ok(()))) => Ok(election),
            Ok(Ok(Err(e))) => {
                election.leave().await;
                Err(e)
            }
            Ok(Err(_)) => {
                election.leave().await;
                Err(ClientError::Config(format!(
                    "the member task of group {group} ended before joining"
                )))
            }
            Err(_) => {
                election.leave().await;
                Err(ClientError::Timeout {
                    what: format!("the first rebalance of group {group}"),
                    after: join_timeout,
                    bootstrap: cfg.bootstrap.clone(),
                })
            }
        }
    }

    /// The current leader (`None` while rebalancing or if no member is eligible).
    pub fn leader(&self) -> watch::Receiver<Option<Leader>> {
        self.leader.clone()
    }

    /// Leaves the group (LeaveGroup, so the others rebalance at once rather than after
    /// the session timeout) and stops heartbeating.
    pub async fn leave(self) {
        let _ = self.stop.send(true);
        let deadline = LEAVE_TIMEOUT + REQUEST_TIMEOUT;
        let task = self.task;
        if tokio::time::timeout(deadline, task).await.is_err() {
            tracing::warn!("the election member task did not stop in {deadline:?}");
        }
    }
}

/// Why a round of membership ended.
enum Rejoin {
    /// A rebalance or an eviction: join again at once.
    Now,
}

/// The member's state, owned by its task.
struct Member {
    cfg: ClientConfig,
    group: String,
    protocol_type: String,
    metadata: Bytes,
    timings: GroupTimings,
    member_id: String,
    generation: i32,
    coordinator: Option<Connection>,
    coordinator_addr: Option<String>,
    leader: watch::Sender<Option<Leader>>,
}

impl Member {
    async fn run(
        mut self,
        first: oneshot::Sender<Result<(), ClientError>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut first = Some(first);
        let mut backoff = RETRY_BACKOFF;
        loop {
            let outcome = tokio::select! {
                r = self.round(&mut first) => r,
                _ = stop.wait_for(|s| *s) => break,
            };
            let error = match outcome {
                Ok(Rejoin::Now) => {
                    backoff = RETRY_BACKOFF;
                    continue;
                }
                Err(e) => e,
            };
            self.set_leader(None);
            match &error {
                ClientError::Broker { code, .. } => match *code {
                    UNKNOWN_MEMBER_ID => self.member_id.clear(),
                    ILLEGAL_GENERATION | REBALANCE_IN_PROGRESS => {}
                    COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
                        self.coordinator = None;
                    }
                    _ if first.is_some() => {
                        // Misconfiguration (inconsistent protocol, bad session timeout,
                        // authorization): fail the join rather than retry forever.
                        if let Some(f) = first.take() {
                            let _ = f.send(Err(error));
                        }
                        return;
                    }
                    _ => self.coordinator = None,
                },
                ClientError::Config(_) | ClientError::DuplicateUrls { .. } if first.is_some() => {
                    if let Some(f) = first.take() {
                        let _ = f.send(Err(error));
                    }
                    return;
                }
                _ => self.coordinator = None,
            }
            if !matches!(&error, ClientError::Broker { code, .. } if *code == REBALANCE_IN_PROGRESS)
            {
                tracing::warn!(group = self.group, error = %error, "group membership failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
        }
        self.set_leader(None);
        self.leave_group().await;
    }

    /// One membership round: find the coordinator, join, sync, heartbeat until a rejoin
    /// is needed.
    async fn round(
        &mut self,
        first: &mut Option<oneshot::Sender<Result<(), ClientError>>>,
    ) -> Result<Rejoin, ClientError> {
        if self.coordinator.is_none() {
            self.coordinator = Some(self.find_coordinator().await?);
        }
        // A rebalance starts: Confluent's (non-sticky) onRevoked forgets the leader.
        self.set_leader(None);
        let joined = self.join_group().await?;
        let assignments = if joined.leader.as_str() == self.member_id {
            if joined.members.len() > GROUP_MEMBERS_MAX {
                return Err(self.protocol(format!(
                    "JoinGroup lists {} members, more than the limit of {GROUP_MEMBERS_MAX}",
                    joined.members.len()
                )));
            }
            let members: Vec<(String, Bytes)> = joined
                .members
                .iter()
                .map(|m| (m.member_id.to_string(), m.metadata.clone()))
                .collect();
            let (chosen, out) = protocol::assign(&members);
            tracing::debug!(group = self.group, assignment = ?chosen, "assigned the leader");
            out
        } else {
            Vec::new()
        };
        let bytes = self.sync_group(assignments).await?;
        let assignment = protocol::decode_assignment(&bytes).map_err(|e| self.protocol(e))?;
        self.apply(&assignment)?;
        if let Some(f) = first.take() {
            let _ = f.send(Ok(()));
        }
        self.heartbeat().await
    }

    /// Publishes the assignment's leader (Confluent's `onAssigned`).
    fn apply(&self, assignment: &Assignment) -> Result<(), ClientError> {
        tracing::info!(group = self.group, generation = self.generation, leader = ?assignment.master_identity.as_ref().map(IdentityJson::url), "rebalance finished");
        match assignment.error {
            protocol::NO_ERROR => {}
            protocol::DUPLICATE_URLS => {
                return Err(ClientError::DuplicateUrls {
                    group: self.group.clone(),
                });
            }
            other => {
                return Err(self.protocol(format!("unknown assignment error {other}")));
            }
        }
        let leader = match (&assignment.master, &assignment.master_identity) {
            (Some(id), Some(identity)) => Some(Leader {
                identity: Identity::from_json(identity.clone()),
                is_me: *id == self.member_id,
            }),
            _ => {
                tracing::warn!(
                    group = self.group,
                    "no leader-eligible instance is in the group: reads can be served, \
                     writes cannot"
                );
                None
            }
        };
        self.set_leader(leader);
        Ok(())
    }

    fn set_leader(&self, leader: Option<Leader>) {
        self.leader.send_if_modified(|current| {
            let changed = *current != leader;
            if changed {
                *current = leader;
            }
            changed
        });
    }

    /// Asks the bootstrap brokers, in turn, for the group's coordinator and connects to it.
    async fn find_coordinator(&mut self) -> Result<Connection, ClientError> {
        let mut last = None;
        for addr in bootstrap_addrs(&self.cfg.bootstrap) {
            match self.find_coordinator_via(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(group = self.group, broker = addr, error = %e, "FindCoordinator failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config("no bootstrap server".into())))
    }

    async fn find_coordinator_via(&mut self, addr: &str) -> Result<Connection, ClientError> {
        let mut conn = Connection::open(&self.cfg, addr).await?;
        let version = conn.version::<FindCoordinatorRequest>(FIND_COORDINATOR_VERSIONS)?;
        // v0–3 carry one key; key_type (v1+) 0 = group is also the default.
        let request = FindCoordinatorRequest::default().with_key(self.str(&self.group));
        let r = conn.send(&request, version, REQUEST_TIMEOUT).await?;
        if r.error_code != 0 {
            return Err(ClientError::broker(
                "FindCoordinator",
                &self.group,
                r.error_code,
            ));
        }
        let port = u16::try_from(r.port)
            .map_err(|_| self.protocol(format!("coordinator port {} is invalid", r.port)))?;
        let coordinator = format!("{}:{port}", r.host);
        self.coordinator_addr = Some(coordinator.clone());
        if coordinator == addr {
            return Ok(conn);
        }
        Connection::open(&self.cfg, &coordinator).await
    }

    /// JoinGroup, repeated once with the assigned id on MEMBER_ID_REQUIRED (KIP-394).
    async fn join_group(&mut self) -> Result<JoinGroupResponse, ClientError> {
        for _ in 0..2 {
            let conn = self.conn()?;
            let version = conn.version::<JoinGroupRequest>(JOIN_GROUP_VERSIONS)?;
            let mut request = JoinGroupRequest::default()
                .with_group_id(GroupId(self.str(&self.group)))
                .with_session_timeout_ms(millis(self.timings.session_timeout))
                .with_member_id(self.str(&self.member_id))
                .with_protocol_type(self.str(&self.protocol_type))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str(protocol::SUBPROTOCOL_V0))
                        .with_metadata(self.metadata.clone()),
                ]);
            if version >= 1 {
                request = request.with_rebalance_timeout_ms(millis(self.timings.rebalance_timeout));
            }
            // A JoinGroup legitimately waits up to the rebalance timeout.
            let timeout = self.timings.rebalance_timeout + REQUEST_TIMEOUT;
            let r = self.conn()?.send(&request, version, timeout).await?;
            match r.error_code {
                0 => {
                    self.member_id = r.member_id.to_string();
                    self.generation = r.generation_id;
                    if let Some(p) = &r.protocol_name
                        && p.as_str() != protocol::SUBPROTOCOL_V0
                    {
                        return Err(self.protocol(format!("JoinGroup chose sub-protocol {p}")));
                    }
                    return Ok(r);
                }
                MEMBER_ID_REQUIRED => self.member_id = r.member_id.to_string(),
                code => return Err(ClientError::broker("JoinGroup", &self.group, code)),
            }
        }
        Err(ClientError::broker(
            "JoinGroup",
            &self.group,
            MEMBER_ID_REQUIRED,
        ))
    }

    async fn sync_group(
        &mut self,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes, ClientError> {
        let conn = self.conn()?;
        let version = conn.version::<SyncGroupRequest>(SYNC_GROUP_VERSIONS)?;
        let mut request = SyncGroupRequest::default()
            .with_group_id(GroupId(self.str(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(self.str(&self.member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(id, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(id))
                            .with_assignment(bytes)
                    })
                    .collect(),
            );
        if version >= 5 {
            request = request
                .with_protocol_type(Some(self.str(&self.protocol_type)))
                .with_protocol_name(Some(StrBytes::from_static_str(protocol::SUBPROTOCOL_V0)));
        }
        // A follower's SyncGroup waits for the leader's.
        let timeout = self.timings.rebalance_timeout + REQUEST_TIMEOUT;
        let r = self.conn()?.send(&request, version, timeout).await?;
        if r.error_code != 0 {
            return Err(ClientError::broker("SyncGroup", &self.group, r.error_code));
        }
        Ok(r.assignment)
    }

    /// Heartbeats until the coordinator asks for a rejoin.
    async fn heartbeat(&mut self) -> Result<Rejoin, ClientError> {
        loop {
            tokio::time::sleep(self.timings.heartbeat_interval).await;
            let conn = self.conn()?;
            let version = conn.version::<HeartbeatRequest>(HEARTBEAT_VERSIONS)?;
            let request = HeartbeatRequest::default()
                .with_group_id(GroupId(self.str(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(self.str(&self.member_id));
            let r = self
                .conn()?
                .send(&request, version, REQUEST_TIMEOUT)
                .await?;
            match r.error_code {
                0 => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return Ok(Rejoin::Now),
                UNKNOWN_MEMBER_ID => {
                    tracing::info!(group = self.group, "evicted from the group; joining again");
                    self.member_id.clear();
                    return Ok(Rejoin::Now);
                }
                code => return Err(ClientError::broker("Heartbeat", &self.group, code)),
            }
        }
    }

    /// LeaveGroup on a fresh connection (the member task may have been stopped in the
    /// middle of a request on the old one). Failures are logged: the session timeout
    /// evicts the member anyway.
    async fn leave_group(&mut self) {
        self.coordinator = None;
        let Some(addr) = self.coordinator_addr.clone() else {
            return;
        };
        if self.member_id.is_empty() {
            return;
        }
        let left = tokio::time::timeout(LEAVE_TIMEOUT, async {
            let mut conn = Connection::open(&self.cfg, &addr).await?;
            let version = conn.version::<LeaveGroupRequest>(LEAVE_GROUP_VERSIONS)?;
            let mut request =
                LeaveGroupRequest::default().with_group_id(GroupId(self.str(&self.group)));
            if version >= 3 {
                let mut member =
                    MemberIdentity::default().with_member_id(self.str(&self.member_id));
                if version >= 5 {
                    member = member.with_reason(Some(StrBytes::from_static_str(
                        "the instance is shutting down",
                    )));
                }
                request = request.with_members(vec![member]);
            } else {
                request = request.with_member_id(self.str(&self.member_id));
            }
            let r = conn.send(&request, version, LEAVE_TIMEOUT).await?;
            let code = std::iter::once(r.error_code)
                .chain(r.members.iter().map(|m| m.error_code))
                .find(|c| *c != 0)
                .unwrap_or(0);
            if code != 0 {
                return Err(ClientError::broker("LeaveGroup", &self.group, code));
            }
            Ok(())
        })
        .await;
        match left {
            Ok(Ok(())) => tracing::info!(group = self.group, "left the group"),
            Ok(Err(e)) => tracing::warn!(group = self.group, error = %e, "LeaveGroup failed"),
            Err(_) => tracing::warn!(group = self.group, "LeaveGroup timed out"),
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, ClientError> {
        self.coordinator
            .as_mut()
            .ok_or_else(|| ClientError::Config("no coordinator connection".into()))
    }

    fn str(&self, s: &str) -> StrBytes {
        StrBytes::from_string(s.to_owned())
    }

    fn protocol(&self, detail: String) -> ClientError {
        ClientError::Protocol {
            addr: self
                .coordinator
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |c| c.addr().to_owned()),
            detail,
        }
    }
}

/// A duration in whole milliseconds as Kafka's i32 fields want it.
fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
