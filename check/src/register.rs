//! Single-key registers written and read outside interactive transactions (`WRITE k v` and
//! `READ k` as one-statement operations, or writes in a Commit without a handle), each write
//! with a value no other write uses, checked for the
//! anomalies a linearizable register forbids that can be found without a search:
//!
//! - **garbage read**: a read returns a value that no write wrote;
//! - **read of a failed write**: a read returns the value of a write whose client was told it
//!   certainly did not apply (ABORTED, or refused before it was sent);
//! - **future read**: a read returns the value of a write invoked after the read completed;
//! - **stale read**: a read returns a value that was certainly overwritten before the read
//!   began: some acknowledged write began after that value's write was acknowledged (or, for
//!   the initial "no value", any acknowledged write) and completed before the read began;
//! - **non-monotonic reads**: a read that began after another completed returns a value that
//!   was certainly overwritten by the value the earlier read returned (its write began after
//!   this value's write was acknowledged).
//!
//! These are necessary conditions of linearizability (Herlihy & Wing 1990), each sound: the
//! real-time order they rely on ("completed before began") holds in every linearization. So
//! does the order a linearizable read shows (since 2026-12-07): a read that began after one
//! write was acknowledged and returned another's value shows that the other took effect after
//! the first, even if the two writes overlapped. On a history with an anomaly, a read that is
//! wrong may also order writes wrongly, and the anomaly is then reported more than once. An
//! `info` write (outcome unknown) may take effect at any time after it began, so it only ever
//! shows up as the value a read returned, never as "certainly before" anything. A full check
//! (Knossos, or Gibbons & Korach's algorithm for unique values) would also find subtler orders
//! across three or more writes; these five cover what a resent or duplicated one-statement
//! write, a stale leader or a lost acknowledged write would do to a register.
//!
//! **Deletes** write "no value", which every delete and the state before the first write share,
//! so a read of no value is explained by any of them: by the initial no-value or by any delete
//! that may have applied before the read returned (not one that failed). Each check above then
//! holds for every possible explanation at once: a read of no value is stale when the initial
//! no-value and every such delete were certainly overwritten before it began; a later read is
//! non-monotonic when what it returned is certainly older than everything the earlier read may
//! have returned. Sound for the same reason (the real linearization takes one of them), and
//! weaker than a check that knew which delete a read saw: a delete that applied but was
//! reported failed goes unseen.
//!
//! A read of a causal session (a snapshot from any replica at or above the session's token; its
//! writes still go through leaders) may be stale, so stale and non-monotonic reads across
//! processes do not apply to it. It is checked for the first three, and within its session
//! (the processes of one client, which takes a new process after an unknown outcome; a process
//! that joined no session is a session of its own) for **read-your-writes** (no value
//! certainly older than one the session wrote) and **monotonic reads** (none certainly older
//! than one the session read before; across processes since 2026-12-08, found by a review of
//! the checker): "certainly older" is the
//! same real-time order of acknowledged writes, which the versions follow, since writes are
//! linearizable in both modes.
//!
//! Times are the recorder's (simulated nanoseconds in the chaos harness). Two events at the
//! same instant are ordered as they were recorded (each gets a sequence number): an operation
//! is recorded as invoked before it is sent and as completed after its answer arrived, so
//! "recorded completed before recorded invoked" is real-time order whatever the clock's
//! resolution. The chaos harness's clock ticks once per simulated millisecond, and before
//! 2026-12-06 a write acknowledged and the READ its client sent right after shared an instant
//! and were not ordered, so a stale answer to that READ went unseen (found by a review).

use std::collections::BTreeMap;
use std::fmt;

/// What an operation does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Writes `value`, which no other write of the history uses.
    Write {
        /// The value written.
        value: String,
    },
    /// Deletes the register's value: until the next write, reads return no value, as they do
    /// before the first write. Deletes are told apart by time alone.
    Delete,
    /// Reads the register; once completed, the value it returned (`None`: no value).
    Read {
        /// The value returned.
        value: Option<String>,
    },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Not completed yet (the client is still waiting; for a write, as unknown as `Info`).
    Pending,
    /// Completed: the write applied, or the read returned its value.
    Ok,
    /// Certainly had no effect.
    Fail,
    /// The outcome of a write is unknown.
    Info,
}

/// One operation on one register.
#[derive(Clone, Debug)]
pub struct RegisterEvent {
    /// The client process.
    pub process: u64,
    /// The client session the process belongs to ([`RegisterHistory::join_session`]).
    pub session: Option<u64>,
    /// The register.
    pub key: String,
    /// The operation.
    pub op: RegisterOp,
    /// When it began.
    pub invoked: u64,
    /// When it completed (`None` while pending).
    pub completed: Option<u64>,
    /// Its invocation's place in recording order.
    pub invoked_seq: u64,
    /// Its completion's place in recording order.
    pub completed_seq: Option<u64>,
    /// How it ended.
    pub outcome: RegisterOutcome,
    /// A read of a causal session (a snapshot from any replica), checked for its session's
    /// guarantees only; every other operation is linearizable.
    pub causal: bool,
}

/// A point in real-time order: a time, then the recording order among events at that time.
type Stamp = (u64, u64);

impl RegisterEvent {
    /// When it began.
    fn invoked_at(&self) -> Stamp {
        (self.invoked, self.invoked_seq)
    }

    /// When it completed (`None` while pending).
    fn completed_at(&self) -> Option<Stamp> {
        Some((self.completed?, self.completed_seq?))
    }

    /// Whether `other` was made by the same client session (the same process, for processes
    /// of no session).
    fn same_session(&self, other: &RegisterEvent) -> bool {
        match (self.session, other.session) {
            (Some(a), Some(b)) => a == b,
            _ => self.process == other.process,
        }
    }

    /// When an acknowledged (`Ok`) operation completed.
    fn acknowledged_at(&self) -> Option<Stamp> {
        (self.outcome == RegisterOutcome::Ok).then(|| self.completed_at()).flatten()
    }
}

/// The operations of a run, in the order they began.
#[derive(Clone, Debug, Default)]
pub struct RegisterHistory {
    events: Vec<RegisterEvent>,
    /// Process -> the client session it belongs to.
    sessions: std::collections::BTreeMap<u64, u64>,
    /// Invocations and completions recorded so far.
    recorded: u64,
}

/// An anomaly found in a register history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterAnomaly {
    /// Which kind ("stale read", ...).
    pub kind: &'static str,
    /// The evidence, for people.
    pub detail: String,
}

impl fmt::Display for RegisterAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl RegisterHistory {
    /// An empty history.
    pub fn new() -> RegisterHistory {
        RegisterHistory::default()
    }

    /// Makes `process` one of client `session`'s processes (before its first operation): the
    /// causal checks follow a session across the processes an unknown outcome retires.
    pub fn join_session(&mut self, process: u64, session: u64) {
        self.sessions.insert(process, session);
    }

    /// Records a write of `value` to `key` beginning at `time`; returns its index.
    pub fn invoke_write(&mut self, process: u64, key: &str, value: &str, time: u64) -> usize {
        self.invoke(process, key, RegisterOp::Write { value: value.to_string() }, time)
    }

    /// Records a delete of `key` beginning at `time`; returns its index.
    pub fn invoke_delete(&mut self, process: u64, key: &str, time: u64) -> usize {
        self.invoke(process, key, RegisterOp::Delete, time)
    }

    /// Records a read of `key` beginning at `time`, linearizable or of a causal session
    /// (`causal`); returns its index.
    pub fn invoke_read(&mut self, process: u64, key: &str, causal: bool, time: u64) -> usize {
        let index = self.invoke(process, key, RegisterOp::Read { value: None }, time);
        self.events[index].causal = causal;
        index
    }

    fn invoke(&mut self, process: u64, key: &str, op: RegisterOp, time: u64) -> usize {
        self.recorded += 1;
        self.events.push(RegisterEvent {
            process,
            session: self.sessions.get(&process).copied(),
            key: key.to_string(),
            op,
            invoked: time,
            completed: None,
            invoked_seq: self.recorded,
            completed_seq: None,
            outcome: RegisterOutcome::Pending,
            causal: false,
        });
        self.events.len() - 1
    }

    /// Completes operation `index` at `time`: a read with the value it returned, a write or a
    /// delete with `value` `None`.
    pub fn ok(&mut self, index: usize, value: Option<&str>, time: u64) {
        let event = self.complete(index, RegisterOutcome::Ok, time);
        if let RegisterOp::Read { value: read } = &mut event.op {
            *read = value.map(str::to_string);
        } else {
            assert!(value.is_none(), "a write or a delete completes without a value");
        }
    }

    /// Completes operation `index` at `time` as certainly without effect.
    pub fn fail(&mut self, index: usize, time: u64) {
        self.complete(index, RegisterOutcome::Fail, time);
    }

    /// Completes write or delete `index` at `time` with an unknown outcome.
    pub fn info(&mut self, index: usize, time: u64) {
        let event = self.complete(index, RegisterOutcome::Info, time);
        assert!(is_update(event), "only a write's or a delete's outcome is unknown");
    }

    fn complete(
        &mut self,
        index: usize,
        outcome: RegisterOutcome,
        time: u64,
    ) -> &mut RegisterEvent {
        self.recorded += 1;
        let seq = self.recorded;
        let event = &mut self.events[index];
        assert_eq!(event.outcome, RegisterOutcome::Pending, "operation {index} completed twice");
        assert!(time >= event.invoked, "operation {index} completed before it began");
        event.outcome = outcome;
        event.completed = Some(time);
        event.completed_seq = Some(seq);
        event
    }

    /// The operations, in the order they began.
    pub fn events(&self) -> &[RegisterEvent] {
        &self.events
    }

    /// Counts, for people: `writes W (fail F, info I, deletes D), reads R (fail F, causal C,
    /// none N)`; writes count deletes, and "none" counts the reads that returned no value.
    pub fn summary(&self) -> String {
        let count = |update: bool, outcome: Option<RegisterOutcome>| {
            let events = self.events.iter();
            events
                .filter(|e| is_update(e) == update)
                .filter(|e| outcome.is_none_or(|o| e.outcome == o))
                .count()
        };
        let (fail, info) = (Some(RegisterOutcome::Fail), Some(RegisterOutcome::Info));
        let events = || self.events.iter();
        let deletes = events().filter(|e| matches!(e.op, RegisterOp::Delete)).count();
        let none = events()
            .filter(|e| e.outcome == RegisterOutcome::Ok)
            .filter(|e| matches!(e.op, RegisterOp::Read { value: None }))
            .count();
        format!(
            "writes {} (fail {}, info {}, deletes {deletes}), reads {} (fail {}, causal {}, none {none})",
            count(true, None),
            count(true, fail),
            count(true, info),
            count(false, None),
            count(false, fail),
            events().filter(|e| e.causal).count()
        )
    }

    /// One line per operation (for a run's fingerprint and for people).
    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let op = match &e.op {
                RegisterOp::Write { value } => format!("write {value}"),
                RegisterOp::Delete => "delete".to_string(),
                RegisterOp::Read { value } => format!(
                    "{}read {}",
                    if e.causal { "causal " } else { "" },
                    value.as_deref().unwrap_or("-")
                ),
            };
            out.push_str(&format!(
                "p{} {} {op} {}..{} {:?}\n",
                e.process,
                e.key,
                e.invoked,
                e.completed.map_or("-".to_string(), |t| t.to_string()),
                e.outcome
            ));
        }
        out
    }

    /// Every anomaly of the module's list, per register.
    pub fn check(&self) -> Vec<RegisterAnomaly> {
        let mut by_key: BTreeMap<&str, Vec<&RegisterEvent>> = BTreeMap::new();
        for event in &self.events {
            by_key.entry(event.key.as_str()).or_default().push(event);
        }
        let mut anomalies = Vec::new();
        for (key, events) in by_key {
            check_register(key, &events, &mut anomalies);
        }
        anomalies
    }
}

/// What a register held when a read took its value: the initial no-value (`None`), or the
/// write or delete (`Some`) that put it there.
type Source<'h> = Option<&'h RegisterEvent>;

/// A read that returned, with what may have put its value there: the write of its value, or,
/// for "no value", the initial no-value and the deletes it may have seen (never empty).
struct Observation<'h> {
    read: &'h RegisterEvent,
    sources: Vec<Source<'h>>,
}

/// The order in which a register's writes and deletes certainly took effect.
struct Order<'h> {
    /// Per value written, when the last linearizable read that returned it began: any such
    /// read that began after a write was acknowledged orders the two (see [`Order::after`]),
    /// so the latest one decides (before 2026-12-07 the first did, and one early read of a
    /// value hid the later ones that ordered it; found by a review of the checker).
    last_read: BTreeMap<&'h str, Stamp>,
}

impl<'h> Order<'h> {
    /// The order of `events` (one register's).
    fn of(events: &[&'h RegisterEvent]) -> Order<'h> {
        let mut last_read: BTreeMap<&'h str, Stamp> = BTreeMap::new();
        for read in events.iter().filter(|e| !e.causal && e.outcome == RegisterOutcome::Ok) {
            if let RegisterOp::Read { value: Some(value) } = &read.op {
                let at = last_read.entry(value.as_str()).or_insert(read.invoked_at());
                *at = (*at).max(read.invoked_at());
            }
        }
        Order { last_read }
    }

    /// Whether `later` certainly took effect after `earlier` (`None`: the initial value):
    /// `later` began after `earlier` was acknowledged, or a linearizable read that began after
    /// `earlier` was acknowledged returned `later`'s value (`earlier` took effect before that
    /// read, and `later` was the last to take effect before it; since 2026-12-07, found by a
    /// review: a write overlapping another one was never "certainly after" it, so a read of the
    /// older value after a read of the newer passed). Never of an operation and itself.
    fn after(&self, earlier: Source<'_>, later: &RegisterEvent) -> bool {
        let Some(earlier) = earlier else { return true };
        if std::ptr::eq(earlier, later) {
            return false;
        }
        let Some(acknowledged) = earlier.acknowledged_at() else { return false };
        if acknowledged < later.invoked_at() {
            return true;
        }
        match &later.op {
            RegisterOp::Write { value } => {
                self.last_read.get(value.as_str()).is_some_and(|read| acknowledged < *read)
            }
            RegisterOp::Delete | RegisterOp::Read { .. } => false,
        }
    }

    /// [`Order::after`] for two sources: the initial value is after nothing.
    fn source_after(&self, earlier: Source<'_>, later: Source<'_>) -> bool {
        later.is_some_and(|later| self.after(earlier, later))
    }

    /// Whether every source in `older` certainly took effect before every source in `newer`.
    fn all_before(&self, older: &[Source<'_>], newer: &[Source<'_>]) -> bool {
        older.iter().all(|old| newer.iter().all(|new| self.source_after(*old, *new)))
    }
}

fn is_update(event: &RegisterEvent) -> bool {
    matches!(event.op, RegisterOp::Write { .. } | RegisterOp::Delete)
}

fn describe(source: Source<'_>) -> String {
    let Some(w) = source else { return "the initial no-value".to_string() };
    let what = match &w.op {
        RegisterOp::Write { value } => value.clone(),
        RegisterOp::Delete => "no value".to_string(),
        RegisterOp::Read { .. } => unreachable!("a write or a delete"),
    };
    let by = if matches!(w.op, RegisterOp::Delete) { "deleted" } else { "written" };
    format!(
        "{what} ({by} by p{} {}..{}, {:?})",
        w.process,
        w.invoked,
        w.completed.map_or("-".to_string(), |t| t.to_string()),
        w.outcome
    )
}

fn describe_all(sources: &[Source<'_>]) -> String {
    let all: Vec<String> = sources.iter().map(|s| describe(*s)).collect();
    all.join(" or ")
}

fn check_register(key: &str, events: &[&RegisterEvent], anomalies: &mut Vec<RegisterAnomaly>) {
    let mut anomaly = |kind: &'static str, detail: String| {
        anomalies.push(RegisterAnomaly { kind, detail: format!("register {key}: {detail}") });
    };
    let mut writes: BTreeMap<&str, &RegisterEvent> = BTreeMap::new();
    for event in events {
        if let RegisterOp::Write { value } = &event.op
            && writes.insert(value.as_str(), event).is_some()
        {
            anomaly("duplicate write", format!("{value} is written twice (a harness bug)"));
        }
    }
    let order = Order::of(events);
    let deletes: Vec<&RegisterEvent> =
        events.iter().copied().filter(|e| matches!(e.op, RegisterOp::Delete)).collect();
    // The acknowledged write or delete, certainly after `source`, done before `read` began.
    let overwrite = |source: Source<'_>, read: &RegisterEvent| {
        events.iter().copied().find(|other| {
            is_update(other)
                && other.acknowledged_at().is_some_and(|at| at < read.invoked_at())
                && order.after(source, other)
        })
    };
    let mut observations = Vec::new();
    for read in events {
        let (RegisterOp::Read { value }, RegisterOutcome::Ok) = (&read.op, read.outcome) else {
            continue;
        };
        let completed = read.completed.expect("an ok read has completed");
        let completed_at = read.completed_at().expect("an ok read has completed");
        let possible: Vec<Source<'_>> = match value {
            // The initial no-value, or a delete that may have applied by the time it returned.
            None => std::iter::once(None)
                .chain(
                    deletes
                        .iter()
                        .filter(|d| {
                            d.outcome != RegisterOutcome::Fail && d.invoked_at() < completed_at
                        })
                        .map(|d| Some(*d)),
                )
                .collect(),
            Some(value) => match writes.get(value.as_str()) {
                Some(write) => vec![Some(*write)],
                None => {
                    anomaly(
                        "garbage read",
                        format!("a read at {completed} returned {value}, which no write wrote"),
                    );
                    continue;
                }
            },
        };
        if let [Some(w)] = possible[..]
            && matches!(w.op, RegisterOp::Write { .. })
        {
            if w.outcome == RegisterOutcome::Fail {
                anomaly(
                    "read of a failed write",
                    format!(
                        "a read at {}..{completed} returned {}",
                        read.invoked,
                        describe(Some(w))
                    ),
                );
            }
            if w.invoked_at() > completed_at {
                anomaly(
                    "future read",
                    format!(
                        "a read at {}..{completed} returned {}",
                        read.invoked,
                        describe(Some(w))
                    ),
                );
            }
        }
        if read.causal {
            observations.push(Observation { read, sources: possible });
            continue;
        }
        // Stale: every source it may have read was overwritten by an acknowledged write or
        // delete, certainly after it, done before the read began.
        let live: Vec<Source<'_>> =
            possible.iter().copied().filter(|s| overwrite(*s, read).is_none()).collect();
        debug_assert!(!possible.is_empty(), "a read has a possible source");
        if live.is_empty() {
            let last = possible[possible.len() - 1];
            let by = overwrite(last, read).expect("every source was overwritten");
            anomaly(
                "stale read",
                format!(
                    "a read at {}..{completed} returned {}, overwritten by {} before the read began",
                    read.invoked,
                    describe_all(&possible),
                    describe(Some(by))
                ),
            );
        }
        let sources = if live.is_empty() { possible } else { live };
        observations.push(Observation { read, sources });
    }
    check_sessions(events, &order, &observations, &mut anomaly);
    // Non-monotonic: a later read returns a value certainly older than every value the
    // earlier read may have taken its own from.
    let linearizable: Vec<&Observation<'_>> =
        observations.iter().filter(|o| !o.read.causal).collect();
    for earlier in &linearizable {
        let done = earlier.read.completed.expect("an ok read has completed");
        let done_at = earlier.read.completed_at().expect("an ok read has completed");
        for later in linearizable.iter().filter(|o| o.read.invoked_at() > done_at) {
            if order.all_before(&later.sources, &earlier.sources) {
                anomaly(
                    "non-monotonic reads",
                    format!(
                        "a read at {}..{done} returned {}, and a read at {}..{} after it returned {}, which that certainly overwrote",
                        earlier.read.invoked,
                        describe_all(&earlier.sources),
                        later.read.invoked,
                        later.read.completed.expect("ok"),
                        describe_all(&later.sources)
                    ),
                );
                break;
            }
        }
    }
}

/// Within each session, for its causal reads: no read returns a value certainly older than one
/// the session wrote or deleted (acknowledged) or read before it, whichever source its value
/// came from.
fn check_sessions(
    events: &[&RegisterEvent],
    order: &Order<'_>,
    observations: &[Observation<'_>],
    anomaly: &mut impl FnMut(&'static str, String),
) {
    for later in observations.iter().filter(|o| o.read.causal) {
        let before = |e: &RegisterEvent| {
            e.same_session(later.read)
                && e.completed_at().is_some_and(|t| t < later.read.invoked_at())
        };
        // For each source the read may have taken, a newer thing the process wrote or saw.
        let mut written = None;
        let mut seen = None;
        let all_older = later.sources.iter().all(|old| {
            let by_write = events.iter().copied().find(|w| {
                is_update(w)
                    && w.outcome == RegisterOutcome::Ok
                    && before(w)
                    && order.after(*old, w)
            });
            if let Some(w) = by_write {
                written.get_or_insert(w);
                return true;
            }
            let by_read = observations
                .iter()
                .find(|o| before(o.read) && order.all_before(&[*old], &o.sources));
            if let Some(o) = by_read {
                seen.get_or_insert(o);
                return true;
            }
            false
        });
        if !all_older {
            continue;
        }
        let (kind, newer) = match (written, seen) {
            (Some(w), None) => ("read-your-writes", format!("written {}", describe(Some(w)))),
            (_, Some(o)) => ("monotonic reads", format!("seen {}", describe_all(&o.sources))),
            (None, None) => unreachable!("a read has a source"),
        };
        anomaly(
            kind,
            format!(
                "p{} read {} at {}..{}, after it had {newer}",
                later.read.process,
                describe_all(&later.sources),
                later.read.invoked,
                later.read.completed.expect("ok"),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(history: &RegisterHistory) -> Vec<&'static str> {
        history.check().into_iter().map(|a| a.kind).collect()
    }

    /// w1 acknowledged at 10, w2 from 20 to 30.
    fn two_writes(second: RegisterOutcome) -> RegisterHistory {
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        h.ok(w1, None, 10);
        let w2 = h.invoke_write(2, "x", "b", 20);
        match second {
            RegisterOutcome::Ok => h.ok(w2, None, 30),
            RegisterOutcome::Fail => h.fail(w2, 30),
            RegisterOutcome::Info => h.info(w2, 30),
            RegisterOutcome::Pending => {}
        }
        h
    }

    fn read(h: &mut RegisterHistory, value: Option<&str>, from: u64, to: u64) {
        let r = h.invoke_read(3, "x", false, from);
        h.ok(r, value, to);
    }

    /// The anomalies of `two_writes(second)` followed by `reads` (value, began, ended).
    fn after_two_writes(
        second: RegisterOutcome,
        reads: &[(Option<&str>, u64, u64)],
    ) -> Vec<&'static str> {
        let mut h = two_writes(second);
        for (value, from, to) in reads {
            read(&mut h, *value, *from, *to);
        }
        kinds(&h)
    }

    #[test]
    fn a_linearizable_history_passes() {
        let reads = [
            (None, 0, 5), // before w1 completed: may miss it
            (Some("a"), 11, 15),
            (Some("a"), 22, 25), // concurrent with w2
            (Some("b"), 26, 28),
            (Some("b"), 40, 45),
        ];
        assert_eq!(after_two_writes(RegisterOutcome::Ok, &reads), Vec::<&str>::new());
    }

    #[test]
    fn a_value_overwritten_before_the_read_began_is_stale() {
        let stale = vec!["stale read"];
        assert_eq!(after_two_writes(RegisterOutcome::Ok, &[(Some("a"), 40, 45)]), stale);
        assert_eq!(after_two_writes(RegisterOutcome::Ok, &[(None, 40, 45)]), stale);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_but_a_failed_one_never() {
        // w2's outcome unknown: reading "a" after it is fine (w2 may not have applied), and
        // reading "b" is fine (it may have).
        let reads = [(Some("a"), 40, 45), (Some("b"), 50, 55)];
        assert_eq!(after_two_writes(RegisterOutcome::Info, &reads), Vec::<&str>::new());
        // A failed write must never be seen.
        let kinds = after_two_writes(RegisterOutcome::Fail, &[(Some("b"), 50, 55)]);
        assert_eq!(kinds, vec!["read of a failed write"]);
    }

    #[test]
    fn reads_must_not_go_back_in_time() {
        // w2 is unknown, so neither read alone is stale; but once a read saw b (which began
        // after a was acknowledged), a later read must not see a.
        let reads = [(Some("b"), 50, 55), (Some("a"), 60, 65)];
        assert_eq!(after_two_writes(RegisterOutcome::Info, &reads), vec!["non-monotonic reads"]);
        // Overlapping reads are not ordered.
        let reads = [(Some("b"), 50, 62), (Some("a"), 60, 65)];
        assert_eq!(after_two_writes(RegisterOutcome::Info, &reads), Vec::<&str>::new());
    }

    #[test]
    fn a_read_orders_overlapping_writes() {
        // w1 "a" acknowledged at 10; w2 "b" invoked at 5, before it, still running. A read
        // from 12 returned b, so b took effect after a: a later read of a went back in time.
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        let w2 = h.invoke_write(2, "x", "b", 5);
        h.ok(w1, None, 10);
        read(&mut h, Some("b"), 12, 14);
        read(&mut h, Some("a"), 16, 18);
        h.info(w2, 40);
        assert_eq!(kinds(&h), vec!["non-monotonic reads"]);
        // Acknowledged before a later read began, b makes a stale too; a read of b itself
        // after that is fine.
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        let w2 = h.invoke_write(2, "x", "b", 5);
        h.ok(w1, None, 10);
        read(&mut h, Some("b"), 12, 14);
        h.ok(w2, None, 15);
        read(&mut h, Some("b"), 16, 18);
        assert_eq!(kinds(&h), Vec::<&str>::new());
        // (That read also orders a after b, as a linearizable read of it would: an anomalous
        // history is reported more than once, a linearizable one never.)
        read(&mut h, Some("a"), 20, 22);
        assert!(kinds(&h).contains(&"stale read"), "{:?}", kinds(&h));
        // A read that began before a was acknowledged orders nothing.
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        let w2 = h.invoke_write(2, "x", "b", 5);
        read(&mut h, Some("b"), 8, 14);
        h.ok(w1, None, 10);
        read(&mut h, Some("a"), 16, 18);
        h.info(w2, 40);
        assert_eq!(kinds(&h), Vec::<&str>::new());
        // An early read of b orders nothing, a later one does: the latest read of a value
        // decides (the first one did, and this history passed; found by a review,
        // 2026-12-07).
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        let w2 = h.invoke_write(2, "x", "b", 1);
        read(&mut h, Some("b"), 2, 3);
        h.ok(w1, None, 10);
        read(&mut h, Some("b"), 20, 21);
        read(&mut h, Some("a"), 30, 31);
        h.ok(w2, None, 50);
        assert!(kinds(&h).contains(&"non-monotonic reads"), "{:?}", kinds(&h));
    }

    #[test]
    fn events_at_one_instant_are_ordered_as_recorded() {
        // The write's acknowledgement and the READ its client sends next share the clock's
        // instant 10; recorded in that order, the READ began after the write was acknowledged,
        // so its answer "no value" is stale.
        let mut h = RegisterHistory::new();
        let w = h.invoke_write(1, "x", "a", 0);
        h.ok(w, None, 10);
        let r = h.invoke_read(1, "x", false, 10);
        h.ok(r, None, 12);
        assert_eq!(kinds(&h), vec!["stale read"]);
        // Recorded the other way round (the READ began first), it may have missed the write.
        let mut h = RegisterHistory::new();
        let w = h.invoke_write(1, "x", "a", 0);
        let r = h.invoke_read(2, "x", false, 10);
        h.ok(w, None, 10);
        h.ok(r, None, 12);
        assert_eq!(kinds(&h), Vec::<&str>::new());
    }

    #[test]
    fn garbage_and_future_reads_are_found() {
        let garbage = after_two_writes(RegisterOutcome::Ok, &[(Some("zz"), 50, 55)]);
        assert_eq!(garbage, vec!["garbage read"]);
        let mut h = RegisterHistory::new();
        read(&mut h, Some("a"), 0, 5);
        let w = h.invoke_write(1, "x", "a", 10);
        h.ok(w, None, 20);
        assert_eq!(kinds(&h), vec!["future read"]);
    }

    #[test]
    fn a_causal_session_sees_its_own_writes_and_never_goes_back() {
        let causal_reads = |second: RegisterOutcome, reads: &[(u64, &str, u64)]| {
            let mut h = two_writes(second);
            for (process, value, from) in reads {
                let r = h.invoke_read(*process, "x", true, *from);
                h.ok(r, Some(value), from + 5);
            }
            kinds(&h)
        };
        // A causal read may return a value certainly overwritten (a stale snapshot)...
        assert_eq!(causal_reads(RegisterOutcome::Ok, &[(3, "a", 40)]), Vec::<&str>::new());
        // ...but not to the process that wrote the newer value (p2 wrote b after a)...
        let kinds = causal_reads(RegisterOutcome::Ok, &[(2, "a", 40)]);
        assert_eq!(kinds, vec!["read-your-writes"]);
        // ...nor to one that read it before.
        let kinds = causal_reads(RegisterOutcome::Info, &[(3, "b", 40), (3, "a", 50)]);
        assert_eq!(kinds, vec!["monotonic reads"]);
        // Another process's earlier read does not count.
        let kinds = causal_reads(RegisterOutcome::Info, &[(3, "b", 40), (4, "a", 50)]);
        assert_eq!(kinds, Vec::<&str>::new());
    }

    /// A client takes a new process after an unknown outcome and keeps its session: the
    /// session's guarantees hold across the change (before 2026-12-08 they were checked per
    /// process, and a read-your-writes violation right after an unknown outcome passed).
    #[test]
    fn a_causal_session_keeps_its_guarantees_across_its_processes() {
        let mut h = RegisterHistory::new();
        h.join_session(2, 9);
        h.join_session(5, 9);
        let w1 = h.invoke_write(1, "x", "a", 0);
        h.ok(w1, None, 10);
        let w2 = h.invoke_write(2, "x", "b", 20);
        h.ok(w2, None, 30);
        let w3 = h.invoke_write(2, "y", "c", 32);
        h.info(w3, 34);
        // Process 5 continues session 9 after process 2's unknown outcome.
        let r = h.invoke_read(5, "x", true, 40);
        h.ok(r, Some("a"), 45);
        assert_eq!(kinds(&h), vec!["read-your-writes"]);
    }

    /// A read of the tests with deletes: process, value, began, causal (each ends 5 later).
    type Read<'a> = (u64, Option<&'a str>, u64, bool);
    /// A case: its name, the delete's outcome, when c's write begins, the reads, the anomalies.
    type Case<'a> = (&'a str, RegisterOutcome, u64, &'a [Read<'a>], Vec<&'a str>);

    /// w1 "a" acknowledged at 10, a delete from 20 to 30 ending `delete`, then w3 "c" from
    /// `c_from` to `c_from + 10` (acknowledged), and the reads.
    fn with_a_delete(
        delete: RegisterOutcome,
        c_from: u64,
        reads: &[Read<'_>],
    ) -> Vec<&'static str> {
        let mut h = RegisterHistory::new();
        let w1 = h.invoke_write(1, "x", "a", 0);
        h.ok(w1, None, 10);
        let d = h.invoke_delete(2, "x", 20);
        match delete {
            RegisterOutcome::Ok => h.ok(d, None, 30),
            RegisterOutcome::Fail => h.fail(d, 30),
            RegisterOutcome::Info => h.info(d, 30),
            RegisterOutcome::Pending => {}
        }
        let w3 = h.invoke_write(1, "x", "c", c_from);
        h.ok(w3, None, c_from + 10);
        for (process, value, from, causal) in reads {
            let r = h.invoke_read(*process, "x", *causal, *from);
            h.ok(r, *value, from + 5);
        }
        kinds(&h)
    }

    #[test]
    fn deletes_are_checked_like_writes_of_no_value() {
        use RegisterOutcome::{Fail, Info, Ok};
        let none = Vec::<&str>::new();
        #[rustfmt::skip]
        let cases: &[Case<'_>] = &[
            ("no value after the delete, before c", Ok, 100, &[(3, None, 40, false)], none.clone()),
            ("a after the delete was acknowledged", Ok, 100, &[(3, Some("a"), 40, false)], vec!["stale read"]),
            ("no value after c, the delete overwritten", Ok, 50, &[(3, None, 70, false)], vec!["stale read"]),
            ("no value during c", Ok, 50, &[(3, None, 55, false)], none.clone()),
            ("a failed delete is never the no-value", Fail, 100, &[(3, None, 40, false)], vec!["stale read"]),
            ("an unknown delete may apply late", Info, 100, &[(3, None, 40, false), (3, None, 60, false)], none.clone()),
            // Once a read saw the delete (the initial no-value was overwritten by a before it
            // began), a later read must not see a again.
            ("a after a read saw the delete", Info, 100, &[(3, None, 40, false), (3, Some("a"), 50, false)], vec!["non-monotonic reads"]),
            ("a and the delete unordered", Info, 100, &[(3, Some("a"), 40, false), (3, None, 50, false)], none.clone()),
            // A causal read may be stale, but not to the process that deleted...
            ("causal a, another process", Ok, 100, &[(3, Some("a"), 40, true)], none.clone()),
            ("causal a, the deleting process", Ok, 100, &[(2, Some("a"), 40, true)], vec!["read-your-writes"]),
            // ...nor no value to the process that wrote c after the delete...
            ("causal no value, c's writer", Ok, 50, &[(1, None, 70, true)], vec!["read-your-writes"]),
            // ...unless c's write was concurrent with the delete.
            ("causal no value, c concurrent", Ok, 25, &[(1, None, 70, true)], none.clone()),
            // ...nor a to a process that read no value after a was acknowledged.
            ("causal a after no value", Info, 100, &[(3, None, 40, false), (3, Some("a"), 50, true)], vec!["monotonic reads"]),
        ];
        for (name, delete, c_from, reads, expected) in cases {
            assert_eq!(&with_a_delete(*delete, *c_from, reads), expected, "{name}");
        }
    }

    #[test]
    fn registers_are_checked_apart() {
        let mut h = two_writes(RegisterOutcome::Ok);
        let r = h.invoke_read(3, "y", false, 40);
        h.ok(r, None, 45); // y was never written
        assert_eq!(kinds(&h), Vec::<&str>::new());
    }
}
