//! Avro schemas: parsing (apache-avro validates; Confluent schema references are
//! named types defined by the dependencies), the stored form Java Avro prints, the
//! normalized form, and Java Avro's schema-resolution compatibility.
//!
//! apache-avro decides what is a valid schema (including that defaults match their
//! field types, as Confluent checks for new schemas). Everything after that works on
//! the client's JSON and on [`model::Arena`], our own resolved view of it: printing
//! from the JSON keeps every property Java keeps, and the compatibility check follows
//! Java's `SchemaCompatibility` (records match by unqualified name or alias,
//! logical types are ignored, a reader enum default covers missing symbols), which
//! apache-avro's `SchemaCompatibility` does not in every case.

mod compat;
mod model;
mod print;

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

use super::{Dependency, SchemaError};
use model::{Arena, Node};
use print::Form;

/// A parsed, valid Avro schema.
#[derive(Clone, Debug)]
pub struct AvroSchema {
    /// The root schema and every named type of its dependencies.
    arena: Arena,
    root: usize,
    canonical: String,
    normalized: String,
}

/// Parses JSON text; serde_json refuses nesting deeper than 128 levels, which bounds
/// every recursion below (apache-avro's parser, our model, the printers).
fn parse_json(text: &str, what: &str) -> Result<Value, SchemaError> {
    serde_json::from_str(text)
        .map_err(|e| SchemaError::new(format!("Invalid Avro schema JSON in {what}: {e}")))
}

impl AvroSchema {
    pub fn parse(text: &str, deps: &[Dependency]) -> Result<AvroSchema, SchemaError> {
        let root_json = parse_json(text, "the schema")?;
        let mut dep_json = Vec::with_capacity(deps.len());
        for d in deps {
            dep_json.push(parse_json(&d.schema, &format!("reference {:?}", d.name))?);
        }

        validate_with_apache_avro(text, deps)?;

        let mut arena = Arena::default();
        for (d, json) in deps.iter().zip(&dep_json) {
            arena
                .add(json, None)
                .map_err(|e| SchemaError::new(format!("reference {:?}: {e}", d.name)))?;
        }
        let root = arena.add(&root_json, None)?;
        let canonical = print::print(&root_json, &arena, Form::Canonical);
        let normalized = print::print(&root_json, &arena, Form::Normalized);
        Ok(AvroSchema {
            arena,
            root,
            canonical,
            normalized,
        })
    }

    /// Java Avro's `Schema.toString()` of the schema as written: compact, attributes
    /// in Java's order, every property kept, types from references by name.
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// Full names everywhere, no `namespace` attributes, properties sorted.
    pub fn normalized(&self) -> String {
        self.normalized.clone()
    }

    /// The full name of a root record, enum or fixed.
    pub fn record_name(&self) -> Option<String> {
        match self.arena.nodes.get(self.root)? {
            Node::Record { name, .. } | Node::Enum { name, .. } | Node::Fixed { name, .. } => {
                Some(name.full.clone())
            }
            _ => None,
        }
    }

    pub fn read_compatibility(reader: &AvroSchema, writer: &AvroSchema) -> Vec<String> {
        compat::check(&reader.arena, reader.root, &writer.arena, writer.root)
    }
}

/// Lets apache-avro decide validity: unknown types, bad names, defaults that do not
/// match their type, duplicate fields or symbols. A panic inside it (a bug there)
/// is an invalid schema, not a crashed registry.
fn validate_with_apache_avro(text: &str, deps: &[Dependency]) -> Result<(), SchemaError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if deps.is_empty() {
            apache_avro::Schema::parse_str(text).map(|_| ())
        } else {
            apache_avro::Schema::parse_str_with_list(text, deps.iter().map(|d| d.schema.as_str()))
                .map(|_| ())
        }
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SchemaError::new(format!(
            "Invalid Avro schema: {}",
            error_text(&e)
        ))),
        Err(_) => Err(SchemaError::new(
            "Invalid Avro schema: the parser failed on it",
        )),
    }
}

/// apache-avro's `Display` is terse; its `Debug` adds the cause.
fn error_text(e: &apache_avro::Error) -> String {
    format!("{e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AvroSchema {
        match AvroSchema::parse(text, &[]) {
            Ok(s) => s,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn canonical_keeps_properties_in_java_order() {
        let s = parse(
            r#"{"fields":[{"confluent:tags":["PHI"],"type":"string","name":"ssn","doc":"d","default":"x"},
               {"name":"n","type":{"type":"int","logicalType":"date"}}],
               "namespace":"com.acme","name":"Patient","type":"record","x-prop":1}"#,
        );
        assert_eq!(
            s.canonical(),
            r#"{"type":"record","name":"Patient","namespace":"com.acme","fields":[{"name":"ssn","type":"string","doc":"d","default":"x","confluent:tags":["PHI"]},{"name":"n","type":{"type":"int","logicalType":"date"}}],"x-prop":1}"#
        );
        assert_eq!(s.record_name().as_deref(), Some("com.acme.Patient"));
    }

    #[test]
    fn primitives_print_as_strings() {
        assert_eq!(parse(r#"{"type":"string"}"#).canonical(), r#""string""#);
        assert_eq!(parse(r#" "long" "#).canonical(), r#""long""#);
        assert_eq!(parse(r#""long""#).record_name(), None);
    }

    #[test]
    fn canonical_names_are_relative_normalized_full() {
        let a = parse(
            r#"{"type":"record","name":"a.b.R","fields":[
                {"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}},
                {"name":"e2","type":"E"},
                {"name":"o","type":{"type":"fixed","name":"F","namespace":"other","size":2}},
                {"name":"o2","type":"other.F"}]}"#,
        );
        assert_eq!(
            a.canonical(),
            r#"{"type":"record","name":"R","namespace":"a.b","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}},{"name":"e2","type":"E"},{"name":"o","type":{"type":"fixed","name":"F","namespace":"other","size":2}},{"name":"o2","type":"other.F"}]}"#
        );
        let b = parse(
            r#"{"type":"record","namespace":"a.b","name":"R","fields":[
                {"name":"e","type":{"type":"enum","name":"a.b.E","symbols":["X"]}},
                {"name":"e2","type":"a.b.E"},
                {"name":"o","type":{"type":"fixed","name":"other.F","size":2}},
                {"name":"o2","type":"other.F"}]}"#,
        );
        assert_eq!(a.normalized(), b.normalized());
        assert!(!a.normalized().contains("namespace"));
    }

    #[test]
    fn references_resolve_from_dependencies() {
        let dep = Dependency {
            name: "com.acme.Address".into(),
            schema: r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"}]}"#.into(),
        };
        let s = AvroSchema::parse(
            r#"{"type":"record","name":"Person","namespace":"com.acme","fields":[{"name":"home","type":"Address"}]}"#,
            std::slice::from_ref(&dep),
        );
        let s = match s {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            s.canonical(),
            r#"{"type":"record","name":"Person","namespace":"com.acme","fields":[{"name":"home","type":"Address"}]}"#
        );
        assert!(AvroSchema::parse(
            r#"{"type":"record","name":"Person","fields":[{"name":"home","type":"com.acme.Address"}]}"#,
            &[]
        )
        .is_err());
    }

    #[test]
    fn invalid_schemas_are_errors() {
        for bad in [
            "",
            "{",
            r#"{"type":"nope"}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":1}},
                {"name":"b","type":{"type":"fixed","name":"F","size":2}}]}"#,
            r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
        ] {
            assert!(AvroSchema::parse(bad, &[]).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 10_000;
        let text = format!("{}\"int\"{}", "[".repeat(depth), "]".repeat(depth));
        assert!(AvroSchema::parse(&text, &[]).is_err());
        let text = format!(
            "{}\"int\"{}",
            r#"{"type":"array","items":"#.repeat(depth),
            "}".repeat(depth)
        );
        let err = AvroSchema::parse(&text, &[])
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("recursion limit"), "{err}");
    }

    #[test]
    fn missing_default_message_is_confluents() {
        let reader = parse(
            r#"{"type":"record","name":"r","fields":[{"name":"f1","type":"string"},{"name":"f2","type":"string"}]}"#,
        );
        let writer =
            parse(r#"{"type":"record","name":"r","fields":[{"name":"f1","type":"string"}]}"#);
        assert_eq!(
            AvroSchema::read_compatibility(&reader, &writer),
            vec!["{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'f2' at path '/fields/1' in the reader schema has no default value and is missing in the writer schema', additionalInfo:'f2'}".to_string()]
        );
        assert!(AvroSchema::read_compatibility(&writer, &reader).is_empty());
    }

    #[test]
    fn recursive_types_terminate() {
        let s = parse(
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"int"}]}"#,
        );
        let t = parse(
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"long"}]}"#,
        );
        assert!(AvroSchema::read_compatibility(&s, &s).is_empty());
        assert!(AvroSchema::read_compatibility(&t, &s).is_empty());
        assert!(!AvroSchema::read_compatibility(&s, &t).is_empty());
    }
}
