//! Refunds (退费; `docs/payments.md` § 6): the clinic returns some lines of a paid bill, or
//! all of it. A partial refund re-settles the lines that remain under the same rule and the
//! same coverage the payment was settled with (反结算 then 重新结算), and refunds per source
//! the difference between the split before and after — so a refund never pays back more to a
//! source than it took, and the accumulators go back by exactly what the returned lines had
//! added. The difference is never negative: settlement is monotone in the items (proved in
//! the doc, checked here on every refund).

use serde::{Deserialize, Serialize};

use crate::domain::money::Fen;
use crate::domain::person::InsuranceType;
use crate::domain::settlement::{
    settle_with_rule, PatientCoverage, Settlement, SettlementError, SettlementItem, SettlementRule, YearToDate,
};

/// Some units of one line to give back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnedLine {
    /// The line's index on the bill (0-based).
    pub line: u32,
    pub quantity: u32,
}

/// What a refund gives back, per source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundSplit {
    pub total: Fen,
    pub fund: Fen,
    pub personal_account: Fen,
    pub mutual_aid: Fen,
    pub cash: Fen,
    /// What goes back off the deductible accumulator.
    pub deductible: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("line {0} is not on the bill")]
    NoSuchLine(u32),
    #[error("line {line}: {asked} to return but only {left} left")]
    TooMany { line: u32, asked: u32, left: u32 },
    #[error("nothing to refund")]
    Nothing,
    #[error("re-settlement failed: {0}")]
    Settlement(#[from] SettlementError),
    #[error("a refund part would be negative ({0}); refused")]
    Negative(&'static str),
}

impl RefundError {
    pub fn code(&self) -> &'static str {
        match self {
            RefundError::NoSuchLine(_) => "no_such_line",
            RefundError::TooMany { .. } => "too_many",
            RefundError::Nothing => "nothing_to_refund",
            RefundError::Settlement(_) => "settlement",
            RefundError::Negative(_) => "negative",
        }
    }
}

/// The coverage a settlement was computed from, recovered from what it reports: the balance
/// before, and year-to-date accumulators that leave the same deductible and cap remaining.
pub fn coverage_before(
    rule: &SettlementRule,
    settled: &Settlement,
    insurance_type: InsuranceType,
    pooling_region: &str,
    use_account: bool,
) -> Result<PatientCoverage, SettlementError> {
    Ok(PatientCoverage {
        insurance_type,
        pooling_region: pooling_region.into(),
        year_to_date: YearToDate {
            deductible_paid: Fen(rule.deductible.0.saturating_sub(settled.deductible_remaining_before.0).max(0)),
            fund_paid: Fen(rule.annual_cap.0.saturating_sub(settled.cap_remaining_before.0).max(0)),
        },
        account_balance: settled.account_balance_before,
        use_account,
    })
}

/// The items left after returning `returned` from `items`, given what earlier refunds
/// already took back (`already`, units per line).
pub fn remaining_items(
    items: &[SettlementItem],
    already: &[u32],
    returned: &[ReturnedLine],
) -> Result<(Vec<SettlementItem>, Vec<u32>), RefundError> {
    let mut taken: Vec<u32> = (0..items.len()).map(|i| already.get(i).copied().unwrap_or(0)).collect();
    let mut any = false;
    for r in returned {
        let i = r.line as usize;
        let item = items.get(i).ok_or(RefundError::NoSuchLine(r.line))?;
        let left = item.quantity.saturating_sub(taken[i]);
        if r.quantity > left {
            return Err(RefundError::TooMany { line: r.line, asked: r.quantity, left });
        }
        any |= r.quantity > 0;
        taken[i] += r.quantity;
    }
    if !any {
        return Err(RefundError::Nothing);
    }
    let remaining = items
        .iter()
        .zip(&taken)
        .filter(|(item, t)| item.quantity > **t)
        .map(|(item, t)| SettlementItem { quantity: item.quantity - t, ..item.clone() })
        .collect();
    Ok((remaining, taken))
}

/// The refund from the split as it stands (`current`: the original settlement, or the one
/// left by earlier refunds) to the split of `remaining` items under the same rule and
/// coverage. With no items left it refunds all of `current`. Returns the refund and the new
/// standing split (none when nothing is left).
pub fn refund(
    rule: &SettlementRule,
    coverage: &PatientCoverage,
    current: &Settlement,
    remaining: &[SettlementItem],
) -> Result<(RefundSplit, Option<Settlement>), RefundError> {
    // A relative who gave keeps giving, from the balance they had, on the lines that remain.
    let after = if remaining.is_empty() {
        None
    } else {
        let after = settle_with_rule(rule, coverage, remaining)?;
        Some(if current.mutual_aid_balance_before.is_zero() {
            after
        } else {
            after.with_mutual_aid(current.mutual_aid_balance_before)?
        })
    };
    let zero = Fen::ZERO;
    let pick = |f: fn(&Settlement) -> Fen| after.as_ref().map(f).unwrap_or(zero);
    let diff = |name: &'static str, before: Fen, after: Fen| -> Result<Fen, RefundError> {
        let d = before.checked_sub(after).map_err(|_| RefundError::Negative(name))?;
        if d.0 < 0 {
            return Err(RefundError::Negative(name));
        }
        Ok(d)
    };
    let split = RefundSplit {
        total: diff("total", current.total, pick(|s| s.total))?,
        fund: diff("fund", current.fund, pick(|s| s.fund))?,
        personal_account: diff("personal account", current.personal_account, pick(|s| s.personal_account))?,
        mutual_aid: diff("mutual aid", current.mutual_aid, pick(|s| s.mutual_aid))?,
        cash: diff("cash", current.cash, pick(|s| s.cash))?,
        deductible: diff("deductible", current.deductible_applied, pick(|s| s.deductible_applied))?,
    };
    let sources = Fen::sum([split.fund, split.personal_account, split.mutual_aid, split.cash])
        .map_err(|_| RefundError::Negative("overflow"))?;
    if sources != split.total || split.total.0 == 0 {
        return Err(RefundError::Nothing);
    }
    Ok((split, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settlement::{ItemCategory, SettlementPolicy, VisitType};

    fn item(code: &str, category: ItemCategory, price: i64, quantity: u32) -> SettlementItem {
        SettlementItem { code: code.into(), category, unit_price: Fen(price), quantity }
    }

    #[test]
    fn refunds_per_source_are_never_negative_and_add_back_to_the_original() {
        let policy = SettlementPolicy::demo();
        // A small deterministic sweep over coverages and returns (a property check).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..400 {
            let (insurance, visit) = match round % 3 {
                0 => (InsuranceType::EmployeeActive, VisitType::Outpatient),
                1 => (InsuranceType::EmployeeRetired, VisitType::ChronicOutpatient),
                _ => (InsuranceType::Resident, VisitType::Outpatient),
            };
            let rule = policy.rule("419900", insurance, visit).unwrap();
            let coverage = PatientCoverage {
                insurance_type: insurance,
                pooling_region: "419900".into(),
                year_to_date: YearToDate {
                    deductible_paid: Fen(next(200_000) as i64),
                    fund_paid: Fen(next(900_000) as i64),
                },
                account_balance: Fen(next(40_000) as i64),
                use_account: next(2) == 0,
            };
            let cats = [ItemCategory::A, ItemCategory::B, ItemCategory::C];
            let items: Vec<SettlementItem> = (0..1 + next(5))
                .map(|i| item(&format!("X{i}"), cats[next(3) as usize], 1 + next(30_000) as i64, 1 + next(4) as u32))
                .collect();
            let original = settle_with_rule(rule, &coverage, &items).unwrap();
            let recovered = coverage_before(rule, &original, insurance, "419900", coverage.use_account).unwrap();
            assert_eq!(settle_with_rule(rule, &recovered, &items).unwrap(), original, "coverage recovered");
            let mut current = original.clone();
            let mut taken = vec![0u32; items.len()];
            let mut refunded = RefundSplit::default();
            loop {
                let line = next(items.len() as u64) as u32;
                let left = items[line as usize].quantity - taken[line as usize];
                if left == 0 {
                    if taken.iter().zip(&items).all(|(t, i)| *t == i.quantity) {
                        break;
                    }
                    continue;
                }
                let returned = [ReturnedLine { line, quantity: 1 + next(left as u64) as u32 }];
                let (remaining, now_taken) = remaining_items(&items, &taken, &returned).unwrap();
                let (split, after) = refund(rule, &recovered, &current, &remaining).unwrap();
                for part in
                    [split.total, split.fund, split.personal_account, split.mutual_aid, split.cash, split.deductible]
                {
                    assert!(part.0 >= 0);
                }
                refunded.total.0 += split.total.0;
                refunded.fund.0 += split.fund.0;
                refunded.personal_account.0 += split.personal_account.0;
                refunded.cash.0 += split.cash.0;
                refunded.deductible.0 += split.deductible.0;
                taken = now_taken;
                match after {
                    Some(s) => current = s,
                    None => break,
                }
            }
            assert_eq!(refunded.total, original.total);
            assert_eq!(refunded.fund, original.fund);
            assert_eq!(refunded.personal_account, original.personal_account);
            assert_eq!(refunded.cash, original.cash);
            assert_eq!(refunded.deductible, original.deductible_applied);
        }
    }

    #[test]
    fn returning_more_than_is_left_or_nothing_is_refused() {
        let items = [item("A", ItemCategory::A, 100, 2)];
        assert_eq!(
            remaining_items(&items, &[1], &[ReturnedLine { line: 0, quantity: 2 }]),
            Err(RefundError::TooMany { line: 0, asked: 2, left: 1 })
        );
        assert_eq!(
            remaining_items(&items, &[], &[ReturnedLine { line: 1, quantity: 1 }]),
            Err(RefundError::NoSuchLine(1))
        );
        assert_eq!(remaining_items(&items, &[], &[]), Err(RefundError::Nothing));
    }
}
