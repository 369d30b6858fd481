//! A node's configuration: every key, its default and its validation, in one place.
//!
//! The same keys come from `kvd start` flags or a TOML file (`--config node.toml`; flags win):
//!
//! ```toml
//! id = 1
//! listen = "127.0.0.1:7001"
//! peers = "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
//! data = "/var/lib/kvd/1"
//! shards = 4                      # fixed at cluster creation
//! consistency = "sequential"      # default for sessions that do not choose
//!
//! [limits]
//! key_bytes_max = 4096
//! value_bytes_max = 1048576
//! txn_write_bytes_max = 33554432
//! txn_lock_bytes_max = 33554432
//!
//! [timing]
//! lock_wait_ms = 10000            # last-resort lock wait timeout (deadlocks are detected sooner)
//! idle_ms = 30000                 # an idle transaction is aborted after this
//! ```
//!
//! `docs/configuration.md` documents every key. Validation turns every mistake into one clear
//! sentence before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use txn::types::NodeId;

use crate::topology::SHARDS_MAX;

/// Shards of a new cluster unless `--shards` says otherwise.
pub const DEFAULT_SHARDS: u32 = 4;
/// The largest key, value or transaction write set the limits may allow: one Raft entry holds a
/// transaction's writes, and the WAL refuses records over `replication::store::wal::
/// RECORD_BYTES_MAX` (256 MiB), so this leaves room for the rest of the entry.
pub const WRITE_BYTES_LIMIT: usize = 64 << 20;

/// The largest value of any `[timing]` setting: a week. Far above any sensible period, and
/// low enough that no sum or multiple of timings the node computes can overflow.
pub const TIMING_MS_MAX: u64 = 7 * 24 * 3600 * 1000;
/// The largest count limit (`scan_rows_max`, `open_txns_max`, `session_requests_max`,
/// `snapshot_every_entries`, `collect_pass_rows`): far past anything sensible, and within what
/// the structures they size accept (a session's semaphore panicked above `usize::MAX >> 3`
/// permits, aborting the node at its first session; a review, 2026-12-07).
pub const COUNT_LIMIT: u64 = 1 << 32;

/// The shortest Raft heartbeat period: below it a node spends its time on heartbeats (and the
/// election timeouts, above three of them, would fire at every scheduling delay).
pub const HEARTBEAT_MS_MIN: u64 = 10;
/// The shortest deadline of a call between nodes: a round trip and, for a prepare, a Raft
/// commit with its fsyncs on a busy machine. Below it every call times out.
pub const RPC_MS_MIN: u64 = 100;
/// The shortest retention window: a writing transaction must end within half of it
/// (`TOO_OLD`), and causal reads pick snapshots within it.
pub const RETENTION_MS_MIN: u64 = 1_000;
/// The shortest disk stall limit: a busy disk's fsync can take hundreds of milliseconds, and a
/// node that stops at each one is down more than it is up.
pub const DISK_STALL_MS_MIN: u64 = 1_000;

// One entry, even at twice the limit in encoding (a margin: each write is charged 64 bytes
// more than its key and value, above its framing), travels alone in one
// AppendEntries within the transport's message limit; so do a replication read's byte budget
// and a scan's rows (its budget plus the one row that passes it), and a prepare: its writes
// (their framing is below the 64 bytes each counts), the keys it locks for them, and the
// locks of the transaction's statements, each within the limit.
const _: () = {
    let message = client::connector::MESSAGE_BYTES_MAX;
    assert!(2 * WRITE_BYTES_LIMIT < message);
    assert!(3 * WRITE_BYTES_LIMIT < message);
    assert!(replication::store::log_store::APPEND_BYTES_MAX < message);
    assert!(txn::state::SCAN_BYTES_MAX + 2 * WRITE_BYTES_LIMIT < message);
};

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The config file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Per-session consistency default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Reads through leaders under locks: strictly serializable.
    #[default]
    Sequential,
    /// Read-only work at a causally safe snapshot on any replica.
    Causal,
}

/// Size limits; each violation is an `INVALID_ARGUMENT` (or a `TOO_LARGE` abort) that changes
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The longest key.
    pub key_bytes_max: usize,
    /// The largest value.
    pub value_bytes_max: usize,
    /// The most bytes one transaction may write: each write counts its key and value plus
    /// `coordinator::txn_state::ENTRY_OVERHEAD_BYTES` (64).
    pub txn_write_bytes_max: usize,
    /// The most bytes of keys one transaction may hold locks on (reads, writes, scanned
    /// ranges): each key or range counts its keys plus 64. It bounds what a coordinator keeps
    /// of a transaction's read set and the size of its prepares.
    pub txn_lock_bytes_max: usize,
    /// The most rows one SCAN returns when it has no LIMIT.
    pub scan_rows_max: usize,
    /// The most transactions running at once on one coordinator (ended ones, remembered for
    /// a retried END, do not count).
    pub open_txns_max: usize,
    /// The most bytes the running transactions of one coordinator may count together, by the
    /// measures of `txn_write_bytes_max` and `txn_lock_bytes_max` (their buffered writes and
    /// the keys they lock): past it a transaction that would grow is aborted (UNAVAILABLE,
    /// retryable). Without it, `open_txns_max` transactions of 64 MiB each could take a node's
    /// memory. At least one transaction's two budgets.
    pub node_txn_bytes_max: usize,
    /// The most requests of one client `Session` stream handled (or answered and not yet sent)
    /// at once; past it the node reads the stream's next request only once a response has gone
    /// out. Above `open_txns_max` by default: a client library shares one stream per node among
    /// all its sessions, and each running transaction may have a statement waiting.
    pub session_requests_max: usize,
    /// A shard's state machine is snapshotted every this many Raft log entries, and the log
    /// before the snapshot purged (its WAL segments deleted).
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot (lagging followers catch up without one).
    pub log_kept_behind_snapshot: u64,
    /// Rows (versions, or records) one garbage-collection pass covers: one Raft entry, about
    /// 2 ms of the node's state writer at the default.
    pub collect_pass_rows: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            key_bytes_max: 4096,
            value_bytes_max: 1 << 20,
            txn_write_bytes_max: 32 << 20,
            txn_lock_bytes_max: 32 << 20,
            scan_rows_max: 10_000,
            open_txns_max: 10_000,
            node_txn_bytes_max: 2 << 30,
            session_requests_max: 16_384,
            snapshot_every_entries: 20_000,
            log_kept_behind_snapshot: 2_000,
            collect_pass_rows: 1_000,
        }
    }
}

/// Timeouts and periods, in milliseconds in the file, [`Duration`]s in code.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Last-resort lock wait timeout (`LOCK_TIMEOUT`).
    pub lock_wait_ms: u64,
    /// An interactive transaction idle this long is aborted (`IDLE_TIMEOUT`).
    pub idle_ms: u64,
    /// A lock wait this old starts a deadlock probe.
    pub probe_delay_ms: u64,
    /// A waiting transaction re-probes this often.
    pub probe_interval_ms: u64,
    /// A prepared transaction undecided this long is resolved through its record.
    pub prepared_resolve_ms: u64,
    /// A lock holder whose coordinator has not answered for this long is evicted.
    pub coordinator_lost_ms: u64,
    /// Raft heartbeat period.
    pub heartbeat_ms: u64,
    /// Raft election timeout, lower bound.
    pub election_min_ms: u64,
    /// Raft election timeout, upper bound.
    pub election_max_ms: u64,
    /// Deadline of one node-to-node RPC (lock waits excepted).
    pub rpc_ms: u64,
    /// How often leaders publish a closed timestamp while some replica of the shard serves
    /// causal reads (see `participant::shard`, "Closes on demand").
    pub close_interval_ms: u64,
    /// How often leaders publish a closed timestamp when no replica has asked for closes
    /// recently (no causal reads): an idle shard costs a Raft entry per this period, not per
    /// `close_interval_ms`.
    pub close_idle_interval_ms: u64,
    /// How far behind the leader's clock the closed timestamp trails. Not needed for safety
    /// (every timestamp a leader hands out is above its closed timestamp, and the close is
    /// capped below the ones in flight); a lag only makes causal reads staler. Default 0.
    pub close_lag_ms: u64,
    /// MVCC versions and finished transaction records are kept this long.
    pub retention_ms: u64,
    /// A commit of the Raft log (its fsync included) that has not ended for this long stops the
    /// node (`replication::store::stall`): a node whose disk hangs would otherwise stay in
    /// every group without doing its part.
    pub disk_stall_ms: u64,
    /// The share, in percent, of the leader lease (`election_max_ms`) that a leader's read
    /// relies on before it confirms its leadership by a ReadIndex round instead (one message
    /// round to the followers); 0 turns lease reads off, so that every read made through a
    /// leader pays that round. Not a period: see [`LEASE_READ_PERCENT_DEFAULT`].
    pub lease_read_percent: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            lock_wait_ms: 10_000,
            idle_ms: 30_000,
            probe_delay_ms: 10,
            probe_interval_ms: 200,
            prepared_resolve_ms: 1_000,
            coordinator_lost_ms: 2_000,
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 1_000,
            rpc_ms: 2_000,
            close_interval_ms: 10,
            close_idle_interval_ms: 250,
            close_lag_ms: 0,
            retention_ms: 300_000,
            disk_stall_ms: 20_000,
            lease_read_percent: LEASE_READ_PERCENT_DEFAULT,
        }
    }
}

impl Timing {
    /// Milliseconds to a duration.
    pub fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// A deadlock probe round (`txn::deadlock::ProbeRounds`): half the probe interval, well
    /// below the period at which waiters send fresh probes.
    pub fn probe_round(&self) -> Duration {
        Self::ms(self.probe_interval_ms) / 2
    }
}

/// The share of the leader lease a lease read relies on by default (`lease_read_percent`).
/// The voters count their refusal of other candidates from when they hear the leader, and
/// the leader counts its lease from when it sent, on different machines' monotonic clocks:
/// with the whole lease, the margin was one one-way delay, which a small difference of clock
/// rates (NTP slews them by up to 500 ppm) or scheduling could eat (a review, 2026-12-07). A
/// fifth of an election timeout (200 ms by default) is far above both; a leader heartbeats
/// every `heartbeat_ms`, so its lease stays fresh under load. Not shown by a test: turmoil's
/// hosts share one clock. A machine whose monotonic clock stops while it is suspended needs
/// lease reads off (0).
pub const LEASE_READ_PERCENT_DEFAULT: u64 = 80;
/// The largest `lease_read_percent`: the margin above must stay well above a one-way delay.
pub const LEASE_READ_PERCENT_MAX: u64 = 90;

/// The configuration file's shape (every key optional: flags may supply it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `id`.
    pub id: Option<NodeId>,
    /// `listen`.
    pub listen: Option<String>,
    /// `peers`, as on the command line.
    pub peers: Option<String>,
    /// `data`.
    pub data: Option<PathBuf>,
    /// `shards`.
    pub shards: Option<u32>,
    /// `consistency`.
    pub consistency: Option<Consistency>,
    /// `[limits]`.
    #[serde(default)]
    pub limits: Limits,
    /// `[timing]`.
    #[serde(default)]
    pub timing: Timing,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &std::path::Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        toml::from_str(&text).map_err(|e| {
            // One sentence that names the line (toml's own rendering spans several lines).
            let place = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("{}, line {line}", path.display())
                }
                None => path.display().to_string(),
            };
            invalid(format!("{place}: {}", e.message()))
        })
    }
}

/// A validated node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Where to listen.
    pub listen: String,
    /// Every node of the cluster (this one included) and its address.
    pub peers: BTreeMap<NodeId, String>,
    /// The data directory.
    pub data: PathBuf,
    /// The shard count (fixed at cluster creation).
    pub shards: u32,
    /// The default consistency of sessions.
    pub consistency: Consistency,
    /// Size limits.
    pub limits: Limits,
    /// Timeouts and periods.
    pub timing: Timing,
}

impl NodeConfig {
    /// Checks a configuration assembled from flags and file.
    pub fn validate(self) -> Result<NodeConfig, ConfigError> {
        if self.id == 0 {
            return Err(invalid("--id must be a positive integer"));
        }
        // Port 0 (any free port) is a listener's own business: it need not be reachable at
        // that address (its peers use its `--peers` address, behind a port mapping perhaps).
        let listen = match self.listen.rsplit_once(':') {
            Some((host, "0")) => format!("{host}:1"),
            _ => self.listen.clone(),
        };
        check_addr("--listen", &listen)?;
        if !self.peers.contains_key(&self.id) {
            return Err(invalid(format!("--peers does not name this node's id {}", self.id)));
        }
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(invalid(format!(
                "--shards must be between 1 and {SHARDS_MAX}, got {}",
                self.shards
            )));
        }
        if self.data.as_os_str().is_empty() {
            return Err(invalid("--data must name a directory"));
        }
        let mut addrs = BTreeMap::new();
        for (id, addr) in &self.peers {
            if let Some(other) = addrs.insert(addr, id) {
                return Err(invalid(format!(
                    "--peers gives nodes {other} and {id} one address {addr}"
                )));
            }
        }
        let limits = &self.limits;
        for (name, value) in [
            ("key_bytes_max", limits.key_bytes_max as u64),
            ("value_bytes_max", limits.value_bytes_max as u64),
            ("txn_write_bytes_max", limits.txn_write_bytes_max as u64),
            ("txn_lock_bytes_max", limits.txn_lock_bytes_max as u64),
            ("scan_rows_max", limits.scan_rows_max as u64),
            ("open_txns_max", limits.open_txns_max as u64),
            ("node_txn_bytes_max", limits.node_txn_bytes_max as u64),
            ("session_requests_max", limits.session_requests_max as u64),
            ("snapshot_every_entries", limits.snapshot_every_entries),
            ("collect_pass_rows", limits.collect_pass_rows as u64),
        ] {
            if value == 0 {
                return Err(invalid(format!("limits: {name} must be positive")));
            }
            let counts = !name.contains("_bytes_max");
            if counts && value > COUNT_LIMIT {
                return Err(invalid(format!(
                    "limits: {name} must be at most {COUNT_LIMIT}, got {value}"
                )));
            }
        }
        for (name, value) in [
            ("key_bytes_max", limits.key_bytes_max),
            ("value_bytes_max", limits.value_bytes_max),
            ("txn_write_bytes_max", limits.txn_write_bytes_max),
            ("txn_lock_bytes_max", limits.txn_lock_bytes_max),
        ] {
            if value > WRITE_BYTES_LIMIT {
                return Err(invalid(format!(
                    "limits: {name} must be at most {WRITE_BYTES_LIMIT} bytes, got {value}"
                )));
            }
        }
        let one_txn = limits.txn_write_bytes_max + limits.txn_lock_bytes_max;
        if limits.node_txn_bytes_max < one_txn {
            return Err(invalid(format!(
                "limits: node_txn_bytes_max must be at least txn_write_bytes_max + \
                 txn_lock_bytes_max ({one_txn}), got {}",
                limits.node_txn_bytes_max
            )));
        }
        // Every row must fit one scan's answer, or a key with a larger value could never be
        // scanned, not even with LIMIT 1 (found by a review, 2026-12-06).
        let row_max = limits.key_bytes_max + limits.value_bytes_max;
        if row_max > txn::state::SCAN_BYTES_MAX {
            return Err(invalid(format!(
                "limits: key_bytes_max + value_bytes_max must be at most {} bytes (one scan's \
                 answer, so that every row can be scanned), got {row_max}",
                txn::state::SCAN_BYTES_MAX
            )));
        }
        let timing = &self.timing;
        // Every period: bounded (so that no check or sum of timings below, nor in the node,
        // overflows), and at least its floor: positive unless zero means something (or a check
        // below refuses it), and for a few, well above zero, since a value that validates must
        // leave a node that works (a review, 2026-12-07: `disk_stall_ms = 1` stopped the node
        // at its first fsync, `rpc_ms = 1` timed out every call between nodes, `retention_ms =
        // 10` aborted every writing transaction TOO_OLD).
        for (name, value, floor) in [
            ("lock_wait_ms", timing.lock_wait_ms, 1),
            ("idle_ms", timing.idle_ms, 1),
            ("probe_delay_ms", timing.probe_delay_ms, 1),
            ("probe_interval_ms", timing.probe_interval_ms, 1),
            ("prepared_resolve_ms", timing.prepared_resolve_ms, 1),
            ("coordinator_lost_ms", timing.coordinator_lost_ms, 1),
            ("heartbeat_ms", timing.heartbeat_ms, HEARTBEAT_MS_MIN),
            ("election_min_ms", timing.election_min_ms, 0),
            ("election_max_ms", timing.election_max_ms, 0),
            ("rpc_ms", timing.rpc_ms, RPC_MS_MIN),
            ("close_interval_ms", timing.close_interval_ms, 1),
            ("close_idle_interval_ms", timing.close_idle_interval_ms, 0),
            ("close_lag_ms", timing.close_lag_ms, 0),
            ("retention_ms", timing.retention_ms, RETENTION_MS_MIN),
            ("disk_stall_ms", timing.disk_stall_ms, DISK_STALL_MS_MIN),
        ] {
            if value > TIMING_MS_MAX {
                return Err(invalid(format!(
                    "timing: {name} must be at most {TIMING_MS_MAX} ms (a week), got {value}"
                )));
            }
            if value == 0 && floor > 0 {
                return Err(invalid(format!("timing: {name} must be positive")));
            }
            if value < floor {
                return Err(invalid(format!(
                    "timing: {name} must be at least {floor} ms, got {value}"
                )));
            }
        }
        if timing.election_min_ms <= timing.heartbeat_ms * 3
            || timing.election_max_ms <= timing.election_min_ms
        {
            return Err(invalid(
                "timing: need heartbeat_ms * 3 < election_min_ms < election_max_ms",
            ));
        }
        if timing.lease_read_percent > LEASE_READ_PERCENT_MAX {
            return Err(invalid(format!(
                "timing: lease_read_percent must be at most {LEASE_READ_PERCENT_MAX} (0 turns \
                 lease reads off), got {}",
                timing.lease_read_percent
            )));
        }
        if timing.close_idle_interval_ms < timing.close_interval_ms {
            return Err(invalid("timing: need close_interval_ms <= close_idle_interval_ms"));
        }
        Ok(self)
    }
}

/// Parses `--peers 1=HOST:PORT,2=HOST:PORT,...`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let syntax =
        "expected --peers ID=HOST:PORT[,ID=HOST:PORT...], e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002";
    let mut peers = BTreeMap::new();
    if text.trim().is_empty() {
        return Err(invalid(format!("--peers is empty: {syntax}")));
    }
    for item in text.split(',') {
        let item = item.trim();
        let Some((id, addr)) = item.split_once('=') else {
            return Err(invalid(format!("--peers entry {item:?} has no '=': {syntax}")));
        };
        let id: NodeId = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
            invalid(format!("--peers entry {item:?}: node id must be a positive integer"))
        })?;
        let addr = addr.trim().to_string();
        check_addr(&format!("--peers entry {item:?}"), &addr)?;
        if peers.insert(id, addr).is_some() {
            return Err(invalid(format!("--peers names node {id} twice")));
        }
    }
    Ok(peers)
}

/// Checks that `addr` is HOST:PORT (it is not resolved here: a peer may not be up yet).
fn check_addr(what: &str, addr: &str) -> Result<(), ConfigError> {
    client::connector::check_host_port(addr).map_err(|why| invalid(format!("{what}: {why}")))
}

/// Resolves a HOST:PORT for binding a listener.
pub fn resolve(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.to_socket_addrs()
        .map_err(|e| invalid(format!("cannot resolve {addr:?}: {e}")))?
        .next()
        .ok_or_else(|| invalid(format!("{addr:?} resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=localhost:7002").expect("valid");
        assert_eq!(peers[&1], "127.0.0.1:7001");
        assert_eq!(peers[&2], "localhost:7002");
    }

    #[test]
    fn bad_peers_get_clear_errors() {
        for (text, expected) in [
            ("", "--peers is empty"),
            ("1:127.0.0.1:7001", "has no '='"),
            ("x=127.0.0.1:7001", "node id must be a positive integer"),
            ("0=127.0.0.1:7001", "node id must be a positive integer"),
            ("1=127.0.0.1", "is not HOST:PORT"),
            ("1=127.0.0.1:99999", "is not HOST:PORT"),
            ("1=a:1,1=b:2", "names node 1 twice"),
        ] {
            let error = parse_peers(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    fn config() -> NodeConfig {
        NodeConfig {
            id: 1,
            listen: "127.0.0.1:7001".into(),
            peers: parse_peers("1=127.0.0.1:7001,2=127.0.0.1:7002").expect("valid"),
            data: "/tmp/x".into(),
            shards: 4,
            consistency: Consistency::Sequential,
            limits: Limits::default(),
            timing: Timing::default(),
        }
    }

    #[test]
    fn validation_rejects_inconsistent_configs() {
        assert!(config().validate().is_ok());
        let error = NodeConfig { id: 3, ..config() }.validate().expect_err("id not in peers");
        assert_eq!(error.to_string(), "--peers does not name this node's id 3");
        let error = NodeConfig { shards: 0, ..config() }.validate().expect_err("no shards");
        assert!(error.to_string().contains("--shards must be between 1 and"));
        let error =
            NodeConfig { listen: "nowhere".into(), ..config() }.validate().expect_err("listen");
        assert!(error.to_string().contains("is not HOST:PORT"));
        let timing =
            Timing { close_interval_ms: 50, close_idle_interval_ms: 20, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("idle closes faster");
        assert!(error.to_string().contains("close_interval_ms <= close_idle_interval_ms"));
        let limits = Limits { txn_write_bytes_max: WRITE_BYTES_LIMIT + 1, ..Limits::default() };
        let error = NodeConfig { limits, ..config() }.validate().expect_err("huge transactions");
        assert!(error.to_string().contains("txn_write_bytes_max must be at most"), "{error}");
        let limits = Limits { value_bytes_max: txn::state::SCAN_BYTES_MAX, ..Limits::default() };
        let error = NodeConfig { limits, ..config() }.validate().expect_err("unscannable rows");
        assert!(error.to_string().contains("key_bytes_max + value_bytes_max"), "{error}");
        let limits = Limits { snapshot_every_entries: 0, ..Limits::default() };
        let error = NodeConfig { limits, ..config() }.validate().expect_err("no snapshots");
        assert_eq!(error.to_string(), "limits: snapshot_every_entries must be positive");
        let limits = Limits { session_requests_max: 1 << 62, ..Limits::default() };
        let error = NodeConfig { limits, ..config() }.validate().expect_err("a huge semaphore");
        assert!(error.to_string().contains("session_requests_max must be at most"), "{error}");
        let limits = Limits { scan_rows_max: 0, ..Limits::default() };
        let error = NodeConfig { limits, ..config() }.validate().expect_err("empty scans");
        assert_eq!(error.to_string(), "limits: scan_rows_max must be positive");
        let timing = Timing { heartbeat_ms: 0, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("no heartbeats");
        assert_eq!(error.to_string(), "timing: heartbeat_ms must be positive");
        // A review found both accepted, 2026-12-05: a zero eviction period evicted live
        // holders' locks at their first unanswered check, and a huge heartbeat wrapped the
        // product below and passed (or panicked a debug build).
        let timing = Timing { coordinator_lost_ms: 0, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("instant eviction");
        assert_eq!(error.to_string(), "timing: coordinator_lost_ms must be positive");
        let timing = Timing { heartbeat_ms: u64::MAX / 3 + 1, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("huge heartbeat");
        assert!(error.to_string().contains("heartbeat_ms must be at most"), "{error}");
        let timing = Timing { lock_wait_ms: u64::MAX, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("endless waits");
        assert!(error.to_string().contains("lock_wait_ms must be at most"), "{error}");
        // Values that validated and left a node that could not work (a review, 2026-12-07).
        for (timing, named) in [
            (Timing { disk_stall_ms: 1, ..Timing::default() }, "disk_stall_ms must be at least"),
            (Timing { rpc_ms: 1, ..Timing::default() }, "rpc_ms must be at least"),
            (Timing { retention_ms: 10, ..Timing::default() }, "retention_ms must be at least"),
            (
                Timing { heartbeat_ms: 1, election_min_ms: 4, ..Timing::default() },
                "heartbeat_ms must be at least",
            ),
        ] {
            let error = NodeConfig { timing, ..config() }.validate().expect_err("a useless node");
            assert!(error.to_string().contains(named), "{error}");
        }
        let floors = Timing {
            disk_stall_ms: DISK_STALL_MS_MIN,
            rpc_ms: RPC_MS_MIN,
            retention_ms: RETENTION_MS_MIN,
            ..Timing::default()
        };
        assert!(NodeConfig { timing: floors, ..config() }.validate().is_ok());
        let timing = Timing { lease_read_percent: 95, ..Timing::default() };
        let error = NodeConfig { timing, ..config() }.validate().expect_err("a thin margin");
        assert!(error.to_string().contains("lease_read_percent must be at most 90"), "{error}");
        let off = Timing { lease_read_percent: 0, ..Timing::default() };
        assert!(NodeConfig { timing: off, ..config() }.validate().is_ok(), "0 turns leases off");
        let mut peers = config().peers;
        let first = peers.values().next().cloned().expect("a peer");
        peers.insert(9, first);
        let error = NodeConfig { peers, ..config() }.validate().expect_err("shared address");
        assert!(error.to_string().contains("one address"), "{error}");
    }

    #[test]
    fn file_config_rejects_unknown_keys() {
        let parsed: Result<FileConfig, _> = toml::from_str("id = 1\nlisten = \"a:1\"\nbogus = 3\n");
        assert!(parsed.is_err());
        let parsed: FileConfig = toml::from_str("id = 2\n[timing]\nidle_ms = 5\n").expect("valid");
        assert_eq!(parsed.id, Some(2));
        assert_eq!(parsed.timing.idle_ms, 5);
        assert_eq!(parsed.timing.lock_wait_ms, Timing::default().lock_wait_ms);
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = 1\n\n[timing]\nelection_min_ms = \"500\"\n").expect("write");
        let error = FileConfig::load(&path).expect_err("a string for a number");
        assert!(error.to_string().contains("node.toml, line 4: invalid type"), "{error}");
    }
}
