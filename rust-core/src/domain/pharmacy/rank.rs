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
use super::geo::{haversine_m, search_box, GeoBox, GeoPoint, EARTH_RADIUS_M};
use super::PharmacyError;
use crate::domain::money::Fen;
use crate::domain::settlement::{
    fund_share, settle_with_rule, split_amount, ItemCategory, PatientCoverage, Settlement, SettlementError,
    SettlementItem, SettlementPolicy, SettlementRule, VisitType, YearToDate,
};
use crate::domain::{Field, InvalidInput};

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

    /// The options a patient's query asks for, with the defaults filled in: `max_distance_m`
    /// 5 km, `limit` 20, and "open now" as the platform's time `platform_now_ms` (never the
    /// phone's own clock). A query out of range is refused naming its field.
    pub fn from_query(query: &RankQuery, platform_now_ms: i64) -> Result<RankOptions, InvalidInput> {
        if !query.location.is_valid() {
            return Err(InvalidInput::new(Field::Location, "latitude is −90 to 90 and longitude −180 to 180"));
        }
        if query.max_distance_m.is_some_and(|m| m > MAX_SEARCH_RADIUS_M) {
            return Err(InvalidInput::new(Field::SearchRadius, "the search radius is at most 100 km"));
        }
        if query.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
            return Err(InvalidInput::new(Field::Limit, "a ranking lists 1 to 200 pharmacies"));
        }
        if query.open_now && china_local_time(platform_now_ms).is_none() {
            return Err(InvalidInput::new(Field::Location, "platform time has no local time to test opening hours"));
        }
        Ok(RankOptions {
            location: query.location,
            fulfilment: if query.delivery { Fulfilment::Delivery } else { Fulfilment::Pickup },
            max_distance_m: query.max_distance_m.unwrap_or(DEFAULT_MAX_DISTANCE_M),
            open_at_ms: query.open_now.then_some(platform_now_ms),
            limit: query.limit.unwrap_or(DEFAULT_LIMIT),
            include_partial: true,
        })
    }

    /// The one check of ranking options, on the phone and at the platform: a point on Earth,
    /// a radius of at most 100 km, 1 to 200 quotes, an "open at" time that has a local time.
    pub fn validate(&self) -> Result<(), PharmacyError> {
        if !self.location.is_valid() {
            return Err(PharmacyError::InvalidOptions("location out of range"));
        }
        if self.max_distance_m > MAX_SEARCH_RADIUS_M {
            return Err(PharmacyError::InvalidOptions("max_distance_m above 100000"));
        }
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(PharmacyError::InvalidOptions("limit must be 1 to 200"));
        }
        if let Some(ms) = self.open_at_ms {
            china_local_time(ms).ok_or(PharmacyError::InvalidOptions("open_at_ms out of range"))?;
        }
        Ok(())
    }
}

/// What a patient asks: "pharmacies for my prescription near here", before the defaults and
/// the platform's time are filled in ([`RankOptions::from_query`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RankQuery {
    /// The prescription; `None` ranks for the newest one.
    pub rx_id: Option<String>,
    /// Where the patient is (pickup) or the delivery address (delivery).
    pub location: GeoPoint,
    pub delivery: bool,
    /// Metres; `None` is 5 km.
    pub max_distance_m: Option<u32>,
    /// Only pharmacies open now, on platform time.
    pub open_now: bool,
    /// How many quotes; `None` is 20.
    pub limit: Option<u32>,
}

impl RankQuery {
    /// Pickup near `location` with every default.
    pub fn near(location: GeoPoint) -> RankQuery {
        RankQuery { rx_id: None, location, delivery: false, max_distance_m: None, open_now: false, limit: None }
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
    // Room for a city-centre search without regrowing many times.
    let mut candidates = Vec::with_capacity(256);
    let mut failure = None;
    catalogue.near(options.location, query.search_radius_m(), |pharmacy| {
        if failure.is_none() {
            if let Err(e) = query.consider(pharmacy, Measure::AsNeeded, &mut candidates) {
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
    query.consider(position, Measure::AsNeeded, &mut found)?;
    match found.first() {
        Some(c) => Ok(Some(query.quote(c, c.fills, patient.year_to_date, Some(c.net_cost))?)),
        None => Ok(None),
    }
}

/// Ranks by measuring every pharmacy with [`haversine_m`]: the reference [`rank`] must agree
/// with exactly (it shares the pricing and ordering, not the search or the distance shortcut).
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
        query.consider(pharmacy as u32, Measure::Haversine, &mut candidates)?;
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
            query.consider(pharmacy, Measure::AsNeeded, &mut candidates)?;
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
        if let Some((_, fee, _)) = query.filter(pharmacy, Measure::AsNeeded) {
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
    /// `None` when the pharmacy was accepted without measuring it ([`Distances::surely_within`]);
    /// [`Query::distance_of`] measures it when the order or a quote needs it.
    distance_m: Option<u32>,
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
    distances: Distances,
}

/// How [`Query::filter`] measures a pharmacy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    /// Always [`haversine_m`] (the reference scan).
    Haversine,
    /// The same whole metres and the same verdicts, but a pharmacy surely beyond the radius is
    /// refused and a pickup pharmacy surely inside it accepted without measuring; the
    /// distance of the latter is measured later only if needed.
    AsNeeded,
}

/// Distances from the query's location in whole metres, exactly as [`haversine_m`] gives them
/// (the same floating-point operations in the same order; the location's own terms computed
/// once), and tests without trigonometry for points surely within the radius or surely beyond
/// it, so that only points within a few metres of the circle need measuring to be filtered.
#[derive(Clone, Copy, Debug)]
struct Distances {
    from: GeoPoint,
    phi1: f64,
    cos_phi1: f64,
    /// The largest cos φ over the latitudes within the radius of `from`.
    cos_max: f64,
    /// `Δφ² + (cos_max · Δλ)²` (radians²) at most this: the point is surely within the radius.
    /// Negative when the radius is too small for the shortcut.
    sure_inside: f64,
    /// The smallest cos φ over the latitudes within the radius + 2 m of `from` (0 when they
    /// reach a pole).
    cos_min: f64,
    /// `Δφ² + (cos_min · Δλ)²` (radians²) above this: the point is surely beyond the radius.
    sure_beyond: f64,
}

impl Distances {
    fn new(from: GeoPoint, radius_m: u32) -> Distances {
        let phi1 = from.lat.to_radians();
        let band = (f64::from(radius_m) + 1.0) / EARTH_RADIUS_M * (1.0 + 1e-6) + 1e-9;
        let (lo, hi) = (phi1 - band, phi1 + band);
        let cos_max = if lo <= 0.0 && hi >= 0.0 { 1.0 } else { lo.abs().min(hi.abs()).cos() };
        // Surely within: a true distance of at most radius − 2 m, so the rounded haversine is
        // at most radius − 1 whatever its floating-point error (far below a millimetre here).
        let sure_inside = if radius_m > 2 {
            let inner = f64::from(radius_m - 2) / EARTH_RADIUS_M * (1.0 - 1e-9);
            inner * inner
        } else {
            -1.0
        };
        let outer = (f64::from(radius_m) + 2.0) / EARTH_RADIUS_M;
        let widest = phi1.abs() + outer * (1.0 + 1e-6) + 1e-9;
        let cos_min = if widest >= std::f64::consts::FRAC_PI_2 { 0.0 } else { widest.cos() * (1.0 - 1e-9) };
        let sure_beyond = outer * outer * (1.0 + 1e-9);
        Distances { from, phi1, cos_phi1: phi1.cos(), cos_max, sure_inside, cos_min, sure_beyond }
    }

    /// [`haversine_m`]`(from, to)`.
    #[inline]
    fn metres(&self, to: GeoPoint) -> u32 {
        let phi2 = to.lat.to_radians();
        let half_dphi = (phi2 - self.phi1) / 2.0;
        let half_dlambda = (to.lon - self.from.lon).to_radians() / 2.0;
        let h = half_dphi.sin().powi(2) + self.cos_phi1 * phi2.cos() * half_dlambda.sin().powi(2);
        let central = 2.0 * h.clamp(0.0, 1.0).sqrt().asin();
        (EARTH_RADIUS_M * central).round() as u32
    }

    /// Whether `to` is surely within the radius. On the sphere the great circle is no longer
    /// than the straight path in (φ, λ), whose length is at most
    /// `R·√(Δφ² + cos_max²·Δλ²)` while it stays in the latitudes `cos_max` covers — which it
    /// does whenever this test passes, as then `|Δφ|` is below the radius.
    #[inline]
    fn surely_within(&self, to: GeoPoint) -> bool {
        let dphi = (to.lat - self.from.lat).to_radians();
        let dlambda = (to.lon - self.from.lon).to_radians() * self.cos_max;
        dphi * dphi + dlambda * dlambda <= self.sure_inside
    }

    /// Whether `to` is surely farther than the radius. Were it within radius + 2 m, the great
    /// circle to it would stay in the latitudes `cos_min` covers, where its length is at least
    /// `R·√(Δφ² + cos_min²·Δλ²)` (its longitude change is |Δλ| when that is at most 180°).
    #[inline]
    fn surely_beyond(&self, to: GeoPoint) -> bool {
        let dlon = to.lon - self.from.lon;
        if dlon.abs() > 180.0 {
            return false;
        }
        let dphi = (to.lat - self.from.lat).to_radians();
        let dlambda = dlon.to_radians() * self.cos_min;
        dphi * dphi + dlambda * dlambda > self.sure_beyond
    }
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
        options.validate()?;
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
        let distances = Distances::new(options.location, options.max_distance_m);
        Ok(Query { catalogue, rule, patient, options, wanted, by_drug, codes, all, open_at, distances })
    }

    fn delivering(&self) -> bool {
        self.options.fulfilment == Fulfilment::Delivery
    }

    fn search_radius_m(&self) -> u32 {
        self.options.max_distance_m
    }

    /// Measures one pharmacy (`how`) and applies the filters: `(distance, delivery fee,
    /// delivery minutes)` when it passes; the distance is `None` when it was not needed.
    #[inline]
    fn filter(&self, pharmacy: u32, how: Measure) -> Option<(Option<u32>, Fen, Option<u32>)> {
        let at = self.catalogue.location_at(pharmacy);
        let distance_m = match how {
            Measure::Haversine => Some(haversine_m(self.options.location, at)),
            Measure::AsNeeded if self.distances.surely_beyond(at) => return None,
            Measure::AsNeeded if !self.delivering() && self.distances.surely_within(at) => None,
            Measure::AsNeeded => Some(self.distances.metres(at)),
        };
        if distance_m.is_some_and(|d| d > self.options.max_distance_m) {
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
        // Delivery always measures.
        let distance_m = distance_m.unwrap_or_else(|| self.distances.metres(at));
        match &site.delivery {
            Some(terms) if distance_m <= terms.radius_m => {
                let travel = distance_m.div_ceil(COURIER_METRES_PER_MINUTE);
                Some((Some(distance_m), terms.fee, Some(terms.dispatch_minutes.saturating_add(travel))))
            }
            _ => None,
        }
    }

    /// A candidate's distance in whole metres, measured now if it was not before.
    #[inline]
    fn distance_of(&self, c: &Candidate) -> u32 {
        c.distance_m.unwrap_or_else(|| self.distances.metres(self.catalogue.location_at(c.pharmacy)))
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
    fn consider(&self, pharmacy: u32, how: Measure, out: &mut Vec<Candidate>) -> Result<(), PharmacyError> {
        let Some((distance_m, delivery_fee, delivery_minutes)) = self.filter(pharmacy, how) else {
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
        self.order_key(a)
            .cmp(&self.order_key(b))
            .then_with(|| self.distance_of(a).cmp(&self.distance_of(b)))
            .then_with(|| self.id(a).cmp(self.id(b)))
    }

    /// The order's leading terms in one integer, smaller first: incomplete (1 bit), 64 − items
    /// filled (7 bits), net cost (64 bits, sign flipped so the unsigned order is the signed
    /// one), delivery minutes (33 bits: 0 for none, else minutes + 1).
    #[inline]
    fn order_key(&self, c: &Candidate) -> u128 {
        let incomplete = u128::from(c.fills != self.all);
        let fewer = u128::from(64 - c.filled.min(64));
        let net = u128::from((c.net_cost.0 as u64) ^ (1 << 63));
        let minutes = c.delivery_minutes.map_or(0, |m| u128::from(m) + 1);
        incomplete << 104 | fewer << 97 | net << 33 | minutes
    }

    fn finish(&self, candidates: Vec<Candidate>) -> Result<Ranking, PharmacyError> {
        // Fits: at most one candidate per pharmacy.
        let total = candidates.len() as u32;
        let (mut complete, mut no_stock) = (0u32, 0u32);
        for c in &candidates {
            complete += u32::from(c.fills == self.all);
            no_stock += u32::from(c.fills == 0);
        }
        let partial = total - complete - no_stock;
        let best_pair = if complete == 0 { self.best_pair(&candidates)? } else { None };

        // What is listed, kept in place.
        let mut listed = candidates;
        listed.retain(|c| c.fills == self.all || (self.options.include_partial && c.fills != 0));
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
        Ok(Ranking { quotes, candidates: total, complete, partial, no_stock, best_pair })
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
        // The patient as given, or (the second of a pair) with the year-to-date after the first.
        let after_first;
        let patient = if year_to_date == self.patient.year_to_date {
            self.patient
        } else {
            after_first = PatientCoverage { year_to_date, ..self.patient.clone() };
            &after_first
        };
        let settlement = settle_with_rule(self.rule, patient, &lines)?;
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
            distance_m: self.distance_of(candidate),
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
        // Measured, as the pool is chosen by distance.
        let partial: Vec<(u32, Candidate)> = candidates
            .iter()
            .filter(|c| c.fills != 0 && c.fills != self.all)
            .map(|c| (self.distance_of(c), *c))
            .collect();
        let mut pool: Vec<&(u32, Candidate)> = partial.iter().collect();
        pool.sort_unstable_by(|(da, a), (db, b)| da.cmp(db).then_with(|| self.id(a).cmp(self.id(b))));
        let mut pool: Vec<(u32, &Candidate)> = pool.into_iter().map(|(d, c)| (*d, c)).collect();
        pool.truncate(PAIR_POOL);
        if pool.iter().fold(0u64, |acc, (_, c)| acc | c.fills) != self.all {
            return Ok(None);
        }
        // (net cost, slowest delivery, distance sum, first id, second id) — smaller is better.
        type Key<'k> = (Fen, Option<u32>, u64, &'k str, &'k str);
        let mut best: Option<(Key<'_>, &Candidate, &Candidate, [Fen; 2])> = None;
        for (i, &(da, a)) in pool.iter().enumerate() {
            for &(db, b) in &pool[i + 1..] {
                if a.fills | b.fills != self.all {
                    continue;
                }
                let ((first, d_first), (second, d_second)) =
                    if self.id(a) < self.id(b) { ((a, da), (b, db)) } else { ((b, db), (a, da)) };
                let (to_first, to_second) = self.assign(first, second);
                let (net_first, after) = self.share(first, to_first, self.patient.year_to_date)?;
                let (net_second, _) = self.share(second, to_second, after)?;
                let key: Key<'_> = (
                    net_first.checked_add(net_second)?,
                    first.delivery_minutes.max(second.delivery_minutes),
                    u64::from(d_first) + u64::from(d_second),
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
    use crate::domain::person::InsuranceType;
    use crate::domain::pharmacy::generate::{demo_city_centre, demo_prescription, generate, CatalogueSpec, CitySpec};

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
        // The first `limit` quotes are the first of the longest listing, which is in the
        // documented order (checked here on the quotes' own fields).
        let longest = RankOptions { limit: MAX_LIMIT, ..options.clone() };
        let all = rank(catalogue, &policy, &patient, &rx, &longest).unwrap();
        let n = indexed.quotes.len();
        assert_eq!(indexed.quotes[..], all.quotes[..n], "{options:?}");
        let key = |q: &PharmacyQuote| {
            (
                q.stock != StockStatus::Complete,
                q.missing.len(),
                q.net_cost,
                q.delivery_minutes,
                q.distance_m,
                q.pharmacy_id.clone(),
            )
        };
        assert!(all.quotes.windows(2).all(|w| key(&w[0]) < key(&w[1])), "{options:?}");
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

    /// The point `metres` from `from` along `bearing` (radians) on the sphere.
    fn destination(from: GeoPoint, bearing: f64, metres: f64) -> GeoPoint {
        let delta = metres / EARTH_RADIUS_M;
        let (p1, l1) = (from.lat.to_radians(), from.lon.to_radians());
        let p2 = (p1.sin() * delta.cos() + p1.cos() * delta.sin() * bearing.cos()).asin();
        let l2 = l1 + (bearing.sin() * delta.sin() * p1.cos()).atan2(delta.cos() - p1.sin() * p2.sin());
        let mut lon = l2.to_degrees();
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        GeoPoint::new(p2.to_degrees().clamp(-90.0, 90.0), lon)
    }

    #[test]
    fn distances_are_the_haversine_metres_and_the_shortcuts_never_misjudge_a_point() {
        let mut state = 0x0123_4567_89AB_CDEFu64;
        let mut unit = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut shortcut, mut near_edge, mut refused, mut near_edge_out) = (0, 0, 0, 0);
        for i in 0..200_000 {
            let from = match i % 4 {
                0 => GeoPoint::new(20.0 + 25.0 * unit(), 100.0 + 25.0 * unit()),
                1 => GeoPoint::new(-89.9 + 179.8 * unit(), -180.0 + 360.0 * unit()),
                2 => GeoPoint::new(-60.0 + 120.0 * unit(), if unit() < 0.5 { 179.999 } else { -179.999 }),
                _ => GeoPoint::new(if unit() < 0.5 { 89.0 + unit() } else { -89.0 - unit() }, -180.0 + 360.0 * unit()),
            };
            let radius = [1, 3, 50, 4_000, 30_000, MAX_SEARCH_RADIUS_M][i % 6];
            let distances = Distances::new(from, radius);
            // Mostly near the edge of the circle, some anywhere inside or out to twice the radius.
            let metres =
                if unit() < 0.8 { f64::from(radius) + 12.0 * (unit() - 0.5) } else { 2.0 * f64::from(radius) * unit() };
            let to = destination(from, std::f64::consts::TAU * unit(), metres.max(0.0));
            let exact = haversine_m(from, to);
            assert_eq!(distances.metres(to), exact, "{from:?} {to:?}");
            if distances.surely_within(to) {
                shortcut += 1;
                assert!(exact < radius, "{from:?} {to:?}: {exact} m accepted for radius {radius}");
                near_edge += usize::from(exact + 4 >= radius);
            }
            if distances.surely_beyond(to) {
                refused += 1;
                assert!(exact > radius, "{from:?} {to:?}: {exact} m refused for radius {radius}");
                near_edge_out += usize::from(exact <= radius + 4);
            }
            assert!(!(distances.surely_within(to) && distances.surely_beyond(to)));
        }
        // The shortcuts do decide most points, right up to a few metres from the edge.
        assert!(shortcut > 25_000 && near_edge > 1_000, "{shortcut} {near_edge}");
        assert!(refused > 25_000 && near_edge_out > 1_000, "{refused} {near_edge_out}");
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
