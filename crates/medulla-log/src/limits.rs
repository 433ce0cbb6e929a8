//! Every limit of the storage engine, in one place, with the relations between them
//! checked at compile time.

/// Largest partition count one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Longest topic name (Kafka's own limit: 249 so that `<name>-<partition>` and the
/// `.deleted` suffixes Kafka uses fit in a 255-byte file name).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Largest size a compressed batch's records may inflate to while it is validated or
/// searched. A batch that claims more is refused as corrupt: this is what turns a
/// compression bomb into an error instead of an out-of-memory kill.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Largest produce payload (all batches for one partition in one append). Positions in
/// a segment are `u32` (the index format) and `segment.bytes` is a Kafka INT, so a
/// segment holding up to `segment.bytes` plus one payload must stay below `u32::MAX`.
pub const APPEND_BYTES_MAX: usize = i32::MAX as usize;

/// Largest `segment.bytes` Kafka allows (the config is an INT).
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Smallest `segment.bytes` Kafka 4.x allows at topic level (KIP-1030). Tests use
/// Kafka's `internal.segment.bytes` to go lower.
pub const SEGMENT_BYTES_MIN: u64 = 1024 * 1024;

/// Largest file position a segment may reach (index entries store it as `u32`).
pub const SEGMENT_FILE_BYTES_MAX: u64 = u32::MAX as u64;

/// Most bytes one `read` returns beyond its first batch. Fetch sizes come from clients;
/// this bounds the buffer one request can make us allocate. Kafka's default
/// `fetch.max.bytes` (55 MiB) fits under it.
pub const READ_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Largest `topic.json` we read back. It holds a name, an id, a count and the config
/// overrides, so anything bigger is not ours.
pub const TOPIC_METADATA_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Largest checkpoint file (one decimal offset) we read back.
pub const CHECKPOINT_FILE_BYTES_MAX: u64 = 64;

/// Largest producer-state snapshot read back (`producer-state.json`); a larger one is
/// ignored and the state rebuilt from the log. It holds every producer id (about 400
/// bytes each with five remembered batches) and every aborted transaction still in the
/// log (about 80 bytes each).
pub const PRODUCER_SNAPSHOT_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Largest index file loaded into memory during recovery. Kafka's `segment.index.bytes`
/// defaults to 10 MiB; a file far larger than any config allows is treated as corrupt and
/// rebuilt from the log.
pub const INDEX_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Bytes read per I/O while scanning batch headers (recovery, index rebuilds, finding a
/// fetch position).
pub const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// How often the background flusher wakes to honour `flush.ms` when the fsync policy
/// itself does not ask for periodic flushes.
pub const FLUSH_TICK_MS: u64 = 1000;

/// Most threads opening partitions at start and flushing them at close
/// (`num.recovery.threads.per.data.dir`): beyond this, threads only add memory (each
/// scans with its own read buffer of [`SCAN_CHUNK_BYTES`]).
pub const RECOVERY_THREADS_MAX: usize = 256;

/// Longest path component we create: a topic name is the longest one.
const FILE_NAME_BYTES_MAX: usize = 255;

const _: () = assert!(TOPIC_NAME_BYTES_MAX <= FILE_NAME_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_MAX);
// A segment that is just under `segment.bytes` can still take one whole payload.
const _: () = assert!(SEGMENT_BYTES_MAX + APPEND_BYTES_MAX as u64 <= SEGMENT_FILE_BYTES_MAX);
// Kafka's default max.message.bytes (1048588) must be readable in one read and must be
// able to decompress to at least its own size.
const _: () = assert!(READ_BYTES_MAX >= 1_048_588);
const _: () = assert!(DECOMPRESSED_BATCH_BYTES_MAX >= 1_048_588);
const _: () = assert!(SCAN_CHUNK_BYTES <= READ_BYTES_MAX);
const _: () = assert!(PARTITIONS_PER_TOPIC_MAX as u64 <= i32::MAX as u64);

/// Most record indexes one [`crate::LogError::KeylessRecords`] lists.
pub const RECORD_ERRORS_MAX: usize = 100_000;

/// Least share of `log.cleaner.dedupe.buffer.size` one cleaner thread may get: its key
/// map must hold enough keys (about 2,000) for every pass to make progress.
pub const CLEANER_DEDUPE_BUFFER_BYTES_MIN: u64 = 64 * 1024;

/// Most cleaner threads (`log.cleaner.threads`).
pub const CLEANER_THREADS_MAX: u32 = 64;
