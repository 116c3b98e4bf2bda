//! The prescription and pharmacy flows of [`CarePass`]: list the patient's prescriptions, ask
//! the platform for pharmacies ranked by net cost (it adds the patient's coverage), place,
//! follow and cancel orders. The ranking rules are `crate::domain::pharmacy` (the platform runs them
//! on its catalogue).

use reqwest::Method;

use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::pharmacy::{order::check_address, Fulfilment, GeoPoint, RankOptions, Ranking};
use crate::domain::{check_id, Field, InvalidInput};
use crate::wire::{DeliveryAddress, Order, OrderRequest, PharmacyQuoteRequest, PrescriptionRecord};

const KEY_LAST_LOCATION: &str = "pharmacy/last_location";

impl CarePass {
    /// The signed-in person's prescriptions, newest first.
    pub async fn prescriptions(&self) -> CoreResult<Vec<PrescriptionRecord>> {
        let person_id = self.active_person()?;
        self.authed(&person_id, Method::GET, "v1/prescriptions", None::<&()>).await
    }

    /// Pharmacies ranked for a prescription (`rx_id`, or the newest when `None`) under
    /// `options`; returns the prescription id used and the ranking. The location is kept as
    /// the default delivery location of the next order.
    pub async fn rank_pharmacies(&self, rx_id: Option<&str>, options: RankOptions) -> CoreResult<(String, Ranking)> {
        if !options.location.is_valid() {
            return Err(InvalidInput::new(Field::Location, "latitude is −90 to 90 and longitude −180 to 180").into());
        }
        let person_id = self.active_person()?;
        let rx_id = match rx_id {
            Some(id) => id.to_string(),
            None => self.prescriptions().await?.first().map(|rx| rx.rx_id.clone()).ok_or(CoreError::NoPrescription)?,
        };
        let request = PharmacyQuoteRequest { rx_id: rx_id.clone(), options: options.clone(), use_account: true };
        let ranking: Ranking = self.authed(&person_id, Method::POST, "v1/pharmacy-quotes", Some(&request)).await?;
        self.store.profile(&person_id)?.put(KEY_LAST_LOCATION, &options.location)?;
        Ok((rx_id, ranking))
    }

    /// Where the last ranking was asked for (the default delivery location).
    pub fn last_rank_location(&self) -> CoreResult<Option<GeoPoint>> {
        let person_id = self.active_person()?;
        Ok(self.store.profile(&person_id)?.get(KEY_LAST_LOCATION)?)
    }

    /// Orders a prescription from a pharmacy for pickup, or for delivery to `address`.
    pub async fn place_order(
        &self,
        rx_id: &str,
        pharmacy_id: &str,
        fulfilment: Fulfilment,
        address: Option<DeliveryAddress>,
    ) -> CoreResult<Order> {
        check_id(Field::PrescriptionId, rx_id)?;
        check_id(Field::PharmacyId, pharmacy_id)?;
        match (fulfilment, &address) {
            (Fulfilment::Delivery, Some(a)) => check_address(a)?,
            (Fulfilment::Delivery, None) => {
                return Err(InvalidInput::new(Field::DeliveryAddress, "a delivery needs an address").into())
            }
            (Fulfilment::Pickup, _) => {}
        }
        let person_id = self.active_person()?;
        let request = OrderRequest {
            rx_id: rx_id.into(),
            pharmacy_id: pharmacy_id.into(),
            fulfilment,
            address: if fulfilment == Fulfilment::Delivery { address } else { None },
            use_account: true,
        };
        self.authed(&person_id, Method::POST, "v1/orders", Some(&request)).await
    }

    /// An order's current state.
    pub async fn order(&self, order_id: &str) -> CoreResult<Order> {
        check_id(Field::OrderId, order_id)?;
        let person_id = self.active_person()?;
        self.authed(&person_id, Method::GET, &format!("v1/orders/{order_id}"), None::<&()>).await
    }

    /// Cancels an order the pharmacy has not prepared yet.
    pub async fn cancel_order(&self, order_id: &str) -> CoreResult<Order> {
        check_id(Field::OrderId, order_id)?;
        let person_id = self.active_person()?;
        let path = format!("v1/orders/{order_id}/cancel");
        self.authed(&person_id, Method::POST, &path, Some(&serde_json::json!({}))).await
    }
}
