//! The platform's side of prescription circulation: the demo city's pharmacy catalogue (a
//! deterministic 2,000 pharmacies), the settlement policy, each person's coverage (personal
//! account balance, year-to-date figures), prescriptions shared by hospitals, quotes ranked by
//! the patient's net cost (the core's pure ranking, with the coverage from the session), and
//! orders for pickup or delivery with their status. Ranking and the rules are
//! `carepass_core::domain::pharmacy` and `carepass_core::domain::settlement`.

use std::sync::Arc;

use axum::http::StatusCode;
use carepass_core::domain::pharmacy::generate::{demo_prescription, generate, CatalogueSpec};
use carepass_core::domain::pharmacy::order::{can_cancel, check_address, check_new_order, next_state, OrderRefusal};
use carepass_core::domain::pharmacy::rank::MAX_SEARCH_RADIUS_M;
use carepass_core::domain::pharmacy::{quote_at, rank, Catalogue, Fulfilment, RankOptions, Ranking};
use carepass_core::domain::settlement::{PatientCoverage, SettlementPolicy, YearToDate};
use carepass_core::wire::{
    InsuranceType, Order, OrderRequest, OrderState, PharmacyQuoteRequest, PlatformCode, PrescriptionRecord,
};
use carepass_core::Fen;

use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;

/// Pharmacies in the demo catalogue, and its seed.
pub const DEMO_PHARMACIES: u32 = 2_000;
pub const DEMO_CATALOGUE_SEED: u64 = 2026;
/// Prescriptions stay valid 90 days (chronic-disease long prescriptions).
const RX_VALID_MS: i64 = 90 * 24 * 3600 * 1000;

/// What the platform holds for prescriptions and pharmacies.
pub struct PharmacyNetwork {
    pub catalogue: Catalogue,
    pub policy: SettlementPolicy,
}

impl PharmacyNetwork {
    /// The demo city's catalogue and policy (deterministic: the same on every start).
    pub fn demo() -> Result<PharmacyNetwork, String> {
        let catalogue = Catalogue::new(generate(&CatalogueSpec::demo_city(DEMO_CATALOGUE_SEED, DEMO_PHARMACIES)))
            .map_err(|e| e.to_string())?;
        Ok(PharmacyNetwork { catalogue, policy: SettlementPolicy::demo() })
    }
}

/// The demo seed's coverage for a person: personal account balances by scheme.
fn demo_coverage(person: &carepass_core::wire::PersonRecord) -> PatientCoverage {
    let balance = match person.insurance_type {
        InsuranceType::EmployeeActive => Fen(185_640),
        InsuranceType::EmployeeRetired => Fen(321_000),
        InsuranceType::Resident => Fen::ZERO,
    };
    PatientCoverage {
        insurance_type: person.insurance_type,
        pooling_region: person.pooling_region.clone(),
        year_to_date: YearToDate::default(),
        account_balance: balance,
        use_account: true,
    }
}

impl Platform {
    /// Writes the demo prescriptions (once): the demo patient, his father and the chronic
    /// patient each have the demo 8-item chronic prescription.
    pub(crate) fn seed_prescriptions(&self) -> ApiResult<()> {
        let tree = self.tree("prescriptions")?;
        let now = self.now_ms();
        for (person_id, rx_id) in
            [("P1001", "rx_p1001_chronic"), ("P1002", "rx_p1002_chronic"), ("P4001", "rx_p4001_chronic")]
        {
            if tree.get(rx_id)?.is_some() {
                continue;
            }
            let record = PrescriptionRecord {
                rx_id: rx_id.into(),
                person_id: person_id.into(),
                hospital: "示例市第一人民医院 Demo City First People's Hospital".into(),
                doctor: "王医生 Dr Wang".into(),
                diagnosis: "高血压 2 型糖尿病 Hypertension, type 2 diabetes (门诊慢特病)".into(),
                prescription: demo_prescription(),
                issued_at_ms: now,
                valid_until_ms: now + RX_VALID_MS,
            };
            tree.insert(rx_id.as_bytes(), serde_json::to_vec(&record)?)?;
        }
        Ok(())
    }

    /// The caller's prescriptions, newest first.
    pub fn prescriptions(&self, person_id: &str) -> ApiResult<Vec<PrescriptionRecord>> {
        let mut out = Vec::new();
        for item in self.tree("prescriptions")?.iter() {
            let (_, v) = item?;
            let record: PrescriptionRecord = serde_json::from_slice(&v)?;
            if record.person_id == person_id {
                out.push(record);
            }
        }
        out.sort_by(|a, b| b.issued_at_ms.cmp(&a.issued_at_ms).then_with(|| a.rx_id.cmp(&b.rx_id)));
        Ok(out)
    }

    /// One of the caller's prescriptions, still valid (another person's answers as unknown).
    fn own_prescription(&self, person_id: &str, rx_id: &str) -> ApiResult<PrescriptionRecord> {
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such prescription");
        let record: PrescriptionRecord = match self.tree("prescriptions")?.get(rx_id)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => return Err(unknown()),
        };
        if record.person_id != person_id {
            return Err(unknown());
        }
        if record.valid_until_ms <= self.now_ms() {
            return Err(ApiError::new(StatusCode::GONE, PlatformCode::Expired, "the prescription has expired"));
        }
        Ok(record)
    }

    /// The caller's coverage (stored, or the demo seed's).
    pub fn coverage(&self, person_id: &str, use_account: bool) -> ApiResult<PatientCoverage> {
        let person = self
            .person(person_id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "person not found"))?;
        let mut coverage = match self.tree("coverage")?.get(person_id)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => demo_coverage(&person),
        };
        coverage.use_account = use_account;
        Ok(coverage)
    }

    /// Pharmacies ranked for the caller's prescription.
    pub fn pharmacy_quotes(&self, person_id: &str, request: &PharmacyQuoteRequest) -> ApiResult<Ranking> {
        let rx = self.own_prescription(person_id, &request.rx_id)?;
        let coverage = self.coverage(person_id, request.use_account)?;
        let network = self.pharmacies();
        rank(&network.catalogue, &network.policy, &coverage, &rx.prescription, &request.options).map_err(pharmacy_error)
    }

    /// Places an order on the pharmacy's current quote: the pharmacy must fill the whole
    /// prescription (and, for delivery, deliver to the address).
    pub fn place_order(self: &Arc<Self>, person_id: &str, request: &OrderRequest) -> ApiResult<Order> {
        let rx = self.own_prescription(person_id, &request.rx_id)?;
        let network = self.pharmacies();
        let pharmacy = network
            .catalogue
            .pharmacy(&request.pharmacy_id)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such pharmacy"))?;
        let location = match (request.fulfilment, &request.address) {
            (Fulfilment::Delivery, Some(address)) => {
                check_address(address).map_err(|e| ApiError::bad_request(e.to_string()))?;
                address.location
            }
            (Fulfilment::Delivery, None) => return Err(ApiError::bad_request("a delivery needs an address")),
            (Fulfilment::Pickup, _) => pharmacy.location,
        };
        let options = RankOptions {
            location,
            fulfilment: request.fulfilment,
            max_distance_m: MAX_SEARCH_RADIUS_M,
            open_at_ms: None,
            limit: 1,
            include_partial: true,
        };
        let coverage = self.coverage(person_id, request.use_account)?;
        let quote = quote_at(&network.catalogue, &network.policy, &coverage, &rx.prescription, &options, &pharmacy.id)
            .map_err(pharmacy_error)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    PlatformCode::Conflict,
                    "the pharmacy does not deliver to that address",
                )
            })?;
        // Checked and written under the lock: two orders racing for one prescription cannot
        // both pass the "filled once" rule.
        let _w = self.lock()?;
        let earlier: Vec<Order> = self.orders_of(person_id)?.into_iter().filter(|o| o.rx_id == rx.rx_id).collect();
        check_new_order(&quote, &earlier).map_err(|refusal| {
            let code = match refusal {
                OrderRefusal::IncompleteQuote { .. } => PlatformCode::IncompleteQuote,
                OrderRefusal::AlreadyOrdered { .. } => PlatformCode::AlreadyOrdered,
            };
            ApiError::new(StatusCode::CONFLICT, code, refusal.to_string())
        })?;
        let now = self.now_ms();
        let order = Order {
            order_id: format!("ord_{}", self.random_hex(8)?),
            rx_id: rx.rx_id,
            person_id: person_id.into(),
            pharmacy_id: pharmacy.id.clone(),
            pharmacy_name: pharmacy.name.clone(),
            fulfilment: request.fulfilment,
            address: if request.fulfilment == Fulfilment::Delivery { request.address.clone() } else { None },
            state: OrderState::Accepted,
            quote,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.save_order(&order)?;
        Ok(order)
    }

    /// A person's orders, newest first.
    pub fn orders_of(&self, person_id: &str) -> ApiResult<Vec<Order>> {
        let mut out = Vec::new();
        for item in self.tree("orders")?.iter() {
            let (_, v) = item?;
            let order: Order = serde_json::from_slice(&v)?;
            if order.person_id == person_id {
                out.push(order);
            }
        }
        out.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.order_id.cmp(&b.order_id)));
        Ok(out)
    }

    /// One of the caller's orders (another person's answers as unknown).
    pub fn order(&self, person_id: Option<&str>, order_id: &str) -> ApiResult<Order> {
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, PlatformCode::NotFound, "no such order");
        let order: Order = match self.tree("orders")?.get(order_id)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => return Err(unknown()),
        };
        if person_id.is_some_and(|p| p != order.person_id) {
            return Err(unknown());
        }
        Ok(order)
    }

    /// The patient cancels an order the pharmacy has not prepared yet.
    pub fn cancel_order(&self, person_id: &str, order_id: &str) -> ApiResult<Order> {
        let _w = self.lock()?;
        let mut order = self.order(Some(person_id), order_id)?;
        if !can_cancel(order.state) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                PlatformCode::Conflict,
                "the order can no longer be cancelled",
            ));
        }
        order.state = OrderState::Cancelled;
        order.updated_at_ms = self.now_ms();
        self.save_order(&order)?;
        Ok(order)
    }

    /// Pharmacy role: moves an order to its next state.
    pub fn advance_order(&self, order_id: &str) -> ApiResult<Order> {
        let _w = self.lock()?;
        let mut order = self.order(None, order_id)?;
        order.state = next_state(order.state, order.fulfilment)
            .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, PlatformCode::Conflict, "the order is finished"))?;
        order.updated_at_ms = self.now_ms();
        self.save_order(&order)?;
        Ok(order)
    }

    fn save_order(&self, order: &Order) -> ApiResult<()> {
        self.tree("orders")?.insert(order.order_id.as_bytes(), serde_json::to_vec(order)?)?;
        Ok(())
    }
}

fn pharmacy_error(e: carepass_core::domain::pharmacy::PharmacyError) -> ApiError {
    ApiError::bad_request(format!("{} ({})", e, e.kind()))
}
