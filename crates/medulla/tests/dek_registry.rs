//! The DEK Registry (`/dek-registry/v1`) through its REST API against a started
//! `medulla serve`: Confluent's entities and error codes for unknown keys, duplicates,
//! the soft-then-permanent delete order (KEKs refuse to go while DEKs use them),
//! undelete, bad bodies and names, and a restart that brings every key back from
//! `_dek_registry_keys`.

mod common;

use common::Medulla;
use common::registry::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The error code of an error answer, checking its status.
fn code(answer: (StatusCode, Value), status: StatusCode) -> i64 {
    let (s, v) = answer;
    assert_eq!(s, status, "{v}");
    v["error_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error_code in {v}"))
}

fn start(dir: &std::path::Path) -> Medulla {
    Medulla::start(dir, &["--registry-listen", "127.0.0.1:0"])
}

const KEKS: &str = "/dek-registry/v1/keks";

fn kek_body(name: &str) -> Value {
    json!({"name": name, "kmsType": "local-kms", "kmsKeyId": "key-1", "shared": false})
}

fn dek_body(subject: &str) -> Value {
    json!({"subject": subject, "version": 1, "algorithm": "AES256_GCM",
           "encryptedKeyMaterial": "c2VjcmV0LXdyYXBwZWQta2V5"})
}

#[tokio::test(flavor = "multi_thread")]
async fn dek_registry_rest_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let api = Api::new(&m);
    let ok = StatusCode::OK;
    let not_found = StatusCode::NOT_FOUND;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // Unknown KEK: 40470 everywhere it is named.
    assert_eq!(api.get(KEKS).await, (ok, json!([])));
    assert_eq!(
        code(api.get(&format!("{KEKS}/nope")).await, not_found),
        40470
    );
    assert_eq!(
        code(api.get(&format!("{KEKS}/nope/deks")).await, not_found),
        40470
    );
    assert_eq!(
        code(
            api.post(&format!("{KEKS}/nope/deks"), dek_body("s")).await,
            not_found
        ),
        40470
    );
    assert_eq!(
        code(api.delete(&format!("{KEKS}/nope")).await, not_found),
        40470
    );

    // Create; the same again is 409 40971, as is a different key under the same name.
    let (s, kek) = api.post(KEKS, kek_body("k1")).await;
    assert_eq!(s, ok, "{kek}");
    assert_eq!(kek["name"], "k1");
    assert_eq!(kek["kmsType"], "local-kms");
    assert_eq!(kek["kmsKeyId"], "key-1");
    assert_eq!(kek["shared"], false);
    assert!(kek["ts"].as_i64().is_some(), "{kek}");
    assert!(kek.get("deleted").is_none(), "{kek}");
    assert_eq!(
        code(api.post(KEKS, kek_body("k1")).await, StatusCode::CONFLICT),
        40971
    );
    let mut other = kek_body("k1");
    other["kmsKeyId"] = json!("key-2");
    assert_eq!(
        code(api.post(KEKS, other).await, StatusCode::CONFLICT),
        40971
    );
    assert_eq!(api.get(KEKS).await, (ok, json!(["k1"])));
    let (s, got) = api.get(&format!("{KEKS}/k1")).await;
    assert_eq!((s, got), (ok, kek.clone()));

    // Bad bodies and names: nothing stored.
    let (s, v) = api
        .send_raw(reqwest::Method::POST, KEKS, Some(b"{not json".to_vec()))
        .await;
    assert_eq!(
        (s, v["error_code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(400))
    );
    for bad in [
        json!({"kmsType": "local-kms", "kmsKeyId": "x"}),
        json!({"name": "9starts-with-digit", "kmsType": "local-kms", "kmsKeyId": "x"}),
        json!({"name": "has space", "kmsType": "local-kms", "kmsKeyId": "x"}),
        json!({"name": "a".repeat(65), "kmsType": "local-kms", "kmsKeyId": "x"}),
        json!({"name": "k2", "kmsType": "local-kms"}),
        json!({"name": "k2", "kmsType": "local-kms", "kmsKeyId": ""}),
        json!({"name": "k2", "kmsKeyId": "x"}),
    ] {
        assert_eq!(
            code(api.post(KEKS, bad.clone()).await, unprocessable),
            42271,
            "{bad}"
        );
    }
    let (s, v) = api.post(KEKS, json!({"name": 5})).await;
    assert_eq!(s, unprocessable, "{v}");
    assert_eq!(api.get(KEKS).await, (ok, json!(["k1"])));

    // DEKs: create (both path forms), duplicate, versions, latest, algorithm.
    let (s, dek) = api
        .post(&format!("{KEKS}/k1/deks"), dek_body("orders-value"))
        .await;
    assert_eq!(s, ok, "{dek}");
    assert_eq!(dek["kekName"], "k1");
    assert_eq!(dek["subject"], "orders-value");
    assert_eq!(dek["version"], 1);
    assert_eq!(dek["algorithm"], "AES256_GCM");
    assert_eq!(dek["encryptedKeyMaterial"], "c2VjcmV0LXdyYXBwZWQta2V5");
    assert!(dek.get("keyMaterial").is_none());
    assert_eq!(
        code(
            api.post(&format!("{KEKS}/k1/deks"), dek_body("orders-value"))
                .await,
            StatusCode::CONFLICT
        ),
        40971
    );
    let mut v2 = dek_body("orders-value");
    v2["version"] = json!(2);
    let (s, _) = api.post(&format!("{KEKS}/k1/deks/orders-value"), v2).await;
    assert_eq!(s, ok);
    assert_eq!(
        code(
            api.post(&format!("{KEKS}/k1/deks/other"), dek_body("orders-value"))
                .await,
            unprocessable
        ),
        42271
    );
    let mut no_material = dek_body("s2");
    no_material
        .as_object_mut()
        .unwrap()
        .remove("encryptedKeyMaterial");
    assert_eq!(
        code(
            api.post(&format!("{KEKS}/k1/deks"), no_material).await,
            unprocessable
        ),
        42271
    );
    assert_eq!(
        api.get(&format!("{KEKS}/k1/deks")).await,
        (ok, json!(["orders-value"]))
    );
    assert_eq!(
        api.get(&format!("{KEKS}/k1/deks/orders-value/versions"))
            .await,
        (ok, json!([1, 2]))
    );
    assert_eq!(
        api.get(&format!("{KEKS}/k1/deks/orders-value")).await.1["version"],
        1
    );
    for latest in ["latest", "-1"] {
        let path = format!("{KEKS}/k1/deks/orders-value/versions/{latest}?deleted=False");
        assert_eq!(api.get(&path).await.1["version"], 2, "{latest}");
    }
    assert_eq!(
        code(
            api.get(&format!("{KEKS}/k1/deks/orders-value/versions/0"))
                .await,
            unprocessable
        ),
        42202
    );
    assert_eq!(
        code(
            api.get(&format!("{KEKS}/k1/deks/orders-value?algorithm=AES128_GCM"))
                .await,
            not_found
        ),
        40470
    );
    assert_eq!(
        code(
            api.get(&format!("{KEKS}/k1/deks/unknown-subject")).await,
            not_found
        ),
        40470
    );

    // Delete order: a KEK in use cannot go; a DEK must be soft-deleted before it is
    // permanently deleted; a soft-deleted KEK must be undeleted before its DEKs are.
    assert_eq!(
        code(api.delete(&format!("{KEKS}/k1")).await, unprocessable),
        42272
    );
    let dek_path = format!("{KEKS}/k1/deks/orders-value");
    assert_eq!(
        code(
            api.delete(&format!("{dek_path}?permanent=true")).await,
            not_found
        ),
        40471
    );
    assert_eq!(api.delete(&dek_path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(code(api.get(&dek_path).await, not_found), 40470);
    let (s, gone) = api.get(&format!("{dek_path}?deleted=true")).await;
    assert_eq!((s, &gone["deleted"]), (ok, &json!(true)), "{gone}");
    assert_eq!(api.get(&format!("{KEKS}/k1/deks")).await.1, json!([]));
    assert_eq!(
        api.get(&format!("{KEKS}/k1/deks?deleted=true")).await.1,
        json!(["orders-value"])
    );
    // Soft-deleted DEKs still hold the KEK against a permanent delete.
    assert_eq!(
        api.delete(&format!("{KEKS}/k1")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(code(api.get(&format!("{KEKS}/k1")).await, not_found), 40470);
    assert_eq!(
        api.get(&format!("{KEKS}/k1?deleted=true")).await.1["deleted"],
        true
    );
    assert_eq!(api.get(KEKS).await.1, json!([]));
    assert_eq!(
        api.get(&format!("{KEKS}?deleted=true")).await.1,
        json!(["k1"])
    );
    assert_eq!(
        code(
            api.delete(&format!("{KEKS}/k1?permanent=true")).await,
            unprocessable
        ),
        42272
    );
    assert_eq!(
        code(
            api.post(&format!("{dek_path}/undelete"), json!({})).await,
            not_found
        ),
        40472
    );
    // Undelete the KEK, then one DEK version, then the rest.
    assert_eq!(
        api.post(&format!("{KEKS}/k1/undelete"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.post(&format!("{dek_path}/versions/1/undelete"), json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get(&format!("{dek_path}/versions")).await.1, json!([1]));
    assert_eq!(
        api.post(&format!("{dek_path}/undelete"), json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("{dek_path}/versions")).await.1,
        json!([1, 2])
    );

    // Permanent deletes, in order: DEK versions, then the KEK.
    assert_eq!(api.delete(&dek_path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        api.delete(&format!("{dek_path}/versions/2?permanent=true"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("{dek_path}/versions?deleted=true"))
            .await
            .1,
        json!([1])
    );
    assert_eq!(
        api.delete(&format!("{dek_path}?permanent=true")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        code(
            api.get(&format!("{dek_path}?deleted=true")).await,
            not_found
        ),
        40470
    );
    assert_eq!(
        code(
            api.delete(&format!("{KEKS}/k1?permanent=true")).await,
            not_found
        ),
        40471
    );
    assert_eq!(
        api.delete(&format!("{KEKS}/k1")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete(&format!("{KEKS}/k1?permanent=true")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        code(api.get(&format!("{KEKS}/k1?deleted=true")).await, not_found),
        40470
    );
    // Gone for good: the name is free again.
    let (s, v) = api.post(KEKS, other_kek("k1")).await;
    assert_eq!(s, ok, "{v}");

    // Update: doc, props, shared; unknown is 40470.
    let (s, v) = api
        .put(
            &format!("{KEKS}/k1"),
            json!({"doc": "rotated", "kmsProps": {"b": "2", "a": "1"}}),
        )
        .await;
    assert_eq!(s, ok, "{v}");
    assert_eq!(v["doc"], "rotated");
    assert_eq!(v["kmsProps"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        code(
            api.put(&format!("{KEKS}/nope"), json!({"doc": "x"})).await,
            not_found
        ),
        40470
    );
    assert!(!m.stderr().contains("panicked"));
}

fn other_kek(name: &str) -> Value {
    json!({"name": name, "kmsType": "aws-kms", "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/2"})
}

#[tokio::test(flavor = "multi_thread")]
async fn dek_registry_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (keks, dek) = {
        let m = start(dir.path());
        let api = Api::new(&m);
        assert_eq!(api.post(KEKS, kek_body("kept")).await.0, StatusCode::OK);
        assert_eq!(api.post(KEKS, kek_body("soft")).await.0, StatusCode::OK);
        assert_eq!(api.post(KEKS, kek_body("gone")).await.0, StatusCode::OK);
        let (s, dek) = api
            .post(&format!("{KEKS}/kept/deks"), dek_body("t-value"))
            .await;
        assert_eq!(s, StatusCode::OK);
        api.delete(&format!("{KEKS}/soft")).await;
        api.delete(&format!("{KEKS}/gone")).await;
        api.delete(&format!("{KEKS}/gone?permanent=true")).await;
        let keks = api.get(&format!("{KEKS}?deleted=true")).await.1;
        assert_eq!(keks, json!(["kept", "soft"]));
        assert_eq!(m.terminate().code(), Some(0));
        (keks, dek)
    };
    let m = start(dir.path());
    let api = Api::new(&m);
    assert_eq!(api.get(&format!("{KEKS}?deleted=true")).await.1, keks);
    assert_eq!(api.get(KEKS).await.1, json!(["kept"]));
    assert_eq!(
        api.get(&format!("{KEKS}/kept/deks/t-value")).await,
        (StatusCode::OK, dek)
    );
}
