//! Medulla's Schema Registry: Confluent's REST API over Avro, JSON Schema and
//! Protobuf, with its state in the compacted `_schemas` topic of any Kafka cluster.

pub mod api;
pub mod compat;
pub mod dek;
pub mod error;
pub mod https;
#[cfg(feature = "service")]
pub mod leader;
pub mod limits;
pub mod logged;
pub mod records;
pub mod registry;
pub mod schema;
pub mod security;
#[cfg(feature = "service")]
pub mod service;
pub mod state;
