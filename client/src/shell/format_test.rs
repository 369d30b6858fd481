//! Tests of result rendering: tokens, values, scans, and the one-line guarantee.

use proptest::prelude::*;

use crate::shell::COMMITTED;
use crate::shell::NIL;
use crate::shell::OK;
use crate::shell::format_aborted;
use crate::shell::format_error;
use crate::shell::format_parse_error;
use crate::shell::format_row_count;
use crate::shell::format_scan;
use crate::shell::format_token;
use crate::shell::format_value;
use crate::shell::parse_line;

#[test]
fn plain_words_print_bare() {
    for word in ["a", "user:1", "42", "-1", "x.y-z", "a--b", "(", "a(nil)", "~!@$%^&*()"] {
        let expected = if word.starts_with('(') { format!("\"{word}\"") } else { word.to_string() };
        assert_eq!(format_token(word.as_bytes()), expected);
    }
}

#[test]
fn tokens_that_need_quotes_get_them() {
    let cases: [(&[u8], &str); 14] = [
        (b"", r#""""#),
        (b"a b", r#""a b""#),
        (b"say \"hi\"", r#""say \"hi\"""#),
        (b"it's", r#""it's""#),
        (br"C:\tmp", r#""C:\\tmp""#),
        (b"a;b", r#""a;b""#),
        (b"#1", r##""#1""##),
        (b"user#1", r##""user#1""##),
        (b"--x", r#""--x""#),
        (b"(nil)", r#""(nil)""#),
        (b"(3 rows)", r#""(3 rows)""#),
        (b"ERROR:", r#""ERROR:""#),
        (b"ABORTED:x", r#""ABORTED:x""#),
        (b"line\none\ttab\rcr\0nul", r#""line\none\ttab\rcr\0nul""#),
    ];
    for (bytes, expected) in cases {
        assert_eq!(format_token(bytes), expected, "{bytes:?}");
    }
}

#[test]
fn bytes_that_are_not_printable_text_are_hex_escaped() {
    assert_eq!(format_token(b"\x01\x7f\x1b[0m"), r#""\x01\x7f\x1b[0m""#);
    assert_eq!(format_token(b"\xff\xfe"), r#""\xff\xfe""#);
    // A truncated UTF-8 sequence is invalid: its bytes are escaped, the text around it stays.
    assert_eq!(format_token(b"a\xe2\x82b"), r#""a\xe2\x82b""#);
    // C1 controls, zero-width and format characters, and whitespace other than the space
    // are valid UTF-8 but invisible: escaped byte by byte.
    assert_eq!(format_token("\u{85}".as_bytes()), r#""\xc2\x85""#);
    assert_eq!(format_token("a\u{200b}b".as_bytes()), r#""a\xe2\x80\x8bb""#);
    assert_eq!(format_token("a\u{a0}b".as_bytes()), r#""a\xc2\xa0b""#);
    assert_eq!(format_token("\u{202e}".as_bytes()), r#""\xe2\x80\xae""#);
}

#[test]
fn printable_unicode_stays_as_is_inside_quotes() {
    assert_eq!(format_token("héllo".as_bytes()), "\"héllo\"");
    assert_eq!(format_token("日本 語".as_bytes()), "\"日本 語\"");
    assert_eq!(format_token("🦀".as_bytes()), "\"🦀\"");
    // A combining mark stays after a letter it combines with, not at the start.
    assert_eq!(format_token("e\u{301}".as_bytes()), "\"e\u{301}\"");
    assert_eq!(format_token("\u{301}".as_bytes()), r#""\xcc\x81""#);
}

#[test]
fn read_results() {
    assert_eq!(format_value(None), "(nil)");
    assert_eq!(format_value(None), NIL);
    assert_eq!(format_value(Some(b"1")), "1");
    assert_eq!(format_value(Some(b"")), r#""""#);
    assert_eq!(format_value(Some(b"a b")), r#""a b""#);
    assert_eq!(format_value(Some(b"(nil)")), r#""(nil)""#);
}

#[test]
fn scan_results() {
    assert_eq!(format_scan::<Vec<u8>, Vec<u8>>(&[]), "(0 rows)");
    assert_eq!(format_scan(&[(b"a".to_vec(), b"1".to_vec())]), "a 1\n(1 rows)");
    let rows = [(b"a".to_vec(), b"x y".to_vec()), (b"b c".to_vec(), Vec::new())];
    assert_eq!(format_scan(&rows), "a \"x y\"\n\"b c\" \"\"\n(2 rows)");
    let failure_like = [(b"ERROR:".to_vec(), b"boom".to_vec())];
    assert_eq!(
        format_scan(&failure_like),
        "\"ERROR:\" boom\n(1 rows)",
        "no row reads as a failure"
    );
    let borrowed: [(&[u8], &[u8]); 1] = [(b"k", b"v")];
    assert_eq!(format_scan(&borrowed), "k v\n(1 rows)");
    assert_eq!(format_row_count(0), "(0 rows)");
    assert_eq!(format_row_count(1), "(1 rows)", "the contract's form, one included");
    assert_eq!(format_row_count(1000), "(1000 rows)");
}

#[test]
fn scan_lines_paste_back_as_writes() {
    let rows = [(b"a b".to_vec(), b"\xff\n".to_vec()), (b"c".to_vec(), b"'\"".to_vec())];
    let text = format_scan(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, (key, value)) in lines.iter().zip(&rows) {
        let statements = parse_line(&format!("WRITE {line}")).expect("pastes back");
        assert_eq!(
            statements,
            vec![crate::shell::Statement::Write { key: key.clone(), value: value.clone() }]
        );
    }
}

#[test]
fn outcome_and_error_lines() {
    assert_eq!(OK, "OK");
    assert_eq!(COMMITTED, "COMMITTED");
    assert_eq!(
        format_aborted("DEADLOCK: victim of t1 -> t2 -> t1"),
        "ABORTED: DEADLOCK: victim of t1 -> t2 -> t1"
    );
    assert_eq!(format_error("no leader for shard 3"), "ERROR: no leader for shard 3");
    // Server text stays on one line and cannot drive the terminal.
    assert_eq!(format_error("a\nb\r\nc\td"), "ERROR: a b  c d");
    assert_eq!(format_aborted("x\u{1b}[2Jy"), r"ABORTED: x\u{1b}[2Jy");
}

#[test]
fn parse_errors_print_as_one_error_line_with_a_hint() {
    let error = parse_line("FOO").expect_err("unknown");
    assert_eq!(format_parse_error(&error), "ERROR: unknown statement FOO (type HELP)");
    let error = parse_line("READ a b").expect_err("too many");
    assert_eq!(
        format_parse_error(&error),
        r#"ERROR: READ takes 1 argument, got 2 near b (quote keys and values with spaces or special characters: WRITE k "a b")"#
    );
    let error = parse_line(r#"READ ""#).expect_err("unterminated");
    assert_eq!(format_parse_error(&error), r#"ERROR: unterminated quote near ""#);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tokens_are_one_line_of_printable_text(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let token = format_token(&bytes);
        prop_assert!(!token.chars().any(|c| c.is_control()), "{token:?}");
        prop_assert!(!token.contains('\n'));
    }

    #[test]
    fn bare_tokens_are_the_bytes_themselves(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        let token = format_token(&bytes);
        if !token.starts_with('"') {
            prop_assert_eq!(token.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn error_lines_are_one_line(message in any::<String>()) {
        let line = format_error(&message);
        prop_assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        let line = format_aborted(&message);
        prop_assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
}
