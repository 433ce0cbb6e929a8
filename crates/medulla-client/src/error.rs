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
        /// Its name, as Kafka's `Errors` enum spells it (`REBALANCE_IN_PROGRESS`).
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
    /// The broker refused the client's credentials (SaslHandshake or SaslAuthenticate
    /// answered with an error code).
    #[error("authentication with {mechanism} at broker {addr} failed: {name}: {message}")]
    Authentication {
        /// The broker address.
        addr: String,
        /// The SASL mechanism.
        mechanism: String,
        /// Kafka's error name (`SASL_AUTHENTICATION_FAILED`, `UNSUPPORTED_SASL_MECHANISM`…).
        name: String,
        /// The broker's message, or Kafka's description of the error.
        message: String,
    },
    /// The client side of the SASL exchange failed: the broker's answer was malformed or
    /// did not prove it knows the credential (a wrong SCRAM server signature).
    #[error("SASL {mechanism} with broker {addr} failed: {detail}")]
    Sasl {
        /// The broker address.
        addr: String,
        /// The SASL mechanism.
        mechanism: String,
        /// What was wrong.
        detail: String,
    },
    /// The TLS handshake failed (untrusted or misnamed certificate, refused client
    /// certificate, not a TLS listener).
    #[error("TLS handshake with broker {addr} failed: {detail}")]
    Tls {
        /// The broker address.
        addr: String,
        /// rustls' reason.
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
        let (name, description) = error_name_and_description(code);
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

/// Kafka's name of an error code, as its `Errors` enum spells it
/// (`SASL_AUTHENTICATION_FAILED`), and its description.
pub fn error_name_and_description(code: i16) -> (String, String) {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(kafka_protocol::ResponseError::Unknown(_)) | None if code != 0 => (
            format!("UNKNOWN({code})"),
            format!("an error code this client does not know ({code})"),
        ),
        Some(e) => (upper_snake(&format!("{e:?}")), e.to_string()),
        None => ("NONE".to_owned(), "no error".to_owned()),
    }
}

/// `SaslAuthenticationFailed` → `SASL_AUTHENTICATION_FAILED`.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(
            error_name_and_description(58).0,
            "SASL_AUTHENTICATION_FAILED"
        );
        assert_eq!(
            error_name_and_description(29).0,
            "TOPIC_AUTHORIZATION_FAILED"
        );
        assert_eq!(error_name_and_description(0).0, "NONE");
        assert_eq!(error_name_and_description(-999).0, "UNKNOWN(-999)");
    }
}
