//! The `kvcheck` binary's contract (DESIGN §7): exit 0 valid with a one-line summary, 1 with
//! each anomaly named, 2 for unreadable or malformed input with the line and why.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::H;

/// Writes `text` to a fresh temporary file named after `name`.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("kvcheck-test-{}-{name}.jsonl", std::process::id()));
    std::fs::write(&path, text).expect("write temp history");
    path
}

/// Runs `kvcheck` on `text` with `model`.
fn kvcheck(name: &str, text: &str, model: &str) -> Output {
    let path = temp_file(name, text);
    let output = Command::new(env!("CARGO_BIN_EXE_kvcheck"))
        .arg(&path)
        .args(["--model", model])
        .output()
        .expect("run kvcheck");
    let _ = std::fs::remove_file(&path);
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn valid_history_exits_0_with_one_line() {
    let mut h = H::new();
    h.txn(1, "x+1");
    h.txn(2, "x=[1]");
    let output = kvcheck("valid", &h.jsonl(), "strict-serializable");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("valid under strict-serializable: 2 txns"), "{out}");
}

#[test]
fn duplicate_read_element_exits_1() {
    let mut h = H::new();
    h.txn(1, "x+1");
    h.txn(2, "x=[1,1]");
    let output = kvcheck("dup-read", &h.jsonl(), "serializable");
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains("duplicate-elements: T2 read x = [1 1]"), "{out}");
    assert!(out.contains("T2: process 2, invoke 2, ok 3: [r x [1 1]]"), "{out}");
}

#[test]
fn duplicate_invoke_append_exits_2() {
    let text = concat!(
        r#"{"index":0,"process":1,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
        "\n",
        r#"{"index":1,"process":1,"type":"ok","f":"txn","value":[["append","x",1]]}"#,
        "\n",
        r#"{"index":2,"process":2,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
        "\n",
    );
    let output = kvcheck("dup-append", text, "serializable");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("line 3") && err.contains("duplicate append of 1 to x"), "{err}");
}

#[test]
fn malformed_line_exits_2_and_echoes_it() {
    let text = "{\"index\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\nnot json at all\n";
    let output = kvcheck("malformed", text, "causal");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("line 2: not JSON") && err.contains("not json at all"), "{err}");
}

#[test]
fn unpaired_completion_exits_2() {
    let text = r#"{"index":0,"process":1,"type":"ok","f":"txn","value":[]}"#;
    let output = kvcheck("unpaired", text, "serializable");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("has no pending invoke"), "{}", stderr(&output));
}

#[test]
fn missing_file_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvcheck"))
        .args(["/nonexistent/history.jsonl", "--model", "serializable"])
        .output()
        .expect("run kvcheck");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn stale_read_exit_code_depends_on_model() {
    let mut h = H::new();
    h.txn(1, "x+1");
    h.txn(2, "x=[]");
    assert_eq!(kvcheck("stale-ser", &h.jsonl(), "serializable").status.code(), Some(0));
    assert_eq!(kvcheck("stale-causal", &h.jsonl(), "causal").status.code(), Some(0));
    let strict = kvcheck("stale-strict", &h.jsonl(), "strict-serializable");
    assert_eq!(strict.status.code(), Some(1));
    let out = stdout(&strict);
    assert!(out.contains("G-single-realtime"), "{out}");
    assert!(out.contains("T0 completed (index 1) before T2 began (index 2)"), "{out}");
}

#[test]
fn g1a_exits_1_and_reads_stdin() {
    let mut h = H::new();
    h.failed(1, "x+1");
    h.txn(2, "x=[1]");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvcheck"))
        .args(["-", "--model", "causal"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run kvcheck");
    child.stdin.take().expect("stdin").write_all(h.jsonl().as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("G1a: T2 read x = [1]"), "{}", stdout(&output));
}

#[test]
fn unknown_model_is_a_usage_error() {
    let output = kvcheck("bad-model", "", "linearizable");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn empty_and_invokes_only_histories_exit_0() {
    assert_eq!(kvcheck("empty", "", "strict-serializable").status.code(), Some(0));
    let mut h = H::new();
    h.invoke(1, "x+1").invoke(2, "x=?");
    let output = kvcheck("invokes-only", &h.jsonl(), "causal");
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}
