//! The records of the `_dek_registry_keys` topic, in Confluent's key and value JSON.
//!
//! Confluent's DEK Registry writes its keys and values with a plain Jackson
//! `ObjectMapper` (`NON_NULL`): the `@JsonCreator` properties first, in the creator's
//! order, then the remaining ones (`type`). Keys are written here in exactly that order
//! (`{"tenant","name","type"}` for a KEK, `{"tenant","kekName","subject","algorithm",
//! "version","type"}` for a DEK), so a compacted topic keeps one record per key whichever
//! registry wrote it. A permanent delete is a tombstone.
//!
//! One difference: Confluent takes a key's `ts` from the Kafka record's timestamp when it
//! reads the topic; `TopicLog` does not surface record timestamps, so the value carries
//! `ts` itself (Confluent's reader accepts the field: `EncryptionKey` has a `ts` setter).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The only tenant a single-tenant registry has (Confluent's `DEFAULT_TENANT`).
pub const TENANT: &str = "default";

/// A DEK's algorithm (Confluent's `DekFormat`), ordered as the Java enum is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Aes128Gcm,
    Aes256Gcm,
    Aes256Siv,
}

impl Algorithm {
    /// Confluent's default when a request names none.
    pub const DEFAULT: Algorithm = Algorithm::Aes256Gcm;
    pub const ALL: [Algorithm; 3] = [
        Algorithm::Aes128Gcm,
        Algorithm::Aes256Gcm,
        Algorithm::Aes256Siv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes128Gcm => "AES128_GCM",
            Algorithm::Aes256Gcm => "AES256_GCM",
            Algorithm::Aes256Siv => "AES256_SIV",
        }
    }

    /// The exact enum name, as Jackson and Jersey parse it.
    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A key encryption key: where the key lives in a KMS, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kek {
    pub name: String,
    pub kms_type: String,
    pub kms_key_id: String,
    /// Sorted, as Confluent's `SortedMap`.
    pub kms_props: BTreeMap<String, String>,
    pub doc: Option<String>,
    pub shared: bool,
    pub deleted: bool,
    /// Milliseconds since the epoch when this state of the key was written.
    pub ts: Option<i64>,
}

impl Kek {
    /// Confluent's `isEquivalent`: the same key, whatever its deleted flag and time.
    pub fn equivalent(&self, other: &Kek) -> bool {
        self.name == other.name
            && self.kms_type == other.kms_type
            && self.kms_key_id == other.kms_key_id
            && self.kms_props == other.kms_props
            && self.doc == other.doc
            && self.shared == other.shared
    }

    /// The REST entity (`Kek`): `deleted` only when true, as Confluent answers.
    pub fn to_entity(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("kmsType".into(), self.kms_type.clone().into());
        m.insert("kmsKeyId".into(), self.kms_key_id.clone().into());
        m.insert("kmsProps".into(), props_json(&self.kms_props));
        if let Some(doc) = &self.doc {
            m.insert("doc".into(), doc.clone().into());
        }
        m.insert("shared".into(), self.shared.into());
        if let Some(ts) = self.ts {
            m.insert("ts".into(), ts.into());
        }
        if self.deleted {
            m.insert("deleted".into(), true.into());
        }
        Value::Object(m)
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("kmsType".into(), self.kms_type.clone().into());
        m.insert("kmsKeyId".into(), self.kms_key_id.clone().into());
        m.insert("kmsProps".into(), props_json(&self.kms_props));
        if let Some(doc) = &self.doc {
            m.insert("doc".into(), doc.clone().into());
        }
        m.insert("shared".into(), self.shared.into());
        m.insert("deleted".into(), self.deleted.into());
        m.insert("type".into(), "KEK".into());
        if let Some(ts) = self.ts {
            m.insert("ts".into(), ts.into());
        }
        Value::Object(m)
    }
}

fn props_json(props: &BTreeMap<String, String>) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Where a DEK is stored: one per KEK, subject, algorithm and version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DekId {
    pub kek_name: String,
    pub subject: String,
    pub algorithm: Algorithm,
    pub version: i32,
}

/// A data encryption key, stored only encrypted by its KEK (the client's KMS wraps it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dek {
    pub id: DekId,
    /// Base64 of the KMS-encrypted key; `None` only for a shared KEK's DEK that the
    /// registry would have to generate (not supported here).
    pub encrypted_key_material: Option<String>,
    pub deleted: bool,
    pub ts: Option<i64>,
}

impl Dek {
    /// Confluent's `isEquivalent`.
    pub fn equivalent(&self, other: &Dek) -> bool {
        self.id == other.id && self.encrypted_key_material == other.encrypted_key_material
    }

    /// The REST entity (`Dek`).
    pub fn to_entity(&self) -> Value {
        let mut m = Map::new();
        m.insert("kekName".into(), self.id.kek_name.clone().into());
        m.insert("subject".into(), self.id.subject.clone().into());
        m.insert("version".into(), self.id.version.into());
        m.insert("algorithm".into(), self.id.algorithm.as_str().into());
        if let Some(k) = &self.encrypted_key_material {
            m.insert("encryptedKeyMaterial".into(), k.clone().into());
        }
        if let Some(ts) = self.ts {
            m.insert("ts".into(), ts.into());
        }
        if self.deleted {
            m.insert("deleted".into(), true.into());
        }
        Value::Object(m)
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("kekName".into(), self.id.kek_name.clone().into());
        m.insert("subject".into(), self.id.subject.clone().into());
        m.insert("algorithm".into(), self.id.algorithm.as_str().into());
        m.insert("version".into(), self.id.version.into());
        if let Some(k) = &self.encrypted_key_material {
            m.insert("encryptedKeyMaterial".into(), k.clone().into());
        }
        m.insert("deleted".into(), self.deleted.into());
        m.insert("type".into(), "DEK".into());
        if let Some(ts) = self.ts {
            m.insert("ts".into(), ts.into());
        }
        Value::Object(m)
    }
}

/// A `_dek_registry_keys` record key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyId {
    Kek(String),
    Dek(DekId),
}

impl KeyId {
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = match self {
            KeyId::Kek(name) => json!({"tenant": TENANT, "name": name, "type": "KEK"}),
            KeyId::Dek(id) => json!({
                "tenant": TENANT,
                "kekName": id.kek_name,
                "subject": id.subject,
                "algorithm": id.algorithm.as_str(),
                "version": id.version,
                "type": "DEK",
            }),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// A key or its new state, ready to append.
pub enum Record {
    Kek(Kek),
    Dek(Dek),
    /// A permanent delete.
    Tombstone(KeyId),
}

impl Record {
    pub fn key(&self) -> KeyId {
        match self {
            Record::Kek(k) => KeyId::Kek(k.name.clone()),
            Record::Dek(d) => KeyId::Dek(d.id.clone()),
            Record::Tombstone(id) => id.clone(),
        }
    }

    /// The record's value bytes; `None` for a tombstone.
    pub fn value_bytes(&self) -> Option<Vec<u8>> {
        let v = match self {
            Record::Kek(k) => k.to_value(),
            Record::Dek(d) => d.to_value(),
            Record::Tombstone(_) => return None,
        };
        Some(serde_json::to_vec(&v).unwrap_or_default())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kek_name: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    version: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KekJson {
    kms_type: Option<String>,
    kms_key_id: Option<String>,
    #[serde(default)]
    kms_props: Option<BTreeMap<String, String>>,
    #[serde(default)]
    doc: Option<String>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    ts: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DekJson {
    #[serde(default)]
    encrypted_key_material: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    ts: Option<i64>,
}

/// A record read back: `Ok(None)` for another tenant's key (skipped).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, String> {
    let k: KeyJson = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
    if k.tenant.as_deref().unwrap_or(TENANT) != TENANT {
        return Ok(None);
    }
    let id = match k.kind.as_str() {
        "KEK" => KeyId::Kek(k.name.ok_or("KEK key without a name")?),
        "DEK" => {
            let algorithm = match k.algorithm.as_deref() {
                None => Algorithm::DEFAULT,
                Some(a) => Algorithm::parse(a).ok_or_else(|| format!("unknown algorithm {a:?}"))?,
            };
            KeyId::Dek(DekId {
                kek_name: k.kek_name.ok_or("DEK key without a kekName")?,
                subject: k.subject.ok_or("DEK key without a subject")?,
                algorithm,
                version: k.version.unwrap_or(1),
            })
        }
        other => return Err(format!("unknown key type {other:?}")),
    };
    // Confluent's serde reads an empty value as null, as `_schemas` does.
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Some(Record::Tombstone(id)));
    };
    Ok(Some(match id {
        KeyId::Kek(name) => {
            let v: KekJson =
                serde_json::from_slice(value).map_err(|e| format!("bad KEK value: {e}"))?;
            Record::Kek(Kek {
                name,
                kms_type: v.kms_type.ok_or("KEK value without kmsType")?,
                kms_key_id: v.kms_key_id.ok_or("KEK value without kmsKeyId")?,
                kms_props: v.kms_props.unwrap_or_default(),
                doc: v.doc,
                shared: v.shared,
                deleted: v.deleted,
                ts: v.ts,
            })
        }
        KeyId::Dek(id) => {
            let v: DekJson =
                serde_json::from_slice(value).map_err(|e| format!("bad DEK value: {e}"))?;
            Record::Dek(Dek {
                id,
                encrypted_key_material: v.encrypted_key_material,
                deleted: v.deleted,
                ts: v.ts,
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dek_id() -> DekId {
        DekId {
            kek_name: "kek1".into(),
            subject: "orders-value".into(),
            algorithm: Algorithm::Aes256Gcm,
            version: 1,
        }
    }

    #[test]
    fn keys_have_confluents_field_order() {
        assert_eq!(
            String::from_utf8(KeyId::Kek("kek1".into()).to_bytes()).unwrap(),
            r#"{"tenant":"default","name":"kek1","type":"KEK"}"#
        );
        assert_eq!(
            String::from_utf8(KeyId::Dek(dek_id()).to_bytes()).unwrap(),
            r#"{"tenant":"default","kekName":"kek1","subject":"orders-value","algorithm":"AES256_GCM","version":1,"type":"DEK"}"#
        );
    }

    #[test]
    fn values_round_trip() {
        let kek = Kek {
            name: "kek1".into(),
            kms_type: "local-kms".into(),
            kms_key_id: "k".into(),
            kms_props: [("b".into(), "2".into()), ("a".into(), "1".into())].into(),
            doc: None,
            shared: false,
            deleted: true,
            ts: Some(5),
        };
        let rec = Record::Kek(kek.clone());
        let bytes = rec.value_bytes().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"name":"kek1","kmsType":"local-kms","kmsKeyId":"k","kmsProps":{"a":"1","b":"2"},"shared":false,"deleted":true,"type":"KEK","ts":5}"#
        );
        match decode(&rec.key().to_bytes(), Some(&bytes)).unwrap() {
            Some(Record::Kek(k)) => assert_eq!(k, kek),
            _ => panic!("not a KEK"),
        }
        let dek = Dek {
            id: dek_id(),
            encrypted_key_material: Some("AAAA".into()),
            deleted: false,
            ts: Some(7),
        };
        let rec = Record::Dek(dek.clone());
        let bytes = rec.value_bytes().unwrap();
        match decode(&rec.key().to_bytes(), Some(&bytes)).unwrap() {
            Some(Record::Dek(d)) => assert_eq!(d, dek),
            _ => panic!("not a DEK"),
        }
        match decode(&rec.key().to_bytes(), None).unwrap() {
            Some(Record::Tombstone(KeyId::Dek(id))) => assert_eq!(id, dek_id()),
            _ => panic!("not a tombstone"),
        }
    }

    #[test]
    fn bad_records_are_errors_and_other_tenants_skipped() {
        for bad in [
            &b"not json"[..],
            br#"{"type":"KEK"}"#,
            br#"{"type":"XYZ","name":"a"}"#,
            br#"{"type":"DEK","kekName":"k","subject":"s","algorithm":"ROT13"}"#,
        ] {
            assert!(decode(bad, Some(b"{}")).is_err());
        }
        assert!(decode(br#"{"type":"KEK","name":"k"}"#, Some(b"[]")).is_err());
        assert!(
            decode(
                br#"{"tenant":"other","name":"k","type":"KEK"}"#,
                Some(b"{}")
            )
            .unwrap()
            .is_none()
        );
    }
}
