//! Unit tests of JSON Schema parsing, the stored forms, references and compatibility.

use proptest::prelude::*;

use super::*;

fn dep(name: &str, schema: &str) -> Dependency {
    Dependency {
        name: name.to_string(),
        schema: schema.to_string(),
    }
}

fn parse(text: &str) -> JsonSchema {
    JsonSchema::parse(text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Incompatibilities of `reader` reading `writer`.
fn check(reader: &str, writer: &str) -> Vec<String> {
    JsonSchema::read_compatibility(&parse(reader), &parse(writer))
}

const ADDRESS: &str =
    r#"{"type":"object","properties":{"street":{"type":"string"}},"additionalProperties":false}"#;

#[test]
fn forms_and_title() {
    let s = parse(r#"{ "title": "Person", "type": "object", "properties": { "b": {}, "a": {} } }"#);
    assert_eq!(
        s.canonical(),
        r#"{"title":"Person","type":"object","properties":{"b":{},"a":{}}}"#
    );
    assert_eq!(
        s.normalized(),
        r#"{"properties":{"a":{},"b":{}},"title":"Person","type":"object"}"#
    );
    assert_eq!(s.record_name().as_deref(), Some("Person"));
    assert_eq!(parse("true").record_name(), None);
    assert_eq!(parse("true").canonical(), "true");
}

#[test]
fn invalid_schemas_are_errors() {
    for text in [
        "",
        "{",
        "5",
        r#""string""#,
        r#"{"type": 5}"#,
        r#"{"type": "strin"}"#,
        r#"{"properties": []}"#,
        r#"{"minLength": -1}"#,
        r#"{"$schema": "http://json-schema.org/draft-04/schema#", "required": []}"#,
    ] {
        let err = JsonSchema::parse(text, &[]);
        assert!(err.is_err(), "{text} parsed");
    }
    let err = JsonSchema::parse(r#"{"type": 5}"#, &[]).unwrap_err();
    assert!(err.0.starts_with("Invalid JSON Schema"), "{err}");
}

#[test]
fn drafts_by_schema_keyword() {
    // Draft 4 allows the boolean exclusiveMaximum; 2019-09+ have `$defs`.
    parse(
        r#"{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","maximum":5,"exclusiveMaximum":true}"#,
    );
    parse(
        r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","prefixItems":[{"type":"string"}]}"#,
    );
    // Draft 7 (the default) wants a number there.
    assert!(JsonSchema::parse(r#"{"type":"number","exclusiveMaximum":true}"#, &[]).is_err());
    // An unknown meta-schema falls back to draft 7, as Confluent's does.
    parse(r#"{"$schema":"https://example.com/my-meta","type":"string"}"#);
}

#[test]
fn ref_to_a_dependency_by_relative_name() {
    let root = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
    let s = JsonSchema::parse(root, &[dep("address.json", ADDRESS)]).expect("parses");
    assert_eq!(s.docs.len(), 2);
}

#[test]
fn ref_to_a_dependency_by_absolute_url_and_pointer() {
    let root = r#"{"$id":"https://example.com/person.schema.json","properties":{"home":{"$ref":"https://example.com/defs.json#/$defs/address"}}}"#;
    let defs = format!(r#"{{"$defs":{{"address":{ADDRESS}}}}}"#);
    JsonSchema::parse(root, &[dep("https://example.com/defs.json", &defs)]).expect("parses");
    // Relative to the root's $id, as Confluent resolves reference names.
    let root = r#"{"$id":"https://example.com/person.schema.json","properties":{"home":{"$ref":"defs.json#/$defs/address"}}}"#;
    JsonSchema::parse(root, &[dep("defs.json", &defs)]).expect("parses");
}

#[test]
fn unknown_ref_is_an_error() {
    for root in [
        r#"{"properties":{"home":{"$ref":"address.json"}}}"#,
        r#"{"properties":{"home":{"$ref":"https://example.com/address.json"}}}"#,
        r##"{"properties":{"home":{"$ref":"#/definitions/missing"}}}"##,
    ] {
        let err = JsonSchema::parse(root, &[]).expect_err(root);
        assert!(err.0.contains("Invalid JSON Schema"), "{err}");
    }
    // A dependency that is not JSON.
    let root = r#"{"properties":{"home":{"$ref":"address.json"}}}"#;
    assert!(JsonSchema::parse(root, &[dep("address.json", "{")]).is_err());
}

#[test]
fn compatibility_follows_refs_into_dependencies() {
    let root = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
    let v1 = JsonSchema::parse(root, &[dep("address.json", ADDRESS)]).expect("v1");
    // The new address adds a required field to a closed content model.
    let address2 = r#"{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"string"}},"required":["zip"],"additionalProperties":false}"#;
    let v2 = JsonSchema::parse(root, &[dep("address.json", address2)]).expect("v2");
    let errors = JsonSchema::read_compatibility(&v2, &v1);
    assert_eq!(
        errors,
        vec!["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/home/properties/zip"]
    );
    // And the old closed address cannot read the new one's zip.
    assert_eq!(
        JsonSchema::read_compatibility(&v1, &v2),
        vec!["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/home/properties/zip"]
    );
}

#[test]
fn messages_name_the_difference_and_path() {
    assert_eq!(
        check(
            r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"number"}}}"#
        ),
        vec!["TYPE_NARROWED #/properties/a"]
    );
    assert!(check(r#"{"type":"number"}"#, r#"{"type":"integer"}"#).is_empty());
    assert_eq!(
        check(
            r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":false}"#
        ),
        vec!["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"]
    );
    assert_eq!(
        check(
            r#"{"type":"string","maxLength":5}"#,
            r#"{"type":"string","maxLength":10}"#
        ),
        vec!["MAX_LENGTH_DECREASED #/maxLength"]
    );
    assert_eq!(
        check(r#"{"enum":["a"]}"#, r#"{"enum":["a","b"]}"#),
        vec!["ENUM_ARRAY_NARROWED #/enum"]
    );
    assert!(
        check(
            r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#,
            r#"{"type":"string"}"#
        )
        .is_empty()
    );
    assert_eq!(
        check(
            r#"{"not":{"type":"string"}}"#,
            r#"{"not":{"type":"integer"}}"#
        ),
        vec!["NOT_TYPE_EXTENDED #/not"]
    );
}

#[test]
fn local_refs_are_resolved_before_comparing() {
    let writer = r##"{"definitions":{"n":{"type":"integer"}},"type":"object","properties":{"a":{"$ref":"#/definitions/n"}}}"##;
    let reader = r##"{"definitions":{"n":{"type":"string"}},"type":"object","properties":{"a":{"$ref":"#/definitions/n"}}}"##;
    assert_eq!(check(reader, writer), vec!["TYPE_CHANGED #/properties/a"]);
    assert!(check(writer, writer).is_empty());
}

#[test]
fn cyclic_refs_terminate() {
    let tree = r##"{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#"}}}}"##;
    assert!(check(tree, tree).is_empty());
    let tree2 = r##"{"type":"object","properties":{"value":{"type":"number"},"children":{"type":"array","items":{"$ref":"#"}}}}"##;
    assert!(check(tree2, tree).is_empty());
    assert_eq!(check(tree, tree2), vec!["TYPE_NARROWED #/properties/value"]);
    // Two definitions referring to each other, and a ref to a ref to itself.
    let mutual = r##"{"definitions":{"a":{"properties":{"b":{"$ref":"#/definitions/b"}}},"b":{"properties":{"a":{"$ref":"#/definitions/a"}}}},"$ref":"#/definitions/a"}"##;
    assert!(check(mutual, mutual).is_empty());
    assert!(check(mutual, tree).len() < 10);
    let selfish = r##"{"definitions":{"x":{"$ref":"#/definitions/x"}},"properties":{"p":{"$ref":"#/definitions/x"}}}"##;
    if let Ok(s) = JsonSchema::parse(selfish, &[]) {
        let _ = JsonSchema::read_compatibility(&s, &s);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 10_000;
    let text = format!(
        "{}{}",
        r#"{"not":"#.repeat(depth),
        "{}".to_string() + &"}".repeat(depth)
    );
    let err = JsonSchema::parse(&text, &[]).expect_err("too deep");
    assert!(err.0.contains("recursion limit"), "{err}");
    let items = format!(
        "{}{}",
        r#"{"items":"#.repeat(depth),
        "true".to_string() + &"}".repeat(depth)
    );
    assert!(JsonSchema::parse(&items, &[]).is_err());
}

#[test]
fn wide_unions_are_bounded() {
    // 60 x 60 alternatives, each an object of 60 properties: the cross product of
    // comparisons is cut off by the step budget, not run to the end.
    let alt = |n: usize| {
        let props: Vec<String> = (0..60)
            .map(|p| format!(r#""p{p}":{{"type":"integer","minimum":{n}}}"#))
            .collect();
        format!(
            r#"{{"type":"object","properties":{{{}}}}}"#,
            props.join(",")
        )
    };
    let union = |shift: usize| {
        let alts: Vec<String> = (0..60).map(|n| alt(n + shift)).collect();
        format!(r#"{{"anyOf":[{}]}}"#, alts.join(","))
    };
    let (reader, writer) = (parse(&union(1)), parse(&union(0)));
    let started = std::time::Instant::now();
    let errors = JsonSchema::read_compatibility(&reader, &writer);
    eprintln!("wide union check: {:?}", started.elapsed());
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("COMPARISON_TOO_COMPLEX")),
        "{errors:?}"
    );
}

/// Arbitrary JSON, biased towards schema keywords, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("type".to_string()),
        Just("properties".to_string()),
        Just("items".to_string()),
        Just("anyOf".to_string()),
        Just("oneOf".to_string()),
        Just("allOf".to_string()),
        Just("not".to_string()),
        Just("enum".to_string()),
        Just("const".to_string()),
        Just("$ref".to_string()),
        Just("required".to_string()),
        Just("additionalProperties".to_string()),
        Just("patternProperties".to_string()),
        Just("additionalItems".to_string()),
        Just("minimum".to_string()),
        Just("maxLength".to_string()),
        Just("multipleOf".to_string()),
        Just("pattern".to_string()),
        Just("dependencies".to_string()),
        "[a-z]{1,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100).prop_map(Value::from),
        (0.01f64..10.0).prop_map(Value::from),
        prop_oneof![
            Just("string"),
            Just("integer"),
            Just("number"),
            Just("object"),
            Just("array"),
            Just("null"),
            Just("#"),
            Just("#/properties/a"),
            Just("^a*"),
            Just("a"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_and_compare_never_panic(a in json_value(), b in json_value()) {
        let (a, b) = (a.to_string(), b.to_string());
        let pa = JsonSchema::parse(&a, &[]);
        let pb = JsonSchema::parse(&b, &[dep("a", &a)]);
        if let (Ok(pa), Ok(pb)) = (pa, pb) {
            let _ = JsonSchema::read_compatibility(&pa, &pb);
            let _ = JsonSchema::read_compatibility(&pb, &pa);
            prop_assert!(JsonSchema::read_compatibility(&pa, &pa).is_empty(), "{a} not compatible with itself");
            let _ = pa.normalized();
        }
    }

    #[test]
    fn mutated_text_never_panics(text in "[{}\\[\\]\":,a-z0-9 #$/]{0,80}") {
        let _ = JsonSchema::parse(&text, &[]);
        let _ = JsonSchema::parse("{\"$ref\":\"x\"}", &[dep("x", &text)]);
    }
}
