//! Authorization on the Kafka listener: the `authorizer.class.name`, `super.users` and
//! `allow.everyone.if.no.acl.found` keys, and [`Access`], what every handler asks
//! ("may this request's principal do `op` on this resource?") and records (denials and
//! administrative changes go to the audit trail).
//!
//! Authorization is on exactly when `authorizer.class.name` is set, as in Kafka; off,
//! every check passes and the ACL APIs answer SECURITY_DISABLED.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use medulla_auth::acl::{AclOperation, Authorizer, AuthorizerConfig, ResourceType};
use medulla_auth::audit::{AuditEvent, Category, Outcome};

use crate::broker::Broker;
use crate::config::ConfigError;
use crate::session::Session;

/// The `authorizer.class.name` values that turn authorization on: Kafka's two
/// authorizers (whose rules Medulla's follows) and Medulla's own name.
pub const AUTHORIZER_CLASS_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "medulla",
];

/// Reads the authorization keys: `None` when `authorizer.class.name` is unset or empty.
pub(crate) fn parse_config(
    props: &BTreeMap<String, String>,
) -> Result<Option<AuthorizerConfig>, ConfigError> {
    let class = props
        .get("authorizer.class.name")
        .map(|s| s.trim())
        .unwrap_or("");
    let allow = props
        .get("allow.everyone.if.no.acl.found")
        .map(|s| s.trim())
        .unwrap_or("false");
    let allow_everyone_if_no_acl_found = match allow {
        "true" => true,
        "false" => false,
        _ => {
            return Err(ConfigError::InvalidValue {
                key: "allow.everyone.if.no.acl.found".to_owned(),
                value: allow.to_owned(),
                reason: "expected true or false".to_owned(),
            });
        }
    };
    let super_users = AuthorizerConfig::parse_super_users(
        props.get("super.users").map(String::as_str).unwrap_or(""),
    )
    .map_err(|reason| ConfigError::InvalidValue {
        key: "super.users".to_owned(),
        value: props.get("super.users").cloned().unwrap_or_default(),
        reason,
    })?;
    if class.is_empty() {
        return Ok(None);
    }
    if !AUTHORIZER_CLASS_NAMES.contains(&class) {
        return Err(ConfigError::InvalidValue {
            key: "authorizer.class.name".to_owned(),
            value: class.to_owned(),
            reason: format!("Medulla's authorizer answers to {AUTHORIZER_CLASS_NAMES:?}"),
        });
    }
    Ok(Some(AuthorizerConfig {
        super_users,
        allow_everyone_if_no_acl_found,
    }))
}

/// One request's view of authorization: who asks, from where, through which API.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    broker: &'a Broker,
    session: &'a Session,
    header: &'a RequestHeader,
    api: ApiKey,
}

impl<'a> Access<'a> {
    /// The view for one request.
    pub fn new(
        broker: &'a Broker,
        session: &'a Session,
        header: &'a RequestHeader,
        api: ApiKey,
    ) -> Access<'a> {
        Access {
            broker,
            session,
            header,
            api,
        }
    }

    fn authorizer(&self) -> Option<&'a Authorizer> {
        self.broker.authorizer()
    }

    /// Whether authorization is on at all.
    pub fn enabled(&self) -> bool {
        self.authorizer().is_some()
    }

    /// The decision, without recording it: for filtering listings (Metadata, ListGroups)
    /// where Kafka leaves out what may not be seen rather than refusing.
    pub fn allowed(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        match self.authorizer() {
            None => true,
            Some(a) => a.authorize(
                &self.session.principal,
                self.session.peer.ip(),
                op,
                resource_type,
                name,
            ),
        }
    }

    /// The decision; a denial is recorded in the audit trail.
    pub async fn check(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        if self.allowed(op, resource_type, name) {
            return true;
        }
        let event = self.event(
            Category::Authorization,
            Outcome::Failure,
            op,
            resource_type,
            name,
            "denied",
        );
        // The request is refused either way; a lost denial event is logged loudly.
        if let Err(e) = self.broker.audit(event).await {
            tracing::error!(error = %e, "cannot record an authorization denial");
        }
        false
    }

    /// [`Access::check`] on the cluster resource.
    pub async fn check_cluster(&self, op: AclOperation) -> bool {
        self.check(op, ResourceType::Cluster, medulla_auth::acl::CLUSTER_NAME)
            .await
    }

    /// An owned copy of the decision inputs, for a response's second phase.
    pub fn who(&self) -> Who {
        Who {
            authorizer: self.authorizer().cloned(),
            principal: self.session.principal.clone(),
            ip: self.session.peer.ip(),
        }
    }

    /// The broker.
    pub fn broker(&self) -> &'a Broker {
        self.broker
    }

    /// The request's API.
    pub fn api(&self) -> ApiKey {
        self.api
    }

    /// KIP-679: whether the principal may do `op` on some resource of the type.
    pub fn allowed_any(&self, op: AclOperation, resource_type: ResourceType) -> bool {
        match self.authorizer() {
            None => true,
            Some(a) => a.authorize_any(
                &self.session.principal,
                self.session.peer.ip(),
                op,
                resource_type,
            ),
        }
    }

    /// Kafka's `authorized_operations` bitfield for a resource (everything the type
    /// supports when authorization is off).
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        match self.authorizer() {
            None => {
                AclOperation::bitfield(AclOperation::supported_by(resource_type).iter().copied())
            }
            Some(a) => a.authorized_operations(
                &self.session.principal,
                self.session.peer.ip(),
                resource_type,
                name,
            ),
        }
    }

    /// Records an allowed administrative change before it is made. `Err` carries the
    /// code the item must fail with (KAFKA_STORAGE_ERROR): nothing may change
    /// unrecorded.
    pub async fn record_change(
        &self,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
        detail: &str,
    ) -> Result<(), i16> {
        let event = self.event(
            Category::Change,
            Outcome::Success,
            op,
            resource_type,
            name,
            detail,
        );
        self.broker.audit(event).await.map_err(|e| {
            tracing::error!(error = %e, api = ?self.api, "refusing an unrecorded change");
            ResponseError::KafkaStorageError.code()
        })
    }

    fn event(
        &self,
        category: Category,
        outcome: Outcome,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
        detail: &str,
    ) -> AuditEvent {
        let mut e = AuditEvent::now(category, outcome);
        e.principal = self.session.principal.to_string();
        e.client = self.session.peer.to_string();
        e.source = format!("kafka:{}", self.session.listener);
        e.action = format!("{:?}", self.api);
        e.resource = format!("{}:{name}", resource_type.title());
        e.operation = op.title().to_owned();
        e.request_id = format!(
            "{}/{}",
            self.header.client_id.as_deref().unwrap_or(""),
            self.header.correlation_id
        );
        e.detail = detail.to_owned();
        e
    }
}

/// [`Access::allowed`] detached from the request (owned, `'static`): filters answers
/// computed later, such as a listing's entries.
#[derive(Clone)]
pub struct Who {
    authorizer: Option<Authorizer>,
    principal: medulla_auth::Principal,
    ip: std::net::IpAddr,
}

impl Who {
    /// The decision, not recorded.
    pub fn allowed(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        match &self.authorizer {
            None => true,
            Some(a) => a.authorize(&self.principal, self.ip, op, resource_type, name),
        }
    }

    /// Kafka's `authorized_operations` bitfield.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        match &self.authorizer {
            None => {
                AclOperation::bitfield(AclOperation::supported_by(resource_type).iter().copied())
            }
            Some(a) => a.authorized_operations(&self.principal, self.ip, resource_type, name),
        }
    }
}

/// The authorizer a started broker uses, from its config: `None` when authorization is
/// off. Loads `<data_dir>/acls.json`; a damaged file is an error.
pub(crate) fn open(
    config: &crate::BrokerConfig,
) -> Result<Option<Authorizer>, medulla_auth::acl::AclError> {
    let Some(ac) = &config.authorizer else {
        return Ok(None);
    };
    let store = medulla_auth::acl::AclStore::open(&config.data_dir)?;
    tracing::info!(
        acls = store.len(),
        super_users = ac.super_users.len(),
        "authorization on"
    );
    Ok(Some(Authorizer::new(ac.clone(), Arc::new(store))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn authorizer_keys_parse_as_kafkas() {
        assert_eq!(parse_config(&props(&[])).unwrap(), None);
        let c = parse_config(&props(&[
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", "User:admin;User:CN=ops,O=Clinic"),
            ("allow.everyone.if.no.acl.found", "true"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.super_users.len(), 2);
        assert!(c.allow_everyone_if_no_acl_found);
        assert!(parse_config(&props(&[("authorizer.class.name", "com.example.Mine")])).is_err());
        assert!(parse_config(&props(&[("super.users", "admin")])).is_err());
        assert!(parse_config(&props(&[("allow.everyone.if.no.acl.found", "yes")])).is_err());
    }
}
