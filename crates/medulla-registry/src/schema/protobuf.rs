//! STUB: being written (issue 5).

use super::{Dependency, SchemaError};

#[derive(Debug)]
pub struct ProtobufSchema {}

impl ProtobufSchema {
    pub fn parse(_text: &str, _deps: &[Dependency]) -> Result<ProtobufSchema, SchemaError> {
        Err(SchemaError::new("not implemented"))
    }
    pub fn canonical(&self) -> String {
        String::new()
    }
    pub fn normalized(&self) -> String {
        String::new()
    }
    pub fn record_name(&self) -> Option<String> {
        None
    }
    pub fn read_compatibility(_reader: &ProtobufSchema, _writer: &ProtobufSchema) -> Vec<String> {
        vec!["not implemented".into()]
    }
}
