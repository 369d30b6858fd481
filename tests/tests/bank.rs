//! Issue 3: a bank-transfer run on real processes, with a node killed with SIGKILL and
//! restarted in the middle.
//!
//! Eight accounts, two per shard, start with 100 each. Concurrent clients transfer random
//! amounts between random accounts through `client.transaction`, while an auditor reads all
//! accounts in one transaction over and over. Each transfer's outcome is recorded: committed
//! (acknowledged), not applied (aborted or never sent), or unknown (resolved afterwards through
//! `TxnStatus`; what stays unknown is a "maybe"). At the end:
//!
//! - every audit saw the total, 800, and no negative balance (snapshots are consistent);
//! - the final balances are exactly the initial ones plus every acknowledged transfer, plus a
//!   subset of the "maybe" transfers.
//!
//! Two transfers that read a common account and then both write it deadlock on their S->X
//! upgrades, and a transfer and the auditor can deadlock too: the run relies on deadlock
//! detection to keep going (a missed cycle stalls it for the 10 s lock wait timeout).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use client::Client;
use client::Error;
use client::TxnOutcome;
use e2e::Cluster;
use e2e::eventually;
use e2e::keys::shard_of;
use e2e::text;
use proto::kv::TxnHandle;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// Two accounts per shard.
const ACCOUNTS: [&str; 8] =
    ["A-acct", "C-acct", "G-acct", "P-acct", "W-acct", "b-acct", "k-acct", "t-acct"];
const INITIAL: i64 = 100;
const TOTAL: i64 = INITIAL * ACCOUNTS.len() as i64;
const CLIENTS: usize = 6;
/// Committed transfers wanted in each phase (before the kill, while a node is down, after).
const COMMITS_PER_PHASE: usize = 25;
/// How long one phase may take to reach its commits.
const PHASE_WITHIN: Duration = Duration::from_secs(60);
/// How long one transfer (with all its retries) may take before it is given up on.
const TRANSFER_WITHIN: Duration = Duration::from_secs(40);

/// A transfer from one account to another.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    from: usize,
    to: usize,
    amount: i64,
}

/// The last attempt of a transfer, as its body saw it.
#[derive(Clone, Copy, Debug, Default)]
struct LastAttempt {
    handle: Option<TxnHandle>,
    home: Option<u32>,
    /// True when the body wrote the two balances (false: not enough money, nothing written).
    wrote: bool,
}

/// What a transfer came to.
#[derive(Debug)]
enum Outcome {
    /// Acknowledged COMMITTED (`true`: it moved money; `false`: not enough money).
    Committed(bool),
    /// Certainly not applied.
    NotApplied(String),
    /// Unknown to the client; its last attempt, for `TxnStatus`.
    Unknown(LastAttempt, String),
}

fn balance(value: Option<Vec<u8>>) -> i64 {
    text(value).map_or(0, |v| v.parse().expect("a balance"))
}

async fn transfer(client: &Client, transfer: Transfer) -> Outcome {
    let last = Arc::new(Mutex::new(LastAttempt::default()));
    let slot = last.clone();
    let run = client.transaction(move |txn| {
        let slot = slot.clone();
        Box::pin(async move {
            *slot.lock().expect("slot") =
                LastAttempt { handle: txn.handle().copied(), home: None, wrote: false };
            let from = balance(txn.get(ACCOUNTS[transfer.from]).await?);
            let to = balance(txn.get(ACCOUNTS[transfer.to]).await?);
            if from < transfer.amount {
                // Not enough money: nothing moves.
                return Ok(false);
            }
            txn.put(ACCOUNTS[transfer.from], (from - transfer.amount).to_string()).await?;
            txn.put(ACCOUNTS[transfer.to], (to + transfer.amount).to_string()).await?;
            let mut slot = slot.lock().expect("slot");
            slot.home = txn.home_shard();
            slot.wrote = true;
            Ok(true)
        })
    });
    let last_attempt = || *last.lock().expect("slot");
    match tokio::time::timeout(TRANSFER_WITHIN, run).await {
        Ok(Ok(moved)) => Outcome::Committed(moved),
        Ok(Err(Error::Unknown(why))) => Outcome::Unknown(last_attempt(), why),
        // Every other error comes from an attempt that aborted or never sent END; the earlier
        // attempts all aborted (the helper retries only aborts).
        Ok(Err(error)) => Outcome::NotApplied(error.to_string()),
        Err(_) => Outcome::Unknown(last_attempt(), format!("no answer in {TRANSFER_WITHIN:?}")),
    }
}

/// Reads every account in one transaction.
async fn audit(client: &Client) -> Result<Vec<i64>, Error> {
    client
        .transaction(|txn| {
            Box::pin(async move {
                let mut balances = Vec::new();
                for account in ACCOUNTS {
                    balances.push(balance(txn.get(account).await?));
                }
                Ok(balances)
            })
        })
        .await
}

/// Every subset of `maybes` (as per-account deltas) that, added to `expected`, gives `actual`.
fn explained_by_maybes(expected: &[i64], actual: &[i64], maybes: &[Transfer]) -> bool {
    assert!(maybes.len() <= 16, "too many unknown transfers to check: {}", maybes.len());
    (0u32..1 << maybes.len()).any(|subset| {
        let mut balances = expected.to_vec();
        for (i, t) in maybes.iter().enumerate() {
            if subset & (1 << i) != 0 {
                balances[t.from] -= t.amount;
                balances[t.to] += t.amount;
            }
        }
        balances == actual
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_transfers_conserve_the_total_and_keep_every_acknowledged_transfer_across_a_kill9() {
    for (i, account) in ACCOUNTS.iter().enumerate() {
        assert_eq!(shard_of(account.as_bytes()), (i / 2) as u32, "{account}: two per shard");
    }
    let mut cluster = Cluster::start().await;
    let setup = cluster.client().await;
    for account in ACCOUNTS {
        setup.put(account, INITIAL.to_string()).await.expect("seed");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let client = cluster.client().await;
        let (stop, committed) = (stop.clone(), committed.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(worker as u64);
            let mut log: Vec<(Transfer, Outcome)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let from = rng.random_range(0..ACCOUNTS.len());
                let to = (from + rng.random_range(1..ACCOUNTS.len())) % ACCOUNTS.len();
                let t = Transfer { from, to, amount: rng.random_range(1..=20) };
                let outcome = transfer(&client, t).await;
                if matches!(outcome, Outcome::Committed(true)) {
                    committed.fetch_add(1, Ordering::SeqCst);
                }
                log.push((t, outcome));
            }
            log
        }));
    }
    let auditor = {
        let (client, stop) = (cluster.client().await, stop.clone());
        tokio::spawn(async move {
            let mut audits = 0;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(balances) = audit(&client).await {
                    assert_eq!(balances.iter().sum::<i64>(), TOTAL, "an audit: {balances:?}");
                    assert!(balances.iter().all(|b| *b >= 0), "an audit: {balances:?}");
                    audits += 1;
                }
            }
            audits
        })
    };
    let reach = |goal: usize, phase: &'static str| {
        let committed = committed.clone();
        async move {
            eventually(phase, PHASE_WITHIN, || async {
                let done = committed.load(Ordering::SeqCst);
                if done >= goal { Ok(()) } else { Err(format!("{done} of {goal} committed")) }
            })
            .await
        }
    };

    reach(COMMITS_PER_PHASE, "transfers before the kill").await;
    let victim = cluster.leader_of(1).await;
    eprintln!("killing node {victim} (leader of s1) after {:?} commits", committed);
    cluster.kill9(victim);
    reach(2 * COMMITS_PER_PHASE, "transfers while a node is down").await;
    eprintln!("restarting node {victim} after {:?} commits", committed);
    cluster.restart(victim);
    cluster.wait_ready().await;
    reach(3 * COMMITS_PER_PHASE, "transfers after the restart").await;
    stop.store(true, Ordering::SeqCst);

    let mut log = Vec::new();
    for worker in futures::future::join_all(workers).await {
        log.extend(worker.expect("a transfer worker"));
    }
    let audits = auditor.await.expect("the auditor");

    // Settle the unknown outcomes through TxnStatus.
    let checker = cluster.client().await;
    let mut expected = vec![INITIAL; ACCOUNTS.len()];
    let mut maybes = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (t, outcome) in &log {
        let applied = match outcome {
            Outcome::Committed(moved) => {
                *counts.entry("committed").or_default() += 1;
                *moved
            }
            Outcome::NotApplied(why) => {
                *counts.entry("not applied").or_default() += 1;
                eprintln!("transfer {t:?} not applied: {why}");
                false
            }
            Outcome::Unknown(last, why) => {
                let status = match last.handle {
                    None => None,
                    Some(handle) => checker.txn_status(&handle, last.home).await.ok(),
                };
                eprintln!("unknown transfer {t:?} ({why}): TxnStatus {status:?}");
                match status {
                    Some(TxnOutcome::Committed(_)) => {
                        *counts.entry("unknown, then committed").or_default() += 1;
                        last.wrote
                    }
                    Some(TxnOutcome::Aborted { .. }) => {
                        *counts.entry("unknown, then aborted").or_default() += 1;
                        false
                    }
                    None => {
                        *counts.entry("maybe").or_default() += 1;
                        maybes.push(*t);
                        false
                    }
                }
            }
        };
        if applied {
            expected[t.from] -= t.amount;
            expected[t.to] += t.amount;
        }
    }
    let actual = eventually("a final audit", Duration::from_secs(30), || async {
        audit(&checker).await.map_err(|e| e.to_string())
    })
    .await;
    eprintln!("transfers: {counts:?}; audits: {audits}; final balances {actual:?}");
    assert!(audits > 0, "the auditor completed an audit during the run");
    assert_eq!(actual.iter().sum::<i64>(), TOTAL, "the total is conserved: {actual:?}");
    assert!(actual.iter().all(|b| *b >= 0), "no account is overdrawn: {actual:?}");
    assert!(
        explained_by_maybes(&expected, &actual, &maybes),
        "the final balances {actual:?} are not the acknowledged ledger {expected:?} plus any \
         subset of the unknown transfers {maybes:?}"
    );

    // Every node killed at once right after the run (phase 2 of the last commits may still be
    // under way): after the restart, the same balances.
    cluster.stop_all();
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.wait_ready().await;
    let restarted = cluster.client().await;
    let again = eventually("an audit after the restart", Duration::from_secs(30), || async {
        audit(&restarted).await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(again, actual, "the balances after kill -9 of every node and a restart");
}
