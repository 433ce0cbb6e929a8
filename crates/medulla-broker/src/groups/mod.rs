//! Consumer groups. This version has the offset store (commits by standalone consumers
//! that `assign()` partitions and keep offsets under a `group.id`); the group
//! coordinator proper (membership, rebalancing) joins it with the consumer-group issue.

pub mod offsets;
