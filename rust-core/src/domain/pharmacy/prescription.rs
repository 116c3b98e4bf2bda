//! A prescription as the platform shares it with designated pharmacies (门慢处方共享): who
//! prescribed what, for whom, until when.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A chronic-disease prescription shared to designated pharmacies (门慢处方共享).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PrescriptionRecord {
    pub rx_id: String,
    pub person_id: String,
    pub hospital: String,
    pub doctor: String,
    pub diagnosis: String,
    pub prescription: super::Prescription,
    pub issued_at_ms: i64,
    pub valid_until_ms: i64,
}
