//! Deterministic catalogue generator: any number of pharmacies from a seed, clustered around
//! city centres, for the sandbox's demo data, the tests and the benchmark. The layout, spreads
//! and mixes are stated in `docs/pharmacy.md` §7. Pharmacy `i` depends only on the seed, the
//! city list and `i`, so a smaller catalogue is a prefix of a larger one. (Coordinates use
//! `ln`/`cos`, so the last bits may differ between platforms' maths libraries; prices, stock,
//! hours and delivery terms are integer draws and do not.)

use super::catalogue::{CatalogueData, DeliveryTerms, Drug, OpeningHours, OpeningSlot, Pharmacy, StockLine};
use super::geo::GeoPoint;
use super::rank::{Prescription, PrescriptionItem};
use crate::domain::money::Fen;
use crate::domain::settlement::ItemCategory;

/// Metres per degree of latitude on the sphere `geo` measures on.
const METRES_PER_DEGREE: f64 = 111_195.08;

/// A city pharmacies cluster around.
#[derive(Clone, Debug, PartialEq)]
pub struct CitySpec {
    pub name: String,
    /// Six-digit pooling region code its pharmacies get.
    pub region: String,
    pub centre: GeoPoint,
    /// Standard deviation of the pharmacies' east and north offsets from the centre, metres
    /// (95 % of them lie within 2.45 × spread of the centre).
    pub spread_m: u32,
    /// Relative share of the pharmacies.
    pub weight: u32,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogueSpec {
    pub seed: u64,
    pub pharmacies: u32,
    pub cities: Vec<CitySpec>,
}

/// The demo city's centre (city-level region `419900`). Fictional city, real-looking place.
pub fn demo_city_centre() -> GeoPoint {
    GeoPoint::new(30.60, 114.30)
}

fn city(name: &str, region: &str, lat: f64, lon: f64, spread_m: u32, weight: u32) -> CitySpec {
    CitySpec { name: name.to_string(), region: region.to_string(), centre: GeoPoint::new(lat, lon), spread_m, weight }
}

/// Places of other cities for the national layout (round coordinates over eastern and central
/// China; the names and region codes `99xx00` are made up).
const OTHER_CITIES: [(f64, f64); 17] = [
    (31.2, 121.5),
    (39.9, 116.4),
    (23.1, 113.3),
    (30.7, 104.1),
    (34.3, 108.9),
    (29.6, 106.5),
    (32.1, 118.8),
    (30.3, 120.2),
    (36.1, 120.4),
    (28.2, 112.9),
    (26.1, 119.3),
    (34.7, 113.6),
    (38.0, 114.5),
    (41.8, 123.4),
    (22.6, 114.1),
    (25.0, 102.7),
    (36.7, 117.0),
];

impl CatalogueSpec {
    /// The demo city only: city level `419900` (spread 8 km, weight 4), Donghu District
    /// `419902` 7 km east of its centre (spread 3 km, weight 1), and River City `429900` 90 km
    /// west (spread 6 km, weight 2).
    pub fn demo_city(seed: u64, pharmacies: u32) -> Self {
        CatalogueSpec { seed, pharmacies, cities: demo_cities(4, 1, 2) }
    }

    /// A national-scale layout: the demo city (4 % of the pharmacies in `419900`, 1 % in
    /// `419902`, 2 % in River City) and 17 other cities with about 5.5 % each, spreads 8.25
    /// to 12.25 km.
    pub fn national(seed: u64, pharmacies: u32) -> Self {
        let mut cities = demo_cities(40, 10, 20);
        for (k, &(lat, lon)) in OTHER_CITIES.iter().enumerate() {
            let n = k + 1;
            cities.push(city(
                &format!("Generated City {n:02}"),
                &format!("99{n:02}00"),
                lat,
                lon,
                8_000 + 250 * n as u32,
                54,
            ));
        }
        CatalogueSpec { seed, pharmacies, cities }
    }
}

fn demo_cities(city: u32, district: u32, river: u32) -> Vec<CitySpec> {
    let c = demo_city_centre();
    vec![
        self::city("示例市 Demo City", "419900", c.lat, c.lon, 8_000, city),
        self::city("示例市 东湖区 Donghu District", "419902", 30.58, 114.37, 3_000, district),
        self::city("邻省 River City", "429900", 30.36, 113.44, 6_000, river),
    ]
}

/// The demo drug list: common chronic-disease drugs with typical pack prices (fen) and their
/// national-list class.
pub fn demo_drugs() -> Vec<Drug> {
    use ItemCategory::{A, B, C};
    let rows: [(&str, &str, ItemCategory, i64); 23] = [
        ("A10BA02", "盐酸二甲双胍片 Metformin 0.5 g × 60", A, 1_280),
        ("A10BB09", "格列齐特缓释片 Gliclazide MR 30 mg × 30", A, 2_150),
        ("A10BF01", "阿卡波糖片 Acarbose 50 mg × 30", B, 3_860),
        ("A10BH01", "磷酸西格列汀片 Sitagliptin 100 mg × 14", B, 4_580),
        ("A10BK01", "达格列净片 Dapagliflozin 10 mg × 14", B, 5_230),
        ("A10AE04", "甘精胰岛素注射液 Insulin glargine 300 IU", B, 7_890),
        ("C08CA01", "苯磺酸氨氯地平片 Amlodipine 5 mg × 28", A, 1_855),
        ("C08CA05", "硝苯地平控释片 Nifedipine CR 30 mg × 12", B, 3_280),
        ("C09CA03", "缬沙坦胶囊 Valsartan 80 mg × 28", B, 2_690),
        ("C09CA01", "氯沙坦钾片 Losartan 50 mg × 14", B, 2_170),
        ("C07AB02", "酒石酸美托洛尔片 Metoprolol 25 mg × 20", A, 650),
        ("C10AA05", "阿托伐他汀钙片 Atorvastatin 20 mg × 28", A, 2_460),
        ("C10AA07", "瑞舒伐他汀钙片 Rosuvastatin 10 mg × 28", B, 3_120),
        ("B01AC06", "阿司匹林肠溶片 Aspirin EC 100 mg × 30", A, 1_590),
        ("B01AC04", "硫酸氢氯吡格雷片 Clopidogrel 75 mg × 28", B, 4_230),
        ("H03AA01", "左甲状腺素钠片 Levothyroxine 50 µg × 100", A, 2_980),
        ("A02BC01", "奥美拉唑肠溶胶囊 Omeprazole 20 mg × 28", A, 1_460),
        ("R03AK07", "布地奈德福莫特罗粉吸入剂 Budesonide/formoterol × 60", B, 16_800),
        ("R03BB04", "噻托溴铵粉雾剂 Tiotropium 18 µg × 30", B, 13_200),
        ("J05AF10", "恩替卡韦分散片 Entecavir 0.5 mg × 28", A, 1_680),
        ("ZC-DSDW", "复方丹参滴丸 Compound Danshen dripping pills × 180", B, 2_590),
        ("A12AX", "碳酸钙D3片 Calcium carbonate with D3 × 60", C, 4_500),
        ("X-Q10", "辅酶Q10胶囊 Coenzyme Q10 × 60", C, 9_800),
    ];
    rows.iter()
        .map(|&(code, name, category, price)| Drug {
            code: code.to_string(),
            name: name.to_string(),
            category,
            reference_price: Fen(price),
        })
        .collect()
}

/// A typical 8-item chronic prescription (diabetes, hypertension, lipids) over the demo
/// drug list: four class A, three class B and one class C supplement.
pub fn demo_prescription() -> Prescription {
    let items = [
        ("A10BA02", 2),
        ("C08CA01", 2),
        ("C10AA05", 1),
        ("B01AC06", 1),
        ("C09CA03", 2),
        ("A10BF01", 2),
        ("ZC-DSDW", 1),
        ("A12AX", 1),
    ];
    Prescription {
        items: items
            .iter()
            .map(|&(code, quantity)| PrescriptionItem { drug_code: code.to_string(), quantity })
            .collect(),
    }
}

/// SplitMix64: small, fast, and the same on every platform.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; returns 0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const CHAINS: [&str; 8] = [
    "仁心大药房 Renxin Pharmacy",
    "康泰药房 Kangtai Pharmacy",
    "平安堂 Ping'an Tang",
    "民生药房 Minsheng Pharmacy",
    "健民药店 Jianmin Drugstore",
    "百草堂 Baicao Tang",
    "益寿药房 Yishou Pharmacy",
    "惠民大药房 Huimin Pharmacy",
];

fn every_day(opens_min: u16, closes_min: u16) -> Vec<OpeningSlot> {
    (1..=7).map(|weekday| OpeningSlot { weekday, opens_min, closes_min }).collect()
}

/// Opening hours mix: 10 % around the clock, 55 % 08:00–22:00 daily, 20 % 08:30–20:30 on
/// weekdays and 09:00–18:00 at weekends, 10 % 07:30–23:30 daily, 5 % night pharmacies
/// 20:00–08:00 (overnight).
fn hours(rng: &mut SplitMix64) -> OpeningHours {
    let slots = match rng.below(100) {
        0..=9 => return OpeningHours::Always,
        10..=64 => every_day(8 * 60, 22 * 60),
        65..=84 => (1..=7)
            .map(|weekday| {
                if weekday <= 5 {
                    OpeningSlot { weekday, opens_min: 8 * 60 + 30, closes_min: 20 * 60 + 30 }
                } else {
                    OpeningSlot { weekday, opens_min: 9 * 60, closes_min: 18 * 60 }
                }
            })
            .collect(),
        85..=94 => every_day(7 * 60 + 30, 23 * 60 + 30),
        _ => every_day(20 * 60, 8 * 60),
    };
    OpeningHours::Weekly { slots }
}

/// Delivery: 40 % deliver, radius 3/4/5/8 km, fee ¥0/3/5/8, dispatch 15/20/30/45 minutes.
fn delivery(rng: &mut SplitMix64) -> Option<DeliveryTerms> {
    if rng.below(10) >= 4 {
        return None;
    }
    let pick = |rng: &mut SplitMix64, options: [u32; 4]| options[rng.below(4) as usize];
    Some(DeliveryTerms {
        radius_m: pick(rng, [3_000, 4_000, 5_000, 8_000]),
        fee: Fen(i64::from(pick(rng, [0, 300, 500, 800]))),
        dispatch_minutes: pick(rng, [15, 20, 30, 45]),
    })
}

/// One generated pharmacy.
fn pharmacy(spec: &CatalogueSpec, drugs: &[Drug], total_weight: u64, index: u32) -> Option<Pharmacy> {
    let mut rng = SplitMix64::new(spec.seed ^ u64::from(index).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    rng.next_u64();
    let mut pick = rng.below(total_weight);
    let home = spec.cities.iter().find(|c| {
        let w = u64::from(c.weight);
        if pick < w {
            true
        } else {
            pick -= w;
            false
        }
    })?;
    let north = rng.gaussian() * f64::from(home.spread_m);
    let east = rng.gaussian() * f64::from(home.spread_m);
    let lat = (home.centre.lat + north / METRES_PER_DEGREE).clamp(-89.9, 89.9);
    let mut lon = home.centre.lon + east / (METRES_PER_DEGREE * home.centre.lat.to_radians().cos().max(0.01));
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    let name = format!("{} {}", CHAINS[rng.below(CHAINS.len() as u64) as usize], index);
    let hours = hours(&mut rng);
    let delivery = delivery(&mut rng);
    let stock = drugs
        .iter()
        .map(|drug| {
            // ±30 % around the reference price, rounded half up to the fen.
            let factor = 7_000 + rng.below(6_001) as i64;
            let unit_price = Fen((drug.reference_price.0 * factor + 5_000) / 10_000);
            let available = if rng.below(10) == 0 { 0 } else { 1 + rng.below(120) as u32 };
            StockLine { drug_code: drug.code.clone(), unit_price, available }
        })
        .collect();
    Some(Pharmacy {
        id: format!("PH{index:07}"),
        name,
        region: home.region.clone(),
        location: GeoPoint::new(lat, lon),
        hours,
        delivery,
        stock,
    })
}

/// Generates the catalogue the spec describes, over [`demo_drugs`]: every pharmacy lists
/// every drug at ±30 % of its reference price, each line out of stock with probability 1/10.
/// No cities (or zero weight) gives no pharmacies.
pub fn generate(spec: &CatalogueSpec) -> CatalogueData {
    let drugs = demo_drugs();
    let total_weight: u64 = spec.cities.iter().map(|c| u64::from(c.weight)).sum();
    let pharmacies = if total_weight == 0 {
        Vec::new()
    } else {
        (0..spec.pharmacies).filter_map(|i| pharmacy(spec, &drugs, total_weight, i)).collect()
    };
    CatalogueData { drugs, pharmacies }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pharmacy::{haversine_m, Catalogue};

    #[test]
    fn generation_is_deterministic_and_a_prefix_of_larger_catalogues() {
        let small = generate(&CatalogueSpec::national(7, 200));
        assert_eq!(small, generate(&CatalogueSpec::national(7, 200)));
        let large = generate(&CatalogueSpec::national(7, 500));
        assert_eq!(small.pharmacies[..], large.pharmacies[..200]);
        assert_ne!(small, generate(&CatalogueSpec::national(8, 200)));
        Catalogue::new(large).unwrap();
    }

    #[test]
    fn generated_catalogue_has_the_stated_mixes() {
        let data = generate(&CatalogueSpec::demo_city(42, 5_000));
        let n = data.pharmacies.len() as f64;
        let share = |f: &dyn Fn(&Pharmacy) -> bool| data.pharmacies.iter().filter(|p| f(p)).count() as f64 / n;
        let always = share(&|p| p.hours == OpeningHours::Always);
        let delivers = share(&|p| p.delivery.is_some());
        let lines = (data.pharmacies.len() * data.drugs.len()) as f64;
        let out = data.pharmacies.iter().flat_map(|p| &p.stock).filter(|l| l.available == 0).count() as f64 / lines;
        assert!((0.08..0.12).contains(&always), "24h share {always}");
        assert!((0.37..0.43).contains(&delivers), "delivery share {delivers}");
        assert!((0.09..0.11).contains(&out), "out of stock share {out}");
        for p in &data.pharmacies {
            for (line, drug) in p.stock.iter().zip(&data.drugs) {
                let r = drug.reference_price.0;
                assert!(line.unit_price.0 * 10 >= r * 7 - 10 && line.unit_price.0 * 10 <= r * 13 + 10);
            }
        }
        // The city-level cluster: about 95 % within 2.45 spreads (19.6 km) of the centre.
        let city: Vec<_> = data.pharmacies.iter().filter(|p| p.region == "419900").collect();
        let near = city.iter().filter(|p| haversine_m(demo_city_centre(), p.location) <= 19_600).count();
        let fraction = near as f64 / city.len() as f64;
        assert!((0.93..0.97).contains(&fraction), "{fraction}");
    }
}
