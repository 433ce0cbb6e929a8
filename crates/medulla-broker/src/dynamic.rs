//! Dynamic broker configs: what AlterConfigs / IncrementalAlterConfigs set on the broker
//! resource, as Kafka keeps them — per broker (resource name = the node id) and cluster
//! default (resource name empty) — persisted in `<data_dir>/broker-configs.json`.
//!
//! Only the broker keys that feed topic-config defaults (`log.retention.ms`,
//! `message.max.bytes`, …, see [`medulla_log::config::broker_synonym_keys`]) are dynamic,
//! as in Kafka. Precedence for a key: per broker, then cluster default, then the static
//! config file / `--override`, then Kafka's default.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use medulla_log::{ConfigEntry, ConfigSource};
use serde::{Deserialize, Serialize};

use crate::config::{BROKER_KEYS, BrokerConfig};

/// The file's name inside the data directory.
const FILE_NAME: &str = "broker-configs.json";

/// The dynamic settings of this broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    /// Set on the cluster-default resource (name `""`).
    pub cluster_default: BTreeMap<String, String>,
    /// Set on this broker's resource (name = node id).
    pub broker: BTreeMap<String, String>,
}

/// Which resource a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The cluster-wide default (resource name `""`).
    ClusterDefault,
    /// This broker (resource name = node id).
    Broker,
}

/// Whether `key` can be changed at run time.
pub fn is_dynamic(key: &str) -> bool {
    medulla_log::config::broker_synonym_keys().any(|k| k == key)
}

impl DynamicConfigs {
    /// Loads the file, or nothing if it does not exist.
    pub fn load(data_dir: &Path) -> std::io::Result<DynamicConfigs> {
        let path = data_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DynamicConfigs::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the file atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = data_dir.join(FILE_NAME);
        let tmp: PathBuf = data_dir.join(format!("{FILE_NAME}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()
    }

    /// The settings of one scope.
    pub fn scope_mut(&mut self, scope: Scope) -> &mut BTreeMap<String, String> {
        match scope {
            Scope::ClusterDefault => &mut self.cluster_default,
            Scope::Broker => &mut self.broker,
        }
    }

    /// Static settings overlaid with the cluster default, then the per-broker ones.
    pub fn effective(&self, config: &BrokerConfig) -> BTreeMap<String, String> {
        let mut props = config.given.clone();
        props.extend(
            self.cluster_default
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        props.extend(self.broker.iter().map(|(k, v)| (k.clone(), v.clone())));
        props
    }

    /// Every broker key with its effective value, source and synonyms (broker resource).
    pub fn describe(&self, config: &BrokerConfig) -> Vec<ConfigEntry> {
        let statics = config.describe();
        statics
            .into_iter()
            .map(|mut e| {
                let mut layers: Vec<(String, Option<String>, ConfigSource)> = Vec::new();
                if let Some(v) = self.broker.get(&e.name) {
                    layers.push((e.name.clone(), Some(v.clone()), ConfigSource::DynamicBroker));
                }
                if let Some(v) = self.cluster_default.get(&e.name) {
                    layers.push((
                        e.name.clone(),
                        Some(v.clone()),
                        ConfigSource::DynamicDefaultBroker,
                    ));
                }
                if let Some((_, value, source)) = layers.first().cloned() {
                    e.value = value;
                    e.source = source;
                }
                layers.append(&mut e.synonyms);
                e.synonyms = layers;
                e
            })
            .collect()
    }

    /// The cluster-default entries only (what Kafka answers for the resource name `""`).
    pub fn describe_cluster_default(&self) -> Vec<ConfigEntry> {
        self.cluster_default
            .iter()
            .map(|(k, v)| {
                let def = BROKER_KEYS.iter().find(|d| d.name == k);
                ConfigEntry {
                    name: k.clone(),
                    value: Some(v.clone()),
                    source: ConfigSource::DynamicDefaultBroker,
                    config_type: def.map(|d| d.config_type).unwrap_or(2),
                    synonyms: vec![(
                        k.clone(),
                        Some(v.clone()),
                        ConfigSource::DynamicDefaultBroker,
                    )],
                    documentation: def.map(|d| d.doc).unwrap_or(""),
                }
            })
            .collect()
    }
}

/// Checks the keys of a proposed change: each must be a known broker key and dynamic.
pub fn check_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    for key in keys {
        if !BROKER_KEYS.iter().any(|d| d.name == key) {
            return Err(format!("unknown broker config {key}"));
        }
        if !is_dynamic(key) {
            return Err(format!(
                "cannot update {key} dynamically: set it in the config file or with --override and restart"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_log_keys_are_dynamic() {
        assert!(is_dynamic("log.retention.ms"));
        assert!(is_dynamic("message.max.bytes"));
        assert!(!is_dynamic("listeners"));
        assert!(!is_dynamic("log.dirs"));
        assert!(check_keys(["log.retention.hours"]).is_ok());
        assert!(
            check_keys(["num.partitions"])
                .unwrap_err()
                .contains("dynamically")
        );
        assert!(check_keys(["no.such.key"]).unwrap_err().contains("unknown"));
    }

    #[test]
    fn store_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            DynamicConfigs::load(dir.path()).unwrap(),
            DynamicConfigs::default()
        );
        let mut d = DynamicConfigs::default();
        d.scope_mut(Scope::Broker)
            .insert("log.retention.ms".into(), "5000".into());
        d.store(dir.path()).unwrap();
        assert_eq!(DynamicConfigs::load(dir.path()).unwrap(), d);
    }
}
