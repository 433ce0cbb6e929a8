//! The registry's state: what the `_schemas` records say, applied in offset order.
//!
//! Pure: `apply` never fails (a record that makes no sense is logged and skipped, as
//! Confluent's reader does) and no query allocates ids or writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::records::{ConfigValue, Record, Reference, SchemaValue};
use crate::schema::SchemaType;

/// A schema's content, shared by every subject-version that has its id.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSchema {
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
    pub metadata: Option<Value>,
    pub rule_set: Option<Value>,
}

impl StoredSchema {
    /// What makes two registrations "the same schema" (one id): the text, its type,
    /// its references and its data contract.
    pub fn content_key(&self) -> String {
        serde_json::to_string(&(
            self.schema_type.as_str(),
            &self.schema,
            &self.references,
            &self.metadata,
            &self.rule_set,
        ))
        .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub id: i32,
    pub deleted: bool,
}

#[derive(Debug, Default)]
pub struct State {
    schemas: HashMap<i32, Arc<StoredSchema>>,
    by_content: HashMap<String, i32>,
    /// How many subject-versions (soft-deleted included) hold each id.
    holders: HashMap<i32, usize>,
    subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    /// `None` = global.
    configs: HashMap<Option<String>, ConfigValue>,
    modes: HashMap<Option<String>, String>,
    max_id: i32,
    /// Offset of the last record applied, -1 before any.
    pub applied: i64,
}

impl State {
    pub fn new() -> State {
        State {
            applied: -1,
            ..State::default()
        }
    }

    pub fn apply(&mut self, offset: i64, record: Record) {
        self.applied = self.applied.max(offset);
        match record {
            Record::Schema {
                subject,
                version,
                value,
            } => match value {
                Some(v) => self.put_version(subject, version, v),
                None => self.remove_version(&subject, version),
            },
            Record::Config { subject, value } => match value {
                Some(v) => {
                    self.configs.insert(subject, v);
                }
                None => {
                    self.configs.remove(&subject);
                }
            },
            Record::Mode { subject, value } => match value {
                Some(v) => {
                    self.modes.insert(subject, v.mode);
                }
                None => {
                    self.modes.remove(&subject);
                }
            },
            Record::DeleteSubject(d) => {
                if let Some(versions) = self.subjects.get_mut(&d.subject) {
                    for (_, v) in versions.range_mut(..=d.version) {
                        v.deleted = true;
                    }
                }
            }
            Record::ClearSubject(c) => {
                let versions: Vec<i32> = self
                    .subjects
                    .get(&c.subject)
                    .map(|vs| {
                        vs.iter()
                            .filter(|(_, v)| v.deleted)
                            .map(|(n, _)| *n)
                            .collect()
                    })
                    .unwrap_or_default();
                for n in versions {
                    self.remove_version(&c.subject, n);
                }
            }
            Record::IdWatermark(id) => self.max_id = self.max_id.max(id),
            Record::Ignored => {}
        }
    }

    fn put_version(&mut self, subject: String, version: i32, v: SchemaValue) {
        let stored = StoredSchema {
            schema_type: v.schema_type,
            schema: v.schema,
            references: v.references,
            metadata: v.metadata,
            rule_set: v.rule_set,
        };
        self.max_id = self.max_id.max(v.id);
        let versions = self.subjects.entry(subject.clone()).or_default();
        let previous = versions.insert(
            version,
            Version {
                id: v.id,
                deleted: v.deleted,
            },
        );
        match previous {
            Some(p) if p.id == v.id => {}
            Some(p) => {
                self.release(p.id);
                self.hold(v.id, stored);
            }
            None => self.hold(v.id, stored),
        }
    }

    fn hold(&mut self, id: i32, stored: StoredSchema) {
        *self.holders.entry(id).or_default() += 1;
        if !self.schemas.contains_key(&id) {
            self.by_content.entry(stored.content_key()).or_insert(id);
            self.schemas.insert(id, Arc::new(stored));
        }
    }

    fn release(&mut self, id: i32) {
        let Some(n) = self.holders.get_mut(&id) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.holders.remove(&id);
            if let Some(s) = self.schemas.remove(&id) {
                let key = s.content_key();
                if self.by_content.get(&key) == Some(&id) {
                    self.by_content.remove(&key);
                }
            }
        }
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(versions) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(v) = versions.remove(&version) else {
            return;
        };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        self.release(v.id);
    }

    // ---- queries ----

    pub fn max_id(&self) -> i32 {
        self.max_id
    }

    pub fn schema(&self, id: i32) -> Option<&Arc<StoredSchema>> {
        self.schemas.get(&id)
    }

    pub fn id_of(&self, content: &StoredSchema) -> Option<i32> {
        self.by_content.get(&content.content_key()).copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = (i32, &Arc<StoredSchema>)> {
        self.schemas.iter().map(|(id, s)| (*id, s))
    }

    pub fn subjects(&self) -> impl Iterator<Item = (&String, &BTreeMap<i32, Version>)> {
        self.subjects.iter()
    }

    pub fn versions(&self, subject: &str) -> Option<&BTreeMap<i32, Version>> {
        self.subjects.get(subject)
    }

    /// Whether a subject has any version that is not soft-deleted.
    pub fn is_live(&self, subject: &str) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|vs| vs.values().any(|v| !v.deleted))
    }

    /// The live (or, with `deleted`, every) versions of a subject, ascending.
    pub fn version_list(&self, subject: &str, deleted: bool) -> Vec<(i32, Version)> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, v)| deleted || !v.deleted)
                    .map(|(n, v)| (*n, *v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (subject, version) pairs holding `id`.
    pub fn holders_of(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for (s, vs) in &self.subjects {
            for (n, v) in vs {
                if v.id == id && (deleted || !v.deleted) {
                    out.push((s.clone(), *n));
                }
            }
        }
        out
    }

    /// Ids of live schemas that reference `subject` version `version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids: Vec<i32> = Vec::new();
        for vs in self.subjects.values() {
            for v in vs.values().filter(|v| !v.deleted) {
                if let Some(s) = self.schemas.get(&v.id)
                    && s.references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
                    && !ids.contains(&v.id)
                {
                    ids.push(v.id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    pub fn config(&self, subject: Option<&str>) -> Option<&ConfigValue> {
        self.configs.get(&subject.map(str::to_owned))
    }

    pub fn mode(&self, subject: Option<&str>) -> Option<&str> {
        self.modes
            .get(&subject.map(str::to_owned))
            .map(String::as_str)
    }

    /// Whether the registry holds no subject at all (IMPORT mode may only be entered then).
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ClearSubjectValue, DeleteSubjectValue};

    fn schema(subject: &str, version: i32, id: i32, text: &str) -> Record {
        Record::Schema {
            subject: subject.into(),
            version,
            value: Some(SchemaValue {
                subject: subject.into(),
                version,
                id,
                schema_type: SchemaType::Avro,
                references: vec![],
                metadata: None,
                rule_set: None,
                schema: text.into(),
                deleted: false,
            }),
        }
    }

    #[test]
    fn shared_ids_soft_and_hard_deletes() {
        let mut st = State::new();
        st.apply(0, schema("a", 1, 1, "\"string\""));
        st.apply(1, schema("b", 1, 1, "\"string\""));
        st.apply(2, schema("a", 2, 2, "\"int\""));
        assert_eq!(
            st.holders_of(1, false),
            vec![("a".into(), 1), ("b".into(), 1)]
        );
        st.apply(
            3,
            Record::DeleteSubject(DeleteSubjectValue {
                subject: "a".into(),
                version: 2,
            }),
        );
        assert!(!st.is_live("a"));
        assert_eq!(st.version_list("a", true).len(), 2);
        st.apply(
            4,
            Record::ClearSubject(ClearSubjectValue {
                subject: "a".into(),
            }),
        );
        assert!(st.versions("a").is_none());
        assert!(st.schema(1).is_some(), "b still holds id 1");
        assert!(st.schema(2).is_none());
        assert_eq!(st.max_id(), 2, "ids are never handed out again");
        assert_eq!(st.applied, 4);
    }
}
