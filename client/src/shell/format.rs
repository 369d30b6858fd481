//! Rendering keys, values and results as the lines `kvsh` prints (DESIGN §7, a contract).
//!
//! | statement                        | line(s) printed                                    |
//! |----------------------------------|----------------------------------------------------|
//! | `READ`                           | the value ([`format_value`]) or `(nil)`            |
//! | `WRITE` `DELETE` `BEGIN` `ABORT` `SET` | [`OK`]                                       |
//! | `END`                            | [`COMMITTED`] or `ABORTED: <reason>` ([`format_aborted`]) |
//! | `SCAN`                           | `key value` per pair, then `(N rows)` ([`format_scan`]) |
//! | `SHOW TOKEN`                     | the token, as is                                   |
//! | `STATUS` `LOCKS` `HELP`          | a block of text                                    |
//! | any failure                      | `ERROR: <message>` ([`format_error`], [`format_parse_error`]) |
//!
//! Keys and values print as shell tokens ([`format_token`]): what the shell prints can be
//! pasted back into a statement and means the same bytes. Every function here returns text
//! without a trailing newline, and every line it returns is free of control characters, so
//! one result cannot spill over several lines or drive the terminal.

use crate::shell::parse_error::ParseError;

/// The result line of a statement that succeeded with nothing to show.
pub const OK: &str = "OK";

/// The result line of an `END` that committed.
pub const COMMITTED: &str = "COMMITTED";

/// The result line of a `READ` of a key that has no value.
pub const NIL: &str = "(nil)";

/// Lower-case hex digits for `\xNN` escapes.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Renders a key or value as a shell token that parses back to the same bytes.
///
/// The token is bare when the bytes are non-empty printable ASCII without spaces, quotes,
/// backslashes, `;` or `#`, and start with neither `--` (a comment) nor `(` (so that no value
/// prints as `(nil)` or `(3 rows)`), nor `ERROR:` or `ABORTED:` (so that no READ or SCAN line
/// reads as a failure's; a review found `SCAN` printing a row `ERROR: boom`). Otherwise it is
/// double-quoted, with the escapes
/// `\" \\ \n \t \r \0`, `\xNN` for any other byte that is not printable text (control
/// characters, invalid UTF-8), and printable non-ASCII UTF-8 text kept as is.
pub fn format_token(bytes: &[u8]) -> String {
    if is_bare(bytes) {
        return bytes.iter().map(|&byte| char::from(byte)).collect();
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    // True when the last thing written was a character shown as itself, which a combining
    // mark may follow without being escaped.
    let mut after_text = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            after_text = push_char(&mut out, c, after_text);
        }
        for &byte in chunk.invalid() {
            push_hex(&mut out, byte);
            after_text = false;
        }
    }
    out.push('"');
    out
}

/// True when `bytes` can be written as a bare word.
fn is_bare(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && !bytes.starts_with(b"--")
        && !bytes.starts_with(b"(")
        && !bytes.starts_with(b"ERROR:")
        && !bytes.starts_with(b"ABORTED:")
        && bytes.iter().all(|&byte| {
            byte.is_ascii_graphic() && !matches!(byte, b'"' | b'\'' | b'\\' | b';' | b'#')
        })
}

/// Writes one character inside double quotes, escaped if need be. Returns true when it was
/// written as itself.
fn push_char(out: &mut String, c: char, after_text: bool) -> bool {
    let escape = match c {
        '"' => r#"\""#,
        '\\' => r"\\",
        '\n' => r"\n",
        '\t' => r"\t",
        '\r' => r"\r",
        '\0' => r"\0",
        ' '..='~' => {
            out.push(c);
            return true;
        }
        _ if shows_as_itself(c, after_text) => {
            out.push(c);
            return true;
        }
        _ => {
            let mut buffer = [0; 4];
            for &byte in c.encode_utf8(&mut buffer).as_bytes() {
                push_hex(out, byte);
            }
            return false;
        }
    };
    out.push_str(escape);
    false
}

/// True when a character other than printable ASCII can be printed as itself: it is visible
/// text, not a control, format or unassigned character, nor whitespace (which would be
/// invisible). A combining mark counts as text only right after text it can combine with.
fn shows_as_itself(c: char, after_text: bool) -> bool {
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    if !after_text {
        return c.escape_debug().count() == 1;
    }
    // `str::escape_debug` escapes a combining mark only at the start of the string, so a
    // combining mark after `a` comes out as itself, and other characters as `char::escape_debug`
    // would write them.
    let mut buffer = [0; 8];
    let length = 1 + c.encode_utf8(&mut buffer[1..]).len();
    buffer[0] = b'a';
    let pair = std::str::from_utf8(&buffer[..length]).expect("`a` and a char are valid UTF-8");
    pair.escape_debug().count() == 2
}

/// Writes `\xNN`.
fn push_hex(out: &mut String, byte: u8) {
    out.push_str(r"\x");
    out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
}

/// The result line of a `READ`: the value as a token, or [`NIL`] when the key has none.
pub fn format_value(value: Option<&[u8]>) -> String {
    match value {
        Some(value) => format_token(value),
        None => NIL.to_string(),
    }
}

/// The result of a `SCAN`: one `key value` line per pair (both through [`format_token`]), then
/// the row count line ([`format_row_count`]). Lines are separated by `\n`, with none at the end.
pub fn format_scan<K, V>(rows: &[(K, V)]) -> String
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format_token(key.as_ref()));
        out.push(' ');
        out.push_str(&format_token(value.as_ref()));
        out.push('\n');
    }
    out.push_str(&format_row_count(rows.len()));
    out
}

/// `(N rows)`, for every count, one included: the contract's form (DESIGN.md section 7), which
/// scripts match.
pub fn format_row_count(count: usize) -> String {
    format!("({count} rows)")
}

/// The result line of an `END` that aborted: `ABORTED: <reason>`, on one line.
pub fn format_aborted(reason: &str) -> String {
    format!("ABORTED: {}", one_line(reason))
}

/// The line for a failed statement: `ERROR: <message>`, on one line.
pub fn format_error(message: &str) -> String {
    format!("ERROR: {}", one_line(message))
}

/// The line for a line that did not parse: `ERROR: <message> near <token> (<hint>)`.
pub fn format_parse_error(error: &ParseError) -> String {
    match error.hint {
        Some(hint) => format_error(&format!("{error} ({hint})")),
        None => format_error(&error.to_string()),
    }
}

/// `text` with line breaks and tabs turned into spaces and other control characters escaped,
/// so that a message from the server stays on its line.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}
