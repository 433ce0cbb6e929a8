//! rdkafka helpers shared by the integration tests and the benchmark client
//! (`examples/compaction_bench.rs` includes this file by path).
#![allow(dead_code)]

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// An rdkafka client config pointed at `addr`.
pub fn client_config(addr: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("broker.address.family", "v4");
    c
}

/// A consumer assigned to `topic`'s `partition` from the beginning (no group
/// membership, no commits), and the partition's high watermark at that moment.
pub fn consumer_from_beginning(addr: &str, topic: &str, partition: i32) -> (BaseConsumer, i64) {
    let consumer: BaseConsumer = client_config(addr)
        .set("group.id", "medulla-test-unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    (consumer, high)
}
