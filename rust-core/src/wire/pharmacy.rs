//! Prescriptions, pharmacy quotes and orders on the wire (`docs/pharmacy.md` §10).

use serde::{Deserialize, Serialize};

pub use crate::domain::pharmacy::order::{DeliveryAddress, Order, OrderState};
pub use crate::domain::pharmacy::prescription::PrescriptionRecord;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// "Rank the pharmacies for my prescription": the platform adds the patient's coverage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PharmacyQuoteRequest {
    pub rx_id: String,
    pub options: crate::domain::pharmacy::RankOptions,
    /// Pay what the personal account can (default true).
    #[serde(default = "yes")]
    pub use_account: bool,
}

fn yes() -> bool {
    true
}

/// Place an order for a prescription at one pharmacy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OrderRequest {
    pub rx_id: String,
    pub pharmacy_id: String,
    pub fulfilment: crate::domain::pharmacy::Fulfilment,
    /// Required for delivery.
    #[serde(default)]
    pub address: Option<DeliveryAddress>,
    #[serde(default = "yes")]
    pub use_account: bool,
}
