//! The pharmacy catalogue: designated pharmacies (定点药店) with location, opening hours,
//! delivery terms and stock, the drug list they sell from, and the R-tree over their
//! locations. [`Catalogue::new`] validates everything once, so ranking never meets malformed
//! data. Ranking lives in `rank`, catalogue generation in `generate`.

use std::collections::HashMap;
use std::fmt;

use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};

use super::geo::{search_box, GeoPoint};
use super::PharmacyError;
use crate::domain::money::Fen;
use crate::domain::settlement::ItemCategory;

/// Minutes in a day.
pub const DAY_MINUTES: u16 = 1_440;

/// A drug of the list pharmacies sell from; its insurance class is the same everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Drug {
    /// Drug code (the generator uses ATC codes; the platform would use the national
    /// insurance drug code).
    pub code: String,
    pub name: String,
    pub category: ItemCategory,
    /// Typical price per pack, for display and for the generator.
    pub reference_price: Fen,
}

/// What a pharmacy has of one drug.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockLine {
    pub drug_code: String,
    /// Price per pack.
    pub unit_price: Fen,
    /// Packs on hand; 0 is out of stock.
    pub available: u32,
}

/// Home delivery offered by a pharmacy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryTerms {
    /// Delivers to addresses within this distance of the pharmacy.
    pub radius_m: u32,
    /// Flat fee per order.
    pub fee: Fen,
    /// Minutes from order to the courier leaving.
    pub dispatch_minutes: u32,
}

/// One opening period, in China Standard Time (UTC+8). `closes_min` < `opens_min` is an
/// overnight period ending on the next day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpeningSlot {
    /// ISO weekday the period starts on: 1 Monday … 7 Sunday.
    pub weekday: u8,
    /// Minutes after midnight, 0–1439.
    pub opens_min: u16,
    /// Minutes after midnight, 1–1440 (1440 is midnight at the end of the day); not equal to
    /// `opens_min`.
    pub closes_min: u16,
}

/// When a pharmacy is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpeningHours {
    /// Open around the clock (24 小时药店).
    Always,
    /// Open during these periods each week.
    Weekly { slots: Vec<OpeningSlot> },
}

/// A designated pharmacy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pharmacy {
    /// Unique in the catalogue; the last tie-break of every ordering.
    pub id: String,
    pub name: String,
    /// Six-digit code of the pooling region the pharmacy is in.
    pub region: String,
    pub location: GeoPoint,
    pub hours: OpeningHours,
    #[serde(default)]
    pub delivery: Option<DeliveryTerms>,
    pub stock: Vec<StockLine>,
}

/// A catalogue as it travels or is stored: the drug list and the pharmacies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogueData {
    pub drugs: Vec<Drug>,
    pub pharmacies: Vec<Pharmacy>,
}

/// The most opening periods one pharmacy may list.
pub const MAX_SLOTS: usize = 64;

impl OpeningSlot {
    fn is_valid(&self) -> bool {
        (1..=7).contains(&self.weekday)
            && self.opens_min < DAY_MINUTES
            && (1..=DAY_MINUTES).contains(&self.closes_min)
            && self.opens_min != self.closes_min
    }

    fn covers(&self, weekday: u8, minute: u16) -> bool {
        if self.opens_min < self.closes_min {
            self.weekday == weekday && (self.opens_min..self.closes_min).contains(&minute)
        } else {
            let next_day = self.weekday % 7 + 1;
            (self.weekday == weekday && minute >= self.opens_min) || (next_day == weekday && minute < self.closes_min)
        }
    }
}

impl OpeningHours {
    /// Whether open at this local (UTC+8) weekday (1 Monday … 7 Sunday) and minute of the day.
    pub fn is_open(&self, weekday: u8, minute: u16) -> bool {
        match self {
            OpeningHours::Always => true,
            OpeningHours::Weekly { slots } => slots.iter().any(|s| s.covers(weekday, minute)),
        }
    }
}

/// One stock line, interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StockEntry {
    pub drug: u32,
    pub unit_price: Fen,
    pub available: u32,
}

/// A validated catalogue with its spatial index. Pharmacies are addressed internally by
/// their position in [`Catalogue::pharmacies`].
pub struct Catalogue {
    drugs: Vec<Drug>,
    drug_index: HashMap<String, u32>,
    pharmacies: Vec<Pharmacy>,
    /// Locations apart, so a full scan reads 16 bytes per pharmacy.
    locations: Vec<GeoPoint>,
    /// Every pharmacy's stock, sorted by drug within each pharmacy; pharmacy `i` owns
    /// `stock[stock_start[i]..stock_start[i + 1]]`.
    stock: Vec<StockEntry>,
    stock_start: Vec<u32>,
    tree: RTree<GeomWithData<[f64; 2], u32>>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue")
            .field("drugs", &self.drugs.len())
            .field("pharmacies", &self.pharmacies.len())
            .field("stock_lines", &self.stock.len())
            .finish()
    }
}

fn valid_region(region: &str) -> bool {
    region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit())
}

fn valid_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 64
}

impl Catalogue {
    /// Validates the data and builds the index: unique non-empty ids and drug codes, valid
    /// coordinates and region codes, well-formed opening hours, non-negative prices and fees,
    /// stock only of listed drugs and at most one line per drug.
    pub fn new(data: CatalogueData) -> Result<Catalogue, PharmacyError> {
        let CatalogueData { drugs, pharmacies } = data;
        if u32::try_from(drugs.len()).is_err() || u32::try_from(pharmacies.len()).is_err() {
            return Err(PharmacyError::CatalogueTooLarge);
        }
        let mut drug_index = HashMap::with_capacity(drugs.len());
        for (i, drug) in drugs.iter().enumerate() {
            if !valid_code(&drug.code) || drug.reference_price.0 < 0 {
                return Err(PharmacyError::InvalidDrug(drug.code.clone()));
            }
            // In range: checked above.
            if drug_index.insert(drug.code.clone(), i as u32).is_some() {
                return Err(PharmacyError::DuplicateDrug(drug.code.clone()));
            }
        }
        let mut ids = std::collections::HashSet::with_capacity(pharmacies.len());
        let mut locations = Vec::with_capacity(pharmacies.len());
        let mut stock = Vec::new();
        let mut stock_start = Vec::with_capacity(pharmacies.len() + 1);
        stock_start.push(0u32);
        for pharmacy in &pharmacies {
            let invalid = |reason: &'static str| PharmacyError::InvalidPharmacy { id: pharmacy.id.clone(), reason };
            if !valid_code(&pharmacy.id) {
                return Err(invalid("id must be 1 to 64 bytes"));
            }
            if !ids.insert(pharmacy.id.as_str()) {
                return Err(PharmacyError::DuplicatePharmacy(pharmacy.id.clone()));
            }
            if !valid_region(&pharmacy.region) {
                return Err(invalid("region must be six digits"));
            }
            if !pharmacy.location.is_valid() {
                return Err(invalid("location out of range"));
            }
            if let OpeningHours::Weekly { slots } = &pharmacy.hours {
                if slots.len() > MAX_SLOTS || !slots.iter().all(OpeningSlot::is_valid) {
                    return Err(invalid("opening hours malformed"));
                }
            }
            if let Some(delivery) = &pharmacy.delivery {
                if delivery.fee.0 < 0 {
                    return Err(invalid("delivery fee negative"));
                }
            }
            let first = stock.len();
            for line in &pharmacy.stock {
                let Some(&drug) = drug_index.get(&line.drug_code) else {
                    return Err(PharmacyError::UnknownStockDrug {
                        pharmacy: pharmacy.id.clone(),
                        drug: line.drug_code.clone(),
                    });
                };
                if line.unit_price.0 < 0 {
                    return Err(invalid("negative unit price"));
                }
                stock.push(StockEntry { drug, unit_price: line.unit_price, available: line.available });
            }
            let own = &mut stock[first..];
            own.sort_unstable_by_key(|e| e.drug);
            if own.windows(2).any(|w| w[0].drug == w[1].drug) {
                return Err(invalid("two stock lines for one drug"));
            }
            stock_start.push(u32::try_from(stock.len()).map_err(|_| PharmacyError::CatalogueTooLarge)?);
            locations.push(pharmacy.location);
        }
        let points = locations.iter().enumerate().map(|(i, p)| GeomWithData::new([p.lon, p.lat], i as u32)).collect();
        let tree = RTree::bulk_load(points);
        Ok(Catalogue { drugs, drug_index, pharmacies, locations, stock, stock_start, tree })
    }

    pub fn drugs(&self) -> &[Drug] {
        &self.drugs
    }

    pub fn pharmacies(&self) -> &[Pharmacy] {
        &self.pharmacies
    }

    pub fn len(&self) -> usize {
        self.pharmacies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pharmacies.is_empty()
    }

    pub fn drug(&self, code: &str) -> Option<&Drug> {
        self.drug_index.get(code).map(|&i| &self.drugs[i as usize])
    }

    pub fn pharmacy(&self, id: &str) -> Option<&Pharmacy> {
        self.position_of(id).map(|i| &self.pharmacies[i as usize])
    }

    /// A pharmacy's position (its internal address).
    pub(crate) fn position_of(&self, id: &str) -> Option<u32> {
        self.pharmacies.iter().position(|p| p.id == id).map(|i| i as u32)
    }

    /// The data back, e.g. to store it.
    pub fn to_data(&self) -> CatalogueData {
        CatalogueData { drugs: self.drugs.clone(), pharmacies: self.pharmacies.clone() }
    }

    pub(crate) fn drug_position(&self, code: &str) -> Option<u32> {
        self.drug_index.get(code).copied()
    }

    #[inline]
    pub(crate) fn drug_at(&self, drug: u32) -> &Drug {
        &self.drugs[drug as usize]
    }

    #[inline]
    pub(crate) fn pharmacy_at(&self, pharmacy: u32) -> &Pharmacy {
        &self.pharmacies[pharmacy as usize]
    }

    #[inline]
    pub(crate) fn location_at(&self, pharmacy: u32) -> GeoPoint {
        self.locations[pharmacy as usize]
    }

    /// A pharmacy's stock lines, sorted by drug position.
    #[inline]
    pub(crate) fn stock_of(&self, pharmacy: u32) -> &[StockEntry] {
        let p = pharmacy as usize;
        &self.stock[self.stock_start[p] as usize..self.stock_start[p + 1] as usize]
    }

    /// The stock line of `drug` at `pharmacy`, if it lists one.
    pub(crate) fn stock_at(&self, pharmacy: u32, drug: u32) -> Option<StockEntry> {
        let own = self.stock_of(pharmacy);
        own.binary_search_by_key(&drug, |e| e.drug).ok().map(|i| own[i])
    }

    /// Calls `visit` with every pharmacy the index finds in the box around a circle: a
    /// superset of those within `radius_m` (the caller measures the exact distance).
    pub(crate) fn near(&self, centre: GeoPoint, radius_m: u32, mut visit: impl FnMut(u32)) {
        let b = search_box(centre, radius_m);
        for point in self.tree.locate_in_envelope(&AABB::from_corners(b.min, b.max)) {
            visit(point.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(weekday: u8, opens_min: u16, closes_min: u16) -> OpeningSlot {
        OpeningSlot { weekday, opens_min, closes_min }
    }

    #[test]
    fn overnight_period_covers_the_early_hours_of_the_next_day() {
        // Sunday 20:00 to Monday 08:00.
        let hours = OpeningHours::Weekly { slots: vec![slot(7, 20 * 60, 8 * 60)] };
        assert!(hours.is_open(7, 20 * 60));
        assert!(hours.is_open(7, 23 * 60 + 59));
        assert!(hours.is_open(1, 0));
        assert!(hours.is_open(1, 8 * 60 - 1));
        assert!(!hours.is_open(1, 8 * 60));
        assert!(!hours.is_open(7, 19 * 60 + 59));
        assert!(!hours.is_open(2, 60));
    }

    #[test]
    fn day_period_is_closed_at_its_closing_minute() {
        let hours = OpeningHours::Weekly { slots: vec![slot(3, 8 * 60, DAY_MINUTES)] };
        assert!(hours.is_open(3, 8 * 60));
        assert!(hours.is_open(3, DAY_MINUTES - 1));
        assert!(!hours.is_open(4, 0));
        assert!(!hours.is_open(3, 8 * 60 - 1));
        assert!(OpeningHours::Always.is_open(5, 3 * 60));
    }

    fn pharmacy(id: &str) -> Pharmacy {
        Pharmacy {
            id: id.to_string(),
            name: "P".into(),
            region: "419900".into(),
            location: GeoPoint::new(30.6, 114.3),
            hours: OpeningHours::Always,
            delivery: None,
            stock: vec![StockLine { drug_code: "D1".into(), unit_price: Fen(100), available: 1 }],
        }
    }

    fn data(pharmacies: Vec<Pharmacy>) -> CatalogueData {
        let drug = Drug { code: "D1".into(), name: "d".into(), category: ItemCategory::A, reference_price: Fen(100) };
        CatalogueData { drugs: vec![drug], pharmacies }
    }

    #[test]
    fn malformed_catalogue_data_is_refused_with_a_typed_error() {
        let kind = |p: Vec<Pharmacy>| Catalogue::new(data(p)).unwrap_err().kind();
        assert_eq!(kind(vec![pharmacy("A"), pharmacy("A")]), "duplicate_pharmacy");
        let mut p = pharmacy("A");
        p.stock[0].drug_code = "NOPE".into();
        assert_eq!(kind(vec![p]), "unknown_stock_drug");
        let mut p = pharmacy("A");
        p.stock[0].unit_price = Fen(-5);
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut p = pharmacy("A");
        p.stock.push(p.stock[0].clone());
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut p = pharmacy("A");
        p.location = GeoPoint::new(f64::NAN, 0.0);
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut p = pharmacy("A");
        p.hours = OpeningHours::Weekly { slots: vec![slot(8, 0, 60)] };
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut p = pharmacy("A");
        p.hours = OpeningHours::Weekly { slots: vec![slot(1, 60, 60)] };
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut p = pharmacy("A");
        p.region = "4199".into();
        assert_eq!(kind(vec![p]), "invalid_pharmacy");
        let mut bad = data(vec![pharmacy("A")]);
        bad.drugs.push(bad.drugs[0].clone());
        assert_eq!(Catalogue::new(bad).unwrap_err().kind(), "duplicate_drug");
    }

    #[test]
    fn catalogue_round_trips_through_json() {
        let mut p = pharmacy("A");
        p.hours = OpeningHours::Weekly { slots: vec![slot(1, 480, 1320)] };
        p.delivery = Some(DeliveryTerms { radius_m: 3_000, fee: Fen(500), dispatch_minutes: 20 });
        let original = data(vec![p]);
        let json = serde_json::to_string(&original).unwrap();
        let back: CatalogueData = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
        assert_eq!(Catalogue::new(back).unwrap().to_data(), original);
    }
}
