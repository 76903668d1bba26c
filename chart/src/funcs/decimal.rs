//! sprig's float arithmetic (`addf`, `add1f`, `subf`, `mulf`, `divf`): each
//! number becomes a decimal (shopspring/decimal's `NewFromFloat`: the
//! shortest decimal that reads back as the float), the operations are exact
//! except division (rounded half away from zero at 16 places, as
//! `DivisionPrecision`), and the result is the float nearest the decimal.
//! So `addf 0.1 0.2` is 0.3, where float arithmetic gives
//! 0.30000000000000004. No crate does shopspring's rounding; this is the
//! little of it sprig uses, on `num-bigint`.

use num_bigint::BigInt;
use num_bigint::Sign;

/// `mantissa × 10^exponent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    mantissa: BigInt,
    exponent: i64,
}

/// shopspring's `DivisionPrecision`.
const DIVISION_PLACES: i64 = 16;

impl Decimal {
    /// `NewFromFloat`: the shortest decimal that reads back as `value`;
    /// shopspring panics on NaN and infinities, and so does this (an error).
    pub fn from_float(value: f64) -> Result<Decimal, String> {
        if !value.is_finite() {
            let shown = if value.is_nan() {
                "NaN".to_string()
            } else if value > 0.0 {
                "+Inf".to_string()
            } else {
                "-Inf".to_string()
            };
            return Err(format!("Cannot create a Decimal from {shown}"));
        }
        // Rust writes the shortest round-trip digits: "1.2345e-3".
        let text = format!("{value:e}");
        let (digits, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i64 = exponent.parse().unwrap_or(0);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let mantissa: BigInt = format!("{whole}{fraction}").parse().unwrap_or_default();
        Ok(Decimal {
            mantissa,
            exponent: exponent - fraction.len() as i64,
        })
    }

    /// The float nearest this decimal (Go's `big.Rat.Float64`; Rust's
    /// parse of the exact decimal rounds the same way).
    pub fn to_float(&self) -> f64 {
        format!("{}e{}", self.mantissa, self.exponent)
            .parse()
            .unwrap_or(0.0)
    }

    /// Both with the smaller exponent.
    fn aligned(&self, other: &Decimal) -> (BigInt, BigInt, i64) {
        let exponent = self.exponent.min(other.exponent);
        let scale = |d: &Decimal| &d.mantissa * pow10(d.exponent - exponent);
        (scale(self), scale(other), exponent)
    }

    pub fn add(&self, other: &Decimal) -> Decimal {
        let (a, b, exponent) = self.aligned(other);
        Decimal {
            mantissa: a + b,
            exponent,
        }
    }

    pub fn sub(&self, other: &Decimal) -> Decimal {
        let (a, b, exponent) = self.aligned(other);
        Decimal {
            mantissa: a - b,
            exponent,
        }
    }

    pub fn mul(&self, other: &Decimal) -> Decimal {
        Decimal {
            mantissa: &self.mantissa * &other.mantissa,
            exponent: self.exponent + other.exponent,
        }
    }

    /// `Div`: the quotient at 16 places, half away from zero; by zero,
    /// shopspring's panic as an error.
    pub fn div(&self, other: &Decimal) -> Result<Decimal, String> {
        if other.mantissa.sign() == Sign::NoSign {
            return Err("decimal division by 0".into());
        }
        // self / other × 10^16 = (ma / mb) × 10^(ea − eb + 16)
        let shift = self.exponent - other.exponent + DIVISION_PLACES;
        let (numerator, denominator) = if shift >= 0 {
            (&self.mantissa * pow10(shift), other.mantissa.clone())
        } else {
            (self.mantissa.clone(), &other.mantissa * pow10(-shift))
        };
        // Truncated toward zero, as big.Int's Quo.
        let mut quotient = &numerator / &denominator;
        let remainder = &numerator - &quotient * &denominator;
        let twice = remainder.magnitude() * 2u32;
        if twice >= *denominator.magnitude() {
            let away = if (self.mantissa.sign() == Sign::Minus)
                != (other.mantissa.sign() == Sign::Minus)
            {
                -1
            } else {
                1
            };
            quotient += away;
        }
        Ok(Decimal {
            mantissa: quotient,
            exponent: -DIVISION_PLACES,
        })
    }
}

fn pow10(exponent: i64) -> BigInt {
    BigInt::from(10u32).pow(u32::try_from(exponent).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(value: f64) -> Decimal {
        Decimal::from_float(value).unwrap()
    }

    #[test]
    fn decimal_arithmetic_gives_what_sprig_gives() {
        // Each checked against helm v4.3.2: `{{ addf 0.1 0.2 }}` and so on.
        assert_eq!(d(0.1).add(&d(0.2)).to_float(), 0.3);
        assert_eq!(d(0.1).mul(&d(3.0)).to_float(), 0.3);
        assert_eq!(d(0.3).sub(&d(0.1)).to_float(), 0.2);
        assert_eq!(d(1.0).div(&d(3.0)).unwrap().to_float(), 0.3333333333333333);
        assert_eq!(d(0.3).div(&d(0.1)).unwrap().to_float(), 3.0);
        assert_eq!(d(1e300).add(&d(1e300)).to_float(), 2e300);
        assert_eq!(d(1.1).mul(&d(1.1)).to_float(), 1.21);
        assert_eq!(d(2.0).div(&d(3.0)).unwrap().to_float(), 0.6666666666666667);
        assert_eq!(
            d(-2.0).div(&d(3.0)).unwrap().to_float(),
            -0.6666666666666667
        );
        assert_eq!(d(1e300).mul(&d(1e300)).to_float(), f64::INFINITY);
        assert_eq!(d(1.0).div(&d(0.0)).unwrap_err(), "decimal division by 0");
        assert!(Decimal::from_float(f64::NAN).is_err());
    }
}
