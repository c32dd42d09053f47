//! What ferry did with each key it did not simply use: the lines `ferry validate` prints and
//! the start-up log repeats once.

use std::fmt;

/// Why a key is worth mentioning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// A Java client key rewritten for librdkafka.
    Translated { to: String },
    /// A Kafka Connect key with no meaning in ferry (e.g. `plugin.path`).
    Ignored { reason: String },
    /// A Java client setting librdkafka has no equivalent for.
    JavaOnly,
    /// A consumer setting ferry manages itself for at-least-once delivery.
    Managed,
    /// A key nobody reads.
    Unknown { suggestion: Option<String> },
    /// Top-level security settings applied to sink consumers (Kafka Connect would not).
    Inherited,
    /// A key set more than once; the last value wins.
    Duplicate { earlier_line: usize },
    /// A default that differs from Kafka Connect's, or a value ferry chose.
    Defaulted { value: String, reason: String },
}

/// One note about one key in one file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// `path` or `path:line`.
    pub location: String,
    pub key: String,
    pub kind: NoteKind,
}

impl Note {
    pub fn new(location: impl Into<String>, key: impl Into<String>, kind: NoteKind) -> Self {
        Self {
            location: location.into(),
            key: key.into(),
            kind,
        }
    }

    /// Whether the operator should look at it (WARN) or it is informational (INFO).
    pub fn is_warning(&self) -> bool {
        matches!(
            self.kind,
            NoteKind::JavaOnly
                | NoteKind::Unknown { .. }
                | NoteKind::Duplicate { .. }
                | NoteKind::Managed
        )
    }

    /// A short label for `ferry validate`'s listing.
    pub fn label(&self) -> &'static str {
        match self.kind {
            NoteKind::Translated { .. } => "translated",
            NoteKind::Ignored { .. } => "ignored",
            NoteKind::JavaOnly => "java-only",
            NoteKind::Managed => "managed",
            NoteKind::Unknown { .. } => "unknown",
            NoteKind::Inherited => "inherited",
            NoteKind::Duplicate { .. } => "duplicate",
            NoteKind::Defaulted { .. } => "default",
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.location, self.key)?;
        match &self.kind {
            NoteKind::Translated { to } => write!(f, "translated to librdkafka's {to}"),
            NoteKind::Ignored { reason } => write!(f, "ignored: {reason}"),
            NoteKind::JavaOnly => f.write_str(
                "a Java client setting with no librdkafka equivalent; ignored",
            ),
            NoteKind::Managed => f.write_str(
                "managed by ferry for at-least-once delivery; your value is ignored",
            ),
            NoteKind::Unknown { suggestion: Some(s) } => {
                write!(f, "unknown key, ignored; did you mean `{s}`?")
            }
            NoteKind::Unknown { suggestion: None } => f.write_str("unknown key, ignored"),
            NoteKind::Inherited => f.write_str(
                "top-level security setting applied to the sink consumers too, because the consumer. block has none (Kafka Connect would not)",
            ),
            NoteKind::Duplicate { earlier_line } => {
                write!(f, "set more than once (also on line {earlier_line}); the last value wins")
            }
            NoteKind::Defaulted { value, reason } => write!(f, "{value} ({reason})"),
        }
    }
}

/// Shared with the connectors, which reject their own misspelt keys the same way.
pub use ferry_connector_api::suggest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_as_one_line() {
        let n = Note::new(
            "w.properties:4",
            "consumer.max.poll.records",
            NoteKind::JavaOnly,
        );
        assert_eq!(
            n.to_string(),
            "w.properties:4: consumer.max.poll.records: a Java client setting with no librdkafka equivalent; ignored"
        );
        assert!(n.is_warning());
    }
}
