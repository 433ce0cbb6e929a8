//! The access decision: Kafka's `StandardAuthorizer` rules over an [`AclStore`].

use std::net::IpAddr;
use std::sync::Arc;

use super::store::{AclStore, Entry};
use super::{AclOperation, AclPermissionType, PatternType, ResourceType, WILDCARD_RESOURCE};
use crate::Principal;
use crate::audit::AUDIT_TOPIC;

/// `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals allowed everything, whatever the ACLs say.
    pub super_users: Vec<Principal>,
    /// Whether a resource no ACL matches is open to everyone (Kafka's default: false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Parses `super.users`: principals separated by `;` (Kafka's format), blanks
    /// ignored.
    pub fn parse_super_users(value: &str) -> Result<Vec<Principal>, String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Principal::parse)
            .collect()
    }
}

/// Decides whether a principal may perform an operation on a resource. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Authorizer {
    config: Arc<AuthorizerConfig>,
    store: Arc<AclStore>,
}

/// What the bindings matching one resource say for one request.
enum Verdict {
    /// No binding matches the resource at all (any principal, host or operation).
    NoAcls,
    Denied,
    Allowed,
}

impl Authorizer {
    /// An authorizer over `store`.
    pub fn new(config: AuthorizerConfig, store: Arc<AclStore>) -> Authorizer {
        Authorizer {
            config: Arc::new(config),
            store,
        }
    }

    /// The bindings.
    pub fn store(&self) -> &Arc<AclStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    /// Whether `principal` is one of `super.users`.
    pub fn is_super_user(&self, principal: &Principal) -> bool {
        self.config.super_users.iter().any(|s| s == principal)
    }

    /// Whether `principal`, connecting from `host`, may perform `op` on the resource
    /// `(resource_type, name)`.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        match self.verdict(principal, host.to_canonical(), op, resource_type, name) {
            Verdict::Allowed => true,
            Verdict::Denied => false,
            // Ours, not Kafka's: the audit trail is never open by default.
            Verdict::NoAcls => {
                self.config.allow_everyone_if_no_acl_found
                    && !(resource_type == ResourceType::Topic && name == AUDIT_TOPIC)
            }
        }
    }

    fn verdict(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Verdict {
        let snapshot = self.store.snapshot();
        let mut any = false;
        let mut denied = false;
        let mut allowed = false;
        snapshot.for_each_matching(resource_type, name, |e| {
            any = true;
            if denied || !e.matches_principal(principal) || !e.matches_host(host) {
                return;
            }
            match e.permission {
                AclPermissionType::Deny
                    if e.operation == AclOperation::All || e.operation == op =>
                {
                    denied = true
                }
                AclPermissionType::Allow if allow_grants(e.operation, op) => allowed = true,
                _ => {}
            }
        });
        if denied {
            Verdict::Denied
        } else if allowed {
            Verdict::Allowed
        } else if any {
            Verdict::Denied
        } else {
            Verdict::NoAcls
        }
    }

    /// Kafka's `authorizeByResourceType` (KIP-679): whether `principal` may perform `op`
    /// on at least one resource of `resource_type` — an ALLOW binding (literal or
    /// prefixed) that no DENY binding covers. InitProducerId without a transactional id
    /// uses it: Write on any topic grants IdempotentWrite.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        // As Kafka: a hard-coded name first, so super users (and a type with no bindings
        // under allow.everyone.if.no.acl.found) are allowed whatever the DENYs say.
        if self.authorize(principal, host, op, resource_type, "hardcode") {
            return true;
        }
        let host = host.to_canonical();
        let snapshot = self.store.snapshot();
        let mut deny_literal: Vec<&str> = Vec::new();
        let mut deny_prefixed: Vec<&str> = Vec::new();
        let mut allow: Vec<(PatternType, &str)> = Vec::new();
        let mut wildcard_deny = false;
        let mut wildcard_allow = false;
        let relevant = |e: &Entry| {
            e.matches_host(host)
                && e.matches_principal(principal)
                && (e.operation == op || e.operation == AclOperation::All)
        };
        // Names borrow from the snapshot, which outlives these vectors.
        let snap = &*snapshot;
        snap.for_each_of_type(resource_type, |pattern, name, e| {
            if !relevant(e) {
                return;
            }
            match (e.permission, pattern) {
                (AclPermissionType::Deny, PatternType::Literal) if name == WILDCARD_RESOURCE => {
                    wildcard_deny = true
                }
                (AclPermissionType::Deny, PatternType::Literal) => deny_literal.push(name),
                (AclPermissionType::Deny, _) => deny_prefixed.push(name),
                (AclPermissionType::Allow, PatternType::Literal) if name == WILDCARD_RESOURCE => {
                    wildcard_allow = true
                }
                (AclPermissionType::Allow, p) => allow.push((p, name)),
                _ => {}
            }
        });
        if wildcard_deny {
            return false;
        }
        if wildcard_allow {
            return true;
        }
        allow.iter().any(|(pattern, name)| {
            if *pattern == PatternType::Literal && deny_literal.contains(name) {
                return false;
            }
            !deny_prefixed.iter().any(|d| name.starts_with(d))
        })
    }

    /// Kafka's `authorized_operations` bitfield for a resource: a bit (the operation's
    /// code) for each operation the resource type supports that `principal` may perform.
    pub fn authorized_operations(
        &self,
        principal: &Principal,
        host: IpAddr,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        AclOperation::bitfield(
            AclOperation::supported_by(resource_type)
                .iter()
                .copied()
                .filter(|op| self.authorize(principal, host, *op, resource_type, name)),
        )
    }
}

/// Whether an ALLOW binding for `granted` allows `asked` (Kafka's implied operations).
fn allow_grants(granted: AclOperation, asked: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == asked
        || (asked == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (asked == DescribeConfigs && granted == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::super::AclBinding;
    use super::*;
    use proptest::prelude::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));

    struct Acl<'a>(
        ResourceType,
        &'a str,
        PatternType,
        &'a str,
        &'a str,
        AclOperation,
        AclPermissionType,
    );

    fn authorizer(acls: &[Acl<'_>], config: AuthorizerConfig) -> Authorizer {
        let store = Arc::new(AclStore::in_memory());
        let results = store.create(
            acls.iter()
                .map(|a| AclBinding {
                    resource_type: a.0,
                    name: a.1.to_owned(),
                    pattern_type: a.2,
                    principal: a.3.to_owned(),
                    host: a.4.to_owned(),
                    operation: a.5,
                    permission: a.6,
                })
                .collect(),
        );
        assert!(results.iter().all(Result::is_ok));
        Authorizer::new(config, store)
    }

    use AclOperation as Op;
    use AclPermissionType::{Allow, Deny};
    use PatternType::{Literal, Prefixed};
    use ResourceType::{Cluster, Group, Topic, TransactionalId};

    fn alice() -> Principal {
        Principal::user("alice")
    }

    #[test]
    fn write_not_read() {
        let a = authorizer(
            &[Acl(
                Topic,
                "clinical.lab.results",
                Literal,
                "User:alice",
                "*",
                Op::Write,
                Allow,
            )],
            AuthorizerConfig::default(),
        );
        let can = |op| a.authorize(&alice(), LOCAL, op, Topic, "clinical.lab.results");
        assert!(can(Op::Write));
        assert!(can(Op::Describe), "Write implies Describe");
        assert!(!can(Op::Read));
        assert!(!can(Op::Delete));
        assert!(!a.authorize(
            &Principal::user("bob"),
            LOCAL,
            Op::Write,
            Topic,
            "clinical.lab.results"
        ));
        assert!(!a.authorize(&alice(), LOCAL, Op::Write, Topic, "other"));
    }

    #[test]
    fn implications_are_kafkas() {
        for (granted, implied) in [
            (Op::Read, Op::Describe),
            (Op::Write, Op::Describe),
            (Op::Delete, Op::Describe),
            (Op::Alter, Op::Describe),
            (Op::AlterConfigs, Op::DescribeConfigs),
        ] {
            let a = authorizer(
                &[Acl(Topic, "t", Literal, "User:alice", "*", granted, Allow)],
                AuthorizerConfig::default(),
            );
            assert!(
                a.authorize(&alice(), LOCAL, implied, Topic, "t"),
                "{granted}"
            );
        }
        let a = authorizer(
            &[Acl(
                Topic,
                "t",
                Literal,
                "User:alice",
                "*",
                Op::Create,
                Allow,
            )],
            AuthorizerConfig::default(),
        );
        assert!(!a.authorize(&alice(), LOCAL, Op::Describe, Topic, "t"));
        // A DENY of Read does not deny Describe (deny is never implied).
        let a = authorizer(
            &[
                Acl(Topic, "t", Literal, "User:alice", "*", Op::Read, Deny),
                Acl(Topic, "t", Literal, "User:alice", "*", Op::Describe, Allow),
            ],
            AuthorizerConfig::default(),
        );
        assert!(a.authorize(&alice(), LOCAL, Op::Describe, Topic, "t"));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, "t"));
    }

    #[test]
    fn deny_wins_prefixes_and_wildcards() {
        let a = authorizer(
            &[
                Acl(Topic, "clinical.", Prefixed, "User:*", "*", Op::All, Allow),
                Acl(
                    Topic,
                    "clinical.secret",
                    Literal,
                    "User:alice",
                    "*",
                    Op::Read,
                    Deny,
                ),
                Acl(Group, "*", Literal, "User:alice", "*", Op::Read, Allow),
                Acl(
                    Topic,
                    "x",
                    Literal,
                    "User:alice",
                    "10.0.0.7",
                    Op::Read,
                    Allow,
                ),
            ],
            AuthorizerConfig::default(),
        );
        assert!(a.authorize(&alice(), LOCAL, Op::Read, Topic, "clinical.lab.results"));
        assert!(a.authorize(
            &Principal::user("bob"),
            LOCAL,
            Op::Write,
            Topic,
            "clinical.a"
        ));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, "clinical.secret"));
        assert!(a.authorize(&alice(), LOCAL, Op::Write, Topic, "clinical.secret"));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, "clinical"));
        assert!(a.authorize(&alice(), LOCAL, Op::Read, Group, "any-group"));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, "x"));
        assert!(a.authorize(&alice(), OTHER, Op::Read, Topic, "x"));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert!(a.authorize(&alice(), mapped, Op::Read, Topic, "x"));
    }

    #[test]
    fn super_users_and_no_acl_fallback() {
        let config = AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users("User:admin; User:ops").unwrap(),
            allow_everyone_if_no_acl_found: true,
        };
        let a = authorizer(
            &[Acl(
                Topic,
                "locked",
                Literal,
                "User:bob",
                "*",
                Op::All,
                Deny,
            )],
            config,
        );
        let admin = Principal::user("admin");
        assert!(a.authorize(&admin, LOCAL, Op::Read, Topic, "locked"));
        assert!(a.authorize(&admin, LOCAL, Op::Read, Topic, AUDIT_TOPIC));
        // No ACL on "open": everyone. An ACL (for someone else) on "locked": nobody.
        assert!(a.authorize(&alice(), LOCAL, Op::Read, Topic, "open"));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, "locked"));
        assert!(a.authorize(&alice(), LOCAL, Op::Create, Cluster, "kafka-cluster"));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, AUDIT_TOPIC));
        let closed = authorizer(&[], AuthorizerConfig::default());
        assert!(!closed.authorize(&alice(), LOCAL, Op::Read, Topic, "open"));
        assert!(AuthorizerConfig::parse_super_users("alice").is_err());
    }

    #[test]
    fn audit_topic_only_through_an_explicit_acl() {
        let a = authorizer(
            &[Acl(
                Topic,
                AUDIT_TOPIC,
                Literal,
                "User:auditor",
                "*",
                Op::Read,
                Allow,
            )],
            AuthorizerConfig {
                super_users: vec![],
                allow_everyone_if_no_acl_found: true,
            },
        );
        assert!(a.authorize(
            &Principal::user("auditor"),
            LOCAL,
            Op::Read,
            Topic,
            AUDIT_TOPIC
        ));
        assert!(!a.authorize(&alice(), LOCAL, Op::Read, Topic, AUDIT_TOPIC));
    }

    #[test]
    fn by_resource_type_follows_kip_679() {
        let a = authorizer(
            &[Acl(
                Topic,
                "clinical.",
                Prefixed,
                "User:alice",
                "*",
                Op::Write,
                Allow,
            )],
            AuthorizerConfig::default(),
        );
        assert!(a.authorize_any(&alice(), LOCAL, Op::Write, Topic));
        assert!(!a.authorize_any(&Principal::user("bob"), LOCAL, Op::Write, Topic));
        // A prefix deny that covers the allowed prefix removes it.
        let a = authorizer(
            &[
                Acl(
                    Topic,
                    "clinical.",
                    Prefixed,
                    "User:alice",
                    "*",
                    Op::Write,
                    Allow,
                ),
                Acl(Topic, "clin", Prefixed, "User:alice", "*", Op::Write, Deny),
            ],
            AuthorizerConfig::default(),
        );
        assert!(!a.authorize_any(&alice(), LOCAL, Op::Write, Topic));
        let a = authorizer(
            &[
                Acl(Topic, "a", Literal, "User:alice", "*", Op::Write, Allow),
                Acl(Topic, "a", Literal, "User:alice", "*", Op::Write, Deny),
                Acl(
                    TransactionalId,
                    "*",
                    Literal,
                    "User:alice",
                    "*",
                    Op::All,
                    Allow,
                ),
            ],
            AuthorizerConfig::default(),
        );
        assert!(!a.authorize_any(&alice(), LOCAL, Op::Write, Topic));
        assert!(a.authorize_any(&alice(), LOCAL, Op::Write, TransactionalId));
    }

    #[test]
    fn authorized_operations_bits() {
        let a = authorizer(
            &[Acl(Topic, "t", Literal, "User:alice", "*", Op::Read, Allow)],
            AuthorizerConfig::default(),
        );
        assert_eq!(
            a.authorized_operations(&alice(), LOCAL, Topic, "t"),
            (1 << 3) | (1 << 8)
        );
    }

    fn op_strategy() -> impl Strategy<Value = AclOperation> {
        prop::sample::select(AclOperation::ALL_VALUES[2..].to_vec())
    }

    proptest! {
        /// A DENY of op (or All) for the principal on a matching pattern always wins,
        /// whatever ALLOWs exist.
        #[test]
        fn deny_always_wins(
            op in op_strategy(),
            allow_op in op_strategy(),
            deny_all in any::<bool>(),
            prefix_len in 0usize..6,
            name in "[a-z.]{1,12}",
        ) {
            let deny_op = if deny_all { Op::All } else { op };
            let prefix: String = name.chars().take(prefix_len.max(1)).collect();
            let a = authorizer(
                &[
                    Acl(Topic, "*", Literal, "User:*", "*", allow_op, Allow),
                    Acl(Topic, &name, Literal, "User:alice", "*", Op::All, Allow),
                    Acl(Topic, &prefix, Prefixed, "User:alice", "*", deny_op, Deny),
                ],
                AuthorizerConfig::default(),
            );
            prop_assert!(!a.authorize(&alice(), LOCAL, op, Topic, &name));
        }

        /// With one ALLOW binding, the decision is exactly Kafka's implication table
        /// and the pattern's match.
        #[test]
        fn single_allow_matches_table(
            granted in op_strategy(),
            asked in op_strategy(),
            prefixed in any::<bool>(),
            acl_name in "[a-c]{1,3}",
            name in "[a-c]{1,4}",
        ) {
            let pattern = if prefixed { Prefixed } else { Literal };
            let a = authorizer(
                &[Acl(Topic, &acl_name, pattern, "User:alice", "*", granted, Allow)],
                AuthorizerConfig::default(),
            );
            let name_matches = if prefixed { name.starts_with(&acl_name) } else { name == acl_name };
            prop_assert_eq!(
                a.authorize(&alice(), LOCAL, asked, Topic, &name),
                name_matches && allow_grants(granted, asked)
            );
        }
    }
}
