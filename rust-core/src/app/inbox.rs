//! The phone's inbox, one per profile in the encrypted store: bills keyed by id (so a bill is
//! never listed twice), the cursor (highest change pulled), and the highest doorbell rung
//! (so a pull owed survives the app being killed). Pulled changes are applied with the cursor
//! in one atomic batch: after a crash the phone re-pulls from the old cursor, and applying the
//! same changes again changes nothing.

use serde::{Deserialize, Serialize};

use crate::domain::bills::state::effective_state;
use crate::domain::bills::InboxChange;
use crate::io::store::{Section, StoreError};
use crate::wire::{Bill, InboxEntry};

const CURSOR: &str = "inbox/cursor";
const RUNG: &str = "inbox/rung";
const BILL_PREFIX: &str = "bill/";

/// A bill as stored, with the sequence of the change that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredBill {
    seq: u64,
    bill: Bill,
}

/// The profile's inbox.
pub struct Inbox {
    section: Section,
}

impl Inbox {
    pub fn new(section: Section) -> Inbox {
        Inbox { section }
    }

    /// Highest change sequence pulled.
    pub fn cursor(&self) -> Result<u64, StoreError> {
        Ok(self.section.get(CURSOR)?.unwrap_or(0))
    }

    /// Highest doorbell sequence rung (pulled or not).
    pub fn rung(&self) -> Result<u64, StoreError> {
        Ok(self.section.get(RUNG)?.unwrap_or(0))
    }

    /// Whether a doorbell announced a change that has not been pulled yet.
    pub fn pull_owed(&self) -> Result<bool, StoreError> {
        Ok(self.rung()? > self.cursor()?)
    }

    /// Records a verified doorbell before pulling, durably.
    pub fn note_rung(&self, seq: u64) -> Result<(), StoreError> {
        if seq > self.rung()? {
            self.section.put(RUNG, &seq)?;
        }
        Ok(())
    }

    /// Applies pulled entries (ascending `seq`) and moves the cursor to `cursor`, atomically.
    /// Returns what is new to the phone: a bill not seen before, or a bill whose content
    /// changed. Entries at or below a bill's stored sequence are ignored.
    pub fn apply(&self, entries: &[InboxEntry], cursor: u64) -> Result<Vec<InboxChange>, StoreError> {
        let mut batch = self.section.batch();
        let mut changes: Vec<InboxChange> = Vec::new();
        let mut written: std::collections::HashMap<String, StoredBill> = std::collections::HashMap::new();
        for entry in entries {
            let key = format!("{BILL_PREFIX}{}", entry.bill.bill_id);
            let existing = match written.get(&key) {
                Some(s) => Some(s.clone()),
                None => self.section.get::<StoredBill>(&key)?,
            };
            let change = match &existing {
                None => InboxChange::Added(entry.bill.clone()),
                Some(stored) if stored.seq >= entry.seq => continue,
                Some(stored) if stored.bill == entry.bill => {
                    written.insert(key, StoredBill { seq: entry.seq, bill: entry.bill.clone() });
                    continue;
                }
                Some(_) => InboxChange::Updated(entry.bill.clone()),
            };
            // A bill added and then updated within one page is announced once, as added.
            match changes.iter_mut().find(|c| c.bill().bill_id == entry.bill.bill_id) {
                Some(InboxChange::Added(b)) => *b = entry.bill.clone(),
                Some(InboxChange::Updated(b)) => *b = entry.bill.clone(),
                None => changes.push(change),
            }
            written.insert(key, StoredBill { seq: entry.seq, bill: entry.bill.clone() });
        }
        for (key, stored) in &written {
            batch.put(key, stored)?;
        }
        let old = self.cursor()?;
        batch.put(CURSOR, &cursor.max(old))?;
        batch.commit()?;
        Ok(changes)
    }

    /// Every bill, newest first, with expiry applied at `now_ms`.
    pub fn bills(&self, now_ms: i64) -> Result<Vec<Bill>, StoreError> {
        let mut bills: Vec<Bill> = self
            .section
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
    pub fn bill(&self, bill_id: &str, now_ms: i64) -> Result<Option<Bill>, StoreError> {
        Ok(self.section.get::<StoredBill>(&format!("{BILL_PREFIX}{bill_id}"))?.map(|s| {
            let mut bill = s.bill;
            bill.state = effective_state(&bill, now_ms);
            bill
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::secrets::MemorySecretStore;
    use crate::io::store::Store;
    use crate::wire::BillState;

    fn bill(id: &str, state: BillState) -> Bill {
        Bill {
            bill_id: id.into(),
            person_id: "P1001".into(),
            visit_id: "V1".into(),
            hospital: "h".into(),
            department: "d".into(),
            doctor: "doc".into(),
            items: vec![],
            total_fen: crate::domain::money::Fen(1234),
            created_at_ms: 10,
            due_at_ms: 1_000_000,
            state,
            updated_at_ms: 10,
        }
    }

    fn entry(seq: u64, id: &str, state: BillState) -> InboxEntry {
        InboxEntry { seq, bill: bill(id, state) }
    }

    #[test]
    fn the_same_changes_applied_twice_announce_nothing_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        let inbox = Inbox::new(store.profile("P1001").unwrap());
        let page = vec![entry(1, "a", BillState::Pending), entry(2, "b", BillState::Pending)];
        assert_eq!(inbox.apply(&page, 2).unwrap().len(), 2);
        assert_eq!(inbox.apply(&page, 2).unwrap(), vec![]);
        assert_eq!(inbox.bills(0).unwrap().len(), 2);
        assert_eq!(inbox.cursor().unwrap(), 2);
    }

    #[test]
    fn later_changes_update_and_older_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        let inbox = Inbox::new(store.profile("P1001").unwrap());
        inbox.apply(&[entry(1, "a", BillState::Pending)], 1).unwrap();
        let changes = inbox.apply(&[entry(3, "a", BillState::Cancelled)], 3).unwrap();
        assert_eq!(changes, vec![InboxChange::Updated(bill("a", BillState::Cancelled))]);
        assert_eq!(inbox.apply(&[entry(2, "a", BillState::Paying)], 3).unwrap(), vec![]);
        assert_eq!(inbox.bill("a", 0).unwrap().unwrap().state, BillState::Cancelled);
        // A page where a bill is added then changed announces it once, in its last state.
        let changes =
            inbox.apply(&[entry(4, "b", BillState::Pending), entry(5, "b", BillState::Cancelled)], 5).unwrap();
        assert_eq!(changes, vec![InboxChange::Added(bill("b", BillState::Cancelled))]);
    }

    #[test]
    fn a_rung_doorbell_is_owed_until_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        let inbox = Inbox::new(store.profile("P1001").unwrap());
        inbox.note_rung(4).unwrap();
        assert!(inbox.pull_owed().unwrap());
        inbox.apply(&[entry(4, "a", BillState::Pending)], 4).unwrap();
        assert!(!inbox.pull_owed().unwrap());
    }

    #[test]
    fn pending_bills_past_due_are_listed_as_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &MemorySecretStore::new()).unwrap();
        let inbox = Inbox::new(store.profile("P1001").unwrap());
        inbox.apply(&[entry(1, "a", BillState::Pending)], 1).unwrap();
        assert_eq!(inbox.bills(999_999).unwrap()[0].state, BillState::Pending);
        assert_eq!(inbox.bills(1_000_000).unwrap()[0].state, BillState::Expired);
    }
}
