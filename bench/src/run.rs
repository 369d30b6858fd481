//! The command line and a whole run: shard map, preload, sessions, workers, final checks.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::bail;
use client::Client;
use client::Consistency;

use crate::keys;
use crate::keys::Splits;
use crate::progress::Progress;
use crate::stats::BankCheck;
use crate::stats::DeadlockCounters;
use crate::stats::Live;
use crate::stats::Report;
use crate::stats::Tally;
use crate::workload;
use crate::workload::Shared;
use crate::workload::Workload;

/// Read workloads preload (and then draw from) at most this many keys, as the peer tool does.
pub const PRELOAD_KEYS_MAX: u64 = 2000;
/// Default key space (the peer tool's).
pub const DEFAULT_KEYS: u64 = 10_000;
/// Default number of `bank` accounts.
pub const DEFAULT_ACCOUNTS: u64 = 8;
/// Preload writes in flight.
const PRELOAD_PARALLEL: u64 = 32;

/// The session consistency asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsistencyArg {
    /// Reads through leaders under locks (strictly serializable).
    Sequential,
    /// Read-only work at a causally safe snapshot on any replica.
    Causal,
}

/// The kvbench command line.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "kvbench",
    version,
    about = "Closed-loop load generator for kvd: N sessions, each one operation at a time, for a \
             fixed time; reports throughput and latency percentiles"
)]
pub struct Args {
    /// Node addresses, HOST:PORT[,HOST:PORT...].
    #[arg(long, default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003")]
    pub connect: String,
    /// What each session does in a loop.
    #[arg(long, value_enum, default_value_t = Workload::Put)]
    pub workload: Workload,
    /// Concurrent sessions (for `deadlock`: two per pair).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Connection sets the sessions share (each set: one connection per node). Default: one
    /// per session, as the peer tool gives each of its clients its own connection; fewer makes
    /// sessions with `Client::session` over shared connections, as one application would.
    #[arg(long)]
    pub conns: Option<usize>,
    /// Length of the measuring window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Key space (default 10000; `get`, `txn2`, `rmw` use at most 2000 preloaded keys; for
    /// `bank` the number of accounts, default 8; unused by `deadlock`).
    #[arg(long)]
    pub keys: Option<u64>,
    /// Size of written values, in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// The sessions' consistency (default: the servers').
    #[arg(long, value_enum)]
    pub consistency: Option<ConsistencyArg>,
    /// How `txn2`, `rmw` and `bank` send their writes: as a transaction of their own when
    /// nothing is read first (`txn2`: `Client::commit_writes`, no BEGIN, one round trip as
    /// etcd's `Txn`; `rmw` and `bank` then send them with END), with END after BEGIN
    /// (`Transaction::commit_with`), or one WRITE statement each (a round trip each).
    #[arg(long, value_enum, default_value_t = WritesArg::OneShot)]
    pub writes: WritesArg,
    /// How `rmw` and `bank` read the keys they then write: under an exclusive lock
    /// (`Transaction::get_for_update`, SQL's SELECT ... FOR UPDATE) or a shared one, upgraded
    /// when written (two transactions that read one key then deadlock when both upgrade).
    #[arg(long, value_enum, default_value_t = ReadsArg::ForUpdate)]
    pub reads: ReadsArg,
    /// Where `txn2 --writes with-end`, `rmw` and `bank` begin their transactions: at the
    /// leader of the first key's shard (`Client::begin_near`, so that its statements there and
    /// its commit at home stay on one node) or at any node, in turn (`Client::begin`).
    #[arg(long, value_enum, default_value_t = BeginArg::Near)]
    pub begin: BeginArg,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// How transaction workloads send their writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WritesArg {
    /// Without BEGIN when the body reads nothing (a Commit without a handle), else with END.
    OneShot,
    /// All of them with END.
    WithEnd,
    /// One WRITE statement each.
    Statements,
}

/// Where transactions begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BeginArg {
    /// At the leader of the first key's shard.
    Near,
    /// At any node, in turn.
    Any,
}

/// How `rmw` and `bank` read the keys they write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadsArg {
    /// Exclusive locks at the read.
    ForUpdate,
    /// Shared locks, upgraded at the write.
    Shared,
}

impl ReadsArg {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ReadsArg::ForUpdate => "for-update",
            ReadsArg::Shared => "shared",
        }
    }
}

impl WritesArg {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WritesArg::OneShot => "one-shot",
            WritesArg::WithEnd => "with-end",
            WritesArg::Statements => "statements",
        }
    }
}

impl Args {
    /// The node addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.connect.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect()
    }

    /// The key space the workers draw from.
    pub fn key_space(&self) -> u64 {
        match self.workload {
            Workload::Put => self.keys.unwrap_or(DEFAULT_KEYS),
            Workload::Get | Workload::Txn2 | Workload::Rmw => {
                self.keys.unwrap_or(DEFAULT_KEYS).min(PRELOAD_KEYS_MAX)
            }
            Workload::Bank => self.keys.unwrap_or(DEFAULT_ACCOUNTS),
            Workload::Deadlock => 2 * (self.clients / 2) as u64,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.addrs().is_empty() {
            bail!("--connect needs at least one HOST:PORT");
        }
        for addr in self.addrs() {
            let port =
                addr.rsplit_once(':').map(|(host, port)| (host.is_empty(), port.parse::<u16>()));
            if !matches!(port, Some((false, Ok(port))) if port > 0) {
                bail!("--connect: {addr:?} is not HOST:PORT");
            }
        }
        if !(self.secs.is_finite() && self.secs > 0.0 && self.secs <= SECS_MAX) {
            bail!("--secs must be a positive number of seconds, at most {SECS_MAX}");
        }
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            bail!("--clients must be between 1 and {CLIENTS_MAX}");
        }
        if self.value_size > VALUE_SIZE_MAX {
            bail!("--value-size must be at most {VALUE_SIZE_MAX} bytes");
        }
        if (self.clients as u64).saturating_mul(self.value_size as u64) > IN_FLIGHT_VALUE_BYTES_MAX
        {
            bail!(
                "--clients times --value-size must be at most {IN_FLIGHT_VALUE_BYTES_MAX} bytes \
                 (every session holds its value in flight)"
            );
        }
        if self.workload == Workload::Bank && self.key_space() > ACCOUNTS_MAX {
            bail!("--keys must be at most {ACCOUNTS_MAX} accounts for bank");
        }
        if self.conns.is_some_and(|conns| conns == 0 || conns > self.clients) {
            bail!("--conns must be between 1 and --clients");
        }
        if self.workload == Workload::Deadlock && self.clients < 2 {
            bail!("the deadlock workload needs --clients 2 or more (two sessions per cycle)");
        }
        let needed = match self.workload {
            Workload::Txn2 | Workload::Rmw | Workload::Bank => 2,
            Workload::Put | Workload::Get => 1,
            Workload::Deadlock => 0,
        };
        if self.key_space() < needed {
            bail!("--keys must be at least {needed} for {}", self.workload.name());
        }
        Ok(())
    }

    fn consistency_name(&self) -> &'static str {
        match self.consistency {
            None => "default",
            Some(ConsistencyArg::Sequential) => "sequential",
            Some(ConsistencyArg::Causal) => "causal",
        }
    }
}

/// The longest run `--secs` allows (a day).
pub const SECS_MAX: f64 = 86_400.0;
/// The most sessions `--clients` allows.
pub const CLIENTS_MAX: usize = 100_000;
/// The largest `--value-size` (the nodes' own limit is lower: 1 MiB by default, 64 MiB at most).
pub const VALUE_SIZE_MAX: usize = 64 << 20;
/// The most value bytes the sessions may have in flight at once (`--clients` × `--value-size`;
/// each request holds a few copies of its value on its way out).
pub const IN_FLIGHT_VALUE_BYTES_MAX: u64 = 4 << 30;
/// The most accounts `bank` takes (each is preloaded before the window opens).
pub const ACCOUNTS_MAX: u64 = 1_000_000;

/// Sets the consistency asked for on a session.
fn configure(args: &Args, client: Client) -> Client {
    match args.consistency {
        Some(ConsistencyArg::Sequential) => client.set_consistency(Consistency::Sequential),
        Some(ConsistencyArg::Causal) => client.set_consistency(Consistency::Causal),
        None => {}
    }
    client
}

/// Runs the benchmark the command line asks for.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    args.validate()?;
    let addrs = args.addrs();
    let splits = match keys::fetch_splits(&addrs).await {
        Some(splits) => splits,
        None => {
            eprintln!(
                "kvbench: no node answered Topology; assuming the default {} shards",
                keys::DEFAULT_SHARDS
            );
            Splits::even(keys::DEFAULT_SHARDS)
        }
    };
    let key_space = args.key_space();
    let value = vec![b'x'; args.value_size];
    let run = rand::random::<u32>();

    let loader = Client::connect(&addrs).await.context("connecting")?;
    match args.workload {
        Workload::Get | Workload::Txn2 | Workload::Rmw => {
            // Shared by the preload's lanes (each copy is made as its write is sent).
            let v: Arc<[u8]> = value.clone().into();
            workload::preload(&loader, key_space, PRELOAD_PARALLEL, keys::key, move |_| v.to_vec())
                .await
                .context("preloading keys")?;
        }
        Workload::Bank => {
            let account = move |i| keys::account(run, i);
            workload::preload(&loader, key_space, PRELOAD_PARALLEL, account, |_| {
                workload::INITIAL_BALANCE.to_string().into_bytes()
            })
            .await
            .context("preloading accounts")?;
        }
        Workload::Put | Workload::Deadlock => {}
    }

    // Worker w lists the nodes starting from node w, so that the sessions' first coordinators
    // (and first-try nodes) spread over the cluster, as the peer tool spreads its connections.
    // With --conns, worker w makes a session over connection set w mod conns.
    let conns = args.conns.unwrap_or(args.clients);
    let mut pools = Vec::with_capacity(conns);
    let mut sessions = Vec::with_capacity(args.clients);
    for worker in 0..args.clients {
        let session = match pools.get(worker % conns) {
            Some(pool) => Client::session(pool),
            None => {
                let mut rotated = addrs.clone();
                rotated.rotate_left(worker % addrs.len());
                let pool = Client::connect(&rotated).await.context("connecting")?;
                pools.push(pool.clone());
                pool
            }
        };
        sessions.push(configure(args, session));
    }
    let before = match args.workload {
        Workload::Deadlock => Some(DeadlockCounters::parse(&loader.status_all().await)),
        _ => None,
    };

    let window = Duration::from_secs_f64(args.secs);
    let live = Arc::new(Live::default());
    let shared = Arc::new(Shared {
        workload: args.workload,
        keys: key_space,
        run,
        value,
        writes: args.writes,
        begin_near: args.begin == BeginArg::Near,
        reads_for_update: args.reads == ReadsArg::ForUpdate,
        splits: splits.clone(),
        deadline: Instant::now() + window,
        live: live.clone(),
    });
    let progress = Progress::start(live, window);
    let mut workers = tokio::task::JoinSet::new();
    match args.workload {
        Workload::Put | Workload::Get => {
            for (worker, client) in sessions.into_iter().enumerate() {
                workers.spawn(workload::single_key_worker(client, worker, shared.clone()));
            }
        }
        Workload::Txn2 | Workload::Rmw | Workload::Bank => {
            for (worker, client) in sessions.into_iter().enumerate() {
                workers.spawn(workload::txn_worker(client, worker, shared.clone()));
            }
        }
        Workload::Deadlock => {
            let mut sessions = sessions.into_iter();
            let mut pair = 0;
            while let (Some(s0), Some(s1)) = (sessions.next(), sessions.next()) {
                let (a, b) = keys::deadlock_keys(pair, &splits);
                workers.spawn(workload::deadlock_pair([s0, s1], a, b, shared.clone()));
                pair += 1;
            }
        }
    }
    let mut tally = Tally::default();
    tokio::time::sleep_until(shared.deadline.into()).await;
    progress.finishing();
    while let Some(joined) = workers.join_next().await {
        tally.merge(joined.context("a worker panicked")?);
    }
    let drain = shared.deadline.elapsed();
    progress.finish();

    let counters = match before {
        Some(before) => {
            let after = DeadlockCounters::parse(&loader.status_all().await);
            (after.nodes > 0).then(|| after.since(&before))
        }
        None => None,
    };
    let bank = match args.workload {
        Workload::Bank => {
            let expected = workload::INITIAL_BALANCE * key_space as i64;
            Some(match workload::bank_total(&loader, run, key_space).await {
                Ok(total) => BankCheck { total: Some(total), expected, error: None },
                Err(error) => BankCheck { total: None, expected, error: Some(error.to_string()) },
            })
        }
        _ => None,
    };
    Ok(Report {
        workload: args.workload.name().to_string(),
        clients: args.clients,
        conns: args.conns.unwrap_or(args.clients),
        secs: args.secs,
        keys: key_space,
        value_size: args.value_size,
        consistency: args.consistency_name().to_string(),
        writes: args.writes.name().to_string(),
        reads: args.reads.name().to_string(),
        begin: match args.begin {
            BeginArg::Near => "near",
            BeginArg::Any => "any",
        }
        .to_string(),
        shards: splits.len(),
        tally,
        drain,
        counters,
        bank,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn command_line_parses_with_the_peer_tools_defaults() {
        let args = Args::try_parse_from(["kvbench", "--connect", "h:1, h:2", "--json"]).unwrap();
        assert_eq!(args.addrs(), ["h:1", "h:2"]);
        assert_eq!(args.workload, Workload::Put);
        assert_eq!((args.clients, args.value_size, args.key_space()), (64, 100, 10_000));
        assert!(args.json);
        let get = Args::try_parse_from(["kvbench", "--workload", "get"]).unwrap();
        assert_eq!(get.key_space(), 2000);
        let bank = Args::try_parse_from(["kvbench", "--workload", "bank"]).unwrap();
        assert_eq!(bank.key_space(), 8);
        let deadlock =
            Args::try_parse_from(["kvbench", "--workload", "deadlock", "--clients", "5"]).unwrap();
        assert_eq!(deadlock.key_space(), 4);
        let causal = Args::try_parse_from(["kvbench", "--consistency", "causal"]).unwrap();
        assert_eq!(causal.consistency, Some(ConsistencyArg::Causal));
        assert!(Args::try_parse_from(["kvbench", "--workload", "nope"]).is_err());
        assert_eq!(args.conns, None, "each client its own connections unless asked");
        let shared = Args::try_parse_from(["kvbench", "--clients", "8", "--conns", "8"]).unwrap();
        assert!(shared.validate().is_ok());
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for argv in [
            &["kvbench", "--connect", " , "][..],
            &["kvbench", "--connect", "h:1,h"],
            &["kvbench", "--connect", ":7001"],
            &["kvbench", "--connect", "h:port"],
            &["kvbench", "--secs", "0"],
            &["kvbench", "--clients", "0"],
            &["kvbench", "--workload", "deadlock", "--clients", "1"],
            &["kvbench", "--workload", "rmw", "--keys", "1"],
            &["kvbench", "--conns", "0"],
            &["kvbench", "--clients", "4", "--conns", "5"],
            &["kvbench", "--clients", "128", "--value-size", "67108864"],
            &["kvbench", "--workload", "bank", "--keys", "1000001"],
        ] {
            let args = Args::try_parse_from(argv).unwrap();
            assert!(args.validate().is_err(), "{argv:?}");
        }
    }
}
