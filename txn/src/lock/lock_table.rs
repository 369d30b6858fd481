//! [`LockTable`]: the locks and the wait queue of one shard leader. The protocol, the
//! compatibility matrix and the invariants are in the [module docs](super).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::VecDeque;
use std::ops::Bound;

use super::Acquired;
use super::Blocker;
use super::Grant;
use super::LockMode;
use super::LockSpan;
use super::RequestId;
use super::WaitInfo;
use super::span::range_contains;
use crate::types::Key;
use crate::types::TxnId;
use crate::types::display_key;

/// The lock table of one shard leader for one Raft term: held locks, one FIFO wait queue, and
/// an index by transaction. Deterministic and free of I/O: the server calls it, it never calls
/// out. See the [module docs](super) for the protocol and the invariants.
#[derive(Debug)]
pub struct LockTable {
    /// The leader term the table was created in. Grants are only good in this term: a new
    /// leader starts a new table (and rebuilds the locks of prepared transactions with
    /// [`LockTable::restore_exclusive`]), so "the lock is held in this table" implies "held in
    /// this term", which is what prepare checks.
    term: u64,
    /// The id the next queued request gets. Ids are only taken by requests that wait.
    next_request: u64,
    /// Shared key locks: key to holders. Never an empty set. A transaction that holds a key
    /// exclusively is listed in `exclusive` only (a transaction holds its strongest mode once).
    shared: BTreeMap<Key, BTreeSet<TxnId>>,
    /// Exclusive key locks: key to its one holder. Kept apart from `shared` so that a range
    /// request only walks the exclusively locked keys inside it, not every read key.
    exclusive: BTreeMap<Key, TxnId>,
    /// Shared range locks by first key: `from` to the set of `(holder, to)`. Never an empty
    /// set. "Which ranges cover key k" walks the entries with `from <= k`: ranges are few (one
    /// per SCAN of a live transaction), so this beats an interval tree at our sizes.
    ranges: BTreeMap<Key, BTreeSet<(TxnId, Option<Key>)>>,
    /// Waiting requests in grant order: every upgrade before every other request, each part in
    /// arrival order. Tens of entries at most, so it is scanned rather than indexed.
    queue: VecDeque<Request>,
    /// What each transaction holds and where it waits; a transaction with nothing is absent.
    txns: BTreeMap<TxnId, TxnLocks>,
}

/// A waiting request.
#[derive(Clone, Debug)]
struct Request {
    /// Its id, the wait epoch.
    id: RequestId,
    /// Its transaction.
    txn: TxnId,
    /// What it asks for.
    span: LockSpan,
    /// How strongly.
    mode: LockMode,
    /// True for S->X on a key the transaction held shared when it asked: such requests queue
    /// ahead of all others, or they would wait behind requests that wait for them.
    upgrade: bool,
}

impl Request {
    /// The wait-for edge this request creates for a request queued behind it.
    fn as_blocker(&self) -> Blocker {
        Blocker { txn: self.txn, span: self.span.clone(), mode: self.mode }
    }
}

/// What one transaction holds in the table, and its waiting request.
#[derive(Clone, Debug, Default)]
struct TxnLocks {
    /// Keys held shared (not those held exclusively).
    shared: BTreeSet<Key>,
    /// Keys held exclusively.
    exclusive: BTreeSet<Key>,
    /// Ranges held (always shared), as `(from, to)`, each with the number of requests that
    /// hold it: every granted range request holds its own count, even one the transaction's
    /// other ranges covered already, so that [`LockTable::narrow_range`] gives up only the
    /// narrowing request's hold, never a range another statement of the transaction relies on
    /// (a copy of a SCAN delivered late, running next to the next statement; found by a
    /// review, 2026-12-06).
    ranges: BTreeMap<(Key, Option<Key>), usize>,
    /// The transaction's one waiting request, if any.
    waiting: Option<RequestId>,
}

impl TxnLocks {
    fn is_empty(&self) -> bool {
        self.shared.is_empty()
            && self.exclusive.is_empty()
            && self.ranges.is_empty()
            && self.waiting.is_none()
    }
}

impl LockTable {
    /// An empty table for a leader in `term`. One table per shard leader term: grants remember
    /// the term through the table that made them.
    pub fn new(term: u64) -> LockTable {
        LockTable {
            term,
            next_request: 1,
            shared: BTreeMap::new(),
            exclusive: BTreeMap::new(),
            ranges: BTreeMap::new(),
            queue: VecDeque::new(),
            txns: BTreeMap::new(),
        }
    }

    /// The leader term the table was created in.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Asks for a lock. Granted at once when `txn` already holds it (or something stronger), or
    /// when nothing held by another transaction and nothing queued by another transaction
    /// conflicts (an S->X upgrade only looks at held locks). Otherwise the request queues and
    /// its id is returned; a later [`release_all`](Self::release_all),
    /// [`release_shared`](Self::release_shared) or [`cancel`](Self::cancel) reports the grant.
    /// An empty range (`to <= from`) covers no key and is granted without recording anything;
    /// a range the transaction covers already is granted and recorded (one more hold).
    ///
    /// Panics if `txn` already waits in this table (one statement at a time per shard), or if a
    /// range is asked for in exclusive mode.
    pub fn acquire(&mut self, txn: TxnId, span: LockSpan, mode: LockMode) -> Acquired {
        if let Some(request) = self.waiting(txn) {
            panic!("{txn} asks for {span} {mode} while its request {request} still waits");
        }
        assert!(
            matches!(span, LockSpan::Key(_)) || mode == LockMode::Shared,
            "{txn} asks for {span} in mode {mode}: ranges are only ever locked shared"
        );
        if span.is_empty() {
            return Acquired::Granted;
        }
        if self.covers(txn, &span, mode) {
            // Recorded when only ranges cover it, which a narrowing may shrink (a late copy of
            // a limited SCAN, next to this statement): the statement's own lock then stays.
            match span {
                LockSpan::Range { from, to } => self.hold_range(txn, from, to),
                LockSpan::Key(key) if !self.holds_key(txn, &key) => {
                    self.grant(txn, LockSpan::Key(key), LockMode::Shared);
                }
                LockSpan::Key(_) => {}
            }
            return Acquired::Granted;
        }
        let upgrade = match &span {
            LockSpan::Key(key) => {
                mode == LockMode::Exclusive && self.holds(txn, key, LockMode::Shared)
            }
            LockSpan::Range { .. } => false,
        };
        let held_free = self.held_blockers(txn, &span, mode).is_empty();
        // An upgrade ignores the queue: everything queued behind a holder waits for it anyway.
        let queue_free =
            upgrade || !self.queue.iter().any(|ahead| self.holds_up(ahead, txn, &span, mode));
        if held_free && queue_free {
            self.grant(txn, span, mode);
            return Acquired::Granted;
        }

        let id = RequestId(self.next_request);
        self.next_request = self.next_request.checked_add(1).expect("request ids exhausted");
        assert!(
            self.queue.iter().all(|queued| queued.id < id),
            "request id {id} not above every queued id"
        );
        let position = if upgrade {
            self.queue.iter().take_while(|queued| queued.upgrade).count()
        } else {
            self.queue.len()
        };
        self.queue.insert(position, Request { id, txn, span, mode, upgrade });
        let locks = self.txns.entry(txn).or_default();
        assert!(locks.waiting.is_none(), "{txn} waits twice");
        locks.waiting = Some(id);
        assert!(!self.blockers(id).is_empty(), "{txn} queued {id} without any blocker");
        Acquired::Waiting(id)
    }

    /// Releases every lock of `txn` and withdraws its waiting request (txn commit or abort).
    /// Returns the waiting requests granted as a consequence, in grant order.
    pub fn release_all(&mut self, txn: TxnId) -> Vec<Grant> {
        let Some(locks) = self.txns.remove(&txn) else {
            return Vec::new();
        };
        self.unindex_shared(txn, &locks.shared, locks.ranges.keys());
        for key in &locks.exclusive {
            let holder = self.exclusive.remove(key);
            assert_eq!(holder, Some(txn), "index says {txn} holds X {}", display_key(key));
        }
        if let Some(request) = locks.waiting {
            let position = self.position(request).expect("indexed waiting request is queued");
            self.queue.remove(position);
        }
        self.regrant()
    }

    /// Releases the shared key locks and ranges of `txn` and keeps its exclusive locks (and a
    /// waiting request, if any): what a participant does when it prepares. Returns the waiting
    /// requests granted as a consequence, in grant order.
    pub fn release_shared(&mut self, txn: TxnId) -> Vec<Grant> {
        let Some(locks) = self.txns.get_mut(&txn) else {
            return Vec::new();
        };
        let shared = std::mem::take(&mut locks.shared);
        let ranges = std::mem::take(&mut locks.ranges);
        if locks.is_empty() {
            self.txns.remove(&txn);
        }
        self.unindex_shared(txn, &shared, ranges.keys());
        self.regrant()
    }

    /// Shrinks one hold of the range `[from, to)` that `txn` holds to `[from, end)`, `end`
    /// inside it: a SCAN that stopped at its LIMIT read nothing past its last row, so it keeps
    /// writers out of what it read and of the gaps between (no phantoms there), not of the rest
    /// of the range it was given. Another hold of the same range (another statement's) stays.
    /// Returns the requests granted as a consequence, or `None` if `txn` does not hold that
    /// range (released meanwhile). The caller narrows only a hold its own request took.
    ///
    /// Panics unless `from < end` and `end < to`.
    pub fn narrow_range(
        &mut self,
        txn: TxnId,
        from: &[u8],
        to: Option<&[u8]>,
        end: Key,
    ) -> Option<Vec<Grant>> {
        assert!(
            from < end.as_slice() && to.is_none_or(|to| end.as_slice() < to),
            "{txn} narrows a range to an end outside it"
        );
        let locks = self.txns.get_mut(&txn)?;
        let held = (from.to_vec(), to.map(<[u8]>::to_vec));
        let holds = locks.ranges.get_mut(&held)?;
        *holds -= 1;
        if *holds == 0 {
            locks.ranges.remove(&held);
            self.unindex_range(txn, from, &held.1);
        }
        self.hold_range(txn, from.to_vec(), Some(end));
        Some(self.regrant())
    }

    /// Withdraws a waiting request (lock-wait timeout, deadlock victim). Returns its
    /// transaction and the requests granted as a consequence, or `None` if `request` is not
    /// waiting (already granted or cancelled: the epoch has passed).
    pub fn cancel(&mut self, request: RequestId) -> Option<(TxnId, Vec<Grant>)> {
        let position = self.position(request)?;
        let removed = self.queue.remove(position).expect("position of a queued request");
        let locks = self.txns.get_mut(&removed.txn).expect("a waiting txn is indexed");
        assert_eq!(locks.waiting, Some(request), "index disagrees on {}'s request", removed.txn);
        locks.waiting = None;
        if locks.is_empty() {
            self.txns.remove(&removed.txn);
        }
        Some((removed.txn, self.regrant()))
    }

    /// The wait-for edges of a waiting request: every other transaction holding a conflicting
    /// lock, then every other transaction with a conflicting request queued ahead, one edge per
    /// transaction (the first span found). Empty if `request` is not waiting.
    pub fn blockers(&self, request: RequestId) -> Vec<Blocker> {
        match self.position(request) {
            Some(position) => self.blockers_at(position),
            None => Vec::new(),
        }
    }

    /// The waiting request of `txn` in this table, if any.
    pub fn waiting(&self, txn: TxnId) -> Option<RequestId> {
        self.txns.get(&txn).and_then(|locks| locks.waiting)
    }

    /// The transaction of a waiting request.
    pub fn request_txn(&self, request: RequestId) -> Option<TxnId> {
        self.queue.iter().find(|queued| queued.id == request).map(|queued| queued.txn)
    }

    /// True when `txn` holds a lock on `key` at least as strong as `mode`: X implies S, and a
    /// range held covers every key inside it in S mode.
    pub fn holds(&self, txn: TxnId, key: &[u8], mode: LockMode) -> bool {
        let Some(locks) = self.txns.get(&txn) else {
            return false;
        };
        if locks.exclusive.contains(key) {
            return true;
        }
        mode == LockMode::Shared
            && (locks.shared.contains(key)
                || locks.ranges.keys().any(|(from, to)| range_contains(from, to.as_deref(), key)))
    }

    /// True when `txn` holds a lock on `key` itself (S or X), not only through a range.
    fn holds_key(&self, txn: TxnId, key: &[u8]) -> bool {
        self.txns
            .get(&txn)
            .is_some_and(|locks| locks.shared.contains(key) || locks.exclusive.contains(key))
    }

    /// True when the ranges `txn` holds cover every key of `[from, to)` (their union counts, so
    /// two adjacent SCANs cover the range spanning both).
    pub fn holds_range(&self, txn: TxnId, from: &[u8], to: Option<&[u8]>) -> bool {
        if to.is_some_and(|to| to <= from) {
            return true;
        }
        let Some(locks) = self.txns.get(&txn) else {
            return false;
        };
        // Walks the held ranges by first key, extending the covered prefix [from, reached).
        let mut reached: &[u8] = from;
        for (start, end) in locks.ranges.keys() {
            if start.as_slice() > reached {
                return false;
            }
            match end {
                None => return true,
                Some(end) if end.as_slice() > reached => reached = end,
                Some(_) => {}
            }
            if to.is_some_and(|to| reached >= to) {
                return true;
            }
        }
        false
    }

    /// Grants exclusive locks on `keys` to `txn` without queueing: a new leader rebuilding the
    /// locks of the transactions prepared in the log. Keys already held X are skipped; an S
    /// lock of `txn` is upgraded.
    ///
    /// Panics if another transaction holds a conflicting lock: two prepared transactions never
    /// write one key, so that is a bug in whoever rebuilt the table.
    pub fn restore_exclusive(&mut self, txn: TxnId, keys: impl IntoIterator<Item = Key>) {
        for key in keys {
            if self.holds(txn, &key, LockMode::Exclusive) {
                continue;
            }
            self.grant(txn, LockSpan::Key(key), LockMode::Exclusive);
        }
    }

    /// True when `txn` holds or waits for anything here.
    pub fn has_txn(&self, txn: TxnId) -> bool {
        self.txns.contains_key(&txn)
    }

    /// Every transaction holding a lock or waiting, sorted.
    pub fn txns(&self) -> Vec<TxnId> {
        self.txns.keys().copied().collect()
    }

    /// Every waiting request in queue (grant) order, with its blockers.
    pub fn waits(&self) -> Vec<WaitInfo> {
        (0..self.queue.len())
            .map(|position| {
                let request = &self.queue[position];
                WaitInfo {
                    request: request.id,
                    txn: request.txn,
                    span: request.span.clone(),
                    mode: request.mode,
                    blockers: self.blockers_at(position),
                }
            })
            .collect()
    }

    /// The locks `txn` holds: exclusive keys, then shared keys, then ranges, each sorted.
    pub fn held(&self, txn: TxnId) -> Vec<(LockSpan, LockMode)> {
        let Some(locks) = self.txns.get(&txn) else {
            return Vec::new();
        };
        let exclusive =
            locks.exclusive.iter().map(|key| (LockSpan::Key(key.clone()), LockMode::Exclusive));
        let shared = locks.shared.iter().map(|key| (LockSpan::Key(key.clone()), LockMode::Shared));
        let ranges = locks.ranges.keys().map(|(from, to)| {
            (LockSpan::Range { from: from.clone(), to: to.clone() }, LockMode::Shared)
        });
        exclusive.chain(shared).chain(ranges).collect()
    }

    /// True when nothing is held and nothing waits.
    pub fn is_empty(&self) -> bool {
        let empty = self.txns.is_empty();
        let maps_empty = self.queue.is_empty()
            && self.exclusive.is_empty()
            && self.shared.is_empty()
            && self.ranges.is_empty();
        assert_eq!(empty, maps_empty, "index out of sync with the lock maps");
        empty
    }

    /// Checks every invariant of the [module docs](super) over the whole table (linear in its
    /// size). Tests call it after every step; mutations assert the local part as they go.
    pub fn check_invariants(&self) {
        self.check_held();
        self.check_queue();
        self.check_index();
    }

    /// Records a lock for `txn`. The caller has checked re-entrance; conflicts are asserted.
    fn grant(&mut self, txn: TxnId, span: LockSpan, mode: LockMode) {
        let conflicts = self.held_blockers(txn, &span, mode);
        assert!(conflicts.is_empty(), "granting {txn} {span} {mode} despite {conflicts:?}");
        let locks = self.txns.entry(txn).or_default();
        match (span, mode) {
            (LockSpan::Key(key), LockMode::Shared) => {
                assert!(!locks.exclusive.contains(&key), "{txn} granted S under its own X");
                assert!(locks.shared.insert(key.clone()), "{txn} granted S twice");
                self.shared.entry(key).or_default().insert(txn);
            }
            (LockSpan::Key(key), LockMode::Exclusive) => {
                if locks.shared.remove(&key) {
                    remove_holder(&mut self.shared, &key, txn);
                }
                assert!(locks.exclusive.insert(key.clone()), "{txn} granted X twice");
                let previous = self.exclusive.insert(key, txn);
                assert!(previous.is_none(), "two X holders: {previous:?} and {txn}");
            }
            (LockSpan::Range { from, to }, mode) => {
                assert_eq!(mode, LockMode::Shared, "exclusive range");
                assert!(to.as_ref().is_none_or(|to| &from < to), "{txn} granted an empty range");
                self.hold_range(txn, from, to);
            }
        }
    }

    /// Records one more hold of the range `[from, to)` by `txn` (indexed on its first).
    fn hold_range(&mut self, txn: TxnId, from: Key, to: Option<Key>) {
        let locks = self.txns.entry(txn).or_default();
        let holds = locks.ranges.entry((from.clone(), to.clone())).or_insert(0);
        *holds += 1;
        if *holds == 1 {
            self.ranges.entry(from).or_default().insert((txn, to));
        }
    }

    /// Walks the queue in order and grants every request that conflicts neither with a lock
    /// held by another transaction nor with an earlier, still waiting request of another
    /// transaction that does not wait for it ([`LockTable::holds_up`]). Returns the grants in
    /// order.
    fn regrant(&mut self) -> Vec<Grant> {
        let queue = std::mem::take(&mut self.queue);
        let mut still_waiting: VecDeque<Request> = VecDeque::with_capacity(queue.len());
        let mut grants = Vec::new();
        for request in queue {
            let held_free = self.held_blockers(request.txn, &request.span, request.mode).is_empty();
            let queue_free = !still_waiting
                .iter()
                .any(|ahead| self.holds_up(ahead, request.txn, &request.span, request.mode));
            if !(held_free && queue_free) {
                still_waiting.push_back(request);
                continue;
            }
            let locks = self.txns.get_mut(&request.txn).expect("a waiting txn is indexed");
            assert_eq!(locks.waiting, Some(request.id), "{} waits elsewhere", request.txn);
            locks.waiting = None;
            self.grant(request.txn, request.span, request.mode);
            grants.push(Grant { request: request.id, txn: request.txn });
        }
        self.queue = still_waiting;
        grants
    }

    /// Removes shared key locks and ranges of `txn` from the key-side maps (the caller updates
    /// the per-transaction index).
    fn unindex_shared<'a>(
        &mut self,
        txn: TxnId,
        keys: &BTreeSet<Key>,
        ranges: impl Iterator<Item = &'a (Key, Option<Key>)>,
    ) {
        for key in keys {
            remove_holder(&mut self.shared, key, txn);
        }
        for (from, to) in ranges {
            self.unindex_range(txn, from, to);
        }
    }

    /// Removes `txn`'s range `[from, to)` from the range index, dropping the entry of `from`
    /// when it empties (the caller updates the per-transaction index).
    fn unindex_range(&mut self, txn: TxnId, from: &[u8], to: &Option<Key>) {
        let holders = self.ranges.get_mut(from).expect("indexed range is held");
        assert!(holders.remove(&(txn, to.clone())), "index says {txn} holds a range");
        if holders.is_empty() {
            self.ranges.remove(from);
        }
    }

    /// True when `txn` already holds `span` at least as strongly as `mode`.
    fn covers(&self, txn: TxnId, span: &LockSpan, mode: LockMode) -> bool {
        match span {
            LockSpan::Key(key) => self.holds(txn, key, mode),
            LockSpan::Range { from, to } => self.holds_range(txn, from, to.as_deref()),
        }
    }

    /// The queue position of a waiting request.
    fn position(&self, request: RequestId) -> Option<usize> {
        self.queue.iter().position(|queued| queued.id == request)
    }

    /// The blockers of the request at `position` (see [`LockTable::blockers`]).
    fn blockers_at(&self, position: usize) -> Vec<Blocker> {
        let request = &self.queue[position];
        let mut found = self.held_blockers(request.txn, &request.span, request.mode);
        found.extend(
            self.queue
                .iter()
                .take(position)
                .filter(|ahead| self.holds_up(ahead, request.txn, &request.span, request.mode))
                .map(Request::as_blocker),
        );
        let mut seen = BTreeSet::new();
        found.retain(|blocker| seen.insert(blocker.txn));
        found
    }

    /// True when the waiting request `ahead`, queued before a request of `txn` for `span` in
    /// `mode`, makes that request wait: it is another transaction's, it conflicts, and it does
    /// not itself wait for a lock `txn` holds. A request that waits for `txn` cannot be granted
    /// before `txn` ends (or prepares, for S locks), so queueing `txn` behind it would only make
    /// a cycle out of two transactions that do not really conflict; and only the transactions
    /// it waits for anyway can overtake it, so it is not starved.
    fn holds_up(&self, ahead: &Request, txn: TxnId, span: &LockSpan, mode: LockMode) -> bool {
        ahead.txn != txn
            && ahead.span.conflicts(ahead.mode, span, mode)
            && !self
                .held_blockers(ahead.txn, &ahead.span, ahead.mode)
                .iter()
                .any(|blocker| blocker.txn == txn)
    }

    /// Every lock held by a transaction other than `txn` that conflicts with `span` in `mode`,
    /// in a fixed order (X holder, S holders, covering ranges; or X keys inside a range). May
    /// name one transaction more than once.
    fn held_blockers(&self, txn: TxnId, span: &LockSpan, mode: LockMode) -> Vec<Blocker> {
        let mut found = Vec::new();
        match span {
            LockSpan::Key(key) => {
                if let Some(&holder) = self.exclusive.get(key)
                    && holder != txn
                {
                    found.push(Blocker {
                        txn: holder,
                        span: span.clone(),
                        mode: LockMode::Exclusive,
                    });
                }
                if mode == LockMode::Exclusive {
                    for &holder in self.shared.get(key).into_iter().flatten() {
                        if holder != txn {
                            let span = span.clone();
                            found.push(Blocker { txn: holder, span, mode: LockMode::Shared });
                        }
                    }
                    for (from, holder, to) in self.ranges_covering(key) {
                        if holder != txn {
                            let span = LockSpan::Range { from: from.clone(), to: to.clone() };
                            found.push(Blocker { txn: holder, span, mode: LockMode::Shared });
                        }
                    }
                }
            }
            LockSpan::Range { from, to } => {
                for (key, &holder) in self.exclusive_within(from, to.as_deref()) {
                    if holder != txn {
                        let span = LockSpan::Key(key.clone());
                        found.push(Blocker { txn: holder, span, mode: LockMode::Exclusive });
                    }
                }
            }
        }
        found
    }

    /// The held ranges that contain `key`, as `(from, holder, to)`.
    fn ranges_covering<'a>(
        &'a self,
        key: &'a [u8],
    ) -> impl Iterator<Item = (&'a Key, TxnId, &'a Option<Key>)> + 'a {
        self.ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .flat_map(|(from, holders)| holders.iter().map(move |(txn, to)| (from, *txn, to)))
            .filter(move |(_, _, to)| to.as_deref().is_none_or(|to| key < to))
    }

    /// The exclusively locked keys inside `[from, to)`, which must not be empty.
    fn exclusive_within<'a>(
        &'a self,
        from: &'a [u8],
        to: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Key, &'a TxnId)> + 'a {
        assert!(to.is_none_or(|to| from < to), "empty range [{}, ..)", display_key(from));
        let end = to.map_or(Bound::Unbounded, Bound::Excluded);
        self.exclusive.range::<[u8], _>((Bound::Included(from), end))
    }

    /// No two transactions hold conflicting locks; maps hold no empty sets.
    fn check_held(&self) {
        for (key, &holder) in &self.exclusive {
            let readers = self.shared.get(key);
            assert!(
                readers.is_none(),
                "{} held X by {holder} and S by {readers:?}",
                display_key(key)
            );
            for (from, other, _) in self.ranges_covering(key) {
                assert_eq!(
                    other,
                    holder,
                    "X on {} inside range of {other} from {from:?}",
                    display_key(key)
                );
            }
        }
        for (key, holders) in &self.shared {
            assert!(!holders.is_empty(), "empty holder set for {}", display_key(key));
        }
        for (from, holders) in &self.ranges {
            assert!(!holders.is_empty(), "empty range set at {}", display_key(from));
            for (holder, to) in holders {
                let span = LockSpan::Range { from: from.clone(), to: to.clone() };
                assert!(!span.is_empty(), "{holder} holds the empty {span}");
            }
        }
    }

    /// The queue is upgrades then others, each by increasing id; every request has a blocker,
    /// never itself, and is not already satisfied; one request per transaction.
    fn check_queue(&self) {
        let mut seen_txns = BTreeSet::new();
        let mut previous: Option<&Request> = None;
        for (position, request) in self.queue.iter().enumerate() {
            assert!(request.id.0 < self.next_request, "{} not yet handed out", request.id);
            if let Some(previous) = previous {
                assert!(previous.upgrade || !request.upgrade, "upgrade {} queued late", request.id);
                if previous.upgrade == request.upgrade {
                    assert!(previous.id < request.id, "queue not FIFO at {}", request.id);
                }
            }
            assert!(seen_txns.insert(request.txn), "{} waits twice", request.txn);
            assert!(
                !self.covers(request.txn, &request.span, request.mode),
                "{} waits for {} it already holds",
                request.txn,
                request.span
            );
            let blockers = self.blockers_at(position);
            assert!(
                !blockers.is_empty(),
                "{} of {} has no blocker: lost wake-up",
                request.id,
                request.txn
            );
            for blocker in &blockers {
                assert_ne!(blocker.txn, request.txn, "{} waits on itself", request.txn);
            }
            previous = Some(request);
        }
    }

    /// The per-transaction index matches the key-side maps and the queue exactly.
    fn check_index(&self) {
        let (mut shared, mut exclusive, mut ranges, mut waiting) = (0, 0, 0, 0);
        for (&txn, locks) in &self.txns {
            assert!(!locks.is_empty(), "{txn} indexed with nothing");
            for key in &locks.shared {
                let holders = self.shared.get(key);
                assert!(holders.is_some_and(|h| h.contains(&txn)), "{txn} S index stale");
            }
            for key in &locks.exclusive {
                assert_eq!(self.exclusive.get(key), Some(&txn), "{txn} X index stale");
            }
            for ((from, to), holds) in &locks.ranges {
                assert!(*holds > 0, "{txn} holds a range no times");
                let holders = self.ranges.get(from);
                let entry = (txn, to.clone());
                assert!(holders.is_some_and(|h| h.contains(&entry)), "{txn} range index stale");
            }
            if let Some(request) = locks.waiting {
                assert_eq!(self.request_txn(request), Some(txn), "{txn} waiting index stale");
                waiting += 1;
            }
            shared += locks.shared.len();
            exclusive += locks.exclusive.len();
            ranges += locks.ranges.len();
        }
        assert_eq!(shared, self.shared.values().map(BTreeSet::len).sum(), "S locks unindexed");
        assert_eq!(exclusive, self.exclusive.len(), "X locks unindexed");
        assert_eq!(ranges, self.ranges.values().map(BTreeSet::len).sum(), "ranges unindexed");
        assert_eq!(waiting, self.queue.len(), "waiting requests unindexed");
    }
}

/// Removes `txn` from the shared holders of `key`, dropping the entry when it empties.
fn remove_holder(shared: &mut BTreeMap<Key, BTreeSet<TxnId>>, key: &[u8], txn: TxnId) {
    let holders = shared.get_mut(key).expect("indexed S lock is held");
    assert!(holders.remove(&txn), "index says {txn} holds S {}", display_key(key));
    if holders.is_empty() {
        shared.remove(key);
    }
}
