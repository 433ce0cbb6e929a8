//! SCRAM credentials, stored as Kafka stores them (salt, StoredKey, ServerKey,
//! iterations; never the password), persisted to `<data_dir>/scram-credentials.json`
//! before a change is acknowledged, and checked by SCRAM, PLAIN and HTTP Basic.
//!
//! A change is applied to a copy, written with `medulla_log::fsutil::write_atomic`, and
//! only then made visible: a crash leaves the old set or the new one, and a change that
//! cannot be written is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The file the credentials live in, inside the data directory.
pub const CREDENTIALS_FILE: &str = "scram-credentials.json";

/// Kafka's smallest iteration count (`ScramMechanism.minIterations`).
pub const ITERATIONS_MIN: u32 = 4096;
/// Kafka's largest iteration count (AlterUserScramCredentials refuses more).
pub const ITERATIONS_MAX: u32 = 16384;
/// Most users the store holds; one more is refused (`CredentialError::TooManyUsers`).
pub const USERS_MAX: usize = 10_000;
/// Longest user name accepted.
pub const USER_NAME_BYTES_MAX: usize = 1024;
/// Longest salt accepted.
pub const SALT_BYTES_MAX: usize = 1024;
/// Largest credentials file read at start.
const FILE_BYTES_MAX: u64 = 64 << 20;

/// A SCRAM mechanism; the numbers are Kafka's `ScramMechanism` type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (type 1).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512 (type 2).
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Both, in Kafka's order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses the SASL mechanism name.
    pub fn parse(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's type code (DescribeUserScramCredentials / AlterUserScramCredentials).
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// From Kafka's type code (0, UNKNOWN, and anything else: `None`).
    pub fn from_type_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.type_code() == code)
    }

    /// HMAC(key, data).
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // `new_from_slice` accepts keys of any length for HMAC; the error arm cannot
        // happen and yields an empty tag, which then matches nothing.
        match self {
            ScramMechanism::Sha256 => Hmac::<Sha256>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
            ScramMechanism::Sha512 => Hmac::<Sha512>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
        }
    }

    /// H(data).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Hi(password, salt, iterations): PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// The output length of the hash in bytes.
    pub fn hash_bytes(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

/// One user's credential for one mechanism, as Kafka's `ScramCredential`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// Which mechanism.
    pub mechanism: ScramMechanism,
    /// The salt.
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    /// H(ClientKey).
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

// Secrets stay out of logs: only the mechanism and iteration count are shown.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            mechanism,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// The credential for a password and salt.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// Whether `password` is this credential's password (constant-time comparison).
    pub fn matches_password(&self, password: &str) -> bool {
        let derived = ScramCredential::from_password(
            self.mechanism,
            password,
            self.salt.clone(),
            self.iterations,
        );
        bool::from(derived.stored_key.ct_eq(&self.stored_key))
    }
}

mod b64 {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// Why a credential change or load failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The user has no credential for that mechanism (Kafka: RESOURCE_NOT_FOUND).
    #[error("attempt to delete a user credential that does not exist")]
    NotFound,
    /// Iterations outside 4096..=16384, an empty salt or user name, a bad salted
    /// password (Kafka: UNACCEPTABLE_CREDENTIAL).
    #[error("{0}")]
    Unacceptable(String),
    /// The store already holds [`USERS_MAX`] users.
    #[error("too many SCRAM users (the limit is {USERS_MAX})")]
    TooManyUsers,
    /// The file could not be read, parsed or written.
    #[error("SCRAM credentials file {path}: {reason}")]
    Storage {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One change of an AlterUserScramCredentials request.
#[derive(Clone)]
pub enum Change {
    /// Set `user`'s credential for `mechanism`.
    Upsert {
        /// The user.
        user: String,
        /// The credential.
        credential: ScramCredential,
    },
    /// Remove `user`'s credential for `mechanism`.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    users: Users,
}

/// Users → per-mechanism SCRAM credentials, persisted in the data directory (or kept in
/// memory only, for tests and tools).
pub struct CredentialStore {
    path: Option<PathBuf>,
    users: Mutex<Users>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// User names Medulla keeps for its own services (the embedded platform services'
/// in-memory credential on the internal listener): no SCRAM user may take one.
pub const RESERVED_USER_PREFIX: &str = "_medulla";

/// Checks a change's values as Kafka's `AlterUserScramCredentials` does.
pub fn check_upsert(user: &str, salt: &[u8], iterations: u32) -> Result<(), CredentialError> {
    if user.is_empty() {
        return Err(CredentialError::Unacceptable(
            "Username must not be empty".into(),
        ));
    }
    if user.starts_with(RESERVED_USER_PREFIX) {
        return Err(CredentialError::Unacceptable(format!(
            "User names starting with {RESERVED_USER_PREFIX} are reserved for Medulla's own services"
        )));
    }
    if user.len() > USER_NAME_BYTES_MAX {
        return Err(CredentialError::Unacceptable(format!(
            "Username longer than {USER_NAME_BYTES_MAX} bytes"
        )));
    }
    if salt.is_empty() {
        return Err(CredentialError::Unacceptable(
            "Salt must not be empty".into(),
        ));
    }
    if salt.len() > SALT_BYTES_MAX {
        return Err(CredentialError::Unacceptable(format!(
            "Salt longer than {SALT_BYTES_MAX} bytes"
        )));
    }
    if iterations < ITERATIONS_MIN {
        return Err(CredentialError::Unacceptable(format!(
            "Too few iterations: {iterations} (the minimum is {ITERATIONS_MIN})"
        )));
    }
    if iterations > ITERATIONS_MAX {
        return Err(CredentialError::Unacceptable(format!(
            "Too many iterations: {iterations} (the maximum is {ITERATIONS_MAX})"
        )));
    }
    Ok(())
}

impl CredentialStore {
    /// A store that lives in memory only.
    pub fn in_memory() -> CredentialStore {
        CredentialStore {
            path: None,
            users: Mutex::new(Users::new()),
        }
    }

    /// Loads `<data_dir>/scram-credentials.json` (empty if it does not exist).
    pub fn open(data_dir: &Path) -> Result<CredentialStore, CredentialError> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let storage = |reason: String| CredentialError::Storage {
            path: path.display().to_string(),
            reason,
        };
        let users = match medulla_log::fsutil::read_small(&path, FILE_BYTES_MAX)
            .map_err(|e| storage(e.to_string()))?
        {
            None => Users::new(),
            Some(bytes) => {
                let file: FileFormat =
                    serde_json::from_slice(&bytes).map_err(|e| storage(e.to_string()))?;
                if file.version != 1 {
                    return Err(storage(format!("unknown version {}", file.version)));
                }
                if file.users.len() > USERS_MAX {
                    return Err(storage(format!("more than {USERS_MAX} users")));
                }
                file.users
            }
        };
        Ok(CredentialStore {
            path: Some(path),
            users: Mutex::new(users),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.lock()
            .get(user)
            .and_then(|m| m.get(&mechanism))
            .cloned()
    }

    /// Applies `changes` in order and persists the result once, before returning. Each
    /// change gets its own result; the ones that fail change nothing. Blocking (fsync).
    pub fn alter(&self, changes: Vec<Change>) -> Vec<Result<(), CredentialError>> {
        let mut users = self.lock();
        let mut next = users.clone();
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            results.push(apply(&mut next, change));
        }
        if results.iter().any(Result::is_ok) {
            if let Err(e) = self.persist(&next) {
                let reason = e.to_string();
                return results
                    .into_iter()
                    .map(|r| {
                        r.and(Err(CredentialError::Storage {
                            path: self.path_text(),
                            reason: reason.clone(),
                        }))
                    })
                    .collect();
            }
            *users = next;
        }
        results
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn persist(&self, users: &Users) -> Result<(), CredentialError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = FileFormat {
            version: 1,
            users: users.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| CredentialError::Storage {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        medulla_log::fsutil::write_atomic(path, &bytes).map_err(|e| CredentialError::Storage {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Sets `user`'s credential from a salted password, as AlterUserScramCredentials
    /// sends it. Persisted before it returns.
    pub fn upsert(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        iterations: u32,
        salt: &[u8],
        salted_password: &[u8],
    ) -> Result<(), CredentialError> {
        check_upsert(user, salt, iterations)?;
        let credential = ScramCredential::from_salted_password(
            mechanism,
            salt.to_vec(),
            salted_password,
            iterations,
        );
        single(self.alter(vec![Change::Upsert {
            user: user.to_owned(),
            credential,
        }]))
    }

    /// Sets `user`'s credential from a password, with a fresh random salt (the CLI and
    /// tests). Persisted before it returns.
    pub fn upsert_password(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<(), CredentialError> {
        let salt = random_bytes(32);
        check_upsert(user, &salt, iterations)?;
        let credential = ScramCredential::from_password(mechanism, password, salt, iterations);
        single(self.alter(vec![Change::Upsert {
            user: user.to_owned(),
            credential,
        }]))
    }

    /// Removes `user`'s credential for `mechanism`.
    pub fn delete(&self, user: &str, mechanism: ScramMechanism) -> Result<(), CredentialError> {
        single(self.alter(vec![Change::Delete {
            user: user.to_owned(),
            mechanism,
        }]))
    }

    /// `user`'s mechanisms and iteration counts; `None` if the user has none.
    pub fn describe(&self, user: &str) -> Option<Vec<(ScramMechanism, u32)>> {
        self.lock()
            .get(user)
            .map(|m| m.values().map(|c| (c.mechanism, c.iterations)).collect())
    }

    /// Every user with its mechanisms and iteration counts, by name.
    pub fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
        self.lock()
            .iter()
            .map(|(u, m)| {
                (
                    u.clone(),
                    m.values().map(|c| (c.mechanism, c.iterations)).collect(),
                )
            })
            .collect()
    }

    /// Whether `password` is `user`'s password under any stored mechanism (HTTP Basic,
    /// SASL/PLAIN). Derives and compares in constant time; costs one PBKDF2.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        // Copy out under the lock; derive without it (PBKDF2 is slow on purpose).
        let credential = self
            .lock()
            .get(user)
            .and_then(|m| m.values().next().cloned());
        match credential {
            Some(c) => c.matches_password(password),
            None => false,
        }
    }
}

fn single(mut results: Vec<Result<(), CredentialError>>) -> Result<(), CredentialError> {
    results.pop().unwrap_or(Ok(()))
}

fn apply(users: &mut Users, change: Change) -> Result<(), CredentialError> {
    match change {
        Change::Upsert { user, credential } => {
            check_upsert(&user, &credential.salt, credential.iterations)?;
            if !users.contains_key(&user) && users.len() >= USERS_MAX {
                return Err(CredentialError::TooManyUsers);
            }
            users
                .entry(user)
                .or_default()
                .insert(credential.mechanism, credential);
            Ok(())
        }
        Change::Delete { user, mechanism } => {
            let Some(mechanisms) = users.get_mut(&user) else {
                return Err(CredentialError::NotFound);
            };
            if mechanisms.remove(&mechanism).is_none() {
                return Err(CredentialError::NotFound);
            }
            if mechanisms.is_empty() {
                users.remove(&user);
            }
            Ok(())
        }
    }
}

/// `n` bytes from the operating system's random source. Falls back to a hash of the
/// time and a counter only if the OS source fails, which it does not on Linux.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    if getrandom::fill(&mut out).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?}{}",
            std::time::SystemTime::now(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut block = Sha512::digest(seed.as_bytes()).to_vec();
        for (i, b) in out.iter_mut().enumerate() {
            if i % 64 == 0 && i > 0 {
                block = Sha512::digest(&block).to_vec();
            }
            *b = block[i % 64];
        }
    }
    out
}

/// Encodes bytes as standard base64 (SCRAM's salt, proofs and signatures).
pub fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes standard base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_a_reopen_and_never_hold_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path()).unwrap();
        store
            .upsert_password("alice", ScramMechanism::Sha512, "alice-secret", 4096)
            .unwrap();
        store
            .upsert_password("alice", ScramMechanism::Sha256, "alice-secret", 8192)
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
        assert!(!text.contains("alice-secret"));
        drop(store);
        let store = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(
            store.describe("alice"),
            Some(vec![
                (ScramMechanism::Sha256, 8192),
                (ScramMechanism::Sha512, 4096)
            ])
        );
        assert!(store.verify_password("alice", "alice-secret"));
        assert!(!store.verify_password("alice", "alice-secreT"));
        assert!(!store.verify_password("bob", "alice-secret"));
        store.delete("alice", ScramMechanism::Sha256).unwrap();
        assert!(matches!(
            store.delete("alice", ScramMechanism::Sha256),
            Err(CredentialError::NotFound)
        ));
        store.delete("alice", ScramMechanism::Sha512).unwrap();
        assert_eq!(store.describe("alice"), None);
        let store = CredentialStore::open(dir.path()).unwrap();
        assert!(store.list().is_empty());
    }

    #[test]
    fn kafka_limits_on_iterations_and_salt() {
        let store = CredentialStore::in_memory();
        for (iterations, salt) in [(4095, &b"s"[..]), (16385, b"s"), (4096, b"")] {
            assert!(matches!(
                store.upsert("u", ScramMechanism::Sha256, iterations, salt, &[0; 32]),
                Err(CredentialError::Unacceptable(_))
            ));
        }
        store
            .upsert("u", ScramMechanism::Sha256, 16384, b"salt", &[1; 32])
            .unwrap();
    }

    #[test]
    fn the_user_limit_is_named() {
        let store = CredentialStore::in_memory();
        let changes = (0..=USERS_MAX)
            .map(|i| Change::Upsert {
                user: format!("u{i}"),
                credential: ScramCredential::from_salted_password(
                    ScramMechanism::Sha256,
                    vec![1],
                    &[0; 32],
                    4096,
                ),
            })
            .collect();
        let results = store.alter(changes);
        assert!(results[..USERS_MAX].iter().all(Result::is_ok));
        assert!(matches!(
            results[USERS_MAX],
            Err(CredentialError::TooManyUsers)
        ));
    }

    #[test]
    fn a_change_that_cannot_be_written_is_refused_and_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(&dir.path().join("missing-dir")).unwrap();
        let err = store
            .upsert_password("alice", ScramMechanism::Sha256, "pw", 4096)
            .unwrap_err();
        assert!(matches!(err, CredentialError::Storage { .. }), "{err}");
        assert_eq!(store.describe("alice"), None);
    }
}
