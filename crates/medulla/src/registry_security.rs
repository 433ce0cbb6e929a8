//! The schema registry's security when it runs beside the broker: HTTP Basic against
//! the broker's SCRAM users, bearer JWTs validated like OAUTHBEARER tokens, access
//! decided by the broker's ACLs, events in the broker's audit trail.
//!
//! Registry accesses map onto Kafka ACLs on the topic a subject belongs to (Confluent's
//! TopicNameStrategy: `x-key` and `x-value` belong to topic `x`; any other subject, e.g.
//! a RecordNameStrategy one, is checked as a topic of its own name, which prefixed ACLs
//! cover): reading a subject needs Describe (which Read or Write on the topic grants),
//! registering needs Write, deleting needs Delete, a subject's config or mode
//! DescribeConfigs / AlterConfigs. Registry-wide settings, listing every subject and
//! the KEKs need DescribeConfigs / AlterConfigs / Describe on the cluster: the "registry
//! role" is those cluster grants (super users have everything).

use std::net::SocketAddr;
use std::sync::Arc;

use medulla_auth::Principal;
use medulla_auth::acl::{AclOperation, CLUSTER_NAME, ResourceType};
use medulla_auth::audit::{AuditError, AuditEvent};
use medulla_auth::jwt::JwtValidator;
use medulla_registry::logged::BoxFuture;
use medulla_registry::security::{Access, Action, HttpSecurity, Resource};

/// Which `Authorization` schemes the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    /// `Basic` with a SCRAM user's name and password.
    pub basic: bool,
    /// `Bearer` with a JWT.
    pub bearer: bool,
}

impl Methods {
    /// Parses `registry.authentication.methods`: `NONE`, or a comma list of `BASIC`
    /// and `BEARER`.
    pub fn parse(value: &str) -> Result<Option<Methods>, String> {
        let mut m = Methods {
            basic: false,
            bearer: false,
        };
        for part in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part.to_ascii_uppercase().as_str() {
                "NONE" => return Ok(None),
                "BASIC" => m.basic = true,
                "BEARER" => m.bearer = true,
                other => return Err(format!("unknown method {other:?} (BASIC, BEARER or NONE)")),
            }
        }
        if !m.basic && !m.bearer {
            return Err("no method given (BASIC, BEARER or NONE)".to_owned());
        }
        Ok(Some(m))
    }
}

/// [`HttpSecurity`] over the broker of the same process.
pub struct BrokerSecurity {
    broker: medulla_broker::Broker,
    methods: Methods,
    jwt: Option<Arc<JwtValidator>>,
}

impl BrokerSecurity {
    /// Bearer tokens need `jwt` (the broker's `sasl.oauthbearer.*` keys).
    pub fn new(
        broker: medulla_broker::Broker,
        methods: Methods,
        jwt: Option<Arc<JwtValidator>>,
    ) -> BrokerSecurity {
        BrokerSecurity {
            broker,
            methods,
            jwt,
        }
    }
}

/// The topic a subject belongs to (context prefix dropped).
fn subject_topic(subject: &str) -> &str {
    let bare = match subject.strip_prefix(":.") {
        Some(rest) => rest.split_once(':').map_or(subject, |(_, s)| s),
        None => subject,
    };
    bare.strip_suffix("-value")
        .or_else(|| bare.strip_suffix("-key"))
        .filter(|t| !t.is_empty())
        .unwrap_or(bare)
}

/// The Kafka ACL check one registry access is.
fn acl_check(access: &Access) -> (AclOperation, ResourceType, String) {
    match &access.resource {
        Resource::Subject(s) => {
            let op = match access.action {
                Action::Read => AclOperation::Describe,
                Action::Write => AclOperation::Write,
                Action::Delete => AclOperation::Delete,
                Action::ReadConfig => AclOperation::DescribeConfigs,
                Action::WriteConfig => AclOperation::AlterConfigs,
            };
            (op, ResourceType::Topic, subject_topic(s).to_owned())
        }
        Resource::Global => {
            let op = match access.action {
                Action::Read => AclOperation::Describe,
                Action::ReadConfig => AclOperation::DescribeConfigs,
                Action::Write | Action::Delete | Action::WriteConfig => AclOperation::AlterConfigs,
            };
            (op, ResourceType::Cluster, CLUSTER_NAME.to_owned())
        }
    }
}

impl HttpSecurity for BrokerSecurity {
    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, String> {
        let header = authorization.ok_or("no Authorization header")?;
        let (scheme, value) = header
            .split_once(' ')
            .ok_or("the Authorization header has no scheme")?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("Basic") && self.methods.basic {
            let decoded = medulla_auth::credentials::base64_decode(value)
                .ok_or("Basic credentials are not base64")?;
            let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8")?;
            let (user, password) = text
                .split_once(':')
                .ok_or("Basic credentials are not user:password")?;
            if self
                .broker
                .sasl()
                .credentials()
                .verify_password(user, password)
            {
                return Ok(Principal::user(user));
            }
            let mut shown = user.to_owned();
            shown.truncate(128);
            return Err(format!("wrong user name or password for {shown:?}"));
        }
        if scheme.eq_ignore_ascii_case("Bearer") && self.methods.bearer {
            let jwt = self
                .jwt
                .as_ref()
                .ok_or("bearer tokens need sasl.oauthbearer.jwks.endpoint.url")?;
            return jwt.validate(value).map(|(principal, _)| principal);
        }
        let mut shown = scheme.to_owned();
        shown.truncate(32);
        Err(format!("the {shown:?} scheme is not accepted"))
    }

    fn authorize(&self, principal: &Principal, client: SocketAddr, access: &Access) -> bool {
        let Some(authorizer) = self.broker.authorizer() else {
            // No authorizer configured: every authenticated principal may do anything.
            return true;
        };
        let (op, rt, name) = acl_check(access);
        authorizer.authorize(principal, client.ip(), op, rt, &name)
    }

    fn audit(&self, event: AuditEvent) -> BoxFuture<'static, Result<(), AuditError>> {
        let broker = self.broker.clone();
        Box::pin(async move { broker.audit(event).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_belong_to_their_topics() {
        assert_eq!(subject_topic("clinical.labs-value"), "clinical.labs");
        assert_eq!(subject_topic("clinical.labs-key"), "clinical.labs");
        assert_eq!(subject_topic(":.ctx:orders-value"), "orders");
        assert_eq!(subject_topic("com.acme.Patient"), "com.acme.Patient");
        assert_eq!(subject_topic("-value"), "-value");
        let a = Access {
            resource: Resource::Subject("x-value".into()),
            action: Action::Write,
        };
        assert_eq!(
            acl_check(&a),
            (AclOperation::Write, ResourceType::Topic, "x".to_owned())
        );
        let g = Access {
            resource: Resource::Global,
            action: Action::WriteConfig,
        };
        assert_eq!(acl_check(&g).1, ResourceType::Cluster);
    }

    #[test]
    fn methods_parse() {
        assert_eq!(Methods::parse("NONE").unwrap(), None);
        assert_eq!(
            Methods::parse("basic, BEARER").unwrap(),
            Some(Methods {
                basic: true,
                bearer: true
            })
        );
        assert!(Methods::parse("digest").is_err());
        assert!(Methods::parse("").is_err());
    }
}
