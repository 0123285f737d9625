//! Evaluating named time intervals (upstream `timeinterval/timeinterval.go` `ContainsTime`
//! and `Intervener`). The intervals come parsed from the configuration; here they are checked
//! against an instant in their `location`, resolved with jiff's bundled IANA database.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use watchfire_config::alertmanager::Config;
use watchfire_config::alertmanager::timeinterval::TimeInterval;

use crate::Error;

/// A time interval with its zone resolved.
#[derive(Clone, Debug)]
pub struct ZonedInterval {
    spec: TimeInterval,
    zone: TimeZone,
}

/// Resolves a configured location name: `UTC` (the default), `Local` (the host's zone) or an
/// IANA name.
pub fn resolve_zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None | Some("" | "UTC") => Ok(TimeZone::UTC),
        Some("Local") => Ok(TimeZone::system()),
        Some(n) => TimeZone::get(n).map_err(|e| format!("unknown time zone {n}: {e}")),
    }
}

impl ZonedInterval {
    /// Resolves the interval's location.
    pub fn new(spec: TimeInterval) -> Result<ZonedInterval, String> {
        let zone = resolve_zone(spec.location.as_ref().map(|l| l.name()))?;
        Ok(ZonedInterval { spec, zone })
    }

    /// Whether the instant falls inside the interval (upstream `ContainsTime`).
    pub fn contains(&self, t: Timestamp) -> bool {
        let z = t.to_zoned_datetime(self.zone.clone());
        let s = &self.spec;
        if let Some(times) = &s.times {
            let minute = i64::from(z.hour()) * 60 + i64::from(z.minute());
            if !times
                .iter()
                .any(|r| minute >= i64::from(r.start_minute) && minute < i64::from(r.end_minute))
            {
                return false;
            }
        }
        if let Some(days) = &s.days_of_month {
            let days_in_month = i32::from(z.days_in_month());
            let day = i32::from(z.day());
            let any = days.iter().any(|r| {
                let begin = if r.begin < 0 {
                    days_in_month + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { days_in_month + r.end + 1 } else { r.end };
                if begin > days_in_month {
                    return false;
                }
                let begin = begin.clamp(-days_in_month, days_in_month);
                let end = end.clamp(-days_in_month, days_in_month);
                day >= begin && day <= end
            });
            if !any {
                return false;
            }
        }
        if let Some(months) = &s.months {
            let m = i32::from(z.month());
            if !months.iter().any(|r| m >= r.begin && m <= r.end) {
                return false;
            }
        }
        if let Some(weekdays) = &s.weekdays {
            let w = i32::from(z.weekday().to_sunday_zero_offset());
            if !weekdays.iter().any(|r| w >= r.begin && w <= r.end) {
                return false;
            }
        }
        if let Some(years) = &s.years {
            let y = i32::from(z.year());
            if !years.iter().any(|r| y >= r.begin && y <= r.end) {
                return false;
            }
        }
        true
    }
}

/// All named time intervals of a configuration (upstream `Intervener`).
#[derive(Clone, Debug, Default)]
pub struct Intervener {
    intervals: HashMap<String, Vec<ZonedInterval>>,
}

impl Intervener {
    /// Resolves the configuration's `time_intervals` and `mute_time_intervals`; an unknown time
    /// zone is a configuration error.
    pub fn from_config(config: &Config) -> Result<Intervener, Error> {
        let mut intervals = HashMap::new();
        for named in config.named_time_intervals() {
            let list = named
                .time_intervals
                .iter()
                .map(|ti| ZonedInterval::new(ti.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("time interval {:?}: {e}", named.name)))?;
            intervals.insert(named.name.clone(), list);
        }
        Ok(Intervener { intervals })
    }

    /// Which of the named intervals contain `now` (a name is listed once per interval entry of
    /// it that matches, as upstream). An unknown name is an error.
    pub fn mutes(&self, names: &[String], now: Timestamp) -> Result<Vec<String>, String> {
        let mut inside = Vec::new();
        for name in names {
            let list = self
                .intervals
                .get(name)
                .ok_or_else(|| format!("time interval {name} doesn't exist in config"))?;
            for ti in list {
                if ti.contains(now) {
                    inside.push(name.clone());
                }
            }
        }
        Ok(inside)
    }
}
