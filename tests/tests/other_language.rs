//! The public API is usable from another language, transactions included (DESIGN.md section 7:
//! "a client in another language can be generated from it and used").
//!
//! `examples/python/kv_example.py` generates its stubs from `proto/proto/kv/v1/kv.proto` with
//! grpc_tools and runs, against real nodes: a one-statement write and read, a transfer in an
//! interactive transaction (COMMITTED, then TxnStatus and a retried END agree), ABORT (nothing
//! written, the handle gone: NOT_FOUND), an empty key (INVALID_ARGUMENT), a deadlock whose
//! victim hears ABORTED with `kv-abort-reason: DEADLOCK` and `kv-retryable: true` in its
//! trailing metadata, a scan, and the `Session` stream. The script checks each answer itself
//! and exits 1 at the first broken promise; this test then reads what it wrote through the
//! Rust client. The Python environment comes from `scripts/python-env.sh` (PyPI, made once).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use e2e::Cluster;
use tokio::process::Command;

/// How long the script may take (it runs in about a second; generating the stubs is most).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The Python of the environment with grpcio and grpcio-tools, made if missing.
async fn python() -> PathBuf {
    let script = workspace_root().join("scripts/python-env.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("bash runs scripts/python-env.sh");
    assert!(output.status.success(), "scripts/python-env.sh failed (it needs python3 and PyPI)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().expect("the script prints the python's path").trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_generated_from_the_proto_runs_transactions() {
    let python = python().await;
    let cluster = Cluster::start().await;
    let script = workspace_root().join("examples/python/kv_example.py");
    let run = Command::new(&python)
        .arg(&script)
        .arg("--connect")
        .arg(cluster.addr(2))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .expect("the Python client finished in time")
        .expect("the Python client started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Python client failed:\n{stdout}\n{stderr}");
    for line in [
        "transaction: COMMITTED at",
        "ABORT: nothing written, the handle is gone",
        "empty key: INVALID_ARGUMENT",
        "deadlock: the victim heard ABORTED, kv-abort-reason DEADLOCK, kv-retryable true",
        "SCAN: py-alice=90, py-bob=10",
        "all steps passed",
    ] {
        assert!(stdout.contains(line), "the Python client did not print {line:?}:\n{stdout}");
    }

    // What Python committed is what Rust reads.
    let client = cluster.client().await;
    for (key, value) in [("py-alice", Some("90")), ("py-bob", Some("10")), ("py-carol", None)] {
        let got = client.get(key).await.expect("a read");
        assert_eq!(got.as_deref(), value.map(str::as_bytes), "{key} as the Rust client reads it");
    }
}
