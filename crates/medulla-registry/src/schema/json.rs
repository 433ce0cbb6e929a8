//! STUB: being written (issue 5).

use super::{Dependency, SchemaError};

#[derive(Debug)]
pub struct JsonSchema {}

impl JsonSchema {
    pub fn parse(_text: &str, _deps: &[Dependency]) -> Result<JsonSchema, SchemaError> {
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
    pub fn read_compatibility(_reader: &JsonSchema, _writer: &JsonSchema) -> Vec<String> {
        vec!["not implemented".into()]
    }
}
