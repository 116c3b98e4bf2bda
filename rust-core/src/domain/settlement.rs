//! Settlement rules (医保结算): how a set of items splits into the pooled fund (统筹), the
//! personal account (个人账户), family mutual aid (家庭共济, [`Settlement::with_mutual_aid`]) and cash.
//!
//! Pure and shared: the sandbox (platform side), the core (checking a quote before it is shown)
//! and the pharmacy ranking call the same [`settle`]. Policy is data ([`SettlementPolicy`],
//! deserializable from JSON: rules keyed by pooling region × insurance type × visit type), not
//! code; [`SettlementPolicy::demo`] is the demo city's. Integer fen throughout, every rounding
//! rule is stated in `docs/settlement.md`, whose worked examples are the vectors in
//! `tests/vectors/settlement/cases.json`. Every result is checked ([`Settlement::check`])
//! before it is returned. Paying the split (idempotency, receipts) lives elsewhere.

use serde::{Deserialize, Serialize};

use crate::domain::money::{Fen, MoneyError};
use crate::domain::person::InsuranceType;

/// 100 % in basis points.
pub const FULL_BP: u32 = 10_000;

/// The most items one settlement takes (a bill or a prescription is far smaller).
pub const MAX_ITEMS: usize = 1_000;

/// The national drug and service list class of an item (医保目录分类).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ItemCategory {
    /// 甲类: fully eligible for the fund.
    A,
    /// 乙类: eligible after a first self-pay share (乙类先行自付) set by the rule.
    B,
    /// 丙类: not covered (自费); the patient pays all of it.
    C,
}

/// Where the care happens; each has its own rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VisitType {
    /// 普通门诊: ordinary outpatient care (门诊统筹).
    #[default]
    Outpatient,
    /// 门诊慢特病: outpatient care of a registered chronic or special disease.
    ChronicOutpatient,
    /// 定点药店购药: a prescription filled at a designated pharmacy.
    Pharmacy,
}

/// One row of the policy table: the rule for a pooling region, insurance type and visit type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementRule {
    /// Six-digit administrative code of the pooling region (统筹区).
    pub region: String,
    pub insurance_type: InsuranceType,
    pub visit_type: VisitType,
    /// Annual deductible (起付线) the patient pays before the fund shares in.
    pub deductible: Fen,
    /// Share of the eligible amount above the deductible the fund pays (报销比例), 0–10000 bp.
    pub ratio_bp: u32,
    /// Annual cap (封顶线) on what the fund pays under this rule.
    pub annual_cap: Fen,
    /// First self-pay share of a class B item (乙类先行自付比例), 0–10000 bp.
    pub b_self_pay_bp: u32,
    /// Whether the personal account may pay the patient's share at this kind of visit.
    pub personal_account: bool,
}

/// The policy table: every rule the platform settles by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementPolicy {
    /// A human label, e.g. `demo city 2026`.
    pub name: String,
    pub rules: Vec<SettlementRule>,
}

/// What the patient has used this year under the rule being applied (the platform keeps these
/// accumulators; the caller passes the ones of the benefit the visit settles under).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct YearToDate {
    /// Eligible spending already counted against the deductible this year.
    pub deductible_paid: Fen,
    /// What the fund has already paid this year.
    pub fund_paid: Fen,
}

/// What settlement needs to know about the patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatientCoverage {
    pub insurance_type: InsuranceType,
    /// The patient's pooling region (参保地); its rules apply wherever the care happens.
    pub pooling_region: String,
    #[serde(default)]
    pub year_to_date: YearToDate,
    /// Personal account balance.
    #[serde(default)]
    pub account_balance: Fen,
    /// Whether the patient chose to pay from the personal account.
    #[serde(default)]
    pub use_account: bool,
}

/// One billed item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementItem {
    /// Drug or service code; reported back on the line.
    pub code: String,
    pub category: ItemCategory,
    pub unit_price: Fen,
    pub quantity: u32,
}

/// Settle these items for this patient at this kind of visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementRequest {
    pub patient: PatientCoverage,
    pub visit_type: VisitType,
    pub items: Vec<SettlementItem>,
}

/// How one item was split. `first_self_pay + out_of_scope + eligible = amount`, and of
/// `eligible`, `deductible` went to the deductible and `fund` is what the fund pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementLine {
    pub code: String,
    pub category: ItemCategory,
    pub unit_price: Fen,
    pub quantity: u32,
    /// `unit_price × quantity`.
    pub amount: Fen,
    /// Class B first self-pay share (乙类先行自付); zero for A and C.
    pub first_self_pay: Fen,
    /// Class C amount (全自费); zero for A and B.
    pub out_of_scope: Fen,
    /// Amount within policy (政策范围内).
    pub eligible: Fen,
    /// Part of `eligible` that went to the deductible.
    pub deductible: Fen,
    /// The fund's payment attributed to this line.
    pub fund: Fen,
}

/// The split of a settlement. `total = fund + personal_account + mutual_aid + cash`; what the
/// patient pays is `total − fund` ([`Settlement::patient_pays`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settlement {
    pub total: Fen,
    /// Pooled fund (统筹基金).
    pub fund: Fen,
    /// Personal account (个人账户).
    pub personal_account: Fen,
    /// Family mutual aid (家庭共济): what a relative's personal account pays of the rest
    /// (`docs/settlement.md` § 8; [`Settlement::with_mutual_aid`]).
    pub mutual_aid: Fen,
    /// Paid through a payment channel.
    pub cash: Fen,
    /// Sum of the lines' class B first self-pay shares.
    pub first_self_pay: Fen,
    /// Sum of the lines' class C amounts.
    pub out_of_scope: Fen,
    /// Sum of the lines' eligible amounts.
    pub eligible: Fen,
    /// Part of `eligible` that went to the deductible.
    pub deductible_applied: Fen,
    /// Deductible still to pay this year before this settlement.
    pub deductible_remaining_before: Fen,
    /// What the fund could still pay this year before this settlement.
    pub cap_remaining_before: Fen,
    /// Personal account balance before this settlement.
    pub account_balance_before: Fen,
    /// The giving relative's personal account balance before this settlement (0 and left out
    /// of the JSON when no relative gives).
    #[serde(default, skip_serializing_if = "Fen::is_zero")]
    pub mutual_aid_balance_before: Fen,
    /// The reimbursement ratio applied.
    pub ratio_bp: u32,
    /// Whether the annual cap cut the fund's share.
    pub cap_reached: bool,
    pub lines: Vec<SettlementLine>,
}

/// Why data could not be settled. [`SettlementError::kind`] is the stable code the vectors and
/// the FFI use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    #[error("region code must be six digits, got {0:?}")]
    InvalidRegion(String),
    #[error("the policy has no rules for region {0}")]
    UnknownRegion(String),
    #[error("the policy has no rule for region {region}, {insurance_type:?}, {visit_type:?}")]
    NoRule { region: String, insurance_type: InsuranceType, visit_type: VisitType },
    #[error("the policy has two rules for region {region}, {insurance_type:?}, {visit_type:?}")]
    DuplicateRule { region: String, insurance_type: InsuranceType, visit_type: VisitType },
    #[error("{field} is {bp} bp, above 10000")]
    RatioOutOfRange { field: &'static str, bp: u32 },
    #[error("{field} must not be negative, got {fen} fen")]
    NegativeAmount { field: &'static str, fen: i64 },
    #[error("item {index}: unit price must not be negative, got {fen} fen")]
    NegativePrice { index: usize, fen: i64 },
    #[error("item {index}: quantity must be at least 1")]
    ZeroQuantity { index: usize },
    #[error("nothing to settle")]
    NoItems,
    #[error("more than {MAX_ITEMS} items")]
    TooManyItems,
    #[error("amount overflow")]
    Overflow,
    #[error("settlement invariant violated: {0}")]
    Invariant(&'static str),
}

impl SettlementError {
    /// Stable machine-readable code.
    pub fn kind(&self) -> &'static str {
        match self {
            SettlementError::InvalidRegion(_) => "invalid_region",
            SettlementError::UnknownRegion(_) => "unknown_region",
            SettlementError::NoRule { .. } => "no_rule",
            SettlementError::DuplicateRule { .. } => "duplicate_rule",
            SettlementError::RatioOutOfRange { .. } => "ratio_out_of_range",
            SettlementError::NegativeAmount { .. } => "negative_amount",
            SettlementError::NegativePrice { .. } => "negative_price",
            SettlementError::ZeroQuantity { .. } => "zero_quantity",
            SettlementError::NoItems => "no_items",
            SettlementError::TooManyItems => "too_many_items",
            SettlementError::Overflow => "overflow",
            SettlementError::Invariant(_) => "invariant",
        }
    }
}

impl From<MoneyError> for SettlementError {
    fn from(_: MoneyError) -> Self {
        SettlementError::Overflow
    }
}

fn valid_region(region: &str) -> bool {
    region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit())
}

fn non_negative(field: &'static str, amount: Fen) -> Result<(), SettlementError> {
    if amount.0 < 0 {
        Err(SettlementError::NegativeAmount { field, fen: amount.0 })
    } else {
        Ok(())
    }
}

fn ratio(field: &'static str, bp: u32) -> Result<(), SettlementError> {
    if bp > FULL_BP {
        Err(SettlementError::RatioOutOfRange { field, bp })
    } else {
        Ok(())
    }
}

/// `amount × bp / 10000` rounded half up to the fen (四舍五入). `amount` ≥ 0 and
/// `bp` ≤ 10000, so the result lies in `0..=amount` and cannot overflow.
#[inline]
fn share_half_up(amount: Fen, bp: u32) -> Fen {
    let (half, full) = (i64::from(FULL_BP / 2), i64::from(FULL_BP));
    // The common case in 64 bits (128-bit division is a slow library call on most targets).
    if let Some(scaled) = amount.0.checked_mul(i64::from(bp)).and_then(|v| v.checked_add(half)) {
        return Fen(scaled / full);
    }
    let scaled = (i128::from(amount.0) * i128::from(bp) + i128::from(half)) / i128::from(full);
    // In range by the preconditions; saturate rather than panic if they were ever broken.
    Fen(i64::try_from(scaled).unwrap_or(i64::MAX))
}

impl SettlementRule {
    /// Checks the rule's own data: region code, ratios, non-negative amounts.
    pub fn validate(&self) -> Result<(), SettlementError> {
        if !valid_region(&self.region) {
            return Err(SettlementError::InvalidRegion(self.region.clone()));
        }
        ratio("ratio_bp", self.ratio_bp)?;
        ratio("b_self_pay_bp", self.b_self_pay_bp)?;
        non_negative("deductible", self.deductible)?;
        non_negative("annual_cap", self.annual_cap)?;
        Ok(())
    }

    fn key(&self) -> (&str, InsuranceType, VisitType) {
        (&self.region, self.insurance_type, self.visit_type)
    }
}

impl SettlementPolicy {
    /// Checks every rule and that no key (region × insurance type × visit type) appears twice.
    pub fn validate(&self) -> Result<(), SettlementError> {
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            rule.validate()?;
            if !seen.insert(rule.key()) {
                return Err(SettlementError::DuplicateRule {
                    region: rule.region.clone(),
                    insurance_type: rule.insurance_type,
                    visit_type: rule.visit_type,
                });
            }
        }
        Ok(())
    }

    /// The rule for this key. A malformed region code, a region the table does not mention
    /// and a missing combination are three distinct errors.
    pub fn rule(
        &self,
        region: &str,
        insurance_type: InsuranceType,
        visit_type: VisitType,
    ) -> Result<&SettlementRule, SettlementError> {
        if !valid_region(region) {
            return Err(SettlementError::InvalidRegion(region.to_string()));
        }
        let mut known_region = false;
        for rule in &self.rules {
            if rule.region == region {
                known_region = true;
                if rule.insurance_type == insurance_type && rule.visit_type == visit_type {
                    return Ok(rule);
                }
            }
        }
        if known_region {
            Err(SettlementError::NoRule { region: region.to_string(), insurance_type, visit_type })
        } else {
            Err(SettlementError::UnknownRegion(region.to_string()))
        }
    }

    /// The demo city's policy (regions `419900` city level and `419902` Donghu District, one
    /// pooling; `429900` River City in another province). The table and why each number was
    /// chosen are in `docs/settlement.md`; a pharmacy visit settles under the chronic-disease
    /// outpatient rule in the demo city, and from the personal account only in River City.
    pub fn demo() -> SettlementPolicy {
        use InsuranceType::{EmployeeActive as Active, EmployeeRetired as Retired, Resident};
        use VisitType::{ChronicOutpatient as Chronic, Outpatient, Pharmacy};
        // (insurance type, visit type, deductible yuan, ratio bp, annual cap yuan, personal account)
        type Row = (InsuranceType, VisitType, i64, u32, i64, bool);
        let demo_city: [Row; 9] = [
            (Active, Outpatient, 1_500, 7_000, 3_000, true),
            (Retired, Outpatient, 1_200, 8_000, 4_000, true),
            (Resident, Outpatient, 200, 5_000, 800, false),
            (Active, Chronic, 0, 8_500, 6_000, true),
            (Retired, Chronic, 0, 9_000, 8_000, true),
            (Resident, Chronic, 0, 7_000, 4_000, false),
            (Active, Pharmacy, 0, 8_500, 6_000, true),
            (Retired, Pharmacy, 0, 9_000, 8_000, true),
            (Resident, Pharmacy, 0, 7_000, 4_000, false),
        ];
        let river_city: [Row; 9] = [
            (Active, Outpatient, 1_000, 6_000, 2_500, true),
            (Retired, Outpatient, 800, 7_000, 3_500, true),
            (Resident, Outpatient, 100, 5_000, 600, false),
            (Active, Chronic, 0, 8_000, 5_000, true),
            (Retired, Chronic, 0, 8_500, 6_000, true),
            (Resident, Chronic, 0, 6_500, 3_000, false),
            (Active, Pharmacy, 0, 0, 0, true),
            (Retired, Pharmacy, 0, 0, 0, true),
            (Resident, Pharmacy, 0, 0, 0, false),
        ];
        let table: [(&str, u32, &[Row]); 3] =
            [("419900", 1_000, &demo_city), ("419902", 1_000, &demo_city), ("429900", 1_500, &river_city)];
        let mut rules = Vec::new();
        for (region, b_self_pay_bp, rows) in table {
            for &(insurance_type, visit_type, deductible, ratio_bp, cap, personal_account) in rows {
                rules.push(SettlementRule {
                    region: region.to_string(),
                    insurance_type,
                    visit_type,
                    deductible: Fen(deductible * 100),
                    ratio_bp,
                    annual_cap: Fen(cap * 100),
                    b_self_pay_bp,
                    personal_account,
                });
            }
        }
        SettlementPolicy { name: "demo city 2026".to_string(), rules }
    }
}

impl PatientCoverage {
    /// Checks the region code and that balance and accumulators are not negative.
    pub fn validate(&self) -> Result<(), SettlementError> {
        if !valid_region(&self.pooling_region) {
            return Err(SettlementError::InvalidRegion(self.pooling_region.clone()));
        }
        non_negative("account_balance", self.account_balance)?;
        non_negative("year_to_date.deductible_paid", self.year_to_date.deductible_paid)?;
        non_negative("year_to_date.fund_paid", self.year_to_date.fund_paid)?;
        Ok(())
    }
}

/// One item's split before the deductible: (first self-pay share, out of scope, eligible).
#[inline]
pub(crate) fn split_amount(rule: &SettlementRule, category: ItemCategory, amount: Fen) -> (Fen, Fen, Fen) {
    match category {
        ItemCategory::A => (Fen::ZERO, Fen::ZERO, amount),
        ItemCategory::B => {
            let share = share_half_up(amount, rule.b_self_pay_bp);
            (share, Fen::ZERO, Fen(amount.0 - share.0))
        }
        ItemCategory::C => (Fen::ZERO, amount, Fen::ZERO),
    }
}

/// The fund's side of a settlement, computed from the eligible total alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FundShare {
    pub deductible_remaining: Fen,
    pub cap_remaining: Fen,
    pub deductible_applied: Fen,
    pub fund: Fen,
    pub cap_reached: bool,
}

impl FundShare {
    /// The year-to-date accumulators after this settlement.
    pub fn year_to_date_after(&self, before: YearToDate) -> Result<YearToDate, SettlementError> {
        Ok(YearToDate {
            deductible_paid: before.deductible_paid.checked_add(self.deductible_applied)?,
            fund_paid: before.fund_paid.checked_add(self.fund)?,
        })
    }
}

/// Deductible, ratio and cap applied to the eligible total (rules 3–5 of `docs/settlement.md`).
/// Inputs are validated (non-negative, ratio ≤ 10000 bp).
pub(crate) fn fund_share(rule: &SettlementRule, year_to_date: YearToDate, eligible: Fen) -> FundShare {
    let deductible_remaining = Fen(rule.deductible.0.saturating_sub(year_to_date.deductible_paid.0).max(0));
    let cap_remaining = Fen(rule.annual_cap.0.saturating_sub(year_to_date.fund_paid.0).max(0));
    let deductible_applied = deductible_remaining.min(eligible);
    let by_ratio = share_half_up(Fen(eligible.0 - deductible_applied.0), rule.ratio_bp);
    let fund = by_ratio.min(cap_remaining);
    FundShare { deductible_remaining, cap_remaining, deductible_applied, fund, cap_reached: by_ratio > cap_remaining }
}

/// Splits `total` over lines in proportion to `weights` (largest remainder; ties to the
/// earlier line). `total` ≤ the sum of the weights, all non-negative.
fn allocate(total: Fen, weights: &[Fen]) -> Vec<Fen> {
    let sum: i128 = weights.iter().map(|w| i128::from(w.0)).sum();
    if sum == 0 {
        return vec![Fen::ZERO; weights.len()];
    }
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (index, weight) in weights.iter().enumerate() {
        let product = i128::from(total.0) * i128::from(weight.0);
        let share = product / sum;
        given += share;
        shares.push(share);
        remainders.push((product % sum, index));
    }
    // Largest remainder first, then the earlier line.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = i128::from(total.0) - given;
    for &(_, index) in remainders.iter().take(usize::try_from(left).unwrap_or(0)) {
        shares[index] += 1;
    }
    shares.into_iter().map(|s| Fen(i64::try_from(s).unwrap_or(i64::MAX))).collect()
}

/// Settles a request under the policy's rule for the patient's region, insurance type and
/// the visit type. The whole policy is validated first, so its errors come before the
/// request's (`docs/settlement.md` § Errors gives the order).
pub fn settle(policy: &SettlementPolicy, request: &SettlementRequest) -> Result<Settlement, SettlementError> {
    policy.validate()?;
    let rule = policy.rule(&request.patient.pooling_region, request.patient.insurance_type, request.visit_type)?;
    settle_with_rule(rule, &request.patient, &request.items)
}

/// Settles items under a given rule (the patient's region and type are not looked up again).
pub fn settle_with_rule(
    rule: &SettlementRule,
    patient: &PatientCoverage,
    items: &[SettlementItem],
) -> Result<Settlement, SettlementError> {
    rule.validate()?;
    patient.validate()?;
    if items.is_empty() {
        return Err(SettlementError::NoItems);
    }
    if items.len() > MAX_ITEMS {
        return Err(SettlementError::TooManyItems);
    }
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if item.unit_price.0 < 0 {
            return Err(SettlementError::NegativePrice { index, fen: item.unit_price.0 });
        }
        if item.quantity == 0 {
            return Err(SettlementError::ZeroQuantity { index });
        }
        let amount = item.unit_price.checked_mul(i64::from(item.quantity))?;
        let (first_self_pay, out_of_scope, eligible) = split_amount(rule, item.category, amount);
        lines.push(SettlementLine {
            code: item.code.clone(),
            category: item.category,
            unit_price: item.unit_price,
            quantity: item.quantity,
            amount,
            first_self_pay,
            out_of_scope,
            eligible,
            deductible: Fen::ZERO,
            fund: Fen::ZERO,
        });
    }
    let total = Fen::sum(lines.iter().map(|l| l.amount))?;
    let eligible = Fen::sum(lines.iter().map(|l| l.eligible))?;
    let share = fund_share(rule, patient.year_to_date, eligible);

    // The deductible is taken from the lines in their order.
    let mut deductible_left = share.deductible_applied;
    for line in &mut lines {
        line.deductible = deductible_left.min(line.eligible);
        deductible_left = Fen(deductible_left.0 - line.deductible.0);
    }
    let weights: Vec<Fen> = lines.iter().map(|l| Fen(l.eligible.0 - l.deductible.0)).collect();
    for (line, fund) in lines.iter_mut().zip(allocate(share.fund, &weights)) {
        line.fund = fund;
    }

    let patient_share = total.checked_sub(share.fund)?;
    let personal_account = if patient.use_account && rule.personal_account {
        patient_share.min(patient.account_balance)
    } else {
        Fen::ZERO
    };
    let mutual_aid = Fen::ZERO;
    let cash = patient_share.checked_sub(personal_account)?.checked_sub(mutual_aid)?;
    let settlement = Settlement {
        total,
        fund: share.fund,
        personal_account,
        mutual_aid,
        cash,
        first_self_pay: Fen::sum(lines.iter().map(|l| l.first_self_pay))?,
        out_of_scope: Fen::sum(lines.iter().map(|l| l.out_of_scope))?,
        eligible,
        deductible_applied: share.deductible_applied,
        deductible_remaining_before: share.deductible_remaining,
        cap_remaining_before: share.cap_remaining,
        account_balance_before: patient.account_balance,
        mutual_aid_balance_before: Fen::ZERO,
        ratio_bp: rule.ratio_bp,
        cap_reached: share.cap_reached,
        lines,
    };
    settlement.check()?;
    Ok(settlement)
}

impl Settlement {
    /// Family mutual aid (家庭共济, `docs/settlement.md` § 8) over a settlement: a relative's
    /// personal account, of `giver_balance`, pays what the patient's own account left,
    /// `mutual_aid = min(giver_balance, cash)`, and cash is the rest. The fund, the patient's
    /// account and the accumulators do not change. A zero balance gives the same split.
    pub fn with_mutual_aid(mut self, giver_balance: Fen) -> Result<Settlement, SettlementError> {
        let giver_balance = giver_balance.non_negative()?;
        let rest = self.mutual_aid.checked_add(self.cash)?;
        self.mutual_aid = rest.min(giver_balance);
        self.cash = rest.checked_sub(self.mutual_aid)?;
        self.mutual_aid_balance_before = giver_balance;
        self.check()?;
        Ok(self)
    }

    /// What leaves the patient's (and family's) pockets: `personal_account + mutual_aid + cash`,
    /// which is `total − fund`.
    pub fn patient_pays(&self) -> Fen {
        Fen(self.total.0.saturating_sub(self.fund.0))
    }

    /// The year-to-date accumulators after this settlement.
    pub fn year_to_date_after(&self, before: YearToDate) -> Result<YearToDate, SettlementError> {
        Ok(YearToDate {
            deductible_paid: before.deductible_paid.checked_add(self.deductible_applied)?,
            fund_paid: before.fund_paid.checked_add(self.fund)?,
        })
    }

    /// Checks every invariant of a split, whoever computed it (this module, or the platform
    /// for a quote the core is about to show): no part negative, the parts sum to the total,
    /// personal account ≤ balance, fund ≤ remaining cap, deductible ≤ remaining deductible,
    /// and the lines consistent with each other and with the totals.
    pub fn check(&self) -> Result<(), SettlementError> {
        use SettlementError::Invariant;
        let parts = [
            self.total,
            self.fund,
            self.personal_account,
            self.mutual_aid,
            self.cash,
            self.first_self_pay,
            self.out_of_scope,
            self.eligible,
            self.deductible_applied,
            self.deductible_remaining_before,
            self.cap_remaining_before,
            self.account_balance_before,
            self.mutual_aid_balance_before,
        ];
        if parts.iter().any(|p| p.0 < 0) {
            return Err(Invariant("an amount is negative"));
        }
        if self.ratio_bp > FULL_BP {
            return Err(Invariant("ratio above 10000 bp"));
        }
        if Fen::sum([self.fund, self.personal_account, self.mutual_aid, self.cash])? != self.total {
            return Err(Invariant("fund + personal account + mutual aid + cash differs from the total"));
        }
        if Fen::sum([self.first_self_pay, self.out_of_scope, self.eligible])? != self.total {
            return Err(Invariant("first self-pay + out of scope + eligible differs from the total"));
        }
        if self.personal_account > self.account_balance_before {
            return Err(Invariant("personal account pays more than its balance"));
        }
        if self.mutual_aid > self.mutual_aid_balance_before {
            return Err(Invariant("mutual aid pays more than the giver's balance"));
        }
        if self.fund > self.cap_remaining_before {
            return Err(Invariant("fund pays more than the remaining annual cap"));
        }
        if self.deductible_applied > self.deductible_remaining_before || self.deductible_applied > self.eligible {
            return Err(Invariant("deductible applied exceeds what remained or what was eligible"));
        }
        if self.fund.0 > self.eligible.0 - self.deductible_applied.0 {
            return Err(Invariant("fund pays more than the eligible amount above the deductible"));
        }
        if self.lines.is_empty() {
            return Err(Invariant("no lines"));
        }
        for line in &self.lines {
            let fields = [line.unit_price, line.amount, line.first_self_pay, line.out_of_scope, line.eligible];
            if fields.iter().chain([&line.deductible, &line.fund]).any(|p| p.0 < 0) {
                return Err(Invariant("a line amount is negative"));
            }
            if line.quantity == 0 || line.unit_price.checked_mul(i64::from(line.quantity))? != line.amount {
                return Err(Invariant("a line amount differs from unit price × quantity"));
            }
            if Fen::sum([line.first_self_pay, line.out_of_scope, line.eligible])? != line.amount {
                return Err(Invariant("a line's parts differ from its amount"));
            }
            let category_ok = match line.category {
                ItemCategory::A => line.first_self_pay.0 == 0 && line.out_of_scope.0 == 0,
                ItemCategory::B => line.out_of_scope.0 == 0,
                ItemCategory::C => line.first_self_pay.0 == 0 && line.eligible.0 == 0,
            };
            if !category_ok {
                return Err(Invariant("a line's split does not match its category"));
            }
            if line.deductible > line.eligible || line.fund.0 > line.eligible.0 - line.deductible.0 {
                return Err(Invariant("a line's deductible or fund exceeds its eligible amount"));
            }
        }
        let sums = [
            (Fen::sum(self.lines.iter().map(|l| l.amount))?, self.total),
            (Fen::sum(self.lines.iter().map(|l| l.first_self_pay))?, self.first_self_pay),
            (Fen::sum(self.lines.iter().map(|l| l.out_of_scope))?, self.out_of_scope),
            (Fen::sum(self.lines.iter().map(|l| l.eligible))?, self.eligible),
            (Fen::sum(self.lines.iter().map(|l| l.deductible))?, self.deductible_applied),
            (Fen::sum(self.lines.iter().map(|l| l.fund))?, self.fund),
        ];
        if sums.iter().any(|(lines, total)| lines != total) {
            return Err(Invariant("the lines do not sum to the totals"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn employee(region: &str) -> PatientCoverage {
        PatientCoverage {
            insurance_type: InsuranceType::EmployeeActive,
            pooling_region: region.to_string(),
            year_to_date: YearToDate::default(),
            account_balance: Fen::ZERO,
            use_account: false,
        }
    }

    fn item(code: &str, category: ItemCategory, unit_price: i64, quantity: u32) -> SettlementItem {
        SettlementItem { code: code.to_string(), category, unit_price: Fen(unit_price), quantity }
    }

    fn request(patient: PatientCoverage, visit_type: VisitType, items: Vec<SettlementItem>) -> SettlementRequest {
        SettlementRequest { patient, visit_type, items }
    }

    #[test]
    fn demo_policy_is_valid_and_covers_every_key() {
        let policy = SettlementPolicy::demo();
        policy.validate().unwrap();
        for region in ["419900", "419902", "429900"] {
            for insurance in [InsuranceType::EmployeeActive, InsuranceType::EmployeeRetired, InsuranceType::Resident] {
                for visit in [VisitType::Outpatient, VisitType::ChronicOutpatient, VisitType::Pharmacy] {
                    policy.rule(region, insurance, visit).unwrap();
                }
            }
        }
    }

    #[test]
    fn demo_policy_round_trips_through_json() {
        let policy = SettlementPolicy::demo();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<SettlementPolicy>(&json).unwrap(), policy);
    }

    #[test]
    fn class_c_items_are_paid_entirely_by_the_patient() {
        let s = settle(
            &SettlementPolicy::demo(),
            &request(employee("419900"), VisitType::Pharmacy, vec![item("X", ItemCategory::C, 4_321, 3)]),
        )
        .unwrap();
        assert_eq!((s.total, s.fund, s.cash, s.out_of_scope), (Fen(12_963), Fen(0), Fen(12_963), Fen(12_963)));
    }

    #[test]
    fn personal_account_never_pays_more_than_its_balance() {
        let mut patient = employee("419900");
        patient.account_balance = Fen(1_000);
        patient.use_account = true;
        let s = settle(
            &SettlementPolicy::demo(),
            &request(patient, VisitType::Pharmacy, vec![item("X", ItemCategory::C, 5_000, 1)]),
        )
        .unwrap();
        assert_eq!((s.personal_account, s.cash), (Fen(1_000), Fen(4_000)));
    }

    #[test]
    fn personal_account_is_unused_unless_chosen() {
        let mut patient = employee("419900");
        patient.account_balance = Fen(100_000);
        let s = settle(
            &SettlementPolicy::demo(),
            &request(patient, VisitType::Pharmacy, vec![item("X", ItemCategory::A, 5_000, 1)]),
        )
        .unwrap();
        assert_eq!((s.personal_account, s.cash), (Fen(0), Fen(750)));
    }

    #[test]
    fn fund_never_exceeds_the_remaining_cap() {
        let mut patient = employee("419900");
        patient.year_to_date.fund_paid = Fen(10_000_000);
        let s = settle(
            &SettlementPolicy::demo(),
            &request(patient, VisitType::ChronicOutpatient, vec![item("X", ItemCategory::A, 5_000, 1)]),
        )
        .unwrap();
        assert_eq!((s.fund, s.cap_remaining_before, s.cap_reached), (Fen(0), Fen(0), true));
    }

    #[test]
    fn invalid_item_and_policy_data_give_typed_errors() {
        let policy = SettlementPolicy::demo();
        let settle_one = |it: SettlementItem| {
            settle(&policy, &request(employee("419900"), VisitType::Pharmacy, vec![it])).unwrap_err()
        };
        assert_eq!(settle_one(item("X", ItemCategory::A, -1, 1)), SettlementError::NegativePrice { index: 0, fen: -1 });
        assert_eq!(settle_one(item("X", ItemCategory::A, 1, 0)), SettlementError::ZeroQuantity { index: 0 });
        assert_eq!(settle_one(item("X", ItemCategory::A, i64::MAX, 2)), SettlementError::Overflow);
        assert_eq!(
            settle(&policy, &request(employee("419900"), VisitType::Pharmacy, vec![])).unwrap_err(),
            SettlementError::NoItems
        );
        let unknown = settle(&policy, &request(employee("999999"), VisitType::Pharmacy, vec![]));
        assert_eq!(unknown.unwrap_err(), SettlementError::UnknownRegion("999999".into()));

        let mut bad = SettlementPolicy::demo();
        bad.rules[0].ratio_bp = 10_001;
        assert_eq!(bad.validate().unwrap_err().kind(), "ratio_out_of_range");
        let outpatient = request(employee("419900"), VisitType::Outpatient, vec![item("X", ItemCategory::A, 1, 1)]);
        assert_eq!(settle(&bad, &outpatient).unwrap_err().kind(), "ratio_out_of_range");
        let mut duplicated = SettlementPolicy::demo();
        duplicated.rules.push(duplicated.rules[0].clone());
        assert_eq!(duplicated.validate().unwrap_err().kind(), "duplicate_rule");
        let mut negative = SettlementPolicy::demo();
        negative.rules[0].annual_cap = Fen(-1);
        assert_eq!(negative.validate().unwrap_err().kind(), "negative_amount");
    }

    #[test]
    fn unknown_fields_are_refused_in_requests_and_policies() {
        let request = r#"{"patient": {"insurance_type": "employee_active", "pooling_region": "419900",
            "account_balance": 5000, "use_acount": true}, "visit_type": "pharmacy",
            "items": [{"code": "X", "category": "A", "unit_price": 100, "quantity": 1}]}"#;
        assert!(serde_json::from_str::<SettlementRequest>(request).is_err(), "a misspelt field in the patient");
        let item = r#"{"code": "X", "category": "A", "unit_price": 100, "quantity": 1, "unit_price_fen": 100}"#;
        assert!(serde_json::from_str::<SettlementItem>(item).is_err(), "a bill's field name on an item");
        let mut policy = serde_json::to_value(SettlementPolicy::demo()).unwrap();
        policy["rules"][0]["price_ceiling"] = serde_json::json!(100);
        assert!(serde_json::from_value::<SettlementPolicy>(policy).is_err(), "a rule field this version cannot apply");
        let defaults = r#"{"patient": {"insurance_type": "resident", "pooling_region": "419900"},
            "visit_type": "pharmacy", "items": [{"code": "X", "category": "C", "unit_price": 100, "quantity": 1}]}"#;
        let parsed: SettlementRequest = serde_json::from_str(defaults).unwrap();
        assert_eq!(
            (parsed.patient.year_to_date, parsed.patient.account_balance, parsed.patient.use_account),
            (YearToDate::default(), Fen(0), false)
        );
    }

    #[test]
    fn settle_validates_the_whole_policy_before_the_request() {
        let mut policy = SettlementPolicy::demo();
        let last = policy.rules.len() - 1;
        policy.rules[last].ratio_bp = 10_001; // a rule this request does not use
        let good = request(employee("419900"), VisitType::Pharmacy, vec![item("X", ItemCategory::A, 100, 1)]);
        assert_eq!(settle(&policy, &good).unwrap_err().kind(), "ratio_out_of_range");
        let bad = request(employee("999999"), VisitType::Pharmacy, vec![]);
        assert_eq!(settle(&policy, &bad).unwrap_err().kind(), "ratio_out_of_range", "policy errors come first");
    }

    #[test]
    fn errors_are_reported_in_the_documented_order() {
        let policy = SettlementPolicy::demo();
        let kind = |patient: PatientCoverage, items: Vec<SettlementItem>| {
            settle(&policy, &request(patient, VisitType::Pharmacy, items)).unwrap_err().kind()
        };
        let overdrawn = |region: &str| PatientCoverage { account_balance: Fen(-1), ..employee(region) };
        assert_eq!(kind(overdrawn("41990"), vec![]), "invalid_region");
        assert_eq!(kind(overdrawn("999999"), vec![]), "unknown_region");
        assert_eq!(kind(overdrawn("419900"), vec![]), "negative_amount");
        assert_eq!(kind(employee("419900"), vec![]), "no_items");
        let zero_then_negative = vec![item("X", ItemCategory::A, 100, 0), item("Y", ItemCategory::A, -1, 1)];
        assert_eq!(kind(employee("419900"), zero_then_negative), "zero_quantity");
        assert_eq!(kind(employee("419900"), vec![item("X", ItemCategory::A, -1, 0)]), "negative_price");
        let big = item("X", ItemCategory::A, i64::MAX, 1);
        assert_eq!(
            kind(employee("419900"), vec![big.clone(), big.clone(), item("Z", ItemCategory::A, -1, 1)]),
            "negative_price"
        );
        assert_eq!(kind(employee("419900"), vec![big.clone(), big]), "overflow");
    }

    #[test]
    fn tampered_splits_fail_the_invariant_check() {
        let mut patient = employee("419900");
        patient.account_balance = Fen(2_000);
        patient.use_account = true;
        let items = vec![item("A1", ItemCategory::A, 3_000, 1), item("B1", ItemCategory::B, 1_000, 2)];
        let good = settle(&SettlementPolicy::demo(), &request(patient, VisitType::Pharmacy, items)).unwrap();
        good.check().unwrap();
        let tamper: [fn(&mut Settlement); 6] = [
            |s| s.cash.0 += 1,
            |s| {
                s.fund.0 += 1;
                s.personal_account.0 -= 1
            },
            |s| {
                s.personal_account.0 += s.cash.0;
                s.cash = Fen(0);
                s.account_balance_before = Fen(0)
            },
            |s| s.lines[0].fund.0 += 1,
            |s| s.lines[1].out_of_scope.0 += 1,
            |s| s.mutual_aid = Fen(-1),
        ];
        for (i, t) in tamper.iter().enumerate() {
            let mut s = good.clone();
            t(&mut s);
            assert_eq!(s.check().map_err(|e| e.kind()), Err("invariant"), "tamper {i}");
        }
    }

    #[test]
    fn shares_of_huge_amounts_round_half_up_without_overflow() {
        assert_eq!(share_half_up(Fen(5), 1_000), Fen(1));
        assert_eq!(share_half_up(Fen(4), 1_000), Fen(0));
        assert_eq!(share_half_up(Fen(i64::MAX), FULL_BP), Fen(i64::MAX));
        assert_eq!(share_half_up(Fen(i64::MAX), 5_000), Fen(i64::MAX / 2 + 1));
        assert_eq!(share_half_up(Fen(i64::MAX), 0), Fen(0));
    }

    #[test]
    fn allocation_gives_leftover_fen_to_the_largest_remainder_then_the_earlier_line() {
        assert_eq!(allocate(Fen(9), &[Fen(5), Fen(5)]), vec![Fen(5), Fen(4)]);
        assert_eq!(allocate(Fen(8320), &[Fen(4780), Fen(5008), Fen(0)]), vec![Fen(4063), Fen(4257), Fen(0)]);
        assert_eq!(allocate(Fen(0), &[Fen(0), Fen(0)]), vec![Fen(0), Fen(0)]);
    }

    // ---- shared vectors ----

    /// Policies and requests stay JSON until a case runs: some are not valid policies or
    /// requests on purpose (`malformed`).
    #[derive(Deserialize)]
    struct VectorFile {
        policies: std::collections::BTreeMap<String, serde_json::Value>,
        case_count: usize,
        cases: Vec<VectorCase>,
    }

    #[derive(Deserialize)]
    struct VectorCase {
        name: String,
        policy: String,
        request: serde_json::Value,
        expect: Expected,
    }

    /// What `settle_json` does: decode the policy, then the request (either failing is
    /// `malformed`), then settle, which validates the policy first.
    fn settle_vector(policy: &serde_json::Value, request: &serde_json::Value) -> Result<Settlement, String> {
        let policy: SettlementPolicy = serde_json::from_value(policy.clone()).map_err(|_| "malformed".to_string())?;
        let request: SettlementRequest =
            serde_json::from_value(request.clone()).map_err(|_| "malformed".to_string())?;
        settle(&policy, &request).map_err(|e| e.kind().to_string())
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Expected {
        Settlement(ExpectedSplit),
        Error(String),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct ExpectedSplit {
        total: Fen,
        fund: Fen,
        personal_account: Fen,
        mutual_aid: Fen,
        cash: Fen,
        first_self_pay: Fen,
        out_of_scope: Fen,
        eligible: Fen,
        deductible_applied: Fen,
        cap_reached: bool,
        line_deductible: Vec<Fen>,
        line_fund: Vec<Fen>,
    }

    fn vectors() -> VectorFile {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/settlement/cases.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn settlement_vectors_give_the_stated_split_or_error() {
        let file = vectors();
        assert!(file.case_count > 0 && file.cases.len() == file.case_count, "the vector file lost cases");
        for case in &file.cases {
            let result = settle_vector(&file.policies[&case.policy], &case.request);
            match (&case.expect, result) {
                (Expected::Settlement(want), Ok(s)) => {
                    let got = ExpectedSplit {
                        total: s.total,
                        fund: s.fund,
                        personal_account: s.personal_account,
                        mutual_aid: s.mutual_aid,
                        cash: s.cash,
                        first_self_pay: s.first_self_pay,
                        out_of_scope: s.out_of_scope,
                        eligible: s.eligible,
                        deductible_applied: s.deductible_applied,
                        cap_reached: s.cap_reached,
                        line_deductible: s.lines.iter().map(|l| l.deductible).collect(),
                        line_fund: s.lines.iter().map(|l| l.fund).collect(),
                    };
                    assert_eq!(&got, want, "{}", case.name);
                }
                (Expected::Error(kind), Err(e)) => assert_eq!(&e, kind, "{}", case.name),
                (want, got) => panic!("{}: expected {}, got {got:?}", case.name, matches!(want, Expected::Error(_))),
            }
        }
    }

    #[test]
    fn the_vector_files_demo_policy_is_the_demo_policy() {
        let demo: SettlementPolicy = serde_json::from_value(vectors().policies["demo"].clone()).unwrap();
        assert_eq!(demo, SettlementPolicy::demo());
    }
}
