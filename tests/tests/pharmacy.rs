//! Prescription and pharmacy journeys over loopback: the platform's ranking equals the pure
//! ranking on its catalogue for the patient's coverage; orders for delivery and pickup move
//! through their states; another person's prescription, incomplete stock, an address out of
//! the delivery radius and bad input are refused.

use carepass_core::domain::pharmacy::{rank, Fulfilment, GeoPoint, RankOptions, RankQuery, StockStatus};
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::PlatformCode;
use carepass_core::wire::{DeliveryAddress, Order, OrderState};
use carepass_core::{CarePass, CoreError};
use carepass_journeys::*;

const HOME: GeoPoint = GeoPoint { lat: 30.5952, lon: 114.2999 };

/// The query that asks for exactly `options` (every field explicit).
fn query(options: &RankOptions) -> RankQuery {
    RankQuery {
        rx_id: None,
        location: options.location,
        delivery: options.fulfilment == Fulfilment::Delivery,
        max_distance_m: Some(options.max_distance_m),
        open_now: false,
        limit: Some(options.limit),
    }
}

async fn patient(platform: &TestPlatform, dir: &std::path::Path) -> std::sync::Arc<CarePass> {
    let app = phone(&platform.url(), dir, &MemorySecretStore::new());
    app.enrol(PATIENT, CODE).await.unwrap();
    app
}

fn address(location: GeoPoint) -> DeliveryAddress {
    DeliveryAddress { text: "示例市东湖路 18 号 3 栋 502 室".into(), location, contact_phone: PATIENT.into() }
}

async fn advance(platform: &TestPlatform, order: &Order) -> Order {
    platform
        .admin()
        .post(&format!("admin/v1/orders/{}/advance", order.order_id), &serde_json::json!({}), Some(ADMIN_TOKEN))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_platform_ranks_by_net_cost_exactly_as_the_pure_rules_do() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path()).await;
    let prescriptions = app.prescriptions(None).await.unwrap();
    assert_eq!(prescriptions.len(), 1);
    let rx = &prescriptions[0];
    assert_eq!(rx.prescription.items.len(), 8);

    for fulfilment in [Fulfilment::Pickup, Fulfilment::Delivery] {
        let mut options = RankOptions::near(HOME);
        options.fulfilment = fulfilment;
        let (rx_id, ranking) = app.rank_pharmacies(&query(&options), None).await.unwrap();
        assert_eq!(rx_id, rx.rx_id);
        assert!(ranking.complete > 0 && !ranking.quotes.is_empty());
        // The same pure function on the platform's catalogue, with the patient's coverage.
        let server = platform.sandbox.as_ref().unwrap().platform.clone();
        let coverage = server.coverage("P1001", true).unwrap();
        let network = server.pharmacies();
        let expected = rank(&network.catalogue, &network.policy, &coverage, &rx.prescription, &options).unwrap();
        assert!(ranking == expected, "the platform's ranking differs from the pure ranking");
        // Complete first, then by net cost.
        let complete: Vec<_> = ranking.quotes.iter().take_while(|q| q.stock == StockStatus::Complete).collect();
        assert!(complete.windows(2).all(|w| w[0].net_cost <= w[1].net_cost));
        for q in &ranking.quotes {
            assert!(q.distance_m <= 5_000);
            assert_eq!(
                q.net_cost,
                q.list_price.checked_sub(q.settlement.fund).unwrap().checked_add(q.delivery_fee).unwrap()
            );
            q.settlement.check().unwrap();
        }
    }
    assert_eq!(app.last_rank_location(None).unwrap(), Some(HOME));
}

#[tokio::test]
async fn a_delivery_order_moves_from_accepted_to_completed() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path()).await;
    let mut options = RankOptions::near(HOME);
    options.fulfilment = Fulfilment::Delivery;
    let (rx_id, ranking) = app.rank_pharmacies(&query(&options), None).await.unwrap();
    let best = &ranking.quotes[0];
    let order =
        app.place_order(&rx_id, &best.pharmacy_id, Fulfilment::Delivery, Some(address(HOME)), None).await.unwrap();
    assert_eq!(order.state, OrderState::Accepted);
    assert_eq!(order.quote.net_cost, best.net_cost, "ordered at the quoted price");
    assert_eq!(advance(&platform, &order).await.state, OrderState::OutForDelivery);
    assert!(
        matches!(app.cancel_order(&order.order_id, None).await, Err(CoreError::Net(e)) if e.platform_code() == Some(PlatformCode::Conflict))
    );
    assert_eq!(advance(&platform, &order).await.state, OrderState::Completed);
    assert_eq!(app.order(&order.order_id, None).await.unwrap().state, OrderState::Completed);
}

#[tokio::test]
async fn a_pickup_order_can_be_cancelled_while_accepted() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path()).await;
    let (rx_id, ranking) = app.rank_pharmacies(&query(&RankOptions::near(HOME)), None).await.unwrap();
    let order = app.place_order(&rx_id, &ranking.quotes[0].pharmacy_id, Fulfilment::Pickup, None, None).await.unwrap();
    assert!(order.address.is_none());
    assert_eq!(app.cancel_order(&order.order_id, None).await.unwrap().state, OrderState::Cancelled);
}

#[tokio::test]
async fn orders_that_cannot_be_filled_or_delivered_are_refused() {
    let platform = TestPlatform::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = patient(&platform, dir.path()).await;
    let mut wide = RankOptions::near(HOME);
    wide.limit = 200;
    let (rx_id, ranking) = app.rank_pharmacies(&query(&wide), None).await.unwrap();
    let partial = ranking.quotes.iter().find(|q| q.stock == StockStatus::Partial).expect("a partial pharmacy nearby");
    let err = app.place_order(&rx_id, &partial.pharmacy_id, Fulfilment::Pickup, None, None).await.unwrap_err();
    assert!(matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::IncompleteQuote)), "{err:?}");

    // Far beyond any delivery radius (another province).
    let far = GeoPoint::new(39.9, 116.4);
    let err = app
        .place_order(&rx_id, &ranking.quotes[0].pharmacy_id, Fulfilment::Delivery, Some(address(far)), None)
        .await
        .unwrap_err();
    assert!(matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::Conflict)), "{err:?}");

    // Bad input is refused before anything is sent.
    let bad = DeliveryAddress { contact_phone: "12345".into(), ..address(HOME) };
    assert!(matches!(
        app.place_order(&rx_id, "PH0000001", Fulfilment::Delivery, Some(bad), None).await,
        Err(CoreError::InvalidInput(_))
    ));
    assert!(matches!(
        app.place_order(&rx_id, "PH0000001", Fulfilment::Delivery, None, None).await,
        Err(CoreError::InvalidInput(_))
    ));
    assert!(matches!(app.order("../admin", None).await, Err(CoreError::InvalidInput(_))));
    let mut nowhere = RankOptions::near(GeoPoint::new(123.0, 0.0));
    nowhere.limit = 5;
    assert!(matches!(app.rank_pharmacies(&query(&nowhere), None).await, Err(CoreError::InvalidInput(_))));
}

#[tokio::test]
async fn another_persons_prescription_and_orders_are_out_of_reach() {
    let platform = TestPlatform::start().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let app = patient(&platform, d1.path()).await;
    let child = phone(&platform.url(), d2.path(), &MemorySecretStore::new());
    child.enrol(CHILD, CODE).await.unwrap();
    assert!(child.prescriptions(None).await.unwrap().is_empty());
    let err = child
        .rank_pharmacies(&RankQuery { rx_id: Some("rx_p1001_chronic".into()), ..RankQuery::near(HOME) }, None)
        .await
        .unwrap_err();
    assert!(matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::NotFound)), "{err:?}");
    let (rx_id, ranking) = app.rank_pharmacies(&query(&RankOptions::near(HOME)), None).await.unwrap();
    let order = app.place_order(&rx_id, &ranking.quotes[0].pharmacy_id, Fulfilment::Pickup, None, None).await.unwrap();
    let err = child.order(&order.order_id, None).await.unwrap_err();
    assert!(matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::NotFound)), "{err:?}");
    let err = child.cancel_order(&order.order_id, None).await.unwrap_err();
    assert!(matches!(&err, CoreError::Net(e) if e.platform_code() == Some(PlatformCode::NotFound)), "{err:?}");
    assert_eq!(app.order(&order.order_id, None).await.unwrap().state, OrderState::Accepted, "untouched");
}
