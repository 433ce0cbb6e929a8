//! Broker-side schema id validation, as Confluent Server's topic configs
//! `confluent.key.schema.validation` / `confluent.value.schema.validation` (with
//! `confluent.{key,value}.subject.name.strategy`) do it: every record produced to such a
//! topic must carry, in Confluent's wire format (magic byte 0, then a 4-byte big-endian
//! schema id), an id the schema registry has under the subject the strategy derives.
//! One refused record refuses its whole batch (INVALID_RECORD with KIP-467 record
//! errors); nothing of it is appended.
//!
//! The broker knows only that prefix and the [`SchemaIdCheck`] trait: the registry
//! implements it (the binary hands it over in [`crate::BrokerConfig::schema_check`]),
//! derives the subject, and answers from memory. The check runs inside the log's own
//! validation walk ([`medulla_log::PartitionLog::append_checked`]), so a compressed batch
//! is decompressed once and nothing is allocated per accepted record. Topics with
//! validation off never reach this module.
//!
//! Null keys and values pass unchecked. Confluent documents this ("Messages with a null
//! value or a null key will pass validation", Limitations in "Validate Broker-side
//! Schema IDs in Confluent Platform"): tombstones must reach compacted topics, and a
//! null key has no bytes to carry an id. We do the same, so producers written for
//! Confluent Server behave the same here.

use medulla_log::SchemaValidation;
pub use medulla_log::SubjectNameStrategy;

/// Confluent's wire format starts with this byte.
pub const WIRE_FORMAT_MAGIC: u8 = 0;

/// Magic byte plus the 4-byte schema id.
pub const WIRE_FORMAT_PREFIX_BYTES: usize = 5;

/// Implemented by the schema registry; the broker asks it about each record's schema id.
pub trait SchemaIdCheck: Send + Sync + 'static {
    /// Ok when schema `id` may be used for the key (`is_key`) or value of records in
    /// `topic` under `strategy`; `Err(reason)` otherwise (unknown id, not registered
    /// under the subject). Must be fast and non-blocking (an in-memory lookup): it runs
    /// once per record, on the produce path.
    fn check(
        &self,
        topic: &str,
        is_key: bool,
        strategy: SubjectNameStrategy,
        id: i32,
    ) -> Result<(), String>;
}

impl std::fmt::Debug for dyn SchemaIdCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaIdCheck")
    }
}

/// Why a key or value carries no schema id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSchemaId {
    /// Fewer than [`WIRE_FORMAT_PREFIX_BYTES`] bytes.
    TooShort(usize),
    /// The first byte is not [`WIRE_FORMAT_MAGIC`].
    Magic(u8),
}

impl std::fmt::Display for NoSchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSchemaId::TooShort(n) => write!(
                f,
                "{n} bytes are too few for the {WIRE_FORMAT_PREFIX_BYTES}-byte schema id prefix"
            ),
            NoSchemaId::Magic(b) => write!(
                f,
                "magic byte {b} is not {WIRE_FORMAT_MAGIC} (not Confluent's wire format)"
            ),
        }
    }
}

/// The schema id of a key or value in Confluent's wire format.
pub fn schema_id(bytes: &[u8]) -> Result<i32, NoSchemaId> {
    match bytes {
        [WIRE_FORMAT_MAGIC, a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        [magic, _, _, _, _, ..] => Err(NoSchemaId::Magic(*magic)),
        short => Err(NoSchemaId::TooShort(short.len())),
    }
}

/// The per-record check of `topic` under `rules`, for
/// [`medulla_log::PartitionLog::append_checked`]: `Err` names the part and the reason.
pub fn record_check<'a>(
    check: &'a dyn SchemaIdCheck,
    topic: &'a str,
    rules: SchemaValidation,
) -> impl FnMut(Option<&[u8]>, Option<&[u8]>) -> Result<(), String> + 'a {
    move |key, value| {
        let part = |is_key: bool, bytes: Option<&[u8]>, strategy| -> Result<(), String> {
            let (Some(strategy), Some(bytes)) = (strategy, bytes) else {
                return Ok(());
            };
            let what = if is_key { "key" } else { "value" };
            let id = schema_id(bytes).map_err(|e| format!("{what} has no schema id: {e}"))?;
            check
                .check(topic, is_key, strategy, id)
                .map_err(|reason| format!("{what} schema id {id}: {reason}"))
        };
        part(true, key, rules.key)?;
        part(false, value, rules.value)
    }
}

/// The refusal when `topic` validates schemas but no registry is configured: fail
/// closed, since a topic that promises registered schemas must never hold others.
pub fn no_registry_message(topic: &str) -> String {
    format!("schema validation is on for topic {topic} but no schema registry is configured")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parsing() {
        let cases: &[(&[u8], Result<i32, NoSchemaId>)] = &[
            (&[0, 0, 0, 0, 1], Ok(1)),
            (&[0, 0, 0, 1, 0, b'x', b'y'], Ok(256)),
            (&[0, 0x7f, 0xff, 0xff, 0xff], Ok(i32::MAX)),
            (&[0, 0xff, 0xff, 0xff, 0xff], Ok(-1)),
            (&[1, 0, 0, 0, 1], Err(NoSchemaId::Magic(1))),
            (b"{\"json\":1}", Err(NoSchemaId::Magic(b'{'))),
            (&[0, 0, 0, 1], Err(NoSchemaId::TooShort(4))),
            (&[], Err(NoSchemaId::TooShort(0))),
        ];
        for (bytes, expected) in cases {
            assert_eq!(schema_id(bytes), *expected, "{bytes:?}");
        }
        assert_eq!(
            NoSchemaId::TooShort(3).to_string(),
            "3 bytes are too few for the 5-byte schema id prefix"
        );
    }

    /// Knows id 1 for `t-value` and id 2 for `t-key`.
    struct Fixed;

    impl SchemaIdCheck for Fixed {
        fn check(
            &self,
            topic: &str,
            is_key: bool,
            _: SubjectNameStrategy,
            id: i32,
        ) -> Result<(), String> {
            match (topic, is_key, id) {
                ("t", false, 1) | ("t", true, 2) => Ok(()),
                _ => Err("not registered".into()),
            }
        }
    }

    #[test]
    fn record_check_checks_only_what_is_on_and_not_null() {
        let value_only = SchemaValidation {
            key: None,
            value: Some(SubjectNameStrategy::Topic),
        };
        let mut c = record_check(&Fixed, "t", value_only);
        assert_eq!(c(Some(b"anything"), Some(&[0, 0, 0, 0, 1])), Ok(()));
        assert_eq!(c(None, None), Ok(()));
        assert_eq!(
            c(None, Some(&[0, 0, 0, 0, 2])),
            Err("value schema id 2: not registered".into())
        );
        assert_eq!(
            c(None, Some(b"x")),
            Err(
                "value has no schema id: 1 bytes are too few for the 5-byte schema id prefix"
                    .into()
            )
        );
        let both = SchemaValidation {
            key: Some(SubjectNameStrategy::Record),
            value: Some(SubjectNameStrategy::Topic),
        };
        let mut c = record_check(&Fixed, "t", both);
        assert_eq!(c(Some(&[0, 0, 0, 0, 2]), Some(&[0, 0, 0, 0, 1])), Ok(()));
        assert_eq!(c(None, Some(&[0, 0, 0, 0, 1])), Ok(()));
        assert_eq!(
            c(Some(&[0, 0, 0, 0, 1]), Some(&[0, 0, 0, 0, 1])),
            Err("key schema id 1: not registered".into())
        );
    }
}
