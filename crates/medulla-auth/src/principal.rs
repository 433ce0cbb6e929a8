//! Who is asking: Kafka's `KafkaPrincipal`, a type and a name, written `User:alice`.

use std::fmt;

/// An authenticated (or anonymous) identity. ACLs name principals as `Type:name`; the
/// type is `User` for everything Medulla authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// `User` (Kafka's only built-in type).
    pub kind: String,
    /// The user name, certificate-derived name or token subject.
    pub name: String,
}

/// Kafka's principal type for users.
pub const USER_TYPE: &str = "User";

impl Principal {
    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            kind: USER_TYPE.to_owned(),
            name: name.into(),
        }
    }

    /// Kafka's `User:ANONYMOUS`: a connection on a PLAINTEXT listener, or an SSL one
    /// without a client certificate.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// Whether this is `User:ANONYMOUS`.
    pub fn is_anonymous(&self) -> bool {
        self.kind == USER_TYPE && self.name == "ANONYMOUS"
    }

    /// Parses `Type:name` (the name may itself hold colons, as a certificate DN can).
    pub fn parse(s: &str) -> Result<Principal, String> {
        match s.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(Principal {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(format!("{s:?} is not a principal of the form Type:name")),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        let p = Principal::parse("User:CN=alice,O=Clinic").unwrap();
        assert_eq!(p.kind, "User");
        assert_eq!(p.name, "CN=alice,O=Clinic");
        assert_eq!(p.to_string(), "User:CN=alice,O=Clinic");
        assert!(Principal::parse("alice").is_err());
        assert!(Principal::parse("User:").is_err());
        assert!(Principal::anonymous().is_anonymous());
    }
}
