//! The phone's inbox. The platform keeps one inbox log per recipient (the actor); its
//! entries are bills of the actor and, with the family work, of relatives whose bills reach
//! them. The phone keeps, in the actor's own section, the cursor (highest change pulled) and
//! the highest doorbell rung (so a pull owed survives the app being killed), and files each
//! bill under its id in its subject's section (so a bill is never listed twice).
//!
//! Pulled changes are applied with the cursor in one atomic step per section, the cursor
//! last: after a crash the phone re-pulls from the old cursor, and applying the same changes
//! again changes nothing. The cursor only moves over changes without a gap.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::bills::state::effective_state;
use crate::domain::bills::{Bill, InboxChange};
use crate::io::store::{Held, Section, StoreError};
use crate::wire::InboxEntry;

const CURSOR: &str = "inbox/cursor";
const RUNG: &str = "inbox/rung";
const EPOCH: &str = "inbox/epoch";
const BILL_PREFIX: &str = "bill/";

/// What an inbox stream hands its listener: a subject's bills as they are now (newest first,
/// expiry applied) and the changes that led there (empty in the first update). The list is
/// shared with the stream, which changes it in place for the next update once the listener
/// has let go of it (a copy only while the listener still holds the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxUpdate {
    pub subject: String,
    pub bills: Arc<VecDeque<Bill>>,
    pub changes: Vec<InboxChange>,
}

/// Which subject's bills may have changed in this process, and which bills when that is known
/// (`None`: any of them, such as after a start-over or a relative's log going away).
#[derive(Debug, Clone)]
pub(crate) struct Touch {
    pub subject: String,
    pub bills: Option<Vec<String>>,
}

/// What an inbox stream last handed its listener: the list in the order [`Inbox::bills`]
/// gives (newest first, then by id), kept current from the bills a change names, so a new bill
/// costs reading that bill, not the whole inbox (and, the list being a deque, no shift of the
/// bills already there when it goes in front).
pub(crate) struct Shown {
    list: Arc<VecDeque<Bill>>,
    created: HashMap<String, i64>,
}

fn order_key(bill: &Bill) -> (std::cmp::Reverse<i64>, &str) {
    (std::cmp::Reverse(bill.created_at_ms), bill.bill_id.as_str())
}

impl Shown {
    pub fn new(list: Arc<VecDeque<Bill>>) -> Shown {
        let created = list.iter().map(|b| (b.bill_id.clone(), b.created_at_ms)).collect();
        Shown { list, created }
    }

    /// The list to hand over (shared, not copied).
    pub fn list(&self) -> Arc<VecDeque<Bill>> {
        Arc::clone(&self.list)
    }

    /// Whether a bill shown as pending is past its due time at `now_ms` (it now reads as
    /// expired, which only a whole re-read shows).
    pub fn expiry_passed(&self, now_ms: i64) -> bool {
        self.list.iter().any(|b| b.state == crate::domain::bills::BillState::Pending && now_ms >= b.due_at_ms)
    }

    /// Takes the named bills as stored now (`None`: the phone no longer has it) and returns what
    /// is new or different from what was shown.
    pub fn apply(&mut self, fresh: Vec<(String, Option<Bill>)>) -> Vec<InboxChange> {
        let mut changes = Vec::new();
        for (id, bill) in fresh {
            let at = self.created.get(&id).and_then(|&created_at_ms| {
                self.list
                    .binary_search_by(|b| order_key(b).cmp(&(std::cmp::Reverse(created_at_ms), id.as_str())))
                    .ok()
                    .or_else(|| self.list.iter().position(|b| b.bill_id == id))
            });
            match (at, bill) {
                (None, None) => {}
                (Some(at), None) => {
                    Arc::make_mut(&mut self.list).remove(at);
                    self.created.remove(&id);
                }
                (Some(at), Some(bill)) if self.list[at] == bill => {}
                (at, Some(bill)) => {
                    let list = Arc::make_mut(&mut self.list);
                    if let Some(at) = at {
                        list.remove(at);
                        changes.push(InboxChange::Updated(bill.clone()));
                    } else {
                        changes.push(InboxChange::Added(bill.clone()));
                    }
                    let place = list.binary_search_by(|b| order_key(b).cmp(&order_key(&bill))).unwrap_or_else(|p| p);
                    self.created.insert(id, bill.created_at_ms);
                    list.insert(place, bill);
                }
            }
        }
        changes
    }

    /// Takes the whole list as stored now and returns what is new or different.
    pub fn replace(&mut self, now: Vec<Bill>) -> Vec<InboxChange> {
        let before: HashMap<&str, &Bill> = self.list.iter().map(|b| (b.bill_id.as_str(), b)).collect();
        let changes = now
            .iter()
            .filter_map(|bill| match before.get(bill.bill_id.as_str()) {
                None => Some(InboxChange::Added(bill.clone())),
                Some(shown) if *shown != bill => Some(InboxChange::Updated(bill.clone())),
                Some(_) => None,
            })
            .collect();
        *self = Shown::new(Arc::new(now.into()));
        changes
    }
}

/// A bill as stored, with the sequence of the change that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredBill {
    seq: u64,
    bill: Bill,
}

/// One platform inbox log as an actor holds it: their own (`log` = the actor), or a
/// relative's they act for (`log` = the relative; `docs/family.md` § 8). The log's cursor,
/// rung and epoch live in the log owner's section.
pub struct Inbox<'a> {
    held: &'a Held,
    actor: String,
    log: String,
}

impl<'a> Inbox<'a> {
    /// The actor's own log.
    pub fn new(held: &'a Held, actor: &str) -> Inbox<'a> {
        Inbox { held, actor: actor.to_string(), log: actor.to_string() }
    }

    /// A relative's log, as the actor holds it.
    pub fn of(held: &'a Held, actor: &str, log: &str) -> Inbox<'a> {
        Inbox { held, actor: actor.to_string(), log: log.to_string() }
    }

    fn section(&self, subject: &str) -> Result<Section<'a>, StoreError> {
        self.held.section(&format!("s/{}/{subject}", self.actor))
    }

    /// Highest change sequence pulled.
    pub fn cursor(&self) -> Result<u64, StoreError> {
        Ok(self.section(&self.log)?.get(CURSOR)?.unwrap_or(0))
    }

    /// Highest doorbell sequence rung (pulled or not).
    pub fn rung(&self) -> Result<u64, StoreError> {
        Ok(self.section(&self.log)?.get(RUNG)?.unwrap_or(0))
    }

    /// Whether a doorbell announced a change that has not been pulled yet.
    pub fn pull_owed(&self) -> Result<bool, StoreError> {
        Ok(self.rung()? > self.cursor()?)
    }

    /// Whether a page says the platform's log is not the one the cursor counts in: another
    /// epoch (the log was replaced), or a head below the cursor (the log went back). A page
    /// from a platform that states no epoch is taken as it is.
    pub fn log_replaced(&self, epoch: &str, head: u64) -> Result<bool, StoreError> {
        if epoch.is_empty() {
            return Ok(false);
        }
        let known: Option<String> = self.section(&self.log)?.get(EPOCH)?;
        Ok(match known {
            Some(known) => known != epoch || head < self.cursor()?,
            None => head < self.cursor()?,
        })
    }

    /// Remembers the log's epoch (the first page after a start-over, or ever).
    pub fn note_epoch(&self, epoch: &str) -> Result<(), StoreError> {
        if !epoch.is_empty() && self.section(&self.log)?.get::<String>(EPOCH)?.as_deref() != Some(epoch) {
            self.section(&self.log)?.put(EPOCH, &epoch.to_string())?;
        }
        Ok(())
    }

    /// Starts over against a replaced log: the bills of that log are forgotten (for the
    /// actor's own log, every bill the actor holds, their own and their relatives', since the
    /// platform's logs are replaced together), cursors and rungs go back to 0, and the new
    /// epoch is kept; the next pulls fetch the whole logs again, so nothing the platform no
    /// longer has stays on the phone.
    pub fn start_over(&self, epoch: &str) -> Result<(), StoreError> {
        let names = if self.log == self.actor {
            self.held.section_names(&format!("s/{}/", self.actor))
        } else {
            vec![format!("s/{}/{}", self.actor, self.log)]
        };
        let own = format!("s/{}/{}", self.actor, self.log);
        for name in names.iter().chain(std::iter::once(&own)) {
            let section = self.held.section(name)?;
            for (key, _) in section.scan::<serde_json::Value>(BILL_PREFIX)? {
                section.remove(&key)?;
            }
            let mut batch = section.batch();
            batch.put(CURSOR, &0u64)?;
            batch.put(RUNG, &0u64)?;
            batch.put(EPOCH, &epoch.to_string())?;
            batch.commit()?;
        }
        Ok(())
    }

    /// Records a verified doorbell before pulling.
    pub fn note_rung(&self, seq: u64) -> Result<(), StoreError> {
        if seq > self.rung()? {
            self.section(&self.log)?.put(RUNG, &seq)?;
        }
        Ok(())
    }

    /// Applies a page pulled after the cursor (ascending `seq`, no gap: the platform serves
    /// the readable prefix of the log) and moves the cursor to `cursor`.
    pub fn apply_page(&self, entries: &[InboxEntry], cursor: u64) -> Result<Vec<InboxChange>, StoreError> {
        self.apply(entries, Some(cursor))
    }

    /// Applies entries that may not follow the cursor (a live-stream event, a spooled pull):
    /// the cursor moves only over the run that continues it without a gap.
    pub fn apply_loose(&self, entries: &[InboxEntry]) -> Result<Vec<InboxChange>, StoreError> {
        self.apply(entries, None)
    }

    /// Returns what is new to the phone: a bill not seen before, or a bill whose content
    /// changed; one announcement per bill, in its last state. Entries at or below a bill's
    /// stored sequence are ignored.
    fn apply(&self, entries: &[InboxEntry], page_cursor: Option<u64>) -> Result<Vec<InboxChange>, StoreError> {
        let mut changes: Vec<InboxChange> = Vec::new();
        let mut written: HashMap<(String, String), StoredBill> = HashMap::new();
        for entry in entries {
            let subject = entry.bill.person_id.clone();
            let key = format!("{BILL_PREFIX}{}", entry.bill.bill_id);
            let slot = (subject.clone(), key.clone());
            let existing = match written.get(&slot) {
                Some(s) => Some(s.clone()),
                None => self.section(&subject)?.get::<StoredBill>(&key)?,
            };
            let change = match &existing {
                None => InboxChange::Added(entry.bill.clone()),
                Some(stored) if stored.seq >= entry.seq => continue,
                Some(stored) if stored.bill == entry.bill => {
                    written.insert(slot, StoredBill { seq: entry.seq, bill: entry.bill.clone() });
                    continue;
                }
                Some(_) => InboxChange::Updated(entry.bill.clone()),
            };
            match changes.iter_mut().find(|c| c.bill().bill_id == entry.bill.bill_id) {
                Some(InboxChange::Added(b)) | Some(InboxChange::Updated(b)) => *b = entry.bill.clone(),
                None => changes.push(change),
            }
            written.insert(slot, StoredBill { seq: entry.seq, bill: entry.bill.clone() });
        }
        // Bills first, subject by subject; the cursor last, in the actor's section.
        let mut by_subject: HashMap<String, Vec<(String, StoredBill)>> = HashMap::new();
        for ((subject, key), stored) in written {
            by_subject.entry(subject).or_default().push((key, stored));
        }
        let old = self.cursor()?;
        let new_cursor = match page_cursor {
            Some(cursor) => cursor.max(old),
            None => {
                let mut seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                seqs.sort_unstable();
                seqs.into_iter().fold(old, |c, s| if s == c + 1 { s } else { c })
            }
        };
        let own = by_subject.remove(&self.log).unwrap_or_default();
        for (subject, bills) in by_subject {
            let section = self.section(&subject)?;
            let mut batch = section.batch();
            for (key, stored) in &bills {
                batch.put(key, stored)?;
            }
            batch.commit()?;
        }
        let section = self.section(&self.log)?;
        let mut batch = section.batch();
        for (key, stored) in &own {
            batch.put(key, stored)?;
        }
        batch.put(CURSOR, &new_cursor)?;
        batch.commit()?;
        Ok(changes)
    }

    /// A subject's bills, newest first, with expiry applied at `now_ms`.
    pub fn bills(&self, subject: &str, now_ms: i64) -> Result<Vec<Bill>, StoreError> {
        let mut bills: Vec<Bill> = self
            .section(subject)?
            .scan::<StoredBill>(BILL_PREFIX)?
            .into_iter()
            .map(|(_, s)| {
                let mut bill = s.bill;
                bill.state = effective_state(&bill, now_ms);
                bill
            })
            .collect();
        bills.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.bill_id.cmp(&b.bill_id)));
        Ok(bills)
    }

    /// One bill by id.
    pub fn bill(&self, subject: &str, bill_id: &str, now_ms: i64) -> Result<Option<Bill>, StoreError> {
        Ok(self.section(subject)?.get::<StoredBill>(&format!("{BILL_PREFIX}{bill_id}"))?.map(|s| {
            let mut bill = s.bill;
            bill.state = effective_state(&bill, now_ms);
            bill
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bills::BillState;
    use crate::domain::money::Fen;
    use crate::io::secrets::MemorySecretStore;
    use crate::io::store::{Store, StoreOptions};

    fn bill(id: &str, state: BillState) -> Bill {
        Bill {
            bill_id: id.into(),
            person_id: "P1001".into(),
            visit_id: "V1".into(),
            hospital: "h".into(),
            department: "d".into(),
            doctor: "doc".into(),
            items: vec![],
            total_fen: Fen(1234),
            created_at_ms: 10,
            due_at_ms: 1_000_000,
            state,
            updated_at_ms: 10,
            visit_type: Default::default(),
            payment: None,
            counter: None,
        }
    }

    fn entry(seq: u64, id: &str, state: BillState) -> InboxEntry {
        InboxEntry { seq, bill: bill(id, state) }
    }

    fn store(dir: &std::path::Path) -> Store {
        Store::open(dir, &MemorySecretStore::new(), StoreOptions::default()).unwrap()
    }

    #[test]
    fn the_same_changes_applied_twice_announce_nothing_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        let page = vec![entry(1, "a", BillState::Pending), entry(2, "b", BillState::Pending)];
        assert_eq!(inbox.apply_page(&page, 2).unwrap().len(), 2);
        assert_eq!(inbox.apply_page(&page, 2).unwrap(), vec![]);
        assert_eq!(inbox.bills("P1001", 0).unwrap().len(), 2);
        assert_eq!(inbox.cursor().unwrap(), 2);
    }

    #[test]
    fn later_changes_update_and_older_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        inbox.apply_page(&[entry(1, "a", BillState::Pending)], 1).unwrap();
        let changes = inbox.apply_page(&[entry(3, "a", BillState::Cancelled)], 3).unwrap();
        assert_eq!(changes, vec![InboxChange::Updated(bill("a", BillState::Cancelled))]);
        assert_eq!(inbox.apply_page(&[entry(2, "a", BillState::Paying)], 3).unwrap(), vec![]);
        assert_eq!(inbox.bill("P1001", "a", 0).unwrap().unwrap().state, BillState::Cancelled);
        // A page where a bill is added then changed announces it once, in its last state.
        let changes =
            inbox.apply_page(&[entry(4, "b", BillState::Pending), entry(5, "b", BillState::Cancelled)], 5).unwrap();
        assert_eq!(changes, vec![InboxChange::Added(bill("b", BillState::Cancelled))]);
    }

    #[test]
    fn loose_entries_move_the_cursor_only_over_a_run_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        // Seq 3 and 4 arrive before 2 (a doorbell's pull, a stream event after a gap).
        assert_eq!(
            inbox.apply_loose(&[entry(3, "c", BillState::Pending), entry(4, "d", BillState::Pending)]).unwrap().len(),
            2
        );
        assert_eq!(inbox.cursor().unwrap(), 0, "1 and 2 are still missing");
        inbox.apply_loose(&[entry(1, "a", BillState::Pending)]).unwrap();
        assert_eq!(inbox.cursor().unwrap(), 1);
        inbox
            .apply_page(
                &[
                    entry(2, "b", BillState::Pending),
                    entry(3, "c", BillState::Pending),
                    entry(4, "d", BillState::Pending),
                ],
                4,
            )
            .unwrap();
        assert_eq!(inbox.cursor().unwrap(), 4);
        assert_eq!(inbox.bills("P1001", 0).unwrap().len(), 4, "each bill once");
    }

    #[test]
    fn a_rung_doorbell_is_owed_until_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        inbox.note_rung(4).unwrap();
        assert!(inbox.pull_owed().unwrap());
        inbox.apply_page(&[entry(4, "a", BillState::Pending)], 4).unwrap();
        assert!(!inbox.pull_owed().unwrap());
    }

    #[test]
    fn pending_bills_past_due_are_listed_as_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        inbox.apply_page(&[entry(1, "a", BillState::Pending)], 1).unwrap();
        assert_eq!(inbox.bills("P1001", 999_999).unwrap()[0].state, BillState::Pending);
        assert_eq!(inbox.bills("P1001", 1_000_000).unwrap()[0].state, BillState::Expired);
    }

    fn at(id: &str, created_at_ms: i64, state: BillState) -> Bill {
        Bill { created_at_ms, ..bill(id, state) }
    }

    #[test]
    fn a_shown_list_kept_from_named_bills_equals_the_list_read_again() {
        let secrets = MemorySecretStore::new();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &secrets, StoreOptions::default()).unwrap();
        let held = store.bulk.hold().unwrap();
        let inbox = Inbox::new(&held, "P1001");
        let mut shown = Shown::new(Arc::new(inbox.bills("P1001", 0).unwrap().into()));
        // Out of order, a tie on the creation time, an update, a change of nothing.
        let steps = [
            at("m", 20, BillState::Pending),
            at("z", 30, BillState::Pending),
            at("a", 20, BillState::Pending),
            at("q", 10, BillState::Pending),
            at("m", 20, BillState::Paid),
            at("z", 30, BillState::Pending),
        ];
        let mut seen = Vec::new();
        for (seq, b) in steps.iter().enumerate() {
            let entry = InboxEntry { seq: seq as u64 + 1, bill: b.clone() };
            inbox.apply_loose(std::slice::from_ref(&entry)).unwrap();
            let fresh = vec![(b.bill_id.clone(), inbox.bill("P1001", &b.bill_id, 0).unwrap())];
            seen.extend(shown.apply(fresh));
            assert_eq!(*shown.list(), inbox.bills("P1001", 0).unwrap(), "after {}", b.bill_id);
        }
        let kinds: Vec<(bool, &str)> =
            seen.iter().map(|c| (matches!(c, InboxChange::Added(_)), c.bill().bill_id.as_str())).collect();
        assert_eq!(kinds, [(true, "m"), (true, "z"), (true, "a"), (true, "q"), (false, "m")]);
        let list = shown.list();
        let ids: Vec<&str> = list.iter().map(|b| b.bill_id.as_str()).collect();
        assert_eq!(ids, ["z", "a", "m", "q"]);
        drop(list);
        // A bill the phone no longer has leaves the list without a change.
        assert!(shown.apply(vec![("a".into(), None)]).is_empty());
        assert_eq!(shown.list().len(), 3);
        // A whole re-read reports only what differs from what was shown.
        let changes = shown.replace(inbox.bills("P1001", 0).unwrap());
        let ids: Vec<&str> = changes.iter().map(|c| c.bill().bill_id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        assert!(!shown.expiry_passed(999_999));
        assert!(shown.expiry_passed(1_000_000));
    }
}
