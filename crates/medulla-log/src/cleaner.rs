//! The log cleaner: compaction of `cleanup.policy=compact` partitions, as Apache Kafka's
//! `LogCleaner` does it, on background threads owned by the [`crate::LogManager`].
//!
//! A pass over one partition (see `partition/clean.rs`) builds a key → latest-offset
//! [`OffsetMap`] over the dirty section, then rewrites the sealed segments from the log
//! start up to where the map reaches, dropping every record a later offset of the same
//! key supersedes. This module holds what the passes share: the settings
//! ([`CleanerConfig`], Kafka's `log.cleaner.*` broker keys), the bounded key map, the
//! I/O [`Throttler`] and the threads that pick the filthiest partition and clean it.
//!
//! Invariants: offsets never change; the active segment is never read by a pass; the
//! partition's lock is taken only to snapshot its segments and to swap cleaned ones in.

pub(crate) mod filter;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::PartitionLog;
use crate::limits::{CLEANER_DEDUPE_BUFFER_BYTES_MIN, CLEANER_THREADS_MAX};

/// The cleaner's broker-level settings, with Kafka's key names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable` (default true): without it compacted topics are not cleaned.
    pub enable: bool,
    /// `log.cleaner.threads` (default 1; 0 cleans nothing).
    pub threads: u32,
    /// `log.cleaner.io.max.bytes.per.second` (default unlimited): bytes read plus
    /// written by all cleaner threads together.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size` (default 128 MiB), shared out between the
    /// threads: bounds each pass's key map. When the dirty section holds more keys than
    /// fit, a pass cleans only as far as its map reaches, as Kafka does.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.backoff.ms` (default 15000): how long a thread sleeps when no
    /// partition needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            io_max_bytes_per_second: f64::MAX,
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            backoff_ms: 15_000,
        }
    }
}

/// Memory of one key-map slot: a 128-bit key hash, an `i64` offset and the hash
/// table's control byte.
const MAP_BUCKET_BYTES: u64 = 16 + 8 + 1;

impl CleanerConfig {
    /// Checks the relations Kafka leaves to run time: a thread count within
    /// [`CLEANER_THREADS_MAX`], a positive I/O rate and at least
    /// [`CLEANER_DEDUPE_BUFFER_BYTES_MIN`] of dedupe buffer per thread.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads > CLEANER_THREADS_MAX {
            return Err(format!(
                "log.cleaner.threads {} is more than {CLEANER_THREADS_MAX}",
                self.threads
            ));
        }
        if self.io_max_bytes_per_second.is_nan() || self.io_max_bytes_per_second <= 0.0 {
            return Err("log.cleaner.io.max.bytes.per.second must be positive".into());
        }
        if self.dedupe_buffer_bytes / u64::from(self.threads.max(1))
            < CLEANER_DEDUPE_BUFFER_BYTES_MIN
        {
            return Err(format!(
                "log.cleaner.dedupe.buffer.size {} leaves less than {CLEANER_DEDUPE_BUFFER_BYTES_MIN} bytes per cleaner thread",
                self.dedupe_buffer_bytes
            ));
        }
        Ok(())
    }

    /// Most keys one thread's map holds. The hash table's buckets are a power of two,
    /// at most 7/8 full, so this is what keeps the whole table within the thread's
    /// share of `log.cleaner.dedupe.buffer.size`.
    pub(crate) fn map_entries_max(&self) -> usize {
        let share = (self.dedupe_buffer_bytes / u64::from(self.threads.max(1)))
            .max(CLEANER_DEDUPE_BUFFER_BYTES_MIN);
        let buckets = 1u64 << (share / MAP_BUCKET_BYTES).ilog2();
        (buckets / 8 * 7) as usize
    }
}

/// Passes the 128-bit key hash through as the table's hash: it is already random.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// Key → latest offset over a pass's dirty section, bounded to `capacity` keys.
///
/// Keys are stored as 128-bit hashes (two SipHash-1-3 with random keys, chosen per
/// map), as Kafka stores MD5s: 24 bytes a key whatever its length. Two keys colliding
/// would drop a live record; with random 128-bit hashes the odds for a billion keys
/// are below 10^-20, and an attacker cannot aim at them (the hash keys are secret).
pub(crate) struct OffsetMap {
    entries: HashMap<u128, i64, BuildHasherDefault<PassThroughHasher>>,
    hashers: [RandomState; 2],
    capacity: usize,
}

impl OffsetMap {
    pub fn new(capacity: usize) -> OffsetMap {
        OffsetMap {
            entries: HashMap::default(),
            hashers: [RandomState::new(), RandomState::new()],
            capacity,
        }
    }

    fn hash(&self, key: &[u8]) -> u128 {
        let [a, b] = &self.hashers;
        (u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key))
    }

    /// Records `offset` as the latest of `key`. False, and nothing recorded, when the
    /// key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = self.hash(key);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&hash) {
            return false;
        }
        self.entries.insert(hash, offset);
        true
    }

    /// The latest offset of `key`, if the map holds it.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&self.hash(key)).copied()
    }

    /// Empties the map for the next pass (keeping its memory, as Kafka reuses its buffer).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Keeps the cleaner's reads and writes under `log.cleaner.io.max.bytes.per.second`
/// (shared by every thread, like Kafka's throttler): after each chunk of I/O a thread
/// sleeps long enough for the rate over the current window to fall back to the limit.
pub(crate) struct Throttler {
    bytes_per_second: f64,
    window: Mutex<(Instant, u64)>,
}

/// The throttler's measuring window.
const THROTTLE_WINDOW: Duration = Duration::from_secs(1);

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Accounts for `bytes` of I/O, sleeping if the rate is above the limit.
    pub fn io(&self, bytes: u64) {
        let sleep = self.account(bytes, Instant::now());
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }

    /// Accounts for `bytes` of I/O at `now`; returns how long to wait to stay within the
    /// rate.
    fn account(&self, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_second >= f64::MAX {
            return Duration::ZERO;
        }
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let (start, done) = &mut *window;
        *done += bytes;
        let elapsed = now.saturating_duration_since(*start);
        let due = Duration::from_secs_f64(*done as f64 / self.bytes_per_second);
        let sleep = due.saturating_sub(elapsed);
        if elapsed + sleep >= THROTTLE_WINDOW {
            *start = now + sleep;
            *done = 0;
        }
        sleep
    }
}

/// What one pass needs besides the partition: the thread's key map, the shared
/// throttler and the stop flag (checked between batches, so a pass ends promptly when
/// the manager closes).
pub(crate) struct PassContext<'a> {
    pub map: &'a mut OffsetMap,
    pub throttler: &'a Throttler,
    pub stop: &'a AtomicBool,
}

/// Partitions to consider, read afresh every round (topics come and go).
pub(crate) type PartitionSource = Arc<dyn Fn() -> Vec<Arc<PartitionLog>> + Send + Sync>;

struct Shared {
    stop: AtomicBool,
    /// Signalled with `stop`, so sleeping threads wake at once.
    sleeping: Mutex<()>,
    wake: Condvar,
    throttler: Throttler,
    config: CleanerConfig,
    partitions: PartitionSource,
}

/// The running cleaner threads.
pub(crate) struct CleanerThreads {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl CleanerThreads {
    /// Starts `config.threads` threads (none when disabled).
    pub fn start(
        config: CleanerConfig,
        partitions: PartitionSource,
    ) -> std::io::Result<CleanerThreads> {
        let threads = if config.enable { config.threads } else { 0 };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sleeping: Mutex::new(()),
            wake: Condvar::new(),
            throttler: Throttler::new(config.io_max_bytes_per_second),
            config,
            partitions,
        });
        let mut handles = Vec::new();
        for i in 0..threads {
            let shared = Arc::clone(&shared);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("medulla-log-cleaner-{i}"))
                    .spawn(move || run(&shared))?,
            );
        }
        Ok(CleanerThreads { shared, handles })
    }

    /// Stops every thread (a pass in progress is abandoned; its files are removed) and
    /// waits for them.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _sleeping = self.shared.sleeping.lock();
            self.shared.wake.notify_all();
        }
        for handle in self.handles {
            // The last manager handle may be dropped on a cleaner thread itself.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut map = OffsetMap::new(shared.config.map_entries_max());
    let backoff = Duration::from_millis(shared.config.backoff_ms.max(1));
    while !shared.stop.load(Ordering::SeqCst) {
        let mut context = PassContext {
            map: &mut map,
            throttler: &shared.throttler,
            stop: &shared.stop,
        };
        let cleaned = clean_filthiest(&(shared.partitions)(), &mut context);
        if cleaned {
            continue;
        }
        let sleeping = shared.sleeping.lock().unwrap_or_else(|p| p.into_inner());
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = shared.wake.wait_timeout(sleeping, backoff);
    }
}

/// Cleans the eligible partition with the highest dirty ratio that no other thread is
/// cleaning (a partition past `max.compaction.lag.ms` or with an expired delete horizon
/// comes first). Returns whether it cleaned one.
pub(crate) fn clean_filthiest(
    partitions: &[Arc<PartitionLog>],
    context: &mut PassContext<'_>,
) -> bool {
    let mut candidates: Vec<(bool, f64, &Arc<PartitionLog>)> = partitions
        .iter()
        .filter_map(|p| p.cleanable().map(|c| (c.forced, c.dirty_ratio, p)))
        .collect();
    candidates.sort_by(|a, b| {
        (b.0, b.1)
            .partial_cmp(&(a.0, a.1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (_, _, partition) in candidates {
        let Some(_claim) = partition.claim_cleaning() else {
            continue;
        };
        match partition.clean(context) {
            Ok(Some(stats)) => {
                tracing::info!(
                    topic = partition.topic(),
                    partition = partition.partition(),
                    bytes_before = stats.bytes_before,
                    bytes_after = stats.bytes_after,
                    records_dropped = stats.records_dropped,
                    segments_before = stats.segments_before,
                    segments_after = stats.segments_after,
                    first_dirty_offset = stats.first_dirty_offset,
                    "cleaned partition"
                );
                return true;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(
                topic = partition.topic(),
                partition = partition.partition(),
                error = %e,
                "cleaning failed"
            ),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_bounded_and_keeps_the_latest_offset() {
        let mut map = OffsetMap::new(2);
        assert!(map.put(b"a", 1));
        assert!(map.put(b"b", 2));
        assert!(map.put(b"a", 3), "a known key is updated when full");
        assert!(!map.put(b"c", 4), "a new key is refused when full");
        assert_eq!(
            (map.get(b"a"), map.get(b"b"), map.get(b"c")),
            (Some(3), Some(2), None)
        );
        map.clear();
        assert_eq!(map.len(), 0);
        assert!(map.put(b"c", 4));
    }

    #[test]
    fn map_size_fits_the_dedupe_buffer() {
        let config = CleanerConfig::default();
        let entries = config.map_entries_max();
        // 128 MiB / 25 B → 4 Mi buckets (8 Mi would need 200 MiB), 7/8 of them usable.
        assert_eq!(entries, (4 << 20) / 8 * 7);
        assert!(entries as u64 * 8 / 7 * MAP_BUCKET_BYTES <= config.dedupe_buffer_bytes);
        let two = CleanerConfig {
            threads: 2,
            ..config.clone()
        };
        assert_eq!(two.map_entries_max(), entries / 2);
        assert!(config.validate().is_ok());
        let tiny = CleanerConfig {
            dedupe_buffer_bytes: CLEANER_DEDUPE_BUFFER_BYTES_MIN,
            threads: 2,
            ..config
        };
        assert!(tiny.validate().unwrap_err().contains("per cleaner thread"));
    }

    #[test]
    fn throttler_holds_the_rate() {
        // No real time passes: each call is accounted at an instant the test chooses.
        let throttler = Throttler::new(1_000_000.0);
        let start = {
            let window = throttler.window.lock().unwrap();
            window.0
        };
        let mut now = start;
        for _ in 0..10 {
            // The caller sleeps what it is told, then goes on.
            now += throttler.account(20_000, now);
        }
        // 200 kB at 1 MB/s: 0.2 s.
        let waited = now - start;
        assert!(
            waited >= Duration::from_millis(199) && waited <= Duration::from_millis(201),
            "{waited:?}"
        );
        // Going slower than the rate never waits.
        assert_eq!(
            throttler.account(1_000, now + Duration::from_secs(5)),
            Duration::ZERO
        );
        let unlimited = Throttler::new(f64::MAX);
        assert_eq!(
            unlimited.account(u64::MAX / 2, Instant::now()),
            Duration::ZERO
        );
    }
}
