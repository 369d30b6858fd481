//! The `kvsh` front end: where statements come from and where results go.
//!
//! - `-c "STMT; STMT"`: runs the statements (a parse error anywhere runs none of them).
//! - `-f FILE`, or standard input that is not a terminal: runs each line as it arrives and
//!   flushes its results at once, so that a script can drive two sessions and interleave them.
//!   A line that does not parse prints `ERROR:` and changes nothing; the next line runs.
//!   Ctrl-C cancels the running statement, as at a prompt; while the shell waits for its next
//!   line it ends the input (the open transaction is aborted, as at the end of input) and the
//!   exit status is 130. Before 2026-12-07 it was swallowed there: a shell reading a pipe that
//!   had run a statement could not be stopped by Ctrl-C (found by a review).
//! - a terminal: an interactive prompt with history (`~/.kvsh_history`) and HELP; Ctrl-C
//!   cancels the running statement (not the shell), Ctrl-D ends the session.
//!
//! At the end of input an open transaction is aborted, and the shell says so. With `-c`, `-f`
//! or piped input the exit status is 1 if any statement failed or aborted.

use std::io::BufRead;
use std::io::IsTerminal;
use std::io::Read;
use std::io::Write;
use std::path::PathBuf;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::signal::unix::Signal;
use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::client::Consistency;
use crate::shell::format::format_error;
use crate::shell::format::format_parse_error;
use crate::shell::parser::MAX_LINE_BYTES;
use crate::shell::parser::UNTERMINATED_QUOTE;
use crate::shell::parser::parse_line;
use crate::shell::parser::parse_line_bytes;
use crate::shell::session::Session;
use crate::shell::session::StatementOutput;
use crate::shell::statement::Statement;

/// History lines kept.
pub const HISTORY_LINES_MAX: usize = 1000;
/// Exit status of a shell whose input Ctrl-C ended (128 + SIGINT, as shells report it).
pub const INTERRUPTED_EXIT: i32 = 130;

/// Where a shell's statements come from.
#[derive(Clone, Debug)]
pub enum Input {
    /// `-c`: one string of statements.
    Command(String),
    /// `-f`: a file, line by line.
    File(PathBuf),
    /// Standard input (a prompt on a terminal, lines otherwise).
    Stdin,
}

/// How to start a shell.
#[derive(Clone, Debug)]
pub struct ShellOptions {
    /// Node addresses.
    pub connect: Vec<String>,
    /// The session's consistency.
    pub consistency: Option<Consistency>,
    /// The statements.
    pub input: Input,
}

/// Runs a shell on its own runtime until its input ends. Returns the exit status.
pub fn run_blocking(options: ShellOptions) -> i32 {
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("kvsh: cannot start: {error}");
                return 2;
            }
        };
    let client = match runtime.block_on(Client::connect(&options.connect)) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("kvsh: {error}");
            return 2;
        }
    };
    if let Some(consistency) = options.consistency {
        client.set_consistency(consistency);
    }
    // One listener for the whole session: a Ctrl-C between two statements is kept for the
    // next wait instead of being lost between two listeners.
    let interrupts =
        match runtime.block_on(async { tokio::signal::unix::signal(SignalKind::interrupt()) }) {
            Ok(interrupts) => interrupts,
            Err(error) => {
                eprintln!("kvsh: cannot handle Ctrl-C: {error}");
                return 2;
            }
        };
    let nodes = options.connect.join(",");
    let mut shell = Shell {
        runtime,
        // Interactive only on a terminal with neither -c nor -f.
        session: match options.input {
            Input::Stdin if std::io::stdin().is_terminal() => Session::new(client),
            _ => Session::script(client),
        },
        failed: false,
        interrupted: false,
        nodes,
        interrupts,
    };
    match options.input {
        Input::Command(text) => shell.run_command(&text),
        Input::File(path) => match std::fs::File::open(&path) {
            // A directory opens; reading it fails. Refused as a file that cannot be read is.
            Ok(_) if path.is_dir() => {
                eprintln!("kvsh: cannot read {}: it is a directory", path.display());
                return 2;
            }
            Ok(file) => shell.run_lines(move || Box::new(std::io::BufReader::new(file))),
            Err(error) => {
                eprintln!("kvsh: cannot read {}: {error}", path.display());
                return 2;
            }
        },
        Input::Stdin if std::io::stdin().is_terminal() => return shell.run_interactive(),
        Input::Stdin => shell.run_lines(|| Box::new(std::io::stdin().lock())),
    }
    shell.finish();
    shell.exit_status()
}

struct Shell {
    runtime: tokio::runtime::Runtime,
    session: Session,
    failed: bool,
    /// Ctrl-C ended the input.
    interrupted: bool,
    nodes: String,
    interrupts: Signal,
}

/// Lines of a script, read on a thread of their own so that the shell can wait for the next
/// one and for Ctrl-C at once, without their line ending (`\n` or `\r\n`). Each is at most
/// [`MAX_LINE_BYTES`] + 2 bytes with its ending (the rest of an overlong line is skipped, so
/// that a file without newlines cannot fill the shell's memory; the parser refuses the one
/// kept, as it would a shorter line over the limit); a UTF-8 byte order mark at the start of
/// the input is dropped. The channel holds one line: the thread reads at most one line ahead
/// of the statements that run.
fn spawn_line_reader(
    open: impl FnOnce() -> Box<dyn BufRead> + Send + 'static,
) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (lines, receiver) = mpsc::channel(1);
    let reader = std::thread::Builder::new().name("kvsh-input".into()).spawn(move || {
        let mut input = open();
        let mut first = true;
        loop {
            let mut line = Vec::new();
            // Room for the longest line the parser takes and its `\r\n` (the ending counted
            // against the limit refused such a line from a file but not from -c; a review
            // found it).
            let limit = MAX_LINE_BYTES as u64 + 2;
            let read = (&mut input).take(limit).read_until(b'\n', &mut line).and_then(|n| {
                if line.len() as u64 == limit && line.last() != Some(&b'\n') {
                    skip_line(&mut input)?;
                }
                Ok(n)
            });
            let line = match read {
                Ok(0) => return,
                Ok(_) => {
                    // A byte order mark (some editors start files with one) is no statement.
                    if std::mem::take(&mut first) && line.starts_with(UTF8_BOM) {
                        line.drain(..UTF8_BOM.len());
                    }
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Ok(line)
                }
                Err(error) => Err(error),
            };
            let failed = line.is_err();
            if lines.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    if let Err(error) = reader {
        // No thread, no input: said as a read error, the shell's way for a failed input.
        let (lines, receiver) = mpsc::channel(1);
        let _ = lines.try_send(Err(error));
        return receiver;
    }
    receiver
}

/// What `work` gives, or `None` if Ctrl-C comes first (`work` is then dropped).
async fn unless_interrupted<T>(
    interrupts: &mut Signal,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        output = work => Some(output),
        _ = interrupts.recv() => None,
    }
}

/// The UTF-8 encoding of U+FEFF, which some editors write at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads and drops the rest of the current line (through its newline, or to the end of input).
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&byte| byte == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

impl Shell {
    fn print(&mut self, output: StatementOutput) {
        self.failed |= output.failed;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", output.text);
        let _ = stdout.flush();
    }

    /// A line that does not parse answers its error and changes nothing, in every mode (issue
    /// 3: "in the shell, a parse error changes nothing"): an open transaction stays open.
    fn parse_failed(&mut self, text: String) {
        self.print(StatementOutput { text, failed: true });
    }

    fn exit_status(&self) -> i32 {
        if self.interrupted { INTERRUPTED_EXIT } else { i32::from(self.failed) }
    }

    /// Runs one statement; Ctrl-C abandons it.
    fn execute(&mut self, statement: Statement) {
        let (session, interrupts) = (&mut self.session, &mut self.interrupts);
        let output =
            self.runtime.block_on(unless_interrupted(interrupts, session.execute(statement)));
        let output = match output {
            Some(output) => output,
            // The cancellation itself waits for the cluster (an ABORT, or END's TxnStatus):
            // a second Ctrl-C gives that up too. Not listened for, it was kept for the next
            // statement, which it then cancelled at once (found by a review, 2026-12-07).
            None => {
                let (session, interrupts) = (&mut self.session, &mut self.interrupts);
                let cancelled =
                    self.runtime.block_on(unless_interrupted(interrupts, session.cancel()));
                cancelled.unwrap_or_else(|| StatementOutput {
                    text: format_error(
                        "statement cancelled; interrupted again while cancelling, so its \
                         outcome is unknown",
                    ),
                    failed: true,
                })
            }
        };
        self.print(output);
    }

    fn run_command(&mut self, text: &str) {
        match parse_line(text) {
            Err(error) => self.parse_failed(format_parse_error(&error)),
            Ok(statements) => {
                for statement in statements {
                    self.execute(statement);
                }
            }
        }
    }

    /// Runs the lines `open`'s reader gives, one at a time as they arrive, until the input
    /// ends, fails, or Ctrl-C comes while the shell waits for a line.
    fn run_lines(&mut self, open: impl FnOnce() -> Box<dyn BufRead> + Send + 'static) {
        let mut lines = spawn_line_reader(open);
        // A line that ends inside a quoted string continues on the next one (a value with line
        // breaks), as `-c` and a whole script parse it: run alone, the lines inside the string
        // ran as statements of their own. Bounded by the parser's MAX_LINE_BYTES.
        let mut open_quote: Option<Vec<u8>> = None;
        loop {
            let next =
                self.runtime.block_on(unless_interrupted(&mut self.interrupts, lines.recv()));
            let line = match next {
                None => {
                    eprintln!("kvsh: interrupted");
                    self.interrupted = true;
                    return;
                }
                Some(None) => {
                    if let Some(unfinished) = open_quote.take() {
                        self.run_line(&unfinished);
                    }
                    return;
                }
                Some(Some(Ok(line))) => match open_quote.take() {
                    Some(mut unfinished) => {
                        let may_close = line.iter().any(|byte| matches!(byte, b'"' | b'\''));
                        unfinished.push(b'\n');
                        unfinished.extend_from_slice(&line);
                        // A line without a quote cannot close the string: parsed again only
                        // when one comes (each parse reads the whole text so far).
                        if !may_close && unfinished.len() <= MAX_LINE_BYTES {
                            open_quote = Some(unfinished);
                            continue;
                        }
                        unfinished
                    }
                    None => line,
                },
                Some(Some(Err(error))) => {
                    eprintln!("kvsh: cannot read input: {error}");
                    self.failed = true;
                    return;
                }
            };
            match parse_line_bytes(&line) {
                Err(error) if error.message == UNTERMINATED_QUOTE => open_quote = Some(line),
                _ => self.run_line(&line),
            }
        }
    }

    /// Parses and runs one line of input (or several joined by an open quote).
    fn run_line(&mut self, line: &[u8]) {
        match parse_line_bytes(line) {
            Err(error) => self.parse_failed(format_parse_error(&error)),
            Ok(statements) => {
                for statement in statements {
                    self.execute(statement);
                }
            }
        }
    }

    /// Ends the session: an open transaction is aborted, and the shell says so. A Ctrl-C
    /// meanwhile gives the wait up (the node aborts the transaction when the session's
    /// connection closes, as for a killed shell).
    fn finish(&mut self) {
        let (session, interrupts) = (&mut self.session, &mut self.interrupts);
        let output = self.runtime.block_on(unless_interrupted(interrupts, session.close()));
        let output = output.unwrap_or_else(|| {
            Some(StatementOutput {
                text: format_error(
                    "interrupted while ending the session; the node aborts an open \
                     transaction when the connection closes",
                ),
                failed: true,
            })
        });
        if let Some(output) = output {
            self.print(output);
        }
    }

    /// Forgets Ctrl-Cs that no statement took (pressed while results were printed, or sent
    /// with `kill -INT`), so that they do not cancel the next statement at once (found by a
    /// review, 2026-12-07). At a terminal's prompt the line editor takes Ctrl-C itself.
    fn drain_interrupts(&mut self) {
        let interrupts = &mut self.interrupts;
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    biased;
                    Some(()) = interrupts.recv() => {}
                    () = std::future::ready(()) => break,
                }
            }
        });
    }

    fn run_interactive(&mut self) -> i32 {
        let config =
            rustyline::Config::builder().max_history_size(HISTORY_LINES_MAX).map(|b| b.build());
        let mut editor = match config.and_then(DefaultEditor::with_config) {
            Ok(editor) => editor,
            Err(error) => {
                eprintln!("kvsh: no line editor: {error}");
                self.run_lines(|| Box::new(std::io::stdin().lock()));
                self.finish();
                return self.exit_status();
            }
        };
        let history =
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kvsh_history"));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!(
            "kvsh: connected to {}. Type HELP for the statements, Ctrl-D to quit.",
            self.nodes
        );
        loop {
            let prompt = if self.session.in_transaction() { "kvsh*> " } else { "kvsh> " };
            let line = editor.readline(prompt);
            self.drain_interrupts();
            match line {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    if matches!(line.trim().to_ascii_lowercase().as_str(), "quit" | "exit" | "\\q")
                    {
                        break;
                    }
                    match parse_line(&line) {
                        Err(error) => self.parse_failed(format_parse_error(&error)),
                        Ok(statements) => {
                            for statement in statements {
                                self.execute(statement);
                            }
                        }
                    }
                }
                Err(ReadlineError::Interrupted) => println!("^C (Ctrl-D quits)"),
                Err(ReadlineError::Eof) => break,
                Err(error) => {
                    eprintln!("kvsh: {error}");
                    break;
                }
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        self.finish();
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: Vec<u8>) -> Vec<Vec<u8>> {
        let mut lines = spawn_line_reader(move || Box::new(std::io::Cursor::new(input)));
        std::iter::from_fn(|| lines.blocking_recv()).map(|line| line.expect("a line")).collect()
    }

    /// A line of exactly the parser's limit reads whole, without its ending, whichever ending
    /// it has; a longer one is cut one byte past the limit (for the parser to refuse) and the
    /// rest of it skipped; a byte order mark at the start is dropped.
    #[test]
    fn lines_come_without_their_endings_and_overlong_ones_are_cut() {
        let prefix = b"WRITE k ";
        let mut longest = prefix.to_vec();
        longest.resize(MAX_LINE_BYTES, b'v');
        let mut input = UTF8_BOM.to_vec();
        input.extend_from_slice(b"READ a\r\n");
        input.extend_from_slice(&longest);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&longest);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&longest);
        input.extend_from_slice(b"vvv\nREAD b");
        let lines = lines_of(input);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], b"READ a");
        assert_eq!(lines[1].len(), MAX_LINE_BYTES, "with \\r\\n");
        assert_eq!(lines[2].len(), MAX_LINE_BYTES, "with \\n");
        assert!(lines[3].len() > MAX_LINE_BYTES, "an overlong line stays over the limit");
        assert!(parse_line_bytes(&lines[3]).is_err(), "and is refused");
        assert_eq!(lines[4], b"READ b", "the line after it, and a last line without an ending");
        assert!(parse_line_bytes(&lines[1]).is_ok(), "the longest line parses");
    }
}
