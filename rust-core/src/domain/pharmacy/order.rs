//! Order rules (pure): the order state machine, what a delivery order must carry, and when
//! an order may be placed at all (a complete quote; each prescription filled once).
//!
//! ```text
//! accepted ──► ready ─────────────► completed      (pickup)
//!    │     └─► out_for_delivery ──► completed      (delivery)
//!    └──► cancelled
//! ```

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::domain::account::check_phone;
use crate::domain::pharmacy::{Fulfilment, GeoPoint, PharmacyQuote, StockStatus};
use crate::domain::{Field, InvalidInput};

/// Where to deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeliveryAddress {
    /// The address as written, 4 to 200 characters.
    pub text: String,
    pub location: GeoPoint,
    /// Contact phone for the courier.
    pub contact_phone: String,
}

/// Order states: accepted → ready (pickup) or out_for_delivery (delivery) → completed;
/// accepted → cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Accepted,
    Ready,
    OutForDelivery,
    Completed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Order {
    pub order_id: String,
    pub rx_id: String,
    pub person_id: String,
    pub pharmacy_id: String,
    pub pharmacy_name: String,
    pub fulfilment: Fulfilment,
    pub address: Option<DeliveryAddress>,
    pub state: OrderState,
    /// The quote the order was placed on (amounts in fen).
    pub quote: PharmacyQuote,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The state a pharmacy moves an order to next, if any.
pub fn next_state(state: OrderState, fulfilment: Fulfilment) -> Option<OrderState> {
    match (state, fulfilment) {
        (OrderState::Accepted, Fulfilment::Pickup) => Some(OrderState::Ready),
        (OrderState::Accepted, Fulfilment::Delivery) => Some(OrderState::OutForDelivery),
        (OrderState::Ready | OrderState::OutForDelivery, _) => Some(OrderState::Completed),
        (OrderState::Completed | OrderState::Cancelled, _) => None,
    }
}

/// Whether the patient may still cancel.
pub fn can_cancel(state: OrderState) -> bool {
    state == OrderState::Accepted
}

/// Why an order cannot be placed on a quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefusal {
    #[error("the pharmacy cannot fill the whole prescription (missing {})", .missing.join(", "))]
    IncompleteQuote { missing: Vec<String> },
    #[error("the prescription is already ordered ({order_id}); cancel that order first")]
    AlreadyOrdered { order_id: String },
}

/// Whether an order counts against its prescription: every order that was not cancelled (a
/// completed order filled it).
pub fn holds_prescription(state: OrderState) -> bool {
    state != OrderState::Cancelled
}

/// The rules for a new order on `quote`, given the orders already placed for the same
/// prescription: the pharmacy fills the whole prescription, and a prescription is filled
/// once — a second order is refused while an earlier one is live or completed.
pub fn check_new_order(quote: &PharmacyQuote, orders_for_rx: &[Order]) -> Result<(), OrderRefusal> {
    if quote.stock != StockStatus::Complete {
        return Err(OrderRefusal::IncompleteQuote { missing: quote.missing.clone() });
    }
    if let Some(order) = orders_for_rx.iter().find(|o| holds_prescription(o.state)) {
        return Err(OrderRefusal::AlreadyOrdered { order_id: order.order_id.clone() });
    }
    Ok(())
}

/// Checks a delivery address: text 4–200 characters, a valid point, an 11-digit mainland
/// mobile number.
pub fn check_address(address: &DeliveryAddress) -> Result<(), InvalidInput> {
    let chars = address.text.trim().chars().count();
    if !(4..=200).contains(&chars) {
        return Err(InvalidInput::new(Field::DeliveryAddress, "the delivery address is 4 to 200 characters"));
    }
    if !address.location.is_valid() {
        return Err(InvalidInput::new(Field::Location, "the delivery location is not a point on Earth"));
    }
    check_phone(&address.contact_phone)
        .map_err(|_| InvalidInput::new(Field::ContactPhone, "the contact phone is 11 digits starting with 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_move_forward_by_fulfilment_and_stop() {
        assert_eq!(next_state(OrderState::Accepted, Fulfilment::Pickup), Some(OrderState::Ready));
        assert_eq!(next_state(OrderState::Accepted, Fulfilment::Delivery), Some(OrderState::OutForDelivery));
        assert_eq!(next_state(OrderState::OutForDelivery, Fulfilment::Delivery), Some(OrderState::Completed));
        assert_eq!(next_state(OrderState::Completed, Fulfilment::Pickup), None);
        assert_eq!(next_state(OrderState::Cancelled, Fulfilment::Delivery), None);
        assert!(can_cancel(OrderState::Accepted) && !can_cancel(OrderState::Ready));
    }

    #[test]
    fn delivery_addresses_are_checked() {
        let ok = DeliveryAddress {
            text: "东湖路 18 号 3 栋 502".into(),
            location: GeoPoint::new(30.6, 114.3),
            contact_phone: "13800000001".into(),
        };
        assert_eq!(check_address(&ok), Ok(()));
        assert!(check_address(&DeliveryAddress { text: "x".into(), ..ok.clone() }).is_err());
        assert!(check_address(&DeliveryAddress { contact_phone: "110".into(), ..ok.clone() }).is_err());
        assert!(check_address(&DeliveryAddress { location: GeoPoint::new(95.0, 0.0), ..ok }).is_err());
    }
}
