//! Go's `time.Time` and `time.Duration` as template objects.
//!
//! Templates call methods on times and durations (`(now | toTime).Format "2006"`,
//! `.StartsAt.Unix`, `(1800 | toDuration).String`), so both are [`Object`]s with Go's method
//! names. Times are always in UTC (Prometheus converts with `.UTC()`; zones come with
//! Alertmanager's `tz` function later). Layouts follow Go's reference-time syntax
//! (`time/format.go`).

use std::fmt::Write as _;

use crate::func::{Param, Signature};
use crate::value::{Object, Value};

const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Seconds from 0001-01-01 (Go's zero time) to the Unix epoch.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `time.Duration`: nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    /// Go's `Duration.String`: `72h3m0.5s`, `1.5ms`, `0s`.
    pub fn go_string(self) -> String {
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        let mut out = String::new();
        if u < NANOS_PER_SEC as u64 {
            let (unit, prec) = match u {
                0 => return "0s".into(),
                1..=999 => ("ns", 0),
                1000..=999_999 => ("µs", 3),
                _ => ("ms", 6),
            };
            out.push_str(&frac(u, prec));
            out.push_str(unit);
        } else {
            let secs = frac(u, 9);
            u /= NANOS_PER_SEC as u64;
            let (h, m) = (u / 3600, (u / 60) % 60);
            if h > 0 {
                let _ = write!(out, "{h}h");
            }
            if h > 0 || m > 0 {
                let _ = write!(out, "{m}m");
            }
            out.push_str(&secs);
            out.push('s');
        }
        if neg {
            out.insert(0, '-');
        }
        out
    }

    /// The duration in seconds.
    pub fn seconds(self) -> f64 {
        let sec = self.0 / NANOS_PER_SEC;
        let nsec = self.0 % NANOS_PER_SEC;
        sec as f64 + nsec as f64 / 1e9
    }
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) removed; for
/// `prec == 9` only the seconds part modulo a minute is printed, as Go's `fmtFrac` plus
/// `fmtInt` do for durations of a second or more.
fn frac(v: u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let (int, fr) = (v / scale, v % scale);
    let int = if prec == 9 { int % 60 } else { int };
    let mut s = int.to_string();
    if fr != 0 {
        let digits = format!("{fr:0width$}", width = prec as usize);
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s
}

impl Object for Duration {
    fn type_name(&self) -> &str {
        "time.Duration"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        match name {
            "String" | "Seconds" | "Minutes" | "Hours" | "Milliseconds" | "Microseconds" | "Nanoseconds" | "Abs" => {
                Some(Signature::fixed(&[]))
            }
            "Round" | "Truncate" => Some(Signature::fixed(&[Param::Any])),
            _ => None,
        }
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let d = self.0;
        Ok(match name {
            "String" => Value::from(self.go_string()),
            "Seconds" => Value::Float(self.seconds()),
            "Minutes" => Value::Float((d / (60 * NANOS_PER_SEC)) as f64 + (d % (60 * NANOS_PER_SEC)) as f64 / 60e9),
            "Hours" => Value::Float((d / (3600 * NANOS_PER_SEC)) as f64 + (d % (3600 * NANOS_PER_SEC)) as f64 / 3600e9),
            "Milliseconds" => Value::Int(d / 1_000_000),
            "Microseconds" => Value::Int(d / 1000),
            "Nanoseconds" => Value::Int(d),
            "Abs" => Value::object(Duration(d.checked_abs().unwrap_or(i64::MAX))),
            "Truncate" => {
                let m = duration_arg(&args[0])?;
                Value::object(Duration(if m <= 0 { d } else { d - d % m }))
            }
            "Round" => {
                let m = duration_arg(&args[0])?;
                Value::object(Duration(round_duration(d, m)))
            }
            _ => return Err(format!("time.Duration has no method {name}")),
        })
    }

    fn format(&self) -> String {
        self.go_string()
    }

    fn is_stringer(&self) -> bool {
        true
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::Int(self.0))
    }
}

/// Go's `Duration.Round`: halfway values round away from zero; overflow saturates.
fn round_duration(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let mut r = d % m;
    if d < 0 {
        r = -r;
        if r + r < m {
            return d + r;
        }
        return d.checked_sub(m - r).unwrap_or(i64::MIN);
    }
    if r + r < m {
        return d - r;
    }
    d.checked_add(m - r).unwrap_or(i64::MAX)
}

/// A duration argument: a `time.Duration` object or an integer count of nanoseconds (Go
/// converts untyped integer constants to `Duration`).
fn duration_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        v => match v.downcast::<Duration>() {
            Some(d) => Ok(d.0),
            None => Err(format!(
                "wrong type for value; expected time.Duration; got {}",
                v.type_name()
            )),
        },
    }
}

fn time_arg(v: &Value) -> Result<Time, String> {
    v.downcast::<Time>()
        .copied()
        .ok_or_else(|| format!("wrong type for value; expected time.Time; got {}", v.type_name()))
}

/// Go's `time.Time`, in UTC, with nanosecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    secs: i64,
    nanos: u32,
}

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

impl Time {
    /// Go's zero time, 0001-01-01 00:00:00 UTC.
    pub const ZERO: Time = Time {
        secs: ZERO_TIME_UNIX,
        nanos: 0,
    };

    /// `secs` seconds and `nanos` nanoseconds after the Unix epoch (normalised like Go's
    /// `time.Unix`).
    pub fn from_unix(secs: i64, nanos: i64) -> Time {
        let secs = secs.saturating_add(nanos.div_euclid(NANOS_PER_SEC));
        Time {
            secs,
            nanos: nanos.rem_euclid(NANOS_PER_SEC) as u32,
        }
    }

    /// Milliseconds since the Unix epoch, as Prometheus timestamps are.
    pub fn from_unix_millis(ms: i64) -> Time {
        Time::from_unix(ms.div_euclid(1000), ms.rem_euclid(1000) * 1_000_000)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn nanosecond(self) -> u32 {
        self.nanos
    }

    fn unix_nanos(self) -> i128 {
        i128::from(self.secs) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos)
    }

    fn clamp_i64(v: i128) -> i64 {
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// This time plus `d`.
    pub fn add_duration(self, d: Duration) -> Time {
        let n = self.unix_nanos() + i128::from(d.0);
        let secs = n.div_euclid(i128::from(NANOS_PER_SEC));
        Time {
            secs: Self::clamp_i64(secs),
            nanos: n.rem_euclid(i128::from(NANOS_PER_SEC)) as u32,
        }
    }

    /// `self - other`, saturating as Go's `Time.Sub` does.
    pub fn since(self, other: Time) -> Duration {
        Duration(Self::clamp_i64(self.unix_nanos() - other.unix_nanos()))
    }

    /// (year, month 1-12, day 1-31)
    fn date(self) -> (i64, u32, u32) {
        civil_from_days(self.secs.div_euclid(86_400))
    }

    /// (hour, minute, second)
    fn clock(self) -> (u32, u32, u32) {
        let s = self.secs.rem_euclid(86_400) as u32;
        (s / 3600, (s / 60) % 60, s % 60)
    }

    fn weekday(self) -> usize {
        // 1970-01-01 was a Thursday.
        (self.secs.div_euclid(86_400) + 4).rem_euclid(7) as usize
    }

    fn year_day(self) -> u32 {
        let (y, m, d) = self.date();
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        BEFORE[m as usize - 1] + d + u32::from(m > 2 && is_leap(y))
    }

    /// Go's `Time.Format` with a reference-time layout such as `2006-01-02T15:04:05Z07:00`.
    pub fn format(self, layout: &str) -> String {
        let mut out = String::with_capacity(layout.len() + 10);
        let (year, month, day) = self.date();
        let (hour, min, sec) = self.clock();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, chunk, suffix) = next_chunk(rest);
            out.push_str(prefix);
            let Some(chunk) = chunk else { break };
            rest = suffix;
            match chunk {
                Chunk::LongYear => {
                    if year < 0 {
                        out.push('-');
                    }
                    let _ = write!(out, "{:04}", year.unsigned_abs());
                }
                Chunk::Year => {
                    let _ = write!(out, "{:02}", year.rem_euclid(100));
                }
                Chunk::LongMonth => out.push_str(MONTHS[month as usize - 1]),
                Chunk::Month => out.push_str(&MONTHS[month as usize - 1][..3]),
                Chunk::NumMonth => {
                    let _ = write!(out, "{month}");
                }
                Chunk::ZeroMonth => {
                    let _ = write!(out, "{month:02}");
                }
                Chunk::LongWeekDay => out.push_str(DAYS[self.weekday()]),
                Chunk::WeekDay => out.push_str(&DAYS[self.weekday()][..3]),
                Chunk::Day => {
                    let _ = write!(out, "{day}");
                }
                Chunk::UnderDay => {
                    let _ = write!(out, "{day:>2}");
                }
                Chunk::ZeroDay => {
                    let _ = write!(out, "{day:02}");
                }
                Chunk::UnderYearDay => {
                    let _ = write!(out, "{:>3}", self.year_day());
                }
                Chunk::ZeroYearDay => {
                    let _ = write!(out, "{:03}", self.year_day());
                }
                Chunk::Hour => {
                    let _ = write!(out, "{hour:02}");
                }
                Chunk::Hour12 | Chunk::ZeroHour12 => {
                    let h = if hour % 12 == 0 { 12 } else { hour % 12 };
                    let _ = if chunk == Chunk::Hour12 {
                        write!(out, "{h}")
                    } else {
                        write!(out, "{h:02}")
                    };
                }
                Chunk::Minute => {
                    let _ = write!(out, "{min}");
                }
                Chunk::ZeroMinute => {
                    let _ = write!(out, "{min:02}");
                }
                Chunk::Second => {
                    let _ = write!(out, "{sec}");
                }
                Chunk::ZeroSecond => {
                    let _ = write!(out, "{sec:02}");
                }
                Chunk::PmUpper => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
                Chunk::PmLower => out.push_str(if hour >= 12 { "pm" } else { "am" }),
                Chunk::Tz => out.push_str("UTC"),
                Chunk::Iso(_) => out.push('Z'),
                Chunk::NumTz(text) => out.push_str(&text.replace("07", "00").replacen('-', "+", 1)),
                Chunk::Frac { sep, digits, trim } => {
                    let all = format!("{:09}", self.nanos);
                    let mut d = &all[..digits.min(9)];
                    if trim {
                        d = d.trim_end_matches('0');
                        if d.is_empty() {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(d);
                }
            }
        }
        out
    }

    /// Go's `Time.String`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub fn go_string(self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PmUpper,
    PmLower,
    Tz,
    /// `Z07:00` and friends: `Z` in UTC.
    Iso(&'static str),
    /// `-07:00` and friends, keeping the layout's shape: `+00:00` in UTC.
    NumTz(&'static str),
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

const ISO_TZ: [&str; 5] = ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"];
const NUM_TZ: [&str; 5] = ["-070000", "-07:00:00", "-0700", "-07:00", "-07"];

/// Go's `nextStdChunk`: the text before the first layout element, the element, and the rest.
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    let lower_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found = match b[i] {
            b'J' if at(i, "January") => Some((Chunk::LongMonth, 7)),
            b'J' if at(i, "Jan") && !lower_at(i + 3) => Some((Chunk::Month, 3)),
            b'M' if at(i, "Monday") => Some((Chunk::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !lower_at(i + 3) => Some((Chunk::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Chunk::Tz, 3)),
            b'0' if b.get(i + 1).is_some_and(|c| (b'1'..=b'6').contains(c)) => {
                let c = match b[i + 1] {
                    b'1' => Chunk::ZeroMonth,
                    b'2' => Chunk::ZeroDay,
                    b'3' => Chunk::ZeroHour12,
                    b'4' => Chunk::ZeroMinute,
                    b'5' => Chunk::ZeroSecond,
                    _ => Chunk::Year,
                };
                Some((c, 2))
            }
            b'0' if at(i, "002") => Some((Chunk::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Chunk::Hour, 2)),
            b'1' => Some((Chunk::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Chunk::LongYear, 4)),
            b'2' => Some((Chunk::Day, 1)),
            b'_' if at(i, "_2006") => return (&layout[..i + 1], Some(Chunk::LongYear), &layout[i + 5..]),
            b'_' if at(i, "_2") => Some((Chunk::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Chunk::UnderYearDay, 3)),
            b'3' => Some((Chunk::Hour12, 1)),
            b'4' => Some((Chunk::Minute, 1)),
            b'5' => Some((Chunk::Second, 1)),
            b'P' if at(i, "PM") => Some((Chunk::PmUpper, 2)),
            b'p' if at(i, "pm") => Some((Chunk::PmLower, 2)),
            b'-' => NUM_TZ.iter().find(|t| at(i, t)).map(|t| (Chunk::NumTz(t), t.len())),
            b'Z' => ISO_TZ.iter().find(|t| at(i, t)).map(|t| (Chunk::Iso(t), t.len())),
            c @ (b'.' | b',') if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let d = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == d {
                    j += 1;
                }
                if b.get(j).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    let chunk = Chunk::Frac {
                        sep: c as char,
                        digits: j - (i + 1),
                        trim: d == b'9',
                    };
                    Some((chunk, j - i))
                }
            }
            _ => None,
        };
        if let Some((chunk, len)) = found {
            return (&layout[..i], Some(chunk), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

impl Object for Time {
    fn type_name(&self) -> &str {
        "time.Time"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        match name {
            "Format" => Some(Signature::fixed(&[Param::String])),
            "Add" | "Sub" | "Before" | "After" | "Equal" | "Truncate" => Some(Signature::fixed(&[Param::Any])),
            "String" | "Unix" | "UnixMilli" | "UnixMicro" | "UnixNano" | "UTC" | "Local" | "Year" | "Month" | "Day"
            | "Hour" | "Minute" | "Second" | "Nanosecond" | "YearDay" | "Weekday" | "IsZero" => {
                Some(Signature::fixed(&[]))
            }
            _ => None,
        }
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let t = *self;
        let (year, month, day) = t.date();
        let (hour, min, sec) = t.clock();
        let nanos = t.unix_nanos();
        Ok(match name {
            "Format" => Value::from(t.format(args[0].as_str().unwrap_or_default())),
            "String" => Value::from(t.go_string()),
            "Unix" => Value::Int(t.secs),
            "UnixMilli" => Value::Int(Self::clamp_i64(nanos.div_euclid(1_000_000))),
            "UnixMicro" => Value::Int(Self::clamp_i64(nanos.div_euclid(1000))),
            "UnixNano" => Value::Int(Self::clamp_i64(nanos)),
            "UTC" | "Local" => Value::object(t),
            "Year" => Value::Int(year),
            "Month" => Value::object(Named {
                type_name: "time.Month",
                value: i64::from(month),
                name: MONTHS[month as usize - 1],
            }),
            "Day" => Value::Int(day.into()),
            "Hour" => Value::Int(hour.into()),
            "Minute" => Value::Int(min.into()),
            "Second" => Value::Int(sec.into()),
            "Nanosecond" => Value::Int(t.nanos.into()),
            "YearDay" => Value::Int(t.year_day().into()),
            "Weekday" => Value::object(Named {
                type_name: "time.Weekday",
                value: t.weekday() as i64,
                name: DAYS[t.weekday()],
            }),
            "IsZero" => Value::Bool(t == Time::ZERO),
            "Add" => Value::object(t.add_duration(Duration(duration_arg(&args[0])?))),
            "Sub" => Value::object(t.since(time_arg(&args[0])?)),
            "Before" => Value::Bool(t < time_arg(&args[0])?),
            "After" => Value::Bool(t > time_arg(&args[0])?),
            "Equal" => Value::Bool(t == time_arg(&args[0])?),
            "Truncate" => {
                let d = duration_arg(&args[0])?;
                if d <= 0 {
                    Value::object(t)
                } else {
                    // Go truncates relative to the zero time.
                    let since_zero = nanos - i128::from(ZERO_TIME_UNIX) * i128::from(NANOS_PER_SEC);
                    let cut = since_zero.rem_euclid(i128::from(d));
                    Value::object(t.add_duration(Duration(Self::clamp_i64(-cut))))
                }
            }
            _ => return Err(format!("time.Time has no method {name}")),
        })
    }

    fn format(&self) -> String {
        self.go_string()
    }

    fn is_stringer(&self) -> bool {
        true
    }
}

/// An integer type with names, such as `time.Month`: prints its name, compares as its number.
#[derive(Clone, Copy, Debug)]
struct Named {
    type_name: &'static str,
    value: i64,
    name: &'static str,
}

impl Object for Named {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn method(&self, name: &str) -> Option<Signature> {
        (name == "String").then(|| Signature::fixed(&[]))
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Result<Value, String> {
        Ok(Value::from(self.name))
    }

    fn format(&self) -> String {
        self.name.to_owned()
    }

    fn is_stringer(&self) -> bool {
        true
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::Int(self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_800 * NANOS_PER_SEC, "30m0s"),
            (3_661 * NANOS_PER_SEC + 500_000_000, "1h1m1.5s"),
            (-90 * NANOS_PER_SEC, "-1m30s"),
            (100 * 3600 * NANOS_PER_SEC, "100h0m0s"),
        ] {
            assert_eq!(Duration(ns).go_string(), want, "{ns}");
        }
    }

    #[test]
    fn times_format_like_go() {
        let t = Time::from_unix_millis(1_435_065_584_128);
        assert_eq!(t.go_string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(t.format("2006-01-02T15:04:05Z07:00"), "2015-06-23T13:19:44Z");
        assert_eq!(
            t.format("Mon Jan _2 3:04PM .000 -07:00 __2 002"),
            "Tue Jun 23 1:19PM .128 +00:00 174 174"
        );
        assert_eq!(t.format("Monday, January 2 06"), "Tuesday, June 23 15");
        assert_eq!(Time::from_unix(-1, 0).go_string(), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(Time::ZERO.go_string(), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            Time::from_unix(1_353_755_652, 0).format("Mon Jan 2 15:04:05 2006"),
            "Sat Nov 24 11:14:12 2012"
        );
    }
}
