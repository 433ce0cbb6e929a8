//! JSON Schema: parsing and validation against the draft's meta-schema (the
//! `jsonschema` crate, references served from memory), the stored and normalized
//! forms, and Confluent's backward-compatibility rules (in [`diff`]).
//!
//! A schema keeps its parsed `serde_json::Value` and those of its dependencies, each
//! with the URI a `$ref` reaches it by, so that the compatibility checker can follow
//! `$ref`s across documents without the validator.

mod diff;

use serde_json::Value;

use super::{Dependency, SchemaError};

/// The base URI of a schema that has no `$id`: relative `$ref`s and dependency names
/// resolve against it (the `jsonschema` crate's own default root).
const DEFAULT_BASE_URI: &str = "json-schema:///";

/// A parsed, valid JSON Schema.
///
/// Invariant: `docs[0]` is the schema itself; every `$ref` in any document of `docs`
/// resolved when the schema was validated.
#[derive(Debug)]
pub struct JsonSchema {
    canonical: String,
    docs: Vec<diff::Doc>,
}

/// The drafts Confluent knows, by their `$schema` URI. Confluent's
/// `SpecificationVersion.getFromUrl` ignores the scheme and a trailing `#`; an unknown
/// `$schema` falls back to the default draft, 7 (`JsonSchema.rawSchema()`).
fn draft_of(schema: &Value) -> jsonschema::Draft {
    let Some(uri) = schema.get("$schema").and_then(Value::as_str) else {
        return jsonschema::Draft::Draft7;
    };
    let uri = uri.trim_end_matches('#');
    let uri = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .unwrap_or(uri);
    match uri {
        "json-schema.org/draft-04/schema" => jsonschema::Draft::Draft4,
        "json-schema.org/draft-06/schema" => jsonschema::Draft::Draft6,
        "json-schema.org/draft-07/schema" => jsonschema::Draft::Draft7,
        "json-schema.org/draft/2019-09/schema" => jsonschema::Draft::Draft201909,
        "json-schema.org/draft/2020-12/schema" => jsonschema::Draft::Draft202012,
        _ => jsonschema::Draft::Draft7,
    }
}

/// The URI a document is known by: its own `$id` (`id` in draft 4) resolved against
/// `base`, else `base`.
fn document_uri(schema: &Value, draft: jsonschema::Draft, base: &str) -> Result<String, String> {
    let id_keyword = if draft == jsonschema::Draft::Draft4 {
        "id"
    } else {
        "$id"
    };
    match schema.get(id_keyword).and_then(Value::as_str) {
        Some(id) => resolve_uri(base, id),
        None => Ok(base.to_string()),
    }
}

/// `reference` resolved against `base` (RFC 3986), without a fragment.
fn resolve_uri(base: &str, reference: &str) -> Result<String, String> {
    let base = jsonschema::uri::from_str(base).map_err(|e| e.to_string())?;
    let resolved =
        jsonschema::uri::resolve_against(&base.borrow(), reference).map_err(|e| e.to_string())?;
    let text = resolved.as_str();
    Ok(text.split('#').next().unwrap_or(text).to_string())
}

fn parse_json(what: &str, text: &str) -> Result<Value, SchemaError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| SchemaError::new(format!("Invalid JSON in {what}: {e}")))?;
    if !(value.is_object() || value.is_boolean()) {
        return Err(SchemaError::new(format!(
            "Invalid JSON Schema in {what}: a schema is a JSON object or a boolean"
        )));
    }
    Ok(value)
}

impl JsonSchema {
    pub fn parse(text: &str, deps: &[Dependency]) -> Result<JsonSchema, SchemaError> {
        let root = parse_json("the schema", text)?;
        let draft = draft_of(&root);
        let root_uri = document_uri(&root, draft, DEFAULT_BASE_URI)
            .map_err(|e| SchemaError::new(format!("Invalid JSON Schema: bad $id: {e}")))?;

        let mut docs = vec![diff::Doc::new(root_uri.clone(), root)];
        let mut resources = Vec::with_capacity(deps.len());
        for dep in deps {
            let what = format!("reference {:?}", dep.name);
            let value = parse_json(&what, &dep.schema)?;
            // Confluent resolves a reference's name against the root's `$id`.
            let uri = resolve_uri(&root_uri, &dep.name).map_err(|e| {
                SchemaError::new(format!("Invalid JSON Schema: bad {what} name: {e}"))
            })?;
            let dep_draft = match value.get("$schema") {
                Some(_) => draft_of(&value),
                None => draft,
            };
            if let Ok(own) = document_uri(&value, dep_draft, &uri)
                && own != uri
            {
                docs.push(diff::Doc::new(own, value.clone()));
            }
            resources.push((uri.clone(), dep_draft.create_resource(value.clone())));
            docs.push(diff::Doc::new(uri, value));
        }

        let registry = jsonschema::Registry::new()
            .extend(resources)
            .and_then(|builder| builder.prepare())
            .map_err(|e| SchemaError::new(format!("Invalid JSON Schema: references: {e}")))?;
        let root = &docs[0].value;
        jsonschema::options()
            .with_draft(draft)
            .with_base_uri(root_uri.clone())
            .with_registry(&registry)
            .offline()
            .build(root)
            .map_err(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                SchemaError::new(format!("Invalid JSON Schema (at {at}): {e}"))
            })?;

        // serde_json with `preserve_order` writes the attributes in their given order.
        let canonical = docs[0].value.to_string();
        Ok(JsonSchema { canonical, docs })
    }

    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// Compact JSON with every object's keys sorted (Confluent's `normalize()` reads
    /// the schema back with Jackson's ordered-map mapper; array order is kept).
    pub fn normalized(&self) -> String {
        sorted(&self.docs[0].value).to_string()
    }

    pub fn record_name(&self) -> Option<String> {
        self.docs[0]
            .value
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Confluent's `JsonSchema.isBackwardCompatible`: `SchemaDiff.compare(writer,
    /// reader)`, keeping the differences not in `COMPATIBLE_CHANGES`.
    pub fn read_compatibility(reader: &JsonSchema, writer: &JsonSchema) -> Vec<String> {
        diff::incompatibilities(&writer.docs, &reader.docs)
    }
}

/// `value` with the keys of every object sorted. Depth is bounded by serde_json's
/// parser (128 levels), so the recursion is too.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .filter_map(|k| map.get(k).map(|v| (k.clone(), sorted(v))))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
