//! The schema registry through its REST API, against a started `medulla serve`: the
//! Confluent contract (ids, versions, configs, modes, deletes, contexts), bad input with
//! Confluent's error codes and nothing stored, a restart that brings everything back,
//! and the same registry against a separately started broker (`--kafka-bootstrap`).

mod common;

use common::Medulla;
use common::registry::{Api, CT, error_code};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

fn record(fields: Value) -> Value {
    json!({"type": "record", "name": "LabResult", "namespace": "org.example", "fields": fields})
}

fn v1() -> Value {
    record(json!([{"name": "patient", "type": "string"}, {"name": "value", "type": "double"}]))
}

fn v2() -> Value {
    record(json!([
        {"name": "patient", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "unit", "type": "string", "default": "mg/dL"}
    ]))
}

/// A broker with the registry. The group coordinator's initial rebalance delay (3 s,
/// Kafka's default) would hold the registry's first write back while the leader
/// election settles: tests do not wait for it.
fn start(dir: &std::path::Path) -> Medulla {
    Medulla::start(
        dir,
        &[
            "--registry-listen",
            "127.0.0.1:0",
            "--override",
            "group.initial.rebalance.delay.ms=0",
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_rest_contract() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let api = Api::new(&m);

    assert_eq!(api.get("/subjects").await, (StatusCode::OK, json!([])));
    let (s, types) = api.get("/schemas/types").await;
    assert_eq!(s, StatusCode::OK);
    for t in ["AVRO", "JSON", "PROTOBUF"] {
        assert!(types.as_array().unwrap().contains(&json!(t)), "{types}");
    }

    // Register, idempotently; one id across subjects.
    let id1 = api.register("labs-value", v1()).await;
    assert_eq!(
        api.register("labs-value", v1()).await,
        id1,
        "the same schema again is the same id"
    );
    assert_eq!(
        api.register("other-value", v1()).await,
        id1,
        "one schema, one id, across subjects"
    );
    assert_eq!(api.get("/subjects/labs-value/versions").await.1, json!([1]));

    // A compatible evolution, then an incompatible one (BACKWARD by default).
    let id2 = api.register("labs-value", v2()).await;
    assert!(id2 > id1);
    let bad =
        record(json!([{"name": "patient", "type": "string"}, {"name": "flag", "type": "boolean"}]));
    let (s, v) = api
        .post(
            "/subjects/labs-value/versions",
            json!({"schema": bad.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), 409);
    let (s, v) = api
        .post(
            "/compatibility/subjects/labs-value/versions/latest?verbose=True",
            json!({"schema": bad.to_string()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["is_compatible"], json!(false));
    assert!(!v["messages"].as_array().unwrap().is_empty(), "{v}");
    let (_, v) = api
        .post(
            "/compatibility/subjects/labs-value/versions",
            json!({"schema": v2().to_string()}),
        )
        .await;
    assert_eq!(v, json!({"is_compatible": true}));

    // Reads: by number, latest, -1, raw, by id.
    for path in [
        "/subjects/labs-value/versions/2",
        "/subjects/labs-value/versions/latest",
        "/subjects/labs-value/versions/-1",
    ] {
        let (s, v) = api.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(
            (v["subject"].clone(), v["version"].clone(), v["id"].clone()),
            (json!("labs-value"), json!(2), json!(id2))
        );
        assert!(
            v.get("schemaType").is_none(),
            "AVRO is left out, as Confluent does"
        );
    }
    let (_, raw) = api.get("/subjects/labs-value/versions/1/schema").await;
    assert_eq!(raw["name"], json!("LabResult"));
    let (_, by_id) = api
        .get(&format!("/schemas/ids/{id1}?fetchMaxId=true"))
        .await;
    let parsed: Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["fields"][0]["name"], json!("patient"));
    assert_eq!(by_id["maxId"], json!(id2));
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}/subjects")).await.1,
        json!(["labs-value", "other-value"])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}/versions")).await.1,
        json!([{"subject": "labs-value", "version": 1}, {"subject": "other-value", "version": 1}])
    );
    let (s, v) = api
        .post("/subjects/labs-value", json!({"schema": v1().to_string()}))
        .await;
    assert_eq!(
        (s, v["version"].clone(), v["id"].clone()),
        (StatusCode::OK, json!(1), json!(id1))
    );

    // Configs: global, per subject (404 / 40408 until set), defaultToGlobal.
    assert_eq!(
        api.get("/config").await.1["compatibilityLevel"],
        json!("BACKWARD")
    );
    let (s, v) = api.get("/config/labs-value").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40408));
    assert_eq!(
        api.get("/config/labs-value?defaultToGlobal=true").await.1["compatibilityLevel"],
        json!("BACKWARD")
    );
    assert_eq!(
        api.put("/config/labs-value", json!({"compatibility": "none"}))
            .await,
        (StatusCode::OK, json!({"compatibility": "NONE"}))
    );
    assert_eq!(
        api.get("/config/labs-value").await.1["compatibilityLevel"],
        json!("NONE")
    );
    let (s, v) = api
        .put("/config", json!({"compatibility": "SIDEWAYS"}))
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42203)
    );
    // Under NONE the incompatible schema goes in.
    api.register("labs-value", bad.clone()).await;

    // Modes: READONLY refuses writes; a subject without its own mode is 40409.
    let (s, v) = api.get("/mode/labs-value").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40409));
    assert_eq!(
        api.put("/mode/labs-value", json!({"mode": "READONLY"}))
            .await
            .1,
        json!({"mode": "READONLY"})
    );
    let (s, v) = api
        .post(
            "/subjects/labs-value/versions",
            json!({"schema": v1().to_string()}),
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42205),
        "READONLY refuses every registration, as Confluent does"
    );
    let (s, v) = api
        .post("/subjects/labs-value", json!({"schema": v1().to_string()}))
        .await;
    assert_eq!(
        (s, v["id"].clone()),
        (StatusCode::OK, json!(id1)),
        "lookups still answer"
    );
    let fresh = record(json!([{"name": "x", "type": "int"}]));
    let (s, v) = api
        .post(
            "/subjects/labs-value/versions",
            json!({"schema": fresh.to_string()}),
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42205)
    );
    assert_eq!(
        api.delete("/mode/labs-value").await.1,
        json!({"mode": "READONLY"})
    );
    let (s, v) = api.put("/mode", json!({"mode": "BANANA"})).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42204)
    );

    // Soft then permanent deletes; ids never handed out again.
    let (s, v) = api
        .delete("/subjects/other-value/versions/1?permanent=true")
        .await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40407));
    assert_eq!(api.delete("/subjects/other-value").await.1, json!([1]));
    assert_eq!(api.get("/subjects").await.1, json!(["labs-value"]));
    assert_eq!(
        api.get("/subjects?deleted=true").await.1,
        json!(["labs-value", "other-value"])
    );
    let (s, v) = api.delete("/subjects/other-value").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40404));
    assert_eq!(
        api.delete("/subjects/other-value?permanent=true").await.1,
        json!([1])
    );
    assert_eq!(
        api.get("/subjects?deleted=true").await.1,
        json!(["labs-value"])
    );
    let max_before = api
        .get(&format!("/schemas/ids/{id1}?fetchMaxId=true"))
        .await
        .1["maxId"]
        .as_i64()
        .unwrap();
    let id_new = api.register("third-value", json!("string")).await;
    assert!(id_new > max_before, "{id_new} > {max_before}");

    // Contexts and subjects with characters that need percent-encoding.
    let ctx_id = api
        .register(":.clinical:lab%2Fresults%20v1", json!("long"))
        .await;
    assert!(ctx_id > id_new);
    let (_, subjects) = api.get("/subjects").await;
    assert!(
        subjects
            .as_array()
            .unwrap()
            .contains(&json!(":.clinical:lab/results v1")),
        "{subjects}"
    );
    assert_eq!(api.get("/contexts").await.1, json!([".", ".clinical"]));

    // Unknown paths and methods answer JSON too.
    let (s, v) = api.get("/nope").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 404));
    let (_, meta) = api.get("/v1/metadata/id").await;
    assert!(
        meta["scope"]["clusters"]["kafka-cluster"].is_string(),
        "{meta}"
    );
    assert!(!m.stderr().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_confluents_errors_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let api = Api::new(&m);
    let url = format!("{}/subjects/s-value/versions", api.base);

    // Not a schema, unknown type, unknown reference: 42201.
    for body in [
        json!({"schema": "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"a\"}]}"}),
        json!({"schema": "{\"type\": \"nonsense\"}"}),
        json!({"schema": "not json"}),
        json!({"schema": "\"string\"", "schemaType": "XML"}),
        json!({"schema": "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"org.Other\"}]}",
               "references": [{"name": "org.Other", "subject": "missing", "version": 1}]}),
    ] {
        let (s, v) = api.post("/subjects/s-value/versions", body.clone()).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            "{body}: {v}"
        );
    }
    // Versions out of range.
    api.register("s-value", json!("string")).await;
    for v in ["0", "-2", "abc", "4294967296"] {
        let (s, body) = api.get(&format!("/subjects/s-value/versions/{v}")).await;
        assert_eq!(
            (s, error_code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            "{v}"
        );
    }
    let (s, v) = api.get("/subjects/s-value/versions/7").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40402));
    let (s, v) = api.get("/subjects/nobody/versions").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40401));
    let (s, v) = api.get("/schemas/ids/9999").await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, 40403));

    // Bodies that are not JSON, the wrong JSON, or the wrong content type.
    let http = Client::new();
    let r = http
        .post(&url)
        .header("Content-Type", CT)
        .body("{\"schema\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r.json::<Value>().await.unwrap()), 400);
    let r = http
        .post(&url)
        .header("Content-Type", CT)
        .body("{\"schema\": \"\\\"int\\\"\", \"bogus\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = http
        .post(&url)
        .header("Content-Type", "text/plain")
        .body("{\"schema\": \"\\\"int\\\"\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&r.json::<Value>().await.unwrap()), 415);

    // An enormous schema: 42209 under the request limit, 413 over it.
    let fields: Vec<Value> = (0..40_000)
        .map(|i| json!({"name": format!("field_{i}"), "type": "string"}))
        .collect();
    let big = json!({"type": "record", "name": "Big", "fields": fields}).to_string();
    assert!(
        big.len() > 900 * 1024 && big.len() < 2 * 1024 * 1024,
        "{}",
        big.len()
    );
    let (s, v) = api
        .post("/subjects/s-value/versions", json!({"schema": big}))
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42209)
    );
    // (Its own client: the server closes a connection whose body it did not read.)
    let huge = json!({"schema": "x".repeat(3 * 1024 * 1024)}).to_string();
    let r = Client::new()
        .post(&url)
        .header("Content-Type", CT)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&r.json::<Value>().await.unwrap()), 413);

    // Nothing of the above was stored.
    assert_eq!(
        api.get("/subjects?deleted=true").await.1,
        json!(["s-value"])
    );
    assert_eq!(api.get("/subjects/s-value/versions").await.1, json!([1]));
    assert!(!m.stderr().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_brings_everything_back_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (subjects, max_id) = {
        let m = start(dir.path());
        let api = Api::new(&m);
        api.register("a-value", v1()).await;
        api.register("a-value", v2()).await;
        api.register("b-value", json!("string")).await;
        let gone = api.register("c-value", json!("bytes")).await;
        api.put("/config", json!({"compatibility": "FULL"})).await;
        api.put("/config/a-value", json!({"compatibility": "NONE"}))
            .await;
        api.put("/mode/b-value", json!({"mode": "READONLY"})).await;
        api.delete("/subjects/c-value").await;
        api.delete("/subjects/c-value?permanent=true").await;
        let subjects = api.get("/schemas?deleted=true").await.1;
        assert_eq!(m.terminate().code(), Some(0));
        (subjects, gone)
    };
    let m = start(dir.path());
    let api = Api::new(&m);
    assert_eq!(api.get("/schemas?deleted=true").await.1, subjects);
    assert_eq!(api.get("/subjects").await.1, json!(["a-value", "b-value"]));
    assert_eq!(
        api.get("/config").await.1["compatibilityLevel"],
        json!("FULL")
    );
    assert_eq!(
        api.get("/config/a-value").await.1["compatibilityLevel"],
        json!("NONE")
    );
    assert_eq!(
        api.get("/mode/b-value").await.1,
        json!({"mode": "READONLY"})
    );
    let next = api.register("d-value", json!("int")).await;
    assert!(
        next > max_id,
        "id {next} must be above every id handed out before ({max_id})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_runs_against_a_separately_started_cluster() {
    let cluster_dir = tempfile::tempdir().unwrap();
    let cluster = Medulla::start(
        cluster_dir.path(),
        &["--override", "group.initial.rebalance.delay.ms=0"],
    );
    let services_dir = tempfile::tempdir().unwrap();
    let services = Medulla::start(
        services_dir.path(),
        &[
            "--kafka-bootstrap",
            &cluster.addr,
            "--registry-listen",
            "127.0.0.1:0",
        ],
    );
    let api = Api::new(&services);
    let id = api.register("ext-value", v1()).await;
    assert_eq!(api.register("ext-value", v2()).await, id + 1);
    assert_eq!(
        api.get("/subjects/ext-value/versions").await.1,
        json!([1, 2])
    );

    // The state is in the cluster's _schemas, compacted: a second registry sees it.
    let topic = cluster
        .data_dir
        .join("topics")
        .join("_schemas")
        .join("topic.json");
    let meta =
        std::fs::read_to_string(&topic).unwrap_or_else(|e| panic!("{}: {e}", topic.display()));
    assert!(meta.contains("compact"), "{meta}");
    drop(services);
    let again_dir = tempfile::tempdir().unwrap();
    let again = Medulla::start(
        again_dir.path(),
        &[
            "--kafka-bootstrap",
            &cluster.addr,
            "--registry-listen",
            "127.0.0.1:0",
        ],
    );
    let api = Api::new(&again);
    assert_eq!(
        api.get("/subjects/ext-value/versions").await.1,
        json!([1, 2])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn several_instances_elect_one_writer_and_forward_writes_to_it() {
    let cluster_dir = tempfile::tempdir().unwrap();
    let cluster = Medulla::start(
        cluster_dir.path(),
        &["--override", "group.initial.rebalance.delay.ms=0"],
    );
    let instance = |dir: &std::path::Path| {
        Medulla::start(
            dir,
            &[
                "--kafka-bootstrap",
                &cluster.addr,
                "--registry-listen",
                "127.0.0.1:0",
            ],
        )
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = instance(d1.path());
    let second = instance(d2.path());
    let (a, b) = (Api::new(&first), Api::new(&second));

    // Writes through either instance land once, in one id sequence: one of them was
    // forwarded to the elected leader.
    let id1 = a.register("shared-value", v1()).await;
    let id2 = b.register("shared-value", v2()).await;
    assert_eq!(id2, id1 + 1);
    let (s, v) = b
        .put("/config/shared-value", json!({"compatibility": "FULL"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for api in [&a, &b] {
        let mut seen = Value::Null;
        for _ in 0..200 {
            seen = api.get("/subjects/shared-value/versions").await.1;
            if seen == json!([1, 2]) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await; // poll with a deadline
        }
        assert_eq!(seen, json!([1, 2]), "{}", api.base);
    }

    // The first instance leaves; the second takes every write from then on.
    assert_eq!(first.terminate().code(), Some(0));
    let id3 = b.register("later-value", json!("string")).await;
    assert!(id3 > id2);
    assert_eq!(
        b.get("/subjects").await.1,
        json!(["later-value", "shared-value"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn medulla_schema_register_get_list_check() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let url = m.registry.clone().unwrap();
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &Value| {
        let p = files.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let (f1, f2) = (write("v1.avsc", &v1()), write("v2.avsc", &v2()));
    let bad = write(
        "bad.avsc",
        &record(json!([{"name": "flag", "type": "boolean"}])),
    );
    let run = |args: &[&str]| {
        let mut all = vec!["schema", "--registry", url.as_str()];
        all.extend_from_slice(args);
        common::cli(&all)
    };

    let (ok, out, err) = run(&["register", "lab results/value", "--file", &f1]);
    assert!(ok, "{err}");
    let id: i64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("an id: {out}"));
    let (ok, out, _) = run(&["check", "lab results/value", "--file", &f2]);
    assert!(ok && out.starts_with("compatible"), "{out}");
    let (ok, out, err) = run(&["check", "lab results/value", "--file", &bad]);
    assert!(!ok && out.starts_with("incompatible"), "{out} {err}");
    let (ok, _, err) = run(&["register", "lab results/value", "--file", &bad]);
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, out, _) = run(&["list"]);
    assert!(ok);
    assert_eq!(out.trim(), "lab results/value");
    let (ok, out, _) = run(&["get", "lab results/value"]);
    assert!(ok);
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (got["id"].as_i64(), got["version"].as_i64()),
        (Some(id), Some(1))
    );
    let (ok, out, _) = run(&["get", "--id", &id.to_string()]);
    assert!(ok && out.contains("LabResult"), "{out}");
    let (ok, _, err) = run(&["get", "nobody"]);
    assert!(!ok && err.contains("40401"), "{err}");
}

/// Protobuf schemas as confluent-kafka-python sends and reads them: a base64
/// `FileDescriptorProto` registers (stored as `.proto` text printed from it), and
/// `?format=serialized` answers any Protobuf schema as one, on every endpoint that
/// answers a schema.
#[tokio::test(flavor = "multi_thread")]
async fn protobuf_descriptors_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let api = Api::new(&m);
    let proto = |subject: &str, schema: &str, refs: Value| {
        let body = json!({"schemaType": "PROTOBUF", "schema": schema, "references": refs});
        let path = format!("/subjects/{subject}/versions");
        let api = &api;
        async move { api.post(&path, body).await }
    };
    let address = "syntax = \"proto3\";\npackage common;\nmessage Address { string city = 1; }";
    let (s, v) = proto("addr", address, json!([])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let refs = json!([{"name": "common/address.proto", "subject": "addr", "version": 1}]);
    let person = "syntax = \"proto3\";\npackage app;\nimport \"common/address.proto\";\nimport \"google/protobuf/timestamp.proto\";\n\n// Someone.\nmessage Person {\n  common.Address home = 1;\n  google.protobuf.Timestamp born = 2;\n}";
    let (s, v) = proto("people-value", person, refs.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id_text = v["id"].as_i64().unwrap();

    // Out: the stored text by default, a base64 descriptor with format=serialized.
    let (s, plain) = api.get(&format!("/schemas/ids/{id_text}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(plain["schema"], json!(person));
    let (s, ser) = api
        .get(&format!("/schemas/ids/{id_text}?format=serialized"))
        .await;
    assert_eq!(s, StatusCode::OK, "{ser}");
    let b64 = ser["schema"].as_str().unwrap().to_owned();
    assert!(
        !b64.is_empty()
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{b64}"
    );
    assert_eq!(ser["schemaType"], json!("PROTOBUF"));
    assert_eq!(ser["references"], refs);
    for path in [
        "/subjects/people-value/versions/1?format=serialized",
        "/subjects/people-value/versions/latest?format=serialized",
    ] {
        let (s, v) = api.get(path).await;
        assert_eq!((s, &v["schema"]), (StatusCode::OK, &json!(b64)), "{path}");
    }
    let (_, dep) = api
        .get("/subjects/addr/versions/1?deleted=true&format=serialized")
        .await;
    assert!(!dep["schema"].as_str().unwrap().contains("syntax"), "{dep}");

    // In: the descriptor registers (its import resolved by the reference, the
    // well-known type built in); the registry keeps .proto text printed from it.
    let (s, v) = proto("people2-value", &b64, refs.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id_desc = v["id"].as_i64().unwrap();
    // The answer carries the schema as sent: Python caches it as the id's schema and
    // its Protobuf deserializer decodes it as base64.
    assert_eq!(v["schema"], json!(b64), "{v}");
    let (_, stored) = api.get(&format!("/schemas/ids/{id_desc}")).await;
    let text = stored["schema"].as_str().unwrap();
    assert!(
        text.contains("message Person") && text.contains("import \"common/address.proto\";"),
        "{text}"
    );
    let (s, again) = proto("people2-value", &b64, refs.clone()).await;
    assert_eq!((s, again["id"].as_i64()), (StatusCode::OK, Some(id_desc)));
    let (s, found) = api
        .post(
            "/subjects/people2-value?normalize=False&deleted=True",
            json!({"schemaType": "PROTOBUF", "schema": b64, "references": refs}),
        )
        .await;
    assert_eq!(
        (s, found["id"].as_i64()),
        (StatusCode::OK, Some(id_desc)),
        "{found}"
    );
    // The printed text is the same schema: compatible both ways with the original.
    let (s, c) = api
        .post(
            "/compatibility/subjects/people-value/versions/latest",
            json!({"schemaType": "PROTOBUF", "schema": text, "references": refs}),
        )
        .await;
    assert_eq!(
        (s, &c["is_compatible"]),
        (StatusCode::OK, &json!(true)),
        "{c}"
    );

    // A descriptor without its import's reference, and base64 that is no descriptor.
    let (s, v) = proto("people3-value", &b64, json!([])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), 42201);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("common/address.proto"),
        "{v}"
    );
    let (s, v) = proto("people3-value", "AAAAAAAA", json!([])).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42201)
    );

    // Other types have no serialized format: the stored text.
    let id = api.register("labs-value", v1()).await;
    let (_, v) = api
        .get(&format!("/schemas/ids/{id}?format=serialized"))
        .await;
    assert_eq!(v["schema"], json!(v1().to_string()));
}

/// IMPORT mode keeps the ids and versions it is given (migrating from another
/// registry), only on an empty registry unless forced; configs carry data-contract
/// defaults and overrides into what is registered.
#[tokio::test(flavor = "multi_thread")]
async fn import_mode_and_data_contract_configs() {
    let dir = tempfile::tempdir().unwrap();
    let m = start(dir.path());
    let api = Api::new(&m);

    assert_eq!(
        api.put("/mode", json!({"mode": "IMPORT"})).await.1,
        json!({"mode": "IMPORT"})
    );
    let (s, v) = api
        .post(
            "/subjects/imported-value/versions",
            json!({"schema": "\"string\"", "id": 100, "version": 7}),
        )
        .await;
    assert_eq!((s, v["id"].clone()), (StatusCode::OK, json!(100)), "{v}");
    let (s, v) = api
        .post(
            "/subjects/imported-value/versions",
            json!({"schema": "\"int\""}),
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42205),
        "IMPORT needs an id: {v}"
    );
    let (s, v) = api
        .post(
            "/subjects/other-value/versions",
            json!({"schema": "\"long\"", "id": 100}),
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42207),
        "id 100 is another schema: {v}"
    );
    assert_eq!(
        api.get("/subjects/imported-value/versions").await.1,
        json!([7])
    );
    assert_eq!(
        api.put("/mode", json!({"mode": "READWRITE"})).await.1,
        json!({"mode": "READWRITE"})
    );
    let (s, v) = api.put("/mode", json!({"mode": "IMPORT"})).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, 42205),
        "not empty: {v}"
    );
    assert_eq!(
        api.put("/mode?force=true", json!({"mode": "IMPORT"}))
            .await
            .0,
        StatusCode::OK
    );
    api.put("/mode", json!({"mode": "READWRITE"})).await;
    let next = api.register("imported-value", json!("bytes")).await;
    assert_eq!(next, 101, "ids continue above the imported ones");
    assert_eq!(
        api.get("/subjects/imported-value/versions").await.1,
        json!([7, 8])
    );

    // Data contracts: the config's default metadata and override rule set.
    let (s, v) = api
        .put(
            "/config/phi-value",
            json!({
                "defaultMetadata": {"properties": {"owner": "lab"}},
                "overrideRuleSet": {"domainRules": [{"name": "encrypt-phi", "kind": "TRANSFORM",
                    "mode": "WRITEREAD", "type": "ENCRYPT", "tags": ["PHI"],
                    "params": {"encrypt.kek.name": "k1"}}]}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let schema = record(json!([{"name": "mrn", "type": "string", "confluent:tags": ["PHI"]}]));
    api.register("phi-value", schema).await;
    let (_, latest) = api.get("/subjects/phi-value/versions/latest").await;
    assert_eq!(
        latest["metadata"]["properties"]["owner"],
        json!("lab"),
        "{latest}"
    );
    assert_eq!(
        latest["ruleSet"]["domainRules"][0]["type"],
        json!("ENCRYPT"),
        "{latest}"
    );
    let stored: Value = serde_json::from_str(latest["schema"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored["fields"][0]["confluent:tags"],
        json!(["PHI"]),
        "field tags are kept"
    );
    let (s, found) = api
        .get("/subjects/phi-value/metadata?key=owner&value=lab")
        .await;
    assert_eq!((s, found["version"].clone()), (StatusCode::OK, json!(1)));
}
