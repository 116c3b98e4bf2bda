//! Behaviour of the ranking: filters, order, net cost against list price, partial fills,
//! pairs, errors; and the property that the indexed ranking equals the full scan exactly.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::generate::{demo_city_centre, demo_prescription, generate, CatalogueSpec};
use super::*;
use crate::domain::money::Fen;
use crate::domain::person::InsuranceType;
use crate::domain::settlement::{
    ItemCategory, PatientCoverage, SettlementPolicy, SettlementRule, VisitType, YearToDate,
};

const METRES_PER_DEGREE: f64 = 111_195.08;

fn centre() -> GeoPoint {
    GeoPoint::new(30.6, 114.3)
}

/// A point `east_m` east and `north_m` north of `origin`.
fn offset(origin: GeoPoint, east_m: f64, north_m: f64) -> GeoPoint {
    let lat = origin.lat + north_m / METRES_PER_DEGREE;
    let mut lon = origin.lon + east_m / (METRES_PER_DEGREE * origin.lat.to_radians().cos());
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    GeoPoint::new(lat, lon)
}

fn drug(code: &str, category: ItemCategory) -> Drug {
    Drug { code: code.to_string(), name: code.to_string(), category, reference_price: Fen(1_000) }
}

fn shop(id: &str, east_m: f64, stock: &[(&str, i64, u32)]) -> Pharmacy {
    Pharmacy {
        id: id.to_string(),
        name: format!("Pharmacy {id}"),
        region: "419900".to_string(),
        location: offset(centre(), east_m, 0.0),
        hours: OpeningHours::Always,
        delivery: None,
        stock: stock
            .iter()
            .map(|&(code, price, available)| StockLine {
                drug_code: code.to_string(),
                unit_price: Fen(price),
                available,
            })
            .collect(),
    }
}

fn catalogue(drugs: Vec<Drug>, pharmacies: Vec<Pharmacy>) -> Catalogue {
    Catalogue::new(CatalogueData { drugs, pharmacies }).unwrap()
}

fn abc() -> Vec<Drug> {
    vec![drug("X", ItemCategory::A), drug("Y", ItemCategory::A), drug("Z", ItemCategory::A)]
}

fn employee() -> PatientCoverage {
    PatientCoverage {
        insurance_type: InsuranceType::EmployeeActive,
        pooling_region: "419900".to_string(),
        year_to_date: YearToDate::default(),
        account_balance: Fen(50_000),
        use_account: true,
    }
}

fn rx(items: &[(&str, u32)]) -> Prescription {
    Prescription {
        items: items
            .iter()
            .map(|&(code, quantity)| PrescriptionItem { drug_code: code.to_string(), quantity })
            .collect(),
    }
}

/// Ranks both ways, insists they agree, returns the result.
fn ranked(cat: &Catalogue, patient: &PatientCoverage, prescription: &Prescription, options: &RankOptions) -> Ranking {
    ranked_under(&SettlementPolicy::demo(), cat, patient, prescription, options)
}

fn ranked_under(
    policy: &SettlementPolicy,
    cat: &Catalogue,
    patient: &PatientCoverage,
    prescription: &Prescription,
    options: &RankOptions,
) -> Ranking {
    let indexed = rank(cat, policy, patient, prescription, options).unwrap();
    assert_eq!(indexed, rank_scan(cat, policy, patient, prescription, options).unwrap());
    indexed
}

fn ids(ranking: &Ranking) -> Vec<&str> {
    ranking.quotes.iter().map(|q| q.pharmacy_id.as_str()).collect()
}

#[test]
fn complete_pharmacies_rank_before_partial_ones_even_when_dearer() {
    let cat = catalogue(
        abc(),
        vec![
            shop("CHEAP-PARTIAL", 100.0, &[("X", 10, 9), ("Y", 10, 9)]),
            shop("DEAR-COMPLETE", 900.0, &[("X", 900, 9), ("Y", 900, 9), ("Z", 900, 9)]),
        ],
    );
    let r = ranked(&cat, &employee(), &rx(&[("X", 1), ("Y", 1), ("Z", 1)]), &RankOptions::near(centre()));
    assert_eq!(ids(&r), ["DEAR-COMPLETE", "CHEAP-PARTIAL"]);
    assert_eq!(r.quotes[0].stock, StockStatus::Complete);
    assert_eq!(r.quotes[1].stock, StockStatus::Partial);
    assert_eq!(r.quotes[1].missing, ["Z"]);
    assert_eq!((r.candidates, r.complete, r.partial, r.no_stock), (2, 1, 1, 0));
    assert_eq!(r.best_pair, None, "no pair is looked for when a pharmacy is complete");
}

#[test]
fn ranking_by_net_cost_differs_from_ranking_by_list_price_because_of_categories() {
    // A class A drug (85 % reimbursed at a demo-city pharmacy) and a class C supplement (0 %).
    let drugs = vec![drug("ACE", ItemCategory::A), drug("SUPP", ItemCategory::C)];
    let cat = catalogue(
        drugs,
        vec![
            // Cheaper list price, but the saving is on the reimbursed drug.
            shop("LIST-CHEAPER", 500.0, &[("ACE", 6_000, 9), ("SUPP", 5_000, 9)]),
            // Dearer list price, but the supplement the patient pays in full is cheap.
            shop("NET-CHEAPER", 1_500.0, &[("ACE", 10_000, 9), ("SUPP", 2_000, 9)]),
        ],
    );
    let r = ranked(&cat, &employee(), &rx(&[("ACE", 1), ("SUPP", 1)]), &RankOptions::near(centre()));
    assert_eq!(ids(&r), ["NET-CHEAPER", "LIST-CHEAPER"]);
    let (net, list) = (&r.quotes[0], &r.quotes[1]);
    assert!(list.list_price < net.list_price, "{} < {}", list.list_price, net.list_price);
    // 11,000 − 85 % × 6,000 = 5,900; 12,000 − 85 % × 10,000 = 3,500.
    assert_eq!((list.list_price, list.net_cost), (Fen(11_000), Fen(5_900)));
    assert_eq!((net.list_price, net.net_cost), (Fen(12_000), Fen(3_500)));
    let mut by_list = r.quotes.clone();
    by_list.sort_by_key(|q| q.list_price);
    assert_ne!(by_list[0].pharmacy_id, r.quotes[0].pharmacy_id);
}

#[test]
fn equal_net_costs_break_ties_by_distance_then_pharmacy_id() {
    let stock = [("X", 1_000, 9)];
    let cat = catalogue(
        abc(),
        vec![shop("C", 2_000.0, &stock), shop("B", 1_000.0, &stock), shop("A", 1_000.0, &stock), shop("D", 10.0, &[])],
    );
    let r = ranked(&cat, &employee(), &rx(&[("X", 1)]), &RankOptions::near(centre()));
    assert_eq!(ids(&r), ["A", "B", "C"]);
    assert_eq!(r.no_stock, 1);
    assert_eq!(r.quotes[0].distance_m, 1_000);
}

#[test]
fn quotes_carry_a_checked_settlement_whose_patient_share_is_the_net_cost() {
    let cat = Catalogue::new(generate(&CatalogueSpec::demo_city(3, 400))).unwrap();
    let mut options = RankOptions::near(demo_city_centre());
    options.max_distance_m = 20_000;
    let r = ranked(&cat, &employee(), &demo_prescription(), &options);
    assert!(!r.quotes.is_empty());
    for q in &r.quotes {
        q.settlement.check().unwrap();
        assert_eq!(q.net_cost, q.settlement.patient_pays().checked_add(q.delivery_fee).unwrap());
        assert_eq!(q.list_price, q.settlement.total);
        let s = &q.settlement;
        assert_eq!(s.personal_account.checked_add(s.cash).unwrap(), s.patient_pays());
    }
}

#[test]
fn a_short_stock_line_does_not_fill_the_item() {
    let cat = catalogue(
        abc(),
        vec![
            shop("OUT", 100.0, &[("X", 100, 0)]),
            shop("SHORT", 200.0, &[("X", 100, 2)]),
            shop("OK", 300.0, &[("X", 100, 3)]),
        ],
    );
    let r = ranked(&cat, &employee(), &rx(&[("X", 3)]), &RankOptions::near(centre()));
    assert_eq!(ids(&r), ["OK"]);
    assert_eq!((r.complete, r.no_stock), (1, 2));
}

#[test]
fn partial_fill_quotes_what_it_can_and_lists_what_is_missing() {
    let cat = catalogue(abc(), vec![shop("P", 100.0, &[("X", 1_000, 9), ("Z", 2_000, 9)])]);
    let r = ranked(&cat, &employee(), &rx(&[("X", 1), ("Y", 1), ("Z", 2)]), &RankOptions::near(centre()));
    let q = &r.quotes[0];
    assert_eq!(q.stock, StockStatus::Partial);
    assert_eq!(q.missing, ["Y"]);
    assert_eq!(q.list_price, Fen(5_000));
    let codes: Vec<_> = q.settlement.lines.iter().map(|l| l.code.as_str()).collect();
    assert_eq!(codes, ["X", "Z"]);
    let mut options = RankOptions::near(centre());
    options.include_partial = false;
    let r = ranked(&cat, &employee(), &rx(&[("X", 1), ("Y", 1)]), &options);
    assert!(r.quotes.is_empty());
    assert_eq!(r.partial, 1);
}

#[test]
fn partial_pharmacies_that_fill_more_items_come_first() {
    let cat = catalogue(
        abc(),
        vec![shop("ONE-CHEAP", 100.0, &[("X", 1, 9)]), shop("TWO-DEAR", 900.0, &[("X", 5_000, 9), ("Y", 5_000, 9)])],
    );
    let r = ranked(&cat, &employee(), &rx(&[("X", 1), ("Y", 1), ("Z", 1)]), &RankOptions::near(centre()));
    assert_eq!(ids(&r), ["TWO-DEAR", "ONE-CHEAP"]);
}

#[test]
fn maximum_distance_excludes_farther_pharmacies() {
    let stock = [("X", 1_000, 9)];
    let cat = catalogue(abc(), vec![shop("NEAR", 2_999.0, &stock), shop("FAR", 3_002.0, &stock)]);
    let mut options = RankOptions::near(centre());
    options.max_distance_m = 3_000;
    let r = ranked(&cat, &employee(), &rx(&[("X", 1)]), &options);
    assert_eq!(ids(&r), ["NEAR"]);
    options.max_distance_m = 0;
    assert_eq!(ranked(&cat, &employee(), &rx(&[("X", 1)]), &options).candidates, 0);
}

#[test]
fn delivery_needs_the_address_in_the_radius_adds_the_fee_and_ranks_by_delivery_time() {
    let stock = [("X", 1_000, 9)];
    let deliver = |id: &str, east: f64, radius_m: u32, fee: i64, dispatch_minutes: u32| {
        let mut p = shop(id, east, &stock);
        p.delivery = Some(DeliveryTerms { radius_m, fee: Fen(fee), dispatch_minutes });
        p
    };
    let cat = catalogue(
        abc(),
        vec![
            deliver("FEE", 2_000.0, 3_000, 500, 30),
            shop("NO-DELIVERY", 1_000.0, &stock),
            deliver("OUT-OF-RADIUS", 4_000.0, 3_000, 0, 10),
            deliver("SLOW-NEAR", 1_500.0, 5_000, 0, 60),
            deliver("FAST-FAR", 2_500.0, 5_000, 0, 45),
        ],
    );
    let mut options = RankOptions::near(centre());
    options.fulfilment = Fulfilment::Delivery;
    let r = ranked(&cat, &employee(), &rx(&[("X", 1)]), &options);
    // Same drug price: the free deliveries first, the faster (45 + 10 min) before the nearer
    // but slower (60 + 6 min), then the one with a fee.
    assert_eq!(ids(&r), ["FAST-FAR", "SLOW-NEAR", "FEE"]);
    assert_eq!(r.quotes[0].delivery_minutes, Some(55));
    assert_eq!(r.quotes[1].delivery_minutes, Some(66));
    assert_eq!((r.quotes[2].delivery_fee, r.quotes[2].net_cost), (Fen(500), Fen(150 + 500)));
    assert_eq!(r.quotes[2].delivery_minutes, Some(38));
    // Pickup has no fee and no delivery time.
    let r = ranked(&cat, &employee(), &rx(&[("X", 1)]), &RankOptions::near(centre()));
    assert!(r.quotes.iter().all(|q| q.delivery_fee == Fen(0) && q.delivery_minutes.is_none()));
    assert_eq!(r.candidates, 5);
}

#[test]
fn open_now_uses_china_standard_time_and_overnight_hours() {
    let stock = [("X", 1_000, 9)];
    let with_hours = |id: &str, hours: OpeningHours| {
        let mut p = shop(id, 100.0, &stock);
        p.hours = hours;
        p
    };
    let daily = |opens_min: u16, closes_min: u16| OpeningHours::Weekly {
        slots: (1..=7).map(|weekday| OpeningSlot { weekday, opens_min, closes_min }).collect(),
    };
    let cat = catalogue(
        abc(),
        vec![
            with_hours("ALWAYS", OpeningHours::Always),
            with_hours("DAY", daily(8 * 60, 22 * 60)),
            with_hours("NIGHT", daily(20 * 60, 8 * 60)),
            with_hours(
                "MONDAY-ONLY",
                OpeningHours::Weekly { slots: vec![OpeningSlot { weekday: 1, opens_min: 0, closes_min: 1_440 }] },
            ),
        ],
    );
    let open_at = |y, mo, d, h, mi| {
        let mut options = RankOptions::near(centre());
        options.open_at_ms = Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis());
        let mut open = ids(&ranked(&cat, &employee(), &rx(&[("X", 1)]), &options)).join(",");
        open.push(' ');
        open
    };
    // Monday 2026-11-23 23:30 in Beijing is 15:30 UTC.
    assert_eq!(open_at(2026, 11, 23, 15, 30), "ALWAYS,MONDAY-ONLY,NIGHT ");
    // Monday 12:00 in Beijing is 04:00 UTC.
    assert_eq!(open_at(2026, 11, 23, 4, 0), "ALWAYS,DAY,MONDAY-ONLY ");
    // Tuesday 01:00 in Beijing is Monday 17:00 UTC: the night pharmacy's Monday period.
    assert_eq!(open_at(2026, 11, 23, 17, 0), "ALWAYS,NIGHT ");
    // Monday 00:30 in Beijing is Sunday 16:30 UTC.
    assert_eq!(open_at(2026, 11, 22, 16, 30), "ALWAYS,MONDAY-ONLY,NIGHT ");
}

#[test]
fn china_local_time_is_utc_plus_eight() {
    let ms = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis();
    assert_eq!(china_local_time(ms(2026, 11, 23, 15, 30)), Some((1, 23 * 60 + 30)));
    assert_eq!(china_local_time(ms(2026, 11, 22, 16, 0)), Some((1, 0)));
    assert_eq!(china_local_time(ms(1970, 1, 1, 0, 0)), Some((4, 8 * 60)));
    assert_eq!(china_local_time(ms(1969, 12, 31, 12, 0)), Some((3, 20 * 60)));
    assert_eq!(china_local_time(i64::MAX), None);
}

#[test]
fn cheapest_pair_fills_the_prescription_when_no_single_pharmacy_can() {
    let shops = vec![
        shop("P1", 100.0, &[("X", 1_000, 9), ("Y", 2_000, 9)]),
        shop("P2", 200.0, &[("Y", 1_500, 9), ("Z", 3_000, 9)]),
        shop("P3", 300.0, &[("Z", 2_000, 9)]),
        shop("P4", 400.0, &[("X", 1_200, 9)]),
    ];
    let prescription = rx(&[("X", 1), ("Y", 1), ("Z", 1)]);
    let r = ranked(&catalogue(abc(), shops.clone()), &employee(), &prescription, &RankOptions::near(centre()));
    assert_eq!(r.complete, 0);
    let pair = r.best_pair.expect("a pair");
    // P1 + P3: X and Y at P1 (3,000 → 450 after 85 %), Z at P3 (2,000 → 300).
    assert_eq!((pair.first.pharmacy_id.as_str(), pair.second.pharmacy_id.as_str()), ("P1", "P3"));
    assert_eq!((pair.list_price, pair.net_cost), (Fen(5_000), Fen(750)));
    assert_eq!(pair.first.missing, ["Z"]);
    assert_eq!(pair.second.missing, ["X", "Y"]);

    // Without P3: P1 + P2, the shared Y going to P2, which sells it cheaper (825 in all),
    // beats P2 + P4 (855).
    let without_p3: Vec<_> = shops.into_iter().filter(|p| p.id != "P3").collect();
    let r = ranked(&catalogue(abc(), without_p3), &employee(), &prescription, &RankOptions::near(centre()));
    let pair = r.best_pair.expect("a pair");
    assert_eq!((pair.first.pharmacy_id.as_str(), pair.second.pharmacy_id.as_str()), ("P1", "P2"));
    assert_eq!(pair.first.missing, ["Y", "Z"]);
    assert_eq!(pair.second.missing, ["X"]);
    assert_eq!(pair.net_cost, Fen(825));
}

#[test]
fn pair_members_are_settled_one_after_the_other() {
    // A pharmacy rule with a ¥10 deductible: the first pharmacy of the pair uses it up.
    let mut policy = SettlementPolicy::demo();
    for rule in policy.rules.iter_mut().filter(|r| r.visit_type == VisitType::Pharmacy) {
        *rule = SettlementRule { deductible: Fen(1_000), ratio_bp: 5_000, ..rule.clone() };
    }
    let cat = catalogue(abc(), vec![shop("B", 100.0, &[("Z", 3_000, 9)]), shop("A", 200.0, &[("X", 1_000, 9)])]);
    let r = ranked_under(&policy, &cat, &employee(), &rx(&[("X", 1), ("Z", 1)]), &RankOptions::near(centre()));
    let pair = r.best_pair.expect("a pair");
    assert_eq!(pair.first.pharmacy_id, "A");
    assert_eq!((pair.first.settlement.deductible_applied, pair.first.net_cost), (Fen(1_000), Fen(1_000)));
    assert_eq!(pair.second.settlement.deductible_remaining_before, Fen(0));
    assert_eq!(pair.second.net_cost, Fen(1_500));
    assert_eq!(pair.net_cost, Fen(2_500));
}

#[test]
fn no_pair_when_an_item_is_stocked_nowhere() {
    let cat = catalogue(abc(), vec![shop("P1", 100.0, &[("X", 1_000, 9)]), shop("P2", 200.0, &[("Y", 1_000, 9)])]);
    let r = ranked(&cat, &employee(), &rx(&[("X", 1), ("Y", 1), ("Z", 1)]), &RankOptions::near(centre()));
    assert_eq!((r.partial, r.best_pair), (2, None));
}

#[test]
fn limit_keeps_the_best_quotes() {
    let shops: Vec<_> = (0..30)
        .map(|i| shop(&format!("S{i:02}"), 100.0 * f64::from(i), &[("X", 1_000 + i64::from(i % 7), 9)]))
        .collect();
    let cat = catalogue(abc(), shops);
    let mut options = RankOptions::near(centre());
    let all = ranked(&cat, &employee(), &rx(&[("X", 1)]), &options);
    options.limit = 5;
    let top = ranked(&cat, &employee(), &rx(&[("X", 1)]), &options);
    assert_eq!(top.quotes[..], all.quotes[..5]);
    assert_eq!(top.candidates, 30);
}

#[test]
fn invalid_requests_give_typed_errors() {
    let cat = catalogue(abc(), vec![shop("P", 100.0, &[("X", 1_000, 9)])]);
    let policy = SettlementPolicy::demo();
    let options = RankOptions::near(centre());
    let kind = |patient: &PatientCoverage, prescription: &Prescription, options: &RankOptions| {
        let a = rank(&cat, &policy, patient, prescription, options).unwrap_err();
        assert_eq!(a, rank_scan(&cat, &policy, patient, prescription, options).unwrap_err());
        a.kind()
    };
    let patient = employee();
    assert_eq!(kind(&patient, &rx(&[]), &options), "empty_prescription");
    assert_eq!(kind(&patient, &rx(&[("X", 0)]), &options), "zero_quantity");
    assert_eq!(kind(&patient, &rx(&[("X", 1), ("X", 2)]), &options), "duplicate_item");
    assert_eq!(kind(&patient, &rx(&[("NOPE", 1)]), &options), "unknown_drug");
    let many: Vec<String> = (0..40).map(|i| format!("D{i}")).collect();
    let many: Vec<(&str, u32)> = many.iter().map(|c| (c.as_str(), 1)).collect();
    assert_eq!(kind(&patient, &rx(&many), &options), "too_many_items");
    let one = rx(&[("X", 1)]);
    for bad in [
        RankOptions { limit: 0, ..options.clone() },
        RankOptions { limit: 201, ..options.clone() },
        RankOptions { max_distance_m: 100_001, ..options.clone() },
        RankOptions { location: GeoPoint::new(f64::NAN, 1.0), ..options.clone() },
        RankOptions { location: GeoPoint::new(91.0, 1.0), ..options.clone() },
        RankOptions { open_at_ms: Some(i64::MAX), ..options.clone() },
    ] {
        assert_eq!(kind(&patient, &one, &bad), "invalid_options");
    }
    let stranger = PatientCoverage { pooling_region: "999999".into(), ..employee() };
    assert_eq!(kind(&stranger, &one, &options), "unknown_region");
    let overdrawn = PatientCoverage { account_balance: Fen(-1), ..employee() };
    assert_eq!(kind(&overdrawn, &one, &options), "negative_amount");
    let overflow = catalogue(abc(), vec![shop("P", 100.0, &[("X", i64::MAX, 9)])]);
    let err = rank(&overflow, &policy, &patient, &rx(&[("X", 2)]), &options).unwrap_err();
    assert_eq!(err.kind(), "overflow");
}

#[test]
fn options_and_results_travel_as_json() {
    let json = r#"{"prescription": {"items": [{"drug_code": "X", "quantity": 2}]},
                   "options": {"location": {"lat": 30.6, "lon": 114.3}}}"#;
    let request: QuoteRequest = serde_json::from_str(json).unwrap();
    assert_eq!(request.options, RankOptions::near(centre()));
    let cat = catalogue(abc(), vec![shop("P", 100.0, &[("X", 1_000, 9)])]);
    let r = ranked(&cat, &employee(), &request.prescription, &request.options);
    let back: Ranking = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn indexed_ranking_equals_the_scan_on_a_national_catalogue() {
    let cat = Catalogue::new(generate(&CatalogueSpec::national(11, 20_000))).unwrap();
    let patient = employee();
    let prescription = demo_prescription();
    for (fulfilment, radius, open) in [
        (Fulfilment::Pickup, 4_000, None),
        (Fulfilment::Delivery, 8_000, Some(Utc.with_ymd_and_hms(2026, 11, 23, 15, 30, 0).unwrap().timestamp_millis())),
        (Fulfilment::Pickup, 100_000, Some(Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap().timestamp_millis())),
    ] {
        let options = RankOptions {
            fulfilment,
            max_distance_m: radius,
            open_at_ms: open,
            ..RankOptions::near(demo_city_centre())
        };
        let r = ranked(&cat, &patient, &prescription, &options);
        assert!(r.complete > 0, "{r:?}");
    }
}

// ---- property tests ----

/// A small random world: drugs D0..D5 of mixed classes, pharmacies on a 250 m grid (so
/// distances and prices tie often) around a centre that may sit near a pole or the ±180°
/// meridian.
#[derive(Clone, Debug)]
struct World {
    data: CatalogueData,
    patient: PatientCoverage,
    prescription: Prescription,
    options: RankOptions,
}

const CATEGORIES: [ItemCategory; 6] =
    [ItemCategory::A, ItemCategory::B, ItemCategory::C, ItemCategory::A, ItemCategory::B, ItemCategory::A];

fn arb_centre() -> impl Strategy<Value = GeoPoint> {
    prop_oneof![
        4 => Just(GeoPoint::new(30.6, 114.3)),
        2 => (-80.0f64..80.0, -179.0f64..179.0).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
        1 => (-60.0f64..60.0, prop_oneof![Just(179.995f64), Just(-179.995f64)]).prop_map(|(lat, lon)| GeoPoint::new(lat, lon)),
        1 => (88.0f64..89.5).prop_map(|lat| GeoPoint::new(lat, 10.0)),
    ]
}

fn arb_hours() -> impl Strategy<Value = OpeningHours> {
    prop_oneof![
        Just(OpeningHours::Always),
        prop::collection::vec((1u8..=7, 0u16..1_440, 1u16..=1_440), 1..4).prop_map(|slots| OpeningHours::Weekly {
            slots: slots
                .into_iter()
                .map(|(weekday, opens_min, closes_min)| OpeningSlot {
                    weekday,
                    opens_min,
                    closes_min: if closes_min == opens_min { (opens_min + 1).min(1_440) } else { closes_min },
                })
                .collect(),
        }),
    ]
}

/// Grid east, grid north, hours, delivery, and per drug an optional (price, packs) line.
type ShopDraw = (i32, i32, OpeningHours, Option<DeliveryTerms>, Vec<Option<(i64, u32)>>);

fn arb_pharmacy() -> impl Strategy<Value = ShopDraw> {
    (
        -24i32..24,
        -24i32..24,
        arb_hours(),
        prop::option::of(
            (0u32..12_000, prop::sample::select(vec![0i64, 300, 500]), 0u32..60).prop_map(
                |(radius_m, fee, dispatch_minutes)| DeliveryTerms { radius_m, fee: Fen(fee), dispatch_minutes },
            ),
        ),
        prop::collection::vec(
            prop::option::weighted(
                0.85,
                (
                    prop::sample::select(vec![0i64, 100, 999, 1_000, 1_001, 2_345, 5_000]),
                    prop::sample::select(vec![0u32, 1, 2, 9]),
                ),
            ),
            6,
        ),
    )
}

fn arb_world() -> impl Strategy<Value = World> {
    (
        arb_centre(),
        prop::collection::vec(arb_pharmacy(), 0..80),
        prop::sample::subsequence((0..6usize).collect::<Vec<_>>(), 1..=6),
        prop::collection::vec(1u32..3, 6),
        (-20i32..20, -20i32..20, prop_oneof![8 => 0u32..12_000, 1 => Just(100_000u32)]),
        (any::<bool>(), prop::option::weighted(0.4, 1_700_000_000_000i64..1_900_000_000_000), 1u32..12, any::<bool>()),
        (prop::sample::select(vec!["419900", "429900"]), 0usize..3, 0i64..700_000),
    )
        .prop_map(|(centre, shops, wanted, quantities, place, choices, who)| {
            let drugs: Vec<Drug> = CATEGORIES
                .iter()
                .enumerate()
                .map(|(i, &category)| Drug {
                    code: format!("D{i}"),
                    name: format!("drug {i}"),
                    category,
                    reference_price: Fen(1_000),
                })
                .collect();
            let pharmacies = shops
                .into_iter()
                .enumerate()
                .map(|(i, (east, north, hours, delivery, stock))| Pharmacy {
                    // Ids not in location order, so the id tie-break matters.
                    id: format!("R{:03}", (i * 37) % 101),
                    name: format!("shop {i}"),
                    region: "419900".into(),
                    location: offset(centre, f64::from(east) * 250.0, f64::from(north) * 250.0),
                    hours,
                    delivery,
                    stock: stock
                        .into_iter()
                        .enumerate()
                        .filter_map(|(d, line)| {
                            line.map(|(price, available)| StockLine {
                                drug_code: format!("D{d}"),
                                unit_price: Fen(price),
                                available,
                            })
                        })
                        .collect(),
                })
                .collect();
            let prescription = Prescription {
                items: wanted
                    .iter()
                    .map(|&d| PrescriptionItem { drug_code: format!("D{d}"), quantity: quantities[d] })
                    .collect(),
            };
            let (east, north, max_distance_m) = place;
            let (delivery, open_at_ms, limit, include_partial) = choices;
            let options = RankOptions {
                location: offset(centre, f64::from(east) * 250.0, f64::from(north) * 250.0),
                fulfilment: if delivery { Fulfilment::Delivery } else { Fulfilment::Pickup },
                max_distance_m,
                open_at_ms,
                limit,
                include_partial,
            };
            let (region, insurance, fund_paid) = who;
            let patient = PatientCoverage {
                insurance_type: [
                    InsuranceType::EmployeeActive,
                    InsuranceType::EmployeeRetired,
                    InsuranceType::Resident,
                ][insurance],
                pooling_region: region.to_string(),
                year_to_date: YearToDate { deductible_paid: Fen(0), fund_paid: Fen(fund_paid) },
                account_balance: Fen(5_000),
                use_account: true,
            };
            World { data: CatalogueData { drugs, pharmacies }, patient, prescription, options }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn indexed_ranking_agrees_exactly_with_the_full_scan(world in arb_world()) {
        let catalogue = Catalogue::new(world.data.clone()).unwrap();
        let policy = SettlementPolicy::demo();
        let indexed = rank(&catalogue, &policy, &world.patient, &world.prescription, &world.options);
        let scanned = rank_scan(&catalogue, &policy, &world.patient, &world.prescription, &world.options);
        prop_assert_eq!(&indexed, &scanned);
        let ranking = indexed.unwrap();

        // Independently of the ranking code: how many pharmacies pass the filters.
        let local = world.options.open_at_ms.and_then(china_local_time);
        let expected = world.data.pharmacies.iter().filter(|p| {
            let d = haversine_m(world.options.location, p.location);
            d <= world.options.max_distance_m
                && local.is_none_or(|(w, m)| p.hours.is_open(w, m))
                && (world.options.fulfilment == Fulfilment::Pickup
                    || p.delivery.as_ref().is_some_and(|t| d <= t.radius_m))
        }).count() as u32;
        prop_assert_eq!(ranking.candidates, expected);
        prop_assert_eq!(ranking.complete + ranking.partial + ranking.no_stock, expected);

        // Every quote is consistent and the list is in the stated order.
        for q in &ranking.quotes {
            prop_assert!(q.settlement.check().is_ok());
            prop_assert_eq!(q.net_cost, q.settlement.patient_pays().checked_add(q.delivery_fee).unwrap());
            prop_assert!(q.distance_m <= world.options.max_distance_m);
        }
        for w in ranking.quotes.windows(2) {
            let key = |q: &PharmacyQuote| (
                q.stock != StockStatus::Complete,
                q.missing.len(),
                q.net_cost,
                q.delivery_minutes,
                q.distance_m,
                q.pharmacy_id.clone(),
            );
            prop_assert!(key(&w[0]) < key(&w[1]), "{:?} !< {:?}", key(&w[0]), key(&w[1]));
        }
        if let Some(pair) = &ranking.best_pair {
            prop_assert_eq!(ranking.complete, 0);
            prop_assert!(pair.first.pharmacy_id < pair.second.pharmacy_id);
            let mut filled: Vec<_> = pair.first.settlement.lines.iter().chain(&pair.second.settlement.lines)
                .map(|l| l.code.clone()).collect();
            filled.sort();
            let mut wanted: Vec<_> = world.prescription.items.iter().map(|i| i.drug_code.clone()).collect();
            wanted.sort();
            prop_assert_eq!(filled, wanted);
            prop_assert_eq!(pair.net_cost, pair.first.net_cost.checked_add(pair.second.net_cost).unwrap());
        }
    }
}
