//! Confluent's DEK Registry (`/dek-registry/v1`): the key encryption keys (KEKs, which
//! name a key in a KMS) and the data encryption keys (DEKs, stored only wrapped by their
//! KEK) that client-side field-level encryption uses.
//!
//! The registry never sees a plaintext key: clients generate a DEK, wrap it with their
//! KMS and register the ciphertext; readers fetch it and unwrap it with the same KMS.
//! (Confluent can also generate DEKs for "shared" KEKs it has KMS access to; Medulla has
//! no KMS drivers, so such a create without key material is refused with 50070.)
//!
//! State lives in the compacted topic `_dek_registry_keys` (see [`records`]), applied in
//! offset order by [`apply_record`] exactly as `_schemas` feeds [`crate::state::State`];
//! writes are serialized, catch the log up first, and return once applied
//! ([`DekRegistry::write`]), so an answer means the record is in the topic and in state.
//! The HTTP routes are in [`api`].

pub mod api;
pub mod records;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult};
use crate::limits::DekLimits;
use crate::logged::{Log, Logged};

pub use api::router;
use records::{Algorithm, Dek, DekId, Kek, KeyId, Record};

/// The keys, as the topic has them up to the last applied offset.
#[derive(Debug, Default)]
pub struct DekState {
    keks: BTreeMap<String, Kek>,
    deks: BTreeMap<DekId, Dek>,
}

impl DekState {
    pub fn new() -> DekState {
        DekState::default()
    }

    fn apply(&mut self, r: Record) {
        match r {
            Record::Kek(k) => {
                self.keks.insert(k.name.clone(), k);
            }
            Record::Dek(d) => {
                self.deks.insert(d.id.clone(), d);
            }
            Record::Tombstone(KeyId::Kek(name)) => {
                self.keks.remove(&name);
            }
            Record::Tombstone(KeyId::Dek(id)) => {
                self.deks.remove(&id);
            }
        }
    }

    fn kek(&self, name: &str, deleted: bool) -> Option<&Kek> {
        self.keks.get(name).filter(|k| deleted || !k.deleted)
    }

    /// Every DEK under `kek`, in key order.
    fn deks_of<'a>(&'a self, kek: &'a str) -> impl Iterator<Item = &'a Dek> + 'a {
        self.deks
            .range(
                DekId {
                    kek_name: kek.to_owned(),
                    subject: String::new(),
                    algorithm: Algorithm::Aes128Gcm,
                    version: i32::MIN,
                }..,
            )
            .take_while(move |(id, _)| id.kek_name == kek)
            .map(|(_, d)| d)
    }

    /// The versions of one subject and algorithm, ascending.
    fn versions<'a>(
        &'a self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        deleted: bool,
    ) -> impl DoubleEndedIterator<Item = &'a Dek> + use<'a> {
        let id = |version| DekId {
            kek_name: kek.to_owned(),
            subject: subject.to_owned(),
            algorithm,
            version,
        };
        self.deks
            .range(id(i32::MIN)..=id(i32::MAX))
            .map(|(_, d)| d)
            .filter(move |d| deleted || !d.deleted)
    }

    fn dek(
        &self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        version: DekVersion,
        deleted: bool,
    ) -> Option<&Dek> {
        match version {
            DekVersion::Latest => self.versions(kek, subject, algorithm, deleted).next_back(),
            DekVersion::Number(version) => self
                .deks
                .get(&DekId {
                    kek_name: kek.to_owned(),
                    subject: subject.to_owned(),
                    algorithm,
                    version,
                })
                .filter(|d| deleted || !d.deleted),
        }
    }
}

/// Applies one `_dek_registry_keys` record (the log reader's callback).
pub fn apply_record(
    state: &RwLock<DekState>,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let Some(key) = key else {
        tracing::warn!(offset, "_dek_registry_keys record without a key skipped");
        return;
    };
    match records::decode(key, value) {
        Ok(Some(r)) => state.write().unwrap_or_else(|e| e.into_inner()).apply(r),
        Ok(None) => {}
        Err(e) => tracing::warn!(offset, "malformed _dek_registry_keys record skipped: {e}"),
    }
}

/// A DEK version as a path gives it: a number, `latest` or `-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DekVersion {
    Latest,
    Number(i32),
}

impl DekVersion {
    pub fn parse(s: &str) -> ApiResult<DekVersion> {
        match crate::registry::VersionSpec::parse(s)? {
            crate::registry::VersionSpec::Latest => Ok(DekVersion::Latest),
            crate::registry::VersionSpec::Number(n) => Ok(DekVersion::Number(n)),
        }
    }
}

// ------------------------------------------------------------------ errors

/// 40470: Confluent answers it for a missing KEK and a missing DEK alike (the message
/// names the KEK or the subject).
pub fn key_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        40470,
        format!("Key '{name}' not found"),
    )
}
pub fn key_not_soft_deleted(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        40471,
        format!("Key '{name}' was not deleted first before being permanently deleted"),
    )
}
pub fn key_soft_deleted(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        40472,
        format!("Key '{name}' must be undeleted first"),
    )
}
pub fn already_exists(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        40971,
        format!("Key '{name}' already exists; use a different value"),
    )
}
pub fn too_many_keys(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        40972,
        format!("A maximum of {max} keys already exist"),
    )
}
/// 42271: the message is the offending field's name, as Confluent's.
pub fn invalid_key(field: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42271, field)
}
pub fn reference_exists(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        42272,
        format!("One or more references exist to the key {name}"),
    )
}
pub fn dek_generation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50070, message)
}

// ------------------------------------------------------------------ requests

/// `POST /keks` (Confluent's `CreateKekRequest`; unknown fields ignored).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKek {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kms_type: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub kms_props: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub doc: Option<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub deleted: bool,
}

/// `PUT /keks/{name}` (`UpdateKekRequest`): absent fields keep their value.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateKek {
    #[serde(default)]
    pub kms_props: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub doc: Option<String>,
    #[serde(default)]
    pub shared: Option<bool>,
}

/// `POST /keks/{name}/deks[/{subject}]` (`CreateDekRequest`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDek {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub version: Option<i32>,
    #[serde(default)]
    pub algorithm: Option<String>,
    #[serde(default)]
    pub encrypted_key_material: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

// ------------------------------------------------------------------ the registry

/// The DEK Registry of one instance: state fed by `_dek_registry_keys`, writes through
/// the log.
pub struct DekRegistry {
    logged: Logged<DekState>,
    pub limits: DekLimits,
    /// The schema registry's `registry.request.max.bytes` (for the 413 message; the
    /// router's body limit enforces it).
    request_bytes_max: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Confluent's `normalizeKmsType`: `aws…`, `azure…`, `gcp…` get their canonical names.
fn normalize_kms_type(kms_type: &str) -> String {
    let lower = kms_type.to_lowercase();
    if lower.starts_with("aws") {
        "aws-kms".to_owned()
    } else if lower.starts_with("azure") {
        "azure-kms".to_owned()
    } else if lower.starts_with("gcp") {
        "gcp-kms".to_owned()
    } else {
        kms_type.to_owned()
    }
}

impl DekRegistry {
    pub fn new(
        state: Arc<RwLock<DekState>>,
        log: Box<dyn Log>,
        limits: DekLimits,
        request_bytes_max: usize,
    ) -> DekRegistry {
        DekRegistry {
            logged: Logged::new(state, log),
            limits,
            request_bytes_max,
        }
    }

    pub fn limits_request_bytes(&self) -> usize {
        self.request_bytes_max
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, DekState> {
        self.logged.read()
    }

    /// Runs one write: catch up, compute the records from the state, append them in
    /// order (each applied before the next), answer.
    async fn write<T>(
        &self,
        plan: impl FnOnce(&DekState) -> ApiResult<(Vec<Record>, T)>,
    ) -> ApiResult<T> {
        self.logged
            .write(|st| {
                let (records, answer) = plan(st)?;
                let raw = records
                    .iter()
                    .map(|r| (r.key().to_bytes(), r.value_bytes()))
                    .collect();
                Ok((raw, answer))
            })
            .await
    }

    // ---------------------------------------------------------------- checks

    /// Confluent's `checkName`: a letter or `_`, then letters, digits, `_` or `-`.
    pub fn check_name(&self, name: &str) -> ApiResult<()> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !first_ok || !rest_ok || name.chars().count() > self.limits.name_chars_max {
            return Err(invalid_key("name"));
        }
        Ok(())
    }

    /// Confluent's `checkSubject`: not empty, no control characters; bounded.
    pub fn check_subject(&self, subject: &str) -> ApiResult<()> {
        if subject.is_empty()
            || subject.chars().any(char::is_control)
            || subject.len() > self.limits.subject_bytes_max
        {
            return Err(invalid_key("subject"));
        }
        Ok(())
    }

    fn check_kms_props(&self, props: &BTreeMap<String, String>) -> ApiResult<()> {
        let l = &self.limits;
        if props.len() > l.kms_props_max
            || props
                .iter()
                .any(|(k, v)| k.len() > l.kms_prop_bytes_max || v.len() > l.kms_prop_bytes_max)
        {
            return Err(invalid_key("kmsProps"));
        }
        Ok(())
    }

    fn check_doc(&self, doc: Option<&str>) -> ApiResult<()> {
        if doc.is_some_and(|d| d.len() > self.limits.doc_bytes_max) {
            return Err(invalid_key("doc"));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- KEKs

    pub fn kek_names(&self, deleted: bool) -> Vec<String> {
        self.state()
            .keks
            .values()
            .filter(|k| deleted || !k.deleted)
            .map(|k| k.name.clone())
            .collect()
    }

    pub fn get_kek(&self, name: &str, deleted: bool) -> ApiResult<Kek> {
        self.check_name(name)?;
        self.state()
            .kek(name, deleted)
            .cloned()
            .ok_or_else(|| key_not_found(name))
    }

    /// `POST /keks`: creates, or undeletes when the same key was soft-deleted.
    pub async fn create_kek(&self, req: CreateKek) -> ApiResult<Kek> {
        let name = req.name.unwrap_or_default();
        self.check_name(&name)?;
        let kms_key_id = req
            .kms_key_id
            .filter(|k| !k.is_empty() && k.len() <= self.limits.kms_key_id_bytes_max)
            .ok_or_else(|| invalid_key("kmsKeyId"))?;
        let kms_type = req
            .kms_type
            .filter(|t| t.len() <= self.limits.kms_key_id_bytes_max)
            .ok_or_else(|| invalid_key("kmsType"))?;
        let kms_props = req.kms_props.unwrap_or_default();
        self.check_kms_props(&kms_props)?;
        self.check_doc(req.doc.as_deref())?;
        let new = Kek {
            name: name.clone(),
            kms_type: normalize_kms_type(&kms_type),
            kms_key_id,
            kms_props,
            doc: req.doc,
            shared: req.shared,
            deleted: req.deleted,
            ts: Some(now_ms()),
        };
        let max = self.limits.keys_max;
        self.write(move |st| {
            match st.keks.get(&name) {
                // Create acts as undelete of an equivalent soft-deleted key.
                Some(old) if old.deleted == new.deleted || !old.equivalent(&new) => {
                    return Err(already_exists(&name));
                }
                Some(_) => {}
                None if st.keks.len() >= max => return Err(too_many_keys(max)),
                None => {}
            }
            Ok((vec![Record::Kek(new.clone())], new))
        })
        .await
    }

    /// `PUT /keks/{name}`: `kmsProps`, `doc` and `shared` may change.
    pub async fn update_kek(&self, name: &str, req: UpdateKek) -> ApiResult<Kek> {
        self.check_name(name)?;
        if let Some(p) = &req.kms_props {
            self.check_kms_props(p)?;
        }
        self.check_doc(req.doc.as_deref())?;
        let name = name.to_owned();
        self.write(move |st| {
            let old = st.kek(&name, false).ok_or_else(|| key_not_found(&name))?;
            let new = Kek {
                kms_props: req.kms_props.unwrap_or_else(|| old.kms_props.clone()),
                doc: req.doc.or_else(|| old.doc.clone()),
                shared: req.shared.unwrap_or(old.shared),
                deleted: false,
                ts: Some(now_ms()),
                ..old.clone()
            };
            if new.equivalent(old) {
                return Ok((vec![], old.clone()));
            }
            Ok((vec![Record::Kek(new.clone())], new))
        })
        .await
    }

    /// `DELETE /keks/{name}`: soft first (refused while live DEKs use it), then
    /// `permanent` (refused while any DEK, even soft-deleted, uses it).
    pub async fn delete_kek(&self, name: &str, permanent: bool) -> ApiResult<()> {
        self.check_name(name)?;
        let name = name.to_owned();
        self.write(move |st| {
            let old = st.kek(&name, true).ok_or_else(|| key_not_found(&name))?;
            if st.deks_of(&name).any(|d| permanent || !d.deleted) {
                return Err(reference_exists(&name));
            }
            if permanent {
                if !old.deleted {
                    return Err(key_not_soft_deleted(&name));
                }
                return Ok((vec![Record::Tombstone(KeyId::Kek(name.clone()))], ()));
            }
            if old.deleted {
                return Ok((vec![], ()));
            }
            let new = Kek {
                deleted: true,
                ts: Some(now_ms()),
                ..old.clone()
            };
            Ok((vec![Record::Kek(new)], ()))
        })
        .await
    }

    pub async fn undelete_kek(&self, name: &str) -> ApiResult<()> {
        self.check_name(name)?;
        let name = name.to_owned();
        self.write(move |st| {
            let old = st.kek(&name, true).ok_or_else(|| key_not_found(&name))?;
            if !old.deleted {
                return Ok((vec![], ()));
            }
            let new = Kek {
                deleted: false,
                ts: Some(now_ms()),
                ..old.clone()
            };
            Ok((vec![Record::Kek(new)], ()))
        })
        .await
    }

    // ---------------------------------------------------------------- DEKs

    /// `GET /keks/{name}/deks`: the subjects with DEKs, sorted, each once.
    pub fn dek_subjects(&self, kek: &str, deleted: bool) -> ApiResult<Vec<String>> {
        self.check_name(kek)?;
        let st = self.state();
        st.kek(kek, deleted).ok_or_else(|| key_not_found(kek))?;
        let mut out: Vec<String> = st
            .deks_of(kek)
            .filter(|d| deleted || !d.deleted)
            .map(|d| d.id.subject.clone())
            .collect();
        out.dedup();
        Ok(out)
    }

    pub fn dek_versions(
        &self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        deleted: bool,
    ) -> ApiResult<Vec<i32>> {
        self.check_name(kek)?;
        self.check_subject(subject)?;
        let st = self.state();
        st.kek(kek, deleted).ok_or_else(|| key_not_found(kek))?;
        Ok(st
            .versions(kek, subject, algorithm, deleted)
            .map(|d| d.id.version)
            .collect())
    }

    pub fn get_dek(
        &self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        version: DekVersion,
        deleted: bool,
    ) -> ApiResult<Dek> {
        self.check_name(kek)?;
        self.check_subject(subject)?;
        let st = self.state();
        st.kek(kek, deleted).ok_or_else(|| key_not_found(kek))?;
        st.dek(kek, subject, algorithm, version, deleted)
            .cloned()
            .ok_or_else(|| key_not_found(subject))
    }

    /// `POST /keks/{name}/deks`: registers a wrapped DEK (or undeletes an equivalent
    /// soft-deleted one). `path_subject` is the subject of the newer path form; a body
    /// naming another subject is refused.
    pub async fn create_dek(
        &self,
        kek: &str,
        path_subject: Option<&str>,
        req: CreateDek,
    ) -> ApiResult<Dek> {
        self.check_name(kek)?;
        let subject = match (path_subject, req.subject) {
            (Some(p), Some(b)) if p != b => return Err(invalid_key("subject")),
            (Some(p), _) => p.to_owned(),
            (None, b) => b.unwrap_or_default(),
        };
        self.check_subject(&subject)?;
        let algorithm = match req.algorithm.as_deref() {
            None => Algorithm::DEFAULT,
            Some(a) => Algorithm::parse(a).ok_or_else(|| invalid_key("algorithm"))?,
        };
        let version = req.version.unwrap_or(1);
        if version < 1 {
            return Err(invalid_key("version"));
        }
        if req
            .encrypted_key_material
            .as_ref()
            .is_some_and(|m| m.is_empty() || m.len() > self.limits.key_material_bytes_max)
        {
            return Err(invalid_key("encryptedKeyMaterial"));
        }
        let kek = kek.to_owned();
        let new = Dek {
            id: DekId {
                kek_name: kek.clone(),
                subject: subject.clone(),
                algorithm,
                version,
            },
            encrypted_key_material: req.encrypted_key_material,
            deleted: req.deleted,
            ts: Some(now_ms()),
        };
        let max = self.limits.keys_max;
        self.write(move |st| {
            let k = st.kek(&kek, new.deleted).ok_or_else(|| key_not_found(&kek))?;
            if new.encrypted_key_material.is_none() {
                if k.shared {
                    return Err(dek_generation(format!(
                        "Could not generate encrypted dek for {subject}: this registry has no KMS access; register the DEK with encryptedKeyMaterial"
                    )));
                }
                return Err(invalid_key("encryptedKeyMaterial"));
            }
            match st.deks.get(&new.id) {
                Some(old) if old.deleted == new.deleted || !old.equivalent(&new) => {
                    return Err(already_exists(&subject));
                }
                Some(_) => {}
                None if st.deks.len() >= max => return Err(too_many_keys(max)),
                None => {}
            }
            Ok((vec![Record::Dek(new.clone())], new))
        })
        .await
    }

    /// `DELETE /keks/{name}/deks/{subject}[/versions/{v}]`: soft first, then permanent.
    /// `version` `None` = every version of the subject and algorithm.
    pub async fn delete_dek(
        &self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        version: Option<DekVersion>,
        permanent: bool,
    ) -> ApiResult<()> {
        self.check_name(kek)?;
        self.check_subject(subject)?;
        let (kek, subject) = (kek.to_owned(), subject.to_owned());
        self.write(move |st| {
            st.kek(&kek, true).ok_or_else(|| key_not_found(&kek))?;
            let targets: Vec<&Dek> = match version {
                Some(v) => {
                    let d = st
                        .dek(&kek, &subject, algorithm, v, true)
                        .ok_or_else(|| key_not_found(&subject))?;
                    vec![d]
                }
                None => {
                    st.dek(&kek, &subject, algorithm, DekVersion::Latest, true)
                        .ok_or_else(|| key_not_found(&subject))?;
                    st.versions(&kek, &subject, algorithm, permanent).collect()
                }
            };
            let mut records = Vec::new();
            for d in targets {
                if permanent {
                    if !d.deleted {
                        return Err(key_not_soft_deleted(&subject));
                    }
                    records.push(Record::Tombstone(KeyId::Dek(d.id.clone())));
                } else if !d.deleted {
                    records.push(Record::Dek(Dek {
                        deleted: true,
                        ts: Some(now_ms()),
                        ..d.clone()
                    }));
                }
            }
            Ok((records, ()))
        })
        .await
    }

    /// `POST /keks/{name}/deks/{subject}[/versions/{v}]/undelete`: refused while the
    /// KEK itself is soft-deleted (40472).
    pub async fn undelete_dek(
        &self,
        kek: &str,
        subject: &str,
        algorithm: Algorithm,
        version: Option<DekVersion>,
    ) -> ApiResult<()> {
        self.check_name(kek)?;
        self.check_subject(subject)?;
        let (kek, subject) = (kek.to_owned(), subject.to_owned());
        self.write(move |st| {
            let k = st.kek(&kek, true).ok_or_else(|| key_not_found(&kek))?;
            let targets: Vec<&Dek> = match version {
                Some(v) => vec![
                    st.dek(&kek, &subject, algorithm, v, true)
                        .ok_or_else(|| key_not_found(&subject))?,
                ],
                None => {
                    st.dek(&kek, &subject, algorithm, DekVersion::Latest, true)
                        .ok_or_else(|| key_not_found(&subject))?;
                    st.versions(&kek, &subject, algorithm, true).collect()
                }
            };
            if k.deleted {
                return Err(key_soft_deleted(&kek));
            }
            let records = targets
                .into_iter()
                .filter(|d| d.deleted)
                .map(|d| {
                    Record::Dek(Dek {
                        deleted: false,
                        ts: Some(now_ms()),
                        ..d.clone()
                    })
                })
                .collect();
            Ok((records, ()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dek(kek: &str, subject: &str, version: i32, deleted: bool) -> Dek {
        Dek {
            id: DekId {
                kek_name: kek.into(),
                subject: subject.into(),
                algorithm: Algorithm::Aes256Gcm,
                version,
            },
            encrypted_key_material: Some("AA==".into()),
            deleted,
            ts: None,
        }
    }

    #[test]
    fn ranges_stay_within_their_kek_and_subject() {
        let mut st = DekState::new();
        for d in [
            dek("a", "s", 1, false),
            dek("a", "s", 2, true),
            dek("a", "t", 1, false),
            dek("ab", "s", 1, false),
            dek("b", "s", 7, false),
        ] {
            st.apply(Record::Dek(d));
        }
        assert_eq!(st.deks_of("a").count(), 3);
        assert_eq!(st.deks_of("ab").count(), 1);
        let live: Vec<i32> = st
            .versions("a", "s", Algorithm::Aes256Gcm, false)
            .map(|d| d.id.version)
            .collect();
        assert_eq!(live, [1]);
        let latest = st.dek("a", "s", Algorithm::Aes256Gcm, DekVersion::Latest, true);
        assert_eq!(latest.map(|d| d.id.version), Some(2));
        assert!(
            st.dek("a", "s", Algorithm::Aes128Gcm, DekVersion::Latest, true)
                .is_none()
        );
        st.apply(Record::Tombstone(KeyId::Dek(dek("a", "s", 2, true).id)));
        let latest = st.dek("a", "s", Algorithm::Aes256Gcm, DekVersion::Latest, true);
        assert_eq!(latest.map(|d| d.id.version), Some(1));
    }

    #[test]
    fn kms_types_are_normalized() {
        assert_eq!(normalize_kms_type("AWS"), "aws-kms");
        assert_eq!(normalize_kms_type("gcp-kms"), "gcp-kms");
        assert_eq!(normalize_kms_type("local-kms"), "local-kms");
    }
}
