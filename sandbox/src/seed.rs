//! The deterministic demo seed, documented in `docs/sandbox.md` like a payment sandbox's test
//! cards: the demo city, its pooling regions, insured persons of every age band and scheme,
//! and their households. Every verification code in the sandbox is [`SANDBOX_CODE`].

use carepass_core::wire::{InsuranceType, PersonRecord};

/// The verification code the sandbox accepts for every phone.
pub const SANDBOX_CODE: &str = "123456";

pub const CITY_REGION: (&str, &str) = ("419900", "示例市 Demo City (市本级)");
pub const DISTRICT_REGION: (&str, &str) = ("419902", "示例市 东湖区 Donghu District");
pub const OTHER_CITY_REGION: (&str, &str) = ("429900", "邻省 River City");

fn person(
    id: &str,
    name: &str,
    phone: &str,
    birth: &str,
    insurance: InsuranceType,
    region: (&str, &str),
    household: &str,
) -> PersonRecord {
    PersonRecord {
        person_id: id.into(),
        name: name.into(),
        phone: phone.into(),
        birth_date: birth.into(),
        insurance_type: insurance,
        pooling_region: region.0.into(),
        pooling_region_name: region.1.into(),
        household_id: household.into(),
    }
}

/// The demo persons. Ages are as of 2026-11-23 (they are computed from birth dates at the
/// platform's current date).
pub fn demo_persons() -> Vec<PersonRecord> {
    use InsuranceType::*;
    vec![
        // Household H-1001: the demo family.
        person("P1001", "张伟 Zhang Wei", "13800000001", "1986-04-12", EmployeeActive, CITY_REGION, "H-1001"),
        person("P1002", "张建国 Zhang Jianguo", "13800000002", "1948-03-15", EmployeeRetired, CITY_REGION, "H-1001"),
        person("P1003", "张小雨 Zhang Xiaoyu", "13800000003", "2017-06-01", Resident, CITY_REGION, "H-1001"),
        person("P1004", "李娜 Li Na", "13800000004", "1988-09-30", EmployeeActive, CITY_REGION, "H-1001"),
        person("P1005", "张小航 Zhang Xiaohang", "13800000005", "2012-01-20", Resident, CITY_REGION, "H-1001"),
        // Household H-2001: an elderly resident living alone in the district.
        person("P2001", "王秀英 Wang Xiuying", "13800000006", "1933-12-02", Resident, DISTRICT_REGION, "H-2001"),
        // Household H-3001: a flexible-employment worker and her newborn, in another region.
        person("P3001", "陈静 Chen Jing", "13800000007", "1995-07-07", EmployeeActive, OTHER_CITY_REGION, "H-3001"),
        person("P3002", "陈安安 Chen Anan", "13800000008", "2026-02-14", Resident, OTHER_CITY_REGION, "H-3001"),
        // Household H-4001: a chronic patient (hypertension, diabetes) for the pharmacy work.
        person("P4001", "刘强 Liu Qiang", "13800000009", "1962-05-05", EmployeeRetired, CITY_REGION, "H-4001"),
        // Household H-5001: a student of 19 on resident insurance.
        person("P5001", "赵敏 Zhao Min", "13800000010", "2007-10-10", Resident, DISTRICT_REGION, "H-5001"),
    ]
}

/// A realistic outpatient bill for the demo: a chronic-disease follow-up (hypertension and
/// type 2 diabetes) with tests and a month of medicine, national codes, 甲/乙/丙 items.
pub fn demo_bill_items() -> Vec<carepass_core::wire::NewBillItem> {
    use carepass_core::domain::settlement::ItemCategory::*;
    use carepass_core::wire::NewBillItem;
    use carepass_core::Fen;
    let item = |code: &str, name: &str, category, quantity, price| NewBillItem {
        item_code: code.into(),
        name: name.into(),
        category,
        quantity,
        unit_price_fen: Fen(price),
    };
    vec![
        item("110200001", "普通门诊诊查费 Outpatient consultation", A, 1, 2_500),
        item("250102015", "糖化血红蛋白测定 HbA1c test", A, 1, 6_000),
        item("250301001", "血清总胆固醇测定 Serum cholesterol", A, 1, 1_500),
        item("XC08CAA010A001010100981", "苯磺酸氨氯地平片 5mg Amlodipine (28 tablets)", A, 2, 1_680),
        item("XA10BAD024A001010104402", "盐酸二甲双胍缓释片 0.5g Metformin XR (30 tablets)", A, 2, 2_350),
        item("XC10AAA150A001010100264", "阿托伐他汀钙片 20mg Atorvastatin (7 tablets)", B, 4, 3_290),
        item("ZZ0000000001", "血压计 Home blood-pressure monitor", C, 1, 19_900),
    ]
}

/// The clinic's request for the demo bill (Dr Wang, cardiology, the demo items) to `phone`.
pub fn demo_bill_request(
    phone: &str,
    items: Vec<carepass_core::wire::NewBillItem>,
) -> carepass_core::wire::IssueBillRequest {
    carepass_core::wire::IssueBillRequest {
        phone: phone.into(),
        hospital: "示例市第一人民医院 Demo City First People's Hospital".into(),
        department: "心血管内科 Cardiology".into(),
        doctor: "王医生 Dr Wang".into(),
        items,
        due_in_minutes: None,
        visit_type: carepass_core::domain::settlement::VisitType::ChronicOutpatient,
        readable_after_ms: None,
    }
}
