//! Every bound this crate puts on what grows or waits, in one place.

use std::time::Duration;

/// Largest response frame the election client accepts from a broker. Group responses
/// carry every member's metadata (a few hundred bytes each); this is far above that.
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest member metadata or assignment the election parses (JSON of a few fields).
pub const GROUP_JSON_BYTES_MAX: usize = 64 * 1024;

/// Most members an elected group leader accepts in one JoinGroup answer.
pub const GROUP_MEMBERS_MAX: usize = 10_000;

/// How long one election request (connect, send, answer) may take, beyond the
/// rebalance timeout a JoinGroup may legitimately wait.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `leave` waits for LeaveGroup before giving up (the session timeout evicts
/// the member anyway).
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause before retrying after a failed group request, so a broken coordinator is not
/// hammered.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Longest pause between retries (the back-off doubles up to it).
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long the state-log reader blocks in one poll, and so how soon it notices `close`.
pub const READER_POLL: Duration = Duration::from_millis(100);

const _: () = assert!(GROUP_JSON_BYTES_MAX < RESPONSE_BYTES_MAX);
const _: () = assert!(RETRY_BACKOFF.as_millis() <= RETRY_BACKOFF_MAX.as_millis());

/// Fewest SCRAM iterations this client accepts from a server (Kafka's
/// `ScramMechanism.minIterations`, 4096 for both mechanisms): fewer would let a
/// man in the middle cheapen a dictionary attack on the password.
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;

/// Most SCRAM iterations this client computes (Kafka's `ScramMechanism.maxIterations`):
/// a server asking for more would make every connection burn CPU.
pub const SCRAM_ITERATIONS_MAX: u32 = 16_384;

/// Bytes of random salt in a new SCRAM credential.
pub const SCRAM_SALT_BYTES: usize = 32;

/// Random bytes in a SCRAM client nonce (base64-encoded on the wire).
pub const SCRAM_NONCE_BYTES: usize = 24;

/// Most SaslAuthenticate round trips one authentication may take (SCRAM needs two,
/// OAUTHBEARER's error path two).
pub const SASL_ROUNDS_MAX: usize = 4;

/// Largest PEM file (CA bundle, certificate chain, key) the TLS setup reads.
pub const PEM_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Largest client properties file read by [`crate::ClientConfig::from_properties_file`].
pub const PROPERTIES_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(SCRAM_ITERATIONS_MIN <= SCRAM_ITERATIONS_MAX);
