//! Medulla's security model, one implementation for every surface: the Kafka listener
//! (`medulla-broker`) and the HTTP ones (the schema registry now, FHIR and the console
//! later). Nothing here does network I/O; callers bring the bytes.
//!
//! - [`principal`]: who is asking (`User:alice`).
//! - [`acl`]: Kafka's ACL model, the authorizer and its persistent store.
//! - [`mapping`]: `ssl.principal.mapping.rules`, a certificate subject to a principal.
//! - [`sasl`]: the SASL mechanisms (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) as pure
//!   state machines behind one trait.
//! - [`credentials`]: SCRAM credentials (salted and hashed), stored and checked.
//! - [`jwt`]: JWT validation against a JWKS file (OAUTHBEARER and HTTP bearer tokens).
//! - [`tls`]: rustls server settings from Kafka's `ssl.*` keys, reloaded from disk.
//! - [`audit`]: the structured audit event and the sink every surface writes it to.
//!
//! State files (ACLs, credentials) are replaced atomically with `medulla_log::fsutil`.

pub mod acl;
pub mod audit;
pub mod credentials;
pub mod jwt;
pub mod mapping;
pub mod principal;
pub mod sasl;
pub mod tls;

pub use principal::Principal;
