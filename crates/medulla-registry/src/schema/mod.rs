//! Schema formats: parsing, the stored (canonical) and normalized forms, and
//! compatibility between two schemas of one format.
//!
//! Every format module exposes the same surface (see [`ParsedSchema`]):
//! `parse(text, deps)`, `canonical()`, `normalized()`, `record_name()` and
//! `read_compatibility(reader, writer)`. The Confluent compatibility levels
//! (BACKWARD, FORWARD, FULL, their transitive forms) are loops over that last one,
//! in `crate::compat`.

use serde::{Deserialize, Serialize};

pub mod avro;
pub mod json;
pub mod protobuf;

/// A schema format, spelled as Confluent's REST API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SchemaType {
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    #[serde(rename = "JSON")]
    Json,
    #[serde(rename = "PROTOBUF")]
    Protobuf,
}

impl SchemaType {
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// Parses a `schemaType` as clients send it (Confluent accepts any case).
    pub fn parse(s: &str) -> Option<SchemaType> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "JSON" => Some(SchemaType::Json),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            _ => None,
        }
    }
}

/// One dependency of a schema (a Confluent schema reference), already fetched from the
/// registry by the caller: `name` is the name the schema uses for it (an Avro full name,
/// a Protobuf import path, a JSON Schema `$ref` URL) and `schema` its text, of the same
/// format as the schema that refers to it. A schema's dependency list holds its
/// transitive dependencies too, each once, every one after its own dependencies
/// (depth-first post-order), so a format can parse them front to back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub schema: String,
}

/// Why a schema text is not a valid schema (the registry answers 42201 with it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

impl SchemaError {
    pub fn new(msg: impl Into<String>) -> SchemaError {
        SchemaError(msg.into())
    }
}

/// A parsed, valid schema of any format.
#[derive(Debug)]
pub enum ParsedSchema {
    Avro(avro::AvroSchema),
    Json(json::JsonSchema),
    Protobuf(protobuf::ProtobufSchema),
}

impl ParsedSchema {
    pub fn parse(
        ty: SchemaType,
        text: &str,
        deps: &[Dependency],
    ) -> Result<ParsedSchema, SchemaError> {
        Ok(match ty {
            SchemaType::Avro => ParsedSchema::Avro(avro::AvroSchema::parse(text, deps)?),
            SchemaType::Json => ParsedSchema::Json(json::JsonSchema::parse(text, deps)?),
            SchemaType::Protobuf => {
                ParsedSchema::Protobuf(protobuf::ProtobufSchema::parse(text, deps)?)
            }
        })
    }

    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Json(_) => SchemaType::Json,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
        }
    }

    /// The text the registry stores and returns for this schema (Confluent's
    /// `canonicalString()`): for Avro and JSON Schema the JSON without insignificant
    /// whitespace, attributes kept in their order; for Protobuf the `.proto` text.
    pub fn canonical(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.canonical(),
            ParsedSchema::Json(s) => s.canonical(),
            ParsedSchema::Protobuf(s) => s.canonical(),
        }
    }

    /// The normalized form (`normalize=true`): equal for schemas that differ only in
    /// ways that cannot change what they accept (attribute order, formatting, and
    /// per format: Avro's full names, JSON key order, Protobuf's declaration order and
    /// default-valued options).
    pub fn normalized(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.normalized(),
            ParsedSchema::Json(s) => s.normalized(),
            ParsedSchema::Protobuf(s) => s.normalized(),
        }
    }

    /// The schema in a `?format=` of Confluent's: `serialized` is a Protobuf schema as a
    /// base64 `FileDescriptorProto`. `None` for formats this schema type does not have
    /// (the caller answers the stored text, as for no format).
    pub fn formatted(&self, format: &str) -> Option<String> {
        match (self, format) {
            (ParsedSchema::Protobuf(s), "serialized") => Some(s.serialized()),
            _ => None,
        }
    }

    /// The record name that `RecordNameStrategy` derives a subject from: the Avro
    /// record's full name, the first Protobuf message's full name, the JSON Schema's
    /// `title`. `None` when the schema has none.
    pub fn record_name(&self) -> Option<String> {
        match self {
            ParsedSchema::Avro(s) => s.record_name(),
            ParsedSchema::Json(s) => s.record_name(),
            ParsedSchema::Protobuf(s) => s.record_name(),
        }
    }

    /// Can a consumer using `reader` read data written with `writer`? Empty when it
    /// can; otherwise one message per incompatibility. Schemas of different formats
    /// are never compatible.
    pub fn read_compatibility(reader: &ParsedSchema, writer: &ParsedSchema) -> Vec<String> {
        match (reader, writer) {
            (ParsedSchema::Avro(r), ParsedSchema::Avro(w)) => {
                avro::AvroSchema::read_compatibility(r, w)
            }
            (ParsedSchema::Json(r), ParsedSchema::Json(w)) => {
                json::JsonSchema::read_compatibility(r, w)
            }
            (ParsedSchema::Protobuf(r), ParsedSchema::Protobuf(w)) => {
                protobuf::ProtobufSchema::read_compatibility(r, w)
            }
            (r, w) => vec![format!(
                "Incompatible schema type: {} cannot read {}",
                r.schema_type().as_str(),
                w.schema_type().as_str()
            )],
        }
    }
}
