//! Re-prints an Avro schema's JSON the way Java Avro's `Schema.toString()` does
//! (Confluent's stored form), or in the normalized form.
//!
//! Printing works on the client's JSON, not on apache-avro's `Schema`, because
//! apache-avro's serializer drops or reorders what Java keeps (custom properties on
//! fields such as `"confluent:tags"`, `"order"`, properties of primitives).

use serde_json::{Map, Value};

use super::model::{Arena, Prim, declared_space, full_name, split_name};

/// Which form to print.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Java's `Schema.toString()`: names relative to the enclosing namespace, a
    /// `namespace` attribute only where it changes, properties in the order given.
    Canonical,
    /// Every name fully qualified, no `namespace` attributes, properties sorted by
    /// key: schemas that differ only in how they spell names or order properties
    /// print the same.
    Normalized,
}

/// Attributes of a schema object that are not properties (Java's `SCHEMA_RESERVED`).
const SCHEMA_RESERVED: &[&str] = &[
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
    "default",
];
/// Attributes of a record field that are not properties (Java's `FIELD_RESERVED`).
const FIELD_RESERVED: &[&str] = &["default", "doc", "name", "order", "type", "aliases"];

pub(crate) fn print(v: &Value, names: &Arena, form: Form) -> String {
    let p = Printer { names, form };
    p.schema(v, None).to_string()
}

struct Printer<'a> {
    names: &'a Arena,
    form: Form,
}

impl Printer<'_> {
    fn schema(&self, v: &Value, ns: Option<&str>) -> Value {
        match v {
            Value::String(s) => self.reference(s, ns),
            Value::Array(branches) => {
                Value::Array(branches.iter().map(|b| self.schema(b, ns)).collect())
            }
            Value::Object(obj) => match obj.get("type") {
                Some(Value::String(t)) => match t.as_str() {
                    "record" | "error" | "enum" | "fixed" => self.named(obj, t, ns),
                    "array" | "map" => {
                        let key = if t == "array" { "items" } else { "values" };
                        let mut out = Map::new();
                        out.insert("type".into(), Value::String(t.clone()));
                        if let Some(inner) = obj.get(key) {
                            out.insert(key.into(), self.schema(inner, ns));
                        }
                        self.props(obj, SCHEMA_RESERVED, &mut out);
                        Value::Object(out)
                    }
                    other => {
                        let mut out = Map::new();
                        self.props(obj, SCHEMA_RESERVED, &mut out);
                        if out.is_empty() {
                            self.reference(other, ns)
                        } else {
                            let mut with_type = Map::new();
                            with_type.insert("type".into(), self.reference(other, ns));
                            with_type.extend(out);
                            Value::Object(with_type)
                        }
                    }
                },
                Some(inner @ (Value::Object(_) | Value::Array(_))) => self.schema(inner, ns),
                _ => v.clone(),
            },
            other => other.clone(),
        }
    }

    /// A type used by name: a primitive, or a named type defined before.
    fn reference(&self, name: &str, ns: Option<&str>) -> Value {
        if Prim::from_name(name).is_some() {
            return Value::String(name.to_string());
        }
        let full = self
            .names
            .resolve(name, ns)
            .unwrap_or_else(|| name.to_string());
        match self.form {
            Form::Normalized => Value::String(full),
            Form::Canonical => {
                // Java's `Name.getQualified(space)`: the simple name when the type
                // lives in the enclosing namespace or in none.
                let (space, simple) = split_name(&full, None);
                match space {
                    None => Value::String(simple),
                    Some(s) if Some(s.as_str()) == ns => Value::String(simple),
                    Some(_) => Value::String(full),
                }
            }
        }
    }

    fn named(&self, obj: &Map<String, Value>, ty: &str, ns: Option<&str>) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), Value::String(ty.to_string()));
        let space = declared_space(obj, ns);
        let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
        let (_, simple) = split_name(name, None);
        match self.form {
            Form::Normalized => {
                out.insert(
                    "name".into(),
                    Value::String(full_name(space.as_deref(), &simple)),
                );
            }
            Form::Canonical => {
                out.insert("name".into(), Value::String(simple));
                match (&space, ns) {
                    (Some(s), enclosing) if Some(s.as_str()) != enclosing => {
                        out.insert("namespace".into(), Value::String(s.clone()));
                    }
                    (None, Some(_)) => {
                        out.insert("namespace".into(), Value::String(String::new()));
                    }
                    _ => {}
                }
            }
        }
        if let Some(doc) = obj.get("doc") {
            out.insert("doc".into(), doc.clone());
        }
        match ty {
            "enum" => {
                if let Some(symbols) = obj.get("symbols") {
                    out.insert("symbols".into(), symbols.clone());
                }
                if let Some(default) = obj.get("default") {
                    out.insert("default".into(), default.clone());
                }
            }
            "fixed" => {
                if let Some(size) = obj.get("size") {
                    out.insert("size".into(), size.clone());
                }
            }
            _ => {
                let fields = obj
                    .get("fields")
                    .and_then(Value::as_array)
                    .map(|fs| {
                        fs.iter()
                            .map(|f| match f.as_object() {
                                Some(fo) => self.field(fo, space.as_deref()),
                                None => f.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("fields".into(), Value::Array(fields));
            }
        }
        self.props(obj, SCHEMA_RESERVED, &mut out);
        if let Some(aliases) = obj.get("aliases").filter(|a| !is_empty_array(a)) {
            out.insert("aliases".into(), aliases.clone());
        }
        Value::Object(out)
    }

    fn field(&self, f: &Map<String, Value>, ns: Option<&str>) -> Value {
        let mut out = Map::new();
        if let Some(name) = f.get("name") {
            out.insert("name".into(), name.clone());
        }
        if let Some(ty) = f.get("type") {
            out.insert("type".into(), self.schema(ty, ns));
        }
        if let Some(doc) = f.get("doc") {
            out.insert("doc".into(), doc.clone());
        }
        if let Some(default) = f.get("default") {
            out.insert("default".into(), default.clone());
        }
        if let Some(order) = f.get("order").filter(|o| o.as_str() != Some("ascending")) {
            out.insert("order".into(), order.clone());
        }
        if let Some(aliases) = f.get("aliases").filter(|a| !is_empty_array(a)) {
            out.insert("aliases".into(), aliases.clone());
        }
        self.props(f, FIELD_RESERVED, &mut out);
        Value::Object(out)
    }

    fn props(&self, obj: &Map<String, Value>, reserved: &[&str], out: &mut Map<String, Value>) {
        let mut props: Vec<(&String, &Value)> = obj
            .iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .collect();
        if self.form == Form::Normalized {
            props.sort_by(|a, b| a.0.cmp(b.0));
        }
        for (k, v) in props {
            out.insert(k.clone(), v.clone());
        }
    }
}

fn is_empty_array(v: &Value) -> bool {
    v.as_array().is_some_and(Vec::is_empty)
}
