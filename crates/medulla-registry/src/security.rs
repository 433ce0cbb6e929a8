//! Who may do what on the registry's HTTP API: authentication, authorization and the
//! audit trail, as one middleware in front of every route.
//!
//! The registry knows requests, subjects and a few kinds of access; the
//! [`HttpSecurity`] it is given (the binary's, over `medulla-auth`) knows credentials,
//! tokens, ACLs and the audit topic. A request without valid credentials is 401
//! (with `WWW-Authenticate`), one the principal may not make is 403; both with
//! Confluent-style JSON bodies (`40101`, `40301`), and both audited. A request that
//! changes something is audited before it runs; if the audit event cannot be made
//! durable the request fails (500, `50005`) and nothing changes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medulla_auth::Principal;
use medulla_auth::audit::{AuditError, AuditEvent, Category, Outcome};

use crate::error::ApiError;
use crate::logged::BoxFuture;

/// What a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// One subject (context prefix included, as the client named it).
    Subject(String),
    /// The registry as a whole: global config and mode, contexts, the DEK registry.
    Global,
}

/// What a request does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read schemas, versions, lookups, compatibility checks.
    Read,
    /// Register a schema.
    Write,
    /// Delete versions or subjects (and, globally, contexts).
    Delete,
    /// Read a config or mode.
    ReadConfig,
    /// Change a config or mode.
    WriteConfig,
}

/// One access a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// What.
    pub resource: Resource,
    /// How.
    pub action: Action,
}

impl Access {
    /// Whether this access changes state (audited before it runs).
    pub fn changes(&self) -> bool {
        matches!(
            self.action,
            Action::Write | Action::Delete | Action::WriteConfig
        )
    }
}

/// The security the registry is given.
pub trait HttpSecurity: Send + Sync + 'static {
    /// Who sent a request with this `Authorization` header (`None`: no header). An
    /// error's text is for the log and the audit trail, never for the client.
    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, String>;
    /// Whether `principal`, connecting from `client`, may make `access`.
    fn authorize(&self, principal: &Principal, client: SocketAddr, access: &Access) -> bool;
    /// Records an audit event; resolves once it is durable.
    fn audit(&self, event: AuditEvent) -> BoxFuture<'static, Result<(), AuditError>>;
}

/// The security a registry runs with (a handle that prints as its name only).
#[derive(Clone)]
pub struct Security(pub Arc<dyn HttpSecurity>);

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Security")
    }
}

/// The client's address, put in each request's extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// What access a request needs; `None` for routes any authenticated principal may use
/// (schemas by id, the schema types, the server's metadata): a deserializer holding
/// only an id must be able to resolve it.
pub fn classify(method: &Method, path: &str) -> Option<Access> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg = |i: usize| segments.get(i).map(String::as_str);
    let read = *method == Method::GET || *method == Method::HEAD;
    let subject = |i: usize, action: Action| {
        seg(i).map(|s| Access {
            resource: Resource::Subject(s.to_owned()),
            action,
        })
    };
    let global = |action| {
        Some(Access {
            resource: Resource::Global,
            action,
        })
    };
    match seg(0)? {
        "subjects" if segments.len() == 1 => global(Action::Read),
        "subjects" => match (method, segments.len()) {
            (m, 2) if *m == Method::POST => subject(1, Action::Read),
            (m, _) if *m == Method::DELETE => subject(1, Action::Delete),
            (m, 3) if *m == Method::POST => subject(1, Action::Write),
            _ => subject(1, Action::Read),
        },
        "compatibility" => subject(2, Action::Read),
        "config" | "mode" => {
            let action = if read {
                Action::ReadConfig
            } else {
                Action::WriteConfig
            };
            match seg(1) {
                Some(_) => subject(1, action),
                None => global(action),
            }
        }
        "contexts" if read => global(Action::Read),
        "contexts" => global(Action::Delete),
        // DEK Registry: reading keys, and creating a DEK (key material the client
        // generated and wrapped with its KMS key; holding it grants nothing without that
        // key), need authentication only, so encrypting clients work with topic ACLs
        // alone; KEKs and every deletion are registry administration.
        "dek-registry" if read => None,
        "dek-registry"
            if *method == Method::POST
                && seg(4) == Some("deks")
                && !path.trim_end_matches('/').ends_with("/undelete") =>
        {
            None
        }
        "dek-registry" => global(Action::WriteConfig),
        "schemas" | "v1" | "" => None,
        _ => None,
    }
}

/// The middleware.
pub async fn guard(
    State(Security(security)): State<Security>,
    req: Request,
    next: Next,
) -> Response {
    let extensions = req.extensions();
    let client = extensions
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let event = |category, outcome, principal: &str, detail: String, access: Option<&Access>| {
        let mut e = AuditEvent::now(category, outcome);
        e.principal = principal.to_owned();
        e.client = client.to_string();
        e.source = "http:registry".to_owned();
        e.action = format!("{method} {path}");
        if let Some(a) = access {
            e.resource = match &a.resource {
                Resource::Subject(s) => format!("Subject:{s}"),
                Resource::Global => "Registry:global".to_owned(),
            };
            e.operation = format!("{:?}", a.action);
        }
        e.detail = detail;
        e
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match security.authenticate(authorization) {
        Ok(p) => p,
        Err(why) => {
            let e = event(
                Category::Authentication,
                Outcome::Failure,
                "User:ANONYMOUS",
                why,
                None,
            );
            if let Err(e) = security.audit(e).await {
                return audit_failed(e);
            }
            return unauthorized();
        }
    };
    let access = classify(&method, &path);
    if let Some(access) = &access {
        if !security.authorize(&principal, client, access) {
            let e = event(
                Category::Authorization,
                Outcome::Failure,
                &principal.to_string(),
                String::new(),
                Some(access),
            );
            if let Err(e) = security.audit(e).await {
                return audit_failed(e);
            }
            return forbidden(&principal, access);
        }
        if access.changes() {
            let e = event(
                Category::Change,
                Outcome::Success,
                &principal.to_string(),
                String::new(),
                Some(access),
            );
            if let Err(e) = security.audit(e).await {
                return audit_failed(e);
            }
        }
    }
    next.run(req).await
}

fn unauthorized() -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, 40101, "Unauthorized").into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"medulla\", Bearer"),
    );
    r
}

fn forbidden(principal: &Principal, access: &Access) -> Response {
    let on = match &access.resource {
        Resource::Subject(s) => format!("Subject: {s}"),
        Resource::Global => "the registry".to_owned(),
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        40301,
        format!(
            "User {principal} is denied operation {:?} on {on}",
            access.action
        ),
    )
    .into_response()
}

fn audit_failed(e: AuditError) -> Response {
    tracing::error!(error = %e, "refusing a registry request: the audit trail is unavailable");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        50005,
        "The request cannot be audited, so it was not carried out",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(m: Method, p: &str) -> Option<Access> {
        classify(&m, p)
    }
    fn s(name: &str, action: Action) -> Option<Access> {
        Some(Access {
            resource: Resource::Subject(name.to_owned()),
            action,
        })
    }
    fn g(action: Action) -> Option<Access> {
        Some(Access {
            resource: Resource::Global,
            action,
        })
    }

    #[test]
    fn routes_map_onto_accesses() {
        assert_eq!(
            c(Method::POST, "/subjects/x-value/versions"),
            s("x-value", Action::Write)
        );
        assert_eq!(
            c(Method::POST, "/subjects/x-value"),
            s("x-value", Action::Read)
        );
        assert_eq!(
            c(Method::GET, "/subjects/x-value/versions/1"),
            s("x-value", Action::Read)
        );
        assert_eq!(
            c(Method::DELETE, "/subjects/x-value/versions/1"),
            s("x-value", Action::Delete)
        );
        assert_eq!(
            c(Method::DELETE, "/subjects/x-value"),
            s("x-value", Action::Delete)
        );
        assert_eq!(
            c(
                Method::POST,
                "/compatibility/subjects/a%2Fb/versions/latest"
            ),
            s("a/b", Action::Read)
        );
        assert_eq!(
            c(Method::PUT, "/config/x-value"),
            s("x-value", Action::WriteConfig)
        );
        assert_eq!(c(Method::GET, "/config"), g(Action::ReadConfig));
        assert_eq!(c(Method::PUT, "/mode"), g(Action::WriteConfig));
        assert_eq!(c(Method::GET, "/subjects"), g(Action::Read));
        assert_eq!(c(Method::DELETE, "/contexts/.ctx"), g(Action::Delete));
        assert_eq!(
            c(Method::POST, "/dek-registry/v1/keks"),
            g(Action::WriteConfig)
        );
        assert_eq!(c(Method::GET, "/schemas/ids/1"), None);
        assert_eq!(c(Method::GET, "/"), None);
        assert!(s("x", Action::Write).unwrap().changes());
        assert!(!s("x", Action::Read).unwrap().changes());
    }
}
