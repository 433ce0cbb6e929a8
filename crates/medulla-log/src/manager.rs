//! The [`LogManager`]: one data directory, its lock, its topics and their partitions.
//!
//! Layout of the data directory:
//!
//! ```text
//! <data_dir>/.lock                      held (flock) for the manager's lifetime
//! <data_dir>/.clean_shutdown            written by close(), removed by open()
//! <data_dir>/topics/<name>/topic.json   name, id, partition count, config overrides
//! <data_dir>/topics/<name>/<partition>/ segments (<20-digit base>.log/.index/.timeindex)
//!                                       and checkpoints (log-start-offset, recovery-point)
//! <data_dir>/staging/                   topics being created (renamed into topics/)
//! <data_dir>/trash/                     topics being deleted (renamed out of topics/)
//! ```
//!
//! Every change of metadata is one atomic rename followed by an fsync of the directory,
//! so a crash leaves either the old or the new state: a topic is built in `staging/` and
//! renamed into `topics/`; a deleted topic is renamed into `trash/` before its files are
//! removed; `topic.json` is replaced through a temporary file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cleaner::{self, CleanerThreads, OffsetMap, PassContext, Throttler};
use crate::config::{is_known_config, validate_topic_name};
use crate::fsutil;
use crate::limits::{
    FLUSH_TICK_MS, PARTITIONS_PER_TOPIC_MAX, RECOVERY_THREADS_MAX, TOPIC_METADATA_FILE_BYTES_MAX,
};
use crate::partition::OpenPartition;
use crate::{CleanerConfig, Clock, LogError, PartitionLog, TopicConfig, parallel};

const LOCK_FILE: &str = ".lock";
const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";
const TOPICS_DIR: &str = "topics";
const STAGING_DIR: &str = "staging";
const TRASH_DIR: &str = "trash";
const TOPIC_FILE: &str = "topic.json";
const TOPIC_FILE_VERSION: u32 = 1;

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before an `acks=all` produce is answered (group commit). The default.
    Always,
    /// In the background every `interval_ms`.
    Interval {
        /// Time between background flushes.
        interval_ms: u64,
    },
    /// Never explicitly; the OS writes back when it likes.
    Never,
}

/// How to open a [`LogManager`].
pub struct LogManagerOptions {
    /// The data directory (Kafka's `log.dirs`, one directory).
    pub data_dir: PathBuf,
    /// The fsync policy (`medulla.log.fsync.policy`).
    pub fsync: FsyncPolicy,
    /// Topic-config defaults from the broker's settings, see [`crate::config::broker_log_defaults`].
    pub broker_defaults: BTreeMap<String, String>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Threads that open (and recover) the partitions at start and flush them at close
    /// (Kafka's `num.recovery.threads.per.data.dir`; [`DEFAULT_RECOVERY_THREADS`]).
    /// Clamped to `1..=`[`RECOVERY_THREADS_MAX`].
    pub recovery_threads: usize,
}

/// Kafka 4's default `num.recovery.threads.per.data.dir`.
pub const DEFAULT_RECOVERY_THREADS: usize = 2;

/// A topic as the broker sees it.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Kafka topic id (a random UUID fixed at creation).
    pub id: uuid::Uuid,
    /// Number of partitions.
    pub partitions: u32,
    /// Effective config.
    pub config: Arc<TopicConfig>,
}

/// A config change, as AlterConfigs (replace all overrides) or IncrementalAlterConfigs
/// (per-key operations) ask for it.
#[derive(Debug, Clone)]
pub enum AlterOp {
    /// Replace the whole override set.
    Replace(BTreeMap<String, String>),
    /// Apply operations in order: `(name, Some(value))` sets, `(name, None)` deletes
    /// (reverts to the default). APPEND / SUBTRACT are resolved by the caller.
    Incremental(Vec<(String, Option<String>)>),
}

/// `topic.json`.
#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    version: u32,
    name: String,
    topic_id: String,
    partitions: u32,
    configs: BTreeMap<String, String>,
}

type Topics = BTreeMap<String, Arc<TopicEntry>>;

/// A loaded topic. Replaced whole (copy on write) by admin operations.
struct TopicEntry {
    id: uuid::Uuid,
    config: Arc<TopicConfig>,
    partitions: Vec<Arc<PartitionLog>>,
}

struct Flusher {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

/// A topic whose `topic.json` was read at open, before its partitions are.
struct LoadedTopic {
    name: String,
    dir: PathBuf,
    id: uuid::Uuid,
    config: Arc<TopicConfig>,
    partitions: u32,
}

/// Owner of a data directory. Cheap to share behind an `Arc`.
pub struct LogManager {
    data_dir: PathBuf,
    /// Holds the directory's flock until dropped.
    _lock: File,
    fsync: FsyncPolicy,
    recovery_threads: usize,
    /// Replaced whole by [`LogManager::set_broker_defaults`]; read under `admin` by the
    /// operations that resolve topic configs.
    broker_defaults: RwLock<BTreeMap<String, String>>,
    clock: Arc<dyn Clock>,
    /// Shared with the flusher thread, which must not own the manager itself (the
    /// manager's drop, which releases the directory lock, has to happen on its owner's
    /// thread).
    topics: Arc<RwLock<Topics>>,
    /// Serialises create / delete / alter so that each sees the others' results.
    admin: Mutex<()>,
    closed: AtomicBool,
    flusher: Mutex<Option<Flusher>>,
    cleaner: Mutex<Option<CleanerThreads>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn invalid_data(path: &Path, why: impl std::fmt::Display) -> LogError {
    LogError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    ))
}

fn all_partitions(topics: &RwLock<Topics>) -> Vec<Arc<PartitionLog>> {
    let topics = topics.read().unwrap_or_else(|p| p.into_inner());
    topics
        .values()
        .flat_map(|t| t.partitions.iter().cloned())
        .collect()
}

/// Removes everything inside `dir` (leftovers of interrupted creations and deletions).
fn empty_dir(dir: &Path) -> crate::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

impl LogManager {
    /// Opens (creating if needed) and locks the data directory, loads every topic and
    /// recovers every partition. Fails with [`crate::LogError::DataDirLocked`] if
    /// another process holds it.
    pub fn open(options: LogManagerOptions) -> crate::Result<Arc<LogManager>> {
        let LogManagerOptions {
            data_dir,
            fsync,
            broker_defaults,
            clock,
            recovery_threads,
        } = options;
        let recovery_threads = recovery_threads.clamp(1, RECOVERY_THREADS_MAX);
        std::fs::create_dir_all(&data_dir)?;
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_dir.join(LOCK_FILE))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LogError::DataDirLocked(data_dir)),
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        // Broker defaults are checked once here so a bad setting stops the broker at
        // start instead of failing every topic creation.
        TopicConfig::resolve(&broker_defaults, &BTreeMap::new())?;

        let clean_marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = clean_marker.exists();
        for dir in [TOPICS_DIR, STAGING_DIR, TRASH_DIR] {
            std::fs::create_dir_all(data_dir.join(dir))?;
        }
        empty_dir(&data_dir.join(STAGING_DIR))?;
        empty_dir(&data_dir.join(TRASH_DIR))?;

        let mut names: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(data_dir.join(TOPICS_DIR))? {
            let entry = entry?;
            match entry.file_name().into_string() {
                Ok(name) if entry.file_type()?.is_dir() && validate_topic_name(&name).is_ok() => {
                    names.push(name)
                }
                _ => {
                    tracing::warn!(path = %entry.path().display(), "ignoring unexpected entry in topics/")
                }
            }
        }
        names.sort();
        let loaded = names
            .into_iter()
            .map(|name| Self::load_topic(&data_dir, name, &broker_defaults))
            .collect::<crate::Result<Vec<_>>>()?;
        let topics =
            Self::open_partitions(loaded, fsync, &clock, clean_shutdown, recovery_threads)?;

        // Recovery is done: from here on a crash is an unclean shutdown again.
        if clean_shutdown {
            std::fs::remove_file(&clean_marker)?;
        }
        fsutil::sync_dir(&data_dir)?;

        let manager = Arc::new(LogManager {
            data_dir,
            _lock: lock_file,
            fsync,
            recovery_threads,
            broker_defaults: RwLock::new(broker_defaults),
            clock,
            topics: Arc::new(RwLock::new(topics)),
            admin: Mutex::new(()),
            closed: AtomicBool::new(false),
            flusher: Mutex::new(None),
            cleaner: Mutex::new(None),
        });
        manager.start_flusher()?;
        Ok(manager)
    }

    /// Reads and checks `topic.json` and removes partition directories beyond its count.
    fn load_topic(
        data_dir: &Path,
        name: String,
        broker_defaults: &BTreeMap<String, String>,
    ) -> crate::Result<LoadedTopic> {
        let dir = data_dir.join(TOPICS_DIR).join(&name);
        let path = dir.join(TOPIC_FILE);
        let tmp = dir.join(format!("{TOPIC_FILE}{}", fsutil::TMP_SUFFIX));
        if tmp.exists() {
            // An alter that did not finish: the old topic.json stands.
            std::fs::remove_file(&tmp)?;
        }
        // topic.json is only ever replaced atomically, so a missing or unreadable one is
        // damage an operator must look at, not something to guess around.
        let bytes = fsutil::read_small(&path, TOPIC_METADATA_FILE_BYTES_MAX)?
            .ok_or_else(|| invalid_data(&path, "missing"))?;
        let file: TopicFile = serde_json::from_slice(&bytes).map_err(|e| invalid_data(&path, e))?;
        if file.version != TOPIC_FILE_VERSION || file.name != name {
            return Err(invalid_data(
                &path,
                "unknown version or a name that does not match its directory",
            ));
        }
        let id = uuid::Uuid::parse_str(&file.topic_id).map_err(|e| invalid_data(&path, e))?;
        if file.partitions == 0 || file.partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(invalid_data(
                &path,
                format!("partition count {}", file.partitions),
            ));
        }
        let config = Arc::new(TopicConfig::resolve(broker_defaults, &file.configs)?);
        // Partition directories beyond the count come from a CreatePartitions that did
        // not reach its topic.json update; they never took a write.
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let extra = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|p| p >= file.partitions);
            if extra && entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(LoadedTopic {
            name,
            dir,
            id,
            config,
            partitions: file.partitions,
        })
    }

    /// Opens (and recovers) every partition of `loaded` on `threads` threads, as Kafka's
    /// `LogManager.loadLogs` does with its recovery pool. A partition that cannot be
    /// opened stops the open with [`LogError::Partition`] naming it.
    fn open_partitions(
        loaded: Vec<LoadedTopic>,
        fsync: FsyncPolicy,
        clock: &Arc<dyn Clock>,
        clean_shutdown: bool,
        threads: usize,
    ) -> crate::Result<Topics> {
        let started = Instant::now();
        let jobs: Vec<(usize, u32)> = loaded
            .iter()
            .enumerate()
            .flat_map(|(t, topic)| (0..topic.partitions).map(move |p| (t, p)))
            .collect();
        let opened = parallel::map(&jobs, threads, "medulla-recovery", |&(t, p)| {
            let topic = &loaded[t];
            PartitionLog::open(OpenPartition {
                topic: topic.name.clone(),
                partition: p as i32,
                dir: topic.dir.join(p.to_string()),
                config: Arc::clone(&topic.config),
                clock: Arc::clone(clock),
                fsync,
                clean_shutdown,
            })
            .map(Arc::new)
            .map_err(|e| LogError::Partition {
                topic: topic.name.clone(),
                partition: p as i32,
                source: Box::new(e),
            })
        })?;
        let mut opened = opened.into_iter();
        let mut topics = Topics::new();
        for topic in loaded {
            let partitions = opened.by_ref().take(topic.partitions as usize).collect();
            topics.insert(
                topic.name,
                Arc::new(TopicEntry {
                    id: topic.id,
                    config: topic.config,
                    partitions,
                }),
            );
        }
        tracing::info!(
            partitions = jobs.len(),
            threads,
            clean_shutdown,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened the log"
        );
        Ok(topics)
    }

    fn start_flusher(self: &Arc<Self>) -> crate::Result<()> {
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = match self.fsync {
            FsyncPolicy::Interval { interval_ms } => Some(interval_ms.max(1)),
            _ => None,
        };
        let tick = Duration::from_millis(interval.unwrap_or(FLUSH_TICK_MS));
        let topics = Arc::clone(&self.topics);
        let handle = std::thread::Builder::new()
            .name("medulla-log-flush".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(tick) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    for partition in all_partitions(&topics) {
                        if (interval.is_some() || partition.flush_due())
                            && let Err(e) = partition.flush()
                        {
                            tracing::error!(
                                topic = partition.topic(),
                                partition = partition.partition(),
                                error = %e,
                                "background flush failed"
                            );
                        }
                    }
                }
            })?;
        *lock(&self.flusher) = Some(Flusher { stop, handle });
        Ok(())
    }

    fn stop_flusher(&self) {
        let Some(flusher) = lock(&self.flusher).take() else {
            return;
        };
        let _ = flusher.stop.send(());
        // The last Arc may be dropped by the flusher thread itself; it must not join itself.
        if flusher.handle.thread().id() != std::thread::current().id() {
            let _ = flusher.handle.join();
        }
    }

    /// Starts the log cleaner's background threads (`log.cleaner.*`), which compact the
    /// partitions of `cleanup.policy=compact` topics. Nothing runs when it is disabled
    /// or has no threads. Calling it again replaces the running cleaner.
    pub fn start_cleaner(&self, config: CleanerConfig) -> crate::Result<()> {
        self.check_open()?;
        config.validate().map_err(LogError::InvalidConfig)?;
        self.stop_cleaner();
        let topics = Arc::clone(&self.topics);
        let threads = CleanerThreads::start(config, Arc::new(move || all_partitions(&topics)))?;
        *lock(&self.cleaner) = Some(threads);
        Ok(())
    }

    fn stop_cleaner(&self) {
        if let Some(threads) = lock(&self.cleaner).take() {
            threads.stop();
        }
    }

    /// Cleans, on the calling thread, every compacted partition that is eligible now,
    /// until none is (for tests and tools; the background cleaner does the same).
    /// Returns how many passes ran.
    pub fn clean_now(&self, config: &CleanerConfig) -> crate::Result<usize> {
        self.check_open()?;
        config.validate().map_err(LogError::InvalidConfig)?;
        let mut map = OffsetMap::new(config.map_entries_max());
        let throttler = Throttler::new(config.io_max_bytes_per_second);
        let stop = AtomicBool::new(false);
        let mut context = PassContext {
            map: &mut map,
            throttler: &throttler,
            stop: &stop,
        };
        let partitions = self.all_partitions();
        let mut passes = 0;
        // Each pass leaves its partition clean up to the active segment (or as far as the
        // map reached), so this ends; the bound only guards against a clock that moves.
        while passes < partitions.len() * 64 && cleaner::clean_filthiest(&partitions, &mut context)
        {
            passes += 1;
        }
        Ok(passes)
    }

    fn all_partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.read_topics()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<TopicEntry>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<TopicEntry>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    fn check_open(&self) -> crate::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(LogError::Io(std::io::Error::other(
                "the log manager is closed",
            )));
        }
        Ok(())
    }

    fn topic_dir(&self, name: &str) -> PathBuf {
        self.data_dir.join(TOPICS_DIR).join(name)
    }

    fn meta(name: &str, entry: &TopicEntry) -> TopicMeta {
        TopicMeta {
            name: name.to_owned(),
            id: entry.id,
            partitions: entry.partitions.len() as u32,
            config: Arc::clone(&entry.config),
        }
    }

    fn write_topic_file(
        dir: &Path,
        name: &str,
        id: uuid::Uuid,
        partitions: u32,
        config: &TopicConfig,
    ) -> crate::Result<()> {
        let file = TopicFile {
            version: TOPIC_FILE_VERSION,
            name: name.to_owned(),
            topic_id: id.to_string(),
            partitions,
            configs: config.overrides.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        fsutil::write_atomic(&dir.join(TOPIC_FILE), &bytes)?;
        Ok(())
    }

    fn open_partition(
        &self,
        name: &str,
        partition: u32,
        config: &Arc<TopicConfig>,
    ) -> crate::Result<Arc<PartitionLog>> {
        Ok(Arc::new(PartitionLog::open(OpenPartition {
            topic: name.to_owned(),
            partition: partition as i32,
            dir: self.topic_dir(name).join(partition.to_string()),
            config: Arc::clone(config),
            clock: Arc::clone(&self.clock),
            fsync: self.fsync,
            clean_shutdown: true,
        })?))
    }

    fn check_partition_count(partitions: u32) -> crate::Result<()> {
        if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(LogError::InvalidPartitions(format!(
                "{partitions} partitions; must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"
            )));
        }
        Ok(())
    }

    /// Creates a topic (or only validates, with `validate_only`). Name rules are Kafka's.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> crate::Result<TopicMeta> {
        self.check_open()?;
        validate_topic_name(name)?;
        Self::check_partition_count(partitions)?;
        let config = Arc::new(TopicConfig::resolve(&self.broker_defaults(), configs)?);
        let _admin = lock(&self.admin);
        {
            let topics = self.read_topics();
            if topics.contains_key(name) {
                return Err(LogError::TopicAlreadyExists(name.to_owned()));
            }
            // Kafka refuses names that differ only by '.' and '_' (they collide in metrics).
            let folded = name.replace('.', "_");
            if let Some(other) = topics.keys().find(|t| t.replace('.', "_") == folded) {
                return Err(LogError::InvalidTopic(format!(
                    "{name:?} collides with existing topic {other:?}"
                )));
            }
        }
        let id = uuid::Uuid::new_v4();
        let entry = TopicEntry {
            id,
            config: Arc::clone(&config),
            partitions: Vec::new(),
        };
        if validate_only {
            return Ok(TopicMeta {
                partitions,
                ..Self::meta(name, &entry)
            });
        }

        let staging = self.data_dir.join(STAGING_DIR).join(id.to_string());
        std::fs::create_dir(&staging)?;
        Self::write_topic_file(&staging, name, id, partitions, &config)?;
        for p in 0..partitions {
            std::fs::create_dir(staging.join(p.to_string()))?;
        }
        fsutil::sync_dir(&staging)?;
        let topics_dir = self.data_dir.join(TOPICS_DIR);
        std::fs::rename(&staging, topics_dir.join(name))?;
        fsutil::sync_dir(&topics_dir)?;

        let partition_logs = (0..partitions)
            .map(|p| self.open_partition(name, p, &config))
            .collect::<crate::Result<Vec<_>>>()?;
        let entry = TopicEntry {
            partitions: partition_logs,
            ..entry
        };
        let meta = Self::meta(name, &entry);
        self.write_topics().insert(name.to_owned(), Arc::new(entry));
        tracing::info!(topic = name, partitions, %id, "created topic");
        Ok(meta)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> crate::Result<()> {
        self.check_open()?;
        let _admin = lock(&self.admin);
        let entry = self
            .read_topics()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))?;
        // Stop writes first so nothing is acknowledged into a topic being deleted.
        for p in &entry.partitions {
            p.mark_deleted();
        }
        let topics_dir = self.data_dir.join(TOPICS_DIR);
        let trash = self
            .data_dir
            .join(TRASH_DIR)
            // By uuid alone: `{name}-{uuid}` exceeds the 255-byte file-name limit for
            // names longer than 218 characters (Kafka allows 249).
            .join(uuid::Uuid::new_v4().to_string());
        if let Err(e) = std::fs::rename(topics_dir.join(name), &trash) {
            for p in &entry.partitions {
                p.reopen();
            }
            return Err(e.into());
        }
        fsutil::sync_dir(&topics_dir)?;
        self.write_topics().remove(name);
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            // It is out of topics/ already; the next open empties trash/.
            tracing::warn!(path = %trash.display(), error = %e, "could not remove a deleted topic's files");
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        total: u32,
        validate_only: bool,
    ) -> crate::Result<()> {
        self.check_open()?;
        let _admin = lock(&self.admin);
        let entry = self
            .read_topics()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))?;
        let current = entry.partitions.len() as u32;
        if total <= current {
            return Err(LogError::InvalidPartitions(format!(
                "topic {name} has {current} partitions; the new count {total} must be larger"
            )));
        }
        Self::check_partition_count(total)?;
        if validate_only {
            return Ok(());
        }
        let mut partitions = entry.partitions.clone();
        for p in current..total {
            partitions.push(self.open_partition(name, p, &entry.config)?);
        }
        // The count in topic.json is what makes the new partitions exist after a restart.
        Self::write_topic_file(&self.topic_dir(name), name, entry.id, total, &entry.config)?;
        let updated = TopicEntry {
            id: entry.id,
            config: Arc::clone(&entry.config),
            partitions,
        };
        self.write_topics()
            .insert(name.to_owned(), Arc::new(updated));
        Ok(())
    }

    /// Changes a topic's config overrides; persisted before it returns.
    pub fn alter_topic_config(
        &self,
        name: &str,
        op: AlterOp,
        validate_only: bool,
    ) -> crate::Result<TopicMeta> {
        self.check_open()?;
        let _admin = lock(&self.admin);
        let entry = self
            .read_topics()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))?;
        let overrides = match op {
            AlterOp::Replace(overrides) => overrides,
            AlterOp::Incremental(ops) => {
                let mut overrides = entry.config.overrides.clone();
                for (key, value) in ops {
                    match value {
                        Some(value) => {
                            overrides.insert(key, value);
                        }
                        None if !is_known_config(&key) => {
                            return Err(LogError::InvalidConfig(format!(
                                "{key}: unknown topic config"
                            )));
                        }
                        None => {
                            overrides.remove(&key);
                        }
                    }
                }
                overrides
            }
        };
        let config = Arc::new(TopicConfig::resolve(&self.broker_defaults(), &overrides)?);
        let updated = TopicEntry {
            id: entry.id,
            config: Arc::clone(&config),
            partitions: entry.partitions.clone(),
        };
        let meta = Self::meta(name, &updated);
        if validate_only {
            return Ok(meta);
        }
        Self::write_topic_file(
            &self.topic_dir(name),
            name,
            entry.id,
            entry.partitions.len() as u32,
            &config,
        )?;
        for p in &updated.partitions {
            p.set_config(Arc::clone(&config));
        }
        self.write_topics()
            .insert(name.to_owned(), Arc::new(updated));
        Ok(meta)
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.read_topics().get(name).map(|e| Self::meta(name, e))
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        self.read_topics()
            .iter()
            .find(|(_, e)| e.id == id)
            .map(|(n, e)| Self::meta(n, e))
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<TopicMeta> {
        self.read_topics()
            .iter()
            .map(|(n, e)| Self::meta(n, e))
            .collect()
    }

    /// One partition's log.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let index = usize::try_from(partition).ok()?;
        self.read_topics()
            .get(topic)?
            .partitions
            .get(index)
            .cloned()
    }

    /// The broker-level topic-config defaults in force.
    pub fn broker_defaults(&self) -> BTreeMap<String, String> {
        self.broker_defaults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the broker-level topic-config defaults (dynamic broker configs) and
    /// re-resolves every topic's effective config against them. All or nothing: if any
    /// topic's config would be invalid, nothing changes. Persisting the broker settings
    /// is the caller's job; topic overrides are untouched.
    pub fn set_broker_defaults(
        &self,
        defaults: BTreeMap<String, String>,
        validate_only: bool,
    ) -> crate::Result<()> {
        self.check_open()?;
        let _admin = lock(&self.admin);
        TopicConfig::resolve(&defaults, &BTreeMap::new())?;
        let current: Vec<(String, Arc<TopicEntry>)> = self
            .read_topics()
            .iter()
            .map(|(name, entry)| (name.clone(), Arc::clone(entry)))
            .collect();
        let mut resolved = Vec::with_capacity(current.len());
        for (name, entry) in current {
            let config = Arc::new(TopicConfig::resolve(&defaults, &entry.config.overrides)?);
            resolved.push((name, entry, config));
        }
        if validate_only {
            return Ok(());
        }
        *self
            .broker_defaults
            .write()
            .unwrap_or_else(|p| p.into_inner()) = defaults;
        let mut topics = self.write_topics();
        for (name, entry, config) in resolved {
            for p in &entry.partitions {
                p.set_config(Arc::clone(&config));
            }
            topics.insert(
                name,
                Arc::new(TopicEntry {
                    id: entry.id,
                    config,
                    partitions: entry.partitions.clone(),
                }),
            );
        }
        Ok(())
    }

    /// The fsync policy in force.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.fsync
    }

    /// Applies `retention.ms` / `retention.bytes` to every partition, deleting whole
    /// segments (never the active one) and advancing log start offsets. Returns the
    /// number of segments deleted.
    pub fn enforce_retention(&self) -> crate::Result<usize> {
        let mut deleted = 0;
        let mut first_error = None;
        for partition in self.all_partitions() {
            match partition.enforce_retention() {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::error!(topic = partition.topic(), partition = partition.partition(), error = %e, "retention failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Forgets, in every partition, the producers idle for `expiration_ms` with no open
    /// transaction (Kafka's `producer.id.expiration.ms`). Returns how many.
    pub fn expire_producers(&self, expiration_ms: i64) -> usize {
        self.all_partitions()
            .iter()
            .map(|p| p.expire_producers(expiration_ms))
            .sum()
    }

    /// Flushes every partition's data and indexes to disk.
    pub fn flush_all(&self) -> crate::Result<()> {
        let mut first_error = None;
        for partition in self.all_partitions() {
            if let Err(e) = partition.flush() {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Flushes everything and marks the shutdown clean, so the next open can skip the
    /// full tail scan. Appends after `close` fail.
    pub fn close(&self) -> crate::Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_flusher();
        self.stop_cleaner();
        let _admin = lock(&self.admin);
        let partitions = self.all_partitions();
        for partition in &partitions {
            partition.close();
        }
        // Every partition is flushed even if one fails (so no item of the pool counts as
        // failed), but only a fully flushed directory is marked clean. The pool overlaps
        // the partitions' fsyncs, as Kafka's shutdown does with its recovery threads.
        let started = Instant::now();
        let flushed = parallel::map(
            &partitions,
            self.recovery_threads,
            "medulla-close",
            |partition| {
                Ok::<_, LogError>(partition.flush_final().map_err(|e| LogError::Partition {
                    topic: partition.topic().to_owned(),
                    partition: partition.partition(),
                    source: Box::new(e),
                }))
            },
        )?;
        if let Some(e) = flushed.into_iter().find_map(|r| r.err()) {
            return Err(e);
        }
        tracing::info!(
            partitions = partitions.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed every partition"
        );
        fsutil::write_atomic(&self.data_dir.join(CLEAN_SHUTDOWN_FILE), b"")?;
        tracing::info!(data_dir = %self.data_dir.display(), "log closed cleanly");
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        self.stop_flusher();
        self.stop_cleaner();
        // The directory lock goes with the manager: partition handles that outlive it
        // must not write into a directory another process may now own.
        for partition in self.all_partitions() {
            partition.close();
        }
    }
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("data_dir", &self.data_dir)
            .field("fsync", &self.fsync)
            .field("topics", &self.read_topics().len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
