//! The ACL bindings: in memory, indexed for per-request checks, and persisted as JSON to
//! `<data_dir>/acls.json` (replaced atomically) before any change is acknowledged.
//!
//! Readers take a read lock only long enough to clone an `Arc` of the current snapshot;
//! writers (rare) are serialised, build the next snapshot and its index off to the side,
//! persist it, and swap it in. A change therefore applies to the very next request.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
    WILDCARD_HOST, WILDCARD_RESOURCE,
};
use crate::Principal;

/// The most bindings a store holds; a creation beyond it is refused
/// ([`AclError::TooMany`]).
pub const BINDINGS_MAX: usize = 100_000;

/// The largest `acls.json` read at start (100,000 bindings of long names fit).
pub const ACL_FILE_BYTES_MAX: u64 = 256 << 20;

/// The file the bindings live in, inside the data directory.
pub const ACL_FILE: &str = "acls.json";

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The binding fails Kafka's validation (INVALID_REQUEST).
    #[error("{0}")]
    Invalid(String),
    /// The store already holds [`BINDINGS_MAX`] bindings.
    #[error("too many ACL bindings: the limit is {limit}")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The change could not be made durable; nothing changed.
    #[error("cannot persist ACLs to {path}: {source}")]
    Persist {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `acls.json` exists but cannot be read or parsed (a start error: never silently
    /// start with no ACLs).
    #[error("cannot load ACLs from {path}: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct AclFile {
    version: u32,
    acls: Vec<AclBinding>,
}

/// One access control entry as the index keeps it, parsed once.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) principal_kind: String,
    pub(crate) principal_name: String,
    /// `None` is `*`.
    pub(crate) host: Option<IpAddr>,
    pub(crate) operation: AclOperation,
    pub(crate) permission: AclPermissionType,
}

impl Entry {
    fn of(b: &AclBinding) -> Entry {
        let (kind, name) = b.principal.split_once(':').unwrap_or(("", ""));
        Entry {
            principal_kind: kind.to_owned(),
            principal_name: name.to_owned(),
            host: if b.host == WILDCARD_HOST {
                None
            } else {
                b.host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
            },
            operation: b.operation,
            permission: b.permission,
        }
    }

    /// `User:*` or the same principal.
    pub(crate) fn matches_principal(&self, p: &Principal) -> bool {
        self.principal_kind == p.kind
            && (self.principal_name == p.name
                || (self.principal_name == "*"
                    && self.principal_kind == crate::principal::USER_TYPE))
    }

    /// `*` or the same address. `host` is canonical (IPv4-mapped IPv6 as IPv4).
    pub(crate) fn matches_host(&self, host: IpAddr) -> bool {
        self.host.is_none_or(|h| h == host)
    }
}

/// The bindings of one resource type, by how their pattern matches a name.
#[derive(Default, Debug)]
pub(crate) struct TypeIndex {
    literal: HashMap<String, Vec<Entry>>,
    wildcard: Vec<Entry>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// The distinct lengths (bytes) of the prefixed names, ascending, so a lookup tries
    /// only those.
    prefix_lengths: Vec<usize>,
}

/// Every binding, indexed by resource type and name.
#[derive(Default, Debug)]
pub(crate) struct Snapshot {
    pub(crate) bindings: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, TypeIndex>,
}

impl Snapshot {
    fn build(bindings: BTreeSet<AclBinding>) -> Snapshot {
        let mut by_type: HashMap<ResourceType, TypeIndex> = HashMap::new();
        for b in &bindings {
            let t = by_type.entry(b.resource_type).or_default();
            let e = Entry::of(b);
            match b.pattern_type {
                PatternType::Literal if b.name == WILDCARD_RESOURCE => t.wildcard.push(e),
                PatternType::Literal => t.literal.entry(b.name.clone()).or_default().push(e),
                PatternType::Prefixed => t.prefixed.entry(b.name.clone()).or_default().push(e),
                _ => {}
            }
        }
        for t in by_type.values_mut() {
            let mut lengths: Vec<usize> = t.prefixed.keys().map(String::len).collect();
            lengths.sort_unstable();
            lengths.dedup();
            t.prefix_lengths = lengths;
        }
        Snapshot { bindings, by_type }
    }

    /// Calls `f` with every entry whose pattern matches `(resource_type, name)`: the
    /// literal name, the literal `*`, and every prefix of `name`. No allocation.
    pub(crate) fn for_each_matching(
        &self,
        resource_type: ResourceType,
        name: &str,
        mut f: impl FnMut(&Entry),
    ) {
        let Some(t) = self.by_type.get(&resource_type) else {
            return;
        };
        if let Some(es) = t.literal.get(name) {
            es.iter().for_each(&mut f);
        }
        t.wildcard.iter().for_each(&mut f);
        for &len in &t.prefix_lengths {
            if len > name.len() {
                break;
            }
            if let Some(prefix) = name.get(..len)
                && let Some(es) = t.prefixed.get(prefix)
            {
                es.iter().for_each(&mut f);
            }
        }
    }

    /// Calls `f` with every binding of `resource_type` (for KIP-679's by-type checks).
    pub(crate) fn for_each_of_type<'a>(
        &'a self,
        resource_type: ResourceType,
        mut f: impl FnMut(PatternType, &'a str, &'a Entry),
    ) {
        let Some(t) = self.by_type.get(&resource_type) else {
            return;
        };
        for (name, es) in &t.literal {
            es.iter().for_each(|e| f(PatternType::Literal, name, e));
        }
        t.wildcard
            .iter()
            .for_each(|e| f(PatternType::Literal, WILDCARD_RESOURCE, e));
        for (name, es) in &t.prefixed {
            es.iter().for_each(|e| f(PatternType::Prefixed, name, e));
        }
    }
}

/// The ACL bindings of one broker. Cheap to share behind an `Arc`.
pub struct AclStore {
    /// `None` for a store that lives only in memory (tests).
    path: Option<PathBuf>,
    current: RwLock<Arc<Snapshot>>,
    /// Serialises changes (and their writes to disk).
    writer: Mutex<()>,
}

impl std::fmt::Debug for AclStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclStore")
            .field("path", &self.path)
            .field("bindings", &self.snapshot().bindings.len())
            .finish()
    }
}

impl AclStore {
    /// Opens `<data_dir>/acls.json` (no file: no bindings). A file that cannot be read
    /// or parsed, or holds an invalid binding, is an error.
    pub fn open(data_dir: &Path) -> Result<AclStore, AclError> {
        let path = data_dir.join(ACL_FILE);
        let damaged = |reason: String| AclError::Damaged {
            path: path.display().to_string(),
            reason,
        };
        let bindings = match medulla_log::fsutil::read_small(&path, ACL_FILE_BYTES_MAX) {
            Ok(None) => BTreeSet::new(),
            Ok(Some(bytes)) => {
                let file: AclFile =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
                if file.version != 1 {
                    return Err(damaged(format!("unknown version {}", file.version)));
                }
                if file.acls.len() > BINDINGS_MAX {
                    return Err(damaged(format!(
                        "{} bindings, more than the limit of {BINDINGS_MAX}",
                        file.acls.len()
                    )));
                }
                for b in &file.acls {
                    b.validate().map_err(|e| damaged(format!("{b}: {e}")))?;
                }
                file.acls.into_iter().collect()
            }
            Err(e) => return Err(damaged(e.to_string())),
        };
        Ok(AclStore {
            path: Some(path),
            current: RwLock::new(Arc::new(Snapshot::build(bindings))),
            writer: Mutex::new(()),
        })
    }

    /// A store that is never written to disk.
    pub fn in_memory() -> AclStore {
        AclStore {
            path: None,
            current: RwLock::new(Arc::new(Snapshot::default())),
            writer: Mutex::new(()),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many bindings there are.
    pub fn len(&self) -> usize {
        self.snapshot().bindings.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `bindings`, one result each: invalid ones and those beyond [`BINDINGS_MAX`]
    /// fail alone; a binding already present succeeds without change. The valid ones are
    /// persisted (one write) before this returns; a failed write fails them all and
    /// changes nothing. Blocking (fsync).
    pub fn create(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), AclError>> {
        let _writing = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot();
        let mut next = current.bindings.clone();
        let mut results = Vec::with_capacity(bindings.len());
        let mut added = Vec::new();
        for b in bindings {
            if let Err(e) = b.validate() {
                results.push(Err(AclError::Invalid(e)));
                continue;
            }
            if next.contains(&b) {
                results.push(Ok(()));
                continue;
            }
            if next.len() >= BINDINGS_MAX {
                results.push(Err(AclError::TooMany {
                    limit: BINDINGS_MAX,
                }));
                continue;
            }
            added.push(results.len());
            next.insert(b);
            results.push(Ok(()));
        }
        if added.is_empty() {
            return results;
        }
        if let Err(e) = self.persist(&next) {
            let text = e.to_string();
            for i in added {
                results[i] = Err(AclError::Persist {
                    path: self.display_path(),
                    source: std::io::Error::other(text.clone()),
                });
            }
            return results;
        }
        self.install(next);
        results
    }

    /// Removes every binding some filter matches; returns, per filter, the bindings it
    /// matched (a binding matched by two filters is listed under both, as Kafka does).
    /// Persisted before it returns; on failure nothing changed. Blocking (fsync).
    pub fn delete(&self, filters: &[AclBindingFilter]) -> Result<Vec<Vec<AclBinding>>, AclError> {
        let _writing = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| {
                current
                    .bindings
                    .iter()
                    .filter(|b| f.matches(b))
                    .cloned()
                    .collect()
            })
            .collect();
        if matched.iter().all(Vec::is_empty) {
            return Ok(matched);
        }
        let mut next = current.bindings.clone();
        for b in matched.iter().flatten() {
            next.remove(b);
        }
        self.persist(&next)?;
        self.install(next);
        Ok(matched)
    }

    /// The bindings `filter` matches, in a stable order.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.snapshot()
            .bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    fn display_path(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(memory)".to_owned())
    }

    fn persist(&self, bindings: &BTreeSet<AclBinding>) -> Result<(), AclError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = AclFile {
            version: 1,
            acls: bindings.iter().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| AclError::Persist {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        medulla_log::fsutil::write_atomic(path, &bytes).map_err(|source| AclError::Persist {
            path: path.display().to_string(),
            source,
        })
    }

    fn install(&self, bindings: BTreeSet<AclBinding>) {
        let next = Arc::new(Snapshot::build(bindings));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, pt: PatternType, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.to_owned(),
            pattern_type: pt,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        }
    }

    #[test]
    fn bindings_survive_reopen_and_deletes_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = AclStore::open(dir.path()).unwrap();
        assert!(store.is_empty());
        let results = store.create(vec![
            b("a", PatternType::Literal, "User:alice"),
            b("clinical.", PatternType::Prefixed, "User:bob"),
            b("", PatternType::Literal, "User:bob"),
            b("a", PatternType::Literal, "User:alice"),
        ]);
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(matches!(results[2], Err(AclError::Invalid(_))));
        assert_eq!(store.len(), 2);
        let reopened = AclStore::open(dir.path()).unwrap();
        assert_eq!(reopened.len(), 2);
        let filter = AclBindingFilter {
            principal: Some("User:bob".to_owned()),
            ..AclBindingFilter::any()
        };
        let deleted = reopened.delete(std::slice::from_ref(&filter)).unwrap();
        assert_eq!(deleted[0].len(), 1);
        assert_eq!(AclStore::open(dir.path()).unwrap().len(), 1);
        assert!(reopened.describe(&filter).is_empty());
    }

    #[test]
    fn damaged_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ACL_FILE), b"{\"version\":1,\"acls\":[").unwrap();
        assert!(matches!(
            AclStore::open(dir.path()),
            Err(AclError::Damaged { .. })
        ));
        std::fs::write(
            dir.path().join(ACL_FILE),
            br#"{"version":1,"acls":[{"resource_type":"ANY","name":"x","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            AclStore::open(dir.path()),
            Err(AclError::Damaged { .. })
        ));
    }

    #[test]
    fn failed_persist_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = AclStore::open(&dir.path().join("missing-dir")).unwrap();
        let r = store.create(vec![b("a", PatternType::Literal, "User:alice")]);
        assert!(matches!(r[0], Err(AclError::Persist { .. })));
        assert!(store.is_empty());
    }

    #[test]
    fn index_finds_literal_wildcard_and_prefixes() {
        let store = AclStore::in_memory();
        let r = store.create(vec![
            b("clinical.lab.results", PatternType::Literal, "User:a"),
            b("*", PatternType::Literal, "User:b"),
            b("clinical.", PatternType::Prefixed, "User:c"),
            b("clinical.lab.results.x", PatternType::Prefixed, "User:d"),
            b("other", PatternType::Prefixed, "User:e"),
        ]);
        assert!(r.iter().all(Result::is_ok));
        let snap = store.snapshot();
        let mut seen = Vec::new();
        snap.for_each_matching(ResourceType::Topic, "clinical.lab.results", |e| {
            seen.push(e.principal_name.clone())
        });
        seen.sort();
        assert_eq!(seen, ["a", "b", "c"]);
        let mut none = 0;
        snap.for_each_matching(ResourceType::Group, "clinical.lab.results", |_| none += 1);
        assert_eq!(none, 0);
    }
}
