//! Money as the directory holds it: whole cents, read once from text like `1234.56`, so both
//! backends, the users CLI and the menu agree on what a balance is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Stored as text (`balance = "1234.56"`), so no float ever rounds a cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount {
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnAmount(pub String);

impl fmt::Display for NotAnAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an amount like 1234.56", self.0)
    }
}

impl std::error::Error for NotAnAmount {}

impl Amount {
    pub fn is_negative(self) -> bool {
        self.cents < 0
    }

    /// The whole units, without sign.
    pub fn units(self) -> u64 {
        self.cents.unsigned_abs() / 100
    }

    /// The hundredths, without sign.
    pub fn hundredths(self) -> u64 {
        self.cents.unsigned_abs() % 100
    }
}

impl FromStr for Amount {
    type Err = NotAnAmount;

    /// A plain decimal with at most two decimals and an optional minus: `12`, `12.5`, `-0.99`.
    fn from_str(text: &str) -> Result<Amount, NotAnAmount> {
        let bad = || NotAnAmount(text.to_string());
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || fraction.len() > 2 || !all_digits(fraction) {
            return Err(bad());
        }
        let units: i64 = whole.parse().map_err(|_| bad())?;
        let hundredths: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        let cents = units
            .checked_mul(100)
            .and_then(|c| c.checked_add(hundredths))
            .ok_or_else(bad)?;
        Ok(Amount {
            cents: if negative { -cents } else { cents },
        })
    }
}

impl TryFrom<String> for Amount {
    type Error = NotAnAmount;

    fn try_from(text: String) -> Result<Amount, NotAnAmount> {
        text.parse()
    }
}

impl From<Amount> for String {
    fn from(amount: Amount) -> String {
        amount.to_string()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.is_negative() { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.units(), self.hundredths())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_to_the_cent() {
        let a: Amount = "1234.56".parse().unwrap();
        assert_eq!(
            (a.units(), a.hundredths(), a.is_negative()),
            (1234, 56, false)
        );
        assert_eq!("12.5".parse::<Amount>().unwrap().to_string(), "12.50");
        assert_eq!("-3".parse::<Amount>().unwrap().to_string(), "-3.00");
        assert_eq!(" 7 ".parse::<Amount>().unwrap().to_string(), "7.00");
        for bad in [
            "",
            "abc",
            "1.234",
            "1,000",
            "1e5",
            ".5",
            "--1",
            "12.x",
            "-",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad}");
        }
    }
}
