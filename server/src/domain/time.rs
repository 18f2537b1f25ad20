//! Calendar arithmetic for the few places that need a date (demo event dates, display), without
//! a date-time dependency.

use taquilla_proto::display::{civil_from_days, days_from_civil};

/// Milliseconds since the Unix epoch of `year-month-day hour:minute` UTC.
pub fn utc_ms(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    (days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60) * 1_000
}

/// `YYYY-MM-DD` of a Unix-millisecond time, UTC.
pub fn utc_date(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_ms(1970, 1, 1, 0, 0), 0);
        assert_eq!(utc_ms(2000, 3, 1, 0, 0), 951_868_800_000);
        assert_eq!(utc_ms(2026, 3, 30, 19, 0), 1_774_897_200_000);
        assert_eq!(utc_date(1_774_897_200_000), "2026-03-30");
        assert_eq!(utc_date(951_868_800_000 - 1), "2000-02-29");
    }

    #[test]
    fn round_trips_over_centuries() {
        for year in [1900, 1999, 2024, 2100] {
            for (month, day) in [(1, 1), (2, 28), (12, 31)] {
                let ms = utc_ms(year, month, day, 12, 0);
                assert_eq!(utc_date(ms), format!("{year:04}-{month:02}-{day:02}"));
            }
        }
    }
}
