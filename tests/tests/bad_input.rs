//! Issue 2, bad input: every mistake gets a clear error, a non-zero exit, no panic, and changes
//! nothing.

use std::process::Output;
use std::process::Stdio;
use std::time::Duration;

use e2e::Cluster;
use e2e::KvshOutput;
use e2e::binaries;
use e2e::kvsh;
use e2e::text;
use tokio::process::Command;

/// The key limit (bytes) of the default configuration.
const KEY_BYTES_MAX: usize = 4096;
/// The value limit (bytes) of the default configuration.
const VALUE_BYTES_MAX: usize = 1 << 20;

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

async fn everything(client: &client::Client) -> Rows {
    client.scan("", "", None).await.expect("a scan of the whole key space")
}

fn assert_one_error(what: &str, output: &KvshOutput) {
    assert!(!output.success(), "{what}: kvsh exits non-zero; {output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 1, "{what}: one result line; {output:?}");
    assert!(lines[0].starts_with("ERROR: "), "{what}: an ERROR: line; {output:?}");
    assert!(!output.stderr.contains("panicked"), "{what}: no panic; {output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvsh_answers_bad_statements_with_error_and_a_nonzero_exit_and_changes_nothing() {
    let cluster = Cluster::start().await;
    let addrs = cluster.addrs();
    let client = cluster.client().await;
    for (key, value) in [("Alice", "1"), ("Gina", "2"), ("kate", "3")] {
        client.put(key, value).await.expect("seed write");
    }
    let before = everything(&client).await;
    let long_key = "x".repeat(KEY_BYTES_MAX + 1);

    let cases: Vec<(&str, String)> = vec![
        ("empty key", r#"WRITE "" v"#.to_string()),
        ("empty key, read", r#"READ """#.to_string()),
        ("key over 4 KiB", format!("WRITE {long_key} v")),
        ("key over 4 KiB, read", format!("READ {long_key}")),
        ("key over 4 KiB, in a transaction", format!("BEGIN; WRITE {long_key} v; ABORT")),
        ("unknown statement", "FROB Alice".to_string()),
        ("malformed quoting", r#"WRITE Alice "unterminated"#.to_string()),
        ("bad escape", r#"WRITE Alice "a\qb""#.to_string()),
        ("missing argument", "WRITE Alice".to_string()),
        ("a bad statement after a good one runs neither", "WRITE Alice changed; FROB".to_string()),
        ("a backwards scan", "SCAN kate Alice".to_string()),
    ];
    for (what, statements) in &cases {
        let output = kvsh::run_c(&addrs, statements).await;
        if *what == "key over 4 KiB, in a transaction" {
            // BEGIN and ABORT answer OK around the failed WRITE.
            assert!(!output.success(), "{what}: non-zero exit; {output:?}");
            let lines = output.lines();
            assert_eq!(lines.len(), 3, "{what}: {output:?}");
            assert!(lines[1].starts_with("ERROR: "), "{what}: {output:?}");
            continue;
        }
        assert_one_error(what, &output);
    }

    // A value over 1 MiB cannot go through -c (Linux caps one argument at 128 KiB), so it
    // goes through -f and through standard input.
    let file = cluster.dir().join("big-value.kv");
    let big = format!("WRITE Gina {}\n", "v".repeat(VALUE_BYTES_MAX + 1));
    std::fs::write(&file, &big).expect("write the statement file");
    assert_one_error("value over 1 MiB, -f", &kvsh::run_file(&addrs, &file).await);
    assert_one_error("value over 1 MiB, stdin", &kvsh::run_stdin(&addrs, big.as_bytes()).await);

    // A file that cannot be read, or a directory, is refused before anything runs (status 2).
    for (what, path) in [
        ("a missing file", cluster.dir().join("missing.kv")),
        ("a directory", cluster.dir().to_path_buf()),
    ] {
        let output = kvsh::run_file(&addrs, &path).await;
        assert_eq!(output.status.code(), Some(2), "-f {what}: {output:?}");
        assert!(output.stderr.contains("kvsh: cannot read"), "-f {what}: {output:?}");
    }

    let after = everything(&client).await;
    assert_eq!(after, before, "the bad statements changed nothing");

    // The limits are inclusive: a key of exactly 4 KiB and a value of exactly 1 MiB are fine.
    let edge_key = format!("k{}", "e".repeat(KEY_BYTES_MAX - 1));
    let edge = format!("WRITE {edge_key} {}\nREAD Alice\n", "v".repeat(VALUE_BYTES_MAX));
    std::fs::write(&file, &edge).expect("write the statement file");
    let output = kvsh::run_file(&addrs, &file).await;
    assert!(output.success(), "{output:?}");
    assert_eq!(output.lines(), vec!["OK", "1"]);
    let stored = client.get(&edge_key).await.expect("read the edge key");
    assert_eq!(stored.map(|v| v.len()), Some(VALUE_BYTES_MAX));
}

/// A script's transaction does not commit around a statement that failed: a statement of the
/// block that was sent and failed (bad input leaves an interactive transaction open) aborts
/// it, and END says so. A line that does not parse changes nothing, in a script as at the
/// prompt (issue 3: "in the shell, a parse error changes nothing"; earlier builds of
/// 2026-12-07 aborted a script's block on it). ABORT with nothing open answers OK (DESIGN §7:
/// ABORT -> OK; it answered an ERROR). And a quoted value may span lines in `-f` and piped
/// input as in `-c`: before 2026-12-07 each line was parsed alone, so the lines inside the
/// string ran as statements (found by a review, as was the partial commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_fails_a_scripts_block_but_a_parse_error_changes_nothing() {
    let cluster = Cluster::start().await;
    let addrs = cluster.addrs();
    let client = cluster.client().await;
    client.put("Alice", "1").await.expect("seed write");
    let long_key = "x".repeat(KEY_BYTES_MAX + 1);

    let script =
        format!("BEGIN; WRITE Script1 x; WRITE {long_key} v; WRITE Script2 y; END; WRITE After z");
    let output = kvsh::run_c(&addrs, &script).await;
    assert!(!output.success(), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 6, "{output:?}");
    assert_eq!(lines[..2], ["OK", "OK"], "{output:?}");
    assert!(lines[2].starts_with("ERROR: "), "{output:?}");
    assert_eq!(lines[3], "ERROR: transaction aborted, end it with ABORT", "{output:?}");
    assert!(lines[4].starts_with("ABORTED: USER "), "{output:?}");
    assert_eq!(lines[5], "OK", "after END statements run again: {output:?}");
    assert_eq!(client.get("Script1").await.expect("READ"), None, "nothing of the block");
    assert_eq!(text(client.get("After").await.expect("READ")).as_deref(), Some("z"));

    // A second BEGIN inside the block fails it like any other failed statement.
    let output = kvsh::run_c(&addrs, "BEGIN; WRITE Nested1 x; BEGIN; WRITE Nested2 y; END").await;
    assert!(!output.success(), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 5, "{output:?}");
    assert!(lines[2].starts_with("ERROR: ") && lines[4].starts_with("ABORTED: "), "{output:?}");
    assert_eq!(client.get("Nested1").await.expect("READ"), None, "nothing of the block");

    let file = cluster.dir().join("parse-error.kv");
    let script = "BEGIN\nWRITE Parse1 x\nFROB\nWRITE Parse2 y\nEND\nABORT\n";
    std::fs::write(&file, script).expect("write the script");
    for how in ["-f", "stdin"] {
        let output = match how {
            "-f" => kvsh::run_file(&addrs, &file).await,
            _ => kvsh::run_stdin(&addrs, script.as_bytes()).await,
        };
        assert!(!output.success(), "{how}: the line that did not parse failed: {output:?}");
        let lines = output.lines();
        assert_eq!(lines.len(), 6, "{how}: {output:?}");
        assert!(lines[2].starts_with("ERROR: unknown statement"), "{how}: {output:?}");
        assert_eq!(
            [lines[0], lines[1], lines[3], lines[4], lines[5]],
            ["OK", "OK", "OK", "COMMITTED", "OK"],
            "{how}: {output:?}"
        );
        for (key, value) in [("Parse1", "x"), ("Parse2", "y")] {
            let read = text(client.get(key).await.expect("READ"));
            assert_eq!(read.as_deref(), Some(value), "{how}: {key} committed with the block");
        }
        client.delete("Parse1").await.expect("DELETE");
        client.delete("Parse2").await.expect("DELETE");
    }
    let output = kvsh::run_c(&addrs, "ABORT").await;
    assert!(output.success() && output.lines() == ["OK"], "{output:?}");

    let script = "BEGIN\nWRITE Note \"remember to\nDELETE Alice\n\"\nEND\n";
    std::fs::write(&file, script).expect("write the script");
    for (how, output) in [
        ("-f", kvsh::run_file(&addrs, &file).await),
        ("stdin", kvsh::run_stdin(&addrs, script.as_bytes()).await),
    ] {
        assert!(output.success(), "{how}: {output:?}");
        assert_eq!(output.lines(), ["OK", "OK", "COMMITTED"], "{how}: {output:?}");
        let note = text(client.get("Note").await.expect("READ"));
        assert_eq!(note.as_deref(), Some("remember to\nDELETE Alice\n"), "{how}");
        let alice = text(client.get("Alice").await.expect("READ"));
        assert_eq!(alice.as_deref(), Some("1"), "{how}: the line inside the value did not run");
    }
}

/// `kvd demo` with piped input is a script's shell: its standard output holds the results
/// alone, one line per statement (the banner goes to standard error; until 2026-12-07 its two
/// lines came first on standard output, found by a review against DESIGN §7), and it exits 0
/// after statements that all succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvd_demo_with_piped_input_prints_the_results_alone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = "WRITE Alice 10\nREAD Alice\nBEGIN\nWRITE Bob 5\nEND\nSCAN A z\n";
    let output = kvsh::run_demo(&dir.path().join("demo"), input.as_bytes()).await;
    assert!(output.success(), "{output:?}");
    assert_eq!(
        output.lines(),
        ["OK", "10", "OK", "OK", "COMMITTED", "Alice 10", "Bob 5", "(2 rows)"],
        "{output:?}"
    );
    assert!(output.stderr.contains("kvd demo: 3 nodes on "), "the banner: {output:?}");
}

/// Starts `command` with no input, its output captured, killed if the test drops it.
fn spawn_piped(command: &mut Command) -> tokio::process::Child {
    command
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary")
}

/// Runs `kvd start` with `args`; it must exit by itself (bad configuration) within 10 s.
async fn kvd_start(args: &[String]) -> Output {
    let child = spawn_piped(Command::new(binaries::kvd()).arg("start").args(args));
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kvd {args:?} kept running: it accepted a bad configuration"))
        .expect("kvd's output")
}

/// `kvd start` refused `what` with exit status `code` (2: a bad configuration, refused before
/// anything starts; 1: refused at start, docs/configuration.md) and a `kvd: error:` line.
fn assert_refused(what: &str, output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{what}: exit status; stderr: {stderr}");
    assert!(stderr.contains("kvd: error: "), "{what}: a `kvd: error:` line; stderr: {stderr}");
    assert!(stderr.contains(message), "{what}: says {message:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: no panic; stderr: {stderr}");
}

fn args(id: u64, listen: &str, peers: &str, data: &std::path::Path) -> Vec<String> {
    let data = data.display().to_string();
    ["--id", &id.to_string(), "--listen", listen, "--peers", peers, "--data", &data]
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvd_refuses_a_bad_configuration_with_a_clear_error_and_no_panic() {
    let mut cluster = Cluster::start().await;
    let scratch = cluster.dir().join("scratch");
    let listen = "127.0.0.1:1";
    let good_peers = "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3";

    let bad_peers = [
        ("a peer without an address", "1=127.0.0.1:1,2"),
        ("a peer without an id", "127.0.0.1:1"),
        ("a non-numeric id", "one=127.0.0.1:1"),
        ("an address without a port", "1=127.0.0.1"),
        ("a port out of range", "1=127.0.0.1:99999"),
        ("an id named twice", "1=127.0.0.1:1,1=127.0.0.1:2"),
        ("two ids at one address", "1=127.0.0.1:1,2=127.0.0.1:1"),
        ("an empty list", ""),
    ];
    for (what, peers) in bad_peers {
        let output = kvd_start(&args(1, listen, peers, &scratch)).await;
        assert_refused(what, &output, 2, "--peers");
    }
    let output = kvd_start(&args(1, "nonsense", good_peers, &scratch)).await;
    assert_refused("a --listen without a port", &output, 2, "--listen");
    let output = kvd_start(&args(4, listen, good_peers, &scratch)).await;
    assert_refused("an id missing from --peers", &output, 2, "does not name this node's id 4");

    let output = kvd_start(&args(0, listen, good_peers, &scratch)).await;
    assert_refused("id 0", &output, 2, "--id");
    assert!(!scratch.exists(), "a refused configuration creates no data directory");
    let file = cluster.dir().join("a-file");
    std::fs::write(&file, "not a node's data").expect("a file");
    let output = kvd_start(&args(1, "127.0.0.1:0", good_peers, &file)).await;
    assert_refused("a file as --data", &output, 1, "is not a directory");

    // Node 1's data directory, offered to node 2: refused, and left intact for node 1.
    cluster.kill9(1);
    let node1_data = cluster.data_dir(1);
    let output = kvd_start(&args(2, "127.0.0.1:0", &cluster.peers_arg(), &node1_data)).await;
    assert_refused("another node's data directory", &output, 1, "belongs to node 1");
    // Node 1 again, with a node left out of --peers, or one added: refused (the shards'
    // replicas are placed by the ids), and the directory left intact.
    let addr = |id: u64| format!("{id}={}", cluster.addr(id));
    for peers in
        [format!("{},{}", addr(1), addr(3)), format!("{},4=127.0.0.1:9", cluster.peers_arg())]
    {
        let output = kvd_start(&args(1, "127.0.0.1:0", &peers, &node1_data)).await;
        assert_refused(
            "another set of nodes",
            &output,
            1,
            "belongs to a cluster of nodes [1, 2, 3]",
        );
    }
    cluster.restart(1);
    cluster.wait_ready().await;
    let client = cluster.client_via(&[1]).await;
    client.put("Alice", "still fine").await.expect("node 1 works on its own data directory");
}

/// A request over the transport's message limit (`MESSAGE_BYTES_MAX`, 256 MiB) is refused
/// whole, with a clear error, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_message_limit_is_refused_and_writes_nothing() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let value = vec![b'v'; VALUE_BYTES_MAX];
    let count = client::connector::MESSAGE_BYTES_MAX / VALUE_BYTES_MAX + 1;
    let writes: Vec<client::Mutation> =
        (0..count).map(|i| client::Mutation::put(format!("Big{i:04}"), &value)).collect();
    let error = client.commit_writes(writes).await.expect_err("a request over the limit");
    assert!(matches!(error, client::Error::Invalid(_)), "refused as bad input: {error:?}");
    assert!(error.to_string().contains("message limit: not sent"), "a clear error: {error}");
    assert_eq!(everything(&client).await, Rows::new(), "nothing written");
}

/// Values of the scan test: enough to pass `SCAN_BYTES_MAX` (32 MiB) in one shard.
const LARGE_VALUES: usize = 36;

/// A SCAN whose rows would pass `txn::state::SCAN_BYTES_MAX` (32 MiB) is refused with a clear
/// error instead of an answer over the message limit (which ended the client's stream, and the
/// stream between two nodes when a shard's rows came from another node); a LIMIT makes it fit.
/// In a transaction the refusal leaves the transaction usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_over_the_byte_limit_is_refused_and_a_limit_makes_it_fit() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let value = vec![b'v'; VALUE_BYTES_MAX];
    for i in 0..LARGE_VALUES {
        client.put(format!("Big{i:04}"), &value).await.expect("a 1 MiB put");
    }
    let refused = |what: &str, result: Result<Rows, client::Error>| match result {
        Err(client::Error::Invalid(message)) => {
            assert!(message.contains("exceed 32 MiB"), "{what}: a clear error: {message}");
        }
        other => panic!("{what}: refused as bad input, got {:?}", other.map(|rows| rows.len())),
    };
    // One shard (s0 holds every key), and the whole key space (every shard, one transaction).
    refused("one shard", client.scan("Big", "Bih", None).await);
    refused("every shard", client.scan("", "", None).await);
    let rows = client.scan("Big", "Bih", Some(8)).await.expect("a scan with a LIMIT");
    assert_eq!(rows.len(), 8);

    let mut txn = client.begin().await.expect("begin");
    refused("in a transaction", txn.scan("", "", None).await);
    txn.put("Small", "1").await.expect("the transaction is still usable");
    txn.commit().await.expect("and commits");

    // Own writes that shrink the rows under the limit (a small value, a delete) do not hide
    // that the shard's scan stopped at it: refused, where it answered without the rows after
    // the cut before 2026-12-07 (found by a review).
    let mut txn = client.begin().await.expect("begin");
    txn.put("Big0005", "small").await.expect("WRITE");
    txn.delete("Big0006").await.expect("DELETE");
    refused("own writes under the limit", txn.scan("Big", "Bih", None).await);
    txn.abort().await.expect("ABORT");

    // Own deletes of rows over the limit do not make a SCAN fail: the shard's scans go on past
    // each cut, and the one row left is the answer (refused before 2026-12-07 whatever the
    // LIMIT; found by a review).
    let mut txn = client.begin().await.expect("begin");
    for i in 0..LARGE_VALUES - 1 {
        txn.delete(format!("Big{i:04}")).await.expect("DELETE");
    }
    let last = format!("Big{:04}", LARGE_VALUES - 1);
    for limit in [Some(1), None] {
        let rows = txn.scan("Big", "Bih", limit).await.expect("a SCAN past own deletes");
        let keys: Vec<String> =
            rows.iter().map(|(key, _)| String::from_utf8_lossy(key).into_owned()).collect();
        assert_eq!(keys, std::slice::from_ref(&last), "LIMIT {limit:?}");
    }
    txn.abort().await.expect("ABORT");

    let causal = cluster.client().await;
    causal.set_consistency(client::Consistency::Causal);
    // At or above the writes: a new session's snapshot may trail a follower's apply (once,
    // 31 of the 36 values, under the byte limit: a fresh session may read an older state).
    causal.observe_token(client.token());
    refused("causal", causal.scan("", "", None).await);
    assert_eq!(causal.scan("Big", "", Some(3)).await.expect("causal with a LIMIT").len(), 3);
}

/// A causal token far ahead of the cluster's clocks (typed by hand, or garbage) is refused by
/// the node, and moves no clock: adopting it would move every node's clock with it, and one near
/// the end of time made the clock overflow (a node panicked on `timestamp overflow`). kvsh
/// refuses it before it is adopted, since a session keeps the largest token it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_causal_token_from_the_future_is_refused_and_moves_no_clock() {
    let mut cluster = Cluster::start().await;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
    };
    let an_hour_ahead = (now_ms() + 3_600_000) << proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    for token in [u64::MAX, 1 << 63, an_hour_ahead] {
        let session = cluster.client().await;
        let refused = session.import_token(token).expect_err("the library refuses it");
        assert!(refused.to_string().contains("ahead of this machine's clock"), "{refused}");
        assert_eq!(session.token(), 0, "a refused import changes nothing");
        // Past the library's check (as a client in another language would be): the nodes.
        session.observe_token(token);
        let refused = session.put("future", "v").await.expect_err("a write with the token");
        assert!(refused.to_string().contains("ahead of this node's clock"), "{refused}");
        let refused = session.get("future").await.expect_err("a read with the token");
        assert!(refused.to_string().contains("ahead of this node's clock"), "{refused}");

        let output = kvsh::run_c(&cluster.addrs(), &format!("SET TOKEN {token}")).await;
        assert_one_error(&format!("SET TOKEN {token}"), &output);
        assert!(output.stdout.contains("ahead of this machine's clock"), "{output:?}");

        // A transaction handle that starts that far ahead was begun by no node: TxnStatus
        // refuses it, rather than deciding it ABORTED in a record no collection would reach.
        let mut kv = cluster.kv_client(1).await;
        let handle =
            proto::kv::TxnHandle { start_ts: token, coordinator: 2, incarnation: 1, seq: 1 };
        let request = proto::kv::TxnStatusRequest { txn: Some(handle), home_shard: Some(0) };
        let refused = kv.txn_status(request).await.expect_err("TxnStatus of a made-up handle");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("no node of this cluster began it"), "{refused:?}");
    }
    cluster.check_alive();
    let fresh = cluster.client().await;
    fresh.put("now", "v").await.expect("a write with no token");
    assert_eq!(fresh.get("future").await.expect("a read"), None, "nothing was written");
    let commit_ms = fresh.token() >> proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    assert!(commit_ms < now_ms() + 60_000, "the cluster's clock did not move: {commit_ms}");
}

/// Causal tokens are measured against each node's physical clock, not its hybrid clock: the
/// hybrid clock adopts every token it accepts, so before 2026-12-05 a ladder of tokens, each
/// just within the limit of the last, moved the whole cluster's clocks ahead without bound
/// (found by a review: 288 requests would have moved them a day ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_of_causal_tokens_cannot_move_the_clocks_past_the_limit() {
    let cluster = Cluster::start().await;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64
    };
    let step = proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS * 4 / 5;
    let first = (now_ms() + step) << proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    let session = cluster.client().await;
    session.observe_token(first);
    session.put("ladder", "1").await.expect("a token within the limit is accepted");
    let second = (now_ms() + 2 * step) << proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    let session = cluster.client().await;
    session.observe_token(second);
    let refused = session.put("ladder", "2").await.expect_err("a token past the limit");
    assert!(refused.to_string().contains("ahead of this node's clock"), "{refused}");
    let fresh = cluster.client().await;
    fresh.put("ladder", "3").await.expect("a write with no token");
    let commit_ms = fresh.token() >> proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    let limit = now_ms() + proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS;
    assert!(commit_ms < limit, "the clocks moved past the limit: {commit_ms} >= {limit}");
}

/// A far-ahead causal token on a Commit that has a handle is ignored, as kv.proto says: the
/// END of a transaction (which may be a retry of one already deciding) must not be refused
/// over a token. Before 2026-12-05 a far-ahead one refused it (review of the public API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_with_a_handle_is_not_refused_over_its_causal_token() {
    let cluster = Cluster::start().await;
    let mut kv = cluster.kv_client(1).await;
    let begun = kv.begin(proto::kv::BeginRequest::default()).await.expect("BEGIN").into_inner();
    let write = proto::kv::CommitRequest {
        txn: begun.txn,
        writes: vec![proto::kv::Mutation {
            key: "ignored-token".into(),
            value: "v".into(),
            ..Default::default()
        }],
        causal_token: u64::MAX,
    };
    let committed = kv.commit(write).await.expect("END with a handle").into_inner();
    assert_eq!(committed.outcome(), proto::kv::Outcome::Committed);
    let client = cluster.client().await;
    assert_eq!(text(client.get("ignored-token").await.expect("READ")).as_deref(), Some("v"));
}

/// A statement of a transaction whose call its client cancels (here: a deadline shorter than
/// the lock wait it meets) leaves the transaction aborted, as kv.proto says of a statement left
/// without an answer: an END answers ABORTED, and the transaction's other lock goes at once.
/// Before 2026-12-05 the transaction stayed active, and END committed its first write without
/// the cancelled one (found by a review). The END is sent while the statement still waits, so
/// it waits for the transaction and is handed it when the transport drops the statement: it
/// must find the transaction aborted then too (`TxnEntry::cancelled`; a first version of the
/// fix aborted it only after that END had gone ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_statement_leaves_its_transaction_aborted() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut kv = cluster.kv_client(1).await;
    // Both keys in one shard (s1), so that the transaction's part there has a write either way.
    let (first_key, held) = ("Hcancelled", "Held");
    let mut holder = client.begin().await.expect("BEGIN");
    holder.get_for_update(held).await.expect("READ FOR UPDATE");

    let begun = kv.begin(proto::kv::BeginRequest::default()).await.expect("BEGIN").into_inner();
    let write = |key: &str, value: &str| proto::kv::WriteRequest {
        txn: begun.txn,
        key: key.to_string().into(),
        value: value.to_string().into(),
        ..Default::default()
    };
    kv.write(write(first_key, "first")).await.expect("the first WRITE");
    let (mut second_kv, mut end_kv) = (kv.clone(), kv.clone());
    let second_write = write(held, "second");
    let second = tokio::spawn(async move { second_kv.write(second_write).await });
    // The second WRITE waits for its lock (awaited: a fixed pause did not say it had arrived);
    // END goes out meanwhile, and then the client gives the WRITE up.
    cluster
        .until_lock_waits("the second WRITE's lock wait", Duration::from_secs(10), |waits| {
            waits > 0
        })
        .await;
    let end = tokio::spawn(async move {
        let commit = proto::kv::CommitRequest { txn: begun.txn, ..Default::default() };
        end_kv.commit(commit).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second WRITE still waits for the lock");
    second.abort();
    let outcome = end.await.expect("the END task").expect("END").into_inner();
    assert_eq!(outcome.outcome, proto::kv::Outcome::Aborted as i32, "{outcome:?}");
    let abort = outcome.abort.expect("why");
    assert!(abort.message.contains("cancelled"), "{abort:?}");
    // Its lock on the first key went with it: another writer gets it at once.
    client.put(first_key, "other").await.expect("a write of the first key");
    holder.abort().await.expect("ABORT");
    assert_eq!(text(client.get(first_key).await.expect("READ")).as_deref(), Some("other"));
    assert_eq!(text(client.get(held).await.expect("READ")), None, "nothing of it applied");
}

/// Unary one-statement calls that their client cancels (a deadline shorter than the lock wait
/// they meet) leave nothing registered at their coordinator once the operations end. Before
/// 2026-12-05 each stayed registered as a running transaction for good, counted against
/// `open_txns_max`, until the node refused every BEGIN (`Coordinator::single`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_one_statement_calls_leave_no_transaction_registered() {
    const CANCELLED: usize = 10;
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut kv = cluster.kv_client(1).await;
    // A transaction holds the key, so every WRITE waits for its lock.
    let mut holder = client.begin().await.expect("BEGIN");
    holder.get_for_update("Held").await.expect("READ FOR UPDATE");
    for i in 0..CANCELLED {
        let request = proto::kv::WriteRequest {
            key: "Held".into(),
            value: format!("w{i}").into(),
            ..Default::default()
        };
        let call = tokio::time::timeout(Duration::from_millis(100), kv.write(request)).await;
        assert!(call.is_err(), "the WRITE waited for the lock: {call:?}");
    }
    holder.abort().await.expect("ABORT");
    let running = || {
        let mut kv = kv.clone();
        async move {
            let text = kv
                .status(proto::kv::StatusRequest {})
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .text;
            let line = text
                .lines()
                .find(|line| line.starts_with("transactions:"))
                .ok_or_else(|| format!("no transactions line in {text}"))?;
            match line.starts_with("transactions: 0 running here") {
                true => Ok(()),
                false => Err(line.to_string()),
            }
        }
    };
    e2e::eventually("no transaction registered at node 1", Duration::from_secs(20), running).await;
}

/// In a script, the statements after a BEGIN that failed belong to the transaction it did not
/// start: they answer `ERROR: transaction aborted, end it with ABORT` up to END (which repeats
/// the failure) instead of running one by one as one-statement transactions, which applied half
/// of the script's transaction before 2026-12-05 (found by a review). And a script file that
/// starts with a UTF-8 byte order mark runs (its first statement read as unknown before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_begin_fails_its_block_and_a_byte_order_mark_is_ignored() {
    let cluster = Cluster::builder().config("[limits]\nopen_txns_max = 1\n").start().await;
    let addrs = cluster.addrs();
    let client = cluster.client().await;
    // One running transaction at each node: every BEGIN is refused.
    let mut running = Vec::new();
    while let Ok(txn) = client.begin().await {
        running.push(txn);
        assert!(running.len() <= 3, "one running transaction per node");
    }
    let output =
        kvsh::run_c(&addrs, "BEGIN; WRITE Block1 x; DELETE Block2; END; WRITE After y").await;
    assert!(!output.success(), "{output:?}");
    let lines = output.lines();
    assert_eq!(lines.len(), 5, "{output:?}");
    assert!(lines[0].starts_with("ERROR: ") && lines[0].contains("coordinates"), "{output:?}");
    assert_eq!(lines[1], "ERROR: transaction aborted, end it with ABORT", "{output:?}");
    assert_eq!(lines[2], "ERROR: transaction aborted, end it with ABORT", "{output:?}");
    assert_eq!(lines[3], lines[0], "END repeats why the block failed: {output:?}");
    assert_eq!(lines[4], "OK", "after END statements run again: {output:?}");
    assert_eq!(text(client.get("Block1").await.expect("READ")), None, "nothing of the block ran");
    assert_eq!(text(client.get("After").await.expect("READ")).as_deref(), Some("y"));
    for txn in running {
        txn.abort().await.expect("ABORT");
    }

    let output = kvsh::run_stdin(&addrs, b"\xEF\xBB\xBFBEGIN\nWRITE Bom 1\nEND\n").await;
    assert!(output.success(), "{output:?}");
    assert_eq!(output.lines(), ["OK", "OK", "COMMITTED"], "{output:?}");
    assert_eq!(text(client.get("Bom").await.expect("READ")).as_deref(), Some("1"));
}

/// Ctrl-C during a statement of a script's transaction aborts the transaction, and the rest of
/// the block up to END fails with it: before 2026-12-05 the statements after the cancelled one
/// ran as one-statement transactions of their own (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_a_transaction_fails_the_rest_of_its_block() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut holder = client.begin().await.expect("BEGIN");
    holder.get_for_update("Held").await.expect("READ FOR UPDATE");
    let script = "BEGIN; WRITE Held x; WRITE NotAlone y; END; WRITE After z";
    let connect = cluster.addrs().join(",");
    let child =
        spawn_piped(Command::new(binaries::kvsh()).args(["--connect", &connect, "-c", script]));
    let pid = child.id().expect("kvsh's pid");
    cluster
        .until_lock_waits("kvsh's WRITE waiting for its lock", Duration::from_secs(10), |waits| {
            waits > 0
        })
        .await;
    let interrupted = Command::new("kill").arg("-INT").arg(pid.to_string()).status().await;
    assert!(interrupted.expect("kill -INT").success());
    // Well within the lock wait's 10 s: the abort ends the statement's wait (it waited for the
    // lock wait's timeout before 2026-12-05).
    let output = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("kvsh finished soon after Ctrl-C")
        .expect("kvsh's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "OK",
            "ERROR: statement cancelled; the transaction was aborted",
            "ERROR: transaction aborted, end it with ABORT",
            "ABORTED: USER statement cancelled",
            "OK",
        ],
        "{output:?}"
    );
    assert!(!output.status.success(), "{output:?}");
    holder.abort().await.expect("ABORT");
    assert_eq!(text(client.get("NotAlone").await.expect("READ")), None, "the block's write");
    assert_eq!(text(client.get("Held").await.expect("READ")), None, "the cancelled write");
    assert_eq!(text(client.get("After").await.expect("READ")).as_deref(), Some("z"));
}

/// Ctrl-C while a shell reading a pipe waits for its next line ends the shell as the end of
/// its input would (the open transaction aborted, and said so), with exit status 130. Before
/// 2026-12-07 it was swallowed once a statement had run (the statement's Ctrl-C listener stayed
/// installed), and such a shell could not be stopped by it (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_a_piped_shell_waits_for_input_ends_it() {
    let cluster = Cluster::start().await;
    let mut shell = e2e::KvshSession::spawn("shell", &cluster.addrs());
    shell.expect("BEGIN", "OK").await;
    shell.expect("WRITE Pending x", "OK").await;
    shell.interrupt().await;
    let (status, rest) = shell.exited().await;
    assert_eq!(status.code(), Some(130), "{status:?} {rest:?}");
    assert_eq!(rest, ["ABORTED: the transaction was still open at the end of input"]);
    let client = cluster.client().await;
    assert_eq!(text(client.get("Pending").await.expect("READ")), None, "the open txn's write");
}

/// STATUS with no node answering prints each node's failure, then an `ERROR:` line, and counts
/// as a failed statement (exit status non-zero, DESIGN §7: "failures -> `ERROR:`"). Before
/// 2026-12-06 it exited 0, and then printed no `ERROR:` line (both found by reviews).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_no_node_answering_fails() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = unused.local_addr().expect("address").to_string();
    drop(unused);
    for statement in ["STATUS", "LOCKS"] {
        let output = kvsh::run_c(std::slice::from_ref(&addr), statement).await;
        assert!(!output.success(), "{statement}: {output:?}");
        assert!(output.stdout.contains(&format!("[{addr}] unavailable")), "{output:?}");
        let last = output.stdout.lines().last().unwrap_or_default();
        assert_eq!(last, "ERROR: no node answered", "{statement}: {output:?}");
    }
}

/// Ctrl-C during BEGIN fails the block as a refused BEGIN does: the statements up to END were
/// meant for the transaction and must not run on their own. Before 2026-12-06 they did, each
/// as a one-statement transaction (found by a review). BEGIN is held up by freezing every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_begin_fails_the_rest_of_its_block() {
    let mut cluster = Cluster::start().await;
    let mut shell = e2e::KvshSession::spawn("shell", &cluster.addrs());
    shell.expect("READ Warm", "(nil)").await;
    for id in cluster.ids() {
        cluster.freeze(id);
    }
    shell.send("BEGIN").await;
    assert_eq!(shell.try_recv(Duration::from_millis(300)).await, None, "BEGIN waits");
    shell.interrupt().await;
    let cancelled = "ERROR: BEGIN cancelled; no transaction is open";
    assert_eq!(shell.recv(Duration::from_secs(5)).await, cancelled);
    for id in cluster.ids() {
        cluster.thaw(id);
    }
    shell.expect("WRITE Alone 1", "ERROR: transaction aborted, end it with ABORT").await;
    shell.expect("END", cancelled).await;
    shell.expect("WRITE After 2", "OK").await;
    let client = cluster.client().await;
    assert_eq!(text(client.get("Alone").await.expect("READ")), None, "the block's write");
    assert_eq!(text(client.get("After").await.expect("READ")).as_deref(), Some("2"));
}

/// Ctrl-C during END cannot take the commit back, so the shell asks the transaction's record
/// (`TxnStatus`) and prints the outcome as END would have, and the data agrees with it. Before
/// 2026-12-05 it printed "outcome unknown" and dropped the handle that could have learned it
/// (found by a review). END is held up by freezing the leader of the written key's shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_end_prints_the_transactions_outcome() {
    let mut cluster = Cluster::start().await;
    let key = e2e::keys::SHARD_KEYS[1];
    let leaders = cluster.leaders().await.expect("agreed leaders");
    let frozen = leaders[&1];
    let others: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != frozen).collect();
    let mut shell = e2e::KvshSession::spawn("shell", &cluster.addrs_of(&others));
    shell.expect("BEGIN", "OK").await;
    shell.expect(&format!("WRITE {key} x"), "OK").await;
    cluster.freeze(frozen);
    shell.send("END").await;
    // END is then in flight for seconds (the frozen leader answers nothing until its calls'
    // deadlines pass and the shard elects another), so the interrupt lands inside it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shell.interrupt().await;
    let line = shell.recv(Duration::from_secs(40)).await;
    assert!(
        line == "COMMITTED" || line.starts_with("ABORTED: "),
        "an outcome, not a guess: {line:?}; transcript:\n{}",
        shell.transcript()
    );
    cluster.thaw(frozen);
    let client = cluster.client().await;
    let value = text(client.get(key).await.expect("READ"));
    let want = if line == "COMMITTED" { Some("x") } else { None };
    assert_eq!(value.as_deref(), want, "the data agrees with {line:?}");
    // No transaction is left open in the shell.
    shell.expect(&format!("WRITE {key} y"), "OK").await;
    let (status, rest) = shell.finish().await;
    assert_eq!(status.success(), line == "COMMITTED", "failed only if aborted: {rest:?}");
}

/// A cluster whose nodes have a `session_requests_max` of `limit`, and a transaction that holds
/// the key `Held` exclusively.
async fn holding_a_key_with_requests_max(limit: usize) -> (Cluster, client::Transaction) {
    let config = format!("[limits]\nsession_requests_max = {limit}\n");
    let cluster = Cluster::builder().config(&config).start().await;
    let client = cluster.client().await;
    let mut holder = client.begin().await.expect("BEGIN");
    holder.get_for_update("Held").await.expect("READ FOR UPDATE");
    (cluster, holder)
}

/// A node handles at most `session_requests_max` requests of one `Session` stream at a time,
/// so a client that pipelines requests cannot make it hold an unbounded number of lock waits
/// and queued replies (found by a review, 2026-12-05): with a limit of 100, 150 READs of a
/// locked key sent at once wait 100 at a time, and all are answered once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_stream_has_at_most_its_limit_of_requests_in_flight() {
    use futures::StreamExt;
    use proto::kv::SessionRequest;
    use proto::kv::session_request::Request as Call;
    const SENT: u64 = 150;
    const IN_FLIGHT_MAX: usize = 100;
    let (cluster, holder) = holding_a_key_with_requests_max(IN_FLIGHT_MAX).await;
    let mut kv = cluster.kv_client(1).await;
    let requests = (1..=SENT).map(|id| SessionRequest {
        id,
        request: Some(Call::Read(proto::kv::ReadRequest {
            key: "Held".into(),
            ..Default::default()
        })),
    });
    let mut responses =
        kv.session(futures::stream::iter(requests)).await.expect("a session").into_inner();
    cluster
        .until_lock_waits("the stream's reads waiting", Duration::from_secs(8), |waits| {
            waits >= IN_FLIGHT_MAX
        })
        .await;
    assert_eq!(cluster.lock_waits().await, IN_FLIGHT_MAX, "no more than the limit at once");
    holder.abort().await.expect("ABORT");
    let mut answered = 0;
    while answered < SENT {
        let response = tokio::time::timeout(Duration::from_secs(10), responses.next())
            .await
            .expect("every read is answered")
            .expect("the stream goes on")
            .expect("a response");
        assert!(
            matches!(response.response, Some(proto::kv::session_response::Response::Read(_))),
            "{response:?}"
        );
        answered += 1;
    }
}

/// A client connection has at most `session_requests_max` calls in flight at a time too (HTTP/2
/// streams; tonic's default was no limit): with a limit of 100, 150 unary READs of a locked key
/// sent at once on one connection wait 100 at a time, and all are answered once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_has_at_most_its_limit_of_calls_in_flight() {
    const SENT: usize = 150;
    const IN_FLIGHT_MAX: usize = 100;
    let (cluster, holder) = holding_a_key_with_requests_max(IN_FLIGHT_MAX).await;
    // One connection (a channel's clones share it), one unary READ per task.
    let kv = cluster.kv_client(1).await;
    let reads: Vec<_> = (0..SENT)
        .map(|_| {
            let mut kv = kv.clone();
            tokio::spawn(async move {
                let read = proto::kv::ReadRequest { key: "Held".into(), ..Default::default() };
                kv.read(read).await
            })
        })
        .collect();
    cluster
        .until_lock_waits("the connection's reads waiting", Duration::from_secs(8), |waits| {
            waits >= IN_FLIGHT_MAX
        })
        .await;
    // Still the limit a moment later: hyper opens at most 100 streams (this limit) until it
    // reads the server's settings, so a count taken at once could miss the rest arriving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.lock_waits().await, IN_FLIGHT_MAX, "no more than the limit at once");
    holder.abort().await.expect("ABORT");
    for read in reads {
        let read = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("every read is answered")
            .expect("the task ran");
        assert!(read.is_ok(), "{read:?}");
    }
}

/// ABORT of a transaction that committed is refused (FAILED_PRECONDITION): an OK would say
/// nothing of it took effect. Until 2026-12-06 it answered OK (a review found it). ABORT of an
/// aborted transaction still answers OK (idempotent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_commit_is_refused_and_changes_nothing() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut kv = cluster.kv_client(1).await;
    let begun = kv.begin(proto::kv::BeginRequest::default()).await.expect("BEGIN").into_inner();
    let write = proto::kv::WriteRequest {
        txn: begun.txn,
        key: "Committed".to_string().into(),
        value: "yes".to_string().into(),
        ..Default::default()
    };
    kv.write(write).await.expect("WRITE");
    let commit = proto::kv::CommitRequest { txn: begun.txn, ..Default::default() };
    let outcome = kv.commit(commit).await.expect("END").into_inner();
    assert_eq!(outcome.outcome, proto::kv::Outcome::Committed as i32, "{outcome:?}");
    let refused = kv
        .abort(proto::kv::AbortRequest { txn: begun.txn })
        .await
        .expect_err("ABORT of a committed transaction");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("already committed"), "{refused:?}");
    assert_eq!(text(client.get("Committed").await.expect("READ")).as_deref(), Some("yes"));

    let aborted = kv.begin(proto::kv::BeginRequest::default()).await.expect("BEGIN").into_inner();
    kv.abort(proto::kv::AbortRequest { txn: aborted.txn }).await.expect("ABORT");
    kv.abort(proto::kv::AbortRequest { txn: aborted.txn }).await.expect("ABORT again");
}

/// How long a refused node's peers take at most to say so in their logs, and a cluster to form
/// once the node is started right.
const MISCONFIGURED_WITHIN: Duration = Duration::from_secs(30);

/// A node started with another `--shards` than the rest of a new cluster (so another key split)
/// is refused by the others' handshake check, and refuses them: the logs of both sides say why,
/// and no shard elects a leader with it (a replica's vote gate waits for every other replica).
/// Started again right, on an empty data directory, it joins and the cluster serves. Until
/// 2026-12-06 nothing compared the nodes' shapes: the node took part in the groups of the
/// first four shards with a split of eight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_with_another_shard_count_is_refused_by_the_others() {
    let mut cluster = Cluster::builder().held(3).spawn();
    cluster.set_node_args(3, &["--shards", "8"]);
    cluster.launch_held(3);
    let theirs = "belongs to a cluster of another shape (shards=8 nodes=1,2,3 election=";
    let ours = "belongs to a cluster of another shape (shards=4 nodes=1,2,3 election=";
    for (id, needle) in [(1, theirs), (2, theirs), (3, ours)] {
        cluster.wait_for_log(id, needle, 1, MISCONFIGURED_WITHIN).await;
    }
    let statuses = cluster.statuses().await;
    for (id, status) in &statuses {
        let status = status.as_ref().unwrap_or_else(|why| panic!("node {id}'s STATUS: {why}"));
        for (shard, replica) in &status.shards {
            assert!(replica.role != "leader", "node {id} leads s{shard}: {}", status.text);
        }
    }

    cluster.kill9(3);
    std::fs::remove_dir_all(cluster.data_dir(3)).expect("remove node 3's data directory");
    cluster.set_node_args(3, &[]);
    cluster.launch_held(3);
    cluster.wait_ready_within(MISCONFIGURED_WITHIN).await;
    let client = cluster.client().await;
    client.put("Shape", "agreed").await.expect("WRITE");
    assert_eq!(text(client.get("Shape").await.expect("READ")).as_deref(), Some("agreed"));
}

/// A node started with other election timeouts than the rest of the cluster is refused by
/// the others' handshake check, as a node of another shape is: a leader serves lease reads for
/// its `election_max_ms` after its last quorum, trusting its followers to wait as long before
/// they elect another, so nodes with shorter timeouts could elect a new leader and write while
/// a partitioned old one still served reads (found by a review, 2026-12-07). Started with the
/// cluster's timeouts, it joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_with_other_election_timeouts_is_refused_by_the_others() {
    let mut cluster = Cluster::builder().held(3).spawn();
    let file = cluster.dir().join("slow-elections.toml");
    std::fs::write(&file, "[timing]\nelection_min_ms = 2500\nelection_max_ms = 5000\n")
        .expect("write the config file");
    cluster.set_node_args(3, &["--config", &file.display().to_string()]);
    cluster.launch_held(3);
    let theirs = "another shape (shards=4 nodes=1,2,3 election=2500-5000ms)";
    for id in [1, 2] {
        cluster.wait_for_log(id, theirs, 1, MISCONFIGURED_WITHIN).await;
    }
    cluster.kill9(3);
    cluster.set_node_args(3, &[]);
    cluster.launch_held(3);
    cluster.wait_ready_within(MISCONFIGURED_WITHIN).await;
    let client = cluster.client_via(&[3]).await;
    client.put("Elections", "agreed").await.expect("WRITE");
}

/// A node of a cluster created with `--shards 2`, restarted without the flag, takes the count
/// from its data directory: before 2026-12-07 it took the default (4), and its own identity
/// check refused to start (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_shards_takes_the_count_from_the_data_directory() {
    let mut cluster = Cluster::builder().held(1).held(2).held(3).spawn();
    for id in [1, 2, 3] {
        cluster.set_node_args(id, &["--shards", "2"]);
        cluster.launch_held(id);
    }
    // (The cluster's own readiness check knows four shards.)
    let client = cluster.client().await;
    e2e::poll::eventually("the cluster to take a write", MISCONFIGURED_WITHIN, || async {
        client.put("Count", "two").await.map_err(|error| error.to_string())
    })
    .await;
    cluster.kill9(1);
    cluster.set_node_args(1, &[]);
    cluster.restart(1);
    e2e::poll::eventually("node 1 to run two shards", MISCONFIGURED_WITHIN, || async {
        match cluster.statuses().await.remove(&1) {
            Some(Ok(status)) if status.shards.len() == 2 => Ok(()),
            other => Err(format!("node 1's STATUS: {other:?}")),
        }
    })
    .await;
    assert!(!cluster.has_exited(1), "node 1 runs: {}", cluster.log_tail(1, 20));
    assert_eq!(text(client.get("Count").await.expect("READ")).as_deref(), Some("two"));
}

/// A `--peers` list that gives node 2 node 3's address, and node 3 node 2's: node 1's requests
/// reach the wrong nodes, which refuse them (before 2026-12-06 they answered, as the node they
/// are not: a quorum could count one node twice). Nodes 2 and 3 serve meanwhile; started again
/// with the right list, node 1 catches up and the cluster serves through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_reaches_the_wrong_node_is_refused() {
    let mut cluster = Cluster::builder().held(1).spawn();
    let swapped = format!("1={},2={},3={}", cluster.addr(1), cluster.addr(3), cluster.addr(2));
    cluster.set_node_args(1, &["--peers", &swapped]);
    cluster.launch_held(1);
    for (id, meant) in [(2, 3), (3, 2)] {
        let needle = format!("a request from node 1 meant for node {meant} reached node {id}");
        cluster.wait_for_log(id, &needle, 1, MISCONFIGURED_WITHIN).await;
    }
    let client = cluster.client_via(&[2, 3]).await;
    client.put("Address", "checked").await.expect("WRITE through nodes 2 and 3");

    cluster.kill9(1);
    cluster.set_node_args(1, &[]);
    cluster.restart(1);
    cluster.wait_ready_within(MISCONFIGURED_WITHIN).await;
    let client = cluster.client_via(&[1]).await;
    assert_eq!(text(client.get("Address").await.expect("READ")).as_deref(), Some("checked"));
}

/// The frames of a raw Session stream: a `SessionRequest` as prost would encode it, with the
/// request's message given encoded, and a field no `SessionRequest` can decode (its tag 3 is a
/// `ReadRequest`, not a number).
#[derive(Clone, PartialEq, prost::Message)]
struct RawFrame {
    #[prost(uint64, optional, tag = "1")]
    id: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "2")]
    begin: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    read_as_a_number: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    write: Option<Vec<u8>>,
}

/// What a client in another language may send wrong: a consistency that names none is
/// refused (INVALID_ARGUMENT; before 2026-12-06 it was taken as the node's default), and a
/// Session frame that does not decode ends the stream with the decoding error (before, it
/// ended with OK, and the client could not tell why); the stream's open transaction is then
/// aborted as at any close: the key it wrote is free at once. A request numbered 0 (the
/// node's closing word's id) ends the stream too (INVALID_ARGUMENT; before 2026-12-07 it was
/// run and answered with id 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_that_name_no_consistency_or_do_not_decode_are_refused() {
    use prost::Message;
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut kv = cluster.kv_client(1).await;
    let invalid = |status: tonic::Status| status.code() == tonic::Code::InvalidArgument;
    let begin = proto::kv::BeginRequest { read_only: true, consistency: 7, causal_token: 0 };
    assert!(kv.begin(begin).await.is_err_and(invalid), "BEGIN");
    let read = proto::kv::ReadRequest { key: "k".into(), consistency: 7, ..Default::default() };
    assert!(kv.read(read).await.is_err_and(invalid), "READ");
    let scan = proto::kv::ScanRequest { consistency: -1, ..Default::default() };
    assert!(kv.scan(scan).await.is_err_and(invalid), "SCAN");
    let mut grpc = tonic::client::Grpc::new(channel_to(&cluster).await);
    grpc.ready().await.expect("ready");
    let (frames, stream) = futures::channel::mpsc::unbounded::<RawFrame>();
    let codec = tonic_prost::ProstCodec::<RawFrame, proto::kv::SessionResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/kv.v1.Kv/Session");
    let begin = proto::kv::BeginRequest::default().encode_to_vec();
    frames
        .unbounded_send(RawFrame { id: Some(1), begin: Some(begin), ..RawFrame::default() })
        .expect("queued");
    let mut responses = grpc
        .streaming(tonic::Request::new(stream), path, codec)
        .await
        .expect("opened")
        .into_inner();
    let answer = |response: Option<proto::kv::SessionResponse>| response.and_then(|r| r.response);
    let Some(proto::kv::session_response::Response::Begin(begun)) =
        answer(e2e::within("answer to BEGIN", responses.message()).await.expect("BEGIN answered"))
    else {
        panic!("BEGIN answered with a handle");
    };
    let write = proto::kv::WriteRequest {
        txn: begun.txn,
        key: b"Frame".to_vec().into(),
        value: b"held".to_vec().into(),
        ..Default::default()
    };
    let write = write.encode_to_vec();
    frames
        .unbounded_send(RawFrame { id: Some(2), write: Some(write), ..RawFrame::default() })
        .expect("queued");
    let written =
        answer(e2e::within("answer to WRITE", responses.message()).await.expect("WRITE answered"));
    assert!(
        matches!(written, Some(proto::kv::session_response::Response::Write(_))),
        "{written:?}"
    );

    let garbage = RawFrame { id: Some(3), read_as_a_number: Some(7), ..RawFrame::default() };
    frames.unbounded_send(garbage).expect("queued");
    let end = e2e::within("end of the stream", responses.message()).await;
    assert!(
        matches!(&end, Err(status) if status.code() == tonic::Code::Internal),
        "the stream ends with the decoding error: {end:?}"
    );
    client.put("Frame", "free").await.expect("the aborted transaction's lock is gone");
    assert_eq!(text(client.get("Frame").await.expect("READ")).as_deref(), Some("free"));

    // Id 0 is the node's own (its closing word): a request with it ends the stream, unread.
    let mut grpc = tonic::client::Grpc::new(channel_to(&cluster).await);
    grpc.ready().await.expect("ready");
    let (frames, stream) = futures::channel::mpsc::unbounded::<RawFrame>();
    let codec = tonic_prost::ProstCodec::<RawFrame, proto::kv::SessionResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/kv.v1.Kv/Session");
    let write = proto::kv::WriteRequest {
        key: b"Zero".to_vec().into(),
        value: b"v".to_vec().into(),
        ..Default::default()
    };
    let zero = RawFrame { id: Some(0), write: Some(write.encode_to_vec()), ..RawFrame::default() };
    frames.unbounded_send(zero).expect("queued");
    let mut responses = grpc
        .streaming(tonic::Request::new(stream), path, codec)
        .await
        .expect("opened")
        .into_inner();
    let end = e2e::within("end of the stream", responses.message()).await;
    assert!(
        matches!(&end, Err(status) if status.code() == tonic::Code::InvalidArgument),
        "a request with id 0 ends the stream: {end:?}"
    );
    assert_eq!(client.get("Zero").await.expect("READ"), None, "the request was not run");
}

/// A plain gRPC channel to node 1.
async fn channel_to(cluster: &Cluster) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{}", cluster.addr(1)))
        .expect("an address")
        .connect()
        .await
        .expect("connect")
}
