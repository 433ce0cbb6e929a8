//! Data-driven JSON Schema compatibility: every case of
//! `tests/data/schema-compat/jsonschema.jsonl` (Karapace's test suite: a reader, a
//! writer and the BACKWARD verdict) must agree with `JsonSchema::read_compatibility`,
//! except the cases listed in [`EXCEPTIONS`], where Confluent decides otherwise and
//! Confluent wins.

use std::path::PathBuf;

use medulla_registry::schema::json::JsonSchema;
use serde_json::Value;

/// One case, or a family of cases, where Confluent's verdict differs from Karapace's.
/// `reader` / `writer` are compact JSON as serde_json writes it, or `"*"` for any.
struct Exception {
    test: &'static str,
    reader: &'static str,
    writer: &'static str,
    /// Confluent's BACKWARD verdict, which we follow.
    confluent_compatible: bool,
}

/// Where Karapace and Confluent disagree. Confluent's `SchemaDiff.compare(original =
/// writer, update = reader)` decides every one of these:
const EXCEPTIONS: &[Exception] = &[
    // A `true` reader accepts every value. Karapace treats `true` as an object schema
    // and so rejects every non-object writer; Confluent's `SchemaDiff.compare` returns
    // no difference when the classes differ and `update instanceof EmptySchema`
    // (TrueSchema extends EmptySchema). 59 cases.
    Exception {
        test: "test_true_schema_is_compatible_with_object",
        reader: "true",
        writer: "*",
        confluent_compatible: true,
    },
    // Same rule, writers `{"not":{}}` and `{"not":true}`.
    Exception {
        test: "test_true_and_false_schemas",
        reader: "true",
        writer: "*",
        confluent_compatible: true,
    },
    // A `false` writer produced no data, so anything reads it: `SchemaDiff.compare`
    // returns no difference when `original instanceof FalseSchema`. Karapace compares
    // the reader's assertions anyway.
    Exception {
        test: "test_true_and_false_schemas",
        reader: "*",
        writer: "false",
        confluent_compatible: true,
    },
    Exception {
        test: "test_extra_field_with_closed_model_is_incompatible",
        reader: "*",
        writer: "false",
        confluent_compatible: true,
    },
    // The converse: `false` (FalseSchema) reading what `true` (TrueSchema) wrote is a
    // class change that neither exemption covers, so TYPE_CHANGED. Karapace's own test
    // keeps the incompatible assertion commented out and asserts compatible.
    Exception {
        test: "test_boolean_schemas_are_backward_compatible",
        reader: "false",
        writer: "true",
        confluent_compatible: false,
    },
    // A property with the empty schema `{}` added to an open content model:
    // `ObjectSchemaDiff.compareProperties` records
    // PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL, a compatible change
    // (the property could hold anything before and still can). Confluent does not
    // compare `propertyNames` at all.
    Exception {
        test: "test_object_properties",
        reader: r#"{"type":"object","properties":{"a":{}}}"#,
        writer: r#"{"type":"object"}"#,
        confluent_compatible: true,
    },
    Exception {
        test: "test_property_names",
        reader: r#"{"type":"object","properties":{"a":{}}}"#,
        writer: r#"{"type":"object","propertyNames":{"pattern":"a*"}}"#,
        confluent_compatible: true,
    },
    // Property `b` removed, but the reader's patternProperties `^a*` matches "b"
    // (`Matcher.find` accepts the empty match) with schema `{}`:
    // PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, and lifting
    // `additionalProperties: false` is ADDITIONAL_PROPERTIES_ADDED; both compatible.
    Exception {
        test: "test_pattern_properties",
        reader: r#"{"type":"object","patternProperties":{"^a*":{}}}"#,
        writer: r#"{"type":"object","additionalProperties":false,"properties":{"b":{"type":"integer"}}}"#,
        confluent_compatible: true,
    },
];

fn matches(pattern: &str, text: &str) -> bool {
    pattern == "*" || pattern == text
}

fn data_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/schema-compat/jsonschema.jsonl")
}

fn parse(what: &str, value: &Value) -> Result<JsonSchema, String> {
    JsonSchema::parse(&value.to_string(), &[]).map_err(|e| format!("{what} does not parse: {e}"))
}

#[test]
fn jsonschema_compat_vectors() {
    let path = data_file();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut disagreements = Vec::new();
    let mut cases = 0;
    let mut used_exceptions = vec![false; EXCEPTIONS.len()];
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        cases += 1;
        let case: Value = serde_json::from_str(line).expect("a JSON line");
        let test = case["test"].as_str().unwrap_or("?");
        let (reader, writer) = (&case["reader"], &case["writer"]);
        let karapace = case["compatible"].as_bool().expect("compatible is a bool");
        let (reader_text, writer_text) = (reader.to_string(), writer.to_string());
        let exception = EXCEPTIONS.iter().position(|e| {
            e.test == test && matches(e.reader, &reader_text) && matches(e.writer, &writer_text)
        });
        let expected = match exception {
            Some(i) => {
                used_exceptions[i] = true;
                EXCEPTIONS[i].confluent_compatible
            }
            None => karapace,
        };
        let outcome = parse("reader", reader)
            .and_then(|r| parse("writer", writer).map(|w| (r, w)))
            .map(|(r, w)| JsonSchema::read_compatibility(&r, &w));
        match outcome {
            Err(e) => disagreements.push(format!("line {}: {test}: {e}", line_no + 1)),
            Ok(messages) if messages.is_empty() != expected => disagreements.push(format!(
                "line {}: {test}: expected compatible={expected}, got {messages:?}\n  reader {reader_text}\n  writer {writer_text}",
                line_no + 1
            )),
            Ok(_) => {}
        }
    }
    for (i, used) in used_exceptions.iter().enumerate() {
        if !used {
            disagreements.push(format!(
                "exception {i} ({}) matches no case",
                EXCEPTIONS[i].test
            ));
        }
    }
    assert_eq!(cases, 309, "the data file changed");
    assert!(
        disagreements.is_empty(),
        "{} of {cases} cases disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
