//! SASL/PLAIN (RFC 4616): one message, `authzid NUL authcid NUL passwd`, checked against
//! the listener's static JAAS users and, for a user not among them, the SCRAM store.
//! Messages and refusals follow Kafka's `PlainSaslServer`.

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{Authenticated, SaslError, SaslServer, Step, check_size};
use crate::Principal;
use crate::credentials::CredentialStore;

/// Kafka's message for a wrong user or password (it never says which).
const INVALID: &str = "Authentication failed: Invalid username or password";

/// One PLAIN exchange.
pub struct PlainServer {
    users: Arc<BTreeMap<String, String>>,
    credentials: Arc<CredentialStore>,
    done: bool,
    /// The user name the client sent.
    claimed: Option<String>,
}

impl PlainServer {
    /// An exchange checking `users` first, then `credentials`.
    pub fn new(
        users: Arc<BTreeMap<String, String>>,
        credentials: Arc<CredentialStore>,
    ) -> PlainServer {
        PlainServer {
            users,
            credentials,
            done: false,
            claimed: None,
        }
    }
}

impl SaslServer for PlainServer {
    fn step(&mut self, input: &[u8]) -> Result<Step, SaslError> {
        check_size(input)?;
        if self.done {
            return Err(SaslError::Malformed(
                "PLAIN takes one message; the exchange is over".to_owned(),
            ));
        }
        self.done = true;
        let text = std::str::from_utf8(input)
            .map_err(|_| SaslError::Malformed("PLAIN message is not UTF-8".to_owned()))?;
        let parts: Vec<&str> = text.split('\0').collect();
        let [authzid, user, password] = parts.as_slice() else {
            return Err(SaslError::Malformed(
                "Invalid SASL/PLAIN response: expected 3 tokens".to_owned(),
            ));
        };
        if user.is_empty() {
            return Err(SaslError::Failed(
                "Authentication failed: username not specified".to_owned(),
            ));
        }
        self.claimed = Some((*user).to_owned());
        if password.is_empty() {
            return Err(SaslError::Failed(
                "Authentication failed: password not specified".to_owned(),
            ));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(SaslError::Failed(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_owned(),
            ));
        }
        let ok = match self.users.get(*user) {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(password.as_bytes())),
            None => self.credentials.verify_password(user, password),
        };
        if !ok {
            return Err(SaslError::Failed(INVALID.to_owned()));
        }
        Ok(Step::Done(Authenticated {
            principal: Principal::user(*user),
            response: Vec::new(),
            expires_at: None,
        }))
    }

    fn attempted_user(&self) -> Option<&str> {
        self.claimed.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::ScramMechanism;

    fn server() -> PlainServer {
        let users = BTreeMap::from([("alice".to_owned(), "alice-pw".to_owned())]);
        let store = CredentialStore::in_memory();
        store
            .upsert_password("bob", ScramMechanism::Sha512, "bob-pw", 4096)
            .unwrap();
        PlainServer::new(Arc::new(users), Arc::new(store))
    }

    fn check(input: &[u8]) -> Result<String, String> {
        match server().step(input) {
            Ok(Step::Done(a)) => Ok(a.principal.to_string()),
            Ok(Step::Challenge(_)) => Err("challenge".into()),
            Err(SaslError::Failed(m)) => Err(format!("failed: {m}")),
            Err(SaslError::Malformed(m)) => Err(format!("malformed: {m}")),
            Err(SaslError::TooLarge(n)) => Err(format!("too large: {n}")),
        }
    }

    #[test]
    fn plain_messages() {
        assert_eq!(check(b"\0alice\0alice-pw").unwrap(), "User:alice");
        assert_eq!(check(b"alice\0alice\0alice-pw").unwrap(), "User:alice");
        // Not a static user: the SCRAM store.
        assert_eq!(check(b"\0bob\0bob-pw").unwrap(), "User:bob");
        for (input, expected) in [
            (
                &b"\0alice\0wrong"[..],
                "failed: Authentication failed: Invalid",
            ),
            (b"\0bob\0wrong", "failed: Authentication failed: Invalid"),
            (b"\0carol\0x", "failed: Authentication failed: Invalid"),
            (
                b"bob\0alice\0alice-pw",
                "failed: Authentication failed: Client requested",
            ),
            (b"\0\0pw", "failed: Authentication failed: username"),
            (b"\0alice\0", "failed: Authentication failed: password"),
            (b"alice-pw", "malformed:"),
            (b"\0a\0b\0c", "malformed:"),
            (b"\0\xff\0x", "malformed:"),
        ] {
            let got = check(input).unwrap_err();
            assert!(got.starts_with(expected), "{input:?}: {got}");
        }
        let big = vec![b'a'; super::super::MESSAGE_BYTES_MAX + 1];
        assert!(check(&big).unwrap_err().starts_with("too large"));
        let mut s = server();
        s.step(b"\0alice\0alice-pw").unwrap();
        assert!(matches!(
            s.step(b"\0alice\0alice-pw"),
            Err(SaslError::Malformed(_))
        ));
    }
}
