//! Fuzz target: the schema registry's parsers and compatibility checkers
//! (`medulla_registry::schema`) on arbitrary text — what a client can POST.
//!
//! Input layout: one control byte, then the text.
//! - bits 0-1: the format (0 Avro, 1 JSON Schema, 2 Protobuf, 3 Avro again).
//! - bit 2: split the text at the first NUL into two schemas and check compatibility
//!   both ways (when both parse).
//!
//! Nothing may panic, overflow the stack or run away: parse errors are answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medulla_registry::schema::{ParsedSchema, SchemaType};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let ty = match control & 3 {
        1 => SchemaType::Json,
        2 => SchemaType::Protobuf,
        _ => SchemaType::Avro,
    };
    let (a, b) = match (control & 4 != 0).then(|| text.split_once('\0')).flatten() {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let Ok(first) = ParsedSchema::parse(ty, a, &[]) else { return };
    let _ = first.canonical();
    let _ = first.normalized();
    let _ = first.record_name();
    let _ = ParsedSchema::read_compatibility(&first, &first);
    if let Some(b) = b
        && let Ok(second) = ParsedSchema::parse(ty, b, &[])
    {
        let _ = ParsedSchema::read_compatibility(&first, &second);
        let _ = ParsedSchema::read_compatibility(&second, &first);
    }
});
