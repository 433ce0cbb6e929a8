//! The crate's one error type, with messages that say what failed and what to check.

use std::time::Duration;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An operation did not finish in time; `what` names it.
    #[error(
        "timed out after {after:?} waiting for {what} (is the Kafka cluster at {bootstrap} reachable?)"
    )]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound that was hit.
        after: Duration,
        /// The bootstrap servers, to say where the client was looking.
        bootstrap: String,
    },
    /// librdkafka reported an error.
    #[error("{context}: {source}")]
    Kafka {
        /// What the client was doing.
        context: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// A state-log topic exists with a partition count other than 1.
    #[error(
        "topic {topic} has {partitions} partitions, but a state log needs exactly 1 \
         (records across partitions have no order); delete the topic or configure another one"
    )]
    TopicPartitions {
        /// The topic.
        topic: String,
        /// How many partitions it has.
        partitions: usize,
    },
    /// The reader of a state log stopped on a fatal error; the log can no longer be used.
    #[error("the reader of topic {topic} stopped: {reason}")]
    ReaderStopped {
        /// The topic.
        topic: String,
        /// Why it stopped.
        reason: String,
    },
    /// A broker answered a group request with an error code.
    #[error("{api} for group {group} failed: {name} (Kafka error {code}): {description}")]
    Broker {
        /// The request (JoinGroup, SyncGroup…).
        api: &'static str,
        /// The group.
        group: String,
        /// Kafka's error code.
        code: i16,
        /// Its name (`REBALANCE_IN_PROGRESS`-style, as kafka-protocol spells it).
        name: String,
        /// Kafka's description of it.
        description: String,
    },
    /// A broker could not be reached or the connection broke.
    #[error("cannot talk to broker {addr}: {source}")]
    Io {
        /// The broker address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A broker sent something this client cannot use.
    #[error("unexpected answer from broker {addr}: {detail}")]
    Protocol {
        /// The broker address.
        addr: String,
        /// What was wrong.
        detail: String,
    },
    /// The configuration cannot be used.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// Group members advertise the same URL, so requests could not be forwarded to the
    /// leader (Confluent's `DUPLICATE_URLS` assignment error).
    #[error(
        "the group {group} contains several members advertising the same URL; give each \
         instance a unique, routable host name and port"
    )]
    DuplicateUrls {
        /// The group.
        group: String,
    },
}

impl ClientError {
    /// A [`ClientError::Broker`] for a non-zero Kafka error code.
    pub(crate) fn broker(api: &'static str, group: &str, code: i16) -> ClientError {
        let (name, description) = match kafka_protocol::ResponseError::try_from_code(code) {
            Some(e) => (format!("{e:?}"), e.to_string()),
            None => ("NONE".to_owned(), "no error".to_owned()),
        };
        ClientError::Broker {
            api,
            group: group.to_owned(),
            code,
            name,
            description,
        }
    }

    /// A [`ClientError::Kafka`] with its context.
    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        ClientError::Kafka {
            context: context.into(),
            source,
        }
    }
}
