//! The tokenizer and parser of shell lines.
//!
//! Parsing runs in two steps, both pure and linear in the line's length:
//!
//! 1. The tokenizer (`Lexer`) cuts a line into statements, at `;` and at line breaks (so that
//!    a whole script parses too), and each statement into tokens, undoing quotes and escapes;
//!    it drops comments and empty statements.
//! 2. The parser turns each statement's tokens into a [`Statement`], by its first (keyword)
//!    token.
//!
//! A line parses as a whole or not at all: one bad statement rejects the line, so the REPL
//! runs nothing of it.
//!
//! # Tokens
//!
//! | written as      | means                                                              |
//! |-----------------|--------------------------------------------------------------------|
//! | `user:1`        | a bare word: anything up to whitespace or `;`, taken as is         |
//! | `"a b\n"`       | a double-quoted string, with escapes `\" \\ \n \t \r \0 \xNN`      |
//! | `'C:\dir'`      | a single-quoted string, taken literally (no escapes, no `'` inside) |
//!
//! A bare word may not contain a quote or a backslash (quote the whole token instead), and a
//! quoted string must be followed by whitespace, `;` or the end of the line. A token that starts
//! with `#` or `--` starts a comment instead, which runs to the end of the line; inside a word
//! (`user#1`, `a--b`) they are ordinary characters. Keywords are bare words, matched ignoring
//! ASCII case; a quoted `"READ"` is a key or value, never a keyword.
//!
//! Inside quotes every character stands for its UTF-8 bytes, and `\xNN` for the single byte NN,
//! so any byte string can be written; [`format_token`] writes them that way.
//!
//! [`format_token`]: crate::shell::format_token

use crate::shell::parse_error::HINT_ESCAPES;
use crate::shell::parse_error::HINT_HELP;
use crate::shell::parse_error::HINT_QUOTE;
use crate::shell::parse_error::ParseError;
use crate::shell::parse_error::printable_excerpt;
use crate::shell::statement::Consistency;
use crate::shell::statement::Statement;

/// The longest line the parser accepts, in bytes.
///
/// A node accepts values of up to 1 MiB by default; written with `\xNN` escapes a binary value
/// takes up to four times its size, so a `WRITE` of the largest default value with a long
/// key fits with room to spare. The server enforces the real key and value limits, which are
/// configurable; this cap only keeps a runaway paste or file from eating the shell's memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
/// The message of a string left open at the end of the text: line-at-a-time input then reads
/// on (`repl`).
pub const UNTERMINATED_QUOTE: &str = "unterminated quote";

/// The statement keywords, for "did you mean" suggestions.
const KEYWORDS: [&str; 14] = [
    "BEGIN", "READ", "WRITE", "DELETE", "SCAN", "END", "COMMIT", "ABORT", "ROLLBACK", "SET",
    "SHOW", "STATUS", "LOCKS", "HELP",
];

/// Words longer than this get no "did you mean" suggestion (the edit distance is quadratic).
const SUGGESTION_WORD_CHARS_MAX: usize = 16;

/// Parses one line, which may contain several statements separated by `;` (as in
/// `kvsh -c "BEGIN; WRITE a 1; END"`). A line break outside quotes separates statements too.
///
/// Empty statements (blank, only `;`, or comments starting with `--` or `#`) are skipped, so a
/// blank or comment-only line gives an empty list. On error nothing of the line is returned.
pub fn parse_line(line: &str) -> Result<Vec<Statement>, ParseError> {
    check_line(line)?;
    let statements = Lexer::new(line).statements()?;
    statements.iter().map(parse_words).collect()
}

/// Parses a line read as raw bytes (from a file or a pipe), rejecting invalid UTF-8 with an
/// error that says where, then as [`parse_line`].
pub fn parse_line_bytes(line: &[u8]) -> Result<Vec<Statement>, ParseError> {
    check_length(line.len())?;
    match std::str::from_utf8(line) {
        Ok(line) => parse_line(line),
        Err(error) => {
            Err(ParseError::new(format!("invalid UTF-8 in input at byte {}", error.valid_up_to())))
        }
    }
}

/// Parses text that must hold exactly one statement (a trailing `;` and comments are fine).
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let mut statements = parse_line(text)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(ParseError::new("empty statement").with_hint(HINT_HELP)),
        count => Err(ParseError::new(format!("expected one statement, got {count}"))
            .with_near(text)
            .with_hint(HINT_HELP)),
    }
}

/// Rejects lines over [`MAX_LINE_BYTES`] and lines containing NUL.
fn check_line(line: &str) -> Result<(), ParseError> {
    check_length(line.len())?;
    match line.find('\0') {
        Some(index) => Err(ParseError::new(format!(
            r"NUL byte in input at byte {index} (write \0 inside double quotes)"
        ))),
        None => Ok(()),
    }
}

fn check_length(length: usize) -> Result<(), ParseError> {
    if length > MAX_LINE_BYTES {
        return Err(ParseError::new(format!(
            "line too long: over {MAX_LINE_BYTES} bytes (at least {length} read)"
        )));
    }
    Ok(())
}

/// One key, value or keyword, after quotes and escapes are undone.
#[derive(Debug)]
struct Token<'a> {
    /// The bytes the token stands for.
    bytes: Vec<u8>,
    /// True for a bare word, which alone can be a keyword.
    bare: bool,
    /// The token as written, quotes included (for error messages).
    source: &'a str,
}

impl Token<'_> {
    /// True when the token is the bare keyword `keyword` (in upper case), ignoring ASCII case.
    fn is_keyword(&self, keyword: &str) -> bool {
        self.bare && self.source.eq_ignore_ascii_case(keyword)
    }
}

/// The tokens of one non-empty statement.
#[derive(Debug)]
struct Words<'a> {
    /// At least one token.
    tokens: Vec<Token<'a>>,
    /// The statement as written, from its first token to its last.
    source: &'a str,
}

/// The tokenizer: a cursor over one line.
///
/// Invariant: `position` is a char boundary of `line`, and only moves forward.
struct Lexer<'a> {
    /// The whole line.
    line: &'a str,
    /// The byte offset of the next character to read.
    position: usize,
}

impl<'a> Lexer<'a> {
    fn new(line: &'a str) -> Lexer<'a> {
        Lexer { line, position: 0 }
    }

    /// The unread rest of the line.
    fn rest(&self) -> &'a str {
        &self.line[self.position..]
    }

    /// Cuts the line into its non-empty statements.
    fn statements(mut self) -> Result<Vec<Words<'a>>, ParseError> {
        let mut statements = Vec::new();
        let mut tokens = Vec::new();
        // The byte offsets of the current statement's first token and of the end of its last.
        let (mut start, mut end) = (0, 0);
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() && c != '\n');
            self.position += rest.len() - trimmed.len();
            if tokens.is_empty() {
                start = self.position;
            }
            let Some(next) = trimmed.chars().next() else { break };
            let token = match next {
                ';' | '\n' => {
                    self.push_statement(&mut statements, &mut tokens, start..end);
                    self.position += 1;
                    continue;
                }
                '#' => {
                    self.skip_comment();
                    continue;
                }
                '-' if trimmed.starts_with("--") => {
                    self.skip_comment();
                    continue;
                }
                '"' => self.double_quoted()?,
                '\'' => self.single_quoted()?,
                _ => self.bare()?,
            };
            tokens.push(token);
            end = self.position;
        }
        self.push_statement(&mut statements, &mut tokens, start..end);
        Ok(statements)
    }

    /// Ends the current statement, which spans `span` of the line, unless it is empty.
    fn push_statement(
        &self,
        statements: &mut Vec<Words<'a>>,
        tokens: &mut Vec<Token<'a>>,
        span: std::ops::Range<usize>,
    ) {
        if tokens.is_empty() {
            return;
        }
        let source = &self.line[span];
        statements.push(Words { tokens: std::mem::take(tokens), source });
    }

    /// Skips a comment, up to (not including) the end of the line.
    fn skip_comment(&mut self) {
        let rest = self.rest();
        self.position += rest.find('\n').unwrap_or(rest.len());
    }

    /// Reads a bare word, up to whitespace, `;` or the end of the line.
    fn bare(&mut self) -> Result<Token<'a>, ParseError> {
        let rest = self.rest();
        let mut length = rest.len();
        for (index, c) in rest.char_indices() {
            if c.is_whitespace() || c == ';' {
                length = index;
                break;
            }
            if c == '"' || c == '\'' {
                return Err(ParseError::new("quote inside a bare word (quote the whole token)")
                    .with_near(&rest[..index + 1])
                    .with_hint(HINT_QUOTE));
            }
            if c == '\\' {
                return Err(ParseError::new("backslash outside quotes")
                    .with_near(&rest[..index + 1])
                    .with_hint(HINT_QUOTE));
            }
        }
        let source = &rest[..length];
        self.position += length;
        Ok(Token { bytes: source.as_bytes().to_vec(), bare: true, source })
    }

    /// Reads a single-quoted string: everything up to the next `'`, literally.
    fn single_quoted(&mut self) -> Result<Token<'a>, ParseError> {
        let rest = self.rest();
        let Some(length) = rest[1..].find('\'') else {
            return Err(ParseError::new(UNTERMINATED_QUOTE).with_near(rest));
        };
        let source = &rest[..length + 2];
        self.position += source.len();
        self.expect_separator(source)?;
        Ok(Token { bytes: rest.as_bytes()[1..length + 1].to_vec(), bare: false, source })
    }

    /// Reads a double-quoted string, undoing its escapes.
    fn double_quoted(&mut self) -> Result<Token<'a>, ParseError> {
        let rest = self.rest();
        let mut bytes = Vec::new();
        // Byte offset into `rest` of the next character inside the quotes.
        let mut index = 1;
        loop {
            let Some(special) = rest[index..].find(['"', '\\']) else {
                return Err(ParseError::new(UNTERMINATED_QUOTE).with_near(rest));
            };
            bytes.extend_from_slice(&rest.as_bytes()[index..index + special]);
            index += special;
            if rest.as_bytes()[index] == b'"' {
                index += 1;
                break;
            }
            let (byte, length) = escape(&rest[index..], rest)?;
            bytes.push(byte);
            index += length;
        }
        let source = &rest[..index];
        self.position += index;
        self.expect_separator(source)?;
        Ok(Token { bytes, bare: false, source })
    }

    /// Checks that a quoted token just read is followed by whitespace, `;` or the end.
    fn expect_separator(&self, source: &str) -> Result<(), ParseError> {
        match self.rest().chars().next() {
            None | Some(';') => Ok(()),
            Some(c) if c.is_whitespace() => Ok(()),
            Some(c) => {
                let near = &self.line[self.position - source.len()..self.position + c.len_utf8()];
                Err(ParseError::new("expected a space or ; after the closing quote")
                    .with_near(near)
                    .with_hint(HINT_QUOTE))
            }
        }
    }
}

/// Decodes the escape at the start of `text` (which starts with `\`) into its byte and the
/// escape's length in bytes. `quoted` is the whole quoted string, for the error when the
/// backslash ends the line.
fn escape(text: &str, quoted: &str) -> Result<(u8, usize), ParseError> {
    let mut chars = text.chars();
    chars.next();
    let byte = match chars.next() {
        // A backslash that ends the line: no next line can complete it (a line break is not
        // an escape), so it is a bad escape now, not a quote that the next line may close.
        None => return Err(bad_escape("\\").with_near(quoted)),
        Some('"') => b'"',
        Some('\\') => b'\\',
        Some('n') => b'\n',
        Some('t') => b'\t',
        Some('r') => b'\r',
        Some('0') => b'\0',
        Some('x') => {
            let digits: String = chars.take(2).collect();
            let hex = digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_hexdigit());
            return match u8::from_str_radix(&digits, 16) {
                Ok(byte) if hex => Ok((byte, 4)),
                _ => Err(bad_escape(&format!(r"\x{digits}"))),
            };
        }
        Some(c) => return Err(bad_escape(&text[..1 + c.len_utf8()])),
    };
    Ok((byte, 2))
}

fn bad_escape(escape: &str) -> ParseError {
    ParseError::new("bad escape").with_near(escape).with_hint(HINT_ESCAPES)
}

/// Turns the tokens of one statement into a [`Statement`].
fn parse_words(words: &Words<'_>) -> Result<Statement, ParseError> {
    let Some(first) = words.tokens.first() else {
        return Err(ParseError::new("empty statement").with_hint(HINT_HELP));
    };
    let name = if first.bare { first.source.to_ascii_uppercase() } else { String::new() };
    match name.as_str() {
        "BEGIN" => parse_begin(words),
        "READ" => parse_read(words),
        "WRITE" => {
            let [key, value] = arguments(&name, 1, words)?;
            Ok(Statement::Write { key: parse_key(key)?, value: value.bytes.clone() })
        }
        "DELETE" => {
            let [key] = arguments(&name, 1, words)?;
            Ok(Statement::Delete { key: parse_key(key)? })
        }
        "SCAN" => parse_scan(words),
        "END" | "COMMIT" => {
            let [] = arguments(&name, 1, words)?;
            Ok(Statement::End)
        }
        "ABORT" | "ROLLBACK" => {
            let [] = arguments(&name, 1, words)?;
            Ok(Statement::Abort)
        }
        "SET" => parse_set(words),
        "SHOW" => parse_show(words),
        "STATUS" => {
            let [] = arguments(&name, 1, words)?;
            Ok(Statement::Status)
        }
        "LOCKS" => {
            let [] = arguments(&name, 1, words)?;
            Ok(Statement::Locks)
        }
        "HELP" => {
            let [] = arguments(&name, 1, words)?;
            Ok(Statement::Help)
        }
        _ => Err(unknown_statement(first)),
    }
}

/// The `N` arguments after the `keywords` leading keyword tokens, or an argument count error
/// naming the statement as `name`.
fn arguments<'w, 'a, const N: usize>(
    name: &str,
    keywords: usize,
    words: &'w Words<'a>,
) -> Result<&'w [Token<'a>; N], ParseError> {
    let arguments = words.tokens.get(keywords..).unwrap_or_default();
    <&[Token<'a>; N]>::try_from(arguments).map_err(|_| {
        let expected = match N {
            0 => "no arguments".to_string(),
            1 => "1 argument".to_string(),
            count => format!("{count} arguments"),
        };
        let error = ParseError::new(format!("{name} takes {expected}, got {}", arguments.len()));
        match arguments.get(N) {
            // Too many: point at the first extra one. A value with a space in it is the usual
            // cause.
            Some(extra) if N > 0 => error.with_near(extra.source).with_hint(HINT_QUOTE),
            Some(extra) => error.with_near(extra.source).with_hint(HINT_HELP),
            None => error.with_near(words.source).with_hint(HINT_HELP),
        }
    })
}

/// A key: any token but the empty string.
fn parse_key(token: &Token<'_>) -> Result<Vec<u8>, ParseError> {
    if token.bytes.is_empty() {
        return Err(ParseError::new("empty key").with_near(token.source));
    }
    Ok(token.bytes.clone())
}

/// `BEGIN` or `BEGIN READ ONLY`.
fn parse_begin(words: &Words<'_>) -> Result<Statement, ParseError> {
    match &words.tokens[1..] {
        [] => Ok(Statement::Begin { read_only: false }),
        [read, only] if read.is_keyword("READ") && only.is_keyword("ONLY") => {
            Ok(Statement::Begin { read_only: true })
        }
        _ => Err(ParseError::new("BEGIN takes no arguments or READ ONLY")
            .with_near(words.source)
            .with_hint(HINT_HELP)),
    }
}

/// `SCAN from to [LIMIT n]`. Unlike keys elsewhere, `from` and `to` may be empty: the start
/// and the end of the key space.
/// `READ k` or `READ k FOR UPDATE`.
fn parse_read(words: &Words<'_>) -> Result<Statement, ParseError> {
    if let [key, for_, update] = &words.tokens[1..]
        && for_.is_keyword("FOR")
        && update.is_keyword("UPDATE")
    {
        return Ok(Statement::Read { key: parse_key(key)?, for_update: true });
    }
    let [key] = arguments("READ", 1, words)?;
    Ok(Statement::Read { key: parse_key(key)?, for_update: false })
}

fn parse_scan(words: &Words<'_>) -> Result<Statement, ParseError> {
    let tokens = &words.tokens;
    let (from, to, limit) = match &tokens[1..] {
        [from, to] => (from, to, None),
        [from, to, keyword, rest @ ..] if keyword.is_keyword("LIMIT") => match rest {
            [] => {
                return Err(ParseError::new("LIMIT takes a number").with_near(keyword.source));
            }
            [limit] => (from, to, Some(parse_limit(limit)?)),
            [_, extra, ..] => {
                return Err(ParseError::new("unexpected argument after LIMIT n")
                    .with_near(extra.source)
                    .with_hint(HINT_QUOTE));
            }
        },
        arguments => {
            let error = ParseError::new(format!(
                "SCAN takes 2 arguments and an optional LIMIT n, got {}",
                arguments.len()
            ));
            return Err(match arguments.get(2) {
                Some(extra) => error.with_near(extra.source).with_hint(HINT_QUOTE),
                None => error.with_near(words.source).with_hint(HINT_HELP),
            });
        }
    };
    // Refused here, not only by the node: a line is parsed whole before any of it runs, so
    // `WRITE a 1; SCAN z a` must not write before the scan is found wrong (a review, 2026-12-05).
    if !to.bytes.is_empty() && from.bytes > to.bytes {
        return Err(ParseError::new(
            "scan range is backwards: from is after to (an empty to means the end)",
        )
        .with_near(to.source));
    }
    Ok(Statement::Scan { from: from.bytes.clone(), to: to.bytes.clone(), limit })
}

/// The `n` of `LIMIT n`: decimal digits only, within `u32`.
fn parse_limit(token: &Token<'_>) -> Result<u32, ParseError> {
    let digits = std::str::from_utf8(&token.bytes).unwrap_or_default();
    let decimal = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match digits.parse::<u32>() {
        Ok(limit) if decimal => Ok(limit),
        _ => Err(ParseError::new(format!("LIMIT must be an integer from 0 to {}", u32::MAX))
            .with_near(token.source)),
    }
}

/// `SET CONSISTENCY sequential|causal` or `SET TOKEN t`.
fn parse_set(words: &Words<'_>) -> Result<Statement, ParseError> {
    match words.tokens.get(1) {
        Some(setting) if setting.is_keyword("CONSISTENCY") => {
            let [value] = arguments("SET CONSISTENCY", 2, words)?;
            let name = if value.bare { value.source } else { "" };
            match Consistency::from_name(name) {
                Some(consistency) => Ok(Statement::SetConsistency(consistency)),
                None => Err(ParseError::new("consistency must be sequential or causal")
                    .with_near(value.source)),
            }
        }
        Some(setting) if setting.is_keyword("TOKEN") => {
            let [token] = arguments("SET TOKEN", 2, words)?;
            match String::from_utf8(token.bytes.clone()) {
                Ok(text) => Ok(Statement::SetToken(text)),
                Err(_) => Err(ParseError::new("token is not valid UTF-8").with_near(token.source)),
            }
        }
        Some(other) => Err(ParseError::new("SET takes CONSISTENCY or TOKEN")
            .with_near(other.source)
            .with_hint(HINT_HELP)),
        None => Err(ParseError::new("SET takes CONSISTENCY or TOKEN")
            .with_near(words.source)
            .with_hint(HINT_HELP)),
    }
}

/// `SHOW TOKEN`.
fn parse_show(words: &Words<'_>) -> Result<Statement, ParseError> {
    match words.tokens.get(1) {
        Some(target) if target.is_keyword("TOKEN") => {
            let [] = arguments("SHOW TOKEN", 2, words)?;
            Ok(Statement::ShowToken)
        }
        Some(other) => {
            Err(ParseError::new("SHOW takes TOKEN").with_near(other.source).with_hint(HINT_HELP))
        }
        None => {
            Err(ParseError::new("SHOW takes TOKEN").with_near(words.source).with_hint(HINT_HELP))
        }
    }
}

/// The error for a first token that is no statement, with a suggestion for a near miss.
fn unknown_statement(first: &Token<'_>) -> ParseError {
    let mut message = format!("unknown statement {}", printable_excerpt(first.source));
    if let Some(keyword) = suggestion(first) {
        message.push_str(&format!(" (did you mean {keyword}?)"));
    }
    ParseError::new(message).with_hint(HINT_HELP)
}

/// The keyword a mistyped bare word was most likely meant to be, if any is close enough: one
/// edit away, or two for words of five letters or more.
fn suggestion(token: &Token<'_>) -> Option<&'static str> {
    let word = token.source.to_ascii_uppercase();
    let length = word.chars().count();
    if !token.bare || length > SUGGESTION_WORD_CHARS_MAX {
        return None;
    }
    let allowed = if length >= 5 { 2 } else { 1 };
    KEYWORDS
        .iter()
        .map(|keyword| (edit_distance(&word, keyword), *keyword))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, keyword)| keyword)
}

/// The optimal string alignment distance: insertions, deletions, substitutions and
/// transpositions of adjacent characters each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // distances[i][j]: the distance between a[..i] and b[..j].
    let mut distances = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in distances.iter_mut().enumerate() {
        row[0] = i;
    }
    distances[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (distances[i - 1][j] + 1)
                .min(distances[i][j - 1] + 1)
                .min(distances[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(distances[i - 2][j - 2] + 1);
            }
            distances[i][j] = best;
        }
    }
    distances[a.len()][b.len()]
}
