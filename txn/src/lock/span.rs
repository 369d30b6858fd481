//! What a lock covers ([`LockSpan`]) and how strongly ([`LockMode`]), and the one rule that
//! decides whether two locks of different transactions conflict ([`LockSpan::conflicts`]).
//!
//! ```text
//!                      | key k, S | key k, X | range r (S)
//!   -------------------+----------+----------+-------------
//!   key k, S           |    ok    | CONFLICT |     ok
//!   key k, X           | CONFLICT | CONFLICT | CONFLICT if k in r
//!   range r (S)        |    ok    | CONFLICT |     ok
//!                      |          | if k in r|
//! ```
//!
//! Locks on different keys never conflict. Ranges are half-open `[from, to)`, `to: None` is the
//! end of the key space, and they are only ever locked [`LockMode::Shared`] (a SCAN's guard
//! against phantoms), so two ranges never conflict. The matrix says nothing about a transaction
//! and itself: a transaction never conflicts with itself, and callers filter that out.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::types::Key;
use crate::types::display_key;

/// How strongly a lock holds its span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// Read lock (READ, SCAN): compatible with other shared locks.
    Shared,
    /// Write lock (WRITE, DELETE): compatible with nothing of another transaction.
    Exclusive,
}

impl LockMode {
    /// True when holding `self` gives everything `wanted` gives (X implies S).
    pub fn covers(self, wanted: LockMode) -> bool {
        self == LockMode::Exclusive || wanted == LockMode::Shared
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockMode::Shared => write!(f, "S"),
            LockMode::Exclusive => write!(f, "X"),
        }
    }
}

/// What a lock covers. Ranges are half-open `[from, to)`; `to: None` = end of key space.
/// Ranges are only ever locked Shared (SCAN, against phantoms).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockSpan {
    /// One key.
    Key(Key),
    /// Every key `k` with `from <= k < to` (no upper bound when `to` is `None`), including keys
    /// that do not exist yet.
    Range {
        /// The first key covered (inclusive).
        from: Key,
        /// The first key not covered (exclusive); `None` is the end of the key space.
        to: Option<Key>,
    },
}

impl LockSpan {
    /// A span of one key.
    pub fn key(key: impl Into<Key>) -> LockSpan {
        LockSpan::Key(key.into())
    }

    /// A half-open range `[from, to)`; `to: None` is the end of the key space.
    pub fn range(from: impl Into<Key>, to: Option<impl Into<Key>>) -> LockSpan {
        LockSpan::Range { from: from.into(), to: to.map(Into::into) }
    }

    /// True when `key` is inside the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            LockSpan::Key(own) => own.as_slice() == key,
            LockSpan::Range { from, to } => range_contains(from, to.as_deref(), key),
        }
    }

    /// True for a range that covers no key at all (`to <= from`). Keys are never empty spans.
    pub fn is_empty(&self) -> bool {
        match self {
            LockSpan::Key(_) => false,
            LockSpan::Range { from, to } => to.as_ref().is_some_and(|to| to <= from),
        }
    }

    /// True when a lock on `self` in `mode` conflicts with a lock on `other` in `other_mode`
    /// held or requested by a *different* transaction (the matrix in the module docs).
    pub fn conflicts(&self, mode: LockMode, other: &LockSpan, other_mode: LockMode) -> bool {
        match (self, other) {
            (LockSpan::Key(a), LockSpan::Key(b)) => {
                a == b && (mode == LockMode::Exclusive || other_mode == LockMode::Exclusive)
            }
            (LockSpan::Key(key), range @ LockSpan::Range { .. }) => {
                mode == LockMode::Exclusive && range.contains(key)
            }
            (range @ LockSpan::Range { .. }, LockSpan::Key(key)) => {
                other_mode == LockMode::Exclusive && range.contains(key)
            }
            (LockSpan::Range { .. }, LockSpan::Range { .. }) => false,
        }
    }
}

impl fmt::Display for LockSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockSpan::Key(key) => write!(f, "key {}", display_key(key)),
            LockSpan::Range { from, to: Some(to) } => {
                write!(f, "range [{}, {})", display_key(from), display_key(to))
            }
            LockSpan::Range { from, to: None } => write!(f, "range [{}, end)", display_key(from)),
        }
    }
}

/// True when `from <= key < to` (`to: None` = no upper bound).
pub(crate) fn range_contains(from: &[u8], to: Option<&[u8]>, key: &[u8]) -> bool {
    from <= key && to.is_none_or(|to| key < to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::Exclusive as X;
    use LockMode::Shared as S;

    #[test]
    fn compatibility_matrix() {
        let a = LockSpan::key("a");
        let b = LockSpan::key("b");
        let range = LockSpan::range("a", Some("c"));
        let cases = [
            (&a, S, &a, S, false),
            (&a, S, &a, X, true),
            (&a, X, &a, X, true),
            (&a, X, &b, X, false),
            (&a, S, &range, S, false),
            (&a, X, &range, S, true),
            (&range, S, &range, S, false),
        ];
        for (left, left_mode, right, right_mode, expect) in cases {
            assert_eq!(left.conflicts(left_mode, right, right_mode), expect, "{left} {left_mode}");
            // The rule is symmetric.
            assert_eq!(
                right.conflicts(right_mode, left, left_mode),
                expect,
                "{right} {right_mode}"
            );
        }
    }

    #[test]
    fn range_bounds_are_half_open() {
        let range = LockSpan::range("b", Some("d"));
        assert!(!range.contains(b"a"));
        assert!(range.contains(b"b"), "from is inclusive");
        assert!(range.contains(b"c\xff"));
        assert!(!range.contains(b"d"), "to is exclusive");
        let open = LockSpan::range("b", None::<Key>);
        assert!(open.contains(b"\xff\xff\xff"), "to: None reaches the end of the key space");
        assert!(!open.contains(b"a"));
        assert!(LockSpan::range("b", Some("b")).is_empty());
        assert!(!open.is_empty());
    }

    #[test]
    fn spans_display_for_people() {
        assert_eq!(LockSpan::key("a").to_string(), "key a");
        assert_eq!(LockSpan::range("a", Some("c")).to_string(), "range [a, c)");
        assert_eq!(LockSpan::range(vec![0u8], None::<Key>).to_string(), "range [\\x00, end)");
    }
}
