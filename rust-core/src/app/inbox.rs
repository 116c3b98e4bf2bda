//! The phone's inbox. The platform keeps one inbox log per recipient (the actor); its
//! entries are bills of the actor and, with the family work, of relatives whose bills reach
//! them. The phone keeps, in the actor's own section, the cursor (highest change pulled) and
//! the highest doorbell rung (so a pull owed survives the app being killed), and files each
//! bill under its id in its subject's section (so a bill is never listed twice).
//!
//! Pulled changes are applied with the cursor in one atomic step per section, the cursor
//! last: after a crash the phone re-pulls from the old cursor, and applying the same changes
//! again changes nothing. The cursor only moves over changes without a gap.

use std::collections::HashMap;

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
/// expiry applied) and the changes that led there (empty in the first update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxUpdate {
    pub subject: String,
    pub bills: Vec<Bill>,
    pub changes: Vec<InboxChange>,
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
}
