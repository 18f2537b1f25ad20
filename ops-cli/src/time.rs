//! Times on the command line: RFC 3339 in UTC (`2026-12-09T10:00:00Z`), `now`, `+DURATION`
//! from now (`+90s`, `+10m`, `+2h`), or Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use taquilla_proto::display::days_from_civil;

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

fn parse_at(input: &str, now: i64) -> anyhow::Result<i64> {
    let s = input.trim();
    let bad = || {
        anyhow::anyhow!(
            "{input:?} is not a time: use 2026-12-09T10:00:00Z (UTC), now, +10m, or Unix milliseconds"
        )
    };
    if s == "now" {
        return Ok(now);
    }
    if let Some(rest) = s.strip_prefix('+') {
        let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = rest.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        return Ok(now + n * ms);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, clock) = body.split_once('T').ok_or_else(bad)?;
    let date: Vec<i64> = date
        .split('-')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let clock: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [year, month, day] = date[..] else {
        return Err(bad());
    };
    let (hour, minute, second) = match clock[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    Ok(((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parse_at("now", 5).ok(), Some(5));
        assert_eq!(parse_at("+10m", 5).ok(), Some(600_005));
        assert_eq!(parse_at("1700000000000", 0).ok(), Some(1_700_000_000_000));
        for bad in ["tomorrow", "2026-13-01T00:00Z", "+5y", "2026-03-30 19:00"] {
            assert!(parse_at(bad, 0).is_err(), "{bad}");
        }
    }
}
