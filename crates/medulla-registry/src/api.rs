//! Confluent's REST API on axum: routes, query and body handling, content types.
//!
//! Every answer is JSON with Confluent's content type; every error is
//! `{"error_code", "message"}` (see `error.rs`), including unknown paths, wrong
//! methods, unsupported content types, bodies that are not JSON and bodies too large.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::records::ConfigValue;
use crate::registry::{self, Registry, SchemaRequest, VersionSpec};
use crate::schema::SchemaType;
use crate::state::StoredSchema;

/// Confluent's response content type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types Confluent accepts.
const ACCEPTED: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

type Reg = State<Arc<Registry>>;

/// The router for one registry, with its DEK Registry (`crate::dek`).
pub fn router(registry: Arc<Registry>, dek: Arc<crate::dek::DekRegistry>) -> Router {
    let limit = registry.limits.request_bytes_max;
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_raw),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/subjects/{subject}/metadata", get(latest_with_metadata))
        .route("/schemas", get(list_schemas))
        .route(
            "/schemas/types",
            get(|| async { ok(json!(SchemaType::ALL.map(SchemaType::as_str))) }),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_by_id_raw))
        .route("/schemas/ids/{id}/subjects", get(id_subjects))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compat_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compat_version),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_config).put(put_config).delete(delete_config),
        )
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route(
            "/mode/{subject}",
            get(get_mode).put(put_mode).delete(delete_mode),
        )
        .route("/contexts", get(contexts))
        .route("/contexts/{context}", axum::routing::delete(delete_context))
        .route("/v1/metadata/id", get(metadata_id))
        .route(
            "/v1/metadata/version",
            get(|| async { ok(json!({"version": env!("CARGO_PKG_VERSION"), "commitId": ""})) }),
        )
        .with_state(registry)
        .merge(crate::dek::router(dek))
        .fallback(|| async { ApiError::not_found("HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                405,
                "HTTP 405 Method Not Allowed",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
}

// ------------------------------------------------------------------ helpers

/// Query parameters in order (a key may repeat).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn new(raw: Option<String>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// A boolean as clients send it: `true` in any case is true (Java's parseBoolean).
    pub(crate) fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
    fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        self.get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("query parameter {k}={v:?} is not an integer"))
                })
            })
            .transpose()
    }
}

/// Checks the content type and decodes a JSON body.
pub(crate) fn body<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
    limit: usize,
) -> ApiResult<T> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED.contains(&essence.as_str()) {
            return Err(ApiError::unsupported_media_type(ct));
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable(
            "The request body is empty; a JSON object is required",
        ));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable(format!("Unrecognizable request body: {e}")))
}

fn version(s: &str) -> ApiResult<VersionSpec> {
    VersionSpec::parse(s)
}

fn schema_id(s: &str) -> ApiResult<i32> {
    s.parse::<i32>().map_err(|_| ApiError::schema_not_found())
}

/// `?format=`: replaces the answer's `schema` with the stored schema in that format
/// (Protobuf's `serialized`, which confluent-kafka-python's deserializers ask for).
fn with_format(reg: &Registry, q: &Query, s: &StoredSchema, mut v: Value) -> ApiResult<Value> {
    if let Some(format) = q.get("format")
        && let Some(text) = reg.formatted(s, format)?
        && let Some(m) = v.as_object_mut()
    {
        m.insert("schema".into(), text.into());
    }
    Ok(v)
}

fn respond(r: ApiResult<Value>) -> Response {
    match r {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    }
}

// ------------------------------------------------------------------ subjects

async fn list_subjects(State(reg): Reg, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    let prefix = q.get("subjectPrefix").unwrap_or("");
    ok(json!(reg.list_subjects(
        prefix,
        q.flag("deleted"),
        q.flag("deletedOnly")
    )))
}

async fn list_versions(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    respond(
        reg.list_versions(&subject, q.flag("deleted"), q.flag("deletedOnly"))
            .map(|v| json!(v)),
    )
}

async fn register(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    let run = async {
        let req: SchemaRequest = body(&headers, bytes, reg.limits.request_bytes_max)?;
        let sent = req.schema.clone();
        let r = reg.register(&subject, req, q.flag("normalize")).await?;
        let mut v = r.to_json();
        // Confluent answers `{"id": …}`; newer clients read the rest when present.
        if let Some(m) = v.as_object_mut() {
            let id = m.remove("id").unwrap_or_default();
            let mut out = Map::new();
            out.insert("id".into(), id);
            out.extend(std::mem::take(m));
            // The schema as the client sent it, not as stored: confluent-kafka-python
            // caches this answer's `schema` as the id's schema in every format, and its
            // Protobuf deserializer then reads it as the base64 descriptor it sent
            // (the stored `.proto` text printed from it is not base64).
            if let Some(text) = sent {
                out.insert("schema".into(), text.into());
            }
            v = Value::Object(out);
        }
        Ok(v)
    };
    respond(run.await)
}

async fn lookup(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    let run = || {
        let req: SchemaRequest = body(&headers, bytes, reg.limits.request_bytes_max)?;
        let r = reg.lookup(&subject, &req, q.flag("normalize"), q.flag("deleted"))?;
        with_format(&reg, &q, &r.schema, r.to_json())
    };
    respond(run())
}

async fn get_version(
    State(reg): Reg,
    Path((subject, v)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    respond(
        version(&v)
            .and_then(|v| reg.get_version(&subject, v, q.flag("deleted")))
            .and_then(|r| with_format(&reg, &q, &r.schema, r.to_json())),
    )
}

async fn get_version_raw(
    State(reg): Reg,
    Path((subject, v)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    match version(&v).and_then(|v| reg.get_version(&subject, v, q.flag("deleted"))) {
        Ok(r) => raw_schema(&r.schema.schema, r.schema.schema_type),
        Err(e) => e.into_response(),
    }
}

/// The `/schema` endpoints answer the schema itself: JSON formats as JSON, Protobuf as text.
fn raw_schema(text: &str, ty: SchemaType) -> Response {
    let mut r = (StatusCode::OK, text.to_owned()).into_response();
    let ct = if ty == SchemaType::Protobuf {
        "text/plain; charset=utf-8"
    } else {
        CONTENT_TYPE
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

async fn referenced_by(State(reg): Reg, Path((subject, v)): Path<(String, String)>) -> Response {
    respond(
        version(&v)
            .and_then(|v| reg.referenced_by(&subject, v))
            .map(|ids| json!(ids)),
    )
}

async fn delete_version(
    State(reg): Reg,
    Path((subject, v)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let run = async {
        let v = version(&v)?;
        Ok(json!(
            reg.delete_version(&subject, v, q.flag("permanent")).await?
        ))
    };
    respond(run.await)
}

async fn delete_subject(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    respond(
        reg.delete_subject(&subject, q.flag("permanent"))
            .await
            .map(|v| json!(v)),
    )
}

async fn latest_with_metadata(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let keys = q.all("key");
    let values = q.all("value");
    if keys.len() != values.len() {
        return ApiError::unprocessable("every key needs a value").into_response();
    }
    let wanted: Vec<(String, String)> = keys.into_iter().zip(values).collect();
    respond(
        reg.latest_with_metadata(&subject, &wanted, q.flag("deleted"))
            .and_then(|r| with_format(&reg, &q, &r.schema, r.to_json())),
    )
}

// ------------------------------------------------------------------ schemas

async fn list_schemas(State(reg): Reg, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    let run = || {
        let all = reg.all_schemas(
            q.get("subjectPrefix").unwrap_or(""),
            q.flag("deleted"),
            q.flag("latestOnly"),
        );
        let offset = q.int("offset")?.unwrap_or(0).max(0) as usize;
        let limit = q
            .int("limit")?
            .filter(|l| *l > 0)
            .map(|l| l as usize)
            .unwrap_or(usize::MAX);
        Ok(json!(
            all.iter()
                .skip(offset)
                .take(limit)
                .map(|r| r.to_json())
                .collect::<Vec<_>>()
        ))
    };
    respond(run())
}

async fn schema_by_id(State(reg): Reg, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    let run = || {
        let id = schema_id(&id)?;
        let s = reg.schema_by_id(id)?;
        let mut m = Map::new();
        registry::schema_fields(&mut m, &s);
        if q.flag("fetchMaxId") {
            m.insert("maxId".into(), reg.max_id().into());
        }
        with_format(&reg, &q, &s, Value::Object(m))
    };
    respond(run())
}

async fn schema_by_id_raw(State(reg): Reg, Path(id): Path<String>) -> Response {
    match schema_id(&id).and_then(|id| reg.schema_by_id(id)) {
        Ok(s) => raw_schema(&s.schema, s.schema_type),
        Err(e) => e.into_response(),
    }
}

async fn id_subjects(State(reg): Reg, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(
        schema_id(&id)
            .and_then(|id| reg.id_holders(id, q.flag("deleted")))
            .map(|h| {
                let mut subjects: Vec<String> = h.into_iter().map(|(s, _)| s).collect();
                subjects.dedup();
                json!(subjects)
            }),
    )
}

async fn id_versions(State(reg): Reg, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(
        schema_id(&id)
            .and_then(|id| reg.id_holders(id, q.flag("deleted")))
            .map(|h| {
                json!(
                    h.into_iter()
                        .map(|(s, v)| json!({"subject": s, "version": v}))
                        .collect::<Vec<_>>()
                )
            }),
    )
}

// ------------------------------------------------------------------ compatibility

fn compat_answer(messages: Vec<String>, verbose: bool) -> Value {
    let mut m = Map::new();
    m.insert("is_compatible".into(), messages.is_empty().into());
    if verbose {
        m.insert("messages".into(), json!(messages));
    }
    Value::Object(m)
}

async fn compat_all(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    let run = || {
        let req: SchemaRequest = body(&headers, bytes, reg.limits.request_bytes_max)?;
        let messages = reg.test_compatibility(&subject, None, &req, q.flag("normalize"))?;
        Ok(compat_answer(messages, q.flag("verbose")))
    };
    respond(run())
}

async fn compat_version(
    State(reg): Reg,
    Path((subject, v)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    let run = || {
        let v = version(&v)?;
        let req: SchemaRequest = body(&headers, bytes, reg.limits.request_bytes_max)?;
        let messages = reg.test_compatibility(&subject, Some(v), &req, q.flag("normalize"))?;
        Ok(compat_answer(messages, q.flag("verbose")))
    };
    respond(run())
}

// ------------------------------------------------------------------ config and mode

/// The config as `GET /config` answers it (`compatibilityLevel`).
fn config_json(c: &ConfigValue) -> Value {
    serde_json::to_value(c).unwrap_or_default()
}

/// The config as `PUT /config` answers it (`compatibility`).
fn config_put_json(c: &ConfigValue) -> Value {
    let mut v = config_json(c);
    if let Some(m) = v.as_object_mut()
        && let Some(level) = m.remove("compatibilityLevel")
    {
        m.insert("compatibility".into(), level);
    }
    v
}

async fn get_global_config(State(reg): Reg) -> Response {
    respond(reg.get_config(None, true).map(|c| config_json(&c)))
}

async fn get_config(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    respond(
        reg.get_config(Some(&subject), q.flag("defaultToGlobal"))
            .map(|c| config_json(&c)),
    )
}

async fn put_config_for(
    reg: &Registry,
    subject: Option<&str>,
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Value> {
    let update: ConfigValue = body(headers, bytes, reg.limits.request_bytes_max)?;
    Ok(config_put_json(&reg.set_config(subject, update).await?))
}

async fn put_global_config(
    State(reg): Reg,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    respond(put_config_for(&reg, None, &headers, bytes).await)
}

async fn put_config(
    State(reg): Reg,
    Path(subject): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    respond(put_config_for(&reg, Some(&subject), &headers, bytes).await)
}

async fn delete_global_config(State(reg): Reg) -> Response {
    respond(reg.delete_config(None).await.map(|c| config_json(&c)))
}

async fn delete_config(State(reg): Reg, Path(subject): Path<String>) -> Response {
    respond(
        reg.delete_config(Some(&subject))
            .await
            .map(|c| config_json(&c)),
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

async fn get_global_mode(State(reg): Reg) -> Response {
    respond(reg.get_mode(None, true).map(|m| json!({"mode": m})))
}

async fn get_mode(State(reg): Reg, Path(subject): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(
        reg.get_mode(Some(&subject), q.flag("defaultToGlobal"))
            .map(|m| json!({"mode": m})),
    )
}

async fn put_mode_for(
    reg: &Registry,
    subject: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Value> {
    let b: ModeBody = body(headers, bytes, reg.limits.request_bytes_max)?;
    Ok(json!({"mode": reg.set_mode(subject, &b.mode, q.flag("force")).await?}))
}

async fn put_global_mode(
    State(reg): Reg,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    respond(put_mode_for(&reg, None, &q, &headers, bytes).await)
}

async fn put_mode(
    State(reg): Reg,
    Path(subject): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let q = Query::new(q);
    respond(put_mode_for(&reg, Some(&subject), &q, &headers, bytes).await)
}

async fn delete_mode(State(reg): Reg, Path(subject): Path<String>) -> Response {
    respond(reg.delete_mode(&subject).await.map(|m| json!({"mode": m})))
}

// ------------------------------------------------------------------ contexts, metadata

async fn contexts(State(reg): Reg) -> Response {
    ok(json!(reg.contexts()))
}

async fn delete_context(State(reg): Reg, Path(context): Path<String>) -> Response {
    match reg.delete_context(&context) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn metadata_id(State(reg): Reg) -> Response {
    ok(json!({
        "scope": {
            "path": [],
            "clusters": {
                "kafka-cluster": reg.cluster_id(),
                "schema-registry-cluster": "schema-registry"
            }
        }
    }))
}
