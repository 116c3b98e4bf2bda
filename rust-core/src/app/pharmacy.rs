//! The prescription and pharmacy flows of [`CarePass`]: list a subject's prescriptions, ask
//! the platform for pharmacies ranked by net cost (it adds the patient's coverage), place,
//! follow and cancel orders. The query is resolved here, once, by the pure
//! `RankOptions::from_query` (defaults, "open now" on platform time, the radius limit); the
//! ranking rules are `crate::domain::pharmacy`, which the platform runs on its catalogue.

use reqwest::Method;

use super::CarePass;
use crate::app::error::{CoreError, CoreResult};
use crate::domain::family::Scope;
use crate::domain::pharmacy::{order::check_address, Fulfilment, GeoPoint, RankOptions, Ranking};
use crate::domain::{check_id, Field, InvalidInput};
use crate::wire::{DeliveryAddress, Order, OrderRequest, PharmacyQuoteRequest, PrescriptionRecord};

pub use crate::domain::pharmacy::RankQuery;

const KEY_LAST_LOCATION: &str = "pharmacy/last_location";

impl CarePass {
    /// A subject's prescriptions (`None`: the signed-in person), newest first.
    pub async fn prescriptions(&self, subject: Option<&str>) -> CoreResult<Vec<PrescriptionRecord>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::ViewPrescriptions)?;
        self.authed(&actor, &subject, Method::GET, "v1/prescriptions", None::<&()>).await
    }

    /// Pharmacies ranked for a prescription (the query's, or the subject's newest); returns
    /// the prescription id used and the ranking. The location is kept as the default
    /// delivery location of the next order.
    pub async fn rank_pharmacies(&self, query: &RankQuery, subject: Option<&str>) -> CoreResult<(String, Ranking)> {
        self.check_open()?;
        let options = RankOptions::from_query(query, self.client.server_now_ms())?;
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        let rx_id = match &query.rx_id {
            Some(id) => {
                check_id(Field::PrescriptionId, id)?;
                id.clone()
            }
            None => self.newest_prescription(Some(&subject)).await?,
        };
        let request = PharmacyQuoteRequest { rx_id: rx_id.clone(), options: options.clone(), use_account: true };
        let ranking: Ranking =
            self.authed(&actor, &subject, Method::POST, "v1/pharmacy-quotes", Some(&request)).await?;
        let held = self.hold()?;
        held.section(&Self::section_name(&actor, &subject))?.put(KEY_LAST_LOCATION, &options.location)?;
        Ok((rx_id, ranking))
    }

    /// The subject's newest prescription's id.
    pub async fn newest_prescription(&self, subject: Option<&str>) -> CoreResult<String> {
        self.prescriptions(subject).await?.first().map(|rx| rx.rx_id.clone()).ok_or(CoreError::NoPrescription)
    }

    /// Where the subject's last ranking was asked for (the default delivery location).
    pub fn last_rank_location(&self, subject: Option<&str>) -> CoreResult<Option<GeoPoint>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        let held = self.hold()?;
        let location = held.section(&Self::section_name(&actor, &subject))?.get(KEY_LAST_LOCATION)?;
        Ok(location)
    }

    /// Orders a prescription from a pharmacy for pickup, or for delivery to `address`.
    pub async fn place_order(
        &self,
        rx_id: &str,
        pharmacy_id: &str,
        fulfilment: Fulfilment,
        address: Option<DeliveryAddress>,
        subject: Option<&str>,
    ) -> CoreResult<Order> {
        self.check_open()?;
        check_id(Field::PrescriptionId, rx_id)?;
        check_id(Field::PharmacyId, pharmacy_id)?;
        let address = match (fulfilment, address) {
            (Fulfilment::Delivery, Some(a)) => {
                check_address(&a)?;
                Some(a)
            }
            (Fulfilment::Delivery, None) => {
                return Err(InvalidInput::new(Field::DeliveryAddress, "a delivery needs an address").into())
            }
            (Fulfilment::Pickup, Some(_)) => {
                return Err(InvalidInput::new(Field::DeliveryAddress, "a pickup order takes no delivery address").into())
            }
            (Fulfilment::Pickup, None) => None,
        };
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        let request = OrderRequest {
            rx_id: rx_id.into(),
            pharmacy_id: pharmacy_id.into(),
            fulfilment,
            address,
            use_account: true,
        };
        self.authed(&actor, &subject, Method::POST, "v1/orders", Some(&request)).await
    }

    /// A subject's orders, newest first.
    pub async fn orders(&self, subject: Option<&str>) -> CoreResult<Vec<Order>> {
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        self.authed(&actor, &subject, Method::GET, "v1/orders", None::<&()>).await
    }

    /// An order's current state.
    pub async fn order(&self, order_id: &str, subject: Option<&str>) -> CoreResult<Order> {
        self.check_open()?;
        check_id(Field::OrderId, order_id)?;
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        self.authed(&actor, &subject, Method::GET, &format!("v1/orders/{order_id}"), None::<&()>).await
    }

    /// Cancels an order the pharmacy has not prepared yet.
    pub async fn cancel_order(&self, order_id: &str, subject: Option<&str>) -> CoreResult<Order> {
        self.check_open()?;
        check_id(Field::OrderId, order_id)?;
        let actor = self.actor()?;
        let subject = self.subject_of(&actor, subject, Scope::OrderMedicine)?;
        let path = format!("v1/orders/{order_id}/cancel");
        self.authed(&actor, &subject, Method::POST, &path, Some(&serde_json::json!({}))).await
    }
}
