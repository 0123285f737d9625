//! Byte sizes written as Prometheus writes them (`body_size_limit: 10MB`,
//! `retention.size: 1GB`), with the same parser upstream uses (`alecthomas/units`
//! `ParseBase2Bytes`): every unit is a power of 1024, spelled either `KiB`/`MiB`/... or
//! `KB`/`MB`/..., fractions and sums such as `1.5GB` or `1GB512MB` are allowed, and a bare
//! number other than `0` is an error because the unit is required.

use std::fmt;

/// A size in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub i64);

/// The multiples, largest last; index 0 is the byte itself.
const PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

/// The factor for a unit in one of the two spellings (`iB` or `B` after the prefix).
fn unit_factor(unit: &str, suffix: &str) -> Option<i128> {
    if unit == "B" {
        return Some(1);
    }
    let prefix = unit.strip_suffix(suffix)?;
    let power = PREFIXES.iter().skip(1).position(|p| *p == prefix)? + 1;
    Some(1024i128.pow(power as u32))
}

/// Parses with one spelling of the units; mirrors `units.ParseUnit`, except that whole
/// numbers are multiplied exactly rather than through a float.
fn parse_with(s: &str, suffix: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let too_large = || format!("size {s:?} is too large");
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = unit_factor(unit, suffix).ok_or_else(|| {
            if unit.is_empty() {
                format!("invalid size {s:?}: a unit is required (B, KB, MB, GB, ... or KiB, MiB, GiB, ...)")
            } else {
                format!("invalid size {s:?}: unknown unit {unit:?}")
            }
        })?;
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let fraction: f64 = if fraction.is_empty() {
            0.0
        } else {
            format!("0.{fraction}").parse().map_err(|_| invalid())?
        };
        let part = whole.checked_mul(factor).ok_or_else(too_large)? + (fraction * factor as f64) as i128;
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = tail;
    }
    if negative {
        total = -total;
    }
    i64::try_from(total).map_err(|_| too_large())
}

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> i64 {
        self.0
    }

    /// Parses a size such as `512MB`, `1.5GiB` or `0`.
    pub fn parse(s: &str) -> Result<Self, String> {
        // Upstream tries the IEC spelling first and falls back to the old one; a mix of the two
        // in one string is an error, and the error reported is the second attempt's.
        parse_with(s, "iB").or_else(|_| parse_with(s, "B")).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    /// Prints as upstream does: the non-zero parts from the largest unit down, e.g. `15MiB`,
    /// `1KiB512B`, and `0B` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let mut n = self.0.unsigned_abs();
        let mut parts = Vec::new();
        for prefix in PREFIXES {
            let part = n % 1024;
            if part != 0 {
                let unit = if prefix.is_empty() {
                    "B".to_owned()
                } else {
                    format!("{prefix}iB")
                };
                parts.push(format!("{part}{unit}"));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        parts.reverse();
        f.write_str(&parts.concat())
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 512MB or 1GiB")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: i64 = 1024;
    const MIB: i64 = 1024 * KIB;
    const GIB: i64 = 1024 * MIB;

    #[test]
    fn parses_both_spellings_as_powers_of_1024() {
        for (s, want) in [
            ("0", 0),
            ("1B", 1),
            ("15MB", 15 * MIB),
            ("15MiB", 15 * MIB),
            ("1KB", KIB),
            ("1GB512MB", GIB + 512 * MIB),
            ("1.5GiB", GIB + GIB / 2),
            (".5KB", 512),
            ("-1KB", -KIB),
            ("1EB", 1 << 60),
        ] {
            assert_eq!(ByteSize::parse(s), Ok(ByteSize(want)), "{s}");
        }
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        for s in [
            "",
            "100",
            "1kB",
            "1kiB",
            "1GiB512MB",
            "1XB",
            "KB",
            "1..5KB",
            "-",
            "8EiB",
        ] {
            assert!(ByteSize::parse(s).is_err(), "{s:?} should not parse");
        }
        assert!(ByteSize::parse("100").unwrap_err().contains("a unit is required"));
    }

    #[test]
    fn prints_like_upstream() {
        assert_eq!(ByteSize(0).to_string(), "0B");
        assert_eq!(ByteSize(15 * MIB).to_string(), "15MiB");
        assert_eq!(ByteSize(KIB + 512).to_string(), "1KiB512B");
        assert_eq!(ByteSize(-GIB).to_string(), "-1GiB");
        for n in [1, 1023, KIB, 3 * GIB + 7, i64::MAX / 3] {
            assert_eq!(ByteSize::parse(&ByteSize(n).to_string()), Ok(ByteSize(n)));
        }
    }
}
