//! Prescriptions, pharmacy ranking and orders across the FFI, plus the settlement rules for
//! tools and tests (`settle_json`). Converts types; the rules are `carepass_core::domain::pharmacy`
//! and `carepass_core::domain::settlement`.

use carepass_core::domain::pharmacy::{self as core_pharmacy, Fulfilment, GeoPoint, RankQuery, StockStatus};
use carepass_core::domain::settlement::{settle, SettlementPolicy, SettlementRequest};
use carepass_core::wire;
use carepass_core::CoreError;

use crate::account::CarePass;
use crate::error::{invalid, CarePassError, InputField};

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrescribedDrug {
    pub drug_code: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Prescription {
    pub rx_id: String,
    pub hospital: String,
    pub doctor: String,
    pub diagnosis: String,
    pub items: Vec<PrescribedDrug>,
    pub issued_at_ms: i64,
    pub valid_until_ms: i64,
}

/// What one pharmacy would charge for what it fills (amounts in fen).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PharmacyQuote {
    pub pharmacy_id: String,
    pub pharmacy_name: String,
    pub lat: f64,
    pub lon: f64,
    /// It fills every item.
    pub complete: bool,
    /// Drug codes it does not fill.
    pub missing: Vec<String>,
    pub list_cost_fen: i64,
    /// Paid by the pooled fund.
    pub fund_fen: i64,
    pub personal_account_fen: i64,
    pub cash_fen: i64,
    pub delivery_fee_fen: i64,
    /// What the patient pays: list cost − fund + delivery fee.
    pub net_cost_fen: i64,
    pub distance_m: u32,
    pub delivery_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PharmacyPair {
    pub first: PharmacyQuote,
    pub second: PharmacyQuote,
    pub net_cost_fen: i64,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PharmacyRanking {
    /// The prescription ranked for.
    pub rx_id: String,
    /// Best first.
    pub quotes: Vec<PharmacyQuote>,
    pub candidates: u32,
    pub complete: u32,
    pub partial: u32,
    pub no_stock: u32,
    /// The cheapest pair when no single pharmacy has everything.
    pub best_pair: Option<PharmacyPair>,
}

/// How to rank.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RankRequest {
    /// The prescription; null ranks for the newest one.
    #[uniffi(default = None)]
    pub rx_id: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// Home delivery to (lat, lon): only pharmacies that deliver there, fee included.
    #[uniffi(default = false)]
    pub delivery: bool,
    /// At most this far (metres; null: 5 km).
    #[uniffi(default = None)]
    pub max_distance_m: Option<u32>,
    /// Only pharmacies open now (platform time).
    #[uniffi(default = false)]
    pub open_now: bool,
    /// How many quotes (null: 20).
    #[uniffi(default = None)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeliveryDetails {
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub contact_phone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OrderStatus {
    Accepted,
    Ready,
    OutForDelivery,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PharmacyOrder {
    pub order_id: String,
    pub rx_id: String,
    pub pharmacy_id: String,
    pub pharmacy_name: String,
    pub delivery: Option<DeliveryDetails>,
    pub status: OrderStatus,
    /// The quote it was placed on.
    pub quote: PharmacyQuote,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

fn quote(q: core_pharmacy::PharmacyQuote) -> PharmacyQuote {
    PharmacyQuote {
        complete: q.stock == StockStatus::Complete,
        pharmacy_id: q.pharmacy_id,
        pharmacy_name: q.pharmacy_name,
        lat: q.location.lat,
        lon: q.location.lon,
        missing: q.missing,
        list_cost_fen: q.list_price.0,
        fund_fen: q.settlement.fund.0,
        personal_account_fen: q.settlement.personal_account.0,
        cash_fen: q.settlement.cash.0,
        delivery_fee_fen: q.delivery_fee.0,
        net_cost_fen: q.net_cost.0,
        distance_m: q.distance_m,
        delivery_minutes: q.delivery_minutes,
    }
}

fn order(o: wire::Order) -> PharmacyOrder {
    PharmacyOrder {
        order_id: o.order_id,
        rx_id: o.rx_id,
        pharmacy_id: o.pharmacy_id,
        pharmacy_name: o.pharmacy_name,
        delivery: o.address.map(|a| DeliveryDetails {
            address: a.text,
            lat: a.location.lat,
            lon: a.location.lon,
            contact_phone: a.contact_phone,
        }),
        status: match o.state {
            wire::OrderState::Accepted => OrderStatus::Accepted,
            wire::OrderState::Ready => OrderStatus::Ready,
            wire::OrderState::OutForDelivery => OrderStatus::OutForDelivery,
            wire::OrderState::Completed => OrderStatus::Completed,
            wire::OrderState::Cancelled => OrderStatus::Cancelled,
        },
        quote: quote(o.quote),
        created_at_ms: o.created_at_ms,
        updated_at_ms: o.updated_at_ms,
    }
}

fn prescription(rx: wire::PrescriptionRecord) -> Prescription {
    Prescription {
        rx_id: rx.rx_id,
        hospital: rx.hospital,
        doctor: rx.doctor,
        diagnosis: rx.diagnosis,
        items: rx
            .prescription
            .items
            .into_iter()
            .map(|i| PrescribedDrug { drug_code: i.drug_code, quantity: i.quantity })
            .collect(),
        issued_at_ms: rx.issued_at_ms,
        valid_until_ms: rx.valid_until_ms,
    }
}

impl From<&RankRequest> for RankQuery {
    fn from(r: &RankRequest) -> Self {
        RankQuery {
            rx_id: r.rx_id.clone(),
            location: GeoPoint::new(r.lat, r.lon),
            delivery: r.delivery,
            max_distance_m: r.max_distance_m,
            open_now: r.open_now,
            limit: r.limit,
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl CarePass {
    /// A subject's prescriptions (null: the signed-in person), newest first.
    #[uniffi::method(default(subject = None))]
    pub async fn prescriptions(&self, subject: Option<String>) -> Result<Vec<Prescription>, CarePassError> {
        Ok(self.core().prescriptions(subject.as_deref()).await?.into_iter().map(prescription).collect())
    }

    /// Nearby pharmacies ranked by what the patient pays after insurance.
    #[uniffi::method(default(subject = None))]
    pub async fn rank_pharmacies(
        &self,
        request: RankRequest,
        subject: Option<String>,
    ) -> Result<PharmacyRanking, CarePassError> {
        let (rx_id, ranking) = self.core().rank_pharmacies(&RankQuery::from(&request), subject.as_deref()).await?;
        Ok(PharmacyRanking {
            rx_id,
            quotes: ranking.quotes.into_iter().map(quote).collect(),
            candidates: ranking.candidates,
            complete: ranking.complete,
            partial: ranking.partial,
            no_stock: ranking.no_stock,
            best_pair: ranking.best_pair.map(|p| PharmacyPair {
                net_cost_fen: p.net_cost.0,
                first: quote(p.first),
                second: quote(p.second),
            }),
        })
    }

    /// Orders a prescription from a pharmacy: pickup when `delivery` is null.
    #[uniffi::method(default(subject = None))]
    pub async fn place_order(
        &self,
        rx_id: String,
        pharmacy_id: String,
        delivery: Option<DeliveryDetails>,
        subject: Option<String>,
    ) -> Result<PharmacyOrder, CarePassError> {
        let (fulfilment, address) = match delivery {
            Some(d) => (
                Fulfilment::Delivery,
                Some(wire::DeliveryAddress {
                    text: d.address,
                    location: GeoPoint::new(d.lat, d.lon),
                    contact_phone: d.contact_phone,
                }),
            ),
            None => (Fulfilment::Pickup, None),
        };
        Ok(order(self.core().place_order(&rx_id, &pharmacy_id, fulfilment, address, subject.as_deref()).await?))
    }

    /// A subject's orders, newest first.
    #[uniffi::method(default(subject = None))]
    pub async fn orders(&self, subject: Option<String>) -> Result<Vec<PharmacyOrder>, CarePassError> {
        Ok(self.core().orders(subject.as_deref()).await?.into_iter().map(order).collect())
    }

    /// An order's current state.
    #[uniffi::method(default(subject = None))]
    pub async fn order(&self, order_id: String, subject: Option<String>) -> Result<PharmacyOrder, CarePassError> {
        Ok(order(self.core().order(&order_id, subject.as_deref()).await?))
    }

    /// Cancels an order the pharmacy has not prepared yet.
    #[uniffi::method(default(subject = None))]
    pub async fn cancel_order(
        &self,
        order_id: String,
        subject: Option<String>,
    ) -> Result<PharmacyOrder, CarePassError> {
        Ok(order(self.core().cancel_order(&order_id, subject.as_deref()).await?))
    }
}

/// The settlement rules themselves, for tools and the shared vectors: settles `request_json`
/// (a `SettlementRequest`) under `policy_json` (a `SettlementPolicy`, validated first) and
/// returns the `Settlement` as JSON. Invalid data is `Refused` with the rule's error kind.
#[uniffi::export]
pub fn settle_json(policy_json: String, request_json: String) -> Result<String, CarePassError> {
    let policy: SettlementPolicy =
        serde_json::from_str(&policy_json).map_err(|e| invalid(InputField::Payload, format!("policy: {e}")))?;
    let request: SettlementRequest =
        serde_json::from_str(&request_json).map_err(|e| invalid(InputField::Payload, format!("request: {e}")))?;
    policy.validate().map_err(|e| CarePassError::from(CoreError::Settlement(e)))?;
    let settlement = settle(&policy, &request).map_err(|e| CarePassError::from(CoreError::Settlement(e)))?;
    serde_json::to_string(&settlement).map_err(|e| CarePassError::Internal { reason: e.to_string() })
}

/// The demo city's settlement policy as JSON (what the sandbox applies).
#[uniffi::export]
pub fn demo_settlement_policy_json() -> String {
    serde_json::to_string(&SettlementPolicy::demo()).unwrap_or_default()
}
