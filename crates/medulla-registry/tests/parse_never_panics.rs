//! Property tests: parsing arbitrary text as Avro or Protobuf, and checking
//! compatibility between whatever parses, returns a result and never panics.

use medulla_registry::schema::{Dependency, ParsedSchema, SchemaType};
use proptest::prelude::*;

const AVRO_SEEDS: &[&str] = &[
    r#"{"type":"record","name":"r","namespace":"n","fields":[{"name":"a","type":["null","string"],"default":null},{"name":"b","type":{"type":"array","items":{"type":"enum","name":"E","symbols":["X","Y"],"default":"X"}}},{"name":"c","type":{"type":"map","values":"E"}},{"name":"d","type":{"type":"fixed","name":"F","size":4}}]}"#,
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
    r#"["null","int",{"type":"string","logicalType":"uuid"}]"#,
];

const PROTO_SEEDS: &[&str] = &[
    "syntax = \"proto3\";\npackage p;\nimport \"google/protobuf/timestamp.proto\";\nmessage M {\n  string a = 1;\n  oneof o { int32 b = 2; bytes c = 3; }\n  map<string, M> m = 4;\n  google.protobuf.Timestamp t = 5;\n  enum E { X = 0; Y = 1; }\n  repeated E e = 6;\n}\n",
    "syntax = \"proto2\";\nmessage N { required int64 x = 1 [default = 3]; optional N next = 2; }\n",
];

/// A seed with some characters replaced, deleted or duplicated.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..8),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, op, c) in edits {
                if chars.is_empty() {
                    break;
                }
                let i = at.index(chars.len());
                match op {
                    0 => chars[i] = c,
                    1 => {
                        chars.remove(i);
                    }
                    _ => chars.insert(i, chars[i]),
                }
            }
            chars.into_iter().collect()
        })
}

fn check_all(ty: SchemaType, a: &str, b: &str) {
    let dep = Dependency {
        name: "dep.proto".into(),
        schema: b.to_string(),
    };
    let pa = ParsedSchema::parse(ty, a, &[]);
    let pb = ParsedSchema::parse(ty, b, &[]);
    let _ = ParsedSchema::parse(ty, a, std::slice::from_ref(&dep));
    for p in [&pa, &pb].into_iter().flatten() {
        let _ = (p.canonical(), p.normalized(), p.record_name());
    }
    if let (Ok(x), Ok(y)) = (&pa, &pb) {
        let _ = ParsedSchema::read_compatibility(x, y);
        let _ = ParsedSchema::read_compatibility(y, x);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn avro_random_text(a in ".{0,200}", b in mutated(AVRO_SEEDS)) {
        check_all(SchemaType::Avro, &a, &b);
    }

    #[test]
    fn avro_mutated(a in mutated(AVRO_SEEDS), b in mutated(AVRO_SEEDS)) {
        check_all(SchemaType::Avro, &a, &b);
    }

    #[test]
    fn protobuf_random_text(a in ".{0,200}", b in mutated(PROTO_SEEDS)) {
        check_all(SchemaType::Protobuf, &a, &b);
    }

    #[test]
    fn protobuf_mutated(a in mutated(PROTO_SEEDS), b in mutated(PROTO_SEEDS)) {
        check_all(SchemaType::Protobuf, &a, &b);
    }
}

/// Canonical and normalized forms are themselves valid schemas of the same meaning.
#[test]
fn printed_forms_parse_again() {
    for seed in AVRO_SEEDS {
        let s = ParsedSchema::parse(SchemaType::Avro, seed, &[]).unwrap_or_else(|e| panic!("{e}"));
        for form in [s.canonical(), s.normalized()] {
            let again = ParsedSchema::parse(SchemaType::Avro, &form, &[])
                .unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(again.canonical(), s.canonical(), "{form}");
            assert!(ParsedSchema::read_compatibility(&again, &s).is_empty());
        }
    }
    for seed in PROTO_SEEDS {
        let s =
            ParsedSchema::parse(SchemaType::Protobuf, seed, &[]).unwrap_or_else(|e| panic!("{e}"));
        let again = ParsedSchema::parse(SchemaType::Protobuf, &s.normalized(), &[])
            .unwrap_or_else(|e| panic!("{}: {e}", s.normalized()));
        assert_eq!(again.normalized(), s.normalized());
        assert!(ParsedSchema::read_compatibility(&again, &s).is_empty());
    }
}
