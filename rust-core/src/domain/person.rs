//! Insured persons: the national schemes, the platform's person record, ages and masked
//! phone numbers (pure).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::{Field, InvalidInput};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The national insurance schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InsuranceType {
    /// 职工基本医疗保险, in work.
    EmployeeActive,
    /// 职工基本医疗保险, retired.
    EmployeeRetired,
    /// 城乡居民基本医疗保险.
    Resident,
}

/// An insured person as the platform knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PersonRecord {
    pub person_id: String,
    pub name: String,
    pub phone: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub insurance_type: InsuranceType,
    /// Six-digit administrative code of the pooling region (统筹区).
    pub pooling_region: String,
    pub pooling_region_name: String,
    pub household_id: String,
}

/// Parses a `YYYY-MM-DD` birth date.
pub fn parse_birth_date(text: &str) -> Result<NaiveDate, InvalidInput> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| InvalidInput::new(Field::BirthDate, "a birth date is YYYY-MM-DD"))
}

/// Age in whole years on `day` (0 before the first birthday; a 29 February birthday
/// counts on 1 March in common years).
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> u32 {
    if day < birth {
        return 0;
    }
    let mut years = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The calendar day in China Standard Time (UTC+8, no daylight saving) at `at_ms`: the day
/// ages, receipts and monthly limits are counted on.
pub fn china_date(at_ms: i64) -> NaiveDate {
    const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
    let days = at_ms.saturating_add(CST_OFFSET_MS).div_euclid(86_400_000);
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days)))
        .unwrap_or_default()
}

/// A phone number with the middle four digits hidden, for display and logs.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "***".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_birth_date(s).unwrap()
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(d("1948-03-15"), d("2026-03-14")), 77);
        assert_eq!(age_on(d("1948-03-15"), d("2026-03-15")), 78);
        assert_eq!(age_on(d("2017-06-01"), d("2026-11-23")), 9);
        assert_eq!(age_on(d("2020-02-29"), d("2021-02-28")), 0);
        assert_eq!(age_on(d("2020-02-29"), d("2021-03-01")), 1);
        assert_eq!(age_on(d("2030-01-01"), d("2026-01-01")), 0);
    }

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13800000001"), "138****0001");
        assert_eq!(mask_phone("x"), "***");
    }
}
