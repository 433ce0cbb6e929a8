//! The listeners, as Kafka configures them: `listeners` (several `NAME://host:port`),
//! `advertised.listeners` (per name), `listener.security.protocol.map`, and for TLS
//! listeners the `ssl.*` keys, each overridable per listener with Kafka's prefix
//! `listener.name.<lowercase name>.` (`listener.name.ssl.ssl.keystore.location`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use medulla_auth::mapping::SslPrincipalMapper;
use medulla_auth::tls::TlsConfig;

use crate::config::{BROKER_KEYS, ConfigError, IGNORED_KAFKA_KEYS, Listener};
use crate::session::SecurityProtocol;

/// Kafka's default `listener.security.protocol.map`.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// The most listeners one broker may have.
pub const LISTENERS_MAX: usize = 64;

/// One configured listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Name (upper case, as Kafka normalises it) and bind address.
    pub listener: Listener,
    /// Its security protocol, from `listener.security.protocol.map`.
    pub protocol: SecurityProtocol,
    /// Its entry in `advertised.listeners`, if any.
    pub advertised: Option<Listener>,
    /// The `ssl.*` keys in force for it (TLS listeners only).
    pub tls: Option<TlsConfig>,
    /// `ssl.principal.mapping.rules` in force for it (SSL listeners only: on SASL_SSL
    /// the principal is SASL's).
    pub principal_mapper: Option<Arc<SslPrincipalMapper>>,
}

/// Kafka's per-listener prefix of a key.
pub fn prefix(listener_name: &str) -> String {
    format!("listener.name.{}.", listener_name.to_ascii_lowercase())
}

/// Whether `key` is a known key behind a `listener.name.<name>.` prefix.
pub fn is_listener_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return false;
    };
    let Some((name, inner)) = rest.split_once('.') else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && (BROKER_KEYS.iter().any(|d| d.name == inner)
            || IGNORED_KAFKA_KEYS.iter().any(|(k, _)| *k == inner))
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a `listeners`-style list of `NAME://host:port`.
pub fn parse_list(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| invalid(key, value, format!("{entry:?}: {why}"));
        let (name, rest) = entry
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("bad listener name"));
        }
        let name = name.to_ascii_uppercase();
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(bad("listener names must be unique"));
        }
        out.push(Listener {
            name,
            host: host.to_owned(),
            port,
        });
    }
    if out.len() > LISTENERS_MAX {
        return Err(invalid(
            key,
            value,
            format!("at most {LISTENERS_MAX} listeners"),
        ));
    }
    Ok(out)
}

/// Builds every listener's config from the broker keys (`get` returns a key's value or
/// its default).
pub fn parse(
    props: &BTreeMap<String, String>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ListenerConfig>, ConfigError> {
    let value = get("listeners").unwrap_or_default();
    let listeners = parse_list("listeners", &value)?;
    if listeners.is_empty() {
        return Err(invalid("listeners", &value, "at least one listener"));
    }
    let mut ports = HashSet::new();
    for l in &listeners {
        if l.port != 0 && !ports.insert((l.host.clone(), l.port)) {
            return Err(invalid(
                "listeners",
                &value,
                format!("two listeners on port {}: ports must be unique", l.port),
            ));
        }
    }
    let advertised_value = props
        .get("advertised.listeners")
        .cloned()
        .unwrap_or_default();
    let advertised = parse_list("advertised.listeners", &advertised_value)?;
    for a in &advertised {
        if !listeners.iter().any(|l| l.name == a.name) {
            return Err(invalid(
                "advertised.listeners",
                &advertised_value,
                format!("{} is not one of the listeners", a.name),
            ));
        }
    }
    let map_value = get("listener.security.protocol.map").unwrap_or_default();
    let mut map = BTreeMap::new();
    for entry in map_value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, proto) = entry.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                "entries are NAME:PROTOCOL",
            )
        })?;
        let protocol = SecurityProtocol::parse(proto.trim()).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                format!("unknown security protocol {proto:?}"),
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    let mut out = Vec::new();
    for listener in listeners {
        let protocol = *map.get(&listener.name).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                format!(
                    "no security protocol defined for listener {}",
                    listener.name
                ),
            )
        })?;
        let prefix = prefix(&listener.name);
        // Kafka's per-key override: the prefixed key if set, else the broker-wide one.
        let lookup = |key: &str| -> Option<String> {
            props
                .get(&format!("{prefix}{key}"))
                .or_else(|| props.get(key))
                .cloned()
        };
        let name_of = |key: &str| -> String {
            if props.contains_key(&format!("{prefix}{key}")) {
                format!("{prefix}{key}")
            } else {
                key.to_owned()
            }
        };
        let tls = if protocol.is_tls() {
            Some(
                TlsConfig::from_keys(&lookup, &name_of).map_err(|e| match e {
                    medulla_auth::tls::TlsError::Config { key, reason } => {
                        ConfigError::InvalidValue {
                            value: lookup(key.strip_prefix(&prefix).unwrap_or(&key))
                                .unwrap_or_default(),
                            key,
                            reason: format!("listener {}: {reason}", listener.name),
                        }
                    }
                    other => invalid("listeners", &value, other.to_string()),
                })?,
            )
        } else {
            None
        };
        let principal_mapper = if protocol == SecurityProtocol::Ssl {
            let rules = lookup("ssl.principal.mapping.rules");
            Some(Arc::new(
                SslPrincipalMapper::from_rules(rules.as_deref()).map_err(|e| {
                    invalid(
                        &name_of("ssl.principal.mapping.rules"),
                        rules.as_deref().unwrap_or_default(),
                        e.to_string(),
                    )
                })?,
            ))
        } else {
            None
        };
        let advertised = advertised.iter().find(|a| a.name == listener.name).cloned();
        out.push(ListenerConfig {
            listener,
            protocol,
            advertised,
            tls,
            principal_mapper,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_props(pairs: &[(&str, &str)]) -> Result<Vec<ListenerConfig>, ConfigError> {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| {
            props.get(k).cloned().or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|d| d.name == k)
                    .and_then(|d| d.default.map(str::to_owned))
            })
        };
        parse(&props, &get)
    }

    #[test]
    fn several_listeners_with_kafkas_default_map() {
        let l = parse_props(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:0,ssl://127.0.0.1:0,INTERNAL://:9094",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:PLAINTEXT",
            ),
            ("advertised.listeners", "SSL://broker.example:9093"),
            ("ssl.keystore.type", "PEM"),
            ("listener.name.ssl.ssl.keystore.location", "/etc/k.pem"),
            ("ssl.keystore.location", "/elsewhere.pem"),
        ])
        .unwrap();
        let names: Vec<_> = l.iter().map(|l| l.listener.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "SSL", "INTERNAL"]);
        assert_eq!(l[1].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[2].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[2].listener.host, "");
        assert!(l[0].advertised.is_none());
        assert_eq!(l[1].advertised.as_ref().unwrap().host, "broker.example");
        let tls = l[1].tls.as_ref().unwrap();
        assert_eq!(
            tls.keystore,
            medulla_auth::tls::Keystore::File("/etc/k.pem".into())
        );
        assert!(l[1].principal_mapper.is_some());
        assert!(l[0].tls.is_none());
    }

    #[test]
    fn bad_listener_settings_are_named() {
        for (pairs, needle) in [
            (vec![("listeners", "A://:1,A://:2")], "unique"),
            (
                vec![("listeners", "PLAINTEXT://:9092,SSL://:9092")],
                "port 9092",
            ),
            (
                vec![("listeners", "FOO://:9092")],
                "no security protocol defined for listener FOO",
            ),
            (vec![("listeners", "")], "at least one"),
            (
                vec![
                    ("listeners", "PLAINTEXT://:9092"),
                    ("advertised.listeners", "SSL://h:1"),
                ],
                "not one of the listeners",
            ),
            (
                vec![
                    ("listeners", "PLAINTEXT://:9092"),
                    ("listener.security.protocol.map", "PLAINTEXT:TLS"),
                ],
                "unknown security protocol",
            ),
            (vec![("listeners", "SSL://:9093")], "needs a keystore"),
            (
                vec![
                    ("listeners", "SSL://:9093"),
                    ("listener.name.ssl.ssl.keystore.type", "JKS"),
                    ("ssl.keystore.location", "/k.jks"),
                ],
                "listener.name.ssl.ssl.keystore.type",
            ),
            (
                vec![
                    ("listeners", "SSL://:9093"),
                    ("ssl.keystore.type", "PEM"),
                    ("ssl.keystore.location", "/k.pem"),
                    ("ssl.principal.mapping.rules", "RULE:x/y/Q"),
                ],
                "ssl.principal.mapping.rules",
            ),
        ] {
            let err = parse_props(&pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        // Two port-0 listeners are fine: each gets its own port.
        parse_props(&[("listeners", "PLAINTEXT://:0,SASL_PLAINTEXT://:0")]).unwrap();
    }

    #[test]
    fn prefixed_keys_are_known_keys() {
        assert!(is_listener_key("listener.name.ssl.ssl.keystore.location"));
        assert!(is_listener_key("listener.name.internal.ssl.client.auth"));
        assert!(!is_listener_key("listener.name.ssl.no.such.key"));
        assert!(!is_listener_key("listener.name..ssl.client.auth"));
    }
}
