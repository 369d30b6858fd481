//! The text `HELP` prints.
//!
//! The statement list is data ([`STATEMENT_HELP`]), so that the tests can check that every
//! statement is listed and that every example parses to the statement it illustrates.

/// How one statement is described in the help text.
#[derive(Clone, Copy, Debug)]
pub struct HelpEntry {
    /// The statement's syntax, e.g. `SCAN from to [LIMIT n]`.
    pub syntax: &'static str,
    /// What it does; may span lines (`\n`), each short enough for an 80-column terminal.
    pub description: &'static str,
    /// A statement that parses, showing typical use.
    pub example: &'static str,
}

/// Every statement, in the order a newcomer meets them.
pub const STATEMENT_HELP: [HelpEntry; 13] = [
    HelpEntry {
        syntax: "BEGIN [READ ONLY]",
        description: "Starts a transaction. READ ONLY rejects writes\n\
                      (and in a causal session reads from any replica).",
        example: "BEGIN READ ONLY",
    },
    HelpEntry {
        syntax: "READ k [FOR UPDATE]",
        description: "Prints the value of k, or (nil) when it has none.\n\
                      FOR UPDATE (in a transaction) locks k as a write\n\
                      would, for a key you will write: no deadlock\n\
                      when two sessions read it, then both write it.",
        example: "READ user:1",
    },
    HelpEntry {
        syntax: "WRITE k v",
        description: "Sets k to v (others see it once it commits).",
        example: r#"WRITE user:1 "Ada Lovelace""#,
    },
    HelpEntry { syntax: "DELETE k", description: "Removes k.", example: "DELETE user:1" },
    HelpEntry {
        syntax: "SCAN from to [LIMIT n]",
        description: "Prints the pairs with from <= key < to, in key\n\
                      order, then (N rows). to is exclusive; \"\" as to\n\
                      means the end of the key space; LIMIT caps the rows\n\
                      (no LIMIT: scan_rows_max, 10,000 by default; a\n\
                      larger LIMIT is refused). Over 32 MiB of rows is\n\
                      refused: add a LIMIT and go on from the last key.",
        example: "SCAN user:0 user:9 LIMIT 10",
    },
    HelpEntry {
        syntax: "END | COMMIT",
        description: "Commits: prints COMMITTED or ABORTED: <reason>.",
        example: "COMMIT",
    },
    HelpEntry {
        syntax: "ABORT | ROLLBACK",
        description: "Ends the transaction without effect.",
        example: "ROLLBACK",
    },
    HelpEntry {
        syntax: "SET CONSISTENCY sequential|causal",
        description: "sequential: reads go through the shard leaders,\n\
                      strictly serializable. causal: read-only work reads\n\
                      any replica: maybe stale, never older than what this\n\
                      session has seen (its causal token).",
        example: "SET CONSISTENCY causal",
    },
    HelpEntry {
        syntax: "SHOW TOKEN",
        description: "Prints the session's causal token.",
        example: "SHOW TOKEN",
    },
    HelpEntry {
        syntax: "SET TOKEN t",
        description: "Adopts a token from another session's SHOW TOKEN,\n\
                      so that this session sees what that one saw.",
        example: "SET TOKEN 7331904583616512",
    },
    HelpEntry {
        syntax: "STATUS",
        description: "Prints the node's shards, Raft roles and counters.",
        example: "STATUS",
    },
    HelpEntry {
        syntax: "LOCKS",
        description: "Prints the lock waits on the connected node.",
        example: "LOCKS",
    },
    HelpEntry { syntax: "HELP", description: "Prints this text.", example: "HELP" },
];

/// The width of the syntax column; longer syntax gets a line of its own.
const SYNTAX_COLUMN_CHARS: usize = 24;

/// The indentation of the statement list.
const INDENT: &str = "  ";

/// What follows the statement list: transactions, several statements per line, comments and
/// quoting. Its example lines parse (a test checks).
const HELP_FOOTER: &str = r#"Transactions:
  Statements between BEGIN and END (or ABORT) form one transaction. Outside
  BEGIN, each READ, WRITE, DELETE or SCAN is a one-statement transaction.
  Several statements on one line are separated by ;
    e.g. BEGIN; WRITE a 1; WRITE b 2; END
  Comments start with -- or # and run to the end of the line.

Keys and values:
  user:1  42  x.y-z    bare words: no spaces, quotes, backslashes or ;
                       (a word starting with # or -- starts a comment)
  "a b\n"              double quotes, with escapes \" \\ \n \t \r \0 \xNN
  'C:\tmp'             single quotes: taken literally, no escapes
  Keys cannot be empty; values can (""). Keys and values are printed the
  same way, so results can be pasted back into statements."#;

/// The text `HELP` prints: every statement with a description and an example, then how
/// transactions, `;`, comments and quoting work. No trailing newline.
pub fn help_text() -> String {
    let mut out = String::from("Statements (keywords in any case):\n\n");
    let indent_description = " ".repeat(INDENT.len() + SYNTAX_COLUMN_CHARS);
    for entry in &STATEMENT_HELP {
        out.push_str(INDENT);
        out.push_str(entry.syntax);
        if entry.syntax.len() < SYNTAX_COLUMN_CHARS {
            out.push_str(&" ".repeat(SYNTAX_COLUMN_CHARS - entry.syntax.len()));
        } else {
            out.push('\n');
            out.push_str(&indent_description);
        }
        for (index, line) in entry.description.lines().enumerate() {
            if index > 0 {
                out.push_str(&indent_description);
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&indent_description);
        out.push_str("e.g. ");
        out.push_str(entry.example);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(HELP_FOOTER);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::shell::parse_line;
    use crate::shell::parse_statement;

    #[test]
    fn every_example_parses_to_the_statement_it_illustrates() {
        for entry in &STATEMENT_HELP {
            let statement = parse_statement(entry.example)
                .unwrap_or_else(|error| panic!("example {:?}: {error}", entry.example));
            assert!(
                entry.syntax.starts_with(statement.name()),
                "{:?} illustrates {}, not {:?}",
                entry.example,
                statement.name(),
                entry.syntax
            );
        }
    }

    #[test]
    fn every_statement_is_listed() {
        let listed: BTreeSet<&str> = STATEMENT_HELP
            .iter()
            .map(|entry| parse_statement(entry.example).expect("examples parse").name())
            .collect();
        let all = [
            "BEGIN",
            "READ",
            "WRITE",
            "DELETE",
            "SCAN",
            "END",
            "ABORT",
            "SET CONSISTENCY",
            "SHOW TOKEN",
            "SET TOKEN",
            "STATUS",
            "LOCKS",
            "HELP",
        ];
        assert_eq!(listed, all.into_iter().collect());
    }

    #[test]
    fn text_mentions_the_rules_a_newcomer_needs() {
        let text = help_text();
        for needle in [
            "exclusive",
            "one-statement transaction",
            "separated by ;",
            "COMMIT",
            "ROLLBACK",
            "READ ONLY",
            "LIMIT",
            r#""a b\n""#,
            r"\xNN",
            "'C:\\tmp'",
            "-- or #",
        ] {
            assert!(text.contains(needle), "help text lacks {needle:?}:\n{text}");
        }
    }

    #[test]
    fn text_fits_an_80_column_terminal() {
        for line in help_text().lines() {
            assert!(line.chars().count() <= 80, "line too wide: {line:?}");
        }
    }

    #[test]
    fn footer_examples_parse() {
        let statements = parse_line("BEGIN; WRITE a 1; WRITE b 2; END").expect("parses");
        assert_eq!(statements.len(), 4);
        for token in [r#""a b\n""#, r"'C:\tmp'", "user:1", "42", "x.y-z"] {
            parse_statement(&format!("WRITE k {token}"))
                .unwrap_or_else(|error| panic!("{token}: {error}"));
        }
    }
}
