//! Wire values written for people, shared by every client: thousands separators, money with its
//! currency, instants in UTC and durations as a clock.

use crate::v1 as pb;

/// Groups digits in threes: 142000 → "142,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1,234.50 EUR"; "-" when absent.
pub fn money(m: Option<&pb::Money>) -> String {
    match m {
        Some(m) => money_minor(m.amount_minor, &m.currency),
        None => "-".into(),
    }
}

/// An amount in minor units with its currency, in the currency's own decimals:
/// (123450, "EUR") → "1,234.50 EUR", (5000, "JPY") → "5,000 JPY". A code Taquilla does not
/// price in (an event created before codes were checked) shows its minor units as they are.
pub fn money_minor(amount_minor: i64, currency: &str) -> String {
    match crate::money::Currency::from_code(currency) {
        Ok(known) => known.format(amount_minor),
        Err(_) => format!("{amount_minor} {currency} (minor units)"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Unix milliseconds as "2026-12-09 20:30 UTC"; "-" for zero or negative.
pub fn utc_time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let secs = ms.div_euclid(1_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

/// Where a ticket's seat is, as a fan or a steward reads it: "Block A row A seat 4", or
/// "Floor (standing)" for a general-admission place.
pub fn seat_place(seat: Option<&pb::SeatRef>) -> String {
    match seat {
        None => "-".into(),
        Some(seat) if seat.row.is_empty() => format!("{} (standing)", seat.section_name),
        Some(seat) => format!(
            "{} row {} seat {}",
            seat.section_name, seat.row, seat.number
        ),
    }
}

/// An instant to the second, in UTC: "2026-03-30 19:02:13 UTC" (a door scan's time).
pub fn utc_time_seconds(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A countdown in whole seconds as "mm:ss", or "h:mm:ss" from an hour up; never negative.
pub fn clock(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3_600 {
        format!("{}:{:02}:{:02}", s / 3_600, s % 3_600 / 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A rough duration for an estimate: "under a minute", "about 12 min", "about 2 h 05 min".
pub fn approx_duration(seconds: u64) -> String {
    match seconds {
        0..60 => "under a minute".into(),
        60..3_600 => format!("about {} min", seconds.div_ceil(60)),
        _ => {
            let minutes = seconds.div_ceil(60);
            format!("about {} h {:02} min", minutes / 60, minutes % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_money() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(142_000), "142,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(money_minor(123_450, "EUR"), "1,234.50 EUR");
        assert_eq!(money_minor(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(None), "-");
        assert_eq!(
            utc_time_seconds(1_774_897_333_000),
            "2026-03-30 19:02:13 UTC"
        );
    }

    #[test]
    fn times() {
        assert_eq!(utc_time(0), "-");
        assert_eq!(utc_time(1_765_310_400_000), "2025-12-09 20:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00 UTC");
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2026, 12, 31), (2100, 3, 1)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(clock(-3), "00:00");
        assert_eq!(clock(599), "09:59");
        assert_eq!(clock(3_725), "1:02:05");
        assert_eq!(approx_duration(59), "under a minute");
        assert_eq!(approx_duration(61), "about 2 min");
        assert_eq!(approx_duration(7_500), "about 2 h 05 min");
    }
}
