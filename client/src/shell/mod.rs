//! The statement language of `kvsh`: parsing lines, rendering results, the help text.
//!
//! This module is pure: no I/O, no client, no state. The REPL reads a line, calls
//! [`parse_line`], runs the [`Statement`]s it gets through the client library, and prints each
//! result with the `format_*` functions. DESIGN §7 is the contract for the statements and the
//! result lines; this module keeps to it.
//!
//! # Statements
//!
//! ```text
//! BEGIN [READ ONLY]                    READ k            WRITE k v        DELETE k
//! SCAN from to [LIMIT n]               END | COMMIT      ABORT | ROLLBACK
//! SET CONSISTENCY sequential|causal    SHOW TOKEN        SET TOKEN t
//! STATUS                               LOCKS             HELP
//! ```
//!
//! Keywords are case-insensitive. A line holds any number of statements separated by `;` (a
//! line break outside quotes separates them too, so a script parses whole; `-f` and piped
//! input run a line at a time, and a line that ends inside quotes continues on the next); empty statements and comments (`--` or `#` to the end of the line) are skipped. Keys and
//! values are bare words, `"double-quoted"` strings with escapes, or `'single-quoted'` literal
//! strings (details in [`parser`]). The empty key is rejected, except as a `SCAN` bound, where
//! it means the start (`from`) or the end (`to`) of the key space. Key and value size limits
//! are the server's, not the parser's; the parser only caps a line at [`MAX_LINE_BYTES`].
//!
//! # Round trip
//!
//! [`format_token`] renders any byte string as a token that [`parse_line`] reads back as the
//! same bytes, and a [`Statement`]'s `Display` is its canonical text, which parses back to an
//! equal statement. Whatever the shell prints, a user can paste back.
//!
//! # Errors
//!
//! A line parses whole or not at all. A [`ParseError`] says what was wrong and near which
//! text; [`format_parse_error`] turns it into the one `ERROR: ...` line the REPL prints. No
//! input makes the parser panic (property-tested on arbitrary strings and bytes).

pub mod format;
pub mod help;
pub mod parse_error;
pub mod parser;
pub mod repl;
pub mod session;
pub mod statement;

#[cfg(test)]
mod format_test;
#[cfg(test)]
mod parser_test;

pub use format::COMMITTED;
pub use format::NIL;
pub use format::OK;
pub use format::format_aborted;
pub use format::format_error;
pub use format::format_parse_error;
pub use format::format_row_count;
pub use format::format_scan;
pub use format::format_token;
pub use format::format_value;
pub use help::help_text;
pub use parse_error::ParseError;
pub use parser::MAX_LINE_BYTES;
pub use parser::parse_line;
pub use parser::parse_line_bytes;
pub use parser::parse_statement;
pub use statement::Consistency;
pub use statement::Statement;
