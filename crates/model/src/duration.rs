//! Prometheus' duration syntax (`github.com/prometheus/common/model.ParseDuration`).

use std::fmt;
use std::str::FromStr;

use crate::Error;

const MS_PER_SECOND: i64 = 1000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: i64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: i64 = 365 * MS_PER_DAY;

/// Units in the only order Prometheus accepts them, each at most once.
const UNITS: [(&str, i64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

/// A span of time with millisecond resolution, written as Prometheus writes it: `1y2w3d4h5m6s7ms`.
///
/// A year is always 365 days and a week 7 days, as upstream. Parsing accepts only non-negative
/// values; negative values arise from arithmetic (PromQL offsets) and print with a leading `-`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Duration(ms)
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: i64) -> Self {
        Duration(s * MS_PER_SECOND)
    }

    /// The duration in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The duration in seconds, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Whether the duration is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The equivalent `std::time::Duration`; negative values clamp to zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }

    /// Parses Prometheus' duration syntax: `0`, or one or more `<digits><unit>` groups with
    /// units from `y w d h m s ms`, largest first and each at most once.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(Error::InvalidDuration(s.to_owned()));
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut next_unit = 0; // index into UNITS of the smallest unit still allowed
        let mut total: i64 = 0;
        while pos < bytes.len() {
            let digits_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == digits_start {
                return Err(Error::InvalidDuration(s.to_owned()));
            }
            let number: i64 = s[digits_start..pos]
                .parse()
                .map_err(|_| Error::DurationOutOfRange(s.to_owned()))?;
            let unit_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            let unit = &s[unit_start..pos];
            let Some(offset) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
                return Err(Error::InvalidDuration(s.to_owned()));
            };
            let index = next_unit + offset;
            next_unit = index + 1;
            let part = number
                .checked_mul(UNITS[index].1)
                .ok_or_else(|| Error::DurationOutOfRange(s.to_owned()))?;
            total = total
                .checked_add(part)
                .ok_or_else(|| Error::DurationOutOfRange(s.to_owned()))?;
        }
        Ok(Duration(total))
    }
}

impl FromStr for Duration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Duration::parse(s)
    }
}

impl fmt::Display for Duration {
    /// Prints as upstream: years and weeks only when they divide the value exactly (so 90 days
    /// reads `90d`, not `12w6d`), then days down to milliseconds; zero prints `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let mut ms = self.0.unsigned_abs();
        for (i, (unit, mult)) in UNITS.iter().enumerate() {
            let mult = *mult as u64;
            let exact_only = i < 2;
            if exact_only && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.to_std()
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15s, 1m or 1h30m")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            // YAML `0` arrives as an integer; upstream accepts it.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::ZERO)
                } else {
                    Err(E::custom(format!(
                        "not a valid duration string: \"{v}\" (a unit is required, e.g. {v}s)"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                if v >= 0 {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::custom(format!("not a valid duration string: \"{v}\"")))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_in_order() {
        let d = Duration::parse("1y2w3d4h5m6s7ms").unwrap();
        let want = MS_PER_YEAR
            + 2 * MS_PER_WEEK
            + 3 * MS_PER_DAY
            + 4 * MS_PER_HOUR
            + 5 * MS_PER_MINUTE
            + 6 * MS_PER_SECOND
            + 7;
        assert_eq!(d.as_millis(), want);
        // Years and weeks are not exact divisors here, so upstream prints days.
        assert_eq!(d.to_string(), "382d4h5m6s7ms");
    }

    #[test]
    fn prints_like_upstream() {
        for (ms, s) in [
            (0, "0s"),
            (1, "1ms"),
            (1500, "1s500ms"),
            (90 * MS_PER_DAY, "90d"),
            (MS_PER_WEEK, "1w"),
            (2 * MS_PER_YEAR, "2y"),
            (MS_PER_YEAR + MS_PER_WEEK, "372d"),
            (53 * MS_PER_WEEK, "53w"),
            (MS_PER_HOUR + 30 * MS_PER_MINUTE, "1h30m"),
            (-5 * MS_PER_MINUTE, "-5m"),
        ] {
            assert_eq!(Duration::from_millis(ms).to_string(), s, "{ms}ms");
        }
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        for bad in ["", "1", "5x", "1m1h", "1s1s", "-1s", "1.5s", "s", "1h ", "1e3s"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(matches!(
            Duration::parse("99999999999999999y"),
            Err(Error::DurationOutOfRange(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn print_parse_round_trip(ms in 0i64..=i64::MAX / 2) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
