//! Time interval specifications (upstream `timeinterval` package): the entries of a named
//! `time_intervals`/`mute_time_intervals` block, parsed into numeric ranges for the
//! dispatcher to evaluate.
//!
//! Within one [`TimeInterval`] every field that is present must match and an absent field
//! matches everything; within a field any range may match. A present but empty list matches
//! nothing, as upstream (a Go nil slice and an empty one differ there), which is why the fields
//! are `Option<Vec<_>>`.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One time interval specification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// Times of day, `[start_time, end_time)` in minutes since midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRange>>,
    /// Days of the week, `monday:friday` or `sunday` (Sunday is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<WeekdayRange>>,
    /// Days of the month, `1:5`; negative values count from the end of the month (`-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    /// Months, by name or number (`january:march`, `5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<MonthRange>>,
    /// Years, `2020:2022`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<Vec<YearRange>>,
    /// The time zone the other fields are evaluated in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A time-of-day range in minutes since midnight, end exclusive; `24:00` may end a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
}

/// Parses `HH:MM` (00:00 to 23:59, or 24:00) into minutes since midnight.
fn parse_time(s: &str) -> Result<u32, String> {
    let invalid = || format!("couldn't parse timestamp {s}, invalid format");
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let b = s.as_bytes();
    let ok = b.len() == 5
        && b[2] == b':'
        && matches!((b[0], b[1]), (b'0' | b'1', b'0'..=b'9') | (b'2', b'0'..=b'3'))
        && matches!((b[3], b[4]), (b'0'..=b'5', b'0'..=b'9'));
    if !ok {
        return Err(invalid());
    }
    let hours: u32 = s[..2].parse().map_err(|_| invalid())?;
    let minutes: u32 = s[3..].parse().map_err(|_| invalid())?;
    Ok(hours * 60 + minutes)
}

impl TimeRange {
    /// Checks and converts a `start_time`/`end_time` pair.
    pub fn parse(start: &str, end: &str) -> Result<TimeRange, String> {
        if start.is_empty() || end.is_empty() {
            return Err("both start and end times must be provided".into());
        }
        let (start_minute, end_minute) = (parse_time(start)?, parse_time(end)?);
        if start_minute >= end_minute {
            return Err("start time cannot be equal or greater than end time".into());
        }
        Ok(TimeRange {
            start_minute,
            end_minute,
        })
    }
}

fn hh_mm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTimeRange::deserialize(d)?;
        TimeRange::parse(&raw.start_time, &raw.end_time).map_err(D::Error::custom)
    }
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawTimeRange {
            start_time: hh_mm(self.start_minute),
            end_time: hh_mm(self.end_minute),
        }
        .serialize(s)
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Go's `strconv.Atoi` with its error text.
fn atoi(s: &str) -> Result<i32, String> {
    s.parse::<i32>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {s:?}: {why}")
    })
}

/// Splits `begin:end` or a single member (lower-cased first, so names are case-insensitive)
/// and maps both ends with `member`.
fn parse_range(input: &str, member: impl Fn(&str) -> Result<i32, String>) -> Result<(i32, i32), String> {
    let lower = input.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {lower}, invalid format"));
        }
        return Ok((member(parts[0])?, member(parts[1])?));
    }
    let v = member(&lower)?;
    Ok((v, v))
}

fn print_range(f: &mut fmt::Formatter<'_>, begin: &str, end: &str) -> fmt::Result {
    if begin == end {
        f.write_str(begin)
    } else {
        write!(f, "{begin}:{end}")
    }
}

/// Declares a range type deserialized from its YAML string form and printed back to it.
macro_rules! range_type {
    ($(#[$meta:meta])* $name:ident, $parse:path, $show:path) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub begin: i32,
            pub end: i32,
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let (begin, end) = $parse(s)?;
                Ok($name { begin, end })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                print_range(f, &$show(self.begin), &$show(self.end))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(D::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

fn weekday_member(s: &str) -> Result<i32, String> {
    WEEKDAYS
        .iter()
        .position(|d| *d == s)
        .map(|i| i as i32)
        .ok_or_else(|| format!("{s} is not a valid weekday"))
}

fn weekday_name(v: i32) -> String {
    usize::try_from(v)
        .ok()
        .and_then(|i| WEEKDAYS.get(i))
        .map_or_else(|| v.to_string(), |d| (*d).to_owned())
}

fn parse_weekdays(s: &str) -> Result<(i32, i32), String> {
    let (begin, end) = parse_range(s, weekday_member)?;
    if begin > end {
        return Err("start day cannot be before end day".into());
    }
    Ok((begin, end))
}

fn parse_days_of_month(s: &str) -> Result<(i32, i32), String> {
    let (begin, end) = parse_range(s, atoi)?;
    for v in [begin, end] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(format!("{v} is not a valid day of the month: out of range"));
        }
    }
    if begin < 0 && end > 0 {
        return Err("end day must be negative if start day is negative".into());
    }
    // Negative days count from the end of the month; compare as in the shortest month
    // (28 days) to reject ranges that are empty in every month, as upstream does.
    let in_short_month = |v: i32| if v < 0 { 28 + v } else { v };
    if in_short_month(begin) > in_short_month(end) {
        return Err(format!("end day {end} is always before start day {begin}"));
    }
    Ok((begin, end))
}

fn month_member(s: &str) -> Result<i32, String> {
    if let Some(i) = MONTHS.iter().position(|m| *m == s) {
        return Ok(i as i32 + 1);
    }
    s.parse::<i32>().map_err(|_| format!("{s} is not a valid month"))
}

fn month_name(v: i32) -> String {
    usize::try_from(v - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .map_or_else(String::new, |m| (*m).to_owned())
}

fn parse_months(s: &str) -> Result<(i32, i32), String> {
    let (begin, end) = parse_range(s, month_member)?;
    // Stricter than upstream, which accepts 0 or 13 and then never matches them.
    for v in [begin, end] {
        if !(1..=12).contains(&v) {
            return Err(format!("{v} is not a valid month: out of range"));
        }
    }
    if begin > end {
        return Err(format!(
            "end month {} is before start month {}",
            month_name(end),
            month_name(begin)
        ));
    }
    Ok((begin, end))
}

fn parse_years(s: &str) -> Result<(i32, i32), String> {
    let (begin, end) = parse_range(s, atoi)?;
    if begin > end {
        return Err(format!("end year {end} is before start year {begin}"));
    }
    Ok((begin, end))
}

fn number(v: i32) -> String {
    v.to_string()
}

range_type!(
    /// An inclusive range of weekdays, Sunday = 0 to Saturday = 6. Written with names only.
    WeekdayRange,
    parse_weekdays,
    weekday_name
);
range_type!(
    /// An inclusive range of days of the month, 1..=31 or -31..=-1 (from the month's end).
    DayOfMonthRange,
    parse_days_of_month,
    number
);
range_type!(
    /// An inclusive range of months, January = 1. Written with names or numbers.
    MonthRange,
    parse_months,
    number
);
range_type!(
    /// An inclusive range of years.
    YearRange,
    parse_years,
    number
);

/// A time zone: an IANA name such as `Europe/Berlin`, `UTC` or `Local`. Only the name's form is
/// checked here (this crate carries no time zone database); an empty name means UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location(String);

impl Location {
    /// Checks the form of a zone name.
    pub fn parse(name: &str) -> Result<Location, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Location("UTC".into()));
        }
        let bad_chars = !name.chars().all(|c| c.is_ascii_alphanumeric() || "/_-+.".contains(c));
        let bad_shape =
            name.starts_with('/') || name.ends_with('/') || name.split('/').any(|p| p.is_empty() || p == "..");
        if bad_chars || bad_shape {
            return Err(format!("unknown time zone {name}"));
        }
        Ok(Location(name.to_owned()))
    }

    /// The zone name (`UTC` for an empty one).
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Whether this is the host's local zone.
    pub fn is_local(&self) -> bool {
        self.0 == "Local"
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Location::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print() {
        let w: WeekdayRange = "Monday:FRIDAY".parse().unwrap();
        assert_eq!((w.begin, w.end), (1, 5));
        assert_eq!(w.to_string(), "monday:friday");
        let m: MonthRange = "may:august".parse().unwrap();
        assert_eq!((m.begin, m.end, m.to_string().as_str()), (5, 8, "5:8"));
        let d: DayOfMonthRange = "-7:-1".parse().unwrap();
        assert_eq!((d.begin, d.end), (-7, -1));
        assert_eq!("1:-1".parse::<DayOfMonthRange>().unwrap().end, -1);
        let y: YearRange = "2030".parse().unwrap();
        assert_eq!((y.begin, y.end, y.to_string().as_str()), (2030, 2030, "2030"));
        assert!("1:2:3".parse::<YearRange>().unwrap_err().contains("invalid format"));
        assert!("13".parse::<MonthRange>().unwrap_err().contains("out of range"));
        assert!("x".parse::<YearRange>().unwrap_err().contains("invalid syntax"));
    }

    #[test]
    fn times() {
        assert_eq!(
            TimeRange::parse("09:00", "24:00").unwrap(),
            TimeRange {
                start_minute: 540,
                end_minute: 1440
            }
        );
        assert!(TimeRange::parse("9:00", "10:00").is_err());
        assert!(TimeRange::parse("24:01", "10:00").is_err());
        assert!(TimeRange::parse("10:00", "10:00").is_err());
    }

    #[test]
    fn locations() {
        assert_eq!(Location::parse("").unwrap().name(), "UTC");
        assert!(Location::parse("America/Argentina/Buenos_Aires").is_ok());
        assert!(Location::parse("Etc/GMT+5").is_ok());
        assert!(Location::parse("Local").unwrap().is_local());
        assert!(Location::parse("../etc/passwd").is_err());
        assert!(Location::parse("Europe/ Berlin").is_err());
    }
}
