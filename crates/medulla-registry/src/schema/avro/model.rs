//! The resolved shape of an Avro schema that the compatibility check walks: an arena
//! of nodes in which a named type is one node, referred to by index wherever it is
//! used (so recursive types are cycles of indices, not infinite trees).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::schema::SchemaError;

/// Avro's primitive types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prim {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Prim {
    pub(crate) fn from_name(name: &str) -> Option<Prim> {
        Some(match name {
            "null" => Prim::Null,
            "boolean" => Prim::Boolean,
            "int" => Prim::Int,
            "long" => Prim::Long,
            "float" => Prim::Float,
            "double" => Prim::Double,
            "bytes" => Prim::Bytes,
            "string" => Prim::String,
            _ => return None,
        })
    }
}

/// The name of a named type: `simple` is what Java's `Schema.getName()` returns
/// (records match by it), `full` includes the namespace, `aliases` are full names.
#[derive(Clone, Debug)]
pub(crate) struct TypeName {
    pub(crate) simple: String,
    pub(crate) full: String,
    pub(crate) aliases: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) has_default: bool,
    pub(crate) ty: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Prim(Prim),
    Record {
        name: TypeName,
        fields: Vec<Field>,
    },
    Enum {
        name: TypeName,
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        name: TypeName,
        size: u64,
    },
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
}

impl Node {
    /// Java's `Schema.Type` name, as it appears in incompatibility messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Prim(p) => match p {
                Prim::Null => "NULL",
                Prim::Boolean => "BOOLEAN",
                Prim::Int => "INT",
                Prim::Long => "LONG",
                Prim::Float => "FLOAT",
                Prim::Double => "DOUBLE",
                Prim::Bytes => "BYTES",
                Prim::String => "STRING",
            },
            Node::Record { .. } => "RECORD",
            Node::Enum { .. } => "ENUM",
            Node::Fixed { .. } => "FIXED",
            Node::Array(_) => "ARRAY",
            Node::Map(_) => "MAP",
            Node::Union(_) => "UNION",
        }
    }
}

/// Every node of one schema and its dependencies; `names` maps full names to nodes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    pub(crate) nodes: Vec<Node>,
    pub(crate) names: HashMap<String, usize>,
}

/// Splits a (possibly dotted) name given in namespace `ns` into (namespace, simple).
/// A dotted name carries its own namespace and ignores the enclosing one.
pub(crate) fn split_name(name: &str, ns: Option<&str>) -> (Option<String>, String) {
    match name.rsplit_once('.') {
        Some((space, simple)) => (
            (!space.is_empty()).then(|| space.to_string()),
            simple.to_string(),
        ),
        None => (
            ns.filter(|s| !s.is_empty()).map(str::to_string),
            name.to_string(),
        ),
    }
}

pub(crate) fn full_name(space: Option<&str>, simple: &str) -> String {
    match space {
        Some(s) if !s.is_empty() => format!("{s}.{simple}"),
        _ => simple.to_string(),
    }
}

/// The namespace a named type's definition object declares, given the enclosing one.
pub(crate) fn declared_space(obj: &Map<String, Value>, ns: Option<&str>) -> Option<String> {
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
    if name.contains('.') {
        return split_name(name, None).0;
    }
    match obj.get("namespace") {
        Some(Value::String(s)) => (!s.is_empty()).then(|| s.clone()),
        Some(Value::Null) | None => ns.filter(|s| !s.is_empty()).map(str::to_string),
        Some(_) => ns.filter(|s| !s.is_empty()).map(str::to_string),
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Arena {
    /// Resolves a type name used in namespace `ns` to a defined full name, if any.
    pub(crate) fn resolve(&self, name: &str, ns: Option<&str>) -> Option<String> {
        let (space, simple) = split_name(name, ns);
        let full = full_name(space.as_deref(), &simple);
        if self.names.contains_key(&full) {
            return Some(full);
        }
        // Java and apache-avro do not fall back to the null namespace, but a name
        // that resolves nowhere else is unambiguous.
        self.names.contains_key(name).then(|| name.to_string())
    }

    /// Adds the schema `v` (a JSON schema already accepted by apache-avro) written in
    /// namespace `ns`; returns its node.
    pub(crate) fn add(&mut self, v: &Value, ns: Option<&str>) -> Result<usize, SchemaError> {
        match v {
            Value::String(s) => self.add_named_or_prim(s, ns),
            Value::Array(branches) => {
                let mut idx = Vec::with_capacity(branches.len());
                for b in branches {
                    idx.push(self.add(b, ns)?);
                }
                Ok(self.push(Node::Union(idx)))
            }
            Value::Object(obj) => match obj.get("type") {
                Some(Value::String(t)) => match t.as_str() {
                    "record" | "error" => self.add_record(obj, ns),
                    "enum" => {
                        let name = self.type_name(obj, ns)?;
                        let symbols = string_list(obj.get("symbols"));
                        let default = obj
                            .get("default")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        let full = name.full.clone();
                        let idx = self.push(Node::Enum {
                            name,
                            symbols,
                            default,
                        });
                        self.register(full, idx)?;
                        Ok(idx)
                    }
                    "fixed" => {
                        let name = self.type_name(obj, ns)?;
                        let size = obj.get("size").and_then(Value::as_u64).unwrap_or(0);
                        let full = name.full.clone();
                        let idx = self.push(Node::Fixed { name, size });
                        self.register(full, idx)?;
                        Ok(idx)
                    }
                    "array" => {
                        let items = obj
                            .get("items")
                            .ok_or_else(|| SchemaError::new("array without \"items\""))?;
                        let i = self.add(items, ns)?;
                        Ok(self.push(Node::Array(i)))
                    }
                    "map" => {
                        let values = obj
                            .get("values")
                            .ok_or_else(|| SchemaError::new("map without \"values\""))?;
                        let i = self.add(values, ns)?;
                        Ok(self.push(Node::Map(i)))
                    }
                    other => self.add_named_or_prim(other, ns),
                },
                Some(inner @ (Value::Object(_) | Value::Array(_))) => self.add(inner, ns),
                _ => Err(SchemaError::new(format!("No type: {v}"))),
            },
            other => Err(SchemaError::new(format!("Not a schema: {other}"))),
        }
    }

    fn add_named_or_prim(&mut self, name: &str, ns: Option<&str>) -> Result<usize, SchemaError> {
        if let Some(p) = Prim::from_name(name) {
            return Ok(self.push(Node::Prim(p)));
        }
        self.resolve(name, ns)
            .and_then(|full| self.names.get(&full).copied())
            .ok_or_else(|| SchemaError::new(format!("Undefined name: \"{name}\"")))
    }

    fn add_record(
        &mut self,
        obj: &Map<String, Value>,
        ns: Option<&str>,
    ) -> Result<usize, SchemaError> {
        let name = self.type_name(obj, ns)?;
        let space = declared_space(obj, ns);
        let full = name.full.clone();
        // Registered before its fields are added so that a field can refer to it.
        let idx = self.push(Node::Record {
            name,
            fields: Vec::new(),
        });
        self.register(full, idx)?;
        let mut fields = Vec::new();
        for f in obj
            .get("fields")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(fobj) = f.as_object() else {
                return Err(SchemaError::new(format!("Not a field: {f}")));
            };
            let fname = fobj.get("name").and_then(Value::as_str).unwrap_or("");
            let ty = fobj
                .get("type")
                .ok_or_else(|| SchemaError::new(format!("No field type: {f}")))?;
            let ty = self.add(ty, space.as_deref())?;
            fields.push(Field {
                name: fname.to_string(),
                aliases: string_list(fobj.get("aliases")),
                has_default: fobj.contains_key("default"),
                ty,
            });
        }
        if let Some(Node::Record { fields: slot, .. }) = self.nodes.get_mut(idx) {
            *slot = fields;
        }
        Ok(idx)
    }

    fn type_name(
        &self,
        obj: &Map<String, Value>,
        ns: Option<&str>,
    ) -> Result<TypeName, SchemaError> {
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| SchemaError::new("No name in schema"))?;
        let space = declared_space(obj, ns);
        let (_, simple) = split_name(name, None);
        let full = full_name(space.as_deref(), &simple);
        let aliases = string_list(obj.get("aliases"))
            .iter()
            .map(|a| {
                let (asp, asimple) = split_name(a, space.as_deref());
                full_name(asp.as_deref(), &asimple)
            })
            .collect();
        Ok(TypeName {
            simple,
            full,
            aliases,
        })
    }

    fn register(&mut self, full: String, idx: usize) -> Result<(), SchemaError> {
        if self.names.contains_key(&full) {
            return Err(SchemaError::new(format!("Can't redefine: {full}")));
        }
        self.names.insert(full, idx);
        Ok(())
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }
}
