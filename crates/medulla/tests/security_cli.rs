//! The security commands end to end (issue 6): `medulla user|acl|topic` with
//! `--command-config` against a real `medulla serve` whose one listener is SASL_SSL (or
//! SSL with client certificates), a StandardAuthorizer and a super user; certificates
//! made by `rcgen`.
//!
//! These need the broker side of issue 6 (listeners, SASL, ACLs, SCRAM credential APIs),
//! built on other branches: until those are merged they are ignored. After the merge:
//! `cargo test -p medulla --test security_cli -- --include-ignored`.

mod common;

use std::path::{Path, PathBuf};

use common::{Medulla, cli};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA, a broker keystore for 127.0.0.1 / localhost and a client keystore for `alice`,
/// as PEM files (chain and key in one file, as Kafka's PEM keystores hold them).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "medulla test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let leaf = |sans: Vec<String>, cn: &str, file: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(
                dir.join(file),
                format!("{}{}", cert.pem(), key.serialize_pem()),
            )
            .unwrap();
        };
        leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "broker",
            "server.pem",
        );
        leaf(Vec::new(), "alice", "alice.pem");
        Pki {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// Writes a client properties file and returns its path.
    fn properties(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// A broker with one SASL_SSL listener (PLAIN with a static `admin`, SCRAM-SHA-512 for
/// the users the test makes), the StandardAuthorizer and `admin` as super user. The
/// settings are in a config file: a JAAS value ends with `;`, `--override`'s separator.
fn sasl_ssl_broker(data: &Path, pki: &Pki) -> Medulla {
    let config = data.with_extension("properties");
    let text = format!(
        "listeners=SASL_SSL://127.0.0.1:0\n\
         sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n\
         listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\";\n\
         authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
         super.users=User:admin\n\
         ssl.keystore.type=PEM\n\
         ssl.keystore.location={}\n",
        pki.path("server.pem")
    );
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    Medulla::start(
        data,
        &[
            "--config",
            &config,
            "--override",
            "listeners=SASL_SSL://127.0.0.1:0",
        ],
    )
}

/// Runs the CLI with `--bootstrap` and `--command-config`.
fn run(broker: &Medulla, config: &str, args: &[&str]) -> (bool, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--bootstrap", &broker.addr, "--command-config", config]);
    cli(&all)
}

#[test]
fn users_and_acls_over_sasl_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let data = dir.path().join("data");
    let broker = sasl_ssl_broker(&data, &pki);
    // The admin's settings in Java client keys, as for kafka-acls.sh.
    let admin = pki.properties(
        "admin.properties",
        &format!(
            "security.protocol=SASL_SSL\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            pki.path("ca.pem")
        ),
    );
    // Alice's in librdkafka's names.
    let alice_text = format!(
        "security.protocol=sasl_ssl\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=alice\n\
         sasl.password=alice-secret\nssl.ca.location={}\n",
        pki.path("ca.pem")
    );
    let alice = pki.properties("alice.properties", &alice_text);
    let wrong = pki.properties(
        "wrong.properties",
        &alice_text.replace("alice-secret", "guess"),
    );

    // Before the user exists, alice cannot log in.
    let (ok, _, err) = run(&broker, &alice, &["topic", "list"]);
    assert!(!ok && err.contains("SASL_AUTHENTICATION_FAILED"), "{err}");

    let (ok, out, err) = run(
        &broker,
        &admin,
        &[
            "user",
            "add",
            "alice",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
            "--password",
            "alice-secret",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Completed updating config for user alice."),
        "{out}"
    );
    let (ok, out, err) = run(&broker, &admin, &["user", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-512=iterations=8192"
        ),
        "{out}"
    );

    let (ok, _, err) = run(
        &broker,
        &admin,
        &["topic", "create", "clinical.lab.results"],
    );
    assert!(ok, "{err}");

    // Authenticated, but allowed nothing: Metadata hides the topic, DescribeAcls refuses.
    let (ok, out, err) = run(&broker, &alice, &["topic", "list"]);
    assert!(ok, "{err}");
    assert!(!out.contains("clinical.lab.results"), "{out}");
    let (ok, _, err) = run(&broker, &alice, &["acl", "list"]);
    assert!(!ok && err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");
    let (ok, _, err) = run(&broker, &wrong, &["topic", "list"]);
    assert!(!ok && err.contains("SASL_AUTHENTICATION_FAILED"), "{err}");

    let prefixed = [
        "--allow-principal",
        "User:alice",
        "--operation",
        "Describe",
        "--topic",
        "clinical.",
        "--resource-pattern-type",
        "prefixed",
    ];
    let mut add = vec!["acl", "add"];
    add.extend(prefixed);
    let (ok, out, err) = run(&broker, &admin, &add);
    assert!(ok, "{err}");
    let resource = "`ResourcePattern(resourceType=TOPIC, name=clinical., patternType=PREFIXED)`";
    let entry = "(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)";
    assert!(
        out.contains(&format!("Adding ACLs for resource {resource}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Current ACLs for resource {resource}")),
        "{out}"
    );
    assert!(out.contains(entry), "{out}");
    let (ok, out, err) = run(
        &broker,
        &admin,
        &["acl", "list", "--principal", "User:alice"],
    );
    assert!(ok, "{err}");
    assert!(out.contains(entry), "{out}");

    // The ACL applies at once.
    let (ok, out, err) = run(&broker, &alice, &["topic", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("clinical.lab.results"), "{out}");

    let mut remove = vec!["acl", "remove"];
    remove.extend(prefixed);
    let (ok, out, err) = run(&broker, &admin, &remove);
    assert!(ok, "{err}");
    assert!(out.contains("Removed ACL"), "{out}");
    let (ok, out, _) = run(&broker, &alice, &["topic", "list"]);
    assert!(ok && !out.contains("clinical.lab.results"), "{out}");
    let (ok, out, _) = run(&broker, &admin, &["acl", "list"]);
    assert!(ok && !out.contains("User:alice"), "{out}");

    // A refused ACL change is printed with Kafka's error name: CreateAcls needs Alter
    // on the cluster.
    let mut add_as_alice = vec!["acl", "add"];
    add_as_alice.extend(prefixed);
    let (ok, _, err) = run(&broker, &alice, &add_as_alice);
    assert!(!ok && err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");

    let (ok, _, err) = run(&broker, &admin, &["user", "remove", "alice"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&broker, &alice, &["topic", "list"]);
    assert!(!ok && err.contains("SASL_AUTHENTICATION_FAILED"), "{err}");
}

#[test]
fn client_certificates_from_a_pem_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let data = dir.path().join("data");
    let broker = Medulla::start(
        &data,
        &[
            "--override",
            "listeners=SSL://127.0.0.1:0",
            "--override",
            "ssl.keystore.type=PEM",
            "--override",
            &format!("ssl.keystore.location={}", pki.path("server.pem")),
            "--override",
            "ssl.truststore.type=PEM",
            "--override",
            &format!("ssl.truststore.location={}", pki.path("ca.pem")),
            "--override",
            "ssl.client.auth=required",
        ],
    );
    let with_cert = pki.properties(
        "mtls.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            pki.path("ca.pem"),
            pki.path("alice.pem")
        ),
    );
    let (ok, _, err) = run(&broker, &with_cert, &["topic", "create", "labs"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&broker, &with_cert, &["topic", "list"]);
    assert!(ok && out.contains("labs"), "{out}{err}");

    let without = pki.properties(
        "tls.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            pki.path("ca.pem")
        ),
    );
    let (ok, out, _) = run(&broker, &without, &["topic", "list"]);
    assert!(!ok, "a client without a certificate was served: {out}");
    // Java keystores are refused before any connection, naming the fix.
    let jks = pki.properties(
        "jks.properties",
        "security.protocol=SSL\nssl.truststore.location=/etc/kafka/truststore.jks\n",
    );
    let (ok, _, err) = run(&broker, &jks, &["topic", "list"]);
    assert!(!ok && err.contains("ssl.truststore.type=PEM"), "{err}");
}

/// What needs no broker: settings and flags the CLI refuses before it connects.
#[test]
fn bad_settings_and_flags_are_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // Port 9 (discard): nothing may be sent there; every case fails before.
    let b = "127.0.0.1:9";
    let jks = write(
        "jks.properties",
        "security.protocol=SSL\nssl.truststore.location=/ts.jks\n",
    );
    let no_mechanism = write("sasl.properties", "security.protocol=SASL_SSL\n");
    let kerberos = write(
        "gssapi.properties",
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\n",
    );
    let missing = dir.path().join("missing.properties").display().to_string();
    let plain = write("plain.properties", "client.id=security-cli-test\n");
    for (config, args, expected) in [
        (&jks, &["topic", "list"][..], "ssl.truststore.type=PEM"),
        (
            &no_mechanism,
            &["group", "list"][..],
            "needs sasl.mechanism",
        ),
        (&kerberos, &["user", "list"][..], "GSSAPI is not supported"),
        (&missing, &["acl", "list"][..], "missing.properties"),
        (
            &plain,
            &["acl", "add", "--topic", "t"][..],
            "--allow-principal or --deny-principal",
        ),
        (
            &plain,
            &["acl", "add", "--allow-principal", "alice", "--topic", "t"][..],
            "Type:name",
        ),
        (
            &plain,
            &[
                "user",
                "add",
                "alice",
                "--mechanism",
                "PLAIN",
                "--password",
                "p",
            ][..],
            "expected SCRAM-SHA-256 or SCRAM-SHA-512",
        ),
        (
            &plain,
            &[
                "user",
                "add",
                "alice",
                "--iterations",
                "100",
                "--password",
                "p",
            ][..],
            "between 4096 and 16384",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--bootstrap", b, "--command-config", config.as_str()]);
        let (ok, out, err) = cli(&all);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
