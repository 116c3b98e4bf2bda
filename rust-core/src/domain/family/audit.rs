//! The audit trail a principal reads (`docs/family.md` § 7): every act on their behalf and
//! every change to a link, append-only, each record carrying the hash of the one before, so
//! the core can tell a complete, untouched chain from one with a record changed, dropped,
//! reordered or inserted.
//!
//! ```text
//! hash = SHA-256( "carepass-audit-v1" 0x00  prev_hash (32 bytes; zeros for the first)
//!                 u64 seq  i64 at_ms  str principal  str actor  str link_id  str action
//!                 u8 has_amount  i64 amount (0 when absent)  str reference )
//! ```
//! `str` is a 2-byte big-endian length then UTF-8 (at most 255 bytes); integers are big-endian.
//! Hashes are lower-case hex on the wire.

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

use crate::domain::money::Fen;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

pub const CONTEXT: &[u8] = b"carepass-audit-v1\0";
const MAX_FIELD: usize = 255;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    LinkRequested,
    LinkActivated,
    LinkRenewed,
    LinkRevoked,
    LinkExpired,
    /// The principal's age band changed and the link's scopes with it.
    LinkBandChanged,
    AssentChanged,
    CodeScanned,
    BillsViewed,
    PrescriptionsViewed,
    PaymentMade,
    OrderPlaced,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::LinkRequested => "link_requested",
            AuditAction::LinkActivated => "link_activated",
            AuditAction::LinkRenewed => "link_renewed",
            AuditAction::LinkRevoked => "link_revoked",
            AuditAction::LinkExpired => "link_expired",
            AuditAction::LinkBandChanged => "link_band_changed",
            AuditAction::AssentChanged => "assent_changed",
            AuditAction::CodeScanned => "code_scanned",
            AuditAction::BillsViewed => "bills_viewed",
            AuditAction::PrescriptionsViewed => "prescriptions_viewed",
            AuditAction::PaymentMade => "payment_made",
            AuditAction::OrderPlaced => "order_placed",
        }
    }
}

/// The facts of one record, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub principal: String,
    pub actor: String,
    pub link_id: String,
    pub action: AuditAction,
    pub amount: Option<Fen>,
    /// The bill, payment, order or code the act was about; empty when none.
    pub reference: String,
}

/// One chained record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditRecord {
    /// 1 for the principal's first record, then one more each time.
    pub seq: u64,
    pub at_ms: i64,
    pub principal: String,
    pub actor: String,
    pub link_id: String,
    pub action: AuditAction,
    #[serde(default)]
    pub amount: Option<Fen>,
    #[serde(default)]
    pub reference: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Why a chain does not verify: the first bad record's `seq` (or position) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("audit record {0}: its number is out of order (a record was dropped, added or moved)")]
    Sequence(u64),
    #[error("audit record {0}: it does not follow the record before it")]
    Broken(u64),
    #[error("audit record {0}: its contents do not match its hash (changed)")]
    Tampered(u64),
    #[error("audit record {0}: a field is too long or a hash is not 64 hex digits")]
    Malformed(u64),
    #[error("audit record {0}: it is about another principal")]
    OtherPrincipal(u64),
}

fn put_str(out: &mut Vec<u8>, text: &str) -> bool {
    if text.len() > MAX_FIELD {
        return false;
    }
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    true
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The hash of a record's fields after `prev`; none when a field is too long.
fn record_hash(prev: &[u8; 32], seq: u64, e: &AuditEntry) -> Option<[u8; 32]> {
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(prev);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&e.at_ms.to_be_bytes());
    for text in [e.principal.as_str(), &e.actor, &e.link_id, e.action.as_str()] {
        if !put_str(&mut out, text) {
            return None;
        }
    }
    out.push(e.amount.is_some() as u8);
    out.extend_from_slice(&e.amount.unwrap_or_default().0.to_be_bytes());
    if !put_str(&mut out, &e.reference) {
        return None;
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, &out).as_ref());
    Some(hash)
}

impl AuditRecord {
    /// Chains `entry` after `prev` (none for the principal's first record). Fields longer
    /// than 255 bytes are cut at a character boundary first, so a record is always written.
    pub fn chain(prev: Option<&AuditRecord>, mut entry: AuditEntry) -> AuditRecord {
        for field in [&mut entry.principal, &mut entry.actor, &mut entry.link_id, &mut entry.reference] {
            if field.len() > MAX_FIELD {
                let mut end = MAX_FIELD;
                while !field.is_char_boundary(end) {
                    end -= 1;
                }
                field.truncate(end);
            }
        }
        let (seq, prev_hash) = match prev {
            Some(p) => (p.seq.saturating_add(1), unhex32(&p.hash).unwrap_or([0; 32])),
            None => (1, [0u8; 32]),
        };
        let hash = record_hash(&prev_hash, seq, &entry).unwrap_or([0; 32]);
        AuditRecord {
            seq,
            at_ms: entry.at_ms,
            principal: entry.principal,
            actor: entry.actor,
            link_id: entry.link_id,
            action: entry.action,
            amount: entry.amount,
            reference: entry.reference,
            prev_hash: hex(&prev_hash),
            hash: hex(&hash),
        }
    }

    fn entry(&self) -> AuditEntry {
        AuditEntry {
            at_ms: self.at_ms,
            principal: self.principal.clone(),
            actor: self.actor.clone(),
            link_id: self.link_id.clone(),
            action: self.action,
            amount: self.amount,
            reference: self.reference.clone(),
        }
    }
}

/// Verifies a principal's whole chain, from record 1: numbers run 1, 2, 3…, each record
/// names the hash of the one before, and each hash matches its contents. Answers the hash of
/// the last record (the head a phone keeps to notice a chain cut short later), or zeros for
/// an empty chain.
pub fn verify_chain(principal: &str, records: &[AuditRecord]) -> Result<String, ChainError> {
    let mut prev = [0u8; 32];
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq {
            return Err(ChainError::Sequence(r.seq));
        }
        if r.principal != principal {
            return Err(ChainError::OtherPrincipal(r.seq));
        }
        let claimed_prev = unhex32(&r.prev_hash).ok_or(ChainError::Malformed(r.seq))?;
        let claimed = unhex32(&r.hash).ok_or(ChainError::Malformed(r.seq))?;
        if claimed_prev != prev {
            return Err(ChainError::Broken(r.seq));
        }
        let actual = record_hash(&prev, r.seq, &r.entry()).ok_or(ChainError::Malformed(r.seq))?;
        if actual != claimed {
            return Err(ChainError::Tampered(r.seq));
        }
        prev = claimed;
    }
    Ok(hex(&prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: i64, action: AuditAction) -> AuditEntry {
        AuditEntry {
            at_ms: 1_780_000_000_000 + n,
            principal: "P1002".into(),
            actor: "P1001".into(),
            link_id: "lnk_1".into(),
            action,
            amount: (action == AuditAction::PaymentMade).then_some(Fen(3_120)),
            reference: format!("ref_{n}"),
        }
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        let actions = [AuditAction::LinkRequested, AuditAction::LinkActivated, AuditAction::PaymentMade];
        for i in 0..n {
            let r = AuditRecord::chain(out.last(), entry(i as i64, actions[i % 3]));
            out.push(r);
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies_and_answers_its_head() {
        let records = chain(5);
        assert_eq!(verify_chain("P1002", &records).unwrap(), records[4].hash);
        assert_eq!(verify_chain("P1002", &[]).unwrap(), "0".repeat(64));
    }

    #[test]
    fn every_kind_of_tampering_is_detected() {
        let base = chain(5);
        let mut changed = base.clone();
        changed[2].amount = Some(Fen(1));
        assert_eq!(verify_chain("P1002", &changed), Err(ChainError::Tampered(3)));
        let mut actor = base.clone();
        actor[1].actor = "P9999".into();
        assert_eq!(verify_chain("P1002", &actor), Err(ChainError::Tampered(2)));
        let mut dropped = base.clone();
        dropped.remove(1);
        assert_eq!(verify_chain("P1002", &dropped), Err(ChainError::Sequence(3)));
        let mut renumbered = dropped.clone();
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert!(verify_chain("P1002", &renumbered).is_err());
        let mut swapped = base.clone();
        swapped.swap(1, 2);
        assert!(verify_chain("P1002", &swapped).is_err());
        let mut rehashed = base.clone();
        rehashed[2].amount = Some(Fen(1));
        let fixed = AuditRecord::chain(Some(&rehashed[1]), rehashed[2].entry());
        rehashed[2] = fixed;
        // Re-hashing a changed record breaks the link of the one after it.
        assert_eq!(verify_chain("P1002", &rehashed), Err(ChainError::Broken(4)));
        assert_eq!(verify_chain("P1003", &base), Err(ChainError::OtherPrincipal(1)));
        let mut bad_hex = base;
        bad_hex[0].hash = "zz".into();
        assert_eq!(verify_chain("P1002", &bad_hex), Err(ChainError::Malformed(1)));
    }

    #[test]
    fn long_fields_are_cut_so_a_record_is_always_written() {
        let mut e = entry(0, AuditAction::OrderPlaced);
        e.reference = "药".repeat(200);
        let r = AuditRecord::chain(None, e);
        assert!(r.reference.len() <= 255);
        assert!(verify_chain("P1002", &[r]).is_ok());
    }
}
