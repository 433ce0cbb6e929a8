//! Protobuf schemas: `.proto` text compiled at run time by protox (dependencies are
//! importable files named by their import path; Google's well-known types are built
//! in), a normalized re-print from the descriptors, and Confluent's compatibility
//! rules (`io.confluent.kafka.schemaregistry.protobuf.diff`), in [`diff`].
//!
//! As Confluent does, a schema may also come as a base64 `FileDescriptorProto` (what
//! confluent-kafka-python's serializer sends); it is stored as `.proto` text printed
//! from the descriptor. [`ProtobufSchema::serialized`] is the way back out
//! (`?format=serialized`, which Python's deserializers ask for).

mod diff;
mod print;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::prost::Message;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::{DescriptorPool, FileDescriptor};
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

/// Compiles `open` (and what they import) from `files` and Google's well-known types.
fn compile(files: HashMap<String, String>, open: &[&str]) -> Result<DescriptorPool, SchemaError> {
    let compiled = catch_unwind(AssertUnwindSafe(|| {
        let mut chain = ChainFileResolver::new();
        chain.add(MemoryResolver { files });
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(true);
        for name in open {
            compiler.open_file(name)?;
        }
        Ok::<_, protox::Error>(compiler.descriptor_pool())
    }));
    match compiled {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(e)) => Err(SchemaError::new(format!("Invalid Protobuf schema: {e}"))),
        Err(_) => Err(SchemaError::new(
            "Invalid Protobuf schema: the compiler failed on it",
        )),
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

        let (pool, from_descriptor) = match compile(files, &[root_name.as_str()]) {
            Ok(pool) => (pool, false),
            // Not `.proto` text: maybe a base64 descriptor (Confluent tries both).
            Err(e) => match Self::descriptor(text, &dep_files, &root_name) {
                Some(Ok(pool)) => (pool, true),
                Some(Err(de)) => return Err(de),
                None => return Err(e),
            },
        };
        let file = pool.get_file_by_name(&root_name).ok_or_else(|| {
            SchemaError::new("Invalid Protobuf schema: the compiled file is missing")
        })?;
        let normalized = print::normalized(&file);
        // A descriptor is kept as the text printed from it, as Confluent keeps it.
        let text = if from_descriptor {
            normalized.trim().to_string()
        } else {
            text.trim().to_string()
        };
        Ok(ProtobufSchema {
            text,
            file,
            deps: dep_files,
            normalized,
        })
    }

    /// The pool holding `text` read as a base64 `FileDescriptorProto` (renamed
    /// `root_name`) and its imports; `None` when `text` is not base64 of one.
    fn descriptor(
        text: &str,
        dep_files: &HashMap<String, String>,
        root_name: &str,
    ) -> Option<Result<DescriptorPool, SchemaError>> {
        let bytes = BASE64.decode(text.trim()).ok()?;
        let mut proto = FileDescriptorProto::decode(bytes.as_slice()).ok()?;
        proto.name = Some(root_name.to_string());
        let imports: Vec<&str> = proto.dependency.iter().map(String::as_str).collect();
        let built = compile(dep_files.clone(), &imports).and_then(|mut pool| {
            catch_unwind(AssertUnwindSafe(|| pool.add_file_descriptor_proto(proto)))
                .map_err(|_| SchemaError::new("Invalid Protobuf descriptor: building it failed"))?
                .map_err(|e| SchemaError::new(format!("Invalid Protobuf descriptor: {e}")))?;
            Ok(pool)
        });
        Some(built)
    }

    /// The root file as a base64 `FileDescriptorProto`: Confluent's
    /// `?format=serialized`. Its imports are named by their import paths.
    pub fn serialized(&self) -> String {
        BASE64.encode(self.file.encode_to_vec())
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
    fn a_base64_descriptor_is_a_schema_and_serialized_gives_it_back() {
        let dep = Dependency {
            name: "common/address.proto".into(),
            schema: "syntax = \"proto3\";\npackage common;\nmessage Address { string city = 1; }\n"
                .into(),
        };
        let text = "syntax = \"proto3\";\npackage app;\nimport \"common/address.proto\";\nimport \"google/protobuf/timestamp.proto\";\n// c\nmessage Person { common.Address home = 1; google.protobuf.Timestamp at = 2; }\n";
        let deps = std::slice::from_ref(&dep);
        let from_text = match ProtobufSchema::parse(text, deps) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let b64 = from_text.serialized();
        let from_descriptor = match ProtobufSchema::parse(&b64, deps) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        // Stored as .proto text printed from the descriptor; the same schema either way.
        assert_eq!(from_descriptor.canonical(), from_text.normalized().trim());
        assert_eq!(from_descriptor.normalized(), from_text.normalized());
        assert_eq!(from_descriptor.record_name().as_deref(), Some("app.Person"));
        assert!(ProtobufSchema::read_compatibility(&from_descriptor, &from_text).is_empty());
        // The printed text parses back to the same schema.
        let reparsed = match ProtobufSchema::parse(&from_descriptor.canonical(), deps) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(reparsed.normalized(), from_text.normalized());
        // The serialized file names its imports by import path.
        let proto =
            match FileDescriptorProto::decode(BASE64.decode(&b64).unwrap_or_default().as_slice()) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
        assert_eq!(
            proto.dependency,
            ["common/address.proto", "google/protobuf/timestamp.proto"]
        );
        // A descriptor whose import is not among the references is an error naming it;
        // base64 of anything else is still a syntax error.
        let err = ProtobufSchema::parse(&b64, &[])
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("common/address.proto"), "{err}");
        assert!(ProtobufSchema::parse(&BASE64.encode("\u{1}\u{2}garbage"), &[]).is_err());
        assert!(ProtobufSchema::parse("AAAA", &[]).is_err());
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
