//! Unit tests of JSON Schema parsing, forms and compatibility.

use super::*;
