//! Tests of log compaction on one partition.
