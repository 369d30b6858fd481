//! The simulated clients: list-append transactions (Elle-style, recorded in the history) and
//! bank transfers (a conserved total), mixing one-statement reads, single-shard and cross-shard
//! transactions; keys locked in random orders and read before being written provoke deadlocks
//! (two readers upgrading) on purpose. Half the transactions send their writes with END (locked
//! by the prepares); half the transfers read their accounts for update (exclusive locks).
//! A quarter of the list-append reads are SCANs of a range around the key ([`scan_range`]): a
//! range lock, and a read of the key's row or of its absence, under the same checks. A scan
//! whose range holds no other list key, or that reads again a key the transaction touched,
//! starts at the key with a LIMIT of 1 to 3 ([`limited_scan`]): it stops early, and its
//! participant narrows its range lock to what it read (`Shard::narrow_scan`), so the checks
//! cover narrowed locks too.
//! During the faults, a share of the list-append clients' operations are writes and READs of two
//! registers outside interactive transactions ([`register_op`], checked by `check::register`):
//! the paths of `kvsh`'s and `kvbench put`'s one-statement WRITEs and of `kvbench txn2`'s
//! Commits without a handle, which the list-append transactions never take, and DELETEs (MVCC
//! tombstones, read as no value); causal clients' reads of them are causal snapshots. Every other sequential client, and half the register
//! operations, route to any node (`client::Routing::AnyNode`), so that nodes forward them.
//!
//! Recording rules (TESTING.md §1.2): the invoke is recorded before BEGIN; `ok` only after
//! COMMITTED, with the lists read; `fail` only when the transaction certainly did not commit
//! (aborted, or END never sent); `info` when the commit's outcome stayed unknown even after the
//! client library asked TxnStatus; the client then continues as a new process. An append is a
//! read of the key's list and a write of the list with the element added, so the read it took
//! from the node is recorded before the append: without it, "the appender of an element read the
//! list up to the element before" would be a read-from edge the causal checks never see (a
//! snapshot that has the append but misses what the appender had read would pass; found by a
//! review, 2026-12-06).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use check::history::MicroOp;
use client::Client;
use client::Consistency;
use client::Error;
use client::Mutation;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::plan::CAUSAL_READ_BOUND;
use crate::plan::LIVENESS_TXNS;
use crate::sim::net::SimConnector;
use crate::world::ALNUM;
use crate::world::Phase;
use crate::world::Shared;
use crate::world::Unknown;
use crate::world::now_ns;

/// The deadline of one client request (above the simulated nodes' lock wait).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bank accounts.
pub const ACCOUNTS: usize = 8;
/// Each account's opening balance.
pub const OPENING_BALANCE: i64 = 100;
/// The share of list-append reads done by a SCAN of a range around the key (the key's row, or
/// its absence, is the read; [`scan_range`]).
pub const SCAN_SHARE: f64 = 0.25;
/// Registers written and read by one-statement operations.
pub const REGISTERS: usize = 2;
/// The share of a sequential list-append client's operations, during the faults, that are
/// register operations.
pub const REGISTER_SHARE: f64 = 0.3;
/// The share of register writes that are deletes (the next reads return no value).
pub const DELETE_SHARE: f64 = 0.2;

/// How a transaction ended, for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// COMMITTED.
    Committed,
    /// Certainly not committed.
    Failed,
    /// Unknown.
    Unknown,
}

/// The name of bank account `i` (first characters spread over shards).
pub fn account(i: usize) -> String {
    format!("{}acct{i}", ALNUM[(i * 19 + 5) % ALNUM.len()] as char)
}

/// The name of register `i` (first characters spread over shards; no list-append key has
/// letters after its first character).
pub fn register(i: usize) -> String {
    format!("{}reg{i}", ALNUM[(i * 23 + 11) % ALNUM.len()] as char)
}

/// The range a read of `key` scans instead, when it does: every key whose first character is
/// `key`'s or one of the next two bytes, so the scan takes a range lock over other keys (list
/// keys, bank accounts, registers), finds some absent, and sometimes crosses a shard boundary.
pub fn scan_range(key: &str) -> (Vec<u8>, Vec<u8>) {
    let first = key.as_bytes()[0];
    (vec![first], vec![first + 3])
}

/// A SCAN for `key` that starts at it with a LIMIT, so that it usually stops before the end of
/// [`scan_range`]: its first row is `key`'s if the key exists. The limit (1 to 3) is chosen by
/// the invocation's index, so no rng draw changes.
async fn limited_scan(
    txn: &mut client::Transaction,
    key: &str,
    invoke: u64,
) -> Result<(Vec<i64>, Vec<MicroOp>), ReadError> {
    let (_, to) = scan_range(key);
    let from = key.as_bytes().to_vec();
    let limit = Some(1 + (invoke % 3) as u32);
    scan_lists_of(txn.scan(&from, &to, limit).await, key, &[], (&from, &to))
}

/// What went wrong with a list-append read: the statement failed (the transaction aborts), or
/// the node answered something no correct node would (a finding of the run).
enum ReadError {
    /// The statement failed.
    Failed(String),
    /// The answer is malformed: not a list, or scan rows out of order or out of range.
    Malformed(String),
}

/// A scan's rows: key, value.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Checks a scan's rows of `[from, to)` (for `key`'s read): they must be in strictly ascending
/// key order and inside the range, or the node that answered is wrong whatever the history
/// says.
fn check_rows(rows: &Rows, key: &str, (from, to): (&[u8], &[u8])) -> Result<(), ReadError> {
    let outside = rows.iter().find(|(k, _)| k.as_slice() < from || k.as_slice() >= to);
    if let Some((k, _)) = outside {
        let k = String::from_utf8_lossy(k);
        return Err(ReadError::Malformed(format!(
            "a scan for {key} returned row {k} outside its range"
        )));
    }
    if rows.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err(ReadError::Malformed(format!(
            "a scan for {key} returned rows out of order or twice"
        )));
    }
    Ok(())
}

/// The list of `key` among checked scan rows (empty when the scan found no such row).
fn row_of(rows: &Rows, key: &str) -> Result<Vec<i64>, ReadError> {
    let value = rows.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v.clone());
    decode_list(value).map_err(ReadError::Malformed)
}

/// A point read's list.
fn list_of(value: Result<Option<Vec<u8>>, Error>) -> Result<Vec<i64>, ReadError> {
    decode_list(value.map_err(|e| ReadError::Failed(e.to_string()))?).map_err(ReadError::Malformed)
}

/// A scan's list of `key`, and the reads of `others` (other list keys in its range) that its
/// rows answer, in that order.
fn scan_lists_of(
    rows: Result<Rows, Error>,
    key: &str,
    others: &[String],
    range: (&[u8], &[u8]),
) -> Result<(Vec<i64>, Vec<MicroOp>), ReadError> {
    let rows = rows.map_err(|e| ReadError::Failed(e.to_string()))?;
    check_rows(&rows, key, range)?;
    let mut reads = Vec::with_capacity(others.len());
    for other in others {
        reads.push(MicroOp::read_result(other.as_str(), row_of(&rows, other)?));
    }
    Ok((row_of(&rows, key)?, reads))
}

/// How a transaction's reads run: `scans[i]` is `Some(others)` when op `i`'s first touch of
/// its key is a SCAN, whose rows of the other list keys `others` are recorded as reads too.
struct ReadPlan {
    scans: Vec<Option<Vec<String>>>,
}

impl ReadPlan {
    /// The micro-ops as recorded: each of `ops` (the ones planned), preceded by the read of its
    /// key when it is an append to a key the transaction has not touched before (the append
    /// writes the list it read), then the reads of its scan's other keys.
    fn recorded(&self, ops: &[MicroOp]) -> Vec<MicroOp> {
        let mut recorded = Vec::with_capacity(ops.len());
        let mut touched = BTreeSet::new();
        for (op, scan) in ops.iter().zip(&self.scans) {
            if touched.insert(op.key().as_str()) && op.is_append() {
                recorded.push(MicroOp::read(op.key().as_str()));
            }
            recorded.push(op.clone());
            for other in scan.iter().flatten() {
                recorded.push(MicroOp::read(other.as_str()));
            }
        }
        recorded
    }
}

/// Chooses which first touches of a key read by SCAN ([`SCAN_SHARE`] of them), and the other
/// list keys (of `keys`, every one ever used) whose rows each scan's answer is recorded for:
/// so a scan is checked on every list key of its range, not only the one it was for (a
/// phantom, a row missing or stale, on a neighbour; before 2026-12-06 only that one was
/// recorded, found by a review of the checker), and the keys not made yet whose names are
/// next (`World::upcoming_keys`). Left out: a key the transaction appended to earlier with END
/// (the append is not at the node yet, so the scan rightly misses it).
fn plan_reads(
    keys: &BTreeSet<String>,
    ops: &[MicroOp],
    with_end: bool,
    rng: &mut SmallRng,
) -> ReadPlan {
    let mut touched = BTreeSet::new();
    let mut deferred = BTreeSet::new();
    let mut scans = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.key().as_str();
        let first = touched.insert(key);
        let scan = first && rng.random_bool(SCAN_SHARE);
        scans.push(scan.then(|| {
            let (from, to) = scan_range(key);
            keys.iter()
                .filter(|k| k.as_bytes() >= from.as_slice() && k.as_bytes() < to.as_slice())
                .filter(|k| k.as_str() != key && !deferred.contains(k.as_str()))
                .cloned()
                .collect()
        }));
        if with_end && op.is_append() {
            deferred.insert(key);
        }
    }
    ReadPlan { scans }
}

fn encode_list(list: &[i64]) -> String {
    list.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// A list-append value: comma-separated integers (no value: the empty list).
pub fn decode_list(value: Option<Vec<u8>>) -> Result<Vec<i64>, String> {
    let Some(bytes) = value else { return Ok(Vec::new()) };
    let text = String::from_utf8(bytes).map_err(|e| format!("list value is not UTF-8: {e}"))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|n| n.parse().map_err(|e| format!("bad list element {n:?}: {e}"))).collect()
}

fn note_abort(world: &Shared, error: &Error) {
    let reason = error.abort_reason().unwrap_or("ERROR").to_string();
    *world.borrow_mut().stats.aborted.entry(reason).or_default() += 1;
}

/// Runs one list-append transaction of the micro-ops `ops` (`World::generate`) and records
/// it. In a causal session (`causal`), a transaction that only reads runs as a snapshot read
/// (one statement, or BEGIN READ ONLY); everything else takes locks.
async fn append_txn(
    world: &Shared,
    client: &Client,
    rng: &mut SmallRng,
    process: u64,
    causal: bool,
    ops: Vec<MicroOp>,
) -> Ended {
    let read_only = ops.iter().all(|op| !op.is_append());
    let locking = !(causal && read_only);
    // A lone read runs as a one-statement read half of the time (always, in a causal session).
    let one_statement = ops.len() == 1 && read_only && (causal || rng.random_bool(0.5));
    // Half the transactions send their appends with END (their locks then taken by the
    // prepares, inside END), the others as WRITE statements.
    let with_end = !one_statement && rng.random_bool(0.5);
    let keys = {
        let world = world.borrow();
        let mut keys = world.keys.clone();
        keys.extend(world.upcoming_keys());
        keys
    };
    let plan = plan_reads(&keys, &ops, with_end, rng);
    let invoke =
        world.borrow_mut().histories.invoke(process, now_ns(), plan.recorded(&ops), locking);
    if one_statement {
        let key = ops[0].key().as_str().to_string();
        let result = match plan.scans[0].as_ref() {
            Some(others) => {
                let (from, to) = scan_range(&key);
                scan_lists_of(client.scan(&from, &to, None).await, &key, others, (&from, &to))
            }
            None => list_of(client.get(&key).await).map(|list| (list, Vec::new())),
        };
        let mut w = world.borrow_mut();
        if let Err(ReadError::Malformed(what)) = &result {
            w.problems.push(format!("T{invoke}: {what}"));
        }
        return match result {
            Ok((list, others)) => {
                let mut done = vec![MicroOp::read_result(key.as_str(), list)];
                done.extend(others);
                w.histories.ok(process, now_ns(), done, locking);
                w.stats.committed += 1;
                Ended::Committed
            }
            Err(_) => {
                w.histories.fail(process, now_ns(), locking);
                Ended::Failed
            }
        };
    }
    // Every other locking transaction begins near its first key (`Client::begin_near`): its
    // first READ then carries the BEGIN, a path of its own to check (docs/transactions.md).
    // Chosen by the invocation's index, not the rng, so the rest of the run draws the same.
    let near = locking && invoke.is_multiple_of(2);
    let begun = match (locking, near) {
        (true, true) => client.begin_near(ops[0].key().as_str()).await,
        (true, false) => client.begin().await,
        (false, _) => client.begin_read_only().await,
    };
    let mut txn = match begun {
        Ok(txn) => txn,
        Err(error) => {
            note_abort(world, &error);
            world.borrow_mut().histories.fail(process, now_ns(), locking);
            return Ended::Failed;
        }
    };
    let mut deferred: Vec<Mutation> = Vec::new();
    let mut known: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    // A third of the transactions that write with statements read a key they already touched
    // again from the node (a READ or a SCAN, alternately), which then answers from the
    // transaction's own buffered writes: what it answers is recorded, so the checker sees a
    // read that misses the transaction's own append (canary `read-skips-own-write`). The
    // others take what they know. Transactions writing with END always do: their appends are
    // not at the node before END. Chosen by the invocation's index, so no rng draw changes.
    // A key the transaction has only read is always read again from the node (its shared
    // lock must keep the value), and what that read answers is recorded: before 2026-12-07
    // what the transaction knew was recorded, as if a node had answered it, and a
    // non-repeatable read was invisible (found by a review of the harness). A read of a key
    // it appended to is taken from what it knows, unless `reread` (see above).
    let reread = !with_end && invoke % 3 == 1;
    let mut appended: BTreeSet<String> = BTreeSet::new();
    let mut done = Vec::with_capacity(ops.len());
    for (op, scan) in ops.iter().zip(&plan.scans) {
        let key = op.key().as_str().to_string();
        let no_others = |list| (list, Vec::new());
        let from_memory = appended.contains(&key) && !reread;
        let current = match (known.get(&key), scan) {
            (Some(list), _) if from_memory => Ok(no_others(list.clone())),
            (Some(_), _) if done.len() % 2 == 1 => limited_scan(&mut txn, &key, invoke).await,
            (Some(_), _) => list_of(txn.get(&key).await).map(no_others),
            (None, Some(others)) if others.is_empty() => limited_scan(&mut txn, &key, invoke).await,
            (None, Some(others)) => {
                let (from, to) = scan_range(&key);
                scan_lists_of(txn.scan(&from, &to, None).await, &key, others, (&from, &to))
            }
            (None, None) => list_of(txn.get(&key).await).map(no_others),
        };
        // An append to a key first touched here records the read it wrote on (the append
        // depends on it, and the causal checks need that read-from edge; [`ReadPlan::recorded`]).
        let first_touch = !known.contains_key(&key);
        let (mut list, others) = match current {
            Ok(read) => read,
            Err(error) => {
                match error {
                    ReadError::Failed(error) => tracing::debug!(%error, "statement failed"),
                    ReadError::Malformed(what) => {
                        world.borrow_mut().problems.push(format!("T{invoke}: {what}"));
                    }
                }
                if let Some(abort) = txn.abort_error().cloned() {
                    note_abort(world, &abort);
                }
                let _ = txn.abort().await;
                world.borrow_mut().histories.fail_after(process, now_ns(), locking, done);
                return Ended::Failed;
            }
        };
        if first_touch || matches!(op, MicroOp::Read { .. }) {
            done.push(MicroOp::read_result(key.as_str(), list.clone()));
        }
        match op {
            MicroOp::Read { .. } => {}
            MicroOp::Append { value, .. } if with_end => {
                appended.insert(key.clone());
                list.push(*value);
                deferred.push(Mutation::put(&key, encode_list(&list)));
                done.push(op.clone());
            }
            MicroOp::Append { value, .. } => {
                appended.insert(key.clone());
                list.push(*value);
                if let Err(error) = txn.put(&key, encode_list(&list)).await {
                    note_abort(world, &error);
                    let _ = txn.abort().await;
                    world.borrow_mut().histories.fail_after(process, now_ns(), locking, done);
                    return Ended::Failed;
                }
                done.push(op.clone());
            }
        }
        done.extend(others);
        known.insert(key, list);
    }
    // The first op always reads (nothing is known yet), so every transaction here is begun.
    let handle = *txn.handle().expect("a transaction that ran a statement has a handle");
    let home = txn.home_shard();
    let first_key = deferred.first().map(|write| write.key.clone());
    match txn.commit_with(deferred).await {
        Ok(_) => {
            let mut w = world.borrow_mut();
            w.histories.ok(process, now_ns(), done, locking);
            w.stats.committed += 1;
            Ended::Committed
        }
        Err(Error::Unknown(_)) => {
            let mut w = world.borrow_mut();
            w.histories.info_after(process, now_ns(), locking, done);
            w.unknown.push(Unknown { index: invoke, handle, home, first_key });
            w.stats.unknown += 1;
            Ended::Unknown
        }
        Err(error) => {
            note_abort(world, &error);
            world.borrow_mut().histories.fail_after(process, now_ns(), locking, done);
            Ended::Failed
        }
    }
}

/// One-statement operations on a random register, recorded in the register history: half the
/// time a write of a value no other write uses ([`register_write`]) followed by a READ of the
/// register, else a READ alone (sequential: through the leader). The worker sends half of them
/// through a session that routes to any node, so that the node receiving a one-statement
/// operation forwards it to the leader by a call that can be resent or delivered twice. A
/// write followed at once by reads makes closely spaced writes and reads of each register,
/// where a write applied twice (a late copy of a resent WRITE after a newer write) shows as a
/// stale read (canary `single-id-per-delivery`).
///
/// Counted in the register history's summary, not in the transaction counts. Recording: a
/// write is `ok` once acknowledged, `fail` when the client was told it certainly did not
/// apply (ABORTED, refused as invalid, or not sent: [`Error::Unavailable`]'s contract), `info`
/// when its outcome is unknown; a read is `ok` with its value, else `fail`.
pub async fn register_op(
    world: &Shared,
    client: &Client,
    rng: &mut SmallRng,
    process: u64,
) -> Ended {
    let key = register(rng.random_range(0..REGISTERS));
    if rng.random_bool(0.5) {
        let written = register_write(world, client, rng, &key, process).await;
        if written == Ended::Unknown {
            return written;
        }
    }
    register_read(world, client, &key, process).await
}

/// Writes a fresh value to `key`, or deletes it ([`DELETE_SHARE`] of the time): two times in
/// three a one-statement WRITE or DELETE (`Client::put`, `Client::delete`), else a Commit
/// without a handle (`Client::commit_writes`, the path of `kvbench txn2`) of the same to `key`
/// alone or, half the time, to every register at once (a transaction across shards).
async fn register_write(
    world: &Shared,
    client: &Client,
    rng: &mut SmallRng,
    key: &str,
    process: u64,
) -> Ended {
    let delete = rng.random_bool(DELETE_SHARE);
    let value = if delete { None } else { Some(world.borrow_mut().register_value()) };
    let as_commit = rng.random_bool(1.0 / 3.0);
    let keys = if as_commit && rng.random_bool(0.5) {
        (0..REGISTERS).map(register).collect()
    } else {
        vec![key.to_string()]
    };
    let indexes: Vec<usize> = keys
        .iter()
        .map(|key| {
            let history = &mut world.borrow_mut().registers;
            match &value {
                Some(value) => history.invoke_write(process, key, value, now_ns()),
                None => history.invoke_delete(process, key, now_ns()),
            }
        })
        .collect();
    let result = match (as_commit, &value) {
        (true, _) => {
            let mutation = |key: &String| match &value {
                Some(value) => Mutation::put(key, value),
                None => Mutation::delete(key),
            };
            client.commit_writes(keys.iter().map(mutation).collect()).await.map(|_| ())
        }
        (false, Some(value)) => client.put(key, value).await,
        (false, None) => client.delete(key).await,
    };
    let ended = match result {
        Ok(()) => Ended::Committed,
        Err(Error::Unknown(_)) => Ended::Unknown,
        Err(_) => Ended::Failed,
    };
    let history = &mut world.borrow_mut().registers;
    for index in indexes {
        match ended {
            Ended::Committed => history.ok(index, None, now_ns()),
            Ended::Unknown => history.info(index, now_ns()),
            Ended::Failed => history.fail(index, now_ns()),
        }
    }
    ended
}

/// Reads `key` as `process` and records the read (a causal one if the session is causal):
/// `Committed` if it returned (a value or none), else `Failed`.
pub async fn register_read(world: &Shared, client: &Client, key: &str, process: u64) -> Ended {
    let causal = client.consistency() == Consistency::Causal;
    let index = world.borrow_mut().registers.invoke_read(process, key, causal, now_ns());
    let result = client.get(key).await;
    let registers = &mut world.borrow_mut().registers;
    match result {
        Ok(value) => {
            let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
            registers.ok(index, value.as_deref(), now_ns());
            Ended::Committed
        }
        Err(_) => {
            registers.fail(index, now_ns());
            Ended::Failed
        }
    }
}

/// Funds the bank accounts (once, before any transfer).
pub async fn fund_accounts(world: &Shared, client: &Client) {
    for _ in 0..200 {
        let funded = client
            .transaction(|txn| {
                Box::pin(async move {
                    for i in 0..ACCOUNTS {
                        txn.put(account(i), OPENING_BALANCE.to_string()).await?;
                    }
                    Ok(())
                })
            })
            .await;
        match funded {
            Ok(()) => {
                world.borrow_mut().bank_ready = true;
                return;
            }
            Err(error) => tracing::debug!(%error, "funding the accounts failed, retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.borrow_mut().problems.push("the bank accounts could never be funded".into());
}

fn parse_balance(value: Option<Vec<u8>>) -> i64 {
    value.and_then(|v| String::from_utf8(v).ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One transfer between two random accounts (never below zero).
pub async fn transfer(world: &Shared, client: &Client, rng: &mut SmallRng) -> Ended {
    let from = rng.random_range(0..ACCOUNTS);
    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
    let amount = rng.random_range(1..=5);
    let with_end = rng.random_bool(0.5);
    let for_update = rng.random_bool(0.5);
    let Ok(mut txn) = client.begin().await else { return Ended::Failed };
    let body = async {
        let (a, b) = if for_update {
            (txn.get_for_update(account(from)).await?, txn.get_for_update(account(to)).await?)
        } else {
            (txn.get(account(from)).await?, txn.get(account(to)).await?)
        };
        let (a, b) = (parse_balance(a), parse_balance(b));
        let mut writes = Vec::new();
        if a >= amount {
            writes.push(Mutation::put(account(from), (a - amount).to_string()));
            writes.push(Mutation::put(account(to), (b + amount).to_string()));
        }
        if !with_end {
            for write in writes.drain(..) {
                txn.put(&write.key, write.value.unwrap_or_default()).await?;
            }
        }
        Ok::<Vec<Mutation>, Error>(writes)
    }
    .await;
    let writes = match body {
        Ok(writes) => writes,
        Err(error) => {
            note_abort(world, &error);
            let _ = txn.abort().await;
            return Ended::Failed;
        }
    };
    match txn.commit_with(writes).await {
        Ok(_) => {
            world.borrow_mut().stats.committed += 1;
            Ended::Committed
        }
        Err(Error::Unknown(_)) => {
            world.borrow_mut().stats.unknown += 1;
            Ended::Unknown
        }
        Err(error) => {
            note_abort(world, &error);
            Ended::Failed
        }
    }
}

/// Reads every account in one READ ONLY transaction; a committed audit must see the total.
pub async fn audit(world: &Shared, client: &Client) -> Ended {
    let Ok(mut txn) = client.begin_read_only().await else { return Ended::Failed };
    let mut balances = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        match txn.get(account(i)).await {
            Ok(value) => balances.push(parse_balance(value)),
            Err(_) => {
                let _ = txn.abort().await;
                return Ended::Failed;
            }
        }
    }
    match txn.commit().await {
        Ok(_) => {
            let total: i64 = balances.iter().sum();
            let mut w = world.borrow_mut();
            w.stats.committed += 1;
            if total != OPENING_BALANCE * ACCOUNTS as i64 || balances.iter().any(|b| *b < 0) {
                w.problems.push(format!("bank audit saw balances {balances:?} (total {total})"));
            }
            Ended::Committed
        }
        Err(_) => Ended::Failed,
    }
}

/// The finding of a causal client's snapshot read after healing that took `took`, over
/// [`CAUSAL_READ_BOUND`] (`running`: and has not completed yet). The worker reports a read that
/// completed late, the run one still running when the liveness phase ends; the canary
/// `close-to-the-millisecond` is caught by either.
pub fn slow_causal_read(client: usize, took: Duration, running: bool) -> String {
    let still = if running { " and still runs" } else { "" };
    format!(
        "liveness: client {client}'s snapshot read after healing took {took:?}{still} (bound \
         {CAUSAL_READ_BOUND:?})"
    )
}

/// A client process: runs transactions until the final phase; after healing it must commit
/// [`LIVENESS_TXNS`] transactions, then waits. A causal one must then also complete a snapshot
/// read at its token: its commits alone could all be locking ones, served by leaders, and a
/// replica whose closed timestamps stopped short of the session's writes (a clock reset by the
/// healing after running ahead) would fail every causal read unseen (a review's finding,
/// 2026-12-06).
pub async fn worker(
    world: Shared,
    id: usize,
    addrs: Vec<String>,
    seed: u64,
    banker: bool,
    causal: bool,
) -> turmoil::Result {
    let client =
        Client::connect_options(&addrs, Arc::new(SimConnector), seed, CLIENT_TIMEOUT).await?;
    if causal {
        client.set_consistency(Consistency::Causal);
    }
    // Every other sequential list-append client sends its requests to any node, as a client
    // through the `.proto` without a shard map does: its one-statement operations and
    // transactions are then forwarded between nodes (where calls may be resent, or delivered
    // twice under `--duplicate-calls`) instead of arriving at their leader.
    if !banker && !causal && id % 2 == 1 {
        client.set_routing(client::Routing::AnyNode);
    }
    // Half the register operations go through any node whatever the client's routing, so that
    // one-statement writes are forwarded often (`register_op`).
    let forwarding = client.session();
    forwarding.set_routing(client::Routing::AnyNode);
    let mut rng = SmallRng::seed_from_u64(seed);
    // The client's processes are one session: it keeps its causal token across them.
    let session = id as u64;
    let mut process = world.borrow_mut().new_process_of(session);
    if banker && id == 0 {
        fund_accounts(&world, &client).await;
    }
    let mut live_commits = 0;
    let mut live_reads = 0;
    loop {
        let phase = world.borrow().phase;
        let reads_due = causal && !banker && live_commits >= LIVENESS_TXNS;
        match phase {
            Phase::Final | Phase::Done => break,
            Phase::Liveness if live_commits >= LIVENESS_TXNS && (!reads_due || live_reads > 0) => {
                world.borrow_mut().live_clients.insert(id);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            _ => {}
        }
        // Whether the operation writes: only commits that write count for liveness (a
        // cluster that could commit only reads after healing passed; found by a review of the
        // harness, 2026-12-07).
        let mut writes = true;
        let ended = if banker && world.borrow().bank_ready {
            if rng.random_bool(0.8) {
                transfer(&world, &client, &mut rng).await
            } else {
                writes = false;
                audit(&world, &client).await
            }
        } else if !banker && phase == Phase::Safety && rng.random_bool(REGISTER_SHARE) {
            // A causal session keeps its own (its token, and its causal reads).
            let via = if !causal && rng.random_bool(0.5) { &forwarding } else { &client };
            register_op(&world, via, &mut rng, process).await
        } else if phase == Phase::Liveness && reads_due {
            // Reads only: in a causal session, a snapshot read at or above its token.
            world
                .borrow_mut()
                .causal_reads_pending
                .entry(id)
                .or_insert_with(|| turmoil::sim_elapsed().unwrap_or_default());
            let ops = world.borrow_mut().generate_reads(&mut rng);
            append_txn(&world, &client, &mut rng, process, causal, ops).await
        } else {
            let ops = world.borrow_mut().generate(&mut rng);
            writes = ops.iter().any(MicroOp::is_append);
            append_txn(&world, &client, &mut rng, process, causal, ops).await
        };
        match ended {
            Ended::Committed if phase == Phase::Liveness && reads_due => {
                live_reads += 1;
                let since = world.borrow_mut().causal_reads_pending.remove(&id);
                let took = turmoil::sim_elapsed().unwrap_or_default() - since.unwrap_or_default();
                if took > CAUSAL_READ_BOUND {
                    world.borrow_mut().problems.push(slow_causal_read(id, took, false));
                }
            }
            Ended::Committed if phase == Phase::Liveness && writes => live_commits += 1,
            // A banker's list-append transactions (before the bank is funded) share the
            // history too (a banker kept its process after an unknown outcome, and the
            // recorder refused its next transaction; found by a review of the harness).
            Ended::Unknown => process = world.borrow_mut().new_process_of(session),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
    }
    Ok(())
}
