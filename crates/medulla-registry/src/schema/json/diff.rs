//! Confluent's JSON Schema compatibility rules, written from the behaviour of
//! `io.confluent.kafka.schemaregistry.json.diff` (SchemaDiff and friends).
//!
//! Confluent first loads a schema into everit's object model and then diffs two
//! models: `compare(original = writer, update = reader)` collects `Difference`s, each a
//! type name and a JSON path, and the change is compatible when every type is in
//! `COMPATIBLE_CHANGES`. We diff the `serde_json` values directly; [`kind`] gives a
//! value the everit class the loader would have built for it:
//!
//! - `true` / `false` are TrueSchema / FalseSchema, `{}` is EmptySchema;
//! - a `$ref` is replaced by what it points to (ReferenceSchema is unwrapped);
//! - otherwise each keyword family present yields one schema, in everit's extractor
//!   order: `enum`, `allOf` / `anyOf` / `oneOf`, `not`, `const`, `type` (a list of types
//!   is an `anyOf` of one schema per type), then the keywords of a family that `type`
//!   did not name ("property sniffing": `properties` makes an ObjectSchema, `minimum` a
//!   NumberSchema, …), then `if` / `then` / `else`. One schema is the result; several
//!   are a synthetic `allOf`.
//!
//! A node is a value plus the [`Facet`] of it that such a split selected, so no
//! schema is ever copied.
//!
//! Termination: a pair of nodes already being compared higher up the stack is taken
//! as compatible (Confluent's `Context` does the same for recursive schemas), the
//! comparison depth is bounded by [`COMPARE_DEPTH_MAX`] and the total work by
//! [`COMPARE_STEPS_MAX`]; hitting either is an incompatibility with its own name.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use serde_json::{Map, Value};

/// Nested comparisons deeper than this give up (a `COMPARISON_TOO_DEEP` difference).
/// Real schemas nest far less: serde_json refuses JSON deeper than 128 levels.
const COMPARE_DEPTH_MAX: usize = 128;
/// Total number of node comparisons one check may make (`anyOf` against `anyOf` is a
/// cross product, nested ones multiply) before it gives up (`COMPARISON_TOO_COMPLEX`).
const COMPARE_STEPS_MAX: u64 = 100_000;
/// Longest chain of `$ref`s to `$ref`s followed before a node is taken as `{}`.
const REF_CHAIN_MAX: usize = 32;

/// Confluent's `SchemaDiff.COMPATIBLE_CHANGES` (the ones this checker can emit, and
/// the rest for completeness).
const COMPATIBLE_CHANGES: &[&str] = &[
    "ID_CHANGED",
    "DESCRIPTION_CHANGED",
    "TITLE_CHANGED",
    "DEFAULT_CHANGED",
    "SCHEMA_REMOVED",
    "TYPE_EXTENDED",
    "MAX_LENGTH_INCREASED",
    "MAX_LENGTH_REMOVED",
    "MIN_LENGTH_DECREASED",
    "MIN_LENGTH_REMOVED",
    "PATTERN_REMOVED",
    "MAXIMUM_INCREASED",
    "MAXIMUM_REMOVED",
    "MINIMUM_DECREASED",
    "MINIMUM_REMOVED",
    "EXCLUSIVE_MAXIMUM_INCREASED",
    "EXCLUSIVE_MAXIMUM_REMOVED",
    "EXCLUSIVE_MINIMUM_DECREASED",
    "EXCLUSIVE_MINIMUM_REMOVED",
    "MULTIPLE_OF_REDUCED",
    "MULTIPLE_OF_REMOVED",
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    "REQUIRED_ATTRIBUTE_REMOVED",
    "DEPENDENCY_ARRAY_NARROWED",
    "DEPENDENCY_ARRAY_REMOVED",
    "DEPENDENCY_SCHEMA_REMOVED",
    "MAX_PROPERTIES_INCREASED",
    "MAX_PROPERTIES_REMOVED",
    "MIN_PROPERTIES_DECREASED",
    "MIN_PROPERTIES_REMOVED",
    "ADDITIONAL_PROPERTIES_ADDED",
    "ADDITIONAL_PROPERTIES_EXTENDED",
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "MAX_ITEMS_INCREASED",
    "MAX_ITEMS_REMOVED",
    "MIN_ITEMS_DECREASED",
    "MIN_ITEMS_REMOVED",
    "UNIQUE_ITEMS_REMOVED",
    "ADDITIONAL_ITEMS_ADDED",
    "ADDITIONAL_ITEMS_EXTENDED",
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ENUM_ARRAY_EXTENDED",
    "COMBINED_TYPE_EXTENDED",
    "PRODUCT_TYPE_NARROWED",
    "SUM_TYPE_EXTENDED",
    "NOT_TYPE_NARROWED",
];

fn is_compatible_change(ty: &str) -> bool {
    COMPATIBLE_CHANGES.contains(&ty)
}

/// One JSON document a `$ref` can reach, by the URI (no fragment) it is known by.
#[derive(Debug)]
pub(crate) struct Doc {
    pub(crate) uri: String,
    pub(crate) value: Value,
}

impl Doc {
    pub(crate) fn new(uri: String, value: Value) -> Doc {
        Doc { uri, value }
    }
}

/// The incompatible differences between `writer` (Confluent's "original") and
/// `reader` (its "update"), as `"TYPE #/json/path"`; empty when compatible. Index 0 of
/// each slice is the schema itself, the rest its dependencies.
pub(crate) fn incompatibilities(writer: &[Doc], reader: &[Doc]) -> Vec<String> {
    let (Some(w), Some(r)) = (writer.first(), reader.first()) else {
        return vec!["SCHEMA_MISSING #/".to_string()];
    };
    let shared = Shared::default();
    let mut ctx = Ctx::new(&shared);
    let original = Node::whole(Side(writer), &w.value);
    let update = Node::whole(Side(reader), &r.value);
    compare(&mut ctx, Some(original), Some(update));
    let mut errors: Vec<String> = ctx
        .diffs
        .into_iter()
        .filter(|(ty, _)| !is_compatible_change(ty))
        .map(|(ty, path)| format!("{ty} {path}"))
        .collect();
    // A limit hit inside a union alternative is otherwise hidden behind
    // COMBINED_TYPE_SUBSCHEMAS_CHANGED: say which limit it was.
    for (hit, ty) in [
        (
            shared.steps.get() > COMPARE_STEPS_MAX,
            "COMPARISON_TOO_COMPLEX",
        ),
        (shared.too_deep.get(), "COMPARISON_TOO_DEEP"),
    ] {
        if hit && !errors.iter().any(|e| e.starts_with(ty)) {
            errors.push(format!("{ty} #/"));
        }
    }
    errors
}

/// The documents of one side of the comparison.
#[derive(Clone, Copy)]
struct Side<'a>(&'a [Doc]);

impl<'a> Side<'a> {
    /// The value `reference` points to, seen from inside document `doc`.
    fn resolve(self, doc: usize, reference: &str) -> Option<(usize, &'a Value)> {
        let here = self.0.get(doc)?;
        let (target, fragment) = match reference.split_once('#') {
            Some((target, fragment)) => (target, fragment),
            None => (reference, ""),
        };
        let index = if target.is_empty() {
            doc
        } else {
            let uri = super::resolve_uri(&here.uri, target).ok()?;
            self.0.iter().position(|d| d.uri == uri)?
        };
        let root = &self.0.get(index)?.value;
        let value = if fragment.is_empty() {
            root
        } else if fragment.starts_with('/') {
            root.pointer(&percent_decode(fragment)?)?
        } else {
            find_anchor(root, fragment, 0)?
        };
        Some((index, value))
    }
}

/// `%XX` escapes decoded (a JSON pointer in a URI fragment is percent-encoded).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'%') => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            Some(&b) => {
                out.push(b);
                i += 1;
            }
            None => break,
        }
    }
    String::from_utf8(out).ok()
}

/// The subschema named `anchor` by `$anchor` (2019-09+) or a `$id` / `id` of `#anchor`
/// (drafts 4–7). Depth is bounded by serde_json's parser.
fn find_anchor<'a>(value: &'a Value, anchor: &str, depth: usize) -> Option<&'a Value> {
    if depth > COMPARE_DEPTH_MAX {
        return None;
    }
    match value {
        Value::Object(map) => {
            let named = |k: &str, prefix: &str| {
                map.get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| s.strip_prefix(prefix))
                    == Some(anchor)
            };
            if named("$anchor", "") || named("$id", "#") || named("id", "#") {
                return Some(value);
            }
            map.values().find_map(|v| find_anchor(v, anchor, depth + 1))
        }
        Value::Array(items) => items.iter().find_map(|v| find_anchor(v, anchor, depth + 1)),
        _ => None,
    }
}

/// A JSON type as everit's loader knows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Ty {
    String,
    Integer,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

impl Ty {
    fn parse(name: &str) -> Option<Ty> {
        Some(match name {
            "string" => Ty::String,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            "null" => Ty::Null,
            "array" => Ty::Array,
            "object" => Ty::Object,
            _ => return None,
        })
    }

    /// The keywords everit's loader for this type consumes; a keyword of another
    /// family is "sniffed" into a schema of its own.
    fn keywords(self) -> &'static [&'static str] {
        match self {
            Ty::String => &["minLength", "maxLength", "pattern", "format"],
            Ty::Integer | Ty::Number => &[
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "multipleOf",
            ],
            Ty::Array => &[
                "items",
                "additionalItems",
                "prefixItems",
                "minItems",
                "maxItems",
                "uniqueItems",
                "contains",
                "minContains",
                "maxContains",
                "unevaluatedItems",
            ],
            Ty::Object => &[
                "properties",
                "required",
                "minProperties",
                "maxProperties",
                "dependencies",
                "dependentRequired",
                "dependentSchemas",
                "patternProperties",
                "additionalProperties",
                "propertyNames",
            ],
            Ty::Boolean | Ty::Null => &[],
        }
    }
}

/// The families property sniffing looks for, in everit's order.
const SNIFFED: [Ty; 4] = [Ty::Object, Ty::Array, Ty::Number, Ty::String];

/// `allOf` / `anyOf` / `oneOf`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Crit {
    All,
    Any,
    One,
}

impl Crit {
    fn keyword(self) -> &'static str {
        match self {
            Crit::All => "allOf",
            Crit::Any => "anyOf",
            Crit::One => "oneOf",
        }
    }
}

/// Which schema of a value's split (see the module docs) a node stands for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Facet {
    /// The whole value.
    Whole,
    Enum,
    Combined(Crit),
    Not,
    Const,
    /// `"type": [..]`: an `anyOf` of one [`Facet::Type`] per entry.
    Types,
    Type(Ty),
    Conditional,
}

#[derive(Clone, Copy)]
struct Node<'a> {
    side: Side<'a>,
    doc: usize,
    value: &'a Value,
    facet: Facet,
}

impl<'a> Node<'a> {
    fn whole(side: Side<'a>, value: &'a Value) -> Node<'a> {
        Node {
            side,
            doc: 0,
            value,
            facet: Facet::Whole,
        }
    }

    /// A subschema of this node's value, in the same document.
    fn child(&self, value: &'a Value) -> Node<'a> {
        Node {
            value,
            facet: Facet::Whole,
            ..*self
        }
    }

    fn with_facet(&self, facet: Facet) -> Node<'a> {
        Node { facet, ..*self }
    }

    fn key(&self) -> (usize, Facet) {
        (std::ptr::from_ref(self.value) as usize, self.facet)
    }

    /// Same schema text and facet: Confluent collapses duplicate subschemas of a
    /// combined schema by their JSON.
    fn same(&self, other: &Node<'_>) -> bool {
        self.facet == other.facet && self.value == other.value
    }

    /// `$ref`s followed (only a whole value can be one).
    fn resolved(self) -> Node<'a> {
        let mut node = self;
        for _ in 0..REF_CHAIN_MAX {
            let Some(reference) = node.reference() else {
                return node;
            };
            match node.side.resolve(node.doc, reference) {
                Some((doc, value)) => {
                    node = Node {
                        side: node.side,
                        doc,
                        value,
                        facet: Facet::Whole,
                    }
                }
                None => return node.with_facet(Facet::Conditional),
            }
        }
        // A chain of references that never reaches a schema accepts anything.
        node.with_facet(Facet::Conditional)
    }

    fn reference(&self) -> Option<&'a str> {
        if self.facet != Facet::Whole {
            return None;
        }
        self.value.get("$ref").and_then(Value::as_str)
    }

    fn map(&self) -> Option<&'a Map<String, Value>> {
        self.value.as_object()
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map().and_then(|m| m.get(key))
    }

    /// The schemas everit's extractors make of a whole object value.
    fn parts(&self) -> Vec<Facet> {
        let Some(map) = self.map() else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        if map.contains_key("enum") {
            parts.push(Facet::Enum);
        }
        for crit in [Crit::All, Crit::Any, Crit::One] {
            if map.get(crit.keyword()).is_some_and(Value::is_array) {
                parts.push(Facet::Combined(crit));
            }
        }
        if map.contains_key("not") {
            parts.push(Facet::Not);
        }
        if map.contains_key("const") {
            parts.push(Facet::Const);
        }
        let mut named: Vec<Ty> = Vec::new();
        match map.get("type") {
            Some(Value::String(name)) => {
                if let Some(ty) = Ty::parse(name) {
                    named.push(ty);
                    parts.push(Facet::Type(ty));
                }
            }
            Some(Value::Array(names)) => {
                named.extend(names.iter().filter_map(Value::as_str).filter_map(Ty::parse));
                parts.push(Facet::Types);
            }
            _ => {}
        }
        for family in SNIFFED {
            let consumed = named.iter().any(|t| t.keywords() == family.keywords());
            if !consumed && family.keywords().iter().any(|k| map.contains_key(*k)) {
                parts.push(Facet::Type(family));
            }
        }
        if ["if", "then", "else"].iter().any(|k| map.contains_key(*k)) {
            parts.push(Facet::Conditional);
        }
        parts
    }

    /// The everit class of this (resolved) node.
    fn kind(&self) -> Kind<'a> {
        let facet = match self.facet {
            Facet::Whole => match self.value {
                Value::Bool(true) => return Kind::True,
                Value::Bool(false) => return Kind::False,
                _ => {
                    let parts = self.parts();
                    match parts.as_slice() {
                        [] => return Kind::Empty,
                        [one] => *one,
                        _ => {
                            let subs = parts.iter().map(|f| self.with_facet(*f)).collect();
                            return Kind::Combined(Crit::All, subs);
                        }
                    }
                }
            },
            other => other,
        };
        let node = self.with_facet(facet);
        match facet {
            Facet::Whole | Facet::Conditional => Kind::Other,
            Facet::Enum => match node.get("enum") {
                Some(Value::Array(values)) => Kind::Enum(values),
                _ => Kind::Other,
            },
            Facet::Const => match node.get("const") {
                Some(value) => Kind::Const(value),
                None => Kind::Other,
            },
            Facet::Not => match node.get("not") {
                Some(value) => Kind::Not(node.child(value)),
                None => Kind::Other,
            },
            Facet::Combined(crit) => match node.get(crit.keyword()) {
                Some(Value::Array(items)) => {
                    Kind::Combined(crit, items.iter().map(|v| node.child(v)).collect())
                }
                _ => Kind::Other,
            },
            Facet::Types => {
                let names = node.get("type").and_then(Value::as_array);
                let subs = names
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(Ty::parse)
                    .map(|t| node.with_facet(Facet::Type(t)))
                    .collect();
                Kind::Combined(Crit::Any, subs)
            }
            Facet::Type(ty) => match ty {
                Ty::String => Kind::String,
                Ty::Integer => Kind::Number { integer: true },
                Ty::Number => Kind::Number { integer: false },
                Ty::Boolean => Kind::Boolean,
                Ty::Null => Kind::Null,
                Ty::Array => Kind::Array,
                Ty::Object => Kind::Object,
            },
        }
    }
}

/// everit's schema classes, with what the diff needs of each.
enum Kind<'a> {
    True,
    False,
    Empty,
    Combined(Crit, Vec<Node<'a>>),
    Not(Node<'a>),
    Enum(&'a Vec<Value>),
    Const(&'a Value),
    String,
    Number {
        integer: bool,
    },
    Boolean,
    Null,
    Array,
    Object,
    /// ConditionalSchema (and an unresolvable reference): never compared further.
    Other,
}

impl Kind<'_> {
    fn class(&self) -> u8 {
        match self {
            Kind::True => 0,
            Kind::False => 1,
            Kind::Empty => 2,
            Kind::Combined(..) => 3,
            Kind::Not(_) => 4,
            Kind::Enum(_) => 5,
            Kind::Const(_) => 6,
            Kind::String => 7,
            Kind::Number { .. } => 8,
            Kind::Boolean => 9,
            Kind::Null => 10,
            Kind::Array => 11,
            Kind::Object => 12,
            Kind::Other => 13,
        }
    }

    /// `instanceof EmptySchema` (TrueSchema extends EmptySchema).
    fn is_empty_schema(&self) -> bool {
        matches!(self, Kind::True | Kind::Empty)
    }
}

/// A (writer node, reader node) pair by identity: value address and facet.
type PairKey = ((usize, Facet), (usize, Facet));

/// Property dependencies (name, required names) and schema dependencies (name, schema).
type Dependencies<'a> = (
    Vec<(&'a String, Vec<&'a Value>)>,
    Vec<(&'a String, Node<'a>)>,
);

/// State shared by a context and all its subcontexts.
#[derive(Default)]
struct Shared {
    in_progress: RefCell<HashSet<PairKey>>,
    depth: Cell<usize>,
    too_deep: Cell<bool>,
    steps: Cell<u64>,
}

/// Confluent's `diff.Context`: the current JSON path and the differences found.
struct Ctx<'s> {
    shared: &'s Shared,
    path: Vec<String>,
    diffs: Vec<(&'static str, String)>,
}

impl<'s> Ctx<'s> {
    fn new(shared: &'s Shared) -> Ctx<'s> {
        Ctx {
            shared,
            path: Vec::new(),
            diffs: Vec::new(),
        }
    }

    fn sub(&self) -> Ctx<'s> {
        Ctx {
            shared: self.shared,
            path: self.path.clone(),
            diffs: Vec::new(),
        }
    }

    fn is_compatible(&self) -> bool {
        self.diffs.iter().all(|(ty, _)| is_compatible_change(ty))
    }

    fn add(&mut self, ty: &'static str) {
        let path = format!("#/{}", self.path.join("/"));
        self.diffs.push((ty, path));
    }

    fn add_at(&mut self, attribute: &str, ty: &'static str) {
        self.path.push(attribute.to_string());
        self.add(ty);
        self.path.pop();
    }

    fn absorb(&mut self, other: Ctx<'_>) {
        self.diffs.extend(other.diffs);
    }

    /// Runs `f` with `segment` appended to the path.
    fn at<R>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(segment.into());
        let r = f(self);
        self.path.pop();
        r
    }
}

/// Confluent's `SchemaDiff.compare(ctx, original, update)`.
fn compare(ctx: &mut Ctx<'_>, original: Option<Node<'_>>, update: Option<Node<'_>>) {
    let (original, update) = match (original, update) {
        (None, None) => return,
        (None, Some(_)) => return ctx.add("SCHEMA_ADDED"),
        (Some(_), None) => return ctx.add("SCHEMA_REMOVED"),
        (Some(o), Some(u)) => (o.resolved(), u.resolved()),
    };
    let shared = ctx.shared;
    let steps = shared.steps.get() + 1;
    shared.steps.set(steps);
    if steps > COMPARE_STEPS_MAX {
        return ctx.add("COMPARISON_TOO_COMPLEX");
    }
    if shared.depth.get() >= COMPARE_DEPTH_MAX {
        shared.too_deep.set(true);
        return ctx.add("COMPARISON_TOO_DEEP");
    }
    let key = (original.key(), update.key());
    if !shared.in_progress.borrow_mut().insert(key) {
        // A recursive schema came back to a pair still being compared: assume
        // compatible, as Confluent's Context does.
        return;
    }
    shared.depth.set(shared.depth.get() + 1);
    compare_resolved(ctx, original, update);
    shared.depth.set(shared.depth.get().saturating_sub(1));
    shared.in_progress.borrow_mut().remove(&key);
}

fn compare_resolved(ctx: &mut Ctx<'_>, original: Node<'_>, update: Node<'_>) {
    let o_kind = original.kind();
    let u_kind = update.kind();

    match (&o_kind, &u_kind) {
        (o, Kind::Combined(crit, subs)) if !matches!(o, Kind::Combined(..)) => {
            if let [only] = subs.as_slice() {
                let mut sub = ctx.sub();
                compare(&mut sub, Some(original), Some(*only));
                if sub.is_compatible() {
                    return ctx.absorb(sub);
                }
            } else if matches!(crit, Crit::Any | Crit::One) {
                for s in subs {
                    let mut sub = ctx.sub();
                    compare(&mut sub, Some(original), Some(*s));
                    if sub.is_compatible() {
                        ctx.absorb(sub);
                        return ctx.add("SUM_TYPE_EXTENDED");
                    }
                }
            }
        }
        (Kind::Combined(crit, subs), u) if !matches!(u, Kind::Combined(..)) => {
            if let [only] = subs.as_slice() {
                let mut sub = ctx.sub();
                compare(&mut sub, Some(*only), Some(update));
                if sub.is_compatible() {
                    return ctx.absorb(sub);
                }
            } else if *crit == Crit::All {
                for s in subs {
                    let mut sub = ctx.sub();
                    compare(&mut sub, Some(*s), Some(update));
                    if sub.is_compatible() {
                        ctx.absorb(sub);
                        return ctx.add("PRODUCT_TYPE_NARROWED");
                    }
                }
            }
        }
        _ => {}
    }

    if o_kind.class() != u_kind.class() {
        if !matches!(o_kind, Kind::False) && !u_kind.is_empty_schema() {
            ctx.add("TYPE_CHANGED");
        }
        return;
    }

    match (o_kind, u_kind) {
        (Kind::String, Kind::String) => compare_string(ctx, original, update),
        (Kind::Number { integer: oi }, Kind::Number { integer: ui }) => {
            compare_number(ctx, original, update);
            if oi != ui {
                ctx.add(if oi { "TYPE_EXTENDED" } else { "TYPE_NARROWED" });
            }
        }
        (Kind::Enum(o), Kind::Enum(u)) => compare_enum(ctx, o, u),
        (Kind::Const(o), Kind::Const(u)) if o != u => {
            ctx.add_at("const", "ENUM_ARRAY_CHANGED");
        }
        (Kind::Combined(oc, os), Kind::Combined(uc, us)) => {
            compare_combined(ctx, (oc, os), (uc, us));
        }
        (Kind::Not(o), Kind::Not(u)) => ctx.at("not", |ctx| {
            let mut sub = ctx.sub();
            // The wrapped schemas swap roles.
            compare(&mut sub, Some(u), Some(o));
            ctx.add(if sub.is_compatible() {
                "NOT_TYPE_NARROWED"
            } else {
                "NOT_TYPE_EXTENDED"
            });
        }),
        (Kind::Object, Kind::Object) => compare_object(ctx, original, update),
        (Kind::Array, Kind::Array) => compare_array(ctx, original, update),
        _ => {}
    }
}

fn number(node: &Node<'_>, key: &str) -> Option<f64> {
    node.get(key).and_then(Value::as_f64)
}

/// The Added / Removed / Increased / Decreased difference of one numeric attribute
/// (`names` in that order), as Confluent's `*SchemaDiff.compareAttributes` do.
fn compare_limit(
    ctx: &mut Ctx<'_>,
    attribute: &str,
    original: Option<f64>,
    update: Option<f64>,
    names: [&'static str; 4],
) {
    let [added, removed, increased, decreased] = names;
    match (original, update) {
        (None, None) => {}
        (None, Some(_)) => ctx.add_at(attribute, added),
        (Some(_), None) => ctx.add_at(attribute, removed),
        (Some(o), Some(u)) if o < u => ctx.add_at(attribute, increased),
        (Some(o), Some(u)) if o > u => ctx.add_at(attribute, decreased),
        _ => {}
    }
}

fn compare_string(ctx: &mut Ctx<'_>, o: Node<'_>, u: Node<'_>) {
    for (attribute, names) in [
        (
            "maxLength",
            [
                "MAX_LENGTH_ADDED",
                "MAX_LENGTH_REMOVED",
                "MAX_LENGTH_INCREASED",
                "MAX_LENGTH_DECREASED",
            ],
        ),
        (
            "minLength",
            [
                "MIN_LENGTH_ADDED",
                "MIN_LENGTH_REMOVED",
                "MIN_LENGTH_INCREASED",
                "MIN_LENGTH_DECREASED",
            ],
        ),
    ] {
        compare_limit(
            ctx,
            attribute,
            number(&o, attribute),
            number(&u, attribute),
            names,
        );
    }
    let pattern = |n: &Node<'_>| n.get("pattern").and_then(Value::as_str).map(str::to_string);
    match (pattern(&o), pattern(&u)) {
        (None, Some(_)) => ctx.add_at("pattern", "PATTERN_ADDED"),
        (Some(_), None) => ctx.add_at("pattern", "PATTERN_REMOVED"),
        (Some(a), Some(b)) if a != b => ctx.add_at("pattern", "PATTERN_CHANGED"),
        _ => {}
    }
}

fn compare_number(ctx: &mut Ctx<'_>, o: Node<'_>, u: Node<'_>) {
    // Draft 4 spells exclusive bounds as booleans beside maximum / minimum; everit then
    // has no exclusive limit, and Confluent compares maximum / minimum only.
    for (attribute, names) in [
        (
            "maximum",
            [
                "MAXIMUM_ADDED",
                "MAXIMUM_REMOVED",
                "MAXIMUM_INCREASED",
                "MAXIMUM_DECREASED",
            ],
        ),
        (
            "minimum",
            [
                "MINIMUM_ADDED",
                "MINIMUM_REMOVED",
                "MINIMUM_INCREASED",
                "MINIMUM_DECREASED",
            ],
        ),
        (
            "exclusiveMaximum",
            [
                "EXCLUSIVE_MAXIMUM_ADDED",
                "EXCLUSIVE_MAXIMUM_REMOVED",
                "EXCLUSIVE_MAXIMUM_INCREASED",
                "EXCLUSIVE_MAXIMUM_DECREASED",
            ],
        ),
        (
            "exclusiveMinimum",
            [
                "EXCLUSIVE_MINIMUM_ADDED",
                "EXCLUSIVE_MINIMUM_REMOVED",
                "EXCLUSIVE_MINIMUM_INCREASED",
                "EXCLUSIVE_MINIMUM_DECREASED",
            ],
        ),
    ] {
        compare_limit(
            ctx,
            attribute,
            number(&o, attribute),
            number(&u, attribute),
            names,
        );
    }
    // Confluent tests divisibility on `intValue()`s, which divides by zero for a
    // fractional multipleOf; we test it on the values themselves.
    match (number(&o, "multipleOf"), number(&u, "multipleOf")) {
        (None, None) => {}
        (None, Some(_)) => ctx.add_at("multipleOf", "MULTIPLE_OF_ADDED"),
        (Some(_), None) => ctx.add_at("multipleOf", "MULTIPLE_OF_REMOVED"),
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => {
            let ty = if divides(a, b) {
                "MULTIPLE_OF_EXPANDED"
            } else if divides(b, a) {
                "MULTIPLE_OF_REDUCED"
            } else {
                "MULTIPLE_OF_CHANGED"
            };
            ctx.add_at("multipleOf", ty);
        }
    }
}

/// Whether `multiple` is an integer multiple of `base` (both positive, as the
/// meta-schema requires).
fn divides(base: f64, multiple: f64) -> bool {
    if base <= 0.0 || !base.is_finite() || !multiple.is_finite() {
        return false;
    }
    let ratio = multiple / base;
    (ratio - ratio.round()).abs() < 1e-9
}

fn compare_enum(ctx: &mut Ctx<'_>, o: &[Value], u: &[Value]) {
    let contains_all = |a: &[Value], b: &[Value]| b.iter().all(|v| a.contains(v));
    let u_has_o = contains_all(u, o);
    let o_has_u = contains_all(o, u);
    if u_has_o && o_has_u {
        return;
    }
    ctx.add_at(
        "enum",
        if u_has_o {
            "ENUM_ARRAY_EXTENDED"
        } else if o_has_u {
            "ENUM_ARRAY_NARROWED"
        } else {
            "ENUM_ARRAY_CHANGED"
        },
    );
}

/// Distinct subschemas, in order (Confluent's `LinkedHashSet` of `JsonSchema`s).
fn distinct<'a>(subs: &[Node<'a>]) -> Vec<Node<'a>> {
    let mut out: Vec<Node<'a>> = Vec::with_capacity(subs.len());
    for s in subs {
        if !out.iter().any(|o| o.same(s)) {
            out.push(*s);
        }
    }
    out
}

fn compare_combined(
    ctx: &mut Ctx<'_>,
    (o_crit, o_subs): (Crit, Vec<Node<'_>>),
    (u_crit, u_subs): (Crit, Vec<Node<'_>>),
) {
    let changed = if o_crit == u_crit {
        None
    } else if u_crit == Crit::Any
        || (u_crit == Crit::One && o_subs.len() == 1)
        || (u_crit == Crit::All && o_subs.len() == 1 && u_subs.len() == 1)
    {
        Some("COMBINED_TYPE_EXTENDED")
    } else {
        Some("COMBINED_TYPE_CHANGED")
    };
    if let Some(ty) = changed {
        ctx.add(ty);
        if ty == "COMBINED_TYPE_CHANGED" {
            return;
        }
    }
    let originals = distinct(&o_subs);
    let updates = distinct(&u_subs);
    let (o_len, u_len) = (originals.len(), updates.len());
    let product = u_crit == Crit::All;
    if o_len < u_len {
        ctx.add(if product {
            "PRODUCT_TYPE_EXTENDED"
        } else {
            "SUM_TYPE_EXTENDED"
        });
    } else if o_len > u_len {
        ctx.add(if product {
            "PRODUCT_TYPE_NARROWED"
        } else {
            "SUM_TYPE_NARROWED"
        });
    }

    // Compatible (original, update) pairs and their differences.
    let mut edges: Vec<Vec<Option<Ctx<'_>>>> = Vec::with_capacity(o_len);
    for (index, o) in originals.iter().enumerate() {
        let row = ctx.at(format!("{}/{index}", o_crit.keyword()), |ctx| {
            updates
                .iter()
                .map(|u| {
                    let mut sub = ctx.sub();
                    compare(&mut sub, Some(*o), Some(*u));
                    sub.is_compatible().then_some(sub)
                })
                .collect()
        });
        edges.push(row);
    }
    let matching = maximum_matching(&edges);
    let matched = matching.iter().filter(|m| m.is_some()).count();
    for (i, m) in matching.into_iter().enumerate() {
        let Some(j) = m else { continue };
        if let Some(sub) = edges
            .get_mut(i)
            .and_then(|row| row.get_mut(j))
            .and_then(Option::take)
        {
            ctx.absorb(sub);
        }
    }
    if matched < o_len.min(u_len) {
        ctx.add("COMBINED_TYPE_SUBSCHEMAS_CHANGED");
    }
}

/// A maximum bipartite matching (Kuhn's augmenting paths): for each left vertex, the
/// right vertex it is matched to. `edges[i][j]` is `Some` when `i` may match `j`.
fn maximum_matching<T>(edges: &[Vec<Option<T>>]) -> Vec<Option<usize>> {
    let right_len = edges.iter().map(Vec::len).max().unwrap_or(0);
    let mut right_match: Vec<Option<usize>> = vec![None; right_len];
    for left in 0..edges.len() {
        let mut seen = vec![false; right_len];
        augment(edges, left, &mut seen, &mut right_match);
    }
    let mut left_match = vec![None; edges.len()];
    for (right, left) in right_match.iter().enumerate() {
        if let Some(slot) = left.and_then(|l| left_match.get_mut(l)) {
            *slot = Some(right);
        }
    }
    left_match
}

/// Iterative depth-first search for an augmenting path from `start` (no recursion:
/// the number of subschemas is not bounded by the JSON depth).
fn augment<T>(
    edges: &[Vec<Option<T>>],
    start: usize,
    seen: &mut [bool],
    right_match: &mut [Option<usize>],
) -> bool {
    // The path so far: (left vertex, next right vertex to try, right vertex that led
    // to this left vertex).
    let mut stack: Vec<(usize, usize, Option<usize>)> = vec![(start, 0, None)];
    loop {
        let Some(top) = stack.last_mut() else {
            return false;
        };
        let row = edges.get(top.0).map(Vec::as_slice).unwrap_or(&[]);
        let mut found = None;
        while top.1 < row.len() {
            let right = top.1;
            top.1 += 1;
            let free_edge = row.get(right).is_some_and(Option::is_some);
            if free_edge && seen.get(right) == Some(&false) {
                found = Some(right);
                break;
            }
        }
        let Some(right) = found else {
            stack.pop();
            continue;
        };
        if let Some(s) = seen.get_mut(right) {
            *s = true;
        }
        match right_match.get(right).copied().flatten() {
            Some(other) => stack.push((other, 0, Some(right))),
            None => {
                // A free right vertex: flip the edges along the path.
                let mut free = right;
                while let Some((left, _, via)) = stack.pop() {
                    if let Some(slot) = right_match.get_mut(free) {
                        *slot = Some(left);
                    }
                    match via {
                        Some(v) => free = v,
                        None => break,
                    }
                }
                return true;
            }
        }
    }
}

/// An object schema's parts, as everit's ObjectSchema exposes them.
struct ObjectView<'a> {
    node: Node<'a>,
}

impl<'a> ObjectView<'a> {
    fn properties(&self) -> Vec<(&'a String, Node<'a>)> {
        match self.node.get("properties") {
            Some(Value::Object(props)) => {
                props.iter().map(|(k, v)| (k, self.node.child(v))).collect()
            }
            _ => Vec::new(),
        }
    }

    fn property(&self, name: &str) -> Option<Node<'a>> {
        match self.node.get("properties") {
            Some(Value::Object(props)) => props.get(name).map(|v| self.node.child(v)),
            _ => None,
        }
    }

    fn required(&self, name: &str) -> bool {
        self.node
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|v| v.as_str() == Some(name)))
    }

    fn permits_additional(&self) -> bool {
        self.node.get("additionalProperties") != Some(&Value::Bool(false))
    }

    /// everit keeps an object-valued `additionalProperties` (even `{}`) as a schema; a
    /// boolean only sets `permitsAdditionalProperties`.
    fn additional_schema(&self) -> Option<Node<'a>> {
        match self.node.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(self.node.child(v)),
            _ => None,
        }
    }

    fn pattern_properties(&self) -> Vec<(&'a String, Node<'a>)> {
        match self.node.get("patternProperties") {
            Some(Value::Object(p)) => p.iter().map(|(k, v)| (k, self.node.child(v))).collect(),
            _ => Vec::new(),
        }
    }

    fn is_open(&self) -> bool {
        self.pattern_properties().is_empty()
            && self.additional_schema().is_none()
            && self.permits_additional()
    }

    /// The schema a property without its own schema gets: the first matching
    /// `patternProperties` entry (Java's `Matcher.find`), else `additionalProperties`.
    fn schema_from_partial(&self, name: &str) -> Option<Node<'a>> {
        for (pattern, schema) in self.pattern_properties() {
            if fancy_regex::Regex::new(pattern)
                .ok()
                .and_then(|re| re.is_match(name).ok())
                .unwrap_or(false)
            {
                return Some(schema);
            }
        }
        self.additional_schema()
    }

    /// Property dependencies (`dependencies` arrays, `dependentRequired`) and schema
    /// dependencies (`dependencies` schemas, `dependentSchemas`).
    fn dependencies(&self) -> Dependencies<'a> {
        let mut arrays = Vec::new();
        let mut schemas = Vec::new();
        for key in ["dependencies", "dependentRequired", "dependentSchemas"] {
            if let Some(Value::Object(deps)) = self.node.get(key) {
                for (name, dep) in deps {
                    match dep {
                        Value::Array(items) => arrays.push((name, items.iter().collect())),
                        other => schemas.push((name, self.node.child(other))),
                    }
                }
            }
        }
        (arrays, schemas)
    }
}

/// The value of `name` in a list of (key, value) pairs.
fn find<T: Clone>(list: &[(&String, T)], name: &String) -> Option<T> {
    list.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
}

fn has_default(node: &Node<'_>) -> bool {
    node.get("default").is_some()
}

/// Keys of both lists, each once, in first-seen order.
fn union_keys<'k, T>(a: &[(&'k String, T)], b: &[(&'k String, T)]) -> Vec<&'k String> {
    let mut seen: HashSet<&String> = HashSet::with_capacity(a.len() + b.len());
    a.iter()
        .chain(b)
        .map(|(k, _)| *k)
        .filter(|k| seen.insert(k))
        .collect()
}

fn compare_object(ctx: &mut Ctx<'_>, o: Node<'_>, u: Node<'_>) {
    let original = ObjectView { node: o };
    let update = ObjectView { node: u };

    // Required.
    ctx.at("required", |ctx| {
        for (name, _) in original.properties() {
            let Some(u_prop) = update.property(name) else {
                continue;
            };
            let (was, is) = (original.required(name), update.required(name));
            if was && !is {
                ctx.add_at(name, "REQUIRED_ATTRIBUTE_REMOVED");
            } else if !was && is {
                ctx.add_at(
                    name,
                    if has_default(&u_prop) {
                        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
                    } else {
                        "REQUIRED_ATTRIBUTE_ADDED"
                    },
                );
            }
        }
    });

    // Properties.
    ctx.at("properties", |ctx| {
        let o_props = original.properties();
        let u_props = update.properties();
        for name in union_keys(&o_props, &u_props) {
            ctx.at(name.as_str(), |ctx| {
                match (original.property(name), update.property(name)) {
                    (Some(o_schema), None) => {
                        if update.is_open() {
                            ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL");
                        } else if let Some(partial) = update.schema_from_partial(name) {
                            let mut sub = ctx.sub();
                            compare(&mut sub, Some(o_schema), Some(partial));
                            let compatible = sub.is_compatible();
                            ctx.absorb(sub);
                            ctx.add(if compatible {
                                "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            } else {
                                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            });
                        } else if matches!(o_schema.resolved().kind(), Kind::False) {
                            ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                        } else {
                            ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                        }
                    }
                    (None, Some(u_schema)) => {
                        if original.is_open() {
                            ctx.add(if u_schema.resolved().kind().is_empty_schema() {
                                "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                            } else {
                                "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                            });
                        } else {
                            if let Some(partial) = original.schema_from_partial(name) {
                                let mut sub = ctx.sub();
                                compare(&mut sub, Some(partial), Some(u_schema));
                                let compatible = sub.is_compatible();
                                ctx.absorb(sub);
                                ctx.add(if compatible {
                                    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                                } else {
                                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                                });
                            }
                            ctx.add(if !update.required(name) {
                                "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
                            } else if has_default(&u_schema) {
                                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
                            } else {
                                "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
                            });
                        }
                    }
                    (o_schema, u_schema) => compare(ctx, o_schema, u_schema),
                }
            });
        }
    });

    // Dependencies.
    ctx.at("dependencies", |ctx| {
        let (o_arrays, o_schemas) = original.dependencies();
        let (u_arrays, u_schemas) = update.dependencies();
        for name in union_keys(&o_arrays, &u_arrays) {
            let (was, is) = (find(&o_arrays, name), find(&u_arrays, name));
            let ty = match (was, is) {
                (_, None) => Some("DEPENDENCY_ARRAY_REMOVED"),
                (None, Some(_)) => Some("DEPENDENCY_ARRAY_ADDED"),
                (Some(was), Some(is)) => {
                    let is_has_was = was.iter().all(|v| is.contains(v));
                    let was_has_is = is.iter().all(|v| was.contains(v));
                    match (is_has_was, was_has_is) {
                        (true, true) => None,
                        (true, false) => Some("DEPENDENCY_ARRAY_EXTENDED"),
                        (false, true) => Some("DEPENDENCY_ARRAY_NARROWED"),
                        (false, false) => Some("DEPENDENCY_ARRAY_CHANGED"),
                    }
                }
            };
            if let Some(ty) = ty {
                ctx.add_at(name, ty);
            }
        }
        for name in union_keys(&o_schemas, &u_schemas) {
            let (was, is) = (find(&o_schemas, name), find(&u_schemas, name));
            ctx.at(name.as_str(), |ctx| match (was, is) {
                (_, None) => ctx.add("DEPENDENCY_SCHEMA_REMOVED"),
                (None, Some(_)) => ctx.add("DEPENDENCY_SCHEMA_ADDED"),
                (was, is) => compare(ctx, was, is),
            });
        }
    });

    // Additional properties.
    ctx.at("additionalProperties", |ctx| {
        if original.permits_additional() != update.permits_additional() {
            ctx.add(if update.permits_additional() {
                "ADDITIONAL_PROPERTIES_ADDED"
            } else {
                "ADDITIONAL_PROPERTIES_REMOVED"
            });
        } else {
            match (original.additional_schema(), update.additional_schema()) {
                (None, Some(_)) => ctx.add("ADDITIONAL_PROPERTIES_NARROWED"),
                (Some(_), None) => ctx.add("ADDITIONAL_PROPERTIES_EXTENDED"),
                (was, is) => compare(ctx, was, is),
            }
        }
    });

    // Attributes.
    for (attribute, names) in [
        (
            "maxProperties",
            [
                "MAX_PROPERTIES_ADDED",
                "MAX_PROPERTIES_REMOVED",
                "MAX_PROPERTIES_INCREASED",
                "MAX_PROPERTIES_DECREASED",
            ],
        ),
        (
            "minProperties",
            [
                "MIN_PROPERTIES_ADDED",
                "MIN_PROPERTIES_REMOVED",
                "MIN_PROPERTIES_INCREASED",
                "MIN_PROPERTIES_DECREASED",
            ],
        ),
    ] {
        compare_limit(
            ctx,
            attribute,
            number(&o, attribute),
            number(&u, attribute),
            names,
        );
    }
}

/// An array schema's parts, as everit's ArraySchema exposes them. With
/// `prefixItems` (2020-12) the tuple is `prefixItems` and `items` plays
/// `additionalItems`.
struct ArrayView<'a> {
    node: Node<'a>,
}

impl<'a> ArrayView<'a> {
    fn additional_keyword(&self) -> &'static str {
        if self.node.get("prefixItems").is_some() {
            "items"
        } else {
            "additionalItems"
        }
    }

    fn all_items(&self) -> Option<Node<'a>> {
        if self.node.get("prefixItems").is_some() {
            return None;
        }
        match self.node.get("items") {
            Some(v @ (Value::Object(_) | Value::Bool(_))) => Some(self.node.child(v)),
            _ => None,
        }
    }

    fn tuple(&self) -> Vec<Node<'a>> {
        let key = if self.node.get("prefixItems").is_some() {
            "prefixItems"
        } else {
            "items"
        };
        match self.node.get(key) {
            Some(Value::Array(items)) => items.iter().map(|v| self.node.child(v)).collect(),
            _ => Vec::new(),
        }
    }

    fn permits_additional(&self) -> bool {
        self.node.get(self.additional_keyword()) != Some(&Value::Bool(false))
    }

    fn additional_schema(&self) -> Option<Node<'a>> {
        match self.node.get(self.additional_keyword()) {
            Some(v @ Value::Object(_)) => Some(self.node.child(v)),
            _ => None,
        }
    }

    fn unevaluated(&self) -> Option<Node<'a>> {
        self.node
            .get("unevaluatedItems")
            .map(|v| self.node.child(v))
    }

    fn is_open(&self) -> bool {
        self.permits_additional()
            && self.additional_schema().is_none()
            && self
                .unevaluated()
                .is_none_or(|n| n.resolved().kind().is_empty_schema())
    }

    fn schema_from_partial(&self) -> Option<Node<'a>> {
        if let Some(schema) = self.additional_schema() {
            return Some(schema);
        }
        let uneval = self.unevaluated().filter(|_| self.permits_additional())?;
        let kind = uneval.resolved().kind();
        (!matches!(kind, Kind::False) && !kind.is_empty_schema()).then_some(uneval)
    }
}

fn compare_array(ctx: &mut Ctx<'_>, o: Node<'_>, u: Node<'_>) {
    let original = ArrayView { node: o };
    let update = ArrayView { node: u };

    ctx.at("items", |ctx| {
        compare(ctx, original.all_items(), update.all_items());
    });

    let o_items = original.tuple();
    let u_items = update.tuple();
    let common = o_items.len().min(u_items.len());
    for (index, (oi, ui)) in o_items.iter().zip(&u_items).enumerate() {
        ctx.at(format!("items/{index}"), |ctx| {
            compare(ctx, Some(*oi), Some(*ui))
        });
    }
    for (index, oi) in o_items.iter().enumerate().skip(common) {
        ctx.at(format!("items/{index}"), |ctx| {
            if update.is_open() {
                ctx.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL");
            } else if let Some(partial) = update.schema_from_partial() {
                let mut sub = ctx.sub();
                compare(&mut sub, Some(*oi), Some(partial));
                let compatible = sub.is_compatible();
                ctx.absorb(sub);
                ctx.add(if compatible {
                    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                } else {
                    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                });
            } else if matches!(oi.resolved().kind(), Kind::False) {
                ctx.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL");
            } else {
                ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL");
            }
        });
    }
    for (index, ui) in u_items.iter().enumerate().skip(common) {
        ctx.at(format!("items/{index}"), |ctx| {
            if original.is_open() {
                ctx.add(if ui.resolved().kind().is_empty_schema() {
                    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                } else {
                    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
                });
            } else if let Some(partial) = original.schema_from_partial() {
                let mut sub = ctx.sub();
                compare(&mut sub, Some(partial), Some(*ui));
                let compatible = sub.is_compatible();
                ctx.absorb(sub);
                ctx.add(if compatible {
                    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                } else {
                    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                });
            } else {
                ctx.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL");
            }
        });
    }

    ctx.at("additionalItems", |ctx| {
        if original.permits_additional() != update.permits_additional() {
            ctx.add(if original.permits_additional() {
                "ADDITIONAL_ITEMS_REMOVED"
            } else {
                "ADDITIONAL_ITEMS_ADDED"
            });
        } else {
            match (original.additional_schema(), update.additional_schema()) {
                (None, Some(_)) => ctx.add("ADDITIONAL_ITEMS_NARROWED"),
                (Some(_), None) => ctx.add("ADDITIONAL_ITEMS_EXTENDED"),
                (was, is) => compare(ctx, was, is),
            }
        }
    });

    match (original.unevaluated(), update.unevaluated()) {
        (None, None) => {}
        (was, is) => ctx.at("unevaluatedItems", |ctx| {
            let is_false =
                |n: Option<Node<'_>>| n.is_some_and(|n| matches!(n.resolved().kind(), Kind::False));
            let is_empty =
                |n: Option<Node<'_>>| n.is_some_and(|n| n.resolved().kind().is_empty_schema());
            match (was, is) {
                (None, _) if is_false(is) => ctx.add("UNEVALUATED_ITEMS_REMOVED"),
                (None, _) => ctx.add("UNEVALUATED_ITEMS_NARROWED"),
                (_, None) if is_false(was) => ctx.add("UNEVALUATED_ITEMS_ADDED"),
                (_, None) => ctx.add("UNEVALUATED_ITEMS_EXTENDED"),
                _ if is_false(was) && !is_false(is) => ctx.add("UNEVALUATED_ITEMS_ADDED"),
                _ if !is_false(was) && is_false(is) => ctx.add("UNEVALUATED_ITEMS_REMOVED"),
                _ if is_empty(was) && !is_empty(is) => ctx.add("UNEVALUATED_ITEMS_NARROWED"),
                _ if !is_empty(was) && is_empty(is) => ctx.add("UNEVALUATED_ITEMS_EXTENDED"),
                (was, is) => compare(ctx, was, is),
            }
        }),
    }

    for (attribute, names) in [
        (
            "maxItems",
            [
                "MAX_ITEMS_ADDED",
                "MAX_ITEMS_REMOVED",
                "MAX_ITEMS_INCREASED",
                "MAX_ITEMS_DECREASED",
            ],
        ),
        (
            "minItems",
            [
                "MIN_ITEMS_ADDED",
                "MIN_ITEMS_REMOVED",
                "MIN_ITEMS_INCREASED",
                "MIN_ITEMS_DECREASED",
            ],
        ),
    ] {
        compare_limit(
            ctx,
            attribute,
            number(&o, attribute),
            number(&u, attribute),
            names,
        );
    }
    let unique = |n: &Node<'_>| n.get("uniqueItems") == Some(&Value::Bool(true));
    match (unique(&o), unique(&u)) {
        (true, false) => ctx.add_at("uniqueItems", "UNIQUE_ITEMS_REMOVED"),
        (false, true) => ctx.add_at("uniqueItems", "UNIQUE_ITEMS_ADDED"),
        _ => {}
    }
    for (attribute, names) in [
        (
            "maxContains",
            [
                "MAX_CONTAINS_ADDED",
                "MAX_CONTAINS_REMOVED",
                "MAX_CONTAINS_INCREASED",
                "MAX_CONTAINS_DECREASED",
            ],
        ),
        (
            "minContains",
            [
                "MIN_CONTAINS_ADDED",
                "MIN_CONTAINS_REMOVED",
                "MIN_CONTAINS_INCREASED",
                "MIN_CONTAINS_DECREASED",
            ],
        ),
    ] {
        compare_limit(
            ctx,
            attribute,
            number(&o, attribute),
            number(&u, attribute),
            names,
        );
    }
}
