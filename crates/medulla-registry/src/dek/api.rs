//! The DEK Registry's REST routes (`/dek-registry/v1/keks…`), as Confluent's
//! `DekRegistryResource` serves them, including the newer `POST
//! /keks/{name}/deks/{subject}` that confluent-kafka-python 2.16 tries first.
//!
//! Bodies and query parameters are read with the schema registry's helpers
//! (`crate::api::{body, Query}`): same content types, same 400 / 413 / 415 / 422 for
//! bodies, same case-insensitive booleans (Python clients send `deleted=False`).
//! Writes answer 204 with no body where Confluent does. The `context` query parameter of
//! newer clients is accepted and ignored: KEKs live in one namespace here.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::records::Algorithm;
use super::{CreateDek, CreateKek, DekRegistry, DekVersion, UpdateKek};
use crate::api::{Query, body, json_response};
use crate::error::{ApiError, ApiResult};

type Dek = State<Arc<DekRegistry>>;

/// The DEK Registry's routes; merged into the schema registry's router (`api::router`),
/// which adds the fallbacks and the body limit.
pub fn router(dek: Arc<DekRegistry>) -> Router {
    Router::new()
        .route("/dek-registry/v1/keks", get(list_keks).post(create_kek))
        .route(
            "/dek-registry/v1/keks/{name}",
            get(get_kek).put(put_kek).delete(delete_kek),
        )
        .route("/dek-registry/v1/keks/{name}/undelete", post(undelete_kek))
        .route(
            "/dek-registry/v1/keks/{name}/deks",
            get(list_deks).post(create_dek),
        )
        .route(
            "/dek-registry/v1/keks/{name}/deks/{subject}",
            get(get_dek).post(create_dek_for_subject).delete(delete_dek),
        )
        .route(
            "/dek-registry/v1/keks/{name}/deks/{subject}/undelete",
            post(undelete_dek),
        )
        .route(
            "/dek-registry/v1/keks/{name}/deks/{subject}/versions",
            get(dek_versions),
        )
        .route(
            "/dek-registry/v1/keks/{name}/deks/{subject}/versions/{version}",
            get(get_dek_version).delete(delete_dek_version),
        )
        .route(
            "/dek-registry/v1/keks/{name}/deks/{subject}/versions/{version}/undelete",
            post(undelete_dek_version),
        )
        .with_state(dek)
}

fn respond(r: ApiResult<Value>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

fn no_content(r: ApiResult<()>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `?algorithm=`: Confluent's `DekFormat` names; absent = AES256_GCM. A name that is
/// not one is Jersey's answer to an unconvertible query parameter, 404.
fn algorithm(q: &Query) -> ApiResult<Algorithm> {
    match q.get("algorithm") {
        None | Some("") => Ok(Algorithm::DEFAULT),
        Some(a) => Algorithm::parse(a).ok_or_else(|| ApiError::not_found("HTTP 404 Not Found")),
    }
}

// ------------------------------------------------------------------ KEKs

async fn list_keks(State(dek): Dek, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(Ok(dek.kek_names(q.flag("deleted")).into()))
}

async fn create_kek(
    State(dek): Dek,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let limit = dek.limits_request_bytes();
    let r = async {
        let req: CreateKek = body(&headers, bytes, limit)?;
        Ok::<_, ApiError>(dek.create_kek(req).await?.to_entity())
    };
    respond(r.await)
}

async fn get_kek(State(dek): Dek, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(dek.get_kek(&name, q.flag("deleted")).map(|k| k.to_entity()))
}

async fn put_kek(
    State(dek): Dek,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let limit = dek.limits_request_bytes();
    let r = async {
        let req: UpdateKek = body(&headers, bytes, limit)?;
        Ok::<_, ApiError>(dek.update_kek(&name, req).await?.to_entity())
    };
    respond(r.await)
}

async fn delete_kek(State(dek): Dek, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    no_content(dek.delete_kek(&name, q.flag("permanent")).await)
}

async fn undelete_kek(State(dek): Dek, Path(name): Path<String>) -> Response {
    no_content(dek.undelete_kek(&name).await)
}

// ------------------------------------------------------------------ DEKs

async fn list_deks(State(dek): Dek, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = Query::new(q);
    respond(dek.dek_subjects(&name, q.flag("deleted")).map(Value::from))
}

async fn create_dek(
    State(dek): Dek,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let limit = dek.limits_request_bytes();
    let r = async {
        let req: CreateDek = body(&headers, bytes, limit)?;
        Ok::<_, ApiError>(dek.create_dek(&name, None, req).await?.to_entity())
    };
    respond(r.await)
}

async fn create_dek_for_subject(
    State(dek): Dek,
    Path((name, subject)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let limit = dek.limits_request_bytes();
    let r = async {
        let req: CreateDek = body(&headers, bytes, limit)?;
        Ok::<_, ApiError>(
            dek.create_dek(&name, Some(&subject), req)
                .await?
                .to_entity(),
        )
    };
    respond(r.await)
}

async fn get_dek(
    State(dek): Dek,
    Path((name, subject)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = algorithm(&q)
        .and_then(|a| dek.get_dek(&name, &subject, a, DekVersion::Number(1), q.flag("deleted")));
    respond(r.map(|d| d.to_entity()))
}

async fn dek_versions(
    State(dek): Dek,
    Path((name, subject)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = algorithm(&q).and_then(|a| dek.dek_versions(&name, &subject, a, q.flag("deleted")));
    respond(r.map(Value::from))
}

async fn get_dek_version(
    State(dek): Dek,
    Path((name, subject, version)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = DekVersion::parse(&version).and_then(|v| {
        let a = algorithm(&q)?;
        dek.get_dek(&name, &subject, a, v, q.flag("deleted"))
    });
    respond(r.map(|d| d.to_entity()))
}

async fn delete_dek(
    State(dek): Dek,
    Path((name, subject)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = async {
        let a = algorithm(&q)?;
        dek.delete_dek(&name, &subject, a, None, q.flag("permanent"))
            .await
    };
    no_content(r.await)
}

async fn delete_dek_version(
    State(dek): Dek,
    Path((name, subject, version)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = async {
        let v = DekVersion::parse(&version)?;
        let a = algorithm(&q)?;
        dek.delete_dek(&name, &subject, a, Some(v), q.flag("permanent"))
            .await
    };
    no_content(r.await)
}

async fn undelete_dek(
    State(dek): Dek,
    Path((name, subject)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = async {
        let a = algorithm(&q)?;
        dek.undelete_dek(&name, &subject, a, None).await
    };
    no_content(r.await)
}

async fn undelete_dek_version(
    State(dek): Dek,
    Path((name, subject, version)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::new(q);
    let r = async {
        let v = DekVersion::parse(&version)?;
        let a = algorithm(&q)?;
        dek.undelete_dek(&name, &subject, a, Some(v)).await
    };
    no_content(r.await)
}
