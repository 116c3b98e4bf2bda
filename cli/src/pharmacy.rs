//! `carepass pharmacies` (rank nearby pharmacies by what the patient pays after insurance)
//! and `carepass order` (order for pickup or delivery). Ranking is the platform's, with the
//! core's rules; this file only prints.

use carepass_core::domain::pharmacy::{Fulfilment, GeoPoint, PharmacyQuote, RankQuery, Ranking, StockStatus};
use carepass_core::wire::{DeliveryAddress, Order, OrderState};
use carepass_core::CarePass;

use crate::explain;

pub struct RankArgs {
    pub lat: f64,
    pub lon: f64,
    pub rx: Option<String>,
    pub delivery: bool,
    pub max_km: Option<f64>,
    pub open_now: bool,
    pub json: bool,
}

pub async fn rank(app: &CarePass, args: RankArgs, subject: Option<&str>) -> Result<(), String> {
    let max_distance_m = match args.max_km {
        // Kilometres to whole metres for the core, which checks the range.
        Some(km) if km.is_finite() && km > 0.0 => Some((km * 1000.0).round().min(u32::MAX as f64) as u32),
        Some(_) => return Err("--max-km is a distance in km, more than 0".into()),
        None => None,
    };
    let query = RankQuery {
        rx_id: args.rx,
        location: GeoPoint::new(args.lat, args.lon),
        delivery: args.delivery,
        max_distance_m,
        open_now: args.open_now,
        limit: None,
    };
    let (rx_id, ranking) = app.rank_pharmacies(&query, subject).await.map_err(explain)?;
    if args.json {
        let array: Vec<serde_json::Value> = ranking.quotes.iter().map(quote_json).collect();
        println!("{}", serde_json::Value::Array(array));
    } else {
        print_ranking(&rx_id, &ranking);
    }
    Ok(())
}

fn quote_json(q: &PharmacyQuote) -> serde_json::Value {
    serde_json::json!({
        "pharmacy_id": q.pharmacy_id,
        "name": q.pharmacy_name,
        "complete": q.stock == StockStatus::Complete,
        "missing": q.missing,
        "net_cost_fen": q.net_cost.0,
        "list_cost_fen": q.list_price.0,
        "fund_fen": q.settlement.fund.0,
        "personal_account_fen": q.settlement.personal_account.0,
        "cash_fen": q.settlement.cash.0,
        "delivery_fee_fen": q.delivery_fee.0,
        "distance_m": q.distance_m,
        "delivery_minutes": q.delivery_minutes,
    })
}

/// One line for a person to read.
pub fn describe_quote(rank: usize, q: &PharmacyQuote) -> String {
    let stock = match q.stock {
        StockStatus::Complete => "all items".to_string(),
        _ => format!("missing {}", q.missing.join(", ")),
    };
    let eta = q.delivery_minutes.map(|m| format!(", delivered in ~{m} min")).unwrap_or_default();
    crate::text::clean(&format!(
        "{rank:>2}. {:<10} you pay {:>9} (list {:>9}, insurance {:>9}, delivery {:>7})  {:>5} m{eta}  {}  {}",
        q.pharmacy_id,
        q.net_cost.to_string(),
        q.list_price.to_string(),
        q.settlement.fund.to_string(),
        q.delivery_fee.to_string(),
        q.distance_m,
        stock,
        q.pharmacy_name
    ))
    .into_owned()
}

fn print_ranking(rx_id: &str, ranking: &Ranking) {
    println!(
        "{}",
        crate::text::clean(&format!(
            "prescription {rx_id}: {} pharmacies match the filters ({} with everything, {} partly, {} with none)",
            ranking.candidates, ranking.complete, ranking.partial, ranking.no_stock
        ))
    );
    for (i, q) in ranking.quotes.iter().enumerate() {
        println!("{}", describe_quote(i + 1, q));
    }
    if let Some(pair) = &ranking.best_pair {
        println!(
            "{}",
            crate::text::clean(&format!(
                "no pharmacy has everything; cheapest pair: {} + {} for {} in all",
                pair.first.pharmacy_id, pair.second.pharmacy_id, pair.net_cost
            ))
        );
    }
}

pub struct OrderArgs {
    pub pharmacy: String,
    pub rx: Option<String>,
    pub delivery: bool,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

pub async fn order(app: &CarePass, args: OrderArgs, subject: Option<&str>) -> Result<(), String> {
    let (fulfilment, address) = if args.delivery {
        let text = args.address.ok_or("--delivery needs --address")?;
        let contact_phone = args.phone.ok_or("--delivery needs --phone")?;
        let location = match (args.lat, args.lon) {
            (Some(lat), Some(lon)) => GeoPoint::new(lat, lon),
            _ => app
                .last_rank_location(subject)
                .map_err(explain)?
                .ok_or("no delivery location: pass --lat and --lon (or rank pharmacies first)")?,
        };
        (Fulfilment::Delivery, Some(DeliveryAddress { text, location, contact_phone }))
    } else {
        (Fulfilment::Pickup, None)
    };
    let rx = match args.rx {
        Some(rx) => rx,
        None => app.newest_prescription(subject).await.map_err(explain)?,
    };
    let order = app.place_order(&rx, &args.pharmacy, fulfilment, address, subject).await.map_err(explain)?;
    println!("{}", crate::text::clean(&format!("{} {}", order.order_id, state_name(order.state))));
    println!("{}", describe_order(&order));
    Ok(())
}

pub fn state_name(state: OrderState) -> &'static str {
    match state {
        OrderState::Accepted => "accepted",
        OrderState::Ready => "ready",
        OrderState::OutForDelivery => "out_for_delivery",
        OrderState::Completed => "completed",
        OrderState::Cancelled => "cancelled",
    }
}

pub fn describe_order(order: &Order) -> String {
    let how = match &order.address {
        Some(a) => format!("delivery to {}", a.text),
        None => "pickup at the pharmacy".to_string(),
    };
    crate::text::clean(&format!(
        "order {} at {} ({}): {}; you pay {} (insurance pays {}, personal account {}, cash {}, delivery {})",
        order.order_id,
        order.pharmacy_name,
        order.pharmacy_id,
        how,
        order.quote.net_cost,
        order.quote.settlement.fund,
        order.quote.settlement.personal_account,
        order.quote.settlement.cash,
        order.quote.delivery_fee
    ))
    .into_owned()
}

/// `carepass prescriptions`: the signed-in person's prescriptions, newest first.
pub async fn prescriptions(app: &CarePass, json: bool, subject: Option<&str>) -> Result<(), String> {
    let list = app.prescriptions(subject).await.map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string(&list).map_err(|e| e.to_string())?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no prescriptions");
    }
    for rx in &list {
        let items: Vec<String> =
            rx.prescription.items.iter().map(|i| format!("{} × {}", i.drug_code, i.quantity)).collect();
        println!(
            "{}",
            crate::text::clean(&format!(
                "{}  {} · {} · {}  valid until {}  {}",
                rx.rx_id,
                rx.hospital,
                rx.doctor,
                rx.diagnosis,
                chrono::DateTime::from_timestamp_millis(rx.valid_until_ms)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                items.join(", ")
            ))
        );
    }
    Ok(())
}

/// `carepass orders`: the signed-in person's pharmacy orders, newest first.
pub async fn orders(app: &CarePass, json: bool, subject: Option<&str>) -> Result<(), String> {
    let list = app.orders(subject).await.map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string(&list).map_err(|e| e.to_string())?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no orders");
    }
    for order in &list {
        println!("{}  {}", state_name(order.state), describe_order(order));
    }
    Ok(())
}
