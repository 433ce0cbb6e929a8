//! The audit trail: one structured event per authentication, authorization denial and
//! administrative change, written by every surface (Kafka listener, HTTP) to the
//! internal topic `_medulla_audit`, one JSON object per record.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The internal topic audit events go to.
pub const AUDIT_TOPIC: &str = "_medulla_audit";

/// What kind of event this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A SASL, TLS-certificate or HTTP authentication attempt.
    Authentication,
    /// An access decision (denials always; allowed administrative operations).
    Authorization,
    /// A change made: topics, configs, ACLs, users, schemas, groups, offsets.
    Change,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Authenticated, allowed, or done.
    Success,
    /// Authentication failed, access denied, or the change failed.
    Failure,
}

/// One audit event. Field names are the record's JSON; keep them stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Which kind of event.
    pub category: Category,
    /// The principal (`User:alice`; `User:ANONYMOUS` before authentication).
    pub principal: String,
    /// The client's address, `ip:port`.
    pub client: String,
    /// The surface and listener: `kafka:SASL_SSL`, `http:registry`.
    pub source: String,
    /// What was asked: a Kafka API name (`Produce`, `CreateAcls`), a SASL mechanism, or
    /// an HTTP method and route.
    pub action: String,
    /// The resource, `Type:name` (`Topic:clinical.lab.results`, `Cluster:kafka-cluster`,
    /// `Subject:x-value`); empty for authentication.
    pub resource: String,
    /// The ACL operation checked (`Write`, `Describe`), or empty.
    pub operation: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The request's id: Kafka's `client_id/correlation id`, or the HTTP request id.
    pub request_id: String,
    /// Free text: why it failed, what changed.
    pub detail: String,
}

impl AuditEvent {
    /// An event stamped with the current time.
    pub fn now(category: Category, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            category,
            principal: String::new(),
            client: String::new(),
            source: String::new(),
            action: String::new(),
            resource: String::new(),
            operation: String::new(),
            outcome,
            request_id: String::new(),
            detail: String::new(),
        }
    }
}

/// The audit event could not be made durable: the operation it records must fail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub struct AuditError(pub String);
