//! Tests of the parser: every statement form, every error, and properties over arbitrary
//! input (TESTING §6: the parser never panics; `parse(format(bytes)) == bytes`).

use proptest::prelude::*;

use crate::shell::Consistency;
use crate::shell::MAX_LINE_BYTES;
use crate::shell::ParseError;
use crate::shell::Statement;
use crate::shell::format_token;
use crate::shell::parse_line;
use crate::shell::parse_line_bytes;
use crate::shell::parse_statement;

fn must_parse(text: &str) -> Statement {
    parse_statement(text).unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

fn must_parse_line(text: &str) -> Vec<Statement> {
    parse_line(text).unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

fn must_fail(text: &str) -> ParseError {
    match parse_line(text) {
        Ok(statements) => panic!("{text:?} should not parse, got {statements:?}"),
        Err(error) => error,
    }
}

/// Checks the error of `text`: its message, and the text it is near.
fn must_fail_with(text: &str, message: &str, near: Option<&str>) -> ParseError {
    let error = must_fail(text);
    assert_eq!(error.message, message, "message for {text:?}");
    assert_eq!(error.near.as_deref(), near, "near for {text:?}");
    error
}

fn read(key: &[u8]) -> Statement {
    Statement::Read { key: key.to_vec(), for_update: false }
}

fn write(key: &[u8], value: &[u8]) -> Statement {
    Statement::Write { key: key.to_vec(), value: value.to_vec() }
}

fn scan(from: &[u8], to: &[u8], limit: Option<u32>) -> Statement {
    Statement::Scan { from: from.to_vec(), to: to.to_vec(), limit }
}

// Statement forms.

#[test]
fn every_statement_form_parses() {
    assert_eq!(must_parse("BEGIN"), Statement::Begin { read_only: false });
    assert_eq!(must_parse("BEGIN READ ONLY"), Statement::Begin { read_only: true });
    assert_eq!(must_parse("READ k"), read(b"k"));
    assert_eq!(must_parse("WRITE k v"), write(b"k", b"v"));
    assert_eq!(must_parse("DELETE k"), Statement::Delete { key: b"k".to_vec() });
    assert_eq!(must_parse("SCAN a z"), scan(b"a", b"z", None));
    assert_eq!(must_parse("SCAN a z LIMIT 10"), scan(b"a", b"z", Some(10)));
    assert_eq!(must_parse("END"), Statement::End);
    assert_eq!(must_parse("ABORT"), Statement::Abort);
    assert_eq!(
        must_parse("SET CONSISTENCY sequential"),
        Statement::SetConsistency(Consistency::Sequential)
    );
    assert_eq!(
        must_parse("SET CONSISTENCY causal"),
        Statement::SetConsistency(Consistency::Causal)
    );
    assert_eq!(must_parse("SHOW TOKEN"), Statement::ShowToken);
    assert_eq!(must_parse("SET TOKEN 12345"), Statement::SetToken("12345".to_string()));
    assert_eq!(must_parse("STATUS"), Statement::Status);
    assert_eq!(must_parse("LOCKS"), Statement::Locks);
    assert_eq!(must_parse("HELP"), Statement::Help);
}

#[test]
fn keywords_ignore_case_but_keys_and_values_keep_it() {
    assert_eq!(must_parse("begin read only"), Statement::Begin { read_only: true });
    assert_eq!(must_parse("Begin Read Only"), Statement::Begin { read_only: true });
    assert_eq!(must_parse("read Key"), read(b"Key"));
    assert_eq!(must_parse("wRiTe KEY Value"), write(b"KEY", b"Value"));
    assert_eq!(must_parse("scan A Z limit 3"), scan(b"A", b"Z", Some(3)));
    assert_eq!(
        must_parse("set consistency CAUSAL"),
        Statement::SetConsistency(Consistency::Causal)
    );
    assert_eq!(must_parse("show token"), Statement::ShowToken);
    assert_eq!(must_parse("set token AbC"), Statement::SetToken("AbC".to_string()));
    assert_eq!(must_parse("status"), Statement::Status);
    assert_eq!(must_parse("locks"), Statement::Locks);
    assert_eq!(must_parse("help"), Statement::Help);
    assert_eq!(must_parse("end"), Statement::End);
    assert_eq!(must_parse("abort"), Statement::Abort);
}

#[test]
fn commit_and_rollback_are_aliases() {
    assert_eq!(must_parse("COMMIT"), Statement::End);
    assert_eq!(must_parse("commit"), Statement::End);
    assert_eq!(must_parse("ROLLBACK"), Statement::Abort);
    assert_eq!(must_parse("Rollback"), Statement::Abort);
}

#[test]
fn keyword_looking_keys_are_keys() {
    assert_eq!(must_parse("READ READ"), read(b"READ"));
    assert_eq!(must_parse("WRITE LIMIT LIMIT"), write(b"LIMIT", b"LIMIT"));
    assert_eq!(must_parse("SCAN LIMIT LIMIT LIMIT 1"), scan(b"LIMIT", b"LIMIT", Some(1)));
}

#[test]
fn whitespace_is_flexible() {
    assert_eq!(must_parse("  \tWRITE   k\t\tv  "), write(b"k", b"v"));
    assert_eq!(must_parse("WRITE k v\r\n"), write(b"k", b"v"));
    assert_eq!(
        must_parse("WRITE\u{a0}k v"),
        Statement::Write { key: b"k".to_vec(), value: b"v".to_vec() }
    );
}

#[test]
fn scan_bounds_may_be_empty_and_limit_takes_the_whole_u32_range() {
    assert_eq!(must_parse(r#"SCAN "" """#), scan(b"", b"", None));
    assert_eq!(must_parse(r#"SCAN a """#), scan(b"a", b"", None));
    assert_eq!(must_parse("SCAN a b LIMIT 0"), scan(b"a", b"b", Some(0)));
    assert_eq!(must_parse("SCAN a b LIMIT 007"), scan(b"a", b"b", Some(7)));
    assert_eq!(must_parse("SCAN a b LIMIT 4294967295"), scan(b"a", b"b", Some(u32::MAX)));
    assert_eq!(must_parse(r#"SCAN a b LIMIT "5""#), scan(b"a", b"b", Some(5)));
}

#[test]
fn values_may_be_empty_but_keys_may_not() {
    assert_eq!(must_parse(r#"WRITE k """#), write(b"k", b""));
    assert_eq!(must_parse("WRITE k ''"), write(b"k", b""));
}

// Quoting.

#[test]
fn double_quotes_take_spaces_and_escapes() {
    assert_eq!(must_parse(r#"WRITE k "a b""#), write(b"k", b"a b"));
    assert_eq!(must_parse(r#"WRITE "my key" "x;y#z -- w""#), write(b"my key", b"x;y#z -- w"));
    assert_eq!(
        must_parse(r#"WRITE k "q\" b\\ n\n t\t r\r z\0""#),
        write(b"k", b"q\" b\\ n\n t\t r\r z\0")
    );
    assert_eq!(must_parse(r#"WRITE k "\x00\x41\xff\xFe\x7f""#), write(b"k", b"\0A\xff\xfe\x7f"));
    // Exactly two hex digits and no octal: what follows an escape is text.
    assert_eq!(must_parse(r#"WRITE k "\x411\01""#), write(b"k", b"A1\x001"));
    assert_eq!(must_parse(r#"WRITE k "'""#), write(b"k", b"'"));
}

#[test]
fn quoted_text_is_utf8_and_hex_escapes_are_bytes() {
    assert_eq!(must_parse(r#"WRITE k "héllo 日本""#), write(b"k", "héllo 日本".as_bytes()));
    assert_eq!(must_parse(r#"WRITE k "\xc3\xa9""#), write(b"k", "é".as_bytes()));
    assert_eq!(must_parse("WRITE clé 值"), write("clé".as_bytes(), "值".as_bytes()));
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(must_parse(r"WRITE k 'C:\tmp\x41'"), write(b"k", br"C:\tmp\x41"));
    assert_eq!(
        must_parse(r#"WRITE 'a b' 'say "hi"; # not a comment'"#),
        write(b"a b", br#"say "hi"; # not a comment"#)
    );
}

#[test]
fn a_quoted_keyword_is_not_a_keyword() {
    let error = must_fail(r#""READ" k"#);
    assert_eq!(error.message, r#"unknown statement "READ""#);
    let error = must_fail(r#"SCAN a b "LIMIT" 5"#);
    assert_eq!(error.message, "SCAN takes 2 arguments and an optional LIMIT n, got 4");
    let error = must_fail(r#"BEGIN "READ" ONLY"#);
    assert_eq!(error.message, "BEGIN takes no arguments or READ ONLY");
    let error = must_fail(r#"SET CONSISTENCY "causal""#);
    assert_eq!(error.message, "consistency must be sequential or causal");
}

#[test]
fn quoted_token_text_is_taken_for_set_token() {
    assert_eq!(must_parse(r#"SET TOKEN "a b""#), Statement::SetToken("a b".to_string()));
    assert_eq!(must_parse(r#"SET TOKEN """#), Statement::SetToken(String::new()));
}

// Lines: several statements, comments, empty statements.

#[test]
fn a_line_holds_several_statements() {
    assert_eq!(
        must_parse_line("BEGIN; WRITE a 1; READ a; END"),
        vec![Statement::Begin { read_only: false }, write(b"a", b"1"), read(b"a"), Statement::End,]
    );
    assert_eq!(must_parse_line("READ a;READ b"), vec![read(b"a"), read(b"b")]);
    assert_eq!(must_parse_line(r#"WRITE a "x;y";READ a"#), vec![write(b"a", b"x;y"), read(b"a")]);
}

#[test]
fn empty_statements_and_comments_are_skipped() {
    assert_eq!(must_parse_line(""), vec![]);
    assert_eq!(must_parse_line("   \t "), vec![]);
    assert_eq!(must_parse_line(";"), vec![]);
    assert_eq!(must_parse_line(" ; ;; "), vec![]);
    assert_eq!(must_parse_line("-- a comment"), vec![]);
    assert_eq!(must_parse_line("# a comment; READ a"), vec![]);
    assert_eq!(must_parse_line(";;READ a;;"), vec![read(b"a")]);
    assert_eq!(must_parse_line("READ a -- the key; READ b"), vec![read(b"a")]);
    assert_eq!(must_parse_line("READ a # the key"), vec![read(b"a")]);
    assert_eq!(must_parse_line("READ a;-- READ b"), vec![read(b"a")]);
    assert_eq!(must_parse_line("READ a #\nREAD b"), vec![read(b"a"), read(b"b")]);
}

#[test]
fn line_breaks_separate_statements_except_inside_quotes() {
    assert_eq!(
        must_parse_line("BEGIN\nWRITE a 1\r\n\nEND\n"),
        vec![Statement::Begin { read_only: false }, write(b"a", b"1"), Statement::End]
    );
    assert_eq!(must_parse_line("WRITE a \"x\ny\""), vec![write(b"a", b"x\ny")]);
    assert_eq!(must_parse_line("WRITE a 'x\ny'"), vec![write(b"a", b"x\ny")]);
    must_fail_with("WRITE a\n1", "WRITE takes 2 arguments, got 1", Some("WRITE a"));
}

#[test]
fn comment_marks_inside_a_word_are_text() {
    assert_eq!(must_parse("WRITE user#1 a--b"), write(b"user#1", b"a--b"));
    assert_eq!(must_parse("WRITE k -1"), write(b"k", b"-1"));
    // A token that starts with `--` starts a comment: this is `WRITE k`, one argument short.
    must_fail_with("WRITE k --1", "WRITE takes 2 arguments, got 1", Some("WRITE k"));
}

#[test]
fn parse_statement_wants_exactly_one() {
    assert_eq!(must_parse("READ a;"), read(b"a"));
    assert_eq!(must_parse("READ a -- comment"), read(b"a"));
    let error = parse_statement("").expect_err("empty");
    assert_eq!(error.message, "empty statement");
    let error = parse_statement("-- nothing").expect_err("empty");
    assert_eq!(error.message, "empty statement");
    let error = parse_statement("READ a; READ b").expect_err("two");
    assert_eq!(error.message, "expected one statement, got 2");
}

// Errors.

#[test]
fn a_backwards_scan_range_does_not_parse_and_an_empty_to_means_the_end() {
    let error = must_fail("WRITE a 1; SCAN z a");
    assert_eq!(
        error.message,
        "scan range is backwards: from is after to (an empty to means the end)"
    );
    assert_eq!(error.near.as_deref(), Some("a"));
    assert!(parse_line("SCAN z \"\"").is_ok(), "from z to the end");
    assert!(parse_line("SCAN a a").is_ok(), "an empty range");
}

#[test]
fn unknown_statements_are_named_and_suggest_help() {
    let error = must_fail_with("FOO a b", "unknown statement FOO", None);
    assert_eq!(error.hint, Some(crate::shell::parse_error::HINT_HELP));
    assert_eq!(error.to_string(), "unknown statement FOO");
    must_fail_with("WRTIE a b", "unknown statement WRTIE (did you mean WRITE?)", None);
    must_fail_with("raed a", "unknown statement raed (did you mean READ?)", None);
    must_fail_with("SELECT * FROM t", "unknown statement SELECT", None);
    must_fail_with("ED", "unknown statement ED (did you mean END?)", None);
    must_fail_with("xyzzy", "unknown statement xyzzy", None);
    must_fail_with("'quoted'", "unknown statement 'quoted'", None);
}

#[test]
fn a_bad_statement_rejects_the_whole_line() {
    must_fail_with("BEGIN; WRITE a 1; FOO; END", "unknown statement FOO", None);
    // `;` ends a bare word: this is `WRITE a x` then the statement `y`.
    must_fail_with("WRITE a x;y", "unknown statement y", None);
}

#[test]
fn read_for_update_is_two_bare_keywords_after_the_key() {
    let for_update = |key: &[u8]| Statement::Read { key: key.to_vec(), for_update: true };
    assert_eq!(must_parse("READ k FOR UPDATE"), for_update(b"k"));
    assert_eq!(must_parse("read k for update"), for_update(b"k"));
    assert_eq!(must_parse("READ FOR FOR UPDATE"), for_update(b"FOR"), "a key named FOR");
    assert_eq!(must_parse("READ UPDATE"), read(b"UPDATE"), "a key named UPDATE");
    assert_eq!(must_parse("READ k FOR UPDATE").to_string(), "READ k FOR UPDATE");
    // Quoted, FOR and UPDATE are values, not keywords; alone, FOR is an extra argument.
    must_fail_with("READ k \"FOR\" UPDATE", "READ takes 1 argument, got 3", Some("\"FOR\""));
    must_fail_with("READ k FOR", "READ takes 1 argument, got 2", Some("FOR"));
    must_fail_with("READ \"\" FOR UPDATE", "empty key", Some("\"\""));
}

#[test]
fn wrong_argument_counts_say_what_is_expected() {
    let error = must_fail_with("READ a b", "READ takes 1 argument, got 2", Some("b"));
    assert_eq!(error.to_string(), "READ takes 1 argument, got 2 near b");
    assert_eq!(error.hint, Some(crate::shell::parse_error::HINT_QUOTE));
    must_fail_with("READ", "READ takes 1 argument, got 0", Some("READ"));
    must_fail_with("WRITE k", "WRITE takes 2 arguments, got 1", Some("WRITE k"));
    must_fail_with("WRITE k a b", "WRITE takes 2 arguments, got 3", Some("b"));
    must_fail_with("DELETE", "DELETE takes 1 argument, got 0", Some("DELETE"));
    must_fail_with("DELETE a b", "DELETE takes 1 argument, got 2", Some("b"));
    must_fail_with("END now", "END takes no arguments, got 1", Some("now"));
    must_fail_with("commit now", "COMMIT takes no arguments, got 1", Some("now"));
    must_fail_with("ABORT x", "ABORT takes no arguments, got 1", Some("x"));
    must_fail_with("rollback x y", "ROLLBACK takes no arguments, got 2", Some("x"));
    must_fail_with("STATUS x", "STATUS takes no arguments, got 1", Some("x"));
    must_fail_with("LOCKS x", "LOCKS takes no arguments, got 1", Some("x"));
    must_fail_with("HELP SCAN", "HELP takes no arguments, got 1", Some("SCAN"));
    must_fail_with("SHOW TOKEN x", "SHOW TOKEN takes no arguments, got 1", Some("x"));
    must_fail_with("SET TOKEN", "SET TOKEN takes 1 argument, got 0", Some("SET TOKEN"));
    must_fail_with("SET TOKEN a b", "SET TOKEN takes 1 argument, got 2", Some("b"));
    must_fail_with(
        "SET CONSISTENCY",
        "SET CONSISTENCY takes 1 argument, got 0",
        Some("SET CONSISTENCY"),
    );
    must_fail_with(
        "SET CONSISTENCY causal now",
        "SET CONSISTENCY takes 1 argument, got 2",
        Some("now"),
    );
}

#[test]
fn the_near_text_of_a_short_statement_is_that_statement_only() {
    must_fail_with("BEGIN; WRITE a ; END", "WRITE takes 2 arguments, got 1", Some("WRITE a"));
}

#[test]
fn begin_set_and_show_errors() {
    must_fail_with("BEGIN READ", "BEGIN takes no arguments or READ ONLY", Some("BEGIN READ"));
    must_fail_with(
        "BEGIN ONLY READ",
        "BEGIN takes no arguments or READ ONLY",
        Some("BEGIN ONLY READ"),
    );
    must_fail_with(
        "BEGIN READ ONLY x",
        "BEGIN takes no arguments or READ ONLY",
        Some("BEGIN READ ONLY x"),
    );
    must_fail_with("SET", "SET takes CONSISTENCY or TOKEN", Some("SET"));
    must_fail_with(
        "SET isolation serializable",
        "SET takes CONSISTENCY or TOKEN",
        Some("isolation"),
    );
    must_fail_with(
        "SET CONSISTENCY strong",
        "consistency must be sequential or causal",
        Some("strong"),
    );
    must_fail_with("SHOW", "SHOW takes TOKEN", Some("SHOW"));
    must_fail_with("SHOW LOCKS", "SHOW takes TOKEN", Some("LOCKS"));
    must_fail_with(r#"SET TOKEN "\xff""#, "token is not valid UTF-8", Some(r#""\xff""#));
}

#[test]
fn scan_errors() {
    let takes = "SCAN takes 2 arguments and an optional LIMIT n";
    must_fail_with("SCAN", &format!("{takes}, got 0"), Some("SCAN"));
    must_fail_with("SCAN a", &format!("{takes}, got 1"), Some("SCAN a"));
    must_fail_with("SCAN a b c", &format!("{takes}, got 3"), Some("c"));
    must_fail_with("SCAN a b c d", &format!("{takes}, got 4"), Some("c"));
    must_fail_with("SCAN a b LIMIT", "LIMIT takes a number", Some("LIMIT"));
    must_fail_with("SCAN a b LIMIT 5 6", "unexpected argument after LIMIT n", Some("6"));
}

#[test]
fn limit_must_be_a_u32() {
    let message = "LIMIT must be an integer from 0 to 4294967295";
    for limit in ["-1", "+5", "1.5", "ten", "4294967296", "99999999999999999999", "0x10", "''"] {
        must_fail_with(&format!("SCAN a b LIMIT {limit}"), message, Some(limit));
    }
}

#[test]
fn empty_keys_are_rejected() {
    must_fail_with(r#"READ """#, "empty key", Some(r#""""#));
    must_fail_with("READ ''", "empty key", Some("''"));
    must_fail_with(r#"WRITE "" v"#, "empty key", Some(r#""""#));
    must_fail_with(r#"DELETE """#, "empty key", Some(r#""""#));
}

#[test]
fn unterminated_quotes_are_rejected() {
    must_fail_with(r#"WRITE k "abc"#, "unterminated quote", Some(r#""abc"#));
    must_fail_with(r#"WRITE k "abc\""#, "unterminated quote", Some(r#""abc\""#));
    // A backslash that ends the line can never be completed by a next line: a bad escape now.
    must_fail_with(r#"WRITE k "abc\"#, "bad escape", Some(r#""abc\"#));
    must_fail_with("WRITE k 'abc", "unterminated quote", Some("'abc"));
    must_fail_with(r#"WRITE k ""#, "unterminated quote", Some(r#"""#));
}

#[test]
fn bad_escapes_are_rejected() {
    let error = must_fail_with(r#"WRITE k "a\qb""#, "bad escape", Some(r"\q"));
    assert_eq!(error.hint, Some(crate::shell::parse_error::HINT_ESCAPES));
    must_fail_with(r#"WRITE k "\x4""#, "bad escape", Some(r#"\x4""#));
    must_fail_with(r#"WRITE k "\xg0""#, "bad escape", Some(r"\xg0"));
    must_fail_with(r#"WRITE k "\x+f""#, "bad escape", Some(r"\x+f"));
    must_fail_with(r#"WRITE k "\u00e9""#, "bad escape", Some(r"\u"));
    must_fail_with(r#"WRITE k "\é""#, "bad escape", Some(r"\é"));
    must_fail_with(r#"WRITE k "\'""#, "bad escape", Some(r"\'"));
}

#[test]
fn quotes_and_backslashes_in_bare_words_are_rejected() {
    let quote = "quote inside a bare word (quote the whole token)";
    must_fail_with(r#"WRITE k ab"c""#, quote, Some(r#"ab""#));
    must_fail_with("WRITE k it's", quote, Some("it'"));
    must_fail_with(r"WRITE k C:\tmp", "backslash outside quotes", Some(r"C:\"));
    let after = "expected a space or ; after the closing quote";
    must_fail_with(r#"WRITE k "a"b"#, after, Some(r#""a"b"#));
    must_fail_with(r#"WRITE k 'a'"b""#, after, Some(r#"'a'""#));
    must_fail_with(r#"WRITE k "a"é"#, after, Some(r#""a"é"#));
}

#[test]
fn nul_and_invalid_utf8_are_rejected() {
    must_fail_with(
        "READ a\0b",
        r"NUL byte in input at byte 6 (write \0 inside double quotes)",
        None,
    );
    must_fail_with(
        "WRITE k \"\0\"",
        r"NUL byte in input at byte 9 (write \0 inside double quotes)",
        None,
    );
    let error = parse_line_bytes(b"READ \xffa").expect_err("invalid UTF-8");
    assert_eq!(error.message, "invalid UTF-8 in input at byte 5");
    assert_eq!(parse_line_bytes(b"READ a").expect("valid"), vec![read(b"a")]);
    assert_eq!(
        parse_line_bytes("WRITE k é".as_bytes()).expect("valid"),
        vec![write(b"k", "é".as_bytes())]
    );
}

#[test]
fn lines_over_the_limit_are_rejected() {
    let prefix = "WRITE k ";
    let fits = format!("{prefix}{}", "v".repeat(MAX_LINE_BYTES - prefix.len()));
    assert_eq!(fits.len(), MAX_LINE_BYTES);
    assert!(
        matches!(must_parse(&fits), Statement::Write { value, .. } if value.len() == MAX_LINE_BYTES - prefix.len())
    );
    let too_long = format!("{fits}v");
    let message = format!(
        "line too long: over {MAX_LINE_BYTES} bytes (at least {} read)",
        MAX_LINE_BYTES + 1
    );
    must_fail_with(&too_long, &message, None);
    let error = parse_line_bytes(too_long.as_bytes()).expect_err("too long");
    assert_eq!(error.message, message);
}

#[test]
fn the_largest_default_value_fits_a_line_even_fully_escaped() {
    // 1 MiB of bytes that all need `\xNN`, plus a 4 KiB key of the same.
    let value = vec![0xff_u8; 1024 * 1024];
    let key = vec![0x01_u8; 4096];
    let line = format!("WRITE {} {}", format_token(&key), format_token(&value));
    assert!(line.len() <= MAX_LINE_BYTES);
    assert_eq!(must_parse(&line), Statement::Write { key, value });
}

#[test]
fn near_text_is_short_and_printable() {
    let long = "x".repeat(1000);
    let error = must_fail(&format!("READ a {long}"));
    let near = error.near.expect("near text");
    assert_eq!(near, format!("{}...", "x".repeat(40)));
    let error = must_fail("READ a 'b\nc'");
    assert_eq!(error.near.as_deref(), Some(r"'b\nc'"));
    let error = must_fail("FOO\u{1b}[2J");
    assert_eq!(error.message, r"unknown statement FOO\u{1b}[2J");
}

#[test]
fn statements_display_as_canonical_text() {
    assert_eq!(must_parse("begin read only").to_string(), "BEGIN READ ONLY");
    assert_eq!(must_parse("write 'a b' x").to_string(), r#"WRITE "a b" x"#);
    assert_eq!(must_parse("scan a b limit 3").to_string(), "SCAN a b LIMIT 3");
    assert_eq!(must_parse(r#"scan "" """#).to_string(), r#"SCAN "" """#);
    assert_eq!(must_parse("commit").to_string(), "END");
    assert_eq!(must_parse("rollback").to_string(), "ABORT");
    assert_eq!(must_parse("set consistency CAUSAL").to_string(), "SET CONSISTENCY causal");
    assert_eq!(must_parse("set token 'a b'").to_string(), r#"SET TOKEN "a b""#);
}

// Properties.

/// Bits of shell syntax, to steer generated lines into the parser's corners.
fn syntax_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "READ",
            "write",
            "DELETE",
            "SCAN",
            "LIMIT",
            "BEGIN",
            "READ ONLY",
            "END",
            "COMMIT",
            "ABORT",
            "SET",
            "CONSISTENCY",
            "causal",
            "SHOW",
            "TOKEN",
            "STATUS",
            "LOCKS",
            "HELP",
            " ",
            " ",
            " ",
            "\t",
            "\n",
            ";",
            "\"",
            "'",
            "\\",
            "\\x",
            "\\x4",
            "\\xzz",
            "\\n",
            "--",
            "#",
            "-",
            "\"\"",
            "''",
            "é",
            "日",
            "\u{301}",
            "4294967296",
            "0",
            "+1",
        ])
        .prop_map(str::to_string),
        "[a-z0-9]{1,4}",
        any::<char>().prop_map(String::from),
    ]
}

fn syntax_line() -> impl Strategy<Value = String> {
    prop::collection::vec(syntax_piece(), 0..24).prop_map(|pieces| pieces.concat())
}

/// Bytes rich in what needs quoting or escaping.
fn tricky_bytes(length: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u8>().prop_map(|byte| vec![byte]),
        prop::sample::select(vec![
            b" ".to_vec(),
            b"\"".to_vec(),
            b"'".to_vec(),
            b"\\".to_vec(),
            b";".to_vec(),
            b"#".to_vec(),
            b"--".to_vec(),
            b"(".to_vec(),
            b"\\x41".to_vec(),
            b"\n".to_vec(),
            b"\0".to_vec(),
            "é".as_bytes().to_vec(),
            "\u{301}".as_bytes().to_vec(),
            "\u{200b}".as_bytes().to_vec(),
            "\u{a0}".as_bytes().to_vec(),
            vec![0xe2, 0x82],
            b"a".to_vec(),
        ]),
    ];
    prop::collection::vec(piece, length).prop_map(|pieces| pieces.concat())
}

fn statement() -> impl Strategy<Value = Statement> {
    let key = || tricky_bytes(1..12);
    let value = || tricky_bytes(0..12);
    prop_oneof![
        any::<bool>().prop_map(|read_only| Statement::Begin { read_only }),
        (key(), any::<bool>()).prop_map(|(key, for_update)| Statement::Read { key, for_update }),
        (key(), value()).prop_map(|(key, value)| Statement::Write { key, value }),
        key().prop_map(|key| Statement::Delete { key }),
        (value(), value(), any::<Option<u32>>()).prop_map(|(a, b, limit)| {
            // A backwards range does not parse: the bounds in order.
            let (from, to) = if !b.is_empty() && a > b { (b, a) } else { (a, b) };
            Statement::Scan { from, to, limit }
        }),
        Just(Statement::End),
        Just(Statement::Abort),
        Just(Statement::SetConsistency(Consistency::Sequential)),
        Just(Statement::SetConsistency(Consistency::Causal)),
        Just(Statement::ShowToken),
        any::<String>().prop_map(Statement::SetToken),
        Just(Statement::Status),
        Just(Statement::Locks),
        Just(Statement::Help),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_parser_never_panics_on_arbitrary_strings(line in any::<String>()) {
        let _ = parse_line(&line);
        let _ = parse_statement(&line);
    }

    #[test]
    fn the_parser_never_panics_on_syntax_soup(line in syntax_line()) {
        let _ = parse_line(&line);
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(line in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_line_bytes(&line);
    }

    #[test]
    fn errors_are_one_line(line in syntax_line()) {
        if let Err(error) = parse_line(&line) {
            let text = crate::shell::format_parse_error(&error);
            prop_assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    #[test]
    fn formatted_keys_and_values_parse_back(
        key in prop::collection::vec(any::<u8>(), 1..48),
        value in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let line = format!("WRITE {} {}", format_token(&key), format_token(&value));
        prop_assert_eq!(parse_statement(&line), Ok(Statement::Write { key, value }), "{}", line);
    }

    #[test]
    fn formatted_tricky_keys_and_values_parse_back(
        key in tricky_bytes(1..16),
        value in tricky_bytes(0..16),
    ) {
        let line = format!("WRITE {} {}", format_token(&key), format_token(&value));
        prop_assert_eq!(parse_statement(&line), Ok(Statement::Write { key, value }), "{}", line);
    }

    #[test]
    fn formatted_text_parses_back(key in "\\PC{1,16}", value in any::<String>()) {
        let line = format!("WRITE {} {}", format_token(key.as_bytes()), format_token(value.as_bytes()));
        let expected = Statement::Write { key: key.into_bytes(), value: value.into_bytes() };
        prop_assert_eq!(parse_statement(&line), Ok(expected), "{}", line);
    }

    #[test]
    fn statements_parse_back_from_their_display(statement in statement()) {
        let text = statement.to_string();
        prop_assert_eq!(parse_statement(&text), Ok(statement), "{}", text);
    }

    #[test]
    fn statements_joined_by_semicolons_parse_back(statements in prop::collection::vec(statement(), 0..6)) {
        let line = statements.iter().map(ToString::to_string).collect::<Vec<_>>().join(";");
        prop_assert_eq!(parse_line(&line), Ok(statements), "{}", line);
    }
}
