//! The normalized form of a Protobuf schema: a `.proto` text re-printed from the
//! compiled descriptors, so that comments, whitespace, the order of imports,
//! options and fields, and how type names are spelled do not change it.
//!
//! Kept as declared: the order of messages and enums (Confluent's message indexes
//! in the wire format depend on it). Sorted: imports, options (by name), fields by
//! number, oneofs by name. Type names are printed fully qualified with a leading dot.

use std::fmt::Write;

use prost_reflect::{
    Cardinality, DynamicMessage, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind,
    MessageDescriptor, Syntax, Value,
};

pub(super) fn normalized(file: &FileDescriptor) -> String {
    let mut out = String::new();
    let syntax = match file.syntax() {
        Syntax::Proto2 => "proto2",
        Syntax::Proto3 => "proto3",
    };
    let _ = writeln!(out, "syntax = \"{syntax}\";");
    if !file.package_name().is_empty() {
        let _ = writeln!(out, "package {};", file.package_name());
    }
    let mut imports: Vec<String> = file.dependencies().map(|d| d.name().to_string()).collect();
    imports.sort();
    for i in imports {
        let _ = writeln!(out, "import \"{i}\";");
    }
    options(&mut out, &file.options(), 0);
    for m in file.messages() {
        message(&mut out, &m, 0);
    }
    for e in file.enums() {
        enumeration(&mut out, &e, 0);
    }
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// `option name = value;` for every option set, sorted by name.
fn options(out: &mut String, opts: &DynamicMessage, depth: usize) {
    let mut set: Vec<(String, String)> = opts
        .fields()
        .map(|(f, v)| (f.name().to_string(), value(&f.kind(), v)))
        .chain(
            opts.extensions()
                .map(|(e, v)| (format!("({})", e.full_name()), value(&e.kind(), v))),
        )
        .collect();
    set.sort();
    for (name, v) in set {
        indent(out, depth);
        let _ = writeln!(out, "option {name} = {v};");
    }
}

/// Field options in brackets (`[packed = true, (my.opt) = 1]`), sorted by name.
fn field_options(f: &FieldDescriptor) -> String {
    let opts = f.options();
    let mut set: Vec<String> = opts
        .fields()
        .map(|(o, v)| format!("{} = {}", o.name(), value(&o.kind(), v)))
        .chain(
            opts.extensions()
                .map(|(e, v)| format!("({}) = {}", e.full_name(), value(&e.kind(), v))),
        )
        .collect();
    if let Some(d) = &f.field_descriptor_proto().default_value {
        let d = match f.kind() {
            Kind::String | Kind::Bytes => format!("{d:?}"),
            _ => d.clone(),
        };
        set.push(format!("default = {d}"));
    }
    set.sort();
    if set.is_empty() {
        String::new()
    } else {
        format!(" [{}]", set.join(", "))
    }
}

fn value(kind: &Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Enum(e), Value::EnumNumber(n)) => e
            .get_value(*n)
            .map_or_else(|| n.to_string(), |ev| ev.name().to_string()),
        (_, Value::Message(m)) => format!("{{ {m} }}"),
        (_, v) => v.to_string(),
    }
}

fn type_name(f: &FieldDescriptor) -> String {
    match f.kind() {
        Kind::Message(m) if m.is_map_entry() => format!(
            "map<{}, {}>",
            type_name(&m.map_entry_key_field()),
            type_name(&m.map_entry_value_field())
        ),
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
    }
}

fn field(out: &mut String, f: &FieldDescriptor, depth: usize) {
    indent(out, depth);
    let proto3_optional = f.field_descriptor_proto().proto3_optional.unwrap_or(false);
    let label = if f.is_map() {
        ""
    } else {
        match f.cardinality() {
            Cardinality::Repeated => "repeated ",
            Cardinality::Required => "required ",
            Cardinality::Optional
                if proto3_optional || f.parent_file().syntax() == Syntax::Proto2 =>
            {
                if f.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
                    ""
                } else {
                    "optional "
                }
            }
            Cardinality::Optional => "",
        }
    };
    let _ = writeln!(
        out,
        "{label}{} {} = {}{};",
        type_name(f),
        f.name(),
        f.number(),
        field_options(f)
    );
}

fn message(out: &mut String, m: &MessageDescriptor, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "message {} {{", m.name());
    options(out, &m.options(), depth + 1);
    let mut plain: Vec<FieldDescriptor> = m
        .fields()
        .filter(|f| f.containing_oneof().is_none_or(|o| o.is_synthetic()))
        .collect();
    plain.sort_by_key(FieldDescriptor::number);
    for f in &plain {
        field(out, f, depth + 1);
    }
    let mut oneofs: Vec<_> = m.oneofs().filter(|o| !o.is_synthetic()).collect();
    oneofs.sort_by(|a, b| a.name().cmp(b.name()));
    for o in oneofs {
        indent(out, depth + 1);
        let _ = writeln!(out, "oneof {} {{", o.name());
        options(out, &o.options(), depth + 2);
        let mut fs: Vec<FieldDescriptor> = o.fields().collect();
        fs.sort_by_key(FieldDescriptor::number);
        for f in &fs {
            field(out, f, depth + 2);
        }
        indent(out, depth + 1);
        out.push_str("}\n");
    }
    let reserved = &m.descriptor_proto().reserved_range;
    let mut ranges: Vec<(i32, i32)> = reserved
        .iter()
        .map(|r| (r.start.unwrap_or(0), r.end.unwrap_or(0)))
        .collect();
    ranges.sort();
    for (start, end) in ranges {
        indent(out, depth + 1);
        let _ = writeln!(out, "reserved {start} to {};", end.saturating_sub(1));
    }
    let mut names = m.descriptor_proto().reserved_name.clone();
    names.sort();
    for n in names {
        indent(out, depth + 1);
        let _ = writeln!(out, "reserved {n:?};");
    }
    for nested in m.child_messages().filter(|n| !n.is_map_entry()) {
        message(out, &nested, depth + 1);
    }
    for e in m.child_enums() {
        enumeration(out, &e, depth + 1);
    }
    indent(out, depth);
    out.push_str("}\n");
}

fn enumeration(out: &mut String, e: &EnumDescriptor, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "enum {} {{", e.name());
    options(out, &e.options(), depth + 1);
    let mut values: Vec<_> = e.values().collect();
    values.sort_by_key(|v| (v.number(), v.name().to_string()));
    for v in values {
        indent(out, depth + 1);
        let _ = writeln!(out, "{} = {};", v.name(), v.number());
    }
    indent(out, depth);
    out.push_str("}\n");
}
