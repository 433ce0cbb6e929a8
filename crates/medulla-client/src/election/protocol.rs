//! The bytes of Confluent Schema Registry's group protocol (no I/O): the member
//! metadata (`SchemaRegistryIdentity` as JSON), the assignment (`Assignment` as JSON) and
//! how the group leader picks the service leader (`SchemaRegistryCoordinator
//! .onLeaderElected`, non-sticky).
//!
//! Wire shapes (what Confluent's Jackson mapper writes; field order is immaterial):
//! - metadata: `{"version":1,"host":"h","port":8081,"master_eligibility":true,"scheme":"http"}`
//! - assignment: `{"version":1,"error":0,"master":"<kafka member id>","master_identity":{…}}`,
//!   `master` and `master_identity` absent when no member is eligible.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::limits::GROUP_JSON_BYTES_MAX;

/// The only sub-protocol name Confluent's coordinator offers in JoinGroup.
pub const SUBPROTOCOL_V0: &str = "v0";

/// `SchemaRegistryIdentity.CURRENT_VERSION` and `Assignment.CURRENT_VERSION`.
const CURRENT_VERSION: i32 = 1;

/// Assignment error: none.
pub const NO_ERROR: i16 = 0;
/// Assignment error: several members advertise the same URL.
pub const DUPLICATE_URLS: i16 = 1;

/// The identity of one instance, as a member advertises it in JoinGroup and the group
/// leader echoes the chosen one in the assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityJson {
    /// Always 1 when written; any value is accepted.
    #[serde(default = "current_version")]
    pub version: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Whether the member may become leader; absent means not.
    #[serde(default)]
    pub master_eligibility: bool,
    /// `http` or `https`; absent means `http` (Jackson's `defaultValue`).
    #[serde(default = "http")]
    pub scheme: String,
}

fn current_version() -> i32 {
    CURRENT_VERSION
}

fn http() -> String {
    "http".to_owned()
}

impl IdentityJson {
    /// `scheme://host:port`, the URL leaders are ordered by and duplicates detected on.
    pub fn url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The assignment every member receives in SyncGroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Always 1 when written.
    #[serde(default = "current_version")]
    pub version: i32,
    /// [`NO_ERROR`] or [`DUPLICATE_URLS`].
    #[serde(default)]
    pub error: i16,
    /// The Kafka member id of the elected leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// The elected leader's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_identity: Option<IdentityJson>,
}

/// Encodes a member's metadata.
pub fn encode_identity(identity: &IdentityJson) -> Bytes {
    // Serializing a struct of strings and numbers cannot fail.
    Bytes::from(serde_json::to_vec(identity).unwrap_or_default())
}

/// Decodes a member's metadata (untrusted: it comes from another member).
pub fn decode_identity(bytes: &[u8]) -> Result<IdentityJson, String> {
    decode(bytes, "member metadata")
}

/// Encodes an assignment.
pub fn encode_assignment(assignment: &Assignment) -> Bytes {
    Bytes::from(serde_json::to_vec(assignment).unwrap_or_default())
}

/// Decodes an assignment (untrusted: another member computed it).
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    decode(bytes, "assignment")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, String> {
    if bytes.len() > GROUP_JSON_BYTES_MAX {
        return Err(format!(
            "{what} of {} bytes exceeds the limit of {GROUP_JSON_BYTES_MAX}",
            bytes.len()
        ));
    }
    // serde_json bounds nesting depth (128) itself.
    serde_json::from_slice(bytes).map_err(|e| format!("invalid {what}: {e}"))
}

/// The group leader's choice: the leader-eligible member with the smallest URL, and
/// [`DUPLICATE_URLS`] when two members advertise the same URL. Every member receives
/// the same assignment. Members whose metadata cannot be read are never chosen and
/// do not count in the duplicate check (Confluent would fail the whole rebalance).
pub fn assign(members: &[(String, Bytes)]) -> (Assignment, Vec<(String, Bytes)>) {
    let mut leader: Option<(&str, IdentityJson)> = None;
    let mut urls = std::collections::HashSet::new();
    let mut readable = 0usize;
    for (member_id, metadata) in members {
        let identity = match decode_identity(metadata) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(member_id, error = %e, "ignoring a group member");
                continue;
            }
        };
        readable += 1;
        let url = identity.url();
        let smaller = leader.as_ref().is_none_or(|(_, l)| url < l.url());
        urls.insert(url);
        if identity.master_eligibility && smaller {
            leader = Some((member_id, identity));
        }
    }
    let error = if urls.len() == readable {
        NO_ERROR
    } else {
        tracing::error!(
            "several group members advertise the same URL; give each instance a unique, \
             routable host name and port"
        );
        DUPLICATE_URLS
    };
    let (master, master_identity) = match leader {
        Some((id, identity)) => (Some(id.to_owned()), Some(identity)),
        None => (None, None),
    };
    let assignment = Assignment {
        version: CURRENT_VERSION,
        error,
        master,
        master_identity,
    };
    let bytes = encode_assignment(&assignment);
    let out = members
        .iter()
        .map(|(id, _)| (id.clone(), bytes.clone()))
        .collect();
    (assignment, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(host: &str, port: u16, eligible: bool) -> IdentityJson {
        IdentityJson {
            version: 1,
            host: host.to_owned(),
            port,
            master_eligibility: eligible,
            scheme: "http".to_owned(),
        }
    }

    fn member(id: &str, i: &IdentityJson) -> (String, Bytes) {
        (id.to_owned(), encode_identity(i))
    }

    #[test]
    fn metadata_is_confluents_json() {
        let json = encode_identity(&identity("sr-1", 8081, true));
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"version":1,"host":"sr-1","port":8081,"master_eligibility":true,"scheme":"http"}"#
        );
    }

    #[test]
    fn confluents_metadata_is_read_with_its_defaults() {
        // As a Confluent instance writes it (creator properties first), plus an unknown
        // field; scheme and eligibility absent take Jackson's defaults.
        let i = decode_identity(br#"{"host":"h","port":1,"version":1,"leader":true}"#).unwrap();
        assert_eq!(
            i,
            IdentityJson {
                master_eligibility: false,
                ..identity("h", 1, false)
            }
        );
        assert!(decode_identity(br#"{"host":"h","port":70000}"#).is_err());
        assert!(decode_identity(b"[").is_err());
        assert!(decode_identity(&vec![b' '; GROUP_JSON_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn the_smallest_eligible_url_leads() {
        let members = vec![
            member("m-c", &identity("c", 1, true)),
            member("m-a", &identity("a", 1, false)),
            member("m-b", &identity("b", 1, true)),
        ];
        let (a, out) = assign(&members);
        assert_eq!(a.error, NO_ERROR);
        assert_eq!(a.master.as_deref(), Some("m-b"));
        assert_eq!(a.master_identity, Some(identity("b", 1, true)));
        assert_eq!(out.len(), 3);
        assert!(
            out.iter()
                .all(|(_, bytes)| decode_assignment(bytes).unwrap() == a)
        );
        assert_eq!(
            std::str::from_utf8(&out[0].1).unwrap(),
            r#"{"version":1,"error":0,"master":"m-b","master_identity":{"version":1,"host":"b","port":1,"master_eligibility":true,"scheme":"http"}}"#
        );
    }

    #[test]
    fn no_eligible_member_means_no_leader() {
        let (a, out) = assign(&[member("m", &identity("a", 1, false))]);
        assert_eq!((a.master, a.master_identity), (None, None));
        assert_eq!(
            std::str::from_utf8(&out[0].1).unwrap(),
            r#"{"version":1,"error":0}"#
        );
    }

    #[test]
    fn duplicate_urls_are_an_error_in_the_assignment() {
        let i = identity("same", 1, true);
        let (a, _) = assign(&[member("m1", &i), member("m2", &i)]);
        assert_eq!(a.error, DUPLICATE_URLS);
    }

    #[test]
    fn unreadable_members_are_never_leaders() {
        let members = vec![
            ("bad".to_owned(), Bytes::from_static(b"not json")),
            member("good", &identity("z", 1, true)),
        ];
        let (a, out) = assign(&members);
        assert_eq!((a.error, a.master.as_deref()), (NO_ERROR, Some("good")));
        assert_eq!(out.len(), 2);
    }
}
