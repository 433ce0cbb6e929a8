//! Every limit and deadline of the benchmark tool, in one place.

use std::time::Duration;

/// Largest response frame a `conns` connection accepts; a larger one fails that
/// connection (and only it).
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Fetch `max_bytes`: the most record bytes one response may carry.
pub const FETCH_BYTES_MAX: i32 = 1024 * 1024;

/// Fetch `partition_max_bytes` for the one partition a connection reads.
pub const PARTITION_FETCH_BYTES_MAX: i32 = 1024 * 1024;

/// `conns` opens connections concurrently, but at most this many connect (and run
/// their ListOffsets) at a time, so a thousand connections do not arrive as one burst
/// of SYNs that overflows the broker's accept backlog.
pub const CONNECTS_IN_FLIGHT_MAX: usize = 64;

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request may take beyond the time the broker is allowed to hold it
/// (a Fetch's `max_wait_ms`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connection errors `conns` prints (consumer errors, `latency`); the rest
/// are only counted.
pub const ERRORS_PRINTED_MAX: u64 = 10;

/// `latency`: how long after the planned end of the warm-up the first warm-up record
/// may take to come back before the run fails.
pub const FIRST_WARMUP_RECORD_DEADLINE: Duration = Duration::from_secs(30);

/// `latency`: how long flushing the producer, and then receiving every measured record,
/// may each take.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// `latency`: how long the producer's queue may stay full before the run fails.
pub const QUEUE_FULL_DEADLINE: Duration = Duration::from_secs(60);

/// `latency`: the payload carries an 8-byte send time and a 1-byte phase.
pub const PAYLOAD_HEADER_BYTES: usize = 9;

/// `latency`: how long the pacing loop sleeps between sends.
pub const PACING_TICK: Duration = Duration::from_millis(1);

const _: () = assert!(FETCH_BYTES_MAX as usize <= RESPONSE_BYTES_MAX);
const _: () = assert!(PARTITION_FETCH_BYTES_MAX <= FETCH_BYTES_MAX);
