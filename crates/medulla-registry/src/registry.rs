//! The registry's operations: every REST call that reads or changes schemas, configs
//! and modes, over the in-memory [`State`] that the `_schemas` log feeds.
//!
//! Writes are serialized (one at a time per instance), start by catching the log up
//! (so records other instances wrote are seen) and end once this instance has applied
//! what it wrote: a successful answer means the record is in `_schemas` and in state.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::compat::{self, Level};
use crate::error::{ApiError, ApiResult};
use crate::limits::Limits;
use crate::logged::Logged;
pub use crate::logged::{BoxFuture, Log};
use crate::records::{
    self, ConfigValue, DeleteSubjectValue, IdWatermarkValue, Key, ModeValue, Reference, SchemaValue,
};
use crate::schema::{Dependency, ParsedSchema, SchemaType};
use crate::state::{State, StoredSchema, Version};

/// The modes of `/mode`.
pub const MODES: [&str; 4] = ["READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"];

/// A registration as `POST /subjects/{s}/versions` (and the lookup `POST
/// /subjects/{s}`) carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaRequest {
    pub schema: Option<String>,
    #[serde(default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<Reference>>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub rule_set: Option<Value>,
    #[serde(default)]
    pub id: Option<i32>,
    #[serde(default)]
    pub version: Option<i32>,
    /// Newer clients send these; accepted and ignored.
    #[serde(default)]
    pub guid: Option<Value>,
    #[serde(default)]
    pub subject: Option<Value>,
    #[serde(default)]
    pub schema_tags_to_add: Option<Value>,
    #[serde(default)]
    pub schema_tags_to_remove: Option<Value>,
    #[serde(default)]
    pub properties_to_add: Option<Value>,
    #[serde(default)]
    pub properties_to_remove: Option<Value>,
}

/// One subject-version with its schema: the body of most GET answers.
#[derive(Clone, Debug)]
pub struct Registered {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema: Arc<StoredSchema>,
    pub deleted: bool,
}

impl Registered {
    /// Confluent's `Schema` entity: `schemaType` only when not AVRO, empty fields left out.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("subject".into(), self.subject.clone().into());
        m.insert("version".into(), self.version.into());
        m.insert("id".into(), self.id.into());
        schema_fields(&mut m, &self.schema);
        if self.deleted {
            m.insert("deleted".into(), true.into());
        }
        Value::Object(m)
    }
}

/// `schemaType`, `references`, `metadata`, `ruleSet`, `schema` of a stored schema.
pub fn schema_fields(m: &mut Map<String, Value>, s: &StoredSchema) {
    if s.schema_type != SchemaType::Avro {
        m.insert("schemaType".into(), s.schema_type.as_str().into());
    }
    if !s.references.is_empty() {
        m.insert(
            "references".into(),
            serde_json::to_value(&s.references).unwrap_or_default(),
        );
    }
    if let Some(md) = &s.metadata {
        m.insert("metadata".into(), md.clone());
    }
    if let Some(rs) = &s.rule_set {
        m.insert("ruleSet".into(), rs.clone());
    }
    m.insert("schema".into(), s.schema.clone().into());
}

/// A `metadata` / `ruleSet` as stored: members that are null, `[]` or `{}` left out, as
/// Confluent's entities read them (its `Metadata` and `RuleSet` make absent members
/// empty). Clients send either: confluent-kafka-python sends `"sensitive": []` in
/// metadata it read back without one, and must still find the schema.
fn compact(v: Option<Value>) -> Option<Value> {
    match v {
        Some(Value::Object(m)) => Some(Value::Object(
            m.into_iter().filter(|(_, v)| !empty_value(v)).collect(),
        )),
        Some(Value::Null) | None => None,
        other => other,
    }
}

/// None, null, `[]` or `{}`.
fn is_empty(v: &Option<Value>) -> bool {
    v.as_ref().is_none_or(empty_value)
}

fn empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// How broker-side validation derives a subject (Confluent's subject name strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `<topic>-key` / `<topic>-value`.
    Topic,
    /// The schema's record name.
    Record,
    /// `<topic>-<record name>`.
    TopicRecord,
}

pub struct Registry {
    /// Record names by schema id, for the record-name strategies (parsing per record
    /// would be far too slow for the produce path).
    record_names: std::sync::Mutex<std::collections::HashMap<i32, Option<String>>>,
    logged: Logged<State>,
    pub limits: Limits,
    cluster_id: String,
}

/// A version as a path gives it: a number, `latest` or `-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(i32),
}

impl VersionSpec {
    pub fn parse(s: &str) -> ApiResult<VersionSpec> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
            _ => Err(ApiError::invalid_version(s)),
        }
    }
}

/// Validates a subject name (Confluent: not empty, no control characters).
pub fn check_subject(subject: &str) -> ApiResult<()> {
    if subject.is_empty() || subject.chars().any(char::is_control) || subject.len() > 2048 {
        return Err(ApiError::invalid_subject(subject));
    }
    Ok(())
}

/// The context a (possibly qualified) subject is in: `:.ctx:name` → `.ctx`.
pub fn context_of(subject: &str) -> &str {
    if let Some(rest) = subject.strip_prefix(":.")
        && let Some(end) = rest.find(':')
    {
        return &subject[1..end + 2];
    }
    "."
}

impl Registry {
    /// A registry over `state`, which the log's reader fills (see `crate::store`).
    pub fn new(
        state: Arc<RwLock<State>>,
        log: Box<dyn Log>,
        limits: Limits,
        cluster_id: String,
    ) -> Registry {
        Registry {
            record_names: Default::default(),
            logged: Logged::new(state, log),
            limits,
            cluster_id,
        }
    }

    /// Broker-side validation: may records of `topic` carry schema `id` in their key
    /// (`is_key`) or value? Yes when the subject `strategy` derives has a live version
    /// with that id. In-memory and quick: record names are parsed once per id.
    pub fn check_schema_id(
        &self,
        topic: &str,
        is_key: bool,
        strategy: SubjectStrategy,
        id: i32,
    ) -> Result<(), String> {
        let part = if is_key { "key" } else { "value" };
        let subject = match strategy {
            SubjectStrategy::Topic => format!("{topic}-{part}"),
            SubjectStrategy::Record | SubjectStrategy::TopicRecord => {
                let name = self.record_name(id)?;
                if strategy == SubjectStrategy::Record {
                    name
                } else {
                    format!("{topic}-{name}")
                }
            }
        };
        let st = self.state();
        if st.schema(id).is_none() {
            return Err(format!("{part} schema id {id} is not a registered schema"));
        }
        let registered = st
            .versions(&subject)
            .is_some_and(|vs| vs.values().any(|v| v.id == id && !v.deleted));
        if registered {
            Ok(())
        } else {
            Err(format!(
                "{part} schema id {id} is not registered under subject {subject}"
            ))
        }
    }

    fn record_name(&self, id: i32) -> Result<String, String> {
        let mut cache = self.record_names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = cache.get(&id) {
            return known
                .clone()
                .ok_or_else(|| format!("schema id {id} has no record name"));
        }
        let name = {
            let st = self.state();
            let s = st
                .schema(id)
                .ok_or_else(|| format!("schema id {id} is not a registered schema"))?;
            Self::parse_stored(&st, s, &self.limits)
                .map_err(|e| e.message)?
                .record_name()
        };
        // Bounded: one entry per schema id that has been produced with.
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(id, name.clone());
        name.ok_or_else(|| format!("schema id {id} has no record name"))
    }

    /// The Kafka cluster id the registry stores into (`/v1/metadata/id`).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.logged.read()
    }

    /// Runs one write: catch up, compute the records from the state, append them in
    /// order (each applied before the next), answer.
    async fn write<T>(
        &self,
        plan: impl FnOnce(&State) -> ApiResult<(Vec<(Key, Option<Vec<u8>>)>, T)>,
    ) -> ApiResult<T> {
        self.logged
            .write(|st| {
                let (records, answer) = plan(st)?;
                let raw = records
                    .into_iter()
                    .map(|(k, v)| (k.to_bytes(), v))
                    .collect();
                Ok((raw, answer))
            })
            .await
    }

    // ---------------------------------------------------------------- lookups

    fn effective_mode(st: &State, subject: Option<&str>) -> String {
        subject
            .and_then(|s| st.mode(Some(s)))
            .or_else(|| st.mode(None))
            .unwrap_or("READWRITE")
            .to_owned()
    }

    fn effective_config(st: &State, subject: Option<&str>) -> ConfigValue {
        let global = st.config(None).cloned().unwrap_or_default();
        match subject.and_then(|s| st.config(Some(s))) {
            Some(c) => global.merged(c),
            None => global,
        }
    }

    fn level(st: &State, subject: &str) -> Level {
        Self::effective_config(st, Some(subject))
            .compatibility_level
            .as_deref()
            .and_then(Level::parse)
            .unwrap_or(Level::DEFAULT)
    }

    fn find_version(
        st: &State,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> ApiResult<(i32, Version)> {
        let versions = st
            .versions(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        if !deleted && !versions.values().any(|v| !v.deleted) {
            return Err(ApiError::subject_not_found(subject));
        }
        match spec {
            VersionSpec::Latest => versions
                .iter()
                .rev()
                .find(|(_, v)| deleted || !v.deleted)
                .map(|(n, v)| (*n, *v))
                .ok_or_else(|| ApiError::subject_not_found(subject)),
            VersionSpec::Number(n) => match versions.get(&n) {
                Some(v) if deleted || !v.deleted => Ok((n, *v)),
                _ => Err(ApiError::version_not_found(n)),
            },
        }
    }

    fn registered(st: &State, subject: &str, version: i32, v: Version) -> ApiResult<Registered> {
        let schema = st
            .schema(v.id)
            .ok_or_else(|| ApiError::schema_id_not_found(v.id))?
            .clone();
        Ok(Registered {
            subject: subject.to_owned(),
            version,
            id: v.id,
            schema,
            deleted: v.deleted,
        })
    }

    pub fn get_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> ApiResult<Registered> {
        let st = self.state();
        let (n, v) = Self::find_version(&st, subject, spec, deleted)?;
        Self::registered(&st, subject, n, v)
    }

    /// `GET /subjects`: live subjects; with `deleted` the soft-deleted too; with
    /// `deleted_only` only those whose every version is soft-deleted.
    pub fn list_subjects(&self, prefix: &str, deleted: bool, deleted_only: bool) -> Vec<String> {
        let st = self.state();
        st.subjects()
            .filter(|(s, _)| s.starts_with(prefix))
            .filter(|(_, vs)| {
                let live = vs.values().any(|v| !v.deleted);
                if deleted_only { !live } else { live || deleted }
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn list_versions(
        &self,
        subject: &str,
        deleted: bool,
        deleted_only: bool,
    ) -> ApiResult<Vec<i32>> {
        let st = self.state();
        let versions = st
            .versions(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let out: Vec<i32> = versions
            .iter()
            .filter(|(_, v)| {
                if deleted_only {
                    v.deleted
                } else {
                    deleted || !v.deleted
                }
            })
            .map(|(n, _)| *n)
            .collect();
        if out.is_empty() && !deleted && !deleted_only {
            return Err(ApiError::subject_not_found(subject));
        }
        Ok(out)
    }

    pub fn schema_by_id(&self, id: i32) -> ApiResult<Arc<StoredSchema>> {
        self.state()
            .schema(id)
            .cloned()
            .ok_or_else(|| ApiError::schema_id_not_found(id))
    }

    pub fn id_holders(&self, id: i32, deleted: bool) -> ApiResult<Vec<(String, i32)>> {
        let st = self.state();
        if st.schema(id).is_none() {
            return Err(ApiError::schema_id_not_found(id));
        }
        Ok(st.holders_of(id, deleted))
    }

    /// `s` in a `?format=` (see [`ParsedSchema::formatted`]); `None` when the format
    /// does not apply to its type and the stored text is the answer.
    pub fn formatted(&self, s: &StoredSchema, format: &str) -> ApiResult<Option<String>> {
        if format.is_empty() || s.schema_type != SchemaType::Protobuf {
            return Ok(None);
        }
        let st = self.state();
        Ok(Self::parse_stored(&st, s, &self.limits)?.formatted(format))
    }

    pub fn max_id(&self) -> i32 {
        self.state().max_id()
    }

    pub fn referenced_by(&self, subject: &str, spec: VersionSpec) -> ApiResult<Vec<i32>> {
        let st = self.state();
        let (n, _) = Self::find_version(&st, subject, spec, false)?;
        Ok(st.referenced_by(subject, n))
    }

    /// Every subject-version (for `GET /schemas`).
    pub fn all_schemas(&self, prefix: &str, deleted: bool, latest_only: bool) -> Vec<Registered> {
        let st = self.state();
        let mut out = Vec::new();
        for (subject, versions) in st.subjects().filter(|(s, _)| s.starts_with(prefix)) {
            let picked: Vec<(&i32, &Version)> = versions
                .iter()
                .filter(|(_, v)| deleted || !v.deleted)
                .collect();
            let picked = if latest_only {
                picked.last().into_iter().copied().collect()
            } else {
                picked
            };
            for (n, v) in picked {
                if let Ok(r) = Self::registered(&st, subject, *n, *v) {
                    out.push(r);
                }
            }
        }
        out
    }

    pub fn contexts(&self) -> Vec<String> {
        let st = self.state();
        let mut set: Vec<String> = vec![".".to_owned()];
        for (s, _) in st.subjects() {
            let c = context_of(s);
            if !set.iter().any(|x| x == c) {
                set.push(c.to_owned());
            }
        }
        set.sort();
        set
    }

    /// The latest live version whose metadata properties hold every `(key, value)`.
    pub fn latest_with_metadata(
        &self,
        subject: &str,
        wanted: &[(String, String)],
        deleted: bool,
    ) -> ApiResult<Registered> {
        let st = self.state();
        let versions = st
            .versions(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        for (n, v) in versions.iter().rev().filter(|(_, v)| deleted || !v.deleted) {
            let Some(s) = st.schema(v.id) else { continue };
            let props = s
                .metadata
                .as_ref()
                .and_then(|m| m.get("properties"))
                .and_then(Value::as_object);
            let all = wanted.iter().all(|(k, want)| {
                props.and_then(|p| p.get(k)).and_then(Value::as_str) == Some(want.as_str())
            });
            if all {
                return Self::registered(&st, subject, *n, *v);
            }
        }
        Err(ApiError::schema_not_found())
    }

    // ---------------------------------------------------------------- parsing

    /// The dependencies of `refs`, resolved from the state: transitive ones first,
    /// each once. An unknown subject or version is 42201, as Confluent answers.
    fn resolve(
        st: &State,
        refs: &[Reference],
        limits: &Limits,
    ) -> ApiResult<(Vec<Dependency>, Vec<Reference>)> {
        let mut deps = Vec::new();
        let mut seen = HashSet::new();
        let mut resolved = Vec::with_capacity(refs.len());
        for r in refs {
            let version = Self::resolve_one(st, r, limits, 0, &mut deps, &mut seen)?;
            resolved.push(Reference {
                version,
                ..r.clone()
            });
        }
        Ok((deps, resolved))
    }

    fn resolve_one(
        st: &State,
        r: &Reference,
        limits: &Limits,
        depth: usize,
        deps: &mut Vec<Dependency>,
        seen: &mut HashSet<String>,
    ) -> ApiResult<i32> {
        if depth >= limits.reference_depth_max || deps.len() >= limits.references_max {
            return Err(ApiError::invalid_schema(format!(
                "schema references nest deeper than {} or number more than {} (registry.reference.depth.max, registry.references.max)",
                limits.reference_depth_max, limits.references_max
            )));
        }
        let spec = if r.version == -1 {
            VersionSpec::Latest
        } else if r.version >= 1 {
            VersionSpec::Number(r.version)
        } else {
            return Err(ApiError::invalid_schema(format!(
                "reference {:?} has invalid version {}",
                r.name, r.version
            )));
        };
        let (n, v) = Self::find_version(st, &r.subject, spec, false).map_err(|_| {
            ApiError::invalid_schema(format!(
                "Invalid schema: reference {:?} to subject {:?} version {} not found",
                r.name, r.subject, r.version
            ))
        })?;
        if !seen.insert(r.name.clone()) {
            return Ok(n);
        }
        let s = st
            .schema(v.id)
            .ok_or_else(|| ApiError::schema_id_not_found(v.id))?;
        for inner in &s.references {
            Self::resolve_one(st, inner, limits, depth + 1, deps, seen)?;
        }
        deps.push(Dependency {
            name: r.name.clone(),
            schema: s.schema.clone(),
        });
        Ok(n)
    }

    fn parse_stored(st: &State, s: &StoredSchema, limits: &Limits) -> ApiResult<ParsedSchema> {
        let (deps, _) = Self::resolve(st, &s.references, limits)?;
        ParsedSchema::parse(s.schema_type, &s.schema, &deps)
            .map_err(|e| ApiError::store(format!("a stored schema no longer parses: {e}")))
    }

    /// Parses a request's schema; returns it with its stored form.
    fn parse_request(
        st: &State,
        req: &SchemaRequest,
        normalize: bool,
        limits: &Limits,
    ) -> ApiResult<(ParsedSchema, StoredSchema)> {
        let text = req
            .schema
            .as_deref()
            .ok_or_else(|| ApiError::invalid_schema("Empty schema"))?;
        if text.len() > limits.schema_bytes_max {
            return Err(ApiError::schema_too_large(format!(
                "Schema of {} bytes is larger than registry.schema.max.bytes ({})",
                text.len(),
                limits.schema_bytes_max
            )));
        }
        let ty = match req.schema_type.as_deref() {
            None | Some("") => SchemaType::Avro,
            Some(t) => SchemaType::parse(t)
                .ok_or_else(|| ApiError::invalid_schema(format!("Invalid schema type {t}")))?,
        };
        let refs = req.references.clone().unwrap_or_default();
        let (deps, resolved) = Self::resolve(st, &refs, limits)?;
        let parsed = ParsedSchema::parse(ty, text, &deps).map_err(|e| {
            ApiError::invalid_schema(format!("Invalid schema of type {}: {e}", ty.as_str()))
        })?;
        let schema = if normalize {
            parsed.normalized()
        } else {
            parsed.canonical()
        };
        for (what, v) in [("metadata", &req.metadata), ("ruleSet", &req.rule_set)] {
            if let Some(v) = v
                && !v.is_object()
                && !v.is_null()
            {
                return Err(ApiError::invalid_ruleset(format!(
                    "{what} must be a JSON object"
                )));
            }
        }
        let stored = StoredSchema {
            schema_type: ty,
            schema,
            references: resolved,
            metadata: compact(req.metadata.clone()),
            rule_set: compact(req.rule_set.clone()),
        };
        Ok((parsed, stored))
    }

    // ---------------------------------------------------------------- register

    /// `POST /subjects/{s}/versions`.
    pub async fn register(
        &self,
        subject: &str,
        req: SchemaRequest,
        normalize_param: bool,
    ) -> ApiResult<Registered> {
        check_subject(subject)?;
        let limits = self.limits.clone();
        let subject_owned = subject.to_owned();
        self.write(move |st| {
            let subject = subject_owned.as_str();
            let mode = Self::effective_mode(st, Some(subject));
            if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
                return Err(ApiError::not_permitted(format!("Subject {subject} is in read-only mode")));
            }
            let import = mode == "IMPORT";
            let config = Self::effective_config(st, Some(subject));
            let normalize = normalize_param || config.normalize.unwrap_or(false);
            let (parsed, mut stored) = Self::parse_request(st, &req, normalize, &limits)?;
            let versions = st.version_list(subject, true);
            let live: Vec<(i32, Version)> = versions.iter().filter(|(_, v)| !v.deleted).copied().collect();

            // Data contract: inherit the latest version's when none is given, then the
            // config's defaults and overrides.
            let latest = live.last().and_then(|(_, v)| st.schema(v.id));
            if stored.metadata.is_none() {
                stored.metadata = latest.and_then(|l| l.metadata.clone()).or(config.default_metadata.clone());
            }
            if stored.rule_set.is_none() {
                stored.rule_set = latest.and_then(|l| l.rule_set.clone()).or(config.default_rule_set.clone());
            }
            if let Some(o) = &config.override_metadata {
                stored.metadata = Some(merge_metadata(stored.metadata.take(), o));
            }
            if let Some(o) = &config.override_rule_set {
                stored.rule_set = Some(merge_rule_set(stored.rule_set.take(), o));
            }

            // Idempotent: the same schema already under this subject answers its id.
            let key = stored.content_key();
            for (n, v) in live.iter().rev() {
                if let Some(s) = st.schema(v.id)
                    && s.content_key() == key
                    && (req.id.is_none() || req.id == Some(v.id))
                {
                    let r = Registered { subject: subject.to_owned(), version: *n, id: v.id, schema: s.clone(), deleted: false };
                    return Ok((vec![], r));
                }
            }

            if !import {
                let level = Self::level(st, subject);
                if level != Level::None && !live.is_empty() {
                    let previous: Vec<ParsedSchema> = live
                        .iter()
                        .filter_map(|(_, v)| st.schema(v.id))
                        .map(|s| Self::parse_stored(st, s, &limits))
                        .collect::<ApiResult<_>>()?;
                    let refs: Vec<&ParsedSchema> = previous.iter().collect();
                    let messages = compat::check(level, &parsed, &refs);
                    if !messages.is_empty() {
                        return Err(ApiError::incompatible(format!(
                            "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                            messages.join(", ")
                        )));
                    }
                }
            }

            let id = match (import, req.id) {
                (_, Some(id)) if id < 1 => return Err(ApiError::id_does_not_match(format!("schema id {id} is not positive"))),
                (_, Some(id)) => {
                    if let Some(existing) = st.schema(id)
                        && existing.content_key() != key
                    {
                        return Err(ApiError::id_does_not_match(format!(
                            "Schema already registered with id {id} instead of input id"
                        )));
                    }
                    if !import && st.schema(id).is_none() {
                        return Err(ApiError::not_permitted("A schema id may be given only in IMPORT mode"));
                    }
                    id
                }
                (true, None) => return Err(ApiError::not_permitted("Subject is in IMPORT mode: the schema id must be given")),
                (false, None) => match st.id_of(&stored) {
                    Some(id) => id,
                    None => st
                        .max_id()
                        .checked_add(1)
                        .ok_or_else(|| ApiError::store("schema ids are exhausted"))?,
                },
            };
            let next_version = versions.last().map(|(n, _)| *n).unwrap_or(0).saturating_add(1);
            let version = match (import, req.version) {
                (true, Some(v)) if v >= 1 => {
                    if versions.iter().any(|(n, _)| *n == v) {
                        return Err(ApiError::not_permitted(format!("version {v} of {subject} already exists")));
                    }
                    v
                }
                (_, Some(v)) if v != next_version && v >= 1 => {
                    return Err(ApiError::not_permitted(format!("version {v} is not the next version ({next_version}) of {subject}")));
                }
                _ => next_version,
            };
            if st.version_list(subject, true).len() >= limits.versions_per_subject_max {
                return Err(ApiError::not_permitted(format!(
                    "subject {subject} has {} versions, the most registry.subject.versions.max allows",
                    limits.versions_per_subject_max
                )));
            }
            let value = SchemaValue {
                subject: subject.to_owned(),
                version,
                id,
                schema_type: stored.schema_type,
                references: stored.references.clone(),
                metadata: stored.metadata.clone(),
                rule_set: stored.rule_set.clone(),
                schema: stored.schema.clone(),
                deleted: false,
            };
            let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::store(e.to_string()))?;
            let r = Registered { subject: subject.to_owned(), version, id, schema: Arc::new(stored), deleted: false };
            Ok((vec![(Key::Schema { subject: subject.to_owned(), version }, Some(bytes))], r))
        })
        .await
    }

    /// `POST /subjects/{s}`: is this schema registered under the subject?
    pub fn lookup(
        &self,
        subject: &str,
        req: &SchemaRequest,
        normalize: bool,
        deleted: bool,
    ) -> ApiResult<Registered> {
        let st = self.state();
        if st.versions(subject).is_none() {
            return Err(ApiError::subject_not_found(subject));
        }
        let config = Self::effective_config(&st, Some(subject));
        let normalize = normalize || config.normalize.unwrap_or(false);
        let (_, stored) = Self::parse_request(&st, req, normalize, &self.limits)?;
        let (_, stored_raw) = Self::parse_request(&st, req, false, &self.limits)?;
        for (n, v) in st.version_list(subject, deleted).iter().rev() {
            let Some(s) = st.schema(v.id) else { continue };
            let same = |c: &StoredSchema| {
                s.schema_type == c.schema_type
                    && s.schema == c.schema
                    && s.references == c.references
                    && (is_empty(&c.metadata) || s.metadata == c.metadata)
                    && (is_empty(&c.rule_set) || s.rule_set == c.rule_set)
            };
            if same(&stored) || same(&stored_raw) {
                return Self::registered(&st, subject, *n, *v);
            }
        }
        Err(ApiError::schema_not_found())
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`: messages, empty = compatible.
    pub fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        req: &SchemaRequest,
        normalize: bool,
    ) -> ApiResult<Vec<String>> {
        let st = self.state();
        let (parsed, _) = Self::parse_request(&st, req, normalize, &self.limits)?;
        let level = Self::level(&st, subject);
        let against: Vec<ParsedSchema> = match spec {
            Some(spec) => {
                let (_, v) = Self::find_version(&st, subject, spec, false)?;
                let s = st
                    .schema(v.id)
                    .ok_or_else(|| ApiError::schema_id_not_found(v.id))?;
                vec![Self::parse_stored(&st, s, &self.limits)?]
            }
            None => st
                .version_list(subject, false)
                .iter()
                .filter_map(|(_, v)| st.schema(v.id))
                .map(|s| Self::parse_stored(&st, s, &self.limits))
                .collect::<ApiResult<_>>()?,
        };
        if level == Level::None {
            return Ok(vec![]);
        }
        let refs: Vec<&ParsedSchema> = against.iter().collect();
        // Checking against one named version applies the level's direction to it alone.
        let level = if spec.is_some() {
            match level {
                Level::BackwardTransitive => Level::Backward,
                Level::ForwardTransitive => Level::Forward,
                Level::FullTransitive => Level::Full,
                l => l,
            }
        } else {
            level
        };
        Ok(compat::check(level, &parsed, &refs))
    }

    // ---------------------------------------------------------------- deletes

    fn check_writable(st: &State, subject: &str) -> ApiResult<()> {
        let mode = Self::effective_mode(st, Some(subject));
        if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
            return Err(ApiError::not_permitted(format!(
                "Subject {subject} is in read-only mode"
            )));
        }
        Ok(())
    }

    /// `DELETE /subjects/{s}/versions/{v}`.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> ApiResult<i32> {
        let subject = subject.to_owned();
        self.write(move |st| {
            Self::check_writable(st, &subject)?;
            let versions = st.versions(&subject).ok_or_else(|| ApiError::subject_not_found(&subject))?;
            let (n, v) = match spec {
                VersionSpec::Latest => Self::find_version(st, &subject, spec, permanent)?,
                VersionSpec::Number(n) => {
                    let v = versions.get(&n).copied().ok_or_else(|| ApiError::version_not_found(n))?;
                    (n, v)
                }
            };
            if !st.referenced_by(&subject, n).is_empty() {
                return Err(ApiError::reference_exists(format!(
                    "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={n}}}."
                )));
            }
            let key = Key::Schema { subject: subject.clone(), version: n };
            if permanent {
                if !v.deleted {
                    return Err(ApiError::version_not_soft_deleted(&subject, n));
                }
                let mark = serde_json::to_vec(&IdWatermarkValue { id: st.max_id() }).unwrap_or_default();
                return Ok((vec![(Key::IdWatermark, Some(mark)), (key, None)], n));
            }
            if v.deleted {
                return Err(ApiError::version_soft_deleted(&subject, n));
            }
            let s = st.schema(v.id).ok_or_else(|| ApiError::schema_id_not_found(v.id))?;
            let value = SchemaValue {
                subject: subject.clone(),
                version: n,
                id: v.id,
                schema_type: s.schema_type,
                references: s.references.clone(),
                metadata: s.metadata.clone(),
                rule_set: s.rule_set.clone(),
                schema: s.schema.clone(),
                deleted: true,
            };
            let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::store(e.to_string()))?;
            Ok((vec![(key, Some(bytes))], n))
        })
        .await
    }

    /// `DELETE /subjects/{s}`: the versions deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> ApiResult<Vec<i32>> {
        let subject = subject.to_owned();
        self.write(move |st| {
            Self::check_writable(st, &subject)?;
            let all = st.version_list(&subject, true);
            if all.is_empty() {
                return Err(ApiError::subject_not_found(&subject));
            }
            for (n, _) in &all {
                if !st.referenced_by(&subject, *n).is_empty() {
                    return Err(ApiError::reference_exists(format!(
                        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={n}}}."
                    )));
                }
            }
            let live: Vec<i32> = all.iter().filter(|(_, v)| !v.deleted).map(|(n, _)| *n).collect();
            if permanent {
                if !live.is_empty() {
                    return Err(ApiError::subject_not_soft_deleted(&subject));
                }
                let mark = serde_json::to_vec(&IdWatermarkValue { id: st.max_id() }).unwrap_or_default();
                let mut records = vec![(Key::IdWatermark, Some(mark))];
                records.extend(all.iter().map(|(n, _)| (Key::Schema { subject: subject.clone(), version: *n }, None)));
                return Ok((records, all.iter().map(|(n, _)| *n).collect()));
            }
            let Some(latest) = live.last().copied() else {
                return Err(ApiError::subject_soft_deleted(&subject));
            };
            let value = serde_json::to_vec(&DeleteSubjectValue { subject: subject.clone(), version: latest })
                .map_err(|e| ApiError::store(e.to_string()))?;
            Ok((vec![(Key::DeleteSubject { subject: subject.clone() }, Some(value))], live))
        })
        .await
    }

    // ---------------------------------------------------------------- config and mode

    /// `GET /config[/{s}]`: `None` subject = global; a subject without its own config
    /// is 40408 unless `default_to_global`.
    pub fn get_config(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> ApiResult<ConfigValue> {
        let st = self.state();
        let mut c = match subject {
            None => st.config(None).cloned().unwrap_or_default(),
            Some(s) => match st.config(Some(s)) {
                Some(c) if default_to_global => Self::effective_config(&st, Some(s)).merged(c),
                Some(c) => c.clone(),
                None if default_to_global => Self::effective_config(&st, None),
                None => return Err(ApiError::subject_compat_not_configured(s)),
            },
        };
        if c.compatibility_level.is_none() && (subject.is_none() || default_to_global) {
            c.compatibility_level = Some(Level::DEFAULT.as_str().to_owned());
        }
        Ok(c)
    }

    /// `PUT /config[/{s}]`: merges into the existing config; answers what was set.
    pub async fn set_config(
        &self,
        subject: Option<&str>,
        update: ConfigValue,
    ) -> ApiResult<ConfigValue> {
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let mut update = update;
        if let Some(l) = &update.compatibility_level {
            let level = Level::parse(l).ok_or_else(|| ApiError::invalid_compatibility(l))?;
            update.compatibility_level = Some(level.as_str().to_owned());
        }
        let subject = subject.map(str::to_owned);
        self.write(move |st| {
            if let Some(s) = &subject {
                Self::check_writable(st, s)?;
            }
            let merged = st
                .config(subject.as_deref())
                .cloned()
                .unwrap_or_default()
                .merged(&update);
            let value = merged.to_record(subject.as_deref());
            Ok((vec![(Key::Config { subject }, Some(value))], update))
        })
        .await
    }

    /// `DELETE /config[/{s}]`: answers the config that was removed.
    pub async fn delete_config(&self, subject: Option<&str>) -> ApiResult<ConfigValue> {
        let subject = subject.map(str::to_owned);
        self.write(move |st| {
            let old = match (st.config(subject.as_deref()), &subject) {
                (Some(c), _) => c.clone(),
                (None, Some(s)) => return Err(ApiError::subject_compat_not_configured(s)),
                (None, None) => ConfigValue::default(),
            };
            Ok((vec![(Key::Config { subject }, None)], old))
        })
        .await
    }

    pub fn get_mode(&self, subject: Option<&str>, default_to_global: bool) -> ApiResult<String> {
        let st = self.state();
        match subject {
            None => Ok(st.mode(None).unwrap_or("READWRITE").to_owned()),
            Some(s) => match st.mode(Some(s)) {
                Some(m) => Ok(m.to_owned()),
                None if default_to_global => Ok(Self::effective_mode(&st, None)),
                None => Err(ApiError::subject_mode_not_configured(s)),
            },
        }
    }

    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: &str,
        force: bool,
    ) -> ApiResult<String> {
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let mode = mode.to_ascii_uppercase();
        if !MODES.contains(&mode.as_str()) {
            return Err(ApiError::invalid_mode(&mode));
        }
        let subject = subject.map(str::to_owned);
        self.write(move |st| {
            if mode == "IMPORT" && !force {
                let non_empty = match &subject {
                    None => !st.is_empty(),
                    Some(s) => st.versions(s).is_some(),
                };
                if non_empty {
                    return Err(ApiError::not_permitted(
                        "Cannot import since found existing subjects; set force=true to enter IMPORT mode anyway",
                    ));
                }
            }
            let value = serde_json::to_vec(&ModeValue { mode: mode.clone() }).map_err(|e| ApiError::store(e.to_string()))?;
            Ok((vec![(Key::Mode { subject }, Some(value))], mode))
        })
        .await
    }

    pub async fn delete_mode(&self, subject: &str) -> ApiResult<String> {
        let subject = subject.to_owned();
        self.write(move |st| {
            let old = st
                .mode(Some(&subject))
                .ok_or_else(|| ApiError::subject_mode_not_configured(&subject))?
                .to_owned();
            Ok((
                vec![(
                    Key::Mode {
                        subject: Some(subject),
                    },
                    None,
                )],
                old,
            ))
        })
        .await
    }

    /// `DELETE /contexts/{c}`: only an empty context may go (and it has no records of its own).
    pub fn delete_context(&self, context: &str) -> ApiResult<()> {
        if self.contexts().iter().any(|c| c == context) && context != "." {
            return Err(ApiError::context_not_empty(context));
        }
        Ok(())
    }
}

/// Confluent's metadata merge: properties and tags maps merged (the override wins),
/// sensitive lists united.
pub fn merge_metadata(base: Option<Value>, over: &Value) -> Value {
    let mut out = base
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let (Some(o), Some(over)) = (out.as_object_mut(), over.as_object()) else {
        return over.clone();
    };
    for (k, v) in over {
        match (o.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => {
                for (bk, bv) in b {
                    a.insert(bk.clone(), bv.clone());
                }
            }
            (Some(Value::Array(a)), Value::Array(b)) => {
                for x in b {
                    if !a.contains(x) {
                        a.push(x.clone());
                    }
                }
            }
            _ => {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Confluent's rule-set merge: rules of the override replace same-named rules.
pub fn merge_rule_set(base: Option<Value>, over: &Value) -> Value {
    let mut out = base
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let (Some(o), Some(over)) = (out.as_object_mut(), over.as_object()) else {
        return over.clone();
    };
    for (kind, rules) in over {
        let Some(new_rules) = rules.as_array() else {
            continue;
        };
        let list = o
            .entry(kind.clone())
            .or_insert_with(|| Value::Array(vec![]));
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        for r in new_rules {
            let name = r.get("name");
            list.retain(|x| x.get("name") != name || name.is_none());
            list.push(r.clone());
        }
    }
    out
}

/// Applies one `_schemas` record to the state (the log reader's callback).
pub fn apply_record(state: &RwLock<State>, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
    let Some(key) = key else {
        tracing::warn!(offset, "_schemas record without a key skipped");
        return;
    };
    match records::decode(key, value) {
        Ok(r) => state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(offset, r),
        Err(e) => {
            tracing::warn!(offset, "malformed _schemas record skipped: {e}");
            let mut st = state.write().unwrap_or_else(|e| e.into_inner());
            st.applied = st.applied.max(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_and_versions() {
        assert_eq!(context_of(":.ctx:subj"), ".ctx");
        assert_eq!(context_of("subj"), ".");
        assert_eq!(context_of(":.bad"), ".");
        assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("3").unwrap(), VersionSpec::Number(3));
        for bad in ["0", "-2", "x", "99999999999"] {
            assert_eq!(VersionSpec::parse(bad).unwrap_err().code, 42202, "{bad}");
        }
    }

    #[test]
    fn empty_contract_members_are_left_out() {
        let python = serde_json::json!({"properties": {"a": "1"}, "sensitive": [], "tags": {}});
        let compacted = compact(Some(python));
        assert_eq!(
            compacted,
            Some(serde_json::json!({"properties": {"a": "1"}}))
        );
        assert_eq!(compact(Some(Value::Null)), None);
        assert_eq!(
            compact(Some(serde_json::json!({"sensitive": []}))),
            Some(serde_json::json!({}))
        );
        assert!(is_empty(&Some(serde_json::json!({}))) && is_empty(&None));
        assert!(!is_empty(&compacted));
    }
}
