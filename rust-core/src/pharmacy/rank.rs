//! Ranking pharmacies for a prescription by what the patient pays after insurance
//! (`docs/pharmacy.md` is normative): filters (distance, open now, delivers here), stock
//! completeness, net cost through the same settlement rules the platform uses, a total and
//! deterministic order, partial fills, and the cheapest pair when no single pharmacy has
//! everything.
//!
//! [`rank`] finds candidates through the catalogue's R-tree; [`rank_scan`] measures every
//! pharmacy and is the reference the property tests and the benchmark compare it with;
//! [`rank_box_scan`] tests every pharmacy against the same search box the R-tree is asked for
//! before measuring it (the honest scan baseline). All three share everything after the
//! candidate search. [`ranking_candidates`] and [`price_candidates`] split out the one part no
//! ranking can skip, pricing each pharmacy that passes the filters: the benchmark's floor.
//! No I/O and no clock: the time for "open now" is passed in.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::catalogue::Catalogue;
use super::geo::{haversine_m, search_box, GeoBox, GeoPoint};
use super::PharmacyError;
use crate::money::Fen;
use crate::settlement::{
    fund_share, settle_with_rule, split_amount, ItemCategory, PatientCoverage, Settlement, SettlementError,
    SettlementItem, SettlementPolicy, SettlementRule, VisitType, YearToDate,
};

/// The largest search radius a query may ask for.
pub const MAX_SEARCH_RADIUS_M: u32 = 100_000;
/// The search radius when the caller does not say.
pub const DEFAULT_MAX_DISTANCE_M: u32 = 5_000;
/// The most quotes one ranking returns.
pub const MAX_LIMIT: u32 = 200;
/// How many quotes when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 20;
/// The most items a prescription may have.
pub const MAX_PRESCRIPTION_ITEMS: usize = 32;
/// The pair search looks at this many partial-stock pharmacies, the nearest first.
pub const PAIR_POOL: usize = 128;
/// Courier speed for delivery-time estimates: 250 m a minute (15 km/h).
pub const COURIER_METRES_PER_MINUTE: u32 = 250;
/// China Standard Time, the zone opening hours are written in.
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// One prescribed drug.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrescriptionItem {
    pub drug_code: String,
    /// Packs.
    pub quantity: u32,
}

/// A prescription to fill: each drug once, 1 to 32 items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prescription {
    pub items: Vec<PrescriptionItem>,
}

/// Collect at the pharmacy or have it delivered to [`RankOptions::location`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Fulfilment {
    #[default]
    Pickup,
    Delivery,
}

fn default_max_distance() -> u32 {
    DEFAULT_MAX_DISTANCE_M
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

fn default_true() -> bool {
    true
}

/// How to rank.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RankOptions {
    /// Where the patient is (pickup) or the delivery address (delivery); distances are
    /// measured from here.
    pub location: GeoPoint,
    #[serde(default)]
    pub fulfilment: Fulfilment,
    /// Only pharmacies at most this far (metres, ≤ 100,000).
    #[serde(default = "default_max_distance")]
    pub max_distance_m: u32,
    /// When set, only pharmacies open at this instant (ms since the Unix epoch).
    #[serde(default)]
    pub open_at_ms: Option<i64>,
    /// How many quotes to return, 1–200.
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Whether pharmacies that fill only part of the prescription are listed.
    #[serde(default = "default_true")]
    pub include_partial: bool,
}

impl RankOptions {
    /// Pickup near `location`, 5 km, any time, 20 quotes, partial fills listed.
    pub fn near(location: GeoPoint) -> Self {
        RankOptions {
            location,
            fulfilment: Fulfilment::Pickup,
            max_distance_m: DEFAULT_MAX_DISTANCE_M,
            open_at_ms: None,
            limit: DEFAULT_LIMIT,
            include_partial: true,
        }
    }
}

/// "Quotes for this prescription near here": what a client sends the platform, which adds
/// the patient's coverage from the session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteRequest {
    pub prescription: Prescription,
    pub options: RankOptions,
}

/// Whether a pharmacy can fill the whole prescription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    /// Every item, in the prescribed quantity.
    Complete,
    /// Some items.
    Partial,
    /// None of them (never listed, only counted).
    None,
}

/// What one pharmacy would charge for what it fills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PharmacyQuote {
    pub pharmacy_id: String,
    pub pharmacy_name: String,
    pub location: GeoPoint,
    pub stock: StockStatus,
    /// Drug codes of the prescription this quote does not fill, in prescription order.
    pub missing: Vec<String>,
    /// Sum of unit price × quantity of what it fills.
    pub list_price: Fen,
    /// The insurance split of what it fills.
    pub settlement: Settlement,
    /// Zero for pickup.
    pub delivery_fee: Fen,
    /// What the patient pays: `settlement.total − settlement.fund + delivery_fee`.
    pub net_cost: Fen,
    /// From [`RankOptions::location`], whole metres.
    pub distance_m: u32,
    /// Estimated minutes to the door (delivery only).
    pub delivery_minutes: Option<u32>,
}

/// Two pharmacies that together fill a prescription neither fills alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairQuote {
    /// Settled first (the lower pharmacy id); its `missing` are the items `second` fills.
    pub first: PharmacyQuote,
    /// Settled second, with the year-to-date figures after `first`.
    pub second: PharmacyQuote,
    pub list_price: Fen,
    /// `first.net_cost + second.net_cost`.
    pub net_cost: Fen,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ranking {
    /// Best first, at most `limit`.
    pub quotes: Vec<PharmacyQuote>,
    /// Pharmacies that passed the filters (distance, open, delivery), whatever their stock.
    pub candidates: u32,
    pub complete: u32,
    pub partial: u32,
    pub no_stock: u32,
    /// The cheapest pair, only when no candidate is complete and some pair is.
    pub best_pair: Option<PairQuote>,
}

/// Ranks with the spatial index.
pub fn rank(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
) -> Result<Ranking, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    let mut candidates = Vec::new();
    let mut failure = None;
    catalogue.near(options.location, query.search_radius_m(), |pharmacy| {
        if failure.is_none() {
            if let Err(e) = query.consider(pharmacy, &mut candidates) {
                failure = Some(e);
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    query.finish(candidates)
}

/// The quote of one pharmacy for `prescription` under `options` (distance from
/// `options.location`, the filters applied), or `None` when it is filtered out (too far, closed,
/// does not deliver there) — what an order is placed on.
pub fn quote_at(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
    pharmacy_id: &str,
) -> Result<Option<PharmacyQuote>, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    let Some(position) = catalogue.position_of(pharmacy_id) else { return Ok(None) };
    let mut found = Vec::with_capacity(1);
    query.consider(position, &mut found)?;
    match found.first() {
        Some(c) => Ok(Some(query.quote(c, c.fills, patient.year_to_date, Some(c.net_cost))?)),
        None => Ok(None),
    }
}

/// Ranks by measuring every pharmacy: the reference [`rank`] must agree with exactly.
pub fn rank_scan(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
) -> Result<Ranking, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    let mut candidates = Vec::new();
    for pharmacy in 0..catalogue.len() {
        // Fits: the catalogue holds at most u32::MAX pharmacies.
        query.consider(pharmacy as u32, &mut candidates)?;
    }
    query.finish(candidates)
}

/// Ranks by testing every pharmacy's coordinates against the box around the search circle
/// that [`rank`] asks the R-tree for (the same box, the same inclusive test), then measuring
/// and pricing those inside exactly as [`rank`] does: a scan without the index but without
/// needless distance computations. Agrees with [`rank`] exactly.
pub fn rank_box_scan(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
) -> Result<Ranking, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    let area = search_box(options.location, query.search_radius_m());
    let mut candidates = Vec::new();
    for pharmacy in 0..catalogue.len() {
        // Fits: the catalogue holds at most u32::MAX pharmacies.
        let pharmacy = pharmacy as u32;
        if in_box(&area, catalogue.location_at(pharmacy)) {
            query.consider(pharmacy, &mut candidates)?;
        }
    }
    query.finish(candidates)
}

/// The R-tree's envelope test for a point, `[lon, lat]`, bounds included.
#[inline]
fn in_box(area: &GeoBox, p: GeoPoint) -> bool {
    area.min[0] <= p.lon && p.lon <= area.max[0] && area.min[1] <= p.lat && p.lat <= area.max[1]
}

/// The pharmacies a ranking prices: those within the distance that pass its filters (open
/// now, delivers to the address), whatever their stock, with the delivery fee each would
/// add. Made by [`ranking_candidates`] for [`price_candidates`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankingCandidates {
    /// (position, delivery fee), in the order the index finds them (the order [`rank`] prices
    /// them in).
    pharmacies: Vec<(u32, Fen)>,
}

impl RankingCandidates {
    pub fn len(&self) -> usize {
        self.pharmacies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pharmacies.is_empty()
    }

    /// Their pharmacy ids, in the same order.
    pub fn ids<'c>(&self, catalogue: &'c Catalogue) -> Vec<&'c str> {
        self.pharmacies.iter().map(|&(p, _)| catalogue.pharmacy_at(p).id.as_str()).collect()
    }
}

/// The candidates [`rank`] would price for this request (found with the index).
pub fn ranking_candidates(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
) -> Result<RankingCandidates, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    let mut found = Vec::new();
    catalogue.near(options.location, query.search_radius_m(), |pharmacy| {
        if let Some((_, fee, _)) = query.filter(pharmacy) {
            found.push((pharmacy, fee));
        }
    });
    Ok(RankingCandidates { pharmacies: found })
}

/// Prices each candidate exactly as the ranking does (which items it fills and what the
/// patient would pay, through the fast path of the settlement rules) and nothing else: no
/// search, no distance, no filter, no ordering, no full quotes. The net costs, in the
/// candidates' order. The ranking's floor: no ranking of these pharmacies can do less.
pub fn price_candidates(
    catalogue: &Catalogue,
    policy: &SettlementPolicy,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
    candidates: &RankingCandidates,
) -> Result<Vec<Fen>, PharmacyError> {
    let query = Query::new(catalogue, policy, patient, prescription, options)?;
    candidates
        .pharmacies
        .iter()
        .map(|&(pharmacy, fee)| query.price(pharmacy, fee).map(|(_, _, net_cost)| net_cost))
        .collect()
}

/// A prescription item resolved against the catalogue.
#[derive(Clone, Copy, Debug)]
struct Wanted {
    drug: u32,
    quantity: u32,
    category: ItemCategory,
    /// Its bit in the fill masks (its position in the prescription).
    bit: u64,
}

/// A pharmacy that passed the filters, with what ordering needs.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    pharmacy: u32,
    distance_m: u32,
    delivery_minutes: Option<u32>,
    delivery_fee: Fen,
    /// Bit `i` set when it fills prescription item `i`.
    fills: u64,
    filled: u32,
    net_cost: Fen,
}

struct Query<'a> {
    catalogue: &'a Catalogue,
    rule: &'a SettlementRule,
    patient: &'a PatientCoverage,
    options: &'a RankOptions,
    /// In prescription order.
    wanted: Vec<Wanted>,
    /// The same, by drug position, for the merge with a pharmacy's stock.
    by_drug: Vec<Wanted>,
    codes: Vec<&'a str>,
    all: u64,
    /// Local (UTC+8) ISO weekday and minute of `open_at_ms`.
    open_at: Option<(u8, u16)>,
}

/// ISO weekday (1 Monday … 7 Sunday) and minute of the day in China Standard Time.
pub fn china_local_time(at_ms: i64) -> Option<(u8, u16)> {
    let local = at_ms.checked_add(CST_OFFSET_MS)?;
    let days = local.div_euclid(86_400_000);
    let minute = local.rem_euclid(86_400_000) / 60_000;
    // 1970-01-01 was a Thursday (ISO 4).
    let weekday = (days + 3).rem_euclid(7) + 1;
    Some((weekday as u8, minute as u16))
}

impl<'a> Query<'a> {
    fn new(
        catalogue: &'a Catalogue,
        policy: &'a SettlementPolicy,
        patient: &'a PatientCoverage,
        prescription: &'a Prescription,
        options: &'a RankOptions,
    ) -> Result<Self, PharmacyError> {
        if !options.location.is_valid() {
            return Err(PharmacyError::InvalidOptions("location out of range"));
        }
        if options.max_distance_m > MAX_SEARCH_RADIUS_M {
            return Err(PharmacyError::InvalidOptions("max_distance_m above 100000"));
        }
        if options.limit == 0 || options.limit > MAX_LIMIT {
            return Err(PharmacyError::InvalidOptions("limit must be 1 to 200"));
        }
        let open_at = match options.open_at_ms {
            Some(ms) => Some(china_local_time(ms).ok_or(PharmacyError::InvalidOptions("open_at_ms out of range"))?),
            None => None,
        };
        if prescription.items.is_empty() {
            return Err(PharmacyError::EmptyPrescription);
        }
        if prescription.items.len() > MAX_PRESCRIPTION_ITEMS {
            return Err(PharmacyError::TooManyItems);
        }
        let mut wanted = Vec::with_capacity(prescription.items.len());
        let mut codes = Vec::with_capacity(prescription.items.len());
        for item in &prescription.items {
            let drug = catalogue
                .drug_position(&item.drug_code)
                .ok_or_else(|| PharmacyError::UnknownDrug(item.drug_code.clone()))?;
            if item.quantity == 0 {
                return Err(PharmacyError::ZeroQuantity(item.drug_code.clone()));
            }
            if wanted.iter().any(|w: &Wanted| w.drug == drug) {
                return Err(PharmacyError::DuplicateItem(item.drug_code.clone()));
            }
            let category = catalogue.drug_at(drug).category;
            wanted.push(Wanted { drug, quantity: item.quantity, category, bit: 1 << wanted.len() });
            codes.push(item.drug_code.as_str());
        }
        let rule = policy.rule(&patient.pooling_region, patient.insurance_type, VisitType::Pharmacy)?;
        rule.validate()?;
        patient.validate()?;
        let all = if wanted.len() == 64 { u64::MAX } else { (1u64 << wanted.len()) - 1 };
        let mut by_drug = wanted.clone();
        by_drug.sort_unstable_by_key(|w| w.drug);
        Ok(Query { catalogue, rule, patient, options, wanted, by_drug, codes, all, open_at })
    }

    fn delivering(&self) -> bool {
        self.options.fulfilment == Fulfilment::Delivery
    }

    fn search_radius_m(&self) -> u32 {
        self.options.max_distance_m
    }

    /// Measures one pharmacy and applies the filters: `(distance, delivery fee, delivery
    /// minutes)` when it passes.
    #[inline]
    fn filter(&self, pharmacy: u32) -> Option<(u32, Fen, Option<u32>)> {
        let distance_m = haversine_m(self.options.location, self.catalogue.location_at(pharmacy));
        if distance_m > self.options.max_distance_m {
            return None;
        }
        let site = self.catalogue.pharmacy_at(pharmacy);
        if let Some((weekday, minute)) = self.open_at {
            if !site.hours.is_open(weekday, minute) {
                return None;
            }
        }
        if !self.delivering() {
            return Some((distance_m, Fen::ZERO, None));
        }
        match &site.delivery {
            Some(terms) if distance_m <= terms.radius_m => {
                let travel = distance_m.div_ceil(COURIER_METRES_PER_MINUTE);
                Some((distance_m, terms.fee, Some(terms.dispatch_minutes.saturating_add(travel))))
            }
            _ => None,
        }
    }

    /// What one pharmacy fills of the prescription and what the patient would pay there
    /// (with `delivery_fee`), through the fast path of the settlement rules: `(fills, filled,
    /// net cost)`.
    #[inline]
    fn price(&self, pharmacy: u32, delivery_fee: Fen) -> Result<(u64, u32, Fen), PharmacyError> {
        // One pass over the pharmacy's stock (sorted by drug) and the wanted items (also sorted
        // by drug), overflow checked once at the end.
        let stock = self.catalogue.stock_of(pharmacy);
        let mut cursor = 0;
        let (mut fills, mut filled) = (0u64, 0u32);
        let (mut total, mut eligible) = (Some(0i64), Some(0i64));
        for want in &self.by_drug {
            while cursor < stock.len() && stock[cursor].drug < want.drug {
                cursor += 1;
            }
            let Some(line) = stock.get(cursor).filter(|l| l.drug == want.drug && l.available >= want.quantity) else {
                continue;
            };
            fills |= want.bit;
            filled += 1;
            match line.unit_price.0.checked_mul(i64::from(want.quantity)) {
                Some(amount) => {
                    total = total.and_then(|t| t.checked_add(amount));
                    let (_, _, part) = split_amount(self.rule, want.category, Fen(amount));
                    eligible = eligible.and_then(|e| e.checked_add(part.0));
                }
                None => total = None,
            }
        }
        let (Some(total), Some(eligible)) = (total, eligible) else {
            return Err(SettlementError::Overflow.into());
        };
        let net_cost = if filled == 0 {
            Fen::ZERO
        } else {
            let fund = fund_share(self.rule, self.patient.year_to_date, Fen(eligible)).fund;
            Fen(total).checked_sub(fund)?.checked_add(delivery_fee)?
        };
        Ok((fills, filled, net_cost))
    }

    /// Measures one pharmacy, applies the filters, and when it passes records what ordering
    /// needs (its net cost through the fast path of the settlement rules).
    fn consider(&self, pharmacy: u32, out: &mut Vec<Candidate>) -> Result<(), PharmacyError> {
        let Some((distance_m, delivery_fee, delivery_minutes)) = self.filter(pharmacy) else {
            return Ok(());
        };
        let (fills, filled, net_cost) = self.price(pharmacy, delivery_fee)?;
        out.push(Candidate { pharmacy, distance_m, delivery_minutes, delivery_fee, fills, filled, net_cost });
        Ok(())
    }

    fn id(&self, c: &Candidate) -> &str {
        &self.catalogue.pharmacy_at(c.pharmacy).id
    }

    /// The listing order (docs/pharmacy.md §3): complete first, then more items filled, net
    /// cost, delivery time (delivery only), distance, pharmacy id.
    fn order(&self, a: &Candidate, b: &Candidate) -> Ordering {
        (a.fills != self.all)
            .cmp(&(b.fills != self.all))
            .then(b.filled.cmp(&a.filled))
            .then(a.net_cost.cmp(&b.net_cost))
            .then(a.delivery_minutes.cmp(&b.delivery_minutes))
            .then(a.distance_m.cmp(&b.distance_m))
            .then_with(|| self.id(a).cmp(self.id(b)))
    }

    fn finish(&self, candidates: Vec<Candidate>) -> Result<Ranking, PharmacyError> {
        let count = |f: &dyn Fn(&Candidate) -> bool| candidates.iter().filter(|c| f(c)).count() as u32;
        let complete = count(&|c| c.fills == self.all);
        let no_stock = count(&|c| c.fills == 0);
        let partial = candidates.len() as u32 - complete - no_stock;
        let best_pair = if complete == 0 { self.best_pair(&candidates)? } else { None };

        let mut listed: Vec<Candidate> = candidates
            .iter()
            .filter(|c| c.fills == self.all || (self.options.include_partial && c.fills != 0))
            .copied()
            .collect();
        let limit = self.options.limit as usize;
        if listed.len() > limit {
            listed.select_nth_unstable_by(limit - 1, |a, b| self.order(a, b));
            listed.truncate(limit);
        }
        listed.sort_unstable_by(|a, b| self.order(a, b));
        let quotes = listed
            .iter()
            .map(|c| self.quote(c, c.fills, self.patient.year_to_date, Some(c.net_cost)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ranking { quotes, candidates: candidates.len() as u32, complete, partial, no_stock, best_pair })
    }

    /// The full quote of `candidate` for the items in `items` (a subset of what it fills),
    /// settled with `year_to_date`. `expected_net`, when given, is checked against the fast
    /// path's figure.
    fn quote(
        &self,
        candidate: &Candidate,
        items: u64,
        year_to_date: YearToDate,
        expected_net: Option<Fen>,
    ) -> Result<PharmacyQuote, PharmacyError> {
        let mut lines = Vec::new();
        let mut missing = Vec::new();
        for (i, want) in self.wanted.iter().enumerate() {
            if items & (1 << i) == 0 {
                missing.push(self.codes[i].to_string());
                continue;
            }
            let line = self
                .catalogue
                .stock_at(candidate.pharmacy, want.drug)
                .ok_or(PharmacyError::Invariant("a filled item is not in stock"))?;
            lines.push(SettlementItem {
                code: self.codes[i].to_string(),
                category: self.catalogue.drug_at(want.drug).category,
                unit_price: line.unit_price,
                quantity: want.quantity,
            });
        }
        let patient = PatientCoverage { year_to_date, ..self.patient.clone() };
        let settlement = settle_with_rule(self.rule, &patient, &lines)?;
        let net_cost = settlement.patient_pays().checked_add(candidate.delivery_fee)?;
        if expected_net.is_some_and(|expected| expected != net_cost) {
            return Err(PharmacyError::Invariant("the fast net cost differs from the full settlement"));
        }
        let site = self.catalogue.pharmacy_at(candidate.pharmacy);
        Ok(PharmacyQuote {
            pharmacy_id: site.id.clone(),
            pharmacy_name: site.name.clone(),
            location: site.location,
            stock: if candidate.fills == self.all {
                StockStatus::Complete
            } else if candidate.fills == 0 {
                StockStatus::None
            } else {
                StockStatus::Partial
            },
            missing,
            list_price: settlement.total,
            settlement,
            delivery_fee: candidate.delivery_fee,
            net_cost,
            distance_m: candidate.distance_m,
            delivery_minutes: candidate.delivery_minutes,
        })
    }

    /// Which items each pharmacy of a pair fills (docs/pharmacy.md §5): an item only one has
    /// goes to it; an item both have goes to the lower unit price, the first on a tie.
    fn assign(&self, first: &Candidate, second: &Candidate) -> (u64, u64) {
        let mut to_first = first.fills & !second.fills;
        let mut to_second = second.fills & !first.fills;
        let shared = first.fills & second.fills;
        for (i, want) in self.wanted.iter().enumerate() {
            if shared & (1 << i) == 0 {
                continue;
            }
            let price = |c: &Candidate| self.catalogue.stock_at(c.pharmacy, want.drug).map(|l| l.unit_price);
            if price(second) < price(first) {
                to_second |= 1 << i;
            } else {
                to_first |= 1 << i;
            }
        }
        (to_first, to_second)
    }

    /// Patient's share of `items` at `candidate` (fast path), and the year-to-date after.
    fn share(
        &self,
        candidate: &Candidate,
        items: u64,
        year_to_date: YearToDate,
    ) -> Result<(Fen, YearToDate), PharmacyError> {
        let mut total = Fen::ZERO;
        let mut eligible = Fen::ZERO;
        for (i, want) in self.wanted.iter().enumerate() {
            if items & (1 << i) == 0 {
                continue;
            }
            let price = self.catalogue.stock_at(candidate.pharmacy, want.drug).map_or(Fen::ZERO, |l| l.unit_price);
            let amount = price.checked_mul(i64::from(want.quantity))?;
            total = total.checked_add(amount)?;
            eligible =
                eligible.checked_add(split_amount(self.rule, self.catalogue.drug_at(want.drug).category, amount).2)?;
        }
        let share = fund_share(self.rule, year_to_date, eligible);
        let after = share.year_to_date_after(year_to_date)?;
        Ok((total.checked_sub(share.fund)?.checked_add(candidate.delivery_fee)?, after))
    }

    /// The cheapest pair among the [`PAIR_POOL`] nearest partial candidates (docs/pharmacy.md
    /// §5).
    fn best_pair(&self, candidates: &[Candidate]) -> Result<Option<PairQuote>, PharmacyError> {
        let mut pool: Vec<&Candidate> = candidates.iter().filter(|c| c.fills != 0 && c.fills != self.all).collect();
        pool.sort_unstable_by(|a, b| a.distance_m.cmp(&b.distance_m).then_with(|| self.id(a).cmp(self.id(b))));
        pool.truncate(PAIR_POOL);
        if pool.iter().fold(0u64, |acc, c| acc | c.fills) != self.all {
            return Ok(None);
        }
        // (net cost, slowest delivery, distance sum, first id, second id) — smaller is better.
        type Key<'k> = (Fen, Option<u32>, u64, &'k str, &'k str);
        let mut best: Option<(Key<'_>, &Candidate, &Candidate, [Fen; 2])> = None;
        for (i, a) in pool.iter().enumerate() {
            for b in &pool[i + 1..] {
                if a.fills | b.fills != self.all {
                    continue;
                }
                let (first, second) = if self.id(a) < self.id(b) { (*a, *b) } else { (*b, *a) };
                let (to_first, to_second) = self.assign(first, second);
                let (net_first, after) = self.share(first, to_first, self.patient.year_to_date)?;
                let (net_second, _) = self.share(second, to_second, after)?;
                let key: Key<'_> = (
                    net_first.checked_add(net_second)?,
                    first.delivery_minutes.max(second.delivery_minutes),
                    u64::from(first.distance_m) + u64::from(second.distance_m),
                    self.id(first),
                    self.id(second),
                );
                if best.as_ref().is_none_or(|(k, ..)| key < *k) {
                    best = Some((key, first, second, [net_first, net_second]));
                }
            }
        }
        let Some((_, first, second, [net_first, net_second])) = best else { return Ok(None) };
        let (to_first, to_second) = self.assign(first, second);
        let first_quote = self.quote(first, to_first, self.patient.year_to_date, Some(net_first))?;
        let after = first_quote.settlement.year_to_date_after(self.patient.year_to_date)?;
        let second_quote = self.quote(second, to_second, after, Some(net_second))?;
        Ok(Some(PairQuote {
            list_price: first_quote.list_price.checked_add(second_quote.list_price)?,
            net_cost: first_quote.net_cost.checked_add(second_quote.net_cost)?,
            first: first_quote,
            second: second_quote,
        }))
    }
}

#[cfg(test)]
mod baseline_tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::pharmacy::generate::{demo_city_centre, demo_prescription, generate, CatalogueSpec, CitySpec};
    use crate::wire::InsuranceType;

    fn retired() -> PatientCoverage {
        PatientCoverage {
            insurance_type: InsuranceType::EmployeeRetired,
            pooling_region: "419900".to_string(),
            year_to_date: YearToDate::default(),
            account_balance: Fen(20_000),
            use_account: true,
        }
    }

    /// rank = rank_box_scan = rank_scan, and the floor prices exactly the pharmacies the
    /// ranking counts, at the net costs its quotes carry.
    fn check_all_agree(catalogue: &Catalogue, options: &RankOptions) -> Ranking {
        let (policy, patient, rx) = (SettlementPolicy::demo(), retired(), demo_prescription());
        let indexed = rank(catalogue, &policy, &patient, &rx, options).unwrap();
        assert_eq!(rank_box_scan(catalogue, &policy, &patient, &rx, options).unwrap(), indexed, "{options:?}");
        assert_eq!(rank_scan(catalogue, &policy, &patient, &rx, options).unwrap(), indexed, "{options:?}");
        let candidates = ranking_candidates(catalogue, &policy, &patient, &rx, options).unwrap();
        assert_eq!(candidates.len(), indexed.candidates as usize);
        let priced = price_candidates(catalogue, &policy, &patient, &rx, options, &candidates).unwrap();
        let by_id: HashMap<&str, Fen> = candidates.ids(catalogue).into_iter().zip(priced).collect();
        assert_eq!(by_id.len(), candidates.len(), "each candidate once");
        for q in &indexed.quotes {
            assert_eq!(by_id.get(q.pharmacy_id.as_str()), Some(&q.net_cost), "{}", q.pharmacy_id);
        }
        indexed
    }

    #[test]
    fn box_scan_and_floor_agree_with_the_ranking_on_a_national_catalogue() {
        let catalogue = Catalogue::new(generate(&CatalogueSpec::national(2026, 20_000))).unwrap();
        let mut listed = 0;
        for (fulfilment, radius, open_at_ms, limit) in [
            (Fulfilment::Pickup, 4_000, None, 10),
            (Fulfilment::Pickup, 4_000, None, 200),
            (Fulfilment::Delivery, 8_000, Some(1_795_440_000_000), 200),
            (Fulfilment::Pickup, 100_000, Some(1_795_400_000_000), 50),
        ] {
            let options = RankOptions {
                fulfilment,
                max_distance_m: radius,
                open_at_ms,
                limit,
                ..RankOptions::near(demo_city_centre())
            };
            let ranking = check_all_agree(&catalogue, &options);
            assert!(ranking.complete > 0 && ranking.candidates > 10, "{options:?}: {ranking:?}");
            listed += ranking.quotes.len();
        }
        assert!(listed >= 200, "{listed}");
    }

    fn arb_centre() -> impl Strategy<Value = GeoPoint> {
        prop_oneof![
            3 => (20.0f64..45.0, 100.0f64..125.0).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
            1 => (-85.0f64..85.0, -180.0f64..180.0).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
            1 => (-60.0f64..60.0, prop_oneof![Just(179.99f64), Just(-179.99f64)]).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
            1 => (prop_oneof![Just(89.5f64), Just(-89.5f64)], -180.0f64..180.0).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn box_scan_and_floor_agree_with_the_ranking_anywhere(
            centre in arb_centre(),
            seed in any::<u64>(),
            spread_m in 300u32..20_000,
            radius in prop_oneof![1u32..2_000, 2_000u32..30_000, Just(MAX_SEARCH_RADIUS_M)],
            delivery in any::<bool>(),
            open_at in proptest::option::of(1_790_000_000_000i64..1_800_000_000_000),
            limit in 1u32..=MAX_LIMIT,
            partial in any::<bool>(),
            query_east_m in -5_000.0f64..5_000.0,
        ) {
            let city = CitySpec {
                name: "c".into(),
                region: "419900".into(),
                centre,
                spread_m,
                weight: 1,
            };
            let catalogue = Catalogue::new(generate(&CatalogueSpec { seed, pharmacies: 400, cities: vec![city] })).unwrap();
            let lon = centre.lon + query_east_m / (111_195.08 * centre.lat.to_radians().cos().max(0.01));
            let location = GeoPoint::new(centre.lat, lon.clamp(-180.0, 180.0));
            let options = RankOptions {
                location,
                fulfilment: if delivery { Fulfilment::Delivery } else { Fulfilment::Pickup },
                max_distance_m: radius,
                open_at_ms: open_at,
                limit,
                include_partial: partial,
            };
            let ranking = check_all_agree(&catalogue, &options);
            // Independently of the ranking code: how many pharmacies pass the filters.
            let local = open_at.and_then(china_local_time);
            let expected = catalogue.pharmacies().iter().filter(|p| {
                let d = haversine_m(location, p.location);
                d <= radius
                    && local.is_none_or(|(w, m)| p.hours.is_open(w, m))
                    && (!delivery || p.delivery.as_ref().is_some_and(|t| d <= t.radius_m))
            }).count() as u32;
            prop_assert_eq!(ranking.candidates, expected);
        }
    }
}
