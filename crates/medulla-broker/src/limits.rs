//! Every limit of the protocol server, in one place. A limit hit is a named error or a
//! closed connection with a log line, never an allocation failure.

/// Hard ceiling on `socket.request.max.bytes`: no frame larger than this is ever buffered.
pub const REQUEST_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Requests one connection may have decoded and not yet answered. The connection stops
/// reading when it is reached, which pushes back on the client through TCP.
pub const INFLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 1024;

/// Default of `medulla.connection.inflight.max`.
pub const INFLIGHT_REQUESTS_PER_CONNECTION_DEFAULT: usize = 64;

/// Default of `max.connections`. Apache Kafka's default is unbounded (2^31 - 1); an
/// unbounded accept loop is not a limit, so Medulla's default is finite.
pub const CONNECTIONS_DEFAULT: usize = 10_000;

/// Longest a Fetch may wait for data (`max.wait.ms` is capped here).
pub const FETCH_WAIT_MS_MAX: u64 = 5 * 60 * 1000;

/// Bytes one Fetch response may carry, whatever the client's `max_bytes`: Apache Kafka's
/// broker `fetch.max.bytes` default (55 MiB). Each response is held in memory until the
/// client reads it, so this bounds a connection's fetch memory (one Fetch at a time).
pub const FETCH_RESPONSE_BYTES_MAX: usize = 57_671_680;

/// Record bytes one response can send straight from segment files (sendfile): the most
/// a Fetch asks for, plus a first batch beyond it (KIP-74) of up to 64 MiB. This much
/// address space is set aside once and never touched; record bytes past it are copied.
pub const ZERO_COPY_RESPONSE_BYTES_MAX: usize = FETCH_RESPONSE_BYTES_MAX + 64 * 1024 * 1024;

/// Topics one CreateTopics / DeleteTopics / CreatePartitions request may name.
pub const ADMIN_TOPICS_PER_REQUEST_MAX: usize = 10_000;

/// How long a clean shutdown waits for connections to finish their in-flight requests.
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// Longest a TLS handshake may take before its connection is closed (Kafka has no such
/// key; a client that never finishes would otherwise hold a connection slot forever).
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

const _: () =
    assert!(INFLIGHT_REQUESTS_PER_CONNECTION_DEFAULT <= INFLIGHT_REQUESTS_PER_CONNECTION_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX <= REQUEST_BYTES_MAX);

/// Granularity of group session and rebalance deadlines: the coordinator checks every
/// group this often (a session timeout is at least `group.min.session.timeout.ms`, 6 s by
/// default, so 100 ms is well inside it).
pub const GROUP_TICK_MS: u64 = 100;

/// Member ids one group may have handed out (MEMBER_ID_REQUIRED) and not yet seen again.
/// Kafka bounds them only by `group.max.size` (unbounded by default): a client looping on
/// JoinGroup without its id would grow the group until the ids expire. Beyond this,
/// GROUP_MAX_SIZE_REACHED.
pub const PENDING_MEMBERS_PER_GROUP_MAX: usize = 10_000;

/// Transactional ids the transaction coordinator keeps at once. Kafka bounds them only
/// by `transactional.id.expiration.ms`; a client inventing ids in a loop would otherwise
/// grow memory until the first expiry. Beyond this, InitProducerId for a new id is
/// refused with POLICY_VIOLATION.
pub const TRANSACTIONAL_IDS_MAX: usize = 100_000;

/// Partitions one transaction may hold (its groups' `__consumer_offsets` partitions
/// included). Kafka has no such bound (its transaction record must fit in one message).
/// Beyond this, AddPartitionsToTxn is refused with POLICY_VIOLATION.
pub const PARTITIONS_PER_TRANSACTION_MAX: usize = 10_000;

/// Groups (AddOffsetsToTxn) one transaction may hold; beyond this, POLICY_VIOLATION.
pub const GROUPS_PER_TRANSACTION_MAX: usize = 1_000;

const _: () = assert!(GROUPS_PER_TRANSACTION_MAX <= PARTITIONS_PER_TRANSACTION_MAX);

/// Offsets one transaction may hold pending for one group (TxnOffsetCommit), counted by
/// distinct partition. Kafka has no bound; a transactional consumer commits one offset per
/// partition it reads, far fewer than this. Beyond it the commit is refused with
/// POLICY_VIOLATION and nothing is written (the producer aborts the transaction).
pub const TXN_PENDING_OFFSETS_PER_GROUP_MAX: usize = 10_000;

/// Transactional offsets pending on the whole broker, across every open transaction:
/// the memory they hold is bounded by this times `offset.metadata.max.bytes` (400 MiB at
/// its 4 KiB default, a few MiB with the empty metadata clients send). Beyond it,
/// POLICY_VIOLATION as above until transactions end.
pub const TXN_PENDING_OFFSETS_MAX: usize = 100_000;

const _: () = assert!(TXN_PENDING_OFFSETS_PER_GROUP_MAX <= TXN_PENDING_OFFSETS_MAX);

/// Audit events waiting to be written. A caller that finds the queue full waits up to
/// [`AUDIT_ENQUEUE_WAIT_MS`] for room, then its operation fails (the audit trail is never
/// skipped).
pub const AUDIT_QUEUE_MAX: usize = 10_000;

/// How long an audited operation waits for room in the audit queue.
pub const AUDIT_ENQUEUE_WAIT_MS: u64 = 5_000;

/// How long an audited operation waits for its event to be durable before failing.
pub const AUDIT_DURABLE_WAIT_MS: u64 = 30_000;

/// Bytes of audit records written as one batch (one append, one fsync); below the audit
/// topic's `max.message.bytes`.
pub const AUDIT_BATCH_BYTES_MAX: usize = 512 * 1024;

/// Longest text field of an audit event; longer ones are cut (marked with `…`), so one
/// event always fits a batch.
pub const AUDIT_FIELD_BYTES_MAX: usize = 4 * 1024;

const _: () = assert!(AUDIT_FIELD_BYTES_MAX * 16 < AUDIT_BATCH_BYTES_MAX);
