//! Kafka's ACL model (`org.apache.kafka.common.acl` and `.resource`): resource types,
//! pattern types, operations and permissions with Kafka's wire codes and names; the
//! binding (one ACL) and the filter that selects bindings; and, in the submodules, the
//! [`Authorizer`] that decides requests and the [`AclStore`] that keeps the bindings.
//!
//! Semantics are Kafka's `StandardAuthorizer`: super users are always allowed; a DENY
//! wins over any ALLOW; ALLOW of Read, Write, Delete or Alter implies Describe and ALLOW
//! of AlterConfigs implies DescribeConfigs; `All` matches every operation; a literal `*`
//! name matches every resource of its type; `User:*` matches every principal; a host is
//! `*` or one IP address; a prefixed binding matches every name starting with its name;
//! and when no binding matches the resource at all, `allow.everyone.if.no.acl.found`
//! decides.

mod authorizer;
mod store;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use authorizer::{Authorizer, AuthorizerConfig};
pub use store::{AclError, AclStore};

/// The name of the one cluster resource (`kafka-cluster`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The resource name that, in a literal binding, matches every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";

/// The host that matches every client address.
pub const WILDCARD_HOST: &str = "*";

/// The principal that matches every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! kafka_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $code:literal, $kafka:literal, $title:literal; )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[ $( $name::$variant, )* ];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $( $name::$variant => $code, )* }
            }

            /// The value of a wire code; codes Kafka does not define are `Unknown`.
            pub fn from_code(code: i8) -> $name {
                match code {
                    $( $code => $name::$variant, )*
                    _ => $name::Unknown,
                }
            }

            /// Kafka's enum name (`TRANSACTIONAL_ID`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $( $name::$variant => $kafka, )* }
            }

            /// The name in the form Kafka's CLI and docs print it (`TransactionalId`).
            pub fn title(self) -> &'static str {
                match self { $( $name::$variant => $title, )* }
            }
        }

        impl FromStr for $name {
            type Err = String;

            /// Case-insensitive, with or without underscores: `describe_configs`,
            /// `DescribeConfigs` and `DESCRIBE_CONFIGS` are the same.
            fn from_str(s: &str) -> Result<$name, String> {
                let wanted = s.chars().filter(|c| *c != '_' && *c != '-');
                for v in $name::ALL_VALUES {
                    let have = v.name().chars().filter(|c| *c != '_');
                    if have.map(|c| c.to_ascii_lowercase())
                        .eq(wanted.clone().map(|c| c.to_ascii_lowercase()))
                    {
                        return Ok(*v);
                    }
                }
                Err(format!("{s:?} is not a {}", stringify!($name)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

kafka_enum! {
    /// Kafka's `ResourceType`.
    ResourceType {
        /// A code this broker does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// In a filter: every type.
        Any = 1, "ANY", "Any";
        /// A topic.
        Topic = 2, "TOPIC", "Topic";
        /// A consumer group.
        Group = 3, "GROUP", "Group";
        /// The cluster (named `kafka-cluster`).
        Cluster = 4, "CLUSTER", "Cluster";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID", "TransactionalId";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN", "DelegationToken";
        /// A user (for CreateTokens / DescribeTokens).
        User = 7, "USER", "User";
    }
}

kafka_enum! {
    /// Kafka's `PatternType`.
    PatternType {
        /// A code this broker does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// In a filter: bindings of any pattern type whose name equals the filter's.
        Any = 1, "ANY", "Any";
        /// In a filter: every binding that would apply to the filter's resource name.
        Match = 2, "MATCH", "Match";
        /// The name is the resource's name (or `*`).
        Literal = 3, "LITERAL", "Literal";
        /// The name is a prefix of the resources' names.
        Prefixed = 4, "PREFIXED", "Prefixed";
    }
}

kafka_enum! {
    /// Kafka's `AclOperation`.
    AclOperation {
        /// A code this broker does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// In a filter: every operation.
        Any = 1, "ANY", "Any";
        /// Every operation.
        All = 2, "ALL", "All";
        /// Read.
        Read = 3, "READ", "Read";
        /// Write.
        Write = 4, "WRITE", "Write";
        /// Create.
        Create = 5, "CREATE", "Create";
        /// Delete.
        Delete = 6, "DELETE", "Delete";
        /// Alter.
        Alter = 7, "ALTER", "Alter";
        /// Describe.
        Describe = 8, "DESCRIBE", "Describe";
        /// Cluster actions (inter-broker).
        ClusterAction = 9, "CLUSTER_ACTION", "ClusterAction";
        /// Describe configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS", "DescribeConfigs";
        /// Alter configs.
        AlterConfigs = 11, "ALTER_CONFIGS", "AlterConfigs";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE", "IdempotentWrite";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS", "CreateTokens";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS", "DescribeTokens";
    }
}

kafka_enum! {
    /// Kafka's `AclPermissionType`.
    AclPermissionType {
        /// A code this broker does not know.
        Unknown = 0, "UNKNOWN", "Unknown";
        /// In a filter: both.
        Any = 1, "ANY", "Any";
        /// Deny (wins over every allow).
        Deny = 2, "DENY", "Deny";
        /// Allow.
        Allow = 3, "ALLOW", "Allow";
    }
}

impl AclOperation {
    /// Bit `code` set for each operation, as Kafka's `authorized_operations` fields.
    pub fn bitfield(ops: impl IntoIterator<Item = AclOperation>) -> i32 {
        ops.into_iter()
            .fold(0, |bits, op| bits | (1i32 << i32::from(op.code())))
    }

    /// The operations Kafka reports in `authorized_operations` for a resource type
    /// (`AclEntry.supportedOperations`).
    pub fn supported_by(resource_type: ResourceType) -> &'static [AclOperation] {
        use AclOperation::*;
        match resource_type {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            _ => &[],
        }
    }
}

/// One ACL: a resource pattern and an access control entry. A binding in a store has
/// passed [`AclBinding::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resource type (never `Any` / `Unknown`).
    pub resource_type: ResourceType,
    /// The resource name, or `*` (literal) for every resource of the type.
    pub name: String,
    /// `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `Type:name`, or `User:*`.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    /// The operation (never `Any` / `Unknown`).
    pub operation: AclOperation,
    /// `Allow` or `Deny`.
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// Kafka's checks for a binding to be created (`AclControlManager.validateNewAcl`
    /// and the CreateAcls handler's), plus host syntax. The error text is what goes back
    /// with INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        match self.resource_type {
            ResourceType::Any | ResourceType::Unknown => {
                return Err(format!("Invalid resourceType {}", self.resource_type));
            }
            _ => {}
        }
        match self.pattern_type {
            PatternType::Literal | PatternType::Prefixed => {}
            other => return Err(format!("Invalid patternType {other}")),
        }
        match self.operation {
            AclOperation::Any | AclOperation::Unknown => {
                return Err(format!("Invalid operation {}", self.operation));
            }
            _ => {}
        }
        match self.permission {
            AclPermissionType::Allow | AclPermissionType::Deny => {}
            other => return Err(format!("Invalid permissionType {other}")),
        }
        if self.name.is_empty() {
            return Err("Resource name should not be empty".to_owned());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                    self.principal
                ));
            }
        }
        if self.host != WILDCARD_HOST && self.host.parse::<IpAddr>().is_err() {
            return Err(format!(
                "Invalid host {:?}: expected * or an IP address",
                self.host
            ));
        }
        Ok(())
    }

    /// A filter matching exactly this binding.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: self.resource_type,
            name: Some(self.name.clone()),
            pattern_type: self.pattern_type,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission: self.permission,
        }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Selects bindings, as Kafka's `AclBindingFilter`: `None` fields and `Any` values
/// match everything; pattern type `Match` selects every binding that applies to the
/// named resource (literal same name, literal `*`, prefixes of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// Resource type, or `Any`.
    pub resource_type: ResourceType,
    /// Resource name, or `None` for any.
    pub name: Option<String>,
    /// `Any`, `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// Principal, or `None` for any.
    pub principal: Option<String>,
    /// Host, or `None` for any.
    pub host: Option<String>,
    /// Operation, or `Any`.
    pub operation: AclOperation,
    /// Permission, or `Any`.
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermissionType::Any,
        }
    }

    /// Kafka's check of a DescribeAcls / DeleteAcls filter: no `Unknown` anywhere.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Unknown {
            return Err("Invalid resourceType UNKNOWN".to_owned());
        }
        if self.pattern_type == PatternType::Unknown {
            return Err("Invalid patternType UNKNOWN".to_owned());
        }
        if self.operation == AclOperation::Unknown {
            return Err("Invalid operation UNKNOWN".to_owned());
        }
        if self.permission == AclPermissionType::Unknown {
            return Err("Invalid permissionType UNKNOWN".to_owned());
        }
        Ok(())
    }

    /// Whether `binding` is selected (Kafka's `ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.name;
        }
        match b.pattern_type {
            PatternType::Literal => *name == b.name || b.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(b.name.as_str()),
            _ => false,
        }
    }

    fn matches_entry(&self, b: &AclBinding) -> bool {
        if self.principal.as_ref().is_some_and(|p| *p != b.principal) {
            return false;
        }
        if self.host.as_ref().is_some_and(|h| *h != b.host) {
            return false;
        }
        if self.operation != AclOperation::Any && self.operation != b.operation {
            return false;
        }
        if self.permission != AclPermissionType::Any && self.permission != b.permission {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(rt: ResourceType, name: &str, pt: PatternType) -> AclBinding {
        AclBinding {
            resource_type: rt,
            name: name.to_owned(),
            pattern_type: pt,
            principal: "User:alice".to_owned(),
            host: "*".to_owned(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        }
    }

    #[test]
    fn codes_and_names_are_kafkas() {
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::from_code(7), ResourceType::User);
        assert_eq!(ResourceType::from_code(42), ResourceType::Unknown);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::DescribeTokens.code(), 14);
        assert_eq!(AclOperation::IdempotentWrite.name(), "IDEMPOTENT_WRITE");
        assert_eq!(AclPermissionType::Allow.code(), 3);
        for v in AclOperation::ALL_VALUES {
            assert_eq!(AclOperation::from_code(v.code()), *v);
            assert_eq!(v.name().parse::<AclOperation>().unwrap(), *v);
            assert_eq!(v.title().parse::<AclOperation>().unwrap(), *v);
        }
        assert_eq!(
            "describeconfigs".parse::<AclOperation>().unwrap(),
            AclOperation::DescribeConfigs
        );
        assert_eq!(
            "transactional-id".parse::<ResourceType>().unwrap(),
            ResourceType::TransactionalId
        );
        assert!("reed".parse::<AclOperation>().is_err());
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        let ok = binding(ResourceType::Topic, "t", PatternType::Literal);
        assert!(ok.validate().is_ok());
        let bad = [
            AclBinding {
                resource_type: ResourceType::Any,
                ..ok.clone()
            },
            AclBinding {
                pattern_type: PatternType::Match,
                ..ok.clone()
            },
            AclBinding {
                operation: AclOperation::Any,
                ..ok.clone()
            },
            AclBinding {
                permission: AclPermissionType::Unknown,
                ..ok.clone()
            },
            AclBinding {
                name: String::new(),
                ..ok.clone()
            },
            AclBinding {
                principal: "alice".to_owned(),
                ..ok.clone()
            },
            AclBinding {
                host: "example.com".to_owned(),
                ..ok.clone()
            },
            binding(ResourceType::Cluster, "other", PatternType::Literal),
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b}");
        }
        assert!(
            AclBinding {
                host: "::1".to_owned(),
                ..ok.clone()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn filters_follow_kafkas_matching() {
        let lit = binding(ResourceType::Topic, "clinical.lab", PatternType::Literal);
        let star = binding(ResourceType::Topic, "*", PatternType::Literal);
        let pre = binding(ResourceType::Topic, "clinical.", PatternType::Prefixed);
        let group = binding(ResourceType::Group, "clinical.lab", PatternType::Literal);
        let f = |pt: PatternType, name: Option<&str>| AclBindingFilter {
            resource_type: ResourceType::Topic,
            name: name.map(str::to_owned),
            pattern_type: pt,
            ..AclBindingFilter::any()
        };
        let all = [&lit, &star, &pre, &group];
        let hits = |filter: &AclBindingFilter| {
            all.iter()
                .filter(|b| filter.matches(b))
                .map(|b| (b.resource_type, b.name.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(hits(&AclBindingFilter::any()).len(), 4);
        assert_eq!(
            hits(&f(PatternType::Match, Some("clinical.lab"))),
            vec![
                (ResourceType::Topic, "clinical.lab"),
                (ResourceType::Topic, "*"),
                (ResourceType::Topic, "clinical.")
            ]
        );
        assert_eq!(
            hits(&f(PatternType::Any, Some("clinical."))),
            vec![(ResourceType::Topic, "clinical.")]
        );
        assert_eq!(
            hits(&f(PatternType::Literal, None)),
            vec![
                (ResourceType::Topic, "clinical.lab"),
                (ResourceType::Topic, "*")
            ]
        );
        assert_eq!(
            hits(&f(PatternType::Prefixed, Some("clinical.lab"))),
            vec![]
        );
        let by_principal = AclBindingFilter {
            principal: Some("User:bob".to_owned()),
            ..AclBindingFilter::any()
        };
        assert!(hits(&by_principal).is_empty());
        let by_op = AclBindingFilter {
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
            ..AclBindingFilter::any()
        };
        assert_eq!(hits(&by_op).len(), 4);
        let by_host = AclBindingFilter {
            host: Some("10.0.0.1".to_owned()),
            ..AclBindingFilter::any()
        };
        assert!(hits(&by_host).is_empty());
    }

    #[test]
    fn bitfield_sets_bit_code() {
        assert_eq!(
            AclOperation::bitfield([AclOperation::Read, AclOperation::Describe]),
            (1 << 3) | (1 << 8)
        );
    }
}
