//! CPU per applied one-phase put on a file-backed redb database with volatile commits: the
//! state writer's work for a `put`, without Raft, network or threads around it.
//!
//! `cargo run --release -p txn --example apply_cost -- [ENTRIES] [ENTRIES_PER_COMMIT]`
//!
//! Each entry writes one 100-byte value to one of 1,000 keys over four shards, as kvbench's
//! `put` does. Prints the cost of each 20,000 entries, which grows with the database (every
//! version is kept, as within the retention window), and the total. See docs/benchmarks.md.

use std::time::Instant;

use redb::Database;
use redb::Durability;
use txn::command::Command;
use txn::command::Write;
use txn::state::ShardState;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

const SHARDS: u32 = 4;
const KEYS: u64 = 1_000;
const VALUE_BYTES: usize = 100;
const CACHE_BYTES: usize = 256 << 20;
const REPORT_EVERY: u64 = 20_000;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).map(|a| a.parse().expect("a number")).unwrap_or(default)
}

fn main() -> Result<(), redb::Error> {
    let entries = arg(1, 100_000);
    let per_commit = arg(2, 12).max(1);
    let path = std::env::temp_dir().join(format!("apply-cost-{}.redb", std::process::id()));
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path)?;
    let shards: Vec<ShardState> = (0..SHARDS).map(|s| ShardState::new(ShardId(s))).collect();
    let tx = db.begin_write()?;
    for shard in &shards {
        shard.create_tables(&tx)?;
    }
    tx.commit()?;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut seq = 0u64;
    let start = Instant::now();
    let mut lap = Instant::now();
    while seq < entries {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::None)?;
        let mut tables = shards.iter().map(|s| s.open(&tx)).collect::<Result<Vec<_>, _>>()?;
        for _ in 0..per_commit {
            seq += 1;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = format!("k{:04}", rng % KEYS).into_bytes();
            let i = (rng % u64::from(SHARDS)) as usize;
            let ts = Timestamp(1_000_000 + seq * 10);
            let command = Command::CommitOnePhase {
                txn: TxnId { start_ts: ts, coordinator: 1, incarnation: 1, seq },
                writes: vec![Write { key, value: Some(vec![7u8; VALUE_BYTES]) }],
                commit_ts: ts,
                lock_term: 1,
            };
            shards[i].apply_in(&mut tables[i], &command, 1)?;
            if seq.is_multiple_of(REPORT_EVERY) {
                let us = lap.elapsed().as_secs_f64() * 1e6 / REPORT_EVERY as f64;
                println!("{seq}: {us:.1} us/entry over the last {REPORT_EVERY}");
                lap = Instant::now();
            }
        }
        drop(tables);
        tx.commit()?;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / seq as f64;
    println!("total: {us:.1} us/entry, {per_commit} entries per commit");
    let _ = std::fs::remove_file(path);
    Ok(())
}
