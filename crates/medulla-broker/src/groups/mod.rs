//! Consumer groups: the coordinator of every group on this node.
//!
//! - `store.rs`: the group log — committed offsets and group metadata, in memory and in
//!   `__consumer_offsets` (Kafka's record formats), fsynced before any answer.
//! - `classic.rs`: one classic group's state machine (JoinGroup, SyncGroup, Heartbeat,
//!   LeaveGroup, static membership), pure and clock-injected.
//! - `offsets.rs`: committed and pending transactional offsets in memory, with Kafka's
//!   rules for combining them.
//! - `coordinator.rs`: the groups, their locks, persistence and timers.
//! - `txn.rs`: offsets committed inside transactions (TxnOffsetCommit) and their end.

pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod offsets;
pub mod store;
pub mod txn;
