//! Running `kvsh`: one-shot (`-c`, `-f`) and interactive sessions driven line by line.
//!
//! An interactive [`KvshSession`] has its standard input piped: `kvsh` then runs each statement
//! as its line arrives and flushes the result at once (DESIGN §7), so a test can interleave
//! several sessions: send a statement to one, see that no answer comes (it blocks on a lock),
//! send another to a second session, and read both answers with deadlines.

use std::path::Path;
use std::process::ExitStatus;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::io::BufReader;
use tokio::process::Child;
use tokio::process::ChildStdin;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::binaries;

/// How long a one-shot `kvsh` run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a statement of an interactive session may take by default.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished `kvsh` printed.
#[derive(Debug)]
pub struct KvshOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl KvshOutput {
    /// The result lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// True when it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

fn command(addrs: &[String]) -> Command {
    let mut command = Command::new(binaries::kvsh());
    command.arg("--connect").arg(addrs.join(",")).env("NO_COLOR", "1").kill_on_drop(true);
    command
}

async fn finish(command: &mut Command, input: Option<&[u8]>) -> KvshOutput {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().expect("start kvsh");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("kvsh stdin");
        stdin.write_all(input).await.expect("write kvsh's input");
        drop(stdin);
    }
    let output = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kvsh did not finish within {RUN_TIMEOUT:?}"))
        .expect("kvsh's output");
    KvshOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `kvsh --connect ADDRS -c STATEMENTS`.
pub async fn run_c(addrs: &[String], statements: &str) -> KvshOutput {
    finish(command(addrs).arg("-c").arg(statements), None).await
}

/// `kvsh --connect ADDRS -f FILE`.
pub async fn run_file(addrs: &[String], file: &Path) -> KvshOutput {
    finish(command(addrs).arg("-f").arg(file), None).await
}

/// `kvd demo --data DATA` with `input` on its standard input (then end of input): a cluster
/// of its own and the shell, in one process.
pub async fn run_demo(data: &Path, input: &[u8]) -> KvshOutput {
    let mut command = Command::new(binaries::kvd());
    command.arg("demo").arg("--data").arg(data).env("NO_COLOR", "1").kill_on_drop(true);
    finish(&mut command, Some(input)).await
}

/// `kvsh --connect ADDRS` with `input` on its standard input (then end of input).
pub async fn run_stdin(addrs: &[String], input: &[u8]) -> KvshOutput {
    finish(&mut command(addrs), Some(input)).await
}

/// An interactive `kvsh` whose standard input the test writes line by line.
pub struct KvshSession {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    transcript: Vec<String>,
}

impl KvshSession {
    /// Starts a session named `name` (for messages) connected to `addrs`.
    pub fn spawn(name: &str, addrs: &[String]) -> KvshSession {
        let mut child = command(addrs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kvsh");
        let stdin = child.stdin.take().expect("kvsh stdin");
        let stdout = child.stdout.take().expect("kvsh stdout");
        let mut stderr_pipe = child.stderr.take().expect("kvsh stderr");
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            sink.lock().expect("stderr lock").push_str(&text);
        });
        KvshSession {
            name: name.to_string(),
            child,
            stdin: Some(stdin),
            lines,
            stderr,
            transcript: Vec::new(),
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends the shell SIGINT, as Ctrl-C at a terminal would.
    pub async fn interrupt(&mut self) {
        self.transcript.push(format!("{} >> ^C", self.name));
        let pid = self.child.id().expect("kvsh is running");
        let status = Command::new("kill").arg("-INT").arg(pid.to_string()).status().await;
        assert!(status.expect("kill -INT").success(), "kill -INT {pid}");
    }

    /// Kills the shell with SIGKILL (a crashed client) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.transcript.push(format!("{} killed", self.name));
        self.child.kill().await.expect("kill -9 kvsh");
    }

    /// What was sent and received so far, for messages.
    pub fn transcript(&self) -> String {
        let stderr = self.stderr.lock().expect("stderr lock").clone();
        format!("{}\n[stderr] {stderr}", self.transcript.join("\n"))
    }

    /// Sends one line; returns when it was written (the statement may still be running).
    pub async fn send(&mut self, line: &str) -> Instant {
        self.transcript.push(format!("{} >> {line}", self.name));
        let stdin = self.stdin.as_mut().expect("the session's input is open");
        stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write to kvsh");
        stdin.flush().await.expect("flush kvsh's input");
        Instant::now()
    }

    /// The next result line, if one arrives within `within`.
    pub async fn try_recv(&mut self, within: Duration) -> Option<String> {
        match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.transcript.push(format!("{} << {line}", self.name));
                Some(line)
            }
            Ok(None) | Err(_) => None,
        }
    }

    /// The next result line; panics (with the transcript) if none arrives within `within`.
    pub async fn recv(&mut self, within: Duration) -> String {
        match self.try_recv(within).await {
            Some(line) => line,
            None => panic!(
                "session {} printed no line within {within:?}; transcript:\n{}",
                self.name,
                self.transcript()
            ),
        }
    }

    /// Sends a one-line statement and returns its result line.
    pub async fn run(&mut self, statement: &str) -> String {
        self.send(statement).await;
        self.recv(STATEMENT_TIMEOUT).await
    }

    /// Sends a statement and asserts its result line.
    pub async fn expect(&mut self, statement: &str, expected: &str) {
        let line = self.run(statement).await;
        assert_eq!(
            line,
            expected,
            "session {}: {statement:?}; transcript:\n{}",
            self.name,
            self.transcript()
        );
    }

    /// Closes the input and waits for the shell to exit; returns its remaining output.
    pub async fn finish(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        self.exited().await
    }

    /// Waits for the shell to exit with its input still open (it was interrupted, say);
    /// returns its remaining output.
    pub async fn exited(mut self) -> (ExitStatus, Vec<String>) {
        let status = tokio::time::timeout(RUN_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("session {} did not exit", self.name))
            .expect("kvsh's exit status");
        let mut rest = Vec::new();
        while let Some(line) = self.try_recv(Duration::from_secs(1)).await {
            rest.push(line);
        }
        (status, rest)
    }
}
