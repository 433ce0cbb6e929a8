//! A small client of the schema registry's REST API for the registry tests.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use super::Medulla;

/// Confluent's content type.
pub const CT: &str = "application/vnd.schemaregistry.v1+json";

pub struct Api {
    pub base: String,
    http: Client,
    /// The `Authorization` header sent with every request, if any.
    auth: Option<String>,
}

impl Api {
    pub fn new(m: &Medulla) -> Api {
        Api {
            base: m.registry.clone().expect("registry running"),
            http: Client::new(),
            auth: None,
        }
    }

    /// The same registry, with `Authorization: <header>` on every request.
    #[allow(dead_code)] // each test binary uses its own part of the harness
    pub fn with_auth(&self, header: impl Into<String>) -> Api {
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
            auth: Some(header.into()),
        }
    }

    /// Any request with raw body bytes (sent with Confluent's content type).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", CT).body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send_raw(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let b = serde_json::to_vec(&body).unwrap();
        self.send_raw(Method::POST, path, Some(b)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let b = serde_json::to_vec(&body).unwrap();
        self.send_raw(Method::PUT, path, Some(b)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send_raw(Method::DELETE, path, None).await
    }
    /// Registers and expects success; returns the id.
    pub async fn register(&self, subject: &str, schema: Value) -> i64 {
        let (s, v) = self
            .post(
                &format!("/subjects/{subject}/versions"),
                json!({"schema": schema.to_string()}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["id"].as_i64().expect("id")
    }
}

/// The `error_code` of an error body (which must have a message too).
pub fn error_code(v: &Value) -> i64 {
    assert!(v["message"].is_string(), "an error body has a message: {v}");
    v["error_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error_code in {v}"))
}
