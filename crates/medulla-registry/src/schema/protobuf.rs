//! Protobuf schemas: `.proto` text compiled at run time by protox (dependencies are
//! importable files named by their import path; Google's well-known types are built
//! in), a normalized re-print from the descriptors, and Confluent's compatibility
//! rules (`io.confluent.kafka.schemaregistry.protobuf.diff`), in [`diff`].

mod diff;
mod print;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use prost_reflect::FileDescriptor;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::{Dependency, SchemaError};

/// Longest schema text accepted (each dependency too): far above any real `.proto`.
const PROTO_TEXT_BYTES_MAX: usize = 1 << 20;

/// A parsed, valid Protobuf schema.
#[derive(Clone, Debug)]
pub struct ProtobufSchema {
    /// The text as given, trimmed.
    text: String,
    /// The compiled root file; its pool holds its imports.
    file: FileDescriptor,
    /// Dependency file name → its text, to tell whether two schemas' references
    /// define the same types (Confluent compares reference subject-versions).
    deps: HashMap<String, String>,
    normalized: String,
}

/// Serves the dependencies from memory, by import path.
struct MemoryResolver {
    files: HashMap<String, String>,
}

impl FileResolver for MemoryResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl ProtobufSchema {
    pub fn parse(text: &str, deps: &[Dependency]) -> Result<ProtobufSchema, SchemaError> {
        if text.len() > PROTO_TEXT_BYTES_MAX
            || deps.iter().any(|d| d.schema.len() > PROTO_TEXT_BYTES_MAX)
        {
            return Err(SchemaError::new(format!(
                "Protobuf schema text longer than {PROTO_TEXT_BYTES_MAX} bytes"
            )));
        }
        let dep_files: HashMap<String, String> = deps
            .iter()
            .map(|d| (d.name.clone(), d.schema.clone()))
            .collect();
        // The root needs a file name of its own that no import can mean.
        let mut root_name = "schema.proto".to_string();
        while dep_files.contains_key(&root_name) {
            root_name.insert(0, '_');
        }
        let mut files = dep_files.clone();
        files.insert(root_name.clone(), text.to_string());

        let compiled = catch_unwind(AssertUnwindSafe(|| {
            let mut chain = ChainFileResolver::new();
            chain.add(MemoryResolver { files });
            chain.add(GoogleFileResolver::new());
            let mut compiler = protox::Compiler::with_file_resolver(chain);
            compiler.include_imports(true);
            compiler.open_file(&root_name)?;
            Ok::<_, protox::Error>(compiler.descriptor_pool())
        }));
        let pool = match compiled {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return Err(SchemaError::new(format!("Invalid Protobuf schema: {e}"))),
            Err(_) => {
                return Err(SchemaError::new(
                    "Invalid Protobuf schema: the compiler failed on it",
                ));
            }
        };
        let file = pool.get_file_by_name(&root_name).ok_or_else(|| {
            SchemaError::new("Invalid Protobuf schema: the compiled file is missing")
        })?;
        let normalized = print::normalized(&file);
        Ok(ProtobufSchema {
            text: text.trim().to_string(),
            file,
            deps: dep_files,
            normalized,
        })
    }

    /// The `.proto` text as given, trimmed. (Confluent re-prints the text from its
    /// parsed form; we keep the client's text, comments included.)
    pub fn canonical(&self) -> String {
        self.text.clone()
    }

    /// A deterministic re-print from the descriptors: formatting, comments, the
    /// order of fields, imports and options do not change it.
    pub fn normalized(&self) -> String {
        self.normalized.clone()
    }

    /// The full name of the first message of the file.
    pub fn record_name(&self) -> Option<String> {
        self.file
            .messages()
            .next()
            .map(|m| m.full_name().to_string())
    }

    pub fn read_compatibility(reader: &ProtobufSchema, writer: &ProtobufSchema) -> Vec<String> {
        diff::incompatibilities(writer, reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ProtobufSchema {
        match ProtobufSchema::parse(text, &[]) {
            Ok(s) => s,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn imports_come_from_dependencies() {
        let dep = Dependency {
            name: "common/address.proto".into(),
            schema: "syntax = \"proto3\";\npackage common;\nmessage Address { string city = 1; }\n"
                .into(),
        };
        let text = "syntax = \"proto3\";\npackage app;\nimport \"common/address.proto\";\nmessage Person { common.Address home = 1; }\n";
        let s = match ProtobufSchema::parse(text, std::slice::from_ref(&dep)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.record_name().as_deref(), Some("app.Person"));
        assert_eq!(s.canonical(), text.trim());
        let err = ProtobufSchema::parse(text, &[])
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("common/address.proto"), "{err}");
    }

    #[test]
    fn well_known_types_are_built_in() {
        let s = parse(
            "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Event { google.protobuf.Timestamp at = 1; }",
        );
        assert_eq!(s.record_name().as_deref(), Some("Event"));
        assert!(
            s.normalized()
                .contains(".google.protobuf.Timestamp at = 1;"),
            "{}",
            s.normalized()
        );
    }

    #[test]
    fn syntax_errors_and_unknown_types_are_errors() {
        for bad in [
            "syntax = \"proto3\"; message A { string a = 1 }",
            "syntax = \"proto3\"; message A { Missing a = 1; }",
            "syntax = \"proto3\"; import \"nope.proto\"; message A {}",
            "syntax = \"proto9\";",
        ] {
            assert!(ProtobufSchema::parse(bad, &[]).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn normalized_ignores_formatting_comments_and_order() {
        let a = parse(
            "syntax = \"proto3\";\npackage p;\noption java_package = \"x\";\noption go_package = \"y\";\n// hi\nmessage M {\n  string b = 2;\n  int32 a = 1; // c\n  map<string, int64> m = 3;\n}\n",
        );
        let b = parse(
            "syntax=\"proto3\"; package p; option go_package=\"y\"; option java_package=\"x\"; message M { int32 a=1; string b=2; map<string,int64> m=3; }",
        );
        assert_eq!(a.normalized(), b.normalized());
        assert!(
            a.normalized().contains("map<string, int64> m = 3;"),
            "{}",
            a.normalized()
        );
        let c = parse("syntax=\"proto3\"; package p; message M { int32 a=1; string b=3; }");
        assert_ne!(a.normalized(), c.normalized());
    }

    #[test]
    fn field_moved_into_existing_oneof_is_incompatible() {
        let writer = parse("syntax=\"proto3\"; message M { int32 a=1; oneof o { string b=2; } }");
        let reader = parse("syntax=\"proto3\"; message M { oneof o { int32 a=1; string b=2; } }");
        let msgs = ProtobufSchema::read_compatibility(&reader, &writer);
        assert!(
            msgs.iter()
                .any(|m| m.contains("FIELD_MOVED_TO_EXISTING_ONEOF")),
            "{msgs:?}"
        );
        let reader = parse(
            "syntax=\"proto3\"; message M { int32 a=1; oneof o { string b=2; } oneof n { int64 c=3; bool d=4; } }",
        );
        assert!(ProtobufSchema::read_compatibility(&reader, &writer).is_empty());
    }

    #[test]
    fn scalar_groups() {
        let m = |t: &str| parse(&format!("syntax=\"proto3\"; message M {{ {t} a=1; }}"));
        for (w, r, ok) in [
            ("int32", "int64", true),
            ("uint64", "bool", true),
            ("sint32", "sint64", true),
            ("sint32", "int32", false),
            ("fixed32", "sfixed32", true),
            ("fixed64", "fixed32", false),
            ("string", "bytes", true),
            ("float", "double", false),
            ("string", "int32", false),
        ] {
            let msgs = ProtobufSchema::read_compatibility(&m(r), &m(w));
            assert_eq!(msgs.is_empty(), ok, "{w} -> {r}: {msgs:?}");
        }
    }

    #[test]
    fn package_change_message_removal_and_required_fields() {
        let base =
            parse("syntax=\"proto2\"; package a; message M { optional int32 x=1; } message N {}");
        let moved =
            parse("syntax=\"proto2\"; package b; message M { optional int32 x=1; } message N {}");
        let removed = parse("syntax=\"proto2\"; package a; message M { optional int32 x=1; }");
        let required = parse(
            "syntax=\"proto2\"; package a; message M { optional int32 x=1; required int32 y=2; } message N {}",
        );
        let has = |r: &ProtobufSchema, w: &ProtobufSchema, what: &str| {
            ProtobufSchema::read_compatibility(r, w)
                .iter()
                .any(|m| m.contains(what))
        };
        assert!(has(&moved, &base, "PACKAGE_CHANGED"));
        assert!(has(&removed, &base, "MESSAGE_REMOVED"));
        assert!(ProtobufSchema::read_compatibility(&base, &removed).is_empty());
        assert!(has(&required, &base, "REQUIRED_FIELD_ADDED"));
        assert!(has(&base, &required, "REQUIRED_FIELD_REMOVED"));
    }
}
