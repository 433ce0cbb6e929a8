//! Avro schema resolution as Java Avro's `SchemaCompatibility` decides it (which is
//! what Confluent runs): can a reader schema read everything a writer schema wrote?
//! Messages are Confluent's (`io.confluent.kafka.schemaregistry.avro.Difference`),
//! with "reader" and "writer" where Confluent says "new" and "old".

use std::collections::HashSet;

use super::model::{Arena, Node, Prim, TypeName};

/// Deeper than this, the check gives up (with an incompatibility, never a crash).
/// Named types are visited once per (reader, writer) pair, so only pathological
/// schemas come near it.
const CHECK_DEPTH_MAX: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TypeMismatch,
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    MissingUnionBranch,
    ReaderFieldMissingDefaultValue,
}

struct Incompatibility {
    kind: Kind,
    path: String,
    info: String,
}

impl Incompatibility {
    fn message(&self) -> String {
        let path = &self.path;
        let info = &self.info;
        let (kind, description) = match self.kind {
            Kind::FixedSizeMismatch => (
                "FIXED_SIZE_MISMATCH",
                format!(
                    "The size of FIXED type field at path '{path}' in the reader schema does not match with the writer schema"
                ),
            ),
            Kind::TypeMismatch => (
                "TYPE_MISMATCH",
                format!(
                    "The type (path '{path}') of a field in the reader schema does not match with the writer schema"
                ),
            ),
            Kind::NameMismatch => (
                "NAME_MISMATCH",
                format!("The name of the schema has changed (path '{path}')"),
            ),
            Kind::MissingEnumSymbols => (
                "MISSING_ENUM_SYMBOLS",
                format!(
                    "The reader schema is missing enum symbols '{info}' at path '{path}' in the writer schema"
                ),
            ),
            Kind::MissingUnionBranch => (
                "MISSING_UNION_BRANCH",
                format!(
                    "The reader schema is missing a type inside a union field at path '{path}' in the writer schema"
                ),
            ),
            Kind::ReaderFieldMissingDefaultValue => (
                "READER_FIELD_MISSING_DEFAULT_VALUE",
                format!(
                    "The field '{info}' at path '{path}' in the reader schema has no default value and is missing in the writer schema"
                ),
            ),
        };
        format!("{{errorType:'{kind}', description:'{description}', additionalInfo:'{info}'}}")
    }
}

/// All the ways `reader` cannot read `writer`; empty when it can.
pub(crate) fn check(reader: &Arena, r_root: usize, writer: &Arena, w_root: usize) -> Vec<String> {
    let mut c = Checker {
        reader,
        writer,
        visited: HashSet::new(),
        path: Vec::new(),
        found: Vec::new(),
    };
    c.compat(r_root, w_root, 0);
    c.found.iter().map(Incompatibility::message).collect()
}

struct Checker<'a> {
    reader: &'a Arena,
    writer: &'a Arena,
    /// (reader, writer) pairs of named types already checked or being checked: a
    /// recursive type meets itself again here and is compatible on that path (Java's
    /// memo does the same).
    visited: HashSet<(usize, usize)>,
    path: Vec<String>,
    found: Vec<Incompatibility>,
}

impl Checker<'_> {
    fn report(&mut self, kind: Kind, info: String) {
        let path = if self.path.is_empty() {
            "/".to_string()
        } else {
            format!("/{}", self.path.join("/"))
        };
        self.found.push(Incompatibility { kind, path, info });
    }

    fn at<T>(&mut self, seg: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(seg.into());
        let out = f(self);
        self.path.pop();
        out
    }

    /// Would `compat(r, w)` find nothing? Runs it on the side, keeping no findings.
    fn is_compatible(&mut self, r: usize, w: usize, depth: usize) -> bool {
        let before = self.found.len();
        let visited = self.visited.clone();
        self.compat(r, w, depth);
        let ok = self.found.len() == before;
        self.found.truncate(before);
        self.visited = visited;
        ok
    }

    fn compat(&mut self, r: usize, w: usize, depth: usize) {
        if depth > CHECK_DEPTH_MAX {
            self.report(
                Kind::TypeMismatch,
                format!("schemas nested deeper than {CHECK_DEPTH_MAX} levels"),
            );
            return;
        }
        let (Some(rn), Some(wn)) = (self.reader.nodes.get(r), self.writer.nodes.get(w)) else {
            self.report(Kind::TypeMismatch, "dangling schema reference".into());
            return;
        };
        if matches!(
            rn,
            Node::Record { .. } | Node::Enum { .. } | Node::Fixed { .. }
        ) && !self.visited.insert((r, w))
        {
            return;
        }
        let depth = depth + 1;
        match (rn, wn) {
            (Node::Prim(a), Node::Prim(b)) if a == b => {}
            (
                Node::Record {
                    name: rname,
                    fields,
                },
                Node::Record {
                    name: wname,
                    fields: wfields,
                },
            ) => {
                if !names_match(rname, wname) {
                    let info = format!("expected: {}", wname.full);
                    self.at("name", |c| c.report(Kind::NameMismatch, info));
                }
                for (i, rf) in fields.iter().enumerate() {
                    let found = wfields.iter().find(|wf| wf.name == rf.name).or_else(|| {
                        rf.aliases
                            .iter()
                            .find_map(|a| wfields.iter().find(|wf| &wf.name == a))
                    });
                    match found {
                        Some(wf) => {
                            let wty = wf.ty;
                            self.at("fields", |c| {
                                c.at(i.to_string(), |c| {
                                    c.at("type", |c| c.compat(rf.ty, wty, depth))
                                })
                            });
                        }
                        None if rf.has_default => {}
                        None => {
                            let enum_default = matches!(
                                self.reader.nodes.get(rf.ty),
                                Some(Node::Enum {
                                    default: Some(_),
                                    ..
                                })
                            );
                            if enum_default {
                                // Java: a reader enum with a default can stand for
                                // the missing field when the writer record reads as it.
                                self.at("fields", |c| {
                                    c.at(i.to_string(), |c| c.compat(rf.ty, w, depth))
                                });
                            } else {
                                let info = rf.name.clone();
                                self.at("fields", |c| {
                                    c.at(i.to_string(), |c| {
                                        c.report(Kind::ReaderFieldMissingDefaultValue, info)
                                    })
                                });
                            }
                        }
                    }
                }
            }
            (
                Node::Enum {
                    name: rname,
                    symbols,
                    default,
                },
                Node::Enum {
                    name: wname,
                    symbols: wsymbols,
                    ..
                },
            ) => {
                if !names_match(rname, wname) {
                    let info = format!("expected: {}", wname.full);
                    self.at("name", |c| c.report(Kind::NameMismatch, info));
                }
                let mut missing: Vec<&String> =
                    wsymbols.iter().filter(|s| !symbols.contains(s)).collect();
                missing.sort();
                let has_default = default.as_ref().is_some_and(|d| symbols.contains(d));
                if !missing.is_empty() && !has_default {
                    let info = format!(
                        "[{}]",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.at("symbols", |c| c.report(Kind::MissingEnumSymbols, info));
                }
            }
            (
                Node::Fixed { name: rname, size },
                Node::Fixed {
                    name: wname,
                    size: wsize,
                },
            ) => {
                if !names_match(rname, wname) {
                    let info = format!("expected: {}", wname.full);
                    self.at("name", |c| c.report(Kind::NameMismatch, info));
                }
                if size != wsize {
                    let info = format!("expected: {wsize}, found: {size}");
                    self.at("size", |c| c.report(Kind::FixedSizeMismatch, info));
                }
            }
            (Node::Array(ri), Node::Array(wi)) => {
                let (ri, wi) = (*ri, *wi);
                self.at("items", |c| c.compat(ri, wi, depth));
            }
            (Node::Map(rv), Node::Map(wv)) => {
                let (rv, wv) = (*rv, *wv);
                self.at("values", |c| c.compat(rv, wv, depth));
            }
            (Node::Union(_), Node::Union(wbranches)) => {
                for (i, &wb) in wbranches.iter().enumerate() {
                    if !self.is_compatible(r, wb, depth) {
                        let info = format!(
                            "reader union lacking writer type: {}",
                            self.writer.nodes.get(wb).map_or("?", Node::type_name)
                        );
                        self.at(i.to_string(), |c| c.report(Kind::MissingUnionBranch, info));
                    }
                }
            }
            (_, Node::Union(wbranches)) => {
                for (i, &wb) in wbranches.iter().enumerate() {
                    self.at(i.to_string(), |c| c.compat(r, wb, depth));
                }
            }
            (Node::Union(rbranches), _) => {
                let found = rbranches.iter().any(|&rb| self.is_compatible(rb, w, depth));
                if !found {
                    let info = format!("reader union lacking writer type: {}", wn.type_name());
                    self.report(Kind::MissingUnionBranch, info);
                }
            }
            (Node::Prim(p), Node::Prim(wp)) if promotes(*wp, *p) => {}
            _ => {
                let info = format!(
                    "reader type: {} not compatible with writer type: {}",
                    rn.type_name(),
                    wn.type_name()
                );
                self.report(Kind::TypeMismatch, info);
            }
        }
    }
}

/// Java's `schemaNameEquals`: the unqualified names are equal, or a reader alias is
/// the writer's full name.
fn names_match(reader: &TypeName, writer: &TypeName) -> bool {
    reader.simple == writer.simple || reader.aliases.contains(&writer.full)
}

/// Avro's promotions: a value written as `writer` can be read as `reader`.
fn promotes(writer: Prim, reader: Prim) -> bool {
    use Prim::*;
    matches!(
        (writer, reader),
        (Int, Long | Float | Double)
            | (Long, Float | Double)
            | (Float, Double)
            | (String, Bytes)
            | (Bytes, String)
    )
}
