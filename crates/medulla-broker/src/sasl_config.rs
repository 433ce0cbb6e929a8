//! The SASL part of the broker configuration (Kafka's keys): enabled mechanisms, PLAIN's
//! static users from JAAS, `connections.max.reauth.ms`,
//! `connection.failed.authentication.delay.ms` and the `sasl.oauthbearer.*` keys. The
//! mechanisms and PLAIN's users may differ per listener (Kafka's `listener.name.<l>.`
//! prefix).

use std::collections::BTreeMap;

use medulla_auth::jwt::JwtConfig;
use medulla_auth::sasl::{MECHANISMS, OAUTHBEARER, parse_plain_jaas};

/// PLAIN's static users (name → password). Debug shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainUsers(pub BTreeMap<String, String>);

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlainUsers({} users)", self.0.len())
    }
}

/// The SASL settings of the broker's listener.
#[derive(Debug, Clone)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`.
    pub enabled_mechanisms: Vec<String>,
    /// PLAIN's static users: `listener.name.<listener>.plain.sasl.jaas.config`, else
    /// `sasl.jaas.config` when it is a `PlainLoginModule`.
    pub plain_users: PlainUsers,
    /// `connections.max.reauth.ms` (0: no limit).
    pub reauth_max_ms: u64,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_auth_delay_ms: u64,
    /// The `sasl.oauthbearer.*` keys, when a JWKS URL is set.
    pub jwt: Option<JwtConfig>,
}

/// A key error: (key, value, reason).
type KeyError = (String, String, String);

/// Whether `key` is `listener.name.<listener>.<mechanism>.sasl.jaas.config`.
pub fn is_listener_jaas_key(key: &str) -> bool {
    key.strip_prefix("listener.name.")
        .and_then(|rest| rest.strip_suffix(".sasl.jaas.config"))
        .and_then(|middle| middle.split_once('.'))
        .is_some_and(|(listener, mechanism)| !listener.is_empty() && !mechanism.is_empty())
}

impl SaslSettings {
    /// Reads the keys for listener `listener` from `props` (defaults as
    /// [`crate::config::BROKER_KEYS`] says).
    pub fn from_properties(
        props: &BTreeMap<String, String>,
        listener: &str,
    ) -> Result<SaslSettings, KeyError> {
        let err = |k: &str, v: &str, r: String| (k.to_owned(), v.to_owned(), r);
        let num = |k: &str, default: u64, max: u64| -> Result<u64, KeyError> {
            match props.get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| err(k, v, format!("expected an integer from 0 to {max}"))),
            }
        };
        let reauth_max_ms = num("connections.max.reauth.ms", 0, i64::MAX as u64)?;
        let failed_auth_delay_ms = num(
            "connection.failed.authentication.delay.ms",
            100,
            i32::MAX as u64,
        )?;

        let jwt = match props.get("sasl.oauthbearer.jwks.endpoint.url") {
            None => None,
            Some(url) => {
                let mut c = JwtConfig::new(url.trim());
                if let Some(a) = props.get("sasl.oauthbearer.expected.audience") {
                    c.expected_audience = a
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                c.expected_issuer = props
                    .get("sasl.oauthbearer.expected.issuer")
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty());
                if let Some(claim) = props.get("sasl.oauthbearer.sub.claim.name") {
                    if claim.trim().is_empty() {
                        return Err(err(
                            "sasl.oauthbearer.sub.claim.name",
                            claim,
                            "must not be empty".into(),
                        ));
                    }
                    c.sub_claim_name = claim.trim().to_owned();
                }
                c.clock_skew_seconds = num(
                    "sasl.oauthbearer.clock.skew.seconds",
                    30,
                    medulla_auth::jwt::CLOCK_SKEW_SECONDS_MAX,
                )?;
                let url_ok = c.jwks_endpoint_url.starts_with("file://");
                if !url_ok {
                    let reason = if c.jwks_endpoint_url.starts_with("http") {
                        "http(s) JWKS endpoints are not supported yet; use a file:// URL"
                    } else {
                        "expected a file:// URL"
                    };
                    return Err(err(
                        "sasl.oauthbearer.jwks.endpoint.url",
                        url,
                        reason.into(),
                    ));
                }
                Some(c)
            }
        };

        // The listener's own list first (`listener.name.<l>.sasl.enabled.mechanisms`).
        let own = format!(
            "listener.name.{}.sasl.enabled.mechanisms",
            listener.to_ascii_lowercase()
        );
        let key = if props.contains_key(&own) {
            own.as_str()
        } else {
            "sasl.enabled.mechanisms"
        };
        let enabled_mechanisms: Vec<String> = match props.get(key) {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => {
                let mut m: Vec<String> = MECHANISMS[..3].iter().map(|s| s.to_string()).collect();
                if jwt.is_some() {
                    m.push(OAUTHBEARER.to_owned());
                }
                m
            }
        };
        let given = props.get(key).cloned().unwrap_or_default();
        for m in &enabled_mechanisms {
            if m == "GSSAPI" {
                return Err(err(
                    key,
                    &given,
                    "GSSAPI (Kerberos) is not supported by Medulla; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER".into(),
                ));
            }
            if !MECHANISMS.contains(&m.as_str()) {
                return Err(err(
                    key,
                    &given,
                    format!(
                        "unknown mechanism {m:?} (supported: {})",
                        MECHANISMS.join(", ")
                    ),
                ));
            }
            if m == OAUTHBEARER && jwt.is_none() {
                return Err(err(
                    key,
                    &given,
                    "OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url".into(),
                ));
            }
        }

        // PLAIN's users: the listener's own JAAS first, then the broker-wide one.
        let prefixed = props.iter().find(|(k, _)| {
            k.eq_ignore_ascii_case(&format!(
                "listener.name.{}.plain.sasl.jaas.config",
                listener.to_ascii_lowercase()
            ))
        });
        let plain_users = match prefixed {
            // The value is a secret: never echoed in the error.
            Some((k, v)) => parse_plain_jaas(v).map_err(|e| err(k, "(hidden)", e))?,
            None => match props.get("sasl.jaas.config") {
                Some(v) if v.contains("PlainLoginModule") => {
                    parse_plain_jaas(v).map_err(|e| err("sasl.jaas.config", "(hidden)", e))?
                }
                _ => BTreeMap::new(),
            },
        };
        Ok(SaslSettings {
            enabled_mechanisms,
            plain_users: PlainUsers(plain_users),
            reauth_max_ms,
            failed_auth_delay_ms,
            jwt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_sasl_listener_with_the_default_map() {
        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"pw\";",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.listeners[0].protocol,
            crate::session::SecurityProtocol::SaslPlaintext
        );
        assert_eq!(
            c.sasl["SASL_PLAINTEXT"].enabled_mechanisms,
            ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        );
        assert_eq!(c.sasl["SASL_PLAINTEXT"].plain_users.0["alice"], "pw");
        assert_eq!(c.sasl["SASL_PLAINTEXT"].failed_auth_delay_ms, 100);
        assert_eq!(c.sasl["SASL_PLAINTEXT"].reauth_max_ms, 0);
        assert!(!format!("{c:?}").contains("\"pw\""));

        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("listeners", "CLIENT://127.0.0.1:0"),
            ("listener.security.protocol.map", "CLIENT:SASL_PLAINTEXT"),
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                "file:///tmp/jwks.json",
            ),
            ("sasl.oauthbearer.expected.audience", "a, b"),
        ]))
        .unwrap();
        assert_eq!(
            c.listeners[0].protocol,
            crate::session::SecurityProtocol::SaslPlaintext
        );
        let client = &c.sasl["CLIENT"];
        assert!(
            client
                .enabled_mechanisms
                .contains(&"OAUTHBEARER".to_owned())
        );
        assert_eq!(client.jwt.as_ref().unwrap().expected_audience, ["a", "b"]);
    }

    #[test]
    fn refused_settings_are_named() {
        for (pairs, key) in [
            (
                vec![("sasl.enabled.mechanisms", "GSSAPI")],
                "sasl.enabled.mechanisms",
            ),
            (
                vec![("sasl.enabled.mechanisms", "OAUTHBEARER")],
                "sasl.enabled.mechanisms",
            ),
            (
                vec![("sasl.oauthbearer.jwks.endpoint.url", "https://idp/jwks")],
                "sasl.oauthbearer.jwks.endpoint.url",
            ),
            (
                vec![("connections.max.reauth.ms", "-1")],
                "connections.max.reauth.ms",
            ),
            (
                vec![(
                    "listener.name.plaintext.plain.sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"x",
                )],
                "listener.name.plaintext.plain.sasl.jaas.config",
            ),
        ] {
            let err = BrokerConfig::from_properties(&props(&pairs)).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
