//! Times on the command line: RFC 3339 with `Z` or a UTC offset (`2026-12-09T10:00:00Z`,
//! `2026-12-09T11:00+01:00`), `now`, `+DURATION` from now (`+90s`, `+10m`, `+2h`, `+1d`), or
//! Unix milliseconds. Dates are read by `jiff`: a day the month does not have, an hour past 23
//! or an offset out of range is refused, never carried into the next month.

use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a time given on the command line into Unix milliseconds.
pub fn parse_when(input: &str) -> anyhow::Result<i64> {
    parse_at(input, now_ms())
}

const FORMS: &str = "use 2026-12-09T10:00:00Z, an offset such as 2026-12-09T11:00:00+01:00, \
     now, +10m, or Unix milliseconds";

fn parse_at(input: &str, now: i64) -> anyhow::Result<i64> {
    let s = input.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rest) = s.strip_prefix('+') {
        return after(rest, now).ok_or_else(|| {
            anyhow::anyhow!(
                "{input:?} is not a time from now: write + then a whole number and s, m, h or d \
                 (+90s, +10m, +2h, +1d)"
            )
        });
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| anyhow::anyhow!("{input:?} is too large for Unix milliseconds"));
    }
    match s.parse::<jiff::Timestamp>() {
        Ok(at) => Ok(at.as_millisecond()),
        Err(error) => {
            // A date and time without Z or an offset is a time somewhere; say which part is
            // missing rather than guessing the zone.
            let wall_clock = s.parse::<jiff::civil::DateTime>().is_ok();
            if wall_clock {
                anyhow::bail!("{input:?} has no time zone: add Z for UTC or an offset like +01:00")
            }
            anyhow::bail!("{input:?} is not a time ({error}); {FORMS}")
        }
    }
}

/// `now` plus "90s", "10m", "2h" or "1d"; `None` for anything else or a sum that overflows.
fn after(rest: &str, now: i64) -> Option<i64> {
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = rest.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)?.checked_add(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_at("2026-03-30T19:00:00Z", 0).ok(),
            Some(1_774_897_200_000)
        );
        assert_eq!(
            parse_at("2026-03-30T19:00Z", 0).ok(),
            Some(1_774_897_200_000)
        );
        assert_eq!(
            parse_at("2026-03-30T21:00:00+02:00", 0).ok(),
            Some(1_774_897_200_000)
        );
        assert_eq!(
            parse_at("2026-03-30T14:30-04:30", 0).ok(),
            Some(1_774_897_200_000)
        );
        assert_eq!(parse_at("now", 5).ok(), Some(5));
        assert_eq!(parse_at("+10m", 5).ok(), Some(600_005));
        assert_eq!(parse_at("1700000000000", 0).ok(), Some(1_700_000_000_000));
        for bad in [
            "tomorrow",
            "2026-13-01T00:00Z",
            "2026-02-31T00:00Z",
            "2026-02-29T00:00Z",
            "2026-04-31T12:00Z",
            "2026-03-30T24:00Z",
            "2026-03-30T19:60Z",
            "2026-03-30T19:00+01:60",
            "+5y",
            "+",
            "+m",
            "+99999999999999999d",
            "99999999999999999999999",
            "",
            "2026-03-30 19:00",
        ] {
            assert!(parse_at(bad, 0).is_err(), "{bad}");
        }
        assert_eq!(
            parse_at("2028-02-29T00:00Z", 0).ok(),
            Some(1_835_395_200_000),
            "a leap day in a leap year"
        );
        let zoneless = parse_at("2026-03-30T19:00", 0)
            .expect_err("no zone")
            .to_string();
        assert!(zoneless.contains("add Z for UTC"), "{zoneless}");
    }

    proptest! {
        /// An instant written with any offset reads back as the same instant.
        #[test]
        fn offsets_name_the_same_instant(
            seconds in 0_i64..4_102_444_800,
            offset_minutes in -(14 * 60)..=(14 * 60_i32),
        ) {
            let at = jiff::Timestamp::from_second(seconds).expect("in range");
            let offset = jiff::tz::Offset::from_seconds(offset_minutes * 60).expect("in range");
            let written = at.display_with_offset(offset).to_string();
            prop_assert_eq!(parse_at(&written, 0).ok(), Some(seconds * 1_000), "{}", written);
        }

        /// A day past the month's last (29 February in a common year, 31 April, day 45) is
        /// refused, whatever the month and year.
        #[test]
        fn days_the_month_lacks_are_refused(
            year in 1971_i16..2100,
            month in 1_i8..=12,
            past in 1_i8..=60,
        ) {
            let day = jiff::civil::date(year, month, 1).days_in_month() + past;
            let text = format!("{year:04}-{month:02}-{day:02}T10:00:00Z");
            prop_assert!(parse_at(&text, 0).is_err(), "{} accepted", text);
        }

        /// Whatever is typed, the parser answers: a time or an error, never a panic.
        #[test]
        fn any_text_is_answered(text in "\\PC{0,32}", now in 0_i64..4_102_444_800_000) {
            let _ = parse_at(&text, now);
        }
    }
}
