//! The Rust client library and the kvsh shell.
//!
//! - [`shell`]: the statement language of `kvsh` (parsing, result lines, help text).

pub mod shell;
