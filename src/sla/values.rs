//! Exact value types of contracts: percentages as fractions, money as cents.
//!
//! Both are held exactly (integers), so that an SLA target or a credit tier is compared
//! without rounding: 99.89997% is below 99.9%, whatever a display rounds it to.

use std::fmt;

const PERCENT_HINT: &str = "write a percentage between \"0%\" and \"100%\", such as \"99.9%\"";
const AMOUNT_HINT: &str = "write an amount such as 2000.00 (at most two decimal places)";

/// Why a percentage or an amount was refused; each message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a percentage: {PERCENT_HINT}")]
    NotAPercentage(String),
    #[error("`{0}` has too many digits: {PERCENT_HINT} (at most 9 decimal places)")]
    TooManyDigits(String),
    #[error("`{0}` is above 100%: {PERCENT_HINT}")]
    AboveHundredPercent(String),
    #[error("`{0}` is not an amount: {AMOUNT_HINT}")]
    NotAnAmount(String),
    #[error("`{0}` has more than two decimal places: {AMOUNT_HINT}")]
    TooManyDecimals(String),
    #[error("`{0}` is too large: {AMOUNT_HINT}")]
    TooLarge(String),
}

/// A percentage held exactly as `num / den` of one (e.g. "99.9%" is 999/1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    num: u64,
    den: u64,
}

impl Fraction {
    pub const ZERO: Fraction = Fraction { num: 0, den: 1 };
    pub const ONE: Fraction = Fraction { num: 1, den: 1 };

    /// Parses `"99.9%"`: digits, an optional decimal part of at most 9 digits, a `%`.
    pub fn parse_percent(text: &str) -> Result<Fraction, ValueError> {
        let not_a_percentage = || ValueError::NotAPercentage(text.to_string());
        let Some(number) = text.trim().strip_suffix('%') else {
            return Err(not_a_percentage());
        };
        let number = number.trim();
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac_part) {
            return Err(not_a_percentage());
        }
        if frac_part.len() > 9 || int_part.len() > 3 {
            return Err(ValueError::TooManyDigits(text.to_string()));
        }
        let scale = 10u64.pow(frac_part.len() as u32);
        let int_value: u64 = int_part.parse().map_err(|_| not_a_percentage())?;
        let frac_value: u64 = if frac_part.is_empty() {
            0
        } else {
            frac_part.parse().map_err(|_| not_a_percentage())?
        };
        let num = int_value * scale + frac_value;
        let den = 100 * scale;
        if num > den {
            return Err(ValueError::AboveHundredPercent(text.to_string()));
        }
        Ok(Fraction::new(num, den))
    }

    /// `num / den` in lowest terms. Panics if `den` is 0 (a programming error).
    pub fn new(num: u64, den: u64) -> Fraction {
        assert!(den > 0, "a fraction needs a positive denominator");
        let g = gcd(num, den);
        Fraction {
            num: num / g,
            den: den / g,
        }
    }

    pub fn num(self) -> u64 {
        self.num
    }

    pub fn den(self) -> u64 {
        self.den
    }

    /// The value as a float, for display and JSON only; never for decisions.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Whether `part / whole` is strictly below this fraction, decided exactly.
    pub fn is_above_ratio(self, part: u64, whole: u64) -> bool {
        (part as u128) * (self.den as u128) < (self.num as u128) * (whole as u128)
    }
}

impl fmt::Display for Fraction {
    /// Prints as a percentage with as many decimals as needed (up to 9): "99.9%".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scaled = (self.num as u128) * 100 * 1_000_000_000 / (self.den as u128);
        let int_part = scaled / 1_000_000_000;
        let frac = scaled % 1_000_000_000;
        if frac == 0 {
            write!(f, "{int_part}%")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{int_part}.{}%", frac.trim_end_matches('0'))
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// An amount of money in cents (hundredths of the currency unit), exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses a non-negative decimal amount with at most two decimal places: `2000`, `2000.5`,
    /// `"2000.00"`.
    pub fn parse(text: &str) -> Result<Cents, ValueError> {
        let text = text.trim().replace('_', "");
        let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac_part) {
            return Err(ValueError::NotAnAmount(text));
        }
        if frac_part.len() > 2 {
            return Err(ValueError::TooManyDecimals(text));
        }
        let too_large = || ValueError::TooLarge(text.clone());
        let units: i64 = int_part.parse().map_err(|_| too_large())?;
        let frac: i64 = format!("{frac_part:0<2}").parse().unwrap_or(0);
        units
            .checked_mul(100)
            .and_then(|c| c.checked_add(frac))
            .map(Cents)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// An amount of money in cents held exactly, as a fraction: a credit before it is rounded for
/// issue (tier shares, pro-rata downtime), so that a sum of credits is the sum of the exact
/// amounts, not of their roundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactCents {
    /// In lowest terms; `den > 0`.
    num: i128,
    den: i128,
}

impl ExactCents {
    pub const ZERO: ExactCents = ExactCents { num: 0, den: 1 };

    /// `num / den` cents. Panics if `den` is not positive (a programming error).
    pub fn new(num: i128, den: i128) -> ExactCents {
        assert!(den > 0, "an exact amount needs a positive denominator");
        let g = gcd_i128(num.unsigned_abs(), den as u128) as i128;
        ExactCents {
            num: num / g,
            den: den / g,
        }
    }

    pub fn of(cents: Cents) -> ExactCents {
        ExactCents::new(cents.0 as i128, 1)
    }

    /// `fee × share`, exactly.
    pub fn share_of(fee: Cents, share: Fraction) -> ExactCents {
        ExactCents::new(fee.0 as i128 * share.num() as i128, share.den() as i128)
    }

    pub fn min(self, other: ExactCents) -> ExactCents {
        if self <= other { self } else { other }
    }

    /// Rounded half-up to the cent (half a cent rounds away from zero).
    pub fn round_half_up(self) -> Cents {
        let (num, den) = (self.num.abs(), self.den);
        let rounded = (2 * num + den) / (2 * den);
        Cents((rounded * self.num.signum()) as i64)
    }
}

impl std::ops::Add for ExactCents {
    type Output = ExactCents;

    fn add(self, other: ExactCents) -> ExactCents {
        ExactCents::new(
            self.num * other.den + other.num * self.den,
            self.den * other.den,
        )
    }
}

impl PartialOrd for ExactCents {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ExactCents {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

fn gcd_i128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_parses_exactly() {
        let cases = [
            ("99.9%", 999, 1000),
            ("100%", 1, 1),
            ("0%", 0, 1),
            ("95%", 19, 20),
            ("99.95%", 1999, 2000),
            ("99.89997%", 9_989_997, 10_000_000),
            (" 10 % ", 1, 10),
        ];
        for (text, num, den) in cases {
            let f = Fraction::parse_percent(text).unwrap();
            assert_eq!((f.num(), f.den()), (num, den), "{text}");
        }
    }

    #[test]
    fn percent_rejects_garbage() {
        for text in [
            "99.9",
            "abc%",
            "%",
            "-1%",
            "100.1%",
            "1e2%",
            "99.9999999999%",
            ".5%",
        ] {
            assert!(Fraction::parse_percent(text).is_err(), "{text}");
        }
    }

    #[test]
    fn percent_displays_minimal_decimals() {
        for text in ["99.9%", "100%", "0%", "99.95%", "99.89997%"] {
            assert_eq!(Fraction::parse_percent(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn exact_comparison_is_not_fooled_by_rounding() {
        let target = Fraction::parse_percent("99.9%").unwrap();
        // 99.89997% of 10_000_000 is 9_989_997: below.
        assert!(target.is_above_ratio(9_989_997, 10_000_000));
        // exactly 99.9%: not below.
        assert!(!target.is_above_ratio(999, 1000));
        assert!(!target.is_above_ratio(1, 1));
    }

    #[test]
    fn cents_parse() {
        assert_eq!(Cents::parse("2000").unwrap(), Cents(200_000));
        assert_eq!(Cents::parse("2000.5").unwrap(), Cents(200_050));
        assert_eq!(Cents::parse("2000.05").unwrap(), Cents(200_005));
        assert_eq!(Cents::parse("1_000.00").unwrap(), Cents(100_000));
        assert!(Cents::parse("2000.005").is_err());
        assert!(Cents::parse("-5").is_err());
        assert!(Cents::parse("12a").is_err());
        assert_eq!(Cents(200_005).to_string(), "2000.05");
    }

    #[test]
    fn exact_amounts_add_before_they_round() {
        // 10% of 333.33 is 33.333 and of 333.34 is 33.334: issued 33.33 each, but the exact
        // sum 33.333 + 33.333 + 33.334 = 100.000 rounds to 100.00, not to 3 × 33.33 = 99.99.
        let ten = Fraction::parse_percent("10%").unwrap();
        let a = ExactCents::share_of(Cents(33_333), ten);
        let b = ExactCents::share_of(Cents(33_334), ten);
        assert_eq!(a.round_half_up(), Cents(3_333));
        assert_eq!(b.round_half_up(), Cents(3_333));
        assert_eq!((a + a + b).round_half_up(), Cents(10_000));
        // Half a cent rounds up: 0.5 → 1, 2.5 → 3; 2.4999 → 2.
        assert_eq!(ExactCents::new(1, 2).round_half_up(), Cents(1));
        assert_eq!(ExactCents::new(5, 2).round_half_up(), Cents(3));
        assert_eq!(ExactCents::new(24_999, 10_000).round_half_up(), Cents(2));
        assert!(ExactCents::new(1, 3) < ExactCents::new(34, 100));
        assert_eq!(ExactCents::new(2, 6), ExactCents::new(1, 3));
        assert_eq!(
            ExactCents::of(Cents(5)).min(ExactCents::new(9, 2)),
            ExactCents::new(9, 2)
        );
    }
}
