//! The group coordinator: every group of this node, their persistence and their timers.
//!
//! Each group sits behind its own async mutex; an operation locks it, runs the state
//! machine (`classic.rs`), and, when the group's record changed in a way that must
//! survive a restart (a completed assignment, a group that became empty, a static member
//! that came back under a new id), writes and fsyncs the record before anyone is
//! answered, still holding the lock. Answers that wait on other members (JoinGroup,
//! SyncGroup) are channels the caller awaits after the lock is released.
//!
//! Groups are created by a JoinGroup or by an offset commit without a generation (a
//! "simple" group, as Kafka's); they go away when deleted or when their offsets expire.
//!
//! Consumer groups of KIP-848 (`consumer.rs`) are an overlay on the same ids: the classic
//! map knows every group id (and holds what offsets need: state and expiry), the
//! consumer map holds KIP-848 membership. One id is one group: a ConsumerGroupHeartbeat
//! for a classic group with members, or a JoinGroup for a consumer group with members,
//! is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::Mutex as AsyncMutex;

use super::classic::{
    Answer, Group, GroupConfig, GroupView, JoinParams, JoinResult, Now, State, SyncParams,
    SyncResult,
};
use super::consumer::{self, ConsumerConfig, ConsumerGroup, Heartbeat, HeartbeatResult, Topics};
use super::store::{Committed, GroupStore};
use crate::error::kafka_code;

type Shared = Arc<AsyncMutex<Group>>;

/// The coordinator of every group.
pub struct Coordinator {
    store: Arc<GroupStore>,
    config: GroupConfig,
    consumer_config: ConsumerConfig,
    groups: Mutex<HashMap<String, Shared>>,
    consumer_groups: Mutex<HashMap<String, Arc<AsyncMutex<ConsumerGroup>>>>,
}

/// One group as ListGroups shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Group id.
    pub group_id: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: &'static str,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: &'static str,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> medulla_log::Result<T> + Send + 'static,
) -> medulla_log::Result<T> {
    crate::handlers::blocking(f).await
}

impl Coordinator {
    /// The coordinator over what `store` loaded.
    pub fn open(
        store: Arc<GroupStore>,
        config: GroupConfig,
        consumer_config: ConsumerConfig,
    ) -> Coordinator {
        let now = Now::system();
        let mut groups: HashMap<String, Shared> = store
            .take_loaded_groups()
            .into_iter()
            .map(|(id, record)| {
                let g = Group::from_record(record, now, &config);
                (id, Arc::new(AsyncMutex::new(g)))
            })
            .collect();
        for id in store.groups_with_offsets() {
            groups
                .entry(id)
                .or_insert_with(|| Arc::new(AsyncMutex::new(Group::new(now, &config))));
        }
        if !groups.is_empty() {
            tracing::info!(groups = groups.len(), "loaded consumer groups");
        }
        let consumer_groups: HashMap<String, Arc<AsyncMutex<ConsumerGroup>>> = store
            .take_loaded_consumer_groups()
            .into_iter()
            .map(|(id, snapshot)| {
                let g = ConsumerGroup::restore(snapshot, now, &consumer_config);
                (id, Arc::new(AsyncMutex::new(g)))
            })
            .collect();
        for id in consumer_groups.keys() {
            groups
                .entry(id.clone())
                .or_insert_with(|| Arc::new(AsyncMutex::new(Group::new(now, &config))));
        }
        if !consumer_groups.is_empty() {
            tracing::info!(
                groups = consumer_groups.len(),
                "loaded consumer-protocol groups"
            );
        }
        Coordinator {
            store,
            config,
            consumer_config,
            groups: Mutex::new(groups),
            consumer_groups: Mutex::new(consumer_groups),
        }
    }

    /// Writes a KIP-848 group's snapshot if it changed. `Err` is the code to answer with.
    async fn persist_consumer(&self, id: &str, g: &mut ConsumerGroup) -> Result<(), i16> {
        if !g.take_dirty() {
            return Ok(());
        }
        let snapshot = g.snapshot();
        let store = self.store.clone();
        let group_id = id.to_owned();
        let now_ms = Now::system().wall_ms;
        blocking(move || store.store_consumer_group(&group_id, &snapshot, now_ms))
            .await
            .map_err(|e| {
                tracing::error!(group = id, error = %e, "cannot write consumer group state");
                // The next change writes the whole state again.
                g.mark_dirty();
                match kafka_code(&e) {
                    0 => code(ResponseError::UnknownServerError),
                    c => c,
                }
            })
    }

    fn consumer_map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AsyncMutex<ConsumerGroup>>>> {
        self.consumer_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn consumer_group(&self, id: &str) -> Option<Arc<AsyncMutex<ConsumerGroup>>> {
        self.consumer_map().get(id).cloned()
    }

    /// The KIP-848 group `id`, if it has members.
    pub(super) async fn active_consumer_group(
        &self,
        id: &str,
    ) -> Option<Arc<AsyncMutex<ConsumerGroup>>> {
        let g = self.consumer_group(id)?;
        let active = !g.lock().await.is_empty();
        active.then_some(g)
    }

    /// ConsumerGroupHeartbeat (KIP-848).
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
        topics: &Topics,
    ) -> Result<HeartbeatResult, consumer::Refusal> {
        if group_id.is_empty() {
            return Err((
                ResponseError::InvalidGroupId.code(),
                "GroupId can't be empty.".into(),
            ));
        }
        // The group id must not name a classic group with members.
        let classic = self.group_or_new(group_id);
        if !classic.lock().await.is_idle() {
            return Err((
                ResponseError::GroupIdNotFound.code(),
                format!("Group {group_id} is not a consumer group."),
            ));
        }
        let shared = self
            .consumer_map()
            .entry(group_id.to_owned())
            .or_insert_with(|| Arc::new(AsyncMutex::new(ConsumerGroup::new(&self.consumer_config))))
            .clone();
        let mut g = shared.lock().await;
        let result = g.heartbeat(hb, topics, Now::system(), &self.consumer_config);
        // Nothing is answered before the change it reports is durable.
        self.persist_consumer(group_id, &mut g)
            .await
            .map_err(|c| (c, "the group's state could not be written".to_owned()))?;
        result
    }

    /// ConsumerGroupDescribe for one group; `None` if it is not a consumer group.
    pub async fn consumer_describe(&self, group_id: &str) -> Option<consumer::GroupView> {
        let g = self.consumer_group(group_id)?;
        let g = g.lock().await;
        Some(g.view())
    }

    /// The offsets and group records.
    pub fn store(&self) -> &Arc<GroupStore> {
        &self.store
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn group(&self, id: &str) -> Option<Shared> {
        self.map().get(id).cloned()
    }

    pub(super) fn group_or_new(&self, id: &str) -> Shared {
        self.map()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(AsyncMutex::new(Group::new(Now::system(), &self.config))))
            .clone()
    }

    /// Drops a group that holds nothing (no members, pending ids, record or offsets) and
    /// that nobody else is using.
    fn forget_if_unused(&self, id: &str, group: Shared) {
        let mut map = self.map();
        // The map's reference and ours: nobody else can reach the group now.
        if Arc::strong_count(&group) != 2 {
            return;
        }
        let Ok(g) = group.try_lock() else {
            return;
        };
        if g.is_idle()
            && g.generation() == 0
            && self.store.all(id).is_empty()
            && !self.store.has_open_transactions(id)
        {
            map.remove(id);
        }
    }

    /// Writes the group's record if the last operation asked for it.
    async fn persist(&self, id: &str, g: &mut Group) {
        if !g.take_persist() {
            return;
        }
        let record = g.record();
        let store = self.store.clone();
        let group_id = id.to_owned();
        let result = blocking(move || store.store_group(&group_id, &record)).await;
        let error = result.err().map(|e| {
            tracing::error!(group = id, error = %e, "cannot write group metadata");
            match kafka_code(&e) {
                0 => code(ResponseError::UnknownServerError),
                c => c,
            }
        });
        g.persisted(error, Now::system());
    }

    /// JoinGroup.
    pub async fn join(&self, group_id: &str, p: JoinParams) -> Answer<JoinResult> {
        if group_id.is_empty() {
            return Answer::Now(JoinResult {
                error: code(ResponseError::InvalidGroupId),
                generation: -1,
                member_id: p.member_id,
                ..Default::default()
            });
        }
        if !p.member_id.is_empty() && self.group(group_id).is_none() {
            return Answer::Now(JoinResult {
                error: code(ResponseError::UnknownMemberId),
                generation: -1,
                member_id: p.member_id,
                ..Default::default()
            });
        }
        if self.active_consumer_group(group_id).await.is_some() {
            return Answer::Now(JoinResult {
                error: code(ResponseError::InconsistentGroupProtocol),
                generation: -1,
                member_id: p.member_id,
                ..Default::default()
            });
        }
        self.consumer_map().remove(group_id);
        let shared = self.group_or_new(group_id);
        let answer = {
            let mut g = shared.lock().await;
            let answer = g.join(p, Now::system(), &self.config);
            self.persist(group_id, &mut g).await;
            answer
        };
        self.forget_if_unused(group_id, shared);
        answer
    }

    /// SyncGroup.
    pub async fn sync(&self, group_id: &str, p: SyncParams) -> Answer<SyncResult> {
        let Some(shared) = self.group(group_id) else {
            return Answer::Now(SyncResult {
                error: code(ResponseError::UnknownMemberId),
                ..Default::default()
            });
        };
        let mut g = shared.lock().await;
        let answer = g.sync(p, Now::system());
        self.persist(group_id, &mut g).await;
        answer
    }

    /// Heartbeat.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        let Some(shared) = self.group(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        let mut g = shared.lock().await;
        let result = g.heartbeat(member_id, instance_id, generation, Now::system());
        self.persist(group_id, &mut g).await;
        result
    }

    /// LeaveGroup: `Err` for the whole group, else one code per member.
    pub async fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let Some(shared) = self.group(group_id) else {
            return Err(code(ResponseError::UnknownMemberId));
        };
        let mut g = shared.lock().await;
        let now = Now::system();
        let codes = members
            .iter()
            .map(|(m, i)| g.leave(m, i.as_deref(), now))
            .collect();
        self.persist(group_id, &mut g).await;
        Ok(codes)
    }

    /// Validates an OffsetCommit and, if it may proceed, stores `commits` durably.
    /// `Err` is the code for every partition.
    pub async fn commit(
        &self,
        group_id: &str,
        member: (&str, Option<&str>, i32),
        version: i16,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), i16> {
        let (member_id, instance_id, generation) = member;
        if let Some(cg) = self.active_consumer_group(group_id).await {
            cg.lock().await.validate_commit(member_id, generation)?;
            if commits.is_empty() {
                return Ok(());
            }
            let store = self.store.clone();
            let id = group_id.to_owned();
            return blocking(move || store.commit(&id, commits))
                .await
                .map_err(|e| kafka_code(&e));
        }
        let shared = match self.group(group_id) {
            Some(g) => g,
            // Kafka: a commit without a generation creates a "simple" group; with one it
            // names a group that does not exist.
            None if generation < 0 => self.group_or_new(group_id),
            None if version >= 9 => return Err(code(ResponseError::GroupIdNotFound)),
            None => return Err(code(ResponseError::IllegalGeneration)),
        };
        let mut g = shared.lock().await;
        g.validate_commit(member_id, instance_id, generation, Now::system())?;
        if commits.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let id = group_id.to_owned();
        blocking(move || store.commit(&id, commits))
            .await
            .map_err(|e| {
                tracing::error!(group = group_id, error = %e, "offset commit failed");
                kafka_code(&e)
            })
    }

    /// ListGroups.
    pub async fn list(&self) -> Vec<Listed> {
        let groups: Vec<(String, Shared)> = self
            .map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::with_capacity(groups.len());
        for (group_id, shared) in groups {
            let g = shared.lock().await;
            if g.state() == State::Dead {
                continue;
            }
            if let Some(cg) = self.consumer_group(&group_id) {
                out.push(Listed {
                    group_id,
                    protocol_type: "consumer".to_owned(),
                    state: cg.lock().await.state(),
                    group_type: "consumer",
                });
                continue;
            }
            out.push(Listed {
                group_id,
                protocol_type: g.protocol_type().to_owned(),
                state: g.state().name(),
                group_type: "classic",
            });
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups for one group; `None` if it does not exist.
    pub async fn describe(&self, group_id: &str) -> Option<GroupView> {
        if self.consumer_group(group_id).is_some() {
            // Kafka: DescribeGroups does not describe consumer groups.
            return None;
        }
        let shared = self.group(group_id)?;
        let g = shared.lock().await;
        (g.state() != State::Dead).then(|| g.view())
    }

    /// DeleteGroups for one group.
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        if group_id.is_empty() {
            return code(ResponseError::InvalidGroupId);
        }
        if self.active_consumer_group(group_id).await.is_some() {
            return code(ResponseError::NonEmptyGroup);
        }
        let Some(shared) = self.group(group_id) else {
            return code(ResponseError::GroupIdNotFound);
        };
        let mut g = shared.lock().await;
        match g.state() {
            State::Dead => return code(ResponseError::GroupIdNotFound),
            State::Empty if g.is_idle() => {}
            _ => return code(ResponseError::NonEmptyGroup),
        }
        let store = self.store.clone();
        let id = group_id.to_owned();
        let now_ms = Now::system().wall_ms;
        if let Err(e) = blocking(move || store.delete(&id, None, now_ms)).await {
            tracing::error!(group = group_id, error = %e, "cannot delete group");
            return kafka_code(&e);
        }
        g.kill();
        self.map().remove(group_id);
        self.consumer_map().remove(group_id);
        0
    }

    /// OffsetDelete: `Err` for the whole group, else a code per partition asked.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<(String, i32, i16)>, i16> {
        let Some(shared) = self.group(group_id) else {
            return Err(code(ResponseError::GroupIdNotFound));
        };
        let g = shared.lock().await;
        let consumer_topics = match self.active_consumer_group(group_id).await {
            Some(cg) => Some(cg.lock().await.subscribed_topics()),
            None => None,
        };
        let subscribed = match (consumer_topics, g.state()) {
            (Some(topics), _) => topics,
            (None, State::Dead) => return Err(code(ResponseError::GroupIdNotFound)),
            (None, State::Empty) => Default::default(),
            (None, _) => g
                .subscribed_topics()
                .ok_or(code(ResponseError::NonEmptyGroup))?,
        };
        let mut result = Vec::with_capacity(partitions.len());
        let mut doomed = Vec::new();
        for (topic, p) in partitions {
            if subscribed.contains(&topic) {
                result.push((topic, p, code(ResponseError::GroupSubscribedToTopic)));
            } else {
                doomed.push((topic.clone(), p));
                result.push((topic, p, 0));
            }
        }
        let store = self.store.clone();
        let id = group_id.to_owned();
        let now_ms = Now::system().wall_ms;
        if let Err(e) = blocking(move || store.delete(&id, Some(&doomed), now_ms)).await {
            tracing::error!(group = group_id, error = %e, "cannot delete offsets");
            let c = kafka_code(&e);
            for r in &mut result {
                if r.2 == 0 {
                    r.2 = c;
                }
            }
        }
        Ok(result)
    }

    fn snapshot(&self) -> Vec<(String, Shared)> {
        self.map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Expires sessions and rebalance deadlines of every group. A group busy with a
    /// request is skipped until the next tick.
    pub async fn tick(&self) {
        let now = Now::system();
        for (id, shared) in self.snapshot() {
            let Ok(mut g) = shared.try_lock() else {
                continue;
            };
            g.tick(now);
            self.persist(&id, &mut g).await;
        }
        let consumer_groups: Vec<_> = self
            .consumer_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, shared) in consumer_groups {
            if let Ok(mut g) = shared.try_lock() {
                g.tick(now);
                let _ = self.persist_consumer(&id, &mut g).await;
            }
        }
    }

    /// Kafka's offset expiry (`offsets.retention.minutes`): the offsets of a group that
    /// has been empty for the retention period go, and so does the group; a simple
    /// group's offsets expire one by one, by commit time.
    pub async fn expire_offsets(&self, retention: Duration) {
        let now = Now::system();
        let retention_ms = retention.as_millis().min(i64::MAX as u128) as i64;
        let cutoff = now.wall_ms.saturating_sub(retention_ms);
        for (id, shared) in self.snapshot() {
            let mut g = shared.lock().await;
            if !g.is_idle() || self.active_consumer_group(&id).await.is_some() {
                continue;
            }
            let offsets = self.store.all(&id);
            let expired: Vec<(String, i32)> = if !g.protocol_type().is_empty() {
                if g.state_since_ms() > cutoff {
                    continue;
                }
                offsets.into_iter().map(|(t, p, _)| (t, p)).collect()
            } else {
                offsets
                    .into_iter()
                    .filter(|(_, _, c)| c.commit_timestamp_ms <= cutoff)
                    .map(|(t, p, _)| (t, p))
                    .collect()
            };
            // Kafka: an offset an open transaction is about to replace does not expire,
            // and a group with open transactions stays.
            let expired: Vec<(String, i32)> = expired
                .into_iter()
                .filter(|(t, p)| !self.store.has_pending(&id, t, *p))
                .collect();
            let all_gone = expired.len() == self.store.all(&id).len()
                && !self.store.has_open_transactions(&id);
            let store = self.store.clone();
            let group_id = id.clone();
            let result = if all_gone {
                blocking(move || store.delete(&group_id, None, now.wall_ms)).await
            } else if !expired.is_empty() {
                blocking(move || store.delete(&group_id, Some(&expired), now.wall_ms)).await
            } else {
                continue;
            };
            match result {
                Ok(()) if all_gone => {
                    tracing::info!(group = %id, "offsets expired; group removed");
                    g.kill();
                    drop(g);
                    self.map().remove(&id);
                    self.consumer_map().remove(&id);
                }
                Ok(()) => {}
                Err(e) => tracing::error!(group = %id, error = %e, "cannot expire offsets"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::classic::JoinParams;
    use medulla_log::{FsyncPolicy, LogManager, LogManagerOptions, SystemClock};

    fn coordinator(dir: &std::path::Path) -> (Arc<LogManager>, Coordinator) {
        let log = LogManager::open(LogManagerOptions {
            data_dir: dir.to_owned(),
            fsync: FsyncPolicy::Never,
            broker_defaults: Default::default(),
            clock: Arc::new(SystemClock),
            recovery_threads: medulla_log::DEFAULT_RECOVERY_THREADS,
        })
        .unwrap();
        log.create_topic("t", 1, &Default::default(), false)
            .unwrap();
        let store = Arc::new(GroupStore::open(log.clone(), 3, 1 << 20).unwrap());
        let config = GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..GroupConfig::default()
        };
        (
            log,
            Coordinator::open(store, config, ConsumerConfig::default()),
        )
    }

    fn offset(n: i64) -> Committed {
        Committed {
            offset: n,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: Now::system().wall_ms,
        }
    }

    async fn listed(c: &Coordinator) -> Vec<(String, &'static str)> {
        c.list()
            .await
            .into_iter()
            .map(|l| (l.group_id, l.state))
            .collect()
    }

    #[tokio::test]
    async fn expired_offsets_go_and_their_empty_groups_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let (log, c) = coordinator(dir.path());
        // A simple group (offsets only) and a group whose only member has left.
        c.commit(
            "simple",
            ("", None, -1),
            9,
            vec![("t".into(), 0, offset(5))],
        )
        .await
        .unwrap();
        let join = JoinParams {
            member_id: String::new(),
            instance_id: Some("i".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), bytes::Bytes::new())],
            require_known_member_id: true,
        };
        let Answer::Wait(rx) = c.join("left", join).await else {
            panic!("a static member waits for its generation");
        };
        let joined = rx.await.unwrap();
        let sync = SyncParams {
            member_id: joined.member_id.clone(),
            instance_id: Some("i".into()),
            generation: joined.generation,
            protocol_type: None,
            protocol: None,
            assignments: vec![],
        };
        let Answer::Wait(rx) = c.sync("left", sync).await else {
            panic!("the leader's sync waits for the record to be written");
        };
        assert_eq!(rx.await.unwrap().error, 0);
        c.commit(
            "left",
            (&joined.member_id, Some("i"), joined.generation),
            9,
            vec![("t".into(), 0, offset(7))],
        )
        .await
        .unwrap();
        assert_eq!(
            c.leave("left", &[(joined.member_id, None)]).await,
            Ok(vec![0])
        );
        assert_eq!(
            listed(&c).await,
            vec![("left".into(), "Empty"), ("simple".into(), "Empty")]
        );

        // Not yet due: nothing changes.
        c.expire_offsets(Duration::from_secs(3600)).await;
        assert_eq!(listed(&c).await.len(), 2);
        assert_eq!(c.store().get("simple", "t", 0).map(|c| c.offset), Some(5));

        c.expire_offsets(Duration::ZERO).await;
        assert!(listed(&c).await.is_empty());
        assert_eq!(c.store().get("simple", "t", 0), None);
        assert_eq!(c.store().get("left", "t", 0), None);

        // The tombstones are durable: a reopened coordinator knows neither group.
        drop(c);
        let store = Arc::new(GroupStore::open(log, 3, 1 << 20).unwrap());
        let reopened = Coordinator::open(store, GroupConfig::default(), ConsumerConfig::default());
        assert!(listed(&reopened).await.is_empty());
    }
}
