//! User-written text inside one-line messages: values are cut to a bound and control
//! characters escaped, so that a 10 MB value or a value holding a newline still makes one
//! short line.

use std::fmt;

/// The most characters of a value an error line shows; longer values end in "…" and their
/// size.
pub const VALUE_CHARS: usize = 100;

/// The most characters of a whole message.
pub const LINE_CHARS: usize = 2000;

/// The longest path Linux opens (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// A file path: one the system could open, so that a huge value fails where it is read, in
/// one short line, rather than in every later error that names the path.
pub fn path(value: &str) -> Result<(), String> {
    if value.len() > MAX_PATH_BYTES {
        Err(format!(
            "`{}` is longer than a path can be ({MAX_PATH_BYTES} bytes)",
            shown(value)
        ))
    } else if value.contains('\0') {
        Err(format!("`{}` holds a NUL character", shown(value)))
    } else {
        Ok(())
    }
}

/// A value as messages quote it: at most [`VALUE_CHARS`] characters, then "… (N bytes)";
/// control characters escaped (`\n`, `\u{1b}`).
pub fn shown(value: &str) -> Shown<'_> {
    Shown {
        text: value,
        max: VALUE_CHARS,
        size: true,
    }
}

/// A whole message on one line: at most [`LINE_CHARS`] characters, then "…"; control
/// characters escaped.
pub fn one_line(text: &str) -> Shown<'_> {
    Shown {
        text,
        max: LINE_CHARS,
        size: false,
    }
}

/// See [`shown`] and [`one_line`].
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    max: usize,
    size: bool,
}

impl Shown<'_> {
    /// At most `max` characters instead of the default.
    pub fn max(self, max: usize) -> Self {
        Self { max, ..self }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (count, c) in self.text.chars().enumerate() {
            if count == self.max {
                f.write_str("…")?;
                if self.size {
                    write!(f, " ({} bytes)", self.text.len())?;
                }
                return Ok(());
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole() {
        assert_eq!(shown("/tmp/out").to_string(), "/tmp/out");
        assert_eq!(shown("").to_string(), "");
        assert_eq!(shown(&"é".repeat(100)).to_string(), "é".repeat(100));
    }

    #[test]
    fn long_values_are_cut_with_their_size() {
        let big = "a".repeat(10 << 20);
        let s = shown(&big).to_string();
        assert_eq!(s, format!("{}… (10485760 bytes)", "a".repeat(100)));
        // Cut on characters, never inside one.
        let s = shown(&"é".repeat(200)).max(3).to_string();
        assert_eq!(s, "ééé… (400 bytes)");
        let s = one_line(&"x".repeat(5000)).to_string();
        assert_eq!(s.chars().count(), LINE_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn control_characters_are_escaped_so_the_line_stays_one() {
        assert_eq!(shown("a\nb\tc\u{1b}[0m").to_string(), "a\\nb\\tc\\u{1b}[0m");
        assert!(!one_line("x\r\ny").to_string().contains(['\n', '\r']));
    }
}
