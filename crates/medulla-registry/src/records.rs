//! The records of the `_schemas` topic, in Confluent's key and value JSON.
//!
//! Keys are written with Confluent's fixed field order (`keytype`, `subject`,
//! `version`, `magic`; empty fields left out, as Jackson's `NON_EMPTY` does), so a
//! compacted `_schemas` topic keeps exactly one record per key whichever registry wrote
//! it. Values are read leniently (unknown fields ignored, Karapace's `"subject": null`
//! accepted); an empty value is a tombstone like a null one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::schema::SchemaType;

/// A `_schemas` record key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    Schema {
        subject: String,
        version: i32,
    },
    /// `None` = the global config (or a context's, `:.ctx:` as the subject).
    Config {
        subject: Option<String>,
    },
    Mode {
        subject: Option<String>,
    },
    DeleteSubject {
        subject: String,
    },
    ClearSubject {
        subject: String,
    },
    Noop,
    /// Medulla's own: the highest schema id ever handed out, written before a permanent
    /// delete could let compaction remove the record that held it (ids are never reused).
    IdWatermark,
    /// A key type this version does not know (a newer registry's): skipped.
    Other(String),
}

impl Key {
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = match self {
            Key::Schema { subject, version } => {
                json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1})
            }
            Key::Config { subject } => subject_key("CONFIG", subject.as_deref()),
            Key::Mode { subject } => subject_key("MODE", subject.as_deref()),
            Key::DeleteSubject { subject } => subject_key("DELETE_SUBJECT", Some(subject)),
            Key::ClearSubject { subject } => subject_key("CLEAR_SUBJECT", Some(subject)),
            Key::Noop => json!({"keytype": "NOOP", "magic": 0}),
            Key::IdWatermark => json!({"keytype": "MEDULLA_ID_WATERMARK", "magic": 0}),
            Key::Other(t) => json!({"keytype": t, "magic": 0}),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Key, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("key is not JSON: {e}"))?;
        let obj = v.as_object().ok_or("key is not a JSON object")?;
        let keytype = obj
            .get("keytype")
            .and_then(Value::as_str)
            .ok_or("key has no keytype")?;
        let subject = obj
            .get("subject")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let need = |s: Option<String>| s.ok_or_else(|| format!("{keytype} key has no subject"));
        Ok(match keytype {
            "SCHEMA" => {
                let version = obj
                    .get("version")
                    .and_then(Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or("SCHEMA key has no version")?;
                Key::Schema {
                    subject: need(subject)?,
                    version,
                }
            }
            "CONFIG" => Key::Config { subject },
            "MODE" => Key::Mode { subject },
            "DELETE_SUBJECT" => Key::DeleteSubject {
                subject: need(subject)?,
            },
            "CLEAR_SUBJECT" => Key::ClearSubject {
                subject: need(subject)?,
            },
            "NOOP" => Key::Noop,
            "MEDULLA_ID_WATERMARK" => Key::IdWatermark,
            other => Key::Other(other.to_owned()),
        })
    }
}

fn subject_key(keytype: &str, subject: Option<&str>) -> Value {
    match subject {
        Some(s) => json!({"keytype": keytype, "subject": s, "magic": 0}),
        None => json!({"keytype": keytype, "magic": 0}),
    }
}

/// A schema reference as the REST API and `_schemas` spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// The value of a SCHEMA record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    #[serde(default, skip_serializing_if = "is_avro")]
    pub schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<Value>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

fn is_avro(t: &SchemaType) -> bool {
    *t == SchemaType::Avro
}

/// The value of a CONFIG record (and the body of `/config`, with `compatibility` as
/// the request's spelling of `compatibilityLevel`). Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_fields: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_rules: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "compatibility"
    )]
    pub compatibility_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_metadata: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "metadataOverride"
    )]
    pub override_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rule_set: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "ruleSetOverride"
    )]
    pub override_rule_set: Option<Value>,
}

impl ConfigValue {
    /// `self` with every field `newer` sets replaced (Confluent's `ConfigValue.merge`).
    pub fn merged(&self, newer: &ConfigValue) -> ConfigValue {
        fn pick<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        ConfigValue {
            alias: pick(&newer.alias, &self.alias),
            normalize: pick(&newer.normalize, &self.normalize),
            validate_fields: pick(&newer.validate_fields, &self.validate_fields),
            validate_rules: pick(&newer.validate_rules, &self.validate_rules),
            compatibility_level: pick(&newer.compatibility_level, &self.compatibility_level),
            compatibility_group: pick(&newer.compatibility_group, &self.compatibility_group),
            default_metadata: pick(&newer.default_metadata, &self.default_metadata),
            override_metadata: pick(&newer.override_metadata, &self.override_metadata),
            default_rule_set: pick(&newer.default_rule_set, &self.default_rule_set),
            override_rule_set: pick(&newer.override_rule_set, &self.override_rule_set),
        }
    }

    /// The record value: Confluent stores the subject in it too.
    pub fn to_record(&self, subject: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()));
        if let (Some(s), Some(obj)) = (subject, v.as_object_mut()) {
            obj.insert("subject".into(), Value::String(s.to_owned()));
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// The value of a MODE record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeValue {
    pub mode: String,
}

/// The value of a DELETE_SUBJECT record: every version up to `version` is soft-deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: i32,
}

/// The value of a CLEAR_SUBJECT record (a permanent subject delete).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    pub subject: String,
}

/// The value of Medulla's id watermark record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdWatermarkValue {
    pub id: i32,
}

/// A decoded record; `None` value = tombstone (null or empty bytes).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Schema {
        subject: String,
        version: i32,
        value: Option<SchemaValue>,
    },
    Config {
        subject: Option<String>,
        value: Option<ConfigValue>,
    },
    Mode {
        subject: Option<String>,
        value: Option<ModeValue>,
    },
    DeleteSubject(DeleteSubjectValue),
    ClearSubject(ClearSubjectValue),
    IdWatermark(i32),
    Ignored,
}

/// Decodes one `_schemas` record. An error means the record is malformed (logged and
/// skipped by the caller, as Confluent's reader does).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, String> {
    let key = Key::parse(key)?;
    let value = value.filter(|v| !v.is_empty());
    fn de<T: serde::de::DeserializeOwned>(what: &str, v: &[u8]) -> Result<T, String> {
        serde_json::from_slice(v).map_err(|e| format!("bad {what} value: {e}"))
    }
    Ok(match key {
        Key::Schema { subject, version } => Record::Schema {
            subject,
            version,
            value: value.map(|v| de("SCHEMA", v)).transpose()?,
        },
        Key::Config { subject } => Record::Config {
            subject,
            value: value.map(|v| de("CONFIG", v)).transpose()?,
        },
        Key::Mode { subject } => Record::Mode {
            subject,
            value: value.map(|v| de("MODE", v)).transpose()?,
        },
        Key::DeleteSubject { .. } => match value {
            Some(v) => Record::DeleteSubject(de("DELETE_SUBJECT", v)?),
            None => Record::Ignored,
        },
        Key::ClearSubject { .. } => match value {
            Some(v) => Record::ClearSubject(de("CLEAR_SUBJECT", v)?),
            None => Record::Ignored,
        },
        Key::IdWatermark => match value {
            Some(v) => Record::IdWatermark(de::<IdWatermarkValue>("MEDULLA_ID_WATERMARK", v)?.id),
            None => Record::Ignored,
        },
        Key::Noop | Key::Other(_) => Record::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_confluents_field_order() {
        let k = Key::Schema {
            subject: "a-value".into(),
            version: 3,
        };
        assert_eq!(
            String::from_utf8(k.to_bytes()).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"a-value","version":3,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(Key::Config { subject: None }.to_bytes()).unwrap(),
            r#"{"keytype":"CONFIG","magic":0}"#
        );
        assert_eq!(
            String::from_utf8(
                Key::Mode {
                    subject: Some("s".into())
                }
                .to_bytes()
            )
            .unwrap(),
            r#"{"keytype":"MODE","subject":"s","magic":0}"#
        );
        assert_eq!(Key::parse(&k.to_bytes()).unwrap(), k);
    }

    #[test]
    fn karapace_null_subject_and_empty_values_read() {
        let r = decode(
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            Some(b""),
        )
        .unwrap();
        assert_eq!(
            r,
            Record::Config {
                subject: None,
                value: None
            }
        );
        let r = decode(
            br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
            Some(br#"{"subject":"s","version":1,"id":7,"schema":"\"string\"","deleted":false,"extra":1}"#),
        )
        .unwrap();
        let Record::Schema { value: Some(v), .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!((v.id, v.schema_type), (7, SchemaType::Avro));
        assert!(decode(b"not json", None).is_err());
        assert_eq!(
            decode(br#"{"keytype":"FUTURE","magic":9}"#, Some(b"{}")).unwrap(),
            Record::Ignored
        );
    }
}
