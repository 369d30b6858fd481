//! Keys of the list-append workload.
//!
//! DESIGN §7 lets a history spell a key as a JSON string (`"x"`) or a JSON integer (`3`). The
//! checker compares keys by their text, so `3` and `"3"` name the same list, and renders each key
//! back in the form it was given (Elle likewise treats keys as opaque values).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A key of the list-append workload: its text, plus whether the history wrote it as an integer.
///
/// Equality, ordering and hashing use the text only.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's text (for an integer key, its decimal digits).
    name: String,
    /// Whether the key is rendered as a JSON integer rather than a JSON string.
    integer: bool,
}

impl Key {
    /// Creates a key rendered as a JSON string.
    pub fn new(name: impl Into<String>) -> Key {
        Key { name: name.into(), integer: false }
    }

    /// Creates a key rendered as a JSON integer.
    pub fn integer(value: i64) -> Key {
        Key { name: value.to_string(), integer: true }
    }

    /// Creates an integer key from the digits of a JSON number already checked to be an integer.
    pub(crate) fn from_integer_text(digits: String) -> Key {
        Key { name: digits, integer: true }
    }

    /// Returns the key's text.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Returns whether the key is rendered as a JSON integer.
    pub fn is_integer(&self) -> bool {
        self.integer
    }

    /// Appends the key's JSON rendering to `out`.
    pub(crate) fn write_json(&self, out: &mut String) {
        if self.integer {
            out.push_str(&self.name);
        } else {
            out.push_str(&serde_json::to_string(&self.name).expect("a string always serializes"));
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.name == other.name
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.name.cmp(&other.name)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Key {
        Key::new(name)
    }
}

impl From<String> for Key {
    fn from(name: String) -> Key {
        Key::new(name)
    }
}

impl From<i64> for Key {
    fn from(value: i64) -> Key {
        Key::integer(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_string_spellings_are_one_key() {
        assert_eq!(Key::integer(3), Key::new("3"));
        let mut out = String::new();
        Key::integer(3).write_json(&mut out);
        Key::new("a\"b").write_json(&mut out);
        assert_eq!(out, r#"3"a\"b""#);
    }
}
