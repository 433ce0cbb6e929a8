//! Compatibility verdicts shared with the other registries (from Karapace's tests,
//! checked against Confluent's behaviour): every case of
//! `tests/data/schema-compat/{avro,protobuf}.jsonl` (a copy of the shared data) must
//! agree with our checker, or be listed in the format's exceptions table with the reason.

use std::path::PathBuf;

use medulla_registry::schema::{ParsedSchema, SchemaType};
use serde_json::Value;

struct Case {
    line: usize,
    reader: String,
    writer: String,
    compatible: bool,
    test: String,
}

fn load(file: &str, text_of: fn(&Value) -> String) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/schema-compat")
        .join(file);
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    data.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            Case {
                line: i + 1,
                reader: text_of(&v["reader"]),
                writer: text_of(&v["writer"]),
                compatible: v["compatible"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("line {}", i + 1)),
                test: v["test"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// Runs every case; a side that does not parse makes the verdict "incompatible".
/// Fails listing every disagreement not in `exceptions` (line numbers, 1-based).
fn run(ty: SchemaType, cases: &[Case], exceptions: &[(usize, &str)]) {
    let mut disagreements = Vec::new();
    for c in cases {
        let reader = ParsedSchema::parse(ty, &c.reader, &[]);
        let writer = ParsedSchema::parse(ty, &c.writer, &[]);
        let (ours, why) = match (&reader, &writer) {
            (Ok(r), Ok(w)) => {
                let msgs = ParsedSchema::read_compatibility(r, w);
                (msgs.is_empty(), msgs.join("; "))
            }
            (Err(e), _) => (false, format!("reader does not parse: {e}")),
            (_, Err(e)) => (false, format!("writer does not parse: {e}")),
        };
        let excepted = exceptions.iter().any(|(line, _)| *line == c.line);
        if (ours != c.compatible) != excepted {
            disagreements.push(format!(
                "line {} ({}): expected compatible={}, got {}{}{}\n  reader: {}\n  writer: {}",
                c.line,
                c.test,
                c.compatible,
                ours,
                if why.is_empty() { "" } else { ": " },
                why,
                c.reader,
                c.writer
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

#[test]
fn avro_vectors() {
    // reader and writer are JSON values: the schema text is their JSON.
    let cases = load("avro.jsonl", |v| v.to_string());
    assert_eq!(cases.len(), 156);
    run(SchemaType::Avro, &cases, AVRO_EXCEPTIONS);
}

/// Cases where Confluent's verdict differs from the file's (Karapace's), by line.
const AVRO_EXCEPTIONS: &[(usize, &str)] = &[(
    145,
    // Reader `{"type":"enum","default":"B","symbols":["A"]}`: Karapace accepts it,
    // Java Avro's EnumSchema constructor rejects a default outside the symbols
    // ("The Enum Default: B is not in the enum symbol set"), so Confluent answers
    // 42201 invalid schema; we refuse it too (apache-avro agrees with Java).
    "enum default not among the symbols: invalid for Confluent",
)];

#[test]
fn protobuf_vectors() {
    // reader and writer are `.proto` texts.
    let cases = load("protobuf.jsonl", |v| v.as_str().unwrap_or("").to_string());
    assert_eq!(cases.len(), 17);
    run(SchemaType::Protobuf, &cases, PROTOBUF_EXCEPTIONS);
}

/// Cases where Confluent's verdict differs from the file's (Karapace's), by line.
/// Confluent's rules are its `protobuf.diff` package: `SchemaDiff.COMPATIBLE_CHANGES`
/// lists FIELD_ADDED and FIELD_REMOVED but not PACKAGE_CHANGED.
const PROTOBUF_EXCEPTIONS: &[(usize, &str)] = &[
    // Renumbering a field (age = 2 -> age = 3) is, by number, one field removed and
    // one added: both compatible changes for Confluent (proto3 has no required
    // fields); Karapace calls it incompatible.
    (
        3,
        "field number changed: FIELD_REMOVED + FIELD_ADDED, compatible for Confluent",
    ),
    (
        13,
        "field number changed: FIELD_REMOVED + FIELD_ADDED, compatible for Confluent",
    ),
    // Both sides declare `int32 hodofield = 0;`. Field number 0 is invalid protobuf:
    // protoc and protox reject it, and so does Confluent when it builds the
    // descriptor ("Field numbers must be positive integers"), so the schema is
    // refused as invalid; Karapace's parser lets it through.
    (16, "field number 0: an invalid schema for Confluent"),
    // Package a1 -> a2: Confluent reports PACKAGE_CHANGED, which is not among its
    // compatible changes; Karapace accepts it.
    (
        17,
        "package changed: PACKAGE_CHANGED is incompatible for Confluent",
    ),
];
