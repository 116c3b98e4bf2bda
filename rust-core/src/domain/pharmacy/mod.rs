//! Nearby pharmacy ranking (门慢处方共享, 送药到家): which designated pharmacies can fill a
//! prescription and what the patient pays at each after insurance. `docs/pharmacy.md` is
//! normative.
//!
//! - `geo`: points, haversine distance in whole metres, the search box;
//! - `catalogue`: pharmacies, drug list, stock, opening hours, delivery terms, the R-tree;
//! - `rank`: filters, net cost through `crate::domain::settlement`, ordering, partial fills, best pair;
//!   [`rank`] (indexed) and [`rank_scan`] (full scan, the reference);
//! - `generate`: deterministic catalogues of any size from a seed.
//!
//! - `order`: the order state machine and delivery address checks.
//!
//! Pure: no I/O, no clock.

pub mod catalogue;
pub mod generate;
pub mod geo;
pub mod order;
pub mod prescription;
pub mod rank;

#[cfg(test)]
mod tests;

pub use catalogue::{Catalogue, CatalogueData, DeliveryTerms, Drug, OpeningHours, OpeningSlot, Pharmacy, StockLine};
pub use geo::{haversine_m, GeoPoint};
pub use rank::{
    china_local_time, quote_at, rank, rank_scan, Fulfilment, PairQuote, PharmacyQuote, Prescription, PrescriptionItem,
    QuoteRequest, RankOptions, RankQuery, Ranking, StockStatus,
};

use crate::domain::money::MoneyError;
use crate::domain::settlement::SettlementError;

/// Why a catalogue or a ranking request was refused. [`PharmacyError::kind`] is the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PharmacyError {
    #[error("catalogue too large")]
    CatalogueTooLarge,
    #[error("invalid drug {0:?}: code must be 1 to 64 bytes and the price not negative")]
    InvalidDrug(String),
    #[error("drug {0:?} is listed twice")]
    DuplicateDrug(String),
    #[error("pharmacy {0:?} is listed twice")]
    DuplicatePharmacy(String),
    #[error("pharmacy {id:?}: {reason}")]
    InvalidPharmacy { id: String, reason: &'static str },
    #[error("pharmacy {pharmacy:?} stocks {drug:?}, which is not on the drug list")]
    UnknownStockDrug { pharmacy: String, drug: String },
    #[error("the prescription has no items")]
    EmptyPrescription,
    #[error("the prescription has more than {} items", rank::MAX_PRESCRIPTION_ITEMS)]
    TooManyItems,
    #[error("the prescription lists {0:?} twice")]
    DuplicateItem(String),
    #[error("the prescription asks for zero of {0:?}")]
    ZeroQuantity(String),
    #[error("the prescription names {0:?}, which is not on the drug list")]
    UnknownDrug(String),
    #[error("invalid ranking options: {0}")]
    InvalidOptions(&'static str),
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    #[error("ranking invariant violated: {0}")]
    Invariant(&'static str),
}

impl PharmacyError {
    /// Stable machine-readable code (a settlement error gives its own).
    pub fn kind(&self) -> &'static str {
        match self {
            PharmacyError::CatalogueTooLarge => "catalogue_too_large",
            PharmacyError::InvalidDrug(_) => "invalid_drug",
            PharmacyError::DuplicateDrug(_) => "duplicate_drug",
            PharmacyError::DuplicatePharmacy(_) => "duplicate_pharmacy",
            PharmacyError::InvalidPharmacy { .. } => "invalid_pharmacy",
            PharmacyError::UnknownStockDrug { .. } => "unknown_stock_drug",
            PharmacyError::EmptyPrescription => "empty_prescription",
            PharmacyError::TooManyItems => "too_many_items",
            PharmacyError::DuplicateItem(_) => "duplicate_item",
            PharmacyError::ZeroQuantity(_) => "zero_quantity",
            PharmacyError::UnknownDrug(_) => "unknown_drug",
            PharmacyError::InvalidOptions(_) => "invalid_options",
            PharmacyError::Settlement(e) => e.kind(),
            PharmacyError::Invariant(_) => "invariant",
        }
    }
}

impl From<MoneyError> for PharmacyError {
    fn from(e: MoneyError) -> Self {
        PharmacyError::Settlement(e.into())
    }
}
