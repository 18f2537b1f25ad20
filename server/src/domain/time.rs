//! Calendar arithmetic for the few places that need a date (demo event dates, display), without
//! a date-time dependency.

/// Milliseconds since the Unix epoch of `year-month-day hour:minute` UTC.
pub fn utc_ms(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    let days = days_from_civil(year, month, day);
    (days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60) * 1_000
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of a Unix-millisecond time, UTC.
pub fn utc_date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
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
