//! What workers count ([`Tally`]), live counters for the progress bar ([`Live`]), and the final
//! [`Report`]: the summary line and the JSON object.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;
use serde_json::json;

/// Significant figures of every histogram.
const SIGFIG: u8 = 3;
/// The largest latency a histogram tells apart (one hour, in microseconds); longer ones are
/// recorded as one hour.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// A drain (in-flight operations finishing after the window) at least this long is shown in
/// the summary line: some operation was stuck (a lock wait, a retry loop).
const STALL_REPORTED: Duration = Duration::from_secs(1);

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, SIGFIG).expect("valid histogram bounds")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Counters shared by all workers while they run, read by the progress bar.
#[derive(Debug, Default)]
pub struct Live {
    /// Operations (transaction attempts) finished.
    pub ops: AtomicU64,
    /// Committed transactions (successful operations for single-key workloads).
    pub goodput: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    /// Aborted transaction attempts.
    pub aborts: AtomicU64,
}

impl Live {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one worker counted; merged into one at the end.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Latency of every operation (a transaction attempt, committed or aborted; a deadlock
    /// round) that finished inside the measuring window, in microseconds.
    pub latency: Histogram<u64>,
    /// Latency of every committed transaction from its first attempt's BEGIN to its COMMITTED,
    /// retries and backoff included (transaction workloads).
    pub commit_latency: Histogram<u64>,
    /// Deadlock workload: from issuing the statement that closes a cycle to the victim's abort.
    pub detect: Histogram<u64>,
    /// Causal reads: how far the snapshot a read was served at lagged the client's clock when
    /// the answer arrived, in microseconds (how stale the read could be).
    pub staleness: Histogram<u64>,
    /// Operations finished inside the window.
    pub ops: u64,
    /// Committed transactions (successful operations for single-key workloads).
    pub goodput: u64,
    /// Failed operations that are not transaction aborts (no answer, unknown outcome, ...).
    pub errors: u64,
    /// Error counts by kind, with the first message of each kind.
    pub error_kinds: BTreeMap<String, (u64, String)>,
    /// Aborted attempts by reason (`DEADLOCK`, `LOCK_TIMEOUT`, ...).
    pub aborts: BTreeMap<String, u64>,
    /// Retries after retryable aborts.
    pub retries: u64,
    /// Deadlock workload: rounds that ended in one `DEADLOCK` abort.
    pub deadlocks: u64,
    /// Deadlock workload: rounds where the cycle did not end in one `DEADLOCK` abort.
    pub rounds_without_deadlock: u64,
    /// Operations in flight when the window closed (finished later, not counted).
    pub late: u64,
    /// Outcomes that should not happen (both transactions of a cycle aborted, a victim aborted
    /// before its cycle closed, ...), by name.
    pub anomalies: BTreeMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            latency: histogram(),
            commit_latency: histogram(),
            detect: histogram(),
            staleness: histogram(),
            ops: 0,
            goodput: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            aborts: BTreeMap::new(),
            retries: 0,
            deadlocks: 0,
            rounds_without_deadlock: 0,
            late: 0,
            anomalies: BTreeMap::new(),
        }
    }
}

impl Tally {
    /// An operation finished (an attempt, whatever its outcome) after `took`.
    pub fn op(&mut self, took: Duration, live: &Live) {
        self.latency.saturating_record(micros(took));
        self.ops += 1;
        Live::bump(&live.ops);
    }

    /// A transaction committed (or a single-key operation succeeded), `took` after it started
    /// (retries included).
    pub fn commit(&mut self, took: Duration, live: &Live) {
        self.commit_latency.saturating_record(micros(took));
        self.goodput += 1;
        Live::bump(&live.goodput);
    }

    /// An attempt aborted.
    pub fn abort(&mut self, reason: &str, live: &Live) {
        *self.aborts.entry(reason.to_string()).or_default() += 1;
        Live::bump(&live.aborts);
    }

    /// An operation failed otherwise.
    pub fn error(&mut self, error: &client::Error, live: &Live) {
        self.errors += 1;
        Live::bump(&live.errors);
        let kind = match error {
            client::Error::Aborted { .. } => "aborted",
            client::Error::Invalid(_) => "invalid",
            client::Error::NotAllowed(_) => "not_allowed",
            client::Error::NotFound(_) => "not_found",
            client::Error::Unavailable(_) => "unavailable",
            client::Error::Unknown(_) => "unknown",
        };
        self.error_kinds.entry(kind.to_string()).or_insert_with(|| (0, error.to_string())).0 += 1;
    }

    /// Something that should not happen happened.
    pub fn anomaly(&mut self, name: &str) {
        *self.anomalies.entry(name.to_string()).or_default() += 1;
    }

    /// A causal read was served at `snapshot_ts` (a hybrid logical clock reading: milliseconds
    /// since the Unix epoch in the high 48 bits); zero means a locking read.
    pub fn snapshot(&mut self, snapshot_ts: u64) {
        if snapshot_ts == 0 {
            return;
        }
        let snapshot_us = (snapshot_ts >> 16) * 1000;
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.staleness.saturating_record(now_us.saturating_sub(snapshot_us).max(1));
    }

    /// A deadlock was broken `took` after the cycle closed.
    pub fn deadlock(&mut self, took: Duration) {
        self.detect.saturating_record(micros(took));
        self.deadlocks += 1;
    }

    /// Adds another worker's tally.
    pub fn merge(&mut self, other: Tally) {
        self.latency.add(&other.latency).expect("histograms of equal precision merge");
        self.commit_latency.add(&other.commit_latency).expect("histograms merge");
        self.detect.add(&other.detect).expect("histograms merge");
        self.staleness.add(&other.staleness).expect("histograms merge");
        self.ops += other.ops;
        self.goodput += other.goodput;
        self.errors += other.errors;
        for (kind, (count, message)) in other.error_kinds {
            self.error_kinds.entry(kind).or_insert_with(|| (0, message)).0 += count;
        }
        for (reason, count) in other.aborts {
            *self.aborts.entry(reason).or_default() += count;
        }
        self.retries += other.retries;
        self.deadlocks += other.deadlocks;
        self.rounds_without_deadlock += other.rounds_without_deadlock;
        self.late += other.late;
        for (name, count) in other.anomalies {
            *self.anomalies.entry(name).or_default() += count;
        }
    }
}

/// The deadlock counters of all nodes' STATUS blocks, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeadlockCounters {
    /// Probe messages sent.
    pub probes_sent: u64,
    /// Cycles found.
    pub cycles_found: u64,
    /// Victims aborted.
    pub victims: u64,
    /// Nodes whose block had the line.
    pub nodes: u64,
}

impl DeadlockCounters {
    /// Sums the `deadlocks: N probes sent, M cycles found, V victims; ...` lines of a STATUS text
    /// (one block per node).
    pub fn parse(status: &str) -> DeadlockCounters {
        let mut sum = DeadlockCounters::default();
        for line in status.lines() {
            let Some(rest) = line.trim().strip_prefix("deadlocks:") else { continue };
            sum.nodes += 1;
            for part in rest.split([',', ';']) {
                let mut words = part.split_whitespace();
                let Some(number) = words.next().and_then(|w| w.parse::<u64>().ok()) else {
                    continue;
                };
                match words.collect::<Vec<_>>().join(" ").as_str() {
                    "probes sent" => sum.probes_sent += number,
                    "cycles found" => sum.cycles_found += number,
                    "victims" => sum.victims += number,
                    _ => {}
                }
            }
        }
        sum
    }

    /// `self - before`, counter by counter.
    pub fn since(&self, before: &DeadlockCounters) -> DeadlockCounters {
        DeadlockCounters {
            probes_sent: self.probes_sent.saturating_sub(before.probes_sent),
            cycles_found: self.cycles_found.saturating_sub(before.cycles_found),
            victims: self.victims.saturating_sub(before.victims),
            nodes: self.nodes.min(before.nodes),
        }
    }
}

/// The outcome of `bank`'s final check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankCheck {
    /// The sum of all balances read in one transaction (`None`: it could not be read).
    pub total: Option<i64>,
    /// The sum preloaded.
    pub expected: i64,
    /// Why the total could not be read.
    pub error: Option<String>,
}

impl BankCheck {
    /// True when the total was read and is the one preloaded.
    pub fn ok(&self) -> bool {
        self.total == Some(self.expected)
    }
}

/// Everything a run reports.
#[derive(Clone, Debug)]
pub struct Report {
    /// The workload's name.
    pub workload: String,
    /// Concurrent workers (sessions).
    pub clients: usize,
    /// Connection sets the sessions share (`clients` when each has its own).
    pub conns: usize,
    /// The measuring window.
    pub secs: f64,
    /// Key space (accounts for `bank`, pairs' keys for `deadlock`).
    pub keys: u64,
    /// Value size of written values.
    pub value_size: usize,
    /// The session consistency asked for (`default` for the servers' default).
    pub consistency: String,
    /// How transactions sent their writes (`one-shot`, `with-end` or `statements`).
    pub writes: String,
    /// How `rmw` and `bank` read the keys they write (`for-update` or `shared`).
    pub reads: String,
    /// Where transactions began (`near` or `any`).
    pub begin: String,
    /// Shards of the cluster.
    pub shards: usize,
    /// What the workers counted.
    pub tally: Tally,
    /// From the window's close until the last in-flight operation finished.
    pub drain: Duration,
    /// Deadlock workload: the servers' counters over the run (`None`: not read).
    pub counters: Option<DeadlockCounters>,
    /// Bank workload: the final check.
    pub bank: Option<BankCheck>,
}

impl Report {
    fn rate(&self, count: u64) -> f64 {
        if self.secs > 0.0 { count as f64 / self.secs } else { 0.0 }
    }

    fn txn_workload(&self) -> bool {
        matches!(self.workload.as_str(), "txn2" | "rmw" | "bank" | "deadlock")
    }

    /// Probe messages per deadlock (over the deadlocks the workers saw), when known.
    pub fn probes_per_deadlock(&self) -> Option<f64> {
        let counters = self.counters?;
        (self.tally.deadlocks > 0)
            .then(|| counters.probes_sent as f64 / self.tally.deadlocks as f64)
    }

    /// The one-line human summary (the peer tool's `key=value` style).
    pub fn summary_line(&self) -> String {
        let t = &self.tally;
        let mut line = format!(
            "workload={} clients={} ops={} ops_per_s={:.0} goodput_per_s={:.0} p50_us={} \
             p99_us={} p999_us={} errors={}",
            self.workload,
            self.clients,
            t.ops,
            self.rate(t.ops),
            self.rate(t.goodput),
            t.latency.value_at_quantile(0.5),
            t.latency.value_at_quantile(0.99),
            t.latency.value_at_quantile(0.999),
            t.errors
        );
        if !t.staleness.is_empty() {
            line.push_str(&format!(
                " staleness_p50_ms={:.1} staleness_p99_ms={:.1}",
                t.staleness.value_at_quantile(0.5) as f64 / 1000.0,
                t.staleness.value_at_quantile(0.99) as f64 / 1000.0
            ));
        }
        if self.drain >= STALL_REPORTED {
            line.push_str(&format!(" drain_ms={}", self.drain.as_millis()));
        }
        if self.txn_workload() {
            let aborts: Vec<String> = t.aborts.iter().map(|(r, n)| format!("{r}:{n}")).collect();
            line.push_str(&format!(
                " commits={} aborts={} commit_p50_us={} commit_p99_us={}",
                t.goodput,
                if aborts.is_empty() { "0".to_string() } else { aborts.join(",") },
                t.commit_latency.value_at_quantile(0.5),
                t.commit_latency.value_at_quantile(0.99)
            ));
        }
        if self.workload == "deadlock" {
            line.push_str(&format!(
                " deadlocks={} detect_p50_us={} detect_p99_us={} detect_max_us={}",
                t.deadlocks,
                t.detect.value_at_quantile(0.5),
                t.detect.value_at_quantile(0.99),
                t.detect.max()
            ));
            match (self.counters, self.probes_per_deadlock()) {
                (Some(c), per) => line.push_str(&format!(
                    " probes_sent={} cycles_found={} victims={} probes_per_deadlock={}",
                    c.probes_sent,
                    c.cycles_found,
                    c.victims,
                    per.map_or("-".to_string(), |p| format!("{p:.2}"))
                )),
                (None, _) => line.push_str(" probes_per_deadlock=-"),
            }
            if !t.anomalies.is_empty() {
                let anomalies: Vec<String> =
                    t.anomalies.iter().map(|(name, n)| format!("{name}:{n}")).collect();
                line.push_str(&format!(" anomalies={}", anomalies.join(",")));
            }
        }
        if let Some(bank) = &self.bank {
            line.push_str(&format!(
                " total={} expected_total={} total_ok={}",
                bank.total.map_or("-".to_string(), |t| t.to_string()),
                bank.expected,
                bank.ok()
            ));
        }
        line
    }

    /// The JSON object (printed as the last line with `--json`).
    pub fn to_json(&self) -> Value {
        let t = &self.tally;
        let mut object = json!({
            "workload": self.workload,
            "clients": self.clients,
            "conns": self.conns,
            "secs": self.secs,
            "keys": self.keys,
            "value_size": self.value_size,
            "consistency": self.consistency,
            "writes": self.writes,
            "reads": self.reads,
            "begin": self.begin,
            "shards": self.shards,
            "ops": t.ops,
            "ops_per_s": self.rate(t.ops),
            "goodput": t.goodput,
            "goodput_per_s": self.rate(t.goodput),
            "p50_us": t.latency.value_at_quantile(0.5),
            "p90_us": t.latency.value_at_quantile(0.9),
            "p99_us": t.latency.value_at_quantile(0.99),
            "p999_us": t.latency.value_at_quantile(0.999),
            "max_us": t.latency.max(),
            "mean_us": t.latency.mean(),
            "errors": t.errors,
            "late_ops": t.late,
            "drain_ms": u64::try_from(self.drain.as_millis()).unwrap_or(u64::MAX),
            "errors_by_kind": t.error_kinds.iter()
                .map(|(kind, (count, message))| (kind.clone(), json!({"count": count, "first": message})))
                .collect::<serde_json::Map<String, Value>>(),
        });
        let fields = object.as_object_mut().expect("a JSON object");
        if self.txn_workload() {
            fields.insert("commits".into(), json!(t.goodput));
            fields.insert("aborts".into(), json!(t.aborts));
            fields.insert("aborts_total".into(), json!(t.aborts.values().sum::<u64>()));
            fields.insert("retries".into(), json!(t.retries));
            fields.insert("commit_p50_us".into(), json!(t.commit_latency.value_at_quantile(0.5)));
            fields.insert("commit_p99_us".into(), json!(t.commit_latency.value_at_quantile(0.99)));
        }
        if !t.staleness.is_empty() {
            fields.insert(
                "staleness_p50_ms".into(),
                json!(t.staleness.value_at_quantile(0.5) as f64 / 1000.0),
            );
            fields.insert(
                "staleness_p99_ms".into(),
                json!(t.staleness.value_at_quantile(0.99) as f64 / 1000.0),
            );
        }
        if self.workload == "deadlock" {
            fields.insert("deadlocks".into(), json!(t.deadlocks));
            fields.insert("rounds_without_deadlock".into(), json!(t.rounds_without_deadlock));
            fields.insert("anomalies".into(), json!(t.anomalies));
            fields.insert("deadlocks_per_s".into(), json!(self.rate(t.deadlocks)));
            fields.insert("detect_p50_us".into(), json!(t.detect.value_at_quantile(0.5)));
            fields.insert("detect_p99_us".into(), json!(t.detect.value_at_quantile(0.99)));
            fields.insert("detect_max_us".into(), json!(t.detect.max()));
            let c = self.counters;
            fields.insert("probes_sent".into(), json!(c.map(|c| c.probes_sent)));
            fields.insert("cycles_found".into(), json!(c.map(|c| c.cycles_found)));
            fields.insert("victims".into(), json!(c.map(|c| c.victims)));
            fields.insert("probes_per_deadlock".into(), json!(self.probes_per_deadlock()));
        }
        if let Some(bank) = &self.bank {
            fields.insert("total".into(), json!(bank.total));
            fields.insert("expected_total".into(), json!(bank.expected));
            fields.insert("total_ok".into(), json!(bank.ok()));
            if let Some(error) = &bank.error {
                fields.insert("total_error".into(), json!(error));
            }
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(workload: &str) -> Report {
        let live = Live::default();
        let mut tally = Tally::default();
        for us in [100, 200, 300, 400, 10_000] {
            tally.op(Duration::from_micros(us), &live);
            tally.commit(Duration::from_micros(us), &live);
        }
        tally.abort("DEADLOCK", &live);
        tally.abort("DEADLOCK", &live);
        tally.error(&client::Error::Unavailable("down".into()), &live);
        tally.deadlock(Duration::from_millis(12));
        Report {
            workload: workload.into(),
            clients: 16,
            conns: 16,
            secs: 5.0,
            keys: 1000,
            value_size: 100,
            consistency: "default".into(),
            writes: "with-end".into(),
            reads: "for-update".into(),
            begin: "near".into(),
            shards: 4,
            tally,
            drain: Duration::from_millis(3),
            counters: Some(DeadlockCounters {
                probes_sent: 3,
                cycles_found: 1,
                victims: 1,
                nodes: 3,
            }),
            bank: (workload == "bank").then_some(BankCheck {
                total: Some(800),
                expected: 800,
                error: None,
            }),
        }
    }

    #[test]
    fn json_line_has_the_required_fields() {
        for workload in ["put", "get", "txn2", "rmw", "bank", "deadlock"] {
            let report = report(workload);
            let line = report.to_json().to_string();
            assert!(!line.contains('\n'), "one line");
            let value: Value = serde_json::from_str(&line).expect("valid JSON");
            for field in [
                "workload",
                "clients",
                "secs",
                "ops",
                "ops_per_s",
                "goodput_per_s",
                "p50_us",
                "p99_us",
                "errors",
            ] {
                assert!(value.get(field).is_some(), "{workload}: {field} missing in {line}");
            }
            assert_eq!(value["workload"], workload);
            assert_eq!(value["clients"], 16);
            assert_eq!(value["ops"], 5);
            assert_eq!(value["ops_per_s"], 1.0);
            assert_eq!(value["errors"], 1);
            assert!(value["p50_us"].as_u64().unwrap() >= 299);
            assert!(value["p99_us"].as_u64().unwrap() >= 9_990);
        }
        let rmw = report("rmw").to_json();
        assert_eq!(rmw["aborts"]["DEADLOCK"], 2);
        assert_eq!(rmw["commits"], 5);
        let deadlock = report("deadlock").to_json();
        assert_eq!(deadlock["deadlocks"], 1);
        assert_eq!(deadlock["probes_per_deadlock"], 3.0);
        assert!(deadlock["detect_p99_us"].as_u64().unwrap() >= 11_990);
        let bank = report("bank").to_json();
        assert_eq!(bank["total_ok"], true);
        assert!(report("put").to_json().get("total_ok").is_none());
    }

    #[test]
    fn summary_line_is_key_value_pairs() {
        let line = report("deadlock").summary_line();
        assert!(line.starts_with("workload=deadlock clients=16 ops=5 ops_per_s=1 "), "{line}");
        for part in line.split(' ') {
            assert!(part.contains('='), "{part} in {line}");
        }
        assert!(line.contains(" deadlocks=1 "), "{line}");
        assert!(line.contains(" aborts=DEADLOCK:2 "), "{line}");
    }

    #[test]
    fn status_counters_are_summed_over_nodes() {
        let status = "[127.0.0.1:7101]\nnode 1 (incarnation 3), 4 shards\n\
            deadlocks: 10 probes sent, 2 cycles found, 1 victims; 0 evictions, 0 resolved\n\
            [127.0.0.1:7102]\n\
            deadlocks: 5 probes sent, 1 cycles found, 1 victims; 3 evictions, 1 resolved\n\
            [127.0.0.1:7103] did not answer";
        let sum = DeadlockCounters::parse(status);
        assert_eq!(
            sum,
            DeadlockCounters { probes_sent: 15, cycles_found: 3, victims: 2, nodes: 2 }
        );
        let before = DeadlockCounters { probes_sent: 5, cycles_found: 1, victims: 1, nodes: 2 };
        assert_eq!(
            sum.since(&before),
            DeadlockCounters { probes_sent: 10, cycles_found: 2, victims: 1, nodes: 2 }
        );
    }
}
