//! Confluent's Protobuf compatibility rules (its `protobuf.diff` package): the
//! differences between an original (writer, older) and an updated (reader, newer)
//! file, of which only some kinds are compatible. Fields are matched by number;
//! types by name relative to their package. Walks the descriptors protox built,
//! where Confluent walks wire's parse tree: map-entry messages, which only the
//! descriptors have, are skipped, and proto3 `optional`'s synthetic oneofs are not
//! oneofs here.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use prost_reflect::{Cardinality, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use super::ProtobufSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Diff {
    PackageChanged,
    MessageAdded,
    MessageRemoved,
    MessageMoved,
    EnumAdded,
    EnumRemoved,
    EnumConstAdded,
    EnumConstChanged,
    EnumConstRemoved,
    FieldAdded,
    FieldRemoved,
    FieldNameChanged,
    FieldKindChanged,
    FieldScalarKindChanged,
    FieldNamedTypeChanged,
    FieldNumericLabelChanged,
    FieldStringOrBytesLabelChanged,
    RequiredFieldAdded,
    RequiredFieldRemoved,
    OneofAdded,
    OneofRemoved,
    OneofFieldAdded,
    OneofFieldRemoved,
    MultipleFieldsMovedToOneof,
    FieldMovedToExistingOneof,
}

impl Diff {
    /// Confluent's `SchemaDiff.COMPATIBLE_CHANGES`.
    fn is_compatible(self) -> bool {
        use Diff::*;
        matches!(
            self,
            MessageAdded
                | MessageMoved
                | EnumAdded
                | EnumRemoved
                | EnumConstAdded
                | EnumConstChanged
                | EnumConstRemoved
                | FieldAdded
                | FieldRemoved
                | FieldNameChanged
                | FieldStringOrBytesLabelChanged
                | OneofAdded
                | OneofRemoved
                | OneofFieldAdded
        )
    }

    /// Confluent's `Difference.Type` name and a sentence about it.
    fn describe(self) -> (&'static str, &'static str) {
        use Diff::*;
        match self {
            PackageChanged => ("PACKAGE_CHANGED", "The package changed"),
            MessageAdded => ("MESSAGE_ADDED", "A message was added"),
            MessageRemoved => (
                "MESSAGE_REMOVED",
                "The message is missing in the reader schema",
            ),
            MessageMoved => ("MESSAGE_MOVED", "The message moved"),
            EnumAdded => ("ENUM_ADDED", "An enum was added"),
            EnumRemoved => ("ENUM_REMOVED", "The enum was removed"),
            EnumConstAdded => ("ENUM_CONST_ADDED", "An enum constant was added"),
            EnumConstChanged => ("ENUM_CONST_CHANGED", "An enum constant was renamed"),
            EnumConstRemoved => ("ENUM_CONST_REMOVED", "An enum constant was removed"),
            FieldAdded => ("FIELD_ADDED", "A field was added"),
            FieldRemoved => ("FIELD_REMOVED", "A field was removed"),
            FieldNameChanged => ("FIELD_NAME_CHANGED", "A field was renamed"),
            FieldKindChanged => (
                "FIELD_KIND_CHANGED",
                "The kind of the field (scalar, message or map) differs between the reader and writer schemas",
            ),
            FieldScalarKindChanged => (
                "FIELD_SCALAR_KIND_CHANGED",
                "The scalar type of the field differs between the reader and writer schemas, across wire-incompatible groups",
            ),
            FieldNamedTypeChanged => (
                "FIELD_NAMED_TYPE_CHANGED",
                "The message type of the field differs between the reader and writer schemas",
            ),
            FieldNumericLabelChanged => (
                "FIELD_NUMERIC_LABEL_CHANGED",
                "A numeric field changed between repeated and singular",
            ),
            FieldStringOrBytesLabelChanged => (
                "FIELD_STRING_OR_BYTES_LABEL_CHANGED",
                "A string or bytes field changed between repeated and singular",
            ),
            RequiredFieldAdded => (
                "REQUIRED_FIELD_ADDED",
                "The reader schema has a required field the writer schema lacks",
            ),
            RequiredFieldRemoved => (
                "REQUIRED_FIELD_REMOVED",
                "The writer schema has a required field the reader schema lacks",
            ),
            OneofAdded => ("ONEOF_ADDED", "A oneof was added"),
            OneofRemoved => ("ONEOF_REMOVED", "A oneof was removed"),
            OneofFieldAdded => ("ONEOF_FIELD_ADDED", "A field was added to a oneof"),
            OneofFieldRemoved => (
                "ONEOF_FIELD_REMOVED",
                "A field of the oneof is missing in the reader schema",
            ),
            MultipleFieldsMovedToOneof => (
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                "More than one existing field moved into one oneof",
            ),
            FieldMovedToExistingOneof => (
                "FIELD_MOVED_TO_EXISTING_ONEOF",
                "An existing field moved into a oneof that already existed",
            ),
        }
    }
}

/// The incompatible differences from `original` (writer) to `update` (reader).
pub(super) fn incompatibilities(original: &ProtobufSchema, update: &ProtobufSchema) -> Vec<String> {
    let mut ctx = Ctx {
        original,
        update,
        path: Vec::new(),
        in_scope: HashSet::new(),
        diffs: Vec::new(),
    };
    if original.file.package_name() != update.file.package_name() {
        ctx.add(Diff::PackageChanged);
    }
    ctx.compare_types(
        original.file.messages().collect(),
        original.file.enums().collect(),
        update.file.messages().collect(),
        update.file.enums().collect(),
    );
    let mut seen = HashSet::new();
    ctx.diffs
        .into_iter()
        .filter(|(d, _)| !d.is_compatible())
        .filter(|d| seen.insert(d.clone()))
        .map(|(d, path)| {
            let (kind, text) = d.describe();
            format!("{{errorType:'{kind}', description:'{text} (path '{path}')'}}")
        })
        .collect()
}

struct Ctx<'a> {
    original: &'a ProtobufSchema,
    update: &'a ProtobufSchema,
    path: Vec<String>,
    /// Original messages whose fields are being compared: met again (a recursive
    /// type), they are not compared again.
    in_scope: HashSet<String>,
    diffs: Vec<(Diff, String)>,
}

/// What a field holds, as Confluent's `FieldSchemaDiff.Kind` groups it.
enum FieldType {
    Scalar(ScalarGroup),
    Message(MessageDescriptor),
    Map(Box<FieldType>, Box<FieldType>),
}

/// Scalars that read each other's encoding (Confluent's `ScalarKind`; an enum
/// counts as a general number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScalarGroup {
    GeneralNumber,
    SignedNumber,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

fn field_type(f: &FieldDescriptor) -> FieldType {
    match f.kind() {
        Kind::Message(m) if m.is_map_entry() => FieldType::Map(
            Box::new(field_type(&m.map_entry_key_field())),
            Box::new(field_type(&m.map_entry_value_field())),
        ),
        Kind::Message(m) => FieldType::Message(m),
        Kind::Enum(_) | Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool => {
            FieldType::Scalar(ScalarGroup::GeneralNumber)
        }
        Kind::Sint32 | Kind::Sint64 => FieldType::Scalar(ScalarGroup::SignedNumber),
        Kind::String | Kind::Bytes => FieldType::Scalar(ScalarGroup::StringOrBytes),
        Kind::Fixed32 | Kind::Sfixed32 => FieldType::Scalar(ScalarGroup::Fixed32),
        Kind::Fixed64 | Kind::Sfixed64 => FieldType::Scalar(ScalarGroup::Fixed64),
        Kind::Float => FieldType::Scalar(ScalarGroup::Float),
        Kind::Double => FieldType::Scalar(ScalarGroup::Double),
    }
}

/// The oneof a field really belongs to (not proto3 `optional`'s synthetic one).
fn real_oneof(f: &FieldDescriptor) -> Option<String> {
    f.containing_oneof()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_string())
}

/// A message's name relative to its file's package.
fn local_name(m: &MessageDescriptor) -> String {
    let package = m.package_name();
    let full = m.full_name();
    if package.is_empty() {
        return full.to_string();
    }
    full.strip_prefix(package)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or(full)
        .to_string()
}

impl Ctx<'_> {
    fn add(&mut self, d: Diff) {
        self.diffs.push((d, format!("#/{}", self.path.join("/"))));
    }

    fn at(&mut self, seg: impl Into<String>, f: impl FnOnce(&mut Self)) {
        self.path.push(seg.into());
        f(self);
        self.path.pop();
    }

    fn compare_types(
        &mut self,
        orig_messages: Vec<MessageDescriptor>,
        orig_enums: Vec<EnumDescriptor>,
        upd_messages: Vec<MessageDescriptor>,
        upd_enums: Vec<EnumDescriptor>,
    ) {
        let index = |ms: Vec<MessageDescriptor>| -> BTreeMap<String, (usize, MessageDescriptor)> {
            ms.into_iter()
                .filter(|m| !m.is_map_entry())
                .enumerate()
                .map(|(i, m)| (m.name().to_string(), (i, m)))
                .collect()
        };
        let orig = index(orig_messages);
        let upd = index(upd_messages);
        let names: BTreeSet<&String> = orig.keys().chain(upd.keys()).collect();
        for name in names {
            self.at(name.clone(), |c| match (orig.get(name), upd.get(name)) {
                (Some(_), None) => c.add(Diff::MessageRemoved),
                (None, Some(_)) => c.add(Diff::MessageAdded),
                (Some((oi, o)), Some((ui, u))) => {
                    c.compare_message(o, u);
                    if oi != ui {
                        c.add(Diff::MessageMoved);
                    }
                }
                (None, None) => {}
            });
        }

        let by_name = |es: Vec<EnumDescriptor>| -> BTreeMap<String, EnumDescriptor> {
            es.into_iter().map(|e| (e.name().to_string(), e)).collect()
        };
        let orig = by_name(orig_enums);
        let upd = by_name(upd_enums);
        let names: BTreeSet<&String> = orig.keys().chain(upd.keys()).collect();
        for name in names {
            self.at(name.clone(), |c| match (orig.get(name), upd.get(name)) {
                (Some(_), None) => c.add(Diff::EnumRemoved),
                (None, Some(_)) => c.add(Diff::EnumAdded),
                (Some(o), Some(u)) => c.compare_enum(o, u),
                (None, None) => {}
            });
        }
    }

    fn compare_enum(&mut self, o: &EnumDescriptor, u: &EnumDescriptor) {
        let ov: BTreeMap<i32, String> = o.values().map(|v| (v.number(), v.name().into())).collect();
        let uv: BTreeMap<i32, String> = u.values().map(|v| (v.number(), v.name().into())).collect();
        let numbers: BTreeSet<&i32> = ov.keys().chain(uv.keys()).collect();
        for n in numbers {
            self.at(n.to_string(), |c| match (ov.get(n), uv.get(n)) {
                (Some(_), None) => c.add(Diff::EnumConstRemoved),
                (None, Some(_)) => c.add(Diff::EnumConstAdded),
                (Some(a), Some(b)) if a != b => c.add(Diff::EnumConstChanged),
                _ => {}
            });
        }
    }

    fn compare_message(&mut self, o: &MessageDescriptor, u: &MessageDescriptor) {
        if self.in_scope.insert(o.full_name().to_string()) {
            self.compare_fields(o, u);
            self.in_scope.remove(o.full_name());
        }
        self.compare_types(
            o.child_messages().collect(),
            o.child_enums().collect(),
            u.child_messages().collect(),
            u.child_enums().collect(),
        );
    }

    fn compare_fields(&mut self, o: &MessageDescriptor, u: &MessageDescriptor) {
        // Fields outside any (real) oneof, by number.
        let mut orig_top: BTreeMap<u32, FieldDescriptor> = o
            .fields()
            .filter(|f| real_oneof(f).is_none())
            .map(|f| (f.number(), f))
            .collect();
        let upd_top: BTreeMap<u32, FieldDescriptor> = u
            .fields()
            .filter(|f| real_oneof(f).is_none())
            .map(|f| (f.number(), f))
            .collect();
        let orig_all: BTreeMap<u32, FieldDescriptor> =
            o.fields().map(|f| (f.number(), f)).collect();
        let upd_all: BTreeMap<u32, FieldDescriptor> = u.fields().map(|f| (f.number(), f)).collect();

        let oneofs = |m: &MessageDescriptor| -> BTreeMap<String, Vec<FieldDescriptor>> {
            m.oneofs()
                .filter(|o| !o.is_synthetic())
                .map(|o| (o.name().to_string(), o.fields().collect()))
                .collect()
        };
        let orig_oneofs = oneofs(o);
        let upd_oneofs = oneofs(u);
        let orig_in_oneof: BTreeSet<u32> =
            orig_oneofs.values().flatten().map(|f| f.number()).collect();

        for (name, fields) in u
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| (o.name().to_string(), o.fields().collect::<Vec<_>>()))
        {
            let (mut moved, mut existing) = (0, 0);
            for f in &fields {
                // A field that joined the oneof is no longer "removed" from the top.
                if orig_top.remove(&f.number()).is_some() {
                    moved += 1;
                } else if orig_in_oneof.contains(&f.number()) {
                    existing += 1;
                }
            }
            self.at(name, |c| {
                if moved > 1 {
                    c.add(Diff::MultipleFieldsMovedToOneof);
                } else if moved == 1 && existing > 0 {
                    c.add(Diff::FieldMovedToExistingOneof);
                }
            });
        }

        let names: BTreeSet<&String> = orig_oneofs.keys().chain(upd_oneofs.keys()).collect();
        for name in names {
            self.at(name.clone(), |c| {
                match (orig_oneofs.get(name), upd_oneofs.get(name)) {
                    (Some(_), None) => c.add(Diff::OneofRemoved),
                    (None, Some(_)) => c.add(Diff::OneofAdded),
                    (Some(of), Some(uf)) => {
                        let ob: BTreeMap<u32, &FieldDescriptor> =
                            of.iter().map(|f| (f.number(), f)).collect();
                        let ub: BTreeMap<u32, &FieldDescriptor> =
                            uf.iter().map(|f| (f.number(), f)).collect();
                        let tags: BTreeSet<&u32> = ob.keys().chain(ub.keys()).collect();
                        for tag in tags {
                            c.at(tag.to_string(), |c| match (ob.get(tag), ub.get(tag)) {
                                // Moved elsewhere in the message: not a removal.
                                (Some(_), None) if !upd_all.contains_key(tag) => {
                                    c.add(Diff::OneofFieldRemoved)
                                }
                                (None, Some(_)) => c.add(Diff::OneofFieldAdded),
                                (Some(a), Some(b)) => c.compare_field(a, b),
                                _ => {}
                            });
                        }
                    }
                    (None, None) => {}
                }
            });
        }

        let tags: BTreeSet<u32> = orig_top.keys().chain(upd_top.keys()).copied().collect();
        for tag in tags {
            self.at(tag.to_string(), |c| {
                match (orig_top.get(&tag), upd_top.get(&tag)) {
                    (Some(f), None) if f.cardinality() == Cardinality::Required => {
                        c.add(Diff::RequiredFieldRemoved)
                    }
                    (Some(_), None) => c.add(Diff::FieldRemoved),
                    (None, Some(f)) if f.cardinality() == Cardinality::Required => {
                        c.add(Diff::RequiredFieldAdded)
                    }
                    (None, Some(_)) => c.add(Diff::FieldAdded),
                    (Some(a), Some(b)) => c.compare_field(a, b),
                    (None, None) => {}
                }
            });
        }

        // Fields whose oneof membership changed were not compared above.
        for (tag, of) in &orig_all {
            let Some(uf) = upd_all.get(tag) else { continue };
            let (oo, uo) = (real_oneof(of), real_oneof(uf));
            let compared = match (&oo, &uo) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            if !compared {
                self.at(tag.to_string(), |c| c.compare_field(of, uf));
            }
        }
    }

    fn compare_field(&mut self, o: &FieldDescriptor, u: &FieldDescriptor) {
        if o.name() != u.name() {
            self.add(Diff::FieldNameChanged);
        }
        let (ot, ut) = (field_type(o), field_type(u));
        if let (FieldType::Scalar(og), FieldType::Scalar(_)) = (&ot, &ut)
            && o.is_list() != u.is_list()
        {
            self.add(if *og == ScalarGroup::StringOrBytes {
                Diff::FieldStringOrBytesLabelChanged
            } else {
                Diff::FieldNumericLabelChanged
            });
        }
        self.compare_field_types(&ot, &ut);
    }

    fn compare_field_types(&mut self, o: &FieldType, u: &FieldType) {
        match (o, u) {
            (FieldType::Scalar(a), FieldType::Scalar(b)) => {
                if a != b {
                    self.add(Diff::FieldScalarKindChanged);
                }
            }
            (FieldType::Message(a), FieldType::Message(b)) => self.compare_message_types(a, b),
            (FieldType::Map(ok, ov), FieldType::Map(uk, uv)) => {
                self.compare_field_types(ok, uk);
                self.compare_field_types(ov, uv);
            }
            _ => self.add(Diff::FieldKindChanged),
        }
    }

    fn compare_message_types(&mut self, o: &MessageDescriptor, u: &MessageDescriptor) {
        let (ol, ul) = (local_name(o), local_name(u));
        if ol != ul {
            self.add(Diff::FieldNamedTypeChanged);
            return;
        }
        if self.same_definition(o, u) {
            // Types of the root files are compared where they are declared, and a
            // type from the same dependency is the same type (Confluent skips both).
            return;
        }
        let saved_path =
            std::mem::replace(&mut self.path, ol.split('.').map(str::to_string).collect());
        let before = self.diffs.len();
        self.compare_message(o, u);
        let incompatible = self
            .diffs
            .get(before..)
            .is_some_and(|ds| ds.iter().any(|(d, _)| !d.is_compatible()));
        self.path = saved_path;
        if incompatible {
            self.add(Diff::FieldNamedTypeChanged);
        }
    }

    /// Both types are declared in the root files, or both in the same dependency
    /// file with the same text (Confluent: the same subject and version).
    fn same_definition(&self, o: &MessageDescriptor, u: &MessageDescriptor) -> bool {
        let (of, uf) = (o.parent_file(), u.parent_file());
        let o_root = of.name() == self.original.file.name();
        let u_root = uf.name() == self.update.file.name();
        if o_root || u_root {
            return o_root && u_root;
        }
        of.name() == uf.name()
            && self.original.deps.get(of.name()) == self.update.deps.get(uf.name())
    }
}
