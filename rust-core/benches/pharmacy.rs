//! Pharmacy ranking with the R-tree against the naive full scan, in the same run, on a
//! national-scale generated catalogue (100,000 pharmacies in 20 cities,
//! `CatalogueSpec::national`) and the 8-item demo prescription, searching 4 km around the demo
//! city's centre (a city whose pharmacies spread over about 40 km: spread 8 km, 95 % within
//! 19.6 km of the centre). Both rankings are checked to agree before timing, and the number of
//! pharmacies inside the radius is printed (`pharmacy_candidates_in_radius: N`).
//!
//! `scripts/bench-pharmacy.sh` runs this and prints the speed-up.

use std::hint::black_box;

use carepass_core::domain::money::Fen;
use carepass_core::domain::pharmacy::generate::{demo_city_centre, demo_prescription, generate, CatalogueSpec};
use carepass_core::domain::pharmacy::{rank, rank_scan, Catalogue, RankOptions};
use carepass_core::domain::settlement::{PatientCoverage, SettlementPolicy, YearToDate};
use carepass_core::wire::InsuranceType;
use criterion::{criterion_group, criterion_main, Criterion};

const PHARMACIES: u32 = 100_000;
const RADIUS_M: u32 = 4_000;

fn benches(c: &mut Criterion) {
    let catalogue = Catalogue::new(generate(&CatalogueSpec::national(2026, PHARMACIES))).expect("generated catalogue");
    let policy = SettlementPolicy::demo();
    let patient = PatientCoverage {
        insurance_type: InsuranceType::EmployeeRetired,
        pooling_region: "419900".to_string(),
        year_to_date: YearToDate::default(),
        account_balance: Fen(20_000),
        use_account: true,
    };
    let prescription = demo_prescription();
    let options = RankOptions { max_distance_m: RADIUS_M, limit: 10, ..RankOptions::near(demo_city_centre()) };

    let indexed = rank(&catalogue, &policy, &patient, &prescription, &options).expect("indexed ranking");
    let scanned = rank_scan(&catalogue, &policy, &patient, &prescription, &options).expect("full scan");
    assert_eq!(indexed, scanned, "the indexed ranking and the full scan disagree");
    println!("pharmacy_catalogue_size: {}", catalogue.len());
    println!("pharmacy_candidates_in_radius: {}", indexed.candidates);
    println!("pharmacy_complete_in_radius: {}", indexed.complete);

    let mut group = c.benchmark_group("pharmacy");
    group.sample_size(30);
    group.bench_function("rank_indexed", |b| {
        b.iter(|| rank(&catalogue, &policy, &patient, black_box(&prescription), black_box(&options)).unwrap())
    });
    group.bench_function("rank_scan", |b| {
        b.iter(|| rank_scan(&catalogue, &policy, &patient, black_box(&prescription), black_box(&options)).unwrap())
    });
    group.finish();
}

criterion_group!(pharmacy, benches);
criterion_main!(pharmacy);
