//! Kafka client properties files (`--command-config`, `client.properties`): Java
//! `.properties` syntax, Java client keys translated to librdkafka's names, librdkafka
//! keys kept as they are. The result feeds both librdkafka and [`crate::wire`].
//!
//! | Java client key | becomes |
//! |---|---|
//! | `sasl.jaas.config` (`PlainLoginModule` / `ScramLoginModule`, `username=…`, `password=…`) | `sasl.username`, `sasl.password` |
//! | `ssl.truststore.type=PEM` + `ssl.truststore.location` | `ssl.ca.location` |
//! | `ssl.truststore.certificates` (inline PEM) | `ssl.ca.pem` |
//! | `ssl.keystore.type=PEM` + `ssl.keystore.location` (chain and key in one file) | `ssl.certificate.location` and `ssl.key.location` |
//! | `ssl.keystore.certificate.chain` + `ssl.keystore.key` (inline PEM) | `ssl.certificate.pem`, `ssl.key.pem` |
//! | `ssl.endpoint.identification.algorithm` (`https`, or empty for none) | the same key, `https` or `none` |
//!
//! `security.protocol` and `sasl.mechanism` mean the same in both. JKS and PKCS12 stores
//! are refused with a message saying how to convert them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::limits::PROPERTIES_BYTES_MAX;
use crate::{ClientConfig, ClientError};

/// Java-only keys with no librdkafka counterpart and no effect on a PEM setup: dropped
/// (librdkafka would refuse an unknown key).
const JAVA_ONLY_KEYS: &[&str] = &[
    "ssl.truststore.password",
    "ssl.keystore.password",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
    "ssl.engine.factory.class",
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "sasl.login.class",
    "client.dns.lookup",
    "default.api.timeout.ms",
];

/// Login modules whose `username` / `password` options are SASL credentials.
const PASSWORD_LOGIN_MODULES: &[&str] = &[
    "org.apache.kafka.common.security.plain.PlainLoginModule",
    "org.apache.kafka.common.security.scram.ScramLoginModule",
];

fn config_error(detail: impl Into<String>) -> ClientError {
    ClientError::Config(detail.into())
}

impl ClientConfig {
    /// Adds the properties of a Kafka client properties file (`key=value`, `#`
    /// comments), translated as the [module docs](crate::properties) say. Later
    /// properties win over earlier ones; `bootstrap.servers` in the file is ignored (the
    /// bootstrap given to the tool wins, as in Kafka's tools).
    pub fn with_properties_file(mut self, path: &Path) -> Result<ClientConfig, ClientError> {
        let text = crate::tls::read_config_file(path, PROPERTIES_BYTES_MAX)
            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
        let map = java_properties::read(text.as_slice())
            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
        let translated = translate(&map.into_iter().collect())
            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
        self.properties.extend(translated);
        Ok(self)
    }
}

/// Translates Java client properties to librdkafka's names.
pub fn translate(java: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let get = |k: &str| java.get(k).map(|v| v.trim());
    for (key, value) in java {
        let value = value.trim();
        match key.as_str() {
            "bootstrap.servers" => {}
            k if JAVA_ONLY_KEYS.contains(&k) => {}
            "sasl.jaas.config" => {
                let (username, password) = jaas_credentials(value)?;
                out.push(("sasl.username".into(), username));
                out.push(("sasl.password".into(), password));
            }
            "ssl.truststore.type" | "ssl.keystore.type" => {}
            "ssl.truststore.location" => {
                store_type(key, get("ssl.truststore.type"))?;
                out.push(("ssl.ca.location".into(), value.into()));
            }
            "ssl.truststore.certificates" => {
                store_type(key, get("ssl.truststore.type"))?;
                out.push(("ssl.ca.pem".into(), value.into()));
            }
            "ssl.keystore.location" => {
                store_type(key, get("ssl.keystore.type"))?;
                out.push(("ssl.certificate.location".into(), value.into()));
                out.push(("ssl.key.location".into(), value.into()));
            }
            "ssl.keystore.certificate.chain" => {
                store_type(key, get("ssl.keystore.type"))?;
                out.push(("ssl.certificate.pem".into(), value.into()));
            }
            "ssl.keystore.key" => {
                store_type(key, get("ssl.keystore.type"))?;
                out.push(("ssl.key.pem".into(), value.into()));
            }
            "ssl.endpoint.identification.algorithm" => {
                let v = if value.is_empty() { "none" } else { value };
                out.push((key.clone(), v.to_ascii_lowercase()));
            }
            _ => out.push((key.clone(), value.to_owned())),
        }
    }
    Ok(out)
}

/// Java's default store type is JKS; only PEM is read here.
fn store_type(key: &str, declared: Option<&str>) -> Result<(), String> {
    let prefix = if key.starts_with("ssl.truststore") {
        "ssl.truststore"
    } else {
        "ssl.keystore"
    };
    match declared {
        Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
        declared => Err(format!(
            "{key} needs {prefix}.type=PEM ({} stores are not supported: convert with \
             `keytool -importkeystore -deststoretype PKCS12` then \
             `openssl pkcs12 -nodes` to PEM)",
            declared.unwrap_or("JKS (the Java default)")
        )),
    }
}

/// `username` and `password` of a `sasl.jaas.config` for PLAIN or SCRAM:
/// `<LoginModule class> required [key="value"]… ;`.
fn jaas_credentials(jaas: &str) -> Result<(String, String), String> {
    let text = jaas.trim().trim_end_matches(';').trim();
    let (module, rest) = text.split_once(char::is_whitespace).ok_or_else(|| {
        format!("sasl.jaas.config {text:?}: expected `<LoginModule> required …;`")
    })?;
    if !PASSWORD_LOGIN_MODULES.contains(&module) {
        return Err(format!(
            "sasl.jaas.config: login module {module} is not supported (PlainLoginModule and \
             ScramLoginModule are; for OAUTHBEARER set sasl.oauthbearer.token)"
        ));
    }
    let rest = rest.trim_start();
    let rest = ["required", "requisite", "sufficient", "optional"]
        .iter()
        .find_map(|flag| rest.strip_prefix(flag))
        .ok_or_else(|| format!("sasl.jaas.config: expected `required` after {module}"))?;
    let options = jaas_options(rest)?;
    let field = |k: &str| {
        options
            .get(k)
            .cloned()
            .ok_or_else(|| format!("sasl.jaas.config: {module} has no {k}=\"…\""))
    };
    Ok((field("username")?, field("password")?))
}

/// JAAS options: `key=value` pairs separated by white space, values optionally in
/// double quotes with `\` escapes.
fn jaas_options(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut options = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(options);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("sasl.jaas.config: option {key:?} has no value"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("sasl.jaas.config: unterminated escape".into()),
                    },
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!("sasl.jaas.config: unterminated quote in {key}"));
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        options.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(java: &str, expected: &[(&str, &str)]) {
        let map: BTreeMap<String, String> = java_properties::read(java.as_bytes())
            .unwrap()
            .into_iter()
            .collect();
        let mut got = translate(&map).unwrap();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{java}");
    }

    fn refuse(java: &str, needle: &str) {
        let map: BTreeMap<String, String> = java_properties::read(java.as_bytes())
            .unwrap()
            .into_iter()
            .collect();
        let e = translate(&map).unwrap_err();
        assert!(e.contains(needle), "{java}: {e}");
    }

    #[test]
    fn scram_over_tls_with_pem_stores() {
        check(
            // Properties unescape `\\` once, then JAAS unescapes `\"`.
            r#"# a Kafka client.properties
bootstrap.servers=ignored:9092
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="alice" password="p\\"w=d;x";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/ca.pem
ssl.truststore.password=unused
ssl.keystore.type=PEM
ssl.keystore.location=/etc/kafka/client.pem
ssl.endpoint.identification.algorithm=
"#,
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "p\"w=d;x"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
                ("ssl.certificate.location", "/etc/kafka/client.pem"),
                ("ssl.key.location", "/etc/kafka/client.pem"),
                ("ssl.endpoint.identification.algorithm", "none"),
            ],
        );
    }

    #[test]
    fn plain_login_module_and_inline_pem() {
        check(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=bob password=\"s e\";\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.certificate.chain=-----BEGIN CERTIFICATE-----\n\
             ssl.keystore.key=-----BEGIN PRIVATE KEY-----\n\
             ssl.truststore.type=pem\n\
             ssl.truststore.certificates=-----BEGIN CERTIFICATE-----\n\
             ssl.endpoint.identification.algorithm=HTTPS\n",
            &[
                ("sasl.username", "bob"),
                ("sasl.password", "s e"),
                ("ssl.certificate.pem", "-----BEGIN CERTIFICATE-----"),
                ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
                ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----"),
                ("ssl.endpoint.identification.algorithm", "https"),
            ],
        );
    }

    #[test]
    fn librdkafka_keys_pass_through() {
        check(
            "security.protocol=ssl\nssl.ca.location=/ca.pem\nsasl.username=u\n\
             enable.ssl.certificate.verification=false\nsasl.oauthbearer.token=a.b.c\n",
            &[
                ("security.protocol", "ssl"),
                ("ssl.ca.location", "/ca.pem"),
                ("sasl.username", "u"),
                ("enable.ssl.certificate.verification", "false"),
                ("sasl.oauthbearer.token", "a.b.c"),
            ],
        );
    }

    #[test]
    fn jks_and_pkcs12_are_refused_by_name() {
        refuse("ssl.truststore.location=/ts.jks\n", "JKS");
        refuse(
            "ssl.truststore.type=JKS\nssl.truststore.location=/ts.jks\n",
            "JKS stores are not supported",
        );
        refuse(
            "ssl.keystore.type=PKCS12\nssl.keystore.location=/ks.p12\n",
            "PKCS12 stores are not supported",
        );
    }

    #[test]
    fn bad_jaas_configs_are_refused() {
        refuse(
            "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            "OAuthBearerLoginModule is not supported",
        );
        refuse(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";",
            "has no password",
        );
        refuse(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u;",
            "unterminated quote",
        );
        refuse("sasl.jaas.config=nonsense", "expected");
    }

    #[test]
    fn a_file_is_read_and_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(
            &path,
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n",
        )
        .unwrap();
        let cfg = ClientConfig::new("h:1")
            .with_properties_file(&path)
            .unwrap();
        assert_eq!(cfg.property("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(cfg.property("sasl.mechanism"), Some("PLAIN"));
        let e = ClientConfig::new("h:1")
            .with_properties_file(&dir.path().join("missing"))
            .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
