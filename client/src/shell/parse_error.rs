//! The error of a line that does not parse.
//!
//! A parse error is the user's typo, not a failure: the REPL prints it as one line
//! (`ERROR: <message> near <token>`, see [`format_parse_error`]), runs nothing of the line and
//! keeps going. It never changes the session's state.
//!
//! [`format_parse_error`]: crate::shell::format_parse_error

use std::error::Error;
use std::fmt;

/// How many characters of the offending text a [`ParseError`] keeps in its `near` field. Values can be
/// megabytes long; an error line should stay readable.
pub const NEAR_CHARS_MAX: usize = 40;

/// A hint for errors where the list of statements helps.
pub const HINT_HELP: &str = "type HELP";

/// A hint for a bad escape in a double-quoted string.
pub const HINT_ESCAPES: &str =
    r#"escapes in "..." are \" \\ \n \t \r \0 \xNN; '...' takes text literally"#;

/// A hint for errors that usually come from a key or value that needed quotes.
pub const HINT_QUOTE: &str =
    r#"quote keys and values with spaces or special characters: WRITE k "a b""#;

/// Why a line did not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong, e.g. `"unknown statement FOO"`, `"unterminated quote"`,
    /// `"READ takes 1 argument, got 2"`. One line, no trailing period.
    pub message: String,
    /// The offending text as typed (a token, an escape, or a whole short statement), cut to
    /// [`NEAR_CHARS_MAX`] characters with control characters escaped; `None` when the message
    /// already says it all (an unknown statement, an over-long line).
    pub near: Option<String>,
    /// Advice for the user, printed after the error by [`format_parse_error`]: [`HINT_HELP`],
    /// [`HINT_QUOTE`] or [`HINT_ESCAPES`].
    ///
    /// [`format_parse_error`]: crate::shell::format_parse_error
    pub hint: Option<&'static str>,
}

impl ParseError {
    /// An error with a message only.
    pub(crate) fn new(message: impl Into<String>) -> ParseError {
        ParseError { message: message.into(), near: None, hint: None }
    }

    /// Adds the offending text, shortened and made printable.
    pub(crate) fn with_near(mut self, text: &str) -> ParseError {
        self.near = Some(printable_excerpt(text));
        self
    }

    /// Adds a hint.
    pub(crate) fn with_hint(mut self, hint: &'static str) -> ParseError {
        self.hint = Some(hint);
        self
    }
}

impl fmt::Display for ParseError {
    /// `<message>` or `<message> near <text>`; the hint is not included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.near {
            Some(near) => write!(f, "{} near {near}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Error for ParseError {}

/// The first [`NEAR_CHARS_MAX`] characters of `text` (then `...`), with control characters
/// (newlines included) escaped so that the error stays on one line and cannot drive the
/// terminal.
pub(crate) fn printable_excerpt(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == NEAR_CHARS_MAX {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
