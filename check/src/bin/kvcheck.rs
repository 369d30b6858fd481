//! `kvcheck FILE --model strict-serializable|serializable|causal` (DESIGN §7).
//!
//! Exit status: 0 valid (one summary line), 1 anomalies found (each with its transactions and
//! explanation), 2 unreadable or malformed input (the line and why). `FILE` may be `-` for
//! standard input.

use std::io::Read;
use std::process::ExitCode;

use check::history::History;
use check::{Model, check};
use clap::Parser;

/// Longest excerpt of an offending input line echoed in an error.
const LINE_ECHO_CHARS_MAX: usize = 300;

/// Checks a recorded list-append history (JSON lines) against a consistency model.
#[derive(Parser, Debug)]
#[command(name = "kvcheck", version)]
struct Args {
    /// The history file (JSON lines), or `-` for standard input.
    file: String,
    /// The consistency model: strict-serializable, serializable, causal (or
    /// strong-session-serializable).
    #[arg(long, default_value = "strict-serializable")]
    model: Model,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut text = String::new();
    let read = if args.file == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.file).map(|t| text = t)
    };
    if let Err(e) = read {
        eprintln!("kvcheck: cannot read {}: {e}", args.file);
        return ExitCode::from(2);
    }
    let history = match History::parse_jsonl(&text) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("kvcheck: {}: malformed history: {e}", args.file);
            if let Some(line) = e.line().and_then(|n| text.lines().nth(n - 1)) {
                let excerpt: String = line.chars().take(LINE_ECHO_CHARS_MAX).collect();
                eprintln!("  {excerpt}");
            }
            return ExitCode::from(2);
        }
    };
    let report = check(&history, args.model);
    if report.valid {
        println!("{}", report.summary());
        ExitCode::SUCCESS
    } else {
        print!("{report}");
        ExitCode::from(1)
    }
}
