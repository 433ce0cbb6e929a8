//! Confluent's compatibility levels: loops over a format's reader/writer check.

use crate::schema::ParsedSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    pub const DEFAULT: Level = Level::Backward;

    /// Parses a level as clients send it (any case).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }
}

/// Checks `new` against the subject's earlier live versions (oldest first) under
/// `level`: the non-transitive levels look at the latest one only. Empty = compatible.
pub fn check(level: Level, new: &ParsedSchema, previous: &[&ParsedSchema]) -> Vec<String> {
    let against: &[&ParsedSchema] = if level.transitive() {
        previous
    } else {
        match previous.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut messages = Vec::new();
    for old in against.iter().rev() {
        let backward = matches!(
            level,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        );
        let forward = matches!(
            level,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        );
        if backward {
            messages.extend(ParsedSchema::read_compatibility(new, old));
        }
        if forward {
            messages.extend(ParsedSchema::read_compatibility(old, new));
        }
        if !messages.is_empty() {
            break;
        }
    }
    messages
}
