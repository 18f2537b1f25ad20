//! Money as Taquilla takes it: an ISO 4217 currency with its own number of decimals (the
//! exponent: 2 for EUR, 0 for JPY, 3 for KWD), amounts in that currency's minor units, and
//! amounts written by people ("85.50") parsed without signs, rounding or guessing.
//!
//! The currency table is the `iso_currency` crate's (ISO 4217 as published); Taquilla accepts
//! the currencies in circulation that have minor units. Funds (BOV, CLF, …), precious metals
//! and special drawing rights (XAU, XDR, …) and codes ISO has superseded are refused, each with
//! a sentence saying why.

use std::fmt;

/// A currency an event can be priced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u32,
}

/// Why a currency code or an amount was refused; the message is for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyError(String);

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MoneyError {}

/// Largest exponent the table holds today is 4 (CLF, a fund, refused); kept as a bound so a
/// power of ten always fits.
const MAX_EXPONENT: u32 = 4;

impl Currency {
    /// The currency with this ISO 4217 alphabetic code ("EUR"), if Taquilla can price in it.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError(format!(
                "currency {code:?} must be an ISO 4217 code: three capital letters such as \"EUR\", \"USD\" or \"JPY\""
            )));
        }
        let unknown = || MoneyError(format!("currency {code:?} is not an ISO 4217 code"));
        let iso = iso_currency::Currency::from_code(code).ok_or_else(unknown)?;
        if let Some(successor) = iso.is_superseded() {
            return Err(MoneyError(format!(
                "currency {code} has been replaced by {}; price the event in {}",
                successor.code(),
                successor.code()
            )));
        }
        if iso.is_fund() || iso.is_special() {
            return Err(MoneyError(format!(
                "currency {code} ({}) is not a currency fans pay in",
                iso.name()
            )));
        }
        let exponent = iso
            .exponent()
            .map(u32::from)
            .filter(|e| *e <= MAX_EXPONENT)
            .ok_or_else(|| {
                MoneyError(format!(
                    "currency {code} ({}) has no minor unit in ISO 4217",
                    iso.name()
                ))
            })?;
        Ok(Currency {
            code: iso,
            exponent,
        })
    }

    /// The ISO 4217 alphabetic code.
    pub fn code(self) -> &'static str {
        self.code.code()
    }

    /// Decimals of the currency's minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// Minor units in one major unit: 100 for EUR, 1 for JPY, 1,000 for KWD.
    pub fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent)
    }

    /// Parses an amount as a person writes it ("85", "85.5", "85.50" in EUR; "5000" in JPY)
    /// into minor units. Refuses signs, spaces inside, empty parts ("5.", ".5"), more
    /// decimals than the currency has, and amounts that do not fit.
    pub fn parse_amount(self, input: &str) -> Result<i64, MoneyError> {
        let text = input.trim();
        let example = match self.exponent {
            0 => "5000".to_string(),
            e => format!("5.{}", "5".repeat(e as usize)),
        };
        let bad = |why: &str| {
            MoneyError(format!(
                "{input:?} is not an amount in {}: {why} (write it like {example})",
                self.code()
            ))
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.starts_with(['-', '+']) {
            return Err(bad("amounts have no sign"));
        }
        if !digits_only(whole) {
            return Err(bad("it must start with digits"));
        }
        let fraction = match fraction {
            None => "",
            Some(_) if self.exponent == 0 => {
                return Err(bad(&format!("{} has no decimals", self.code())));
            }
            Some(f) if !digits_only(f) => return Err(bad("digits must follow the point")),
            Some(f) if f.len() > self.exponent as usize => {
                return Err(bad(&format!(
                    "{} has {} decimals",
                    self.code(),
                    self.exponent
                )));
            }
            Some(f) => f,
        };
        let too_large = || bad("it is too large");
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let padded = format!("{fraction:0<width$}", width = self.exponent as usize);
        let fraction: i64 = if padded.is_empty() {
            0
        } else {
            padded
                .parse()
                .map_err(|_| bad("digits must follow the point"))?
        };
        whole
            .checked_mul(self.minor_per_major())
            .and_then(|minor| minor.checked_add(fraction))
            .ok_or_else(too_large)
    }

    /// An amount in major units written as a number in a layout file (`price = 85.5`), in
    /// minor units; refuses negative amounts and more decimals than the currency has.
    pub fn from_major(self, amount: f64) -> Result<i64, MoneyError> {
        let minor = amount * self.minor_per_major() as f64;
        if !minor.is_finite() || minor < 0.0 || minor > i64::MAX as f64 {
            return Err(MoneyError(format!(
                "{amount} is not an amount in {}: it must be zero or more",
                self.code()
            )));
        }
        if (minor - minor.round()).abs() > 1e-6 {
            return Err(MoneyError(format!(
                "{amount} has more decimals than {} has ({})",
                self.code(),
                self.exponent
            )));
        }
        Ok(minor.round() as i64)
    }

    /// An amount in minor units as people read it: 123450 EUR → "1,234.50 EUR", 5000 JPY →
    /// "5,000 JPY", 1500 KWD → "1.500 KWD".
    pub fn format(self, amount_minor: i64) -> String {
        let sign = if amount_minor < 0 { "-" } else { "" };
        let magnitude = amount_minor.unsigned_abs();
        let per_major = self.minor_per_major().unsigned_abs();
        let whole = crate::display::thousands(magnitude / per_major);
        match self.exponent {
            0 => format!("{sign}{whole} {}", self.code()),
            e => format!(
                "{sign}{whole}.{:0width$} {}",
                magnitude % per_major,
                self.code(),
                width = e as usize
            ),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::from_code("EUR").expect("EUR")
    }

    #[test]
    fn exponents_are_the_currencys_own() {
        for (code, exponent) in [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3)] {
            assert_eq!(
                Currency::from_code(code).map(Currency::exponent),
                Ok(exponent),
                "{code}"
            );
        }
    }

    #[test]
    fn codes_that_are_not_currencies_fans_pay_in_are_refused() {
        for (code, says) in [
            ("euro", "three capital letters"),
            ("eur", "three capital letters"),
            ("ABC", "not an ISO 4217 code"),
            ("XAU", "not a currency fans pay in"),
            ("CLF", "not a currency fans pay in"),
            ("XXX", "not a currency fans pay in"),
            ("VES", "replaced by VED"),
        ] {
            let error = Currency::from_code(code).expect_err(code).to_string();
            assert!(error.contains(says), "{code}: {error}");
        }
    }

    #[test]
    fn amounts_are_read_in_the_currencys_decimals() {
        let parse = |code: &str, input: &str| {
            Currency::from_code(code)
                .and_then(|c| c.parse_amount(input))
                .ok()
        };
        assert_eq!(parse("EUR", "5.50"), Some(550));
        assert_eq!(parse("EUR", "5.5"), Some(550));
        assert_eq!(parse("EUR", " 5 "), Some(500));
        assert_eq!(parse("EUR", "0"), Some(0));
        assert_eq!(parse("JPY", "5000"), Some(5000));
        assert_eq!(parse("KWD", "1.5"), Some(1500));
        assert_eq!(parse("KWD", "1.005"), Some(1005));
        for (code, bad) in [
            ("EUR", "5.-1"),
            ("EUR", "-0.50"),
            ("EUR", "+5"),
            ("EUR", "-1"),
            ("EUR", "5.555"),
            ("EUR", "5."),
            ("EUR", ".5"),
            ("EUR", ""),
            ("EUR", "5 .50"),
            ("EUR", "1e3"),
            ("EUR", "５"),
            ("EUR", "99999999999999999999"),
            ("EUR", "92233720368547758.08"),
            ("JPY", "5.0"),
            ("KWD", "1.0005"),
        ] {
            assert_eq!(parse(code, bad), None, "{code} {bad:?}");
        }
        let error = eur().parse_amount("5.-1").expect_err("refused").to_string();
        assert!(error.contains("write it like 5.55"), "{error}");
    }

    #[test]
    fn amounts_are_written_in_the_currencys_decimals() {
        let show = |code: &str, minor: i64| Currency::from_code(code).map(|c| c.format(minor));
        assert_eq!(show("EUR", 123_450), Ok("1,234.50 EUR".into()));
        assert_eq!(show("EUR", -5), Ok("-0.05 EUR".into()));
        assert_eq!(show("JPY", 1_234_567), Ok("1,234,567 JPY".into()));
        assert_eq!(show("KWD", 1_500), Ok("1.500 KWD".into()));
        assert_eq!(show("EUR", i64::MIN).map(|s| s.starts_with('-')), Ok(true));
    }

    #[test]
    fn major_amounts_in_layouts_follow_the_exponent() {
        let jpy = Currency::from_code("JPY").expect("JPY");
        assert_eq!(jpy.from_major(5000.0), Ok(5000));
        assert!(jpy.from_major(5000.5).is_err());
        assert_eq!(eur().from_major(85.5), Ok(8550));
        assert!(eur().from_major(1.005).is_err());
        assert!(eur().from_major(-1.0).is_err());
        assert!(eur().from_major(f64::NAN).is_err());
    }

    fn currencies() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec!["EUR", "USD", "GBP", "JPY", "KRW", "KWD", "BHD", "CHF"])
            .prop_map(|code| Currency::from_code(code).expect("a known currency"))
    }

    proptest! {
        /// What `format` writes, `parse_amount` reads back to the same minor units.
        #[test]
        fn written_amounts_read_back(currency in currencies(), minor in 0_i64..=i64::MAX) {
            let written = currency.format(minor);
            let number = written
                .strip_suffix(&format!(" {}", currency.code()))
                .expect("the code follows the number")
                .replace(',', "");
            prop_assert_eq!(currency.parse_amount(&number), Ok(minor));
        }

        /// A sign anywhere makes the amount refused, never read as another amount.
        #[test]
        fn signed_amounts_are_refused(
            currency in currencies(),
            whole in 0_u32..100_000,
            fraction in 0_u32..1_000,
            sign in prop::sample::select(vec!["-", "+"]),
            place in 0_usize..3,
        ) {
            let text = match place {
                0 => format!("{sign}{whole}.{fraction}"),
                1 => format!("{whole}.{sign}{fraction}"),
                _ => format!("{whole}{sign}.{fraction}"),
            };
            prop_assert!(currency.parse_amount(&text).is_err(), "{} accepted", text);
        }

        /// Whatever is typed, parsing answers (no panic), and what it accepts is digits with
        /// at most the currency's decimals.
        #[test]
        fn any_text_is_answered(currency in currencies(), text in "\\PC{0,24}") {
            if let Ok(minor) = currency.parse_amount(&text) {
                prop_assert!(minor >= 0);
                let trimmed = text.trim();
                prop_assert!(trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
                let decimals = trimmed.split_once('.').map_or(0, |(_, f)| f.len());
                prop_assert!(decimals <= currency.exponent() as usize);
            }
        }

        /// Adding decimals beyond the currency's is refused rather than rounded.
        #[test]
        fn extra_decimals_are_refused(currency in currencies(), whole in 0_u32..1_000_000) {
            let text = format!("{whole}.{}", "1".repeat(currency.exponent() as usize + 1));
            prop_assert!(currency.parse_amount(&text).is_err());
        }
    }
}
