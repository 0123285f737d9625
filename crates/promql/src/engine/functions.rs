//! PromQL functions (upstream promql/functions.go): the per-step implementations over
//! instant vectors, and the functions over range vectors, which read each input series once
//! through a window that slides forward from step to step.

use std::collections::HashMap;

use regex::Regex;
use watchfire_model::{Labels, METRIC_NAME, MatchType, format_go_float, parse_go_float};

use super::Error;
use super::annotations::{Annotation, Annotations};
use super::eval::{Evaluator, LookbackCursor, Step, Window, drop_metadata, merge_same_labelset};
use super::plan::{Node, Selector};
use super::quantile::{Bucket, bucket_fraction, bucket_quantile, quantile};
use super::value::{FPoint, Matrix, Sample, Series, Vector};
use crate::ast::{PosRange, RangeMode};

/// Kahan–Neumaier summation step (upstream util/kahansum `Inc`): adds `inc` to `sum` with
/// compensation `c`.
#[inline(never)]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: NaN wins, +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b && a == 0.0 {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b && a == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Linear interpolation between two points at `t`; for counters a decrease is taken as a
/// reset to zero.
pub(crate) fn interpolate(p1: FPoint, p2: FPoint, t: i64, is_counter: bool) -> f64 {
    let mut y1 = p1.f;
    let y2 = p2.f;
    if is_counter && y2 < y1 {
        y1 = 0.0;
    }
    y1 + (y2 - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

fn pick_left(f: &[FPoint], first: usize, start: i64, smoothed: bool, counter: bool) -> f64 {
    if smoothed && f[first].t < start {
        return interpolate(f[first], f[first + 1], start, counter);
    }
    f[first].f
}

fn pick_right(f: &[FPoint], last: usize, end: i64, smoothed: bool, counter: bool) -> f64 {
    if smoothed && last > 0 && f[last].t > end {
        return interpolate(f[last - 1], f[last], end, counter);
    }
    f[last].f
}

/// The points of an anchored or smoothed range vector: boundary values at `mint` and `maxt`
/// plus the samples strictly between (upstream `extendFloats`).
pub(crate) fn extend_floats(f: &[FPoint], mint: i64, maxt: i64, smoothed: bool) -> Vec<FPoint> {
    let mut last = f.len() - 1;
    let first = f[..last].partition_point(|p| p.t <= mint).saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.t < maxt);
    }
    if f[last].t <= mint {
        return Vec::new();
    }
    let left = pick_left(f, first, mint, smoothed, false);
    let right = pick_right(f, last, maxt, smoothed, false);
    let mut lo = first;
    if f[lo].t <= mint {
        lo += 1;
    }
    let mut hi = last as i64;
    if f[last].t >= maxt {
        hi -= 1;
    }
    let mut out = Vec::with_capacity(f.len() + 2);
    out.push(FPoint { t: mint, f: left });
    if hi >= lo as i64 {
        out.extend_from_slice(&f[lo..=hi as usize]);
    }
    out.push(FPoint { t: maxt, f: right });
    out
}

/// What a function over a range vector sees at one step.
struct Win<'a> {
    floats: &'a [FPoint],
    /// Start timestamps of `floats` (0: unknown), for the functions that use them (rate,
    /// increase, irate, resets) over a selector; empty otherwise and when no point has one.
    sts: &'a [i64],
    /// The selected metric's name, for the start-timestamp overlap warning.
    metric_name: Option<&'a str>,
    ts: i64,
    range_start: i64,
    range_end: i64,
    range: i64,
    mode: RangeMode,
    scalars: &'a [f64],
    arg_pos: PosRange,
    annos: &'a mut Annotations,
}

/// Whether the start timestamps say the counter was reset between the previous sample
/// (`prev_st`, `prev_t`) and the current one (upstream `isStartTimestampReset`).
fn is_start_timestamp_reset(prev_st: i64, prev_t: i64, cur_st: i64, cur_t: i64) -> bool {
    // Unknown (0), invalid (after the sample) or OTel's "unknown start" (at the sample).
    if cur_st == 0 || cur_st >= cur_t {
        return false;
    }
    if cur_st != prev_t {
        return cur_st > prev_t;
    }
    // The start is the previous sample: a delta (a reset every sample) when the previous
    // start was known, a cumulative series with an unknown start otherwise. A previous start
    // after its sample is invalid and counts as unknown.
    prev_st <= prev_t && prev_st != 0 && prev_st != prev_t
}

/// Whether a sample's start lies before the previous sample without being the previous
/// sample's start: neither a delta nor a cumulative series, so overlapping intervals
/// (upstream `checkStartTimeOverlap`).
fn start_time_overlaps(prev_st: i64, prev_t: i64, cur_st: i64) -> bool {
    cur_st != 0 && cur_st < prev_t && cur_st != prev_st
}

/// The overlap warning (upstream `annotations.NewStartTimeOverlapWarning`).
fn start_time_overlap_warning(w: &Win<'_>) -> Annotation {
    Annotation::warning(
        format!(
            "sample has start time that overlaps with previous sample timestamp for metric {}",
            watchfire_model::go_quote(w.metric_name.unwrap_or(""))
        ),
        w.arg_pos,
    )
}

/// Same extrapolation as upstream `promql/functions.go` `extrapolatedRate`, including its use
/// of start timestamps: they mark counter resets, and a first sample whose start lies inside
/// the range stands for a zero at that start instead of extrapolating to the left.
fn extrapolated_rate(w: &mut Win<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.mode != RangeMode::Default {
        return extended_rate(w, is_counter, is_rate);
    }
    let f = w.floats;
    if f.is_empty() {
        return None;
    }
    let sts = if is_counter { w.sts } else { &[] };
    let n1 = f.len() - 1;
    let (first_t, last_t) = (f[0].t, f[n1].t);
    let mut result = f[n1].f - f[0].f;
    if is_counter {
        let mut overlap = false;
        for (i, pair) in f.windows(2).enumerate() {
            let st_reset = i + 1 < sts.len() && {
                if !overlap && start_time_overlaps(sts[i], pair[0].t, sts[i + 1]) {
                    overlap = true;
                    let a = start_time_overlap_warning(w);
                    w.annos.add(a);
                }
                is_start_timestamp_reset(sts[i], pair[0].t, sts[i + 1], pair[1].t)
            };
            if pair[1].f < pair[0].f || st_reset {
                result += pair[0].f;
            }
        }
    }
    let mut to_start = (first_t - w.range_start) as f64 / 1000.0;
    let mut to_end = (w.range_end - last_t) as f64 / 1000.0;
    let mut sampled = (last_t - first_t) as f64 / 1000.0;
    let avg = if n1 > 0 { sampled / n1 as f64 } else { 0.0 };
    let threshold = avg * 1.1;
    if let Some(&st0) = sts.first()
        && st0 != 0
        && st0 > w.range_start
        && st0 < first_t
    {
        // The first sample's start is inside the range (whose start is exclusive): a zero
        // at that start, rather than extrapolation, is the left edge.
        to_start = 0.0;
        sampled = (last_t - st0) as f64 / 1000.0;
        result += f[0].f;
    } else if n1 == 0 {
        return None;
    } else {
        if to_start >= threshold {
            to_start = avg / 2.0;
        }
        if is_counter {
            let mut to_zero = to_start;
            if result > 0.0 && f[0].f >= 0.0 {
                to_zero = sampled * (f[0].f / result);
            }
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `rate`/`increase`/`delta` over anchored or smoothed selectors (upstream `extendedRate`).
fn extended_rate(w: &mut Win<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let f = w.floats;
    if f.is_empty() {
        return None;
    }
    let smoothed = w.mode == RangeMode::Smoothed;
    let (start, end) = (w.range_start, w.range_end);
    let mut last = f.len() - 1;
    let mut first = f[..last].partition_point(|p| p.t <= start).saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.t < end);
    }
    if f[last].t <= start {
        return None;
    }
    if smoothed && f[first].t > end {
        return None;
    }
    let left = pick_left(f, first, start, smoothed, is_counter);
    let right = pick_right(f, last, end, smoothed, is_counter);
    let mut result = right - left;
    if is_counter {
        if f[first].t <= start {
            first += 1;
        }
        let mut hi = last as i64;
        if f[last].t >= end {
            hi -= 1;
        }
        let inner: &[FPoint] = if hi >= first as i64 {
            &f[first..=hi as usize]
        } else {
            &[]
        };
        let mut correction = 0.0;
        let mut prev = left;
        for p in inner {
            if p.f < prev {
                correction += prev;
            }
            prev = p.f;
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= w.range as f64 / 1000.0;
    }
    Some(result)
}

fn instant_value(w: &Win<'_>, is_rate: bool) -> Option<f64> {
    let f = w.floats;
    if f.len() < 2 {
        return None;
    }
    let (a, b) = (f[f.len() - 2], f[f.len() - 1]);
    let interval = b.t - a.t;
    if interval == 0 {
        return None;
    }
    let st_reset =
        is_rate && w.sts.len() == f.len() && is_start_timestamp_reset(w.sts[f.len() - 2], a.t, w.sts[f.len() - 1], b.t);
    let mut v = b.f;
    if !is_rate || !(b.f < a.f || st_reset) {
        v = b.f - a.f;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

fn linear_regression(samples: &[FPoint], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].f;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(s.f, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * s.f, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn avg_over_time(f: &[FPoint]) -> f64 {
    let (mut sum, mut count) = (f[0].f, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in f[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.f, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.f / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn variance_over_time(f: &[FPoint]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in f {
        count += 1.0;
        let delta = p.f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// The index of the first sample an anchored `changes`/`resets` looks at: the last sample at
/// or before the range start (upstream `pickFirstSampleIndices`). `None` when nothing is in
/// the range.
fn first_anchored(w: &Win<'_>) -> Option<usize> {
    if w.mode != RangeMode::Anchored {
        return Some(0);
    }
    let le = w.floats.partition_point(|p| p.t <= w.range_start) as i64 - 1;
    if le + 1 >= w.floats.len() as i64 {
        return None;
    }
    Some(le.max(0) as usize)
}

fn double_exponential_smoothing(w: &Win<'_>) -> Result<Option<f64>, Error> {
    let (sf, tf) = (w.scalars[0], w.scalars[1]);
    if sf <= 0.0 || sf >= 1.0 {
        return Err(Error::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(Error::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    let f = w.floats;
    if f.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1, mut b) = (0.0, f[0].f, f[1].f - f[0].f);
    for (i, p) in f.iter().enumerate().skip(1) {
        let x = sf * p.f;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// A function over a range vector at one step.
fn range_function(name: &str, w: &mut Win<'_>) -> Result<Option<f64>, Error> {
    let f = w.floats;
    let secs = |t: i64| t as f64 / 1000.0;
    Ok(match name {
        "rate" => extrapolated_rate(w, true, true),
        "increase" => extrapolated_rate(w, true, false),
        "delta" => extrapolated_rate(w, false, false),
        "irate" => instant_value(w, true),
        "idelta" => instant_value(w, false),
        "avg_over_time" => Some(avg_over_time(f)),
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in f {
                (sum, c) = kahan_inc(p.f, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "count_over_time" => Some(f.len() as f64),
        "present_over_time" | "absent_over_time" => Some(1.0),
        "last_over_time" => f.last().map(|p| p.f),
        "first_over_time" => f.first().map(|p| p.f),
        "ts_of_last_over_time" => f.last().map(|p| secs(p.t)),
        "ts_of_first_over_time" => f.first().map(|p| secs(p.t)),
        "max_over_time" | "min_over_time" | "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let mut best = f[0].f;
            let mut best_t = f[0].t;
            for p in f {
                let better = match name {
                    "max_over_time" => p.f > best,
                    "min_over_time" => p.f < best,
                    "ts_of_max_over_time" => p.f >= best,
                    _ => p.f <= best,
                } || best.is_nan();
                if better {
                    best = p.f;
                    best_t = p.t;
                }
            }
            Some(if name.starts_with("ts_of") { secs(best_t) } else { best })
        }
        "stddev_over_time" => Some(variance_over_time(f).sqrt()),
        "stdvar_over_time" => Some(variance_over_time(f)),
        "quantile_over_time" => {
            let q = w.scalars[0];
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                w.annos.add(Annotation::warning(
                    format!("quantile value should be between 0 and 1, got {}", format_go_float(q)),
                    w.arg_pos,
                ));
            }
            let mut values: Vec<f64> = f.iter().map(|p| p.f).collect();
            Some(quantile(q, &mut values))
        }
        "mad_over_time" => {
            if f.iter().any(|p| p.f.is_nan()) {
                Some(f64::NAN)
            } else {
                let mut values: Vec<f64> = f.iter().map(|p| p.f).collect();
                let median = quantile(0.5, &mut values);
                for v in &mut values {
                    *v = (*v - median).abs();
                }
                Some(quantile(0.5, &mut values))
            }
        }
        "changes" => first_anchored(w).map(|first| {
            let mut n = 0;
            for pair in f[first..].windows(2) {
                let (a, b) = (pair[0].f, pair[1].f);
                if b != a && !(a.is_nan() && b.is_nan()) {
                    n += 1;
                }
            }
            n as f64
        }),
        "resets" => first_anchored(w).map(|first| {
            let sts = w.sts;
            (first + 1..f.len())
                .filter(|&i| {
                    f[i].f < f[i - 1].f
                        || (i < sts.len() && is_start_timestamp_reset(sts[i - 1], f[i - 1].t, sts[i], f[i].t))
                })
                .count() as f64
        }),
        "deriv" => {
            if f.len() < 2 {
                None
            } else {
                Some(linear_regression(f, f[0].t).0)
            }
        }
        "predict_linear" => {
            if f.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(f, w.ts);
                Some(slope * w.scalars[0] + intercept)
            }
        }
        "double_exponential_smoothing" => double_exponential_smoothing(w)?,
        _ => {
            return Err(Error::exec(format!(
                "function {name} is not supported over range vectors"
            )));
        }
    })
}

const ANCHORED_SAFE: &[&str] = &["changes", "delta", "increase", "rate", "resets"];
const SMOOTHED_SAFE: &[&str] = &["delta", "increase", "rate"];

/// The labels `absent()` and `absent_over_time()` return: the equality matchers of a plain
/// selector argument.
fn absent_labels(arg: &Node) -> Labels {
    let sel: &Selector = match arg.inner() {
        Node::Vector(s) => s,
        Node::Matrix { sel, .. } => sel,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in &sel.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.kind == MatchType::Equal && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// Natural-order string comparison as the `natsort` package sorts: runs of digits compare as
/// numbers, other runs as strings. Returns whether `a` sorts before `b`.
fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut start = 0;
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                if start < i {
                    out.push(&s[start..i]);
                }
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        if i >= cb.len() {
            return false;
        }
        let y = cb[i];
        let (xi, yi) = (x.parse::<i64>(), y.parse::<i64>());
        if let (Ok(xi), Ok(yi)) = (&xi, &yi) {
            if xi == yi {
                if i == ca.len() - 1 {
                    return true;
                } else if i == cb.len() - 1 {
                    return false;
                }
                continue;
            }
            return xi < yi;
        }
        if *x == y {
            if i == ca.len() - 1 {
                return true;
            } else if i == cb.len() - 1 {
                return false;
            }
            continue;
        }
        return *x < y;
    }
    false
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
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
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    match name {
        "year" => y as f64,
        "month" => m as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => (month_days[..(m - 1) as usize].iter().sum::<u32>() + d) as f64,
        "days_in_month" => month_days[(m - 1) as usize] as f64,
        "hour" => (sod / 3600) as f64,
        _ => ((sod % 3600) / 60) as f64,
    }
}

/// Go's `int64(f)` conversion on amd64: NaN and out-of-range values become i64::MIN.
fn go_int64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

fn string_arg(n: &Node) -> &str {
    match n.inner() {
        Node::String(s) => &s.value,
        _ => "",
    }
}

fn valid_label_name(n: &Node) -> bool {
    match n.inner() {
        Node::String(s) => s.invalid_utf8.is_none() && !s.value.is_empty(),
        _ => false,
    }
}

impl Evaluator<'_> {
    pub(crate) fn call(&mut self, node: &Node) -> Result<Matrix, Error> {
        let Node::Call { func, args, pos } = node else {
            unreachable!("call() is only called on function calls");
        };
        let name = func.name;
        if (name == "timestamp" || name == "start_timestamp")
            && let Node::Vector(sel) = &args[0]
        {
            return self.timestamp_of_selector(sel, name == "start_timestamp");
        }
        match name {
            "label_replace" => return self.label_replace(args),
            "label_join" => return self.label_join(args),
            "info" => return self.info(args),
            _ => {}
        }
        let matrix_arg = args
            .iter()
            .position(|a| matches!(a, Node::Matrix { .. } | Node::Subquery { .. }));
        if name.starts_with("sort") && self.start != self.end {
            self.warn(Annotation::warning(
                "sort is ineffective for range queries since results are always ordered by labels",
                *pos,
            ));
        }
        let Some(mi) = matrix_arg else {
            let refs: Vec<&Node> = args.iter().collect();
            let delayed = self.delayed();
            return self.range_eval(None, &refs, &mut |st: &mut Step<'_>| {
                instant_function(name, args, st, delayed)
            });
        };
        self.range_function_call(name, args, mi)
    }

    fn range_function_call(&mut self, name: &'static str, args: &[Node], mi: usize) -> Result<Matrix, Error> {
        // Evaluate the scalar arguments first.
        let mut scalar_vals: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != mi {
                let m = self.eval(a)?;
                let vals = match m {
                    super::eval::Val::Matrix(m) => m.into_iter().next().map(|s| s.floats.iter().map(|p| p.f).collect()),
                    super::eval::Val::String(_) => None,
                };
                scalar_vals.push(vals.unwrap_or_default());
            }
        }
        let src = self.range_source(&args[mi], name)?;
        match src.mode {
            RangeMode::Anchored if !ANCHORED_SAFE.contains(&name) => {
                return Err(Error::exec(format!(
                    "anchored modifier can only be used with: {} - not with {name}",
                    ANCHORED_SAFE.join(", ")
                )));
            }
            RangeMode::Smoothed if !SMOOTHED_SAFE.contains(&name) => {
                return Err(Error::exec(format!(
                    "smoothed modifier can only be used with: {} - not with {name}",
                    SMOOTHED_SAFE.join(", ")
                )));
            }
            _ => {}
        }
        let lb = self.ctx.lookback;
        let arg_pos = args[0].pos();
        let drop_name = name != "last_over_time" && name != "first_over_time";
        let steps = self.num_steps();
        let mut mat: Matrix = Vec::with_capacity(src.list().len());
        let mut buf: Vec<FPoint> = Vec::new();
        // Start timestamps for the functions that use them, read only from storage: a
        // subquery's points have none (upstream cuts their propagation there too).
        let use_st = matches!(name, "rate" | "increase" | "irate" | "resets")
            && matches!(src.series, super::eval::SourceSeries::Storage(_));
        let mut sts: Vec<i64> = Vec::new();
        let mut scalars = vec![0.0; scalar_vals.len()];
        let mut annos = Annotations::new();
        for (si, s) in src.list().iter().enumerate() {
            self.check()?;
            self.current -= buf.len() as i64;
            buf.clear();
            sts.clear();
            let mut win = Window::new(s.iterator());
            let input_drop = src.drop_name.get(si).copied().unwrap_or(false);
            let series_drop = drop_name || input_drop;
            let labels = s.labels();
            let mut out = Series {
                metric: if !self.delayed() && series_drop {
                    drop_metadata(labels)
                } else {
                    labels.clone()
                },
                floats: Vec::new(),
                drop_name: series_drop,
            };
            for step in 0..steps {
                let ts = self.start + step as i64 * self.interval;
                for (j, v) in scalar_vals.iter().enumerate() {
                    scalars[j] = v.get(step).copied().unwrap_or(f64::NAN);
                }
                let range_end = src.at.unwrap_or(ts) - src.offset;
                let range_start = range_end - src.range;
                if step == 0 || src.at.is_none() {
                    let (mint, maxt) = match src.mode {
                        RangeMode::Default => (range_start, range_end),
                        RangeMode::Anchored => (range_start - lb, range_end),
                        RangeMode::Smoothed => (range_start - lb, range_end + lb),
                    };
                    let added = if use_st {
                        win.fill_st(&mut buf, &mut sts, mint, maxt)?
                    } else {
                        win.fill(&mut buf, mint, maxt)?
                    };
                    self.add_samples(added)?;
                }
                if buf.is_empty() {
                    continue;
                }
                let mut w = Win {
                    floats: &buf,
                    sts: &sts,
                    metric_name: labels.metric_name(),
                    ts,
                    range_start,
                    range_end,
                    range: src.range,
                    mode: src.mode,
                    scalars: &scalars,
                    arg_pos,
                    annos: &mut annos,
                };
                if let Some(v) = range_function(name, &mut w)? {
                    if out.floats.is_empty() {
                        out.floats.reserve(steps.min(1024));
                    }
                    out.floats.push(FPoint { t: ts, f: v });
                }
            }
            if !out.floats.is_empty() {
                self.add_samples(out.floats.len() as i64)?;
                if (name == "rate" || name == "increase")
                    && let Some(metric_name) = labels.metric_name()
                    && !["_total", "_sum", "_count", "_bucket"]
                        .iter()
                        .any(|x| metric_name.ends_with(x))
                {
                    annos.add(Annotation::info(
                        format!(
                            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
                            watchfire_model::go_quote(metric_name)
                        ),
                        arg_pos,
                    ));
                }
                mat.push(out);
            }
        }
        self.current -= buf.len() as i64;
        self.annos.merge(annos);
        if name == "absent_over_time" {
            let mut found = vec![false; steps];
            for s in &mat {
                for p in &s.floats {
                    found[((p.t - self.start) / self.interval) as usize] = true;
                }
            }
            if found.iter().all(|x| *x) {
                return Ok(Vec::new());
            }
            let floats = (0..steps)
                .filter(|i| !found[*i])
                .map(|i| FPoint {
                    t: self.start + i as i64 * self.interval,
                    f: 1.0,
                })
                .collect();
            return Ok(vec![Series {
                metric: absent_labels(&args[0]),
                floats,
                drop_name: true,
            }]);
        }
        if !self.delayed() && has_duplicates(&mat) {
            return Err(Error::exec("vector cannot contain metrics with the same labelset"));
        }
        Ok(mat)
    }

    /// `timestamp(selector)`: the timestamps of the samples themselves, not of the steps.
    /// `start_timestamp(selector)` (with `start`): the samples' start timestamps, 0 where
    /// unknown (upstream `funcStartTimestamp`). Over any other expression it returns nothing,
    /// as start timestamps do not travel through expressions.
    fn timestamp_of_selector(&mut self, sel: &Selector, start: bool) -> Result<Matrix, Error> {
        let series = self.ctx_series(sel)?;
        let mut cursors: Vec<LookbackCursor> = series
            .iter()
            .map(|s| {
                if start {
                    LookbackCursor::with_st(s.iterator())
                } else {
                    LookbackCursor::new(s.iterator())
                }
            })
            .collect();
        let lookback = self.ctx.lookback;
        let delayed = self.delayed();
        let labels: Vec<Labels> = series.iter().map(|s| s.labels().clone()).collect();
        let mut loaded = 0i64;
        let mut failure = None;
        let mat = self.range_eval(None, &[], &mut |st: &mut Step<'_>| {
            // Upstream evaluates an `@` selector here at exactly the `@` time, ignoring offset.
            let reft = match sel.at {
                Some(t) => t,
                None => st.ts - sel.offset,
            };
            let mut out = Vec::new();
            for (i, c) in cursors.iter_mut().enumerate() {
                match c.at(reft, lookback) {
                    Ok(Some(s)) => {
                        loaded += 1;
                        out.push(Sample {
                            metric: if delayed {
                                labels[i].clone()
                            } else {
                                drop_metadata(&labels[i])
                            },
                            t: st.ts,
                            f: if start { c.st() } else { s.t } as f64 / 1000.0,
                            drop_name: true,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => failure = Some(e),
                }
            }
            match failure.take() {
                Some(e) => Err(e),
                None => Ok(out),
            }
        })?;
        let _ = loaded;
        Ok(mat)
    }

    fn ctx_series(&self, sel: &Selector) -> Result<super::eval::SeriesList, Error> {
        self.ctx.series(sel, Some("timestamp"), 0)
    }

    fn label_replace(&mut self, args: &[Node]) -> Result<Matrix, Error> {
        let (dst, repl, src, re) = (
            string_arg(&args[1]),
            string_arg(&args[2]),
            string_arg(&args[3]),
            string_arg(&args[4]),
        );
        let regex = Regex::new(&format!("^(?s:{re})$"))
            .map_err(|_| Error::exec(format!("invalid regular expression in label_replace(): {re}")))?;
        if !valid_label_name(&args[1]) {
            return Err(Error::exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut mat = self.eval(&args[0])?.into_matrix();
        for s in &mut mat {
            let src_val = s.metric.get(src).unwrap_or("").to_owned();
            if let Some(caps) = regex.captures(&src_val) {
                let mut res = String::new();
                caps.expand(repl, &mut res);
                let mut b = s.metric.builder();
                b.set(dst, &res);
                s.metric = b.build();
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        merge_same_labelset(mat)
    }

    fn label_join(&mut self, args: &[Node]) -> Result<Matrix, Error> {
        let dst = string_arg(&args[1]);
        let sep = string_arg(&args[2]);
        let mut srcs = Vec::new();
        for a in &args[3..] {
            if !valid_label_name(a) {
                return Err(Error::exec(format!(
                    "invalid source label name in label_join(): {}",
                    string_arg(a)
                )));
            }
            srcs.push(string_arg(a));
        }
        if !valid_label_name(&args[1]) {
            return Err(Error::exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut mat = self.eval(&args[0])?.into_matrix();
        for s in &mut mat {
            let joined = srcs
                .iter()
                .map(|l| s.metric.get(l).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(sep);
            let mut b = s.metric.builder();
            b.set(dst, &joined);
            s.metric = b.build();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        merge_same_labelset(mat)
    }
}

fn has_duplicates(mat: &Matrix) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(mat.len());
    mat.iter().any(|s| !seen.insert(&s.metric))
}

/// Functions over instant vectors and scalars, at one step.
fn instant_function(name: &str, args: &[Node], st: &mut Step<'_>, delayed: bool) -> Result<Vector, Error> {
    let v = st.vectors;
    let scalar = |i: usize| v.get(i).and_then(|x| x.first()).map_or(f64::NAN, |s| s.f);
    let name_dropped = |l: &Labels| if delayed { l.clone() } else { drop_metadata(l) };
    let simple = |f: &dyn Fn(f64) -> f64| -> Vector {
        v[0].iter()
            .map(|s| Sample {
                metric: name_dropped(&s.metric),
                t: s.t,
                f: f(s.f),
                drop_name: true,
            })
            .collect()
    };
    let one = |f: f64| vec![Sample::new(Labels::empty(), st.ts, f)];
    Ok(match name {
        "abs" => simple(&f64::abs),
        "ceil" => simple(&f64::ceil),
        "floor" => simple(&f64::floor),
        "exp" => simple(&f64::exp),
        "sqrt" => simple(&f64::sqrt),
        "ln" => simple(&f64::ln),
        "log2" => simple(&f64::log2),
        "log10" => simple(&f64::log10),
        "sin" => simple(&f64::sin),
        "cos" => simple(&f64::cos),
        "tan" => simple(&f64::tan),
        "asin" => simple(&f64::asin),
        "acos" => simple(&f64::acos),
        "atan" => simple(&f64::atan),
        "sinh" => simple(&f64::sinh),
        "cosh" => simple(&f64::cosh),
        "tanh" => simple(&f64::tanh),
        "asinh" => simple(&f64::asinh),
        "acosh" => simple(&f64::acosh),
        "atanh" => simple(&f64::atanh),
        "rad" => simple(&|x| x * std::f64::consts::PI / 180.0),
        "deg" => simple(&|x| x * 180.0 / std::f64::consts::PI),
        "sgn" => simple(&|x| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        }),
        "round" => {
            let to_nearest = if args.len() >= 2 { scalar(1) } else { 1.0 };
            let inv = 1.0 / to_nearest;
            simple(&|x| (x * inv + 0.5).floor() / inv)
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let (lo, hi) = match name {
                "clamp" => (scalar(1), scalar(2)),
                "clamp_min" => (scalar(1), f64::INFINITY),
                _ => (f64::NEG_INFINITY, scalar(1)),
            };
            if hi < lo {
                return Ok(Vec::new());
            }
            simple(&|x| go_max(lo, go_min(hi, x)))
        }
        "pi" => one(std::f64::consts::PI),
        "time" => one(st.ts as f64 / 1000.0),
        "vector" => one(scalar(0)),
        "scalar" => one(if v[0].len() == 1 { v[0][0].f } else { f64::NAN }),
        "max_of" => one(go_max(scalar(0), scalar(1))),
        "min_of" => one(go_min(scalar(0), scalar(1))),
        "timestamp" => v[0]
            .iter()
            .map(|s| Sample {
                metric: name_dropped(&s.metric),
                t: s.t,
                f: s.t as f64 / 1000.0,
                drop_name: true,
            })
            .collect(),
        "absent" => {
            if v[0].is_empty() {
                vec![Sample::new(absent_labels(&args[0]), st.ts, 1.0)]
            } else {
                Vec::new()
            }
        }
        "sort" => {
            let mut out = v[0].clone();
            out.sort_by(|a, b| cmp_nan_last(a.f, b.f));
            out
        }
        "sort_desc" => {
            let mut out = v[0].clone();
            out.sort_by(|a, b| cmp_desc_nan_last(a.f, b.f));
            out
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let labels: Vec<&str> = args[1..].iter().map(string_arg).collect();
            let desc = name == "sort_by_label_desc";
            let mut out = v[0].clone();
            out.sort_by(|a, b| {
                for l in &labels {
                    let (x, y) = (a.metric.get(l).unwrap_or(""), b.metric.get(l).unwrap_or(""));
                    if x == y {
                        continue;
                    }
                    let less = natural_less(x, y);
                    return if less != desc {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    };
                }
                let c = a.metric.cmp(&b.metric);
                if desc { c.reverse() } else { c }
            });
            out
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" => {
            if v.is_empty() {
                one(date_part(name, st.ts.div_euclid(1000)))
            } else {
                simple(&|x| date_part(name, go_int64(x)))
            }
        }
        "histogram_quantile" => histogram_quantile(scalar(0), &v[1], st, args[0].pos(), args[1].pos(), delayed),
        "histogram_quantiles" => {
            let label = string_arg(&args[1]).to_owned();
            let mut out = Vec::new();
            for i in 2..args.len() {
                let q = scalar(i);
                let res = histogram_quantile(q, &v[0], st, args[i].pos(), args[0].pos(), delayed);
                for mut s in res {
                    let mut b = s.metric.builder();
                    b.set(&label, &open_metrics_float(q));
                    s.metric = b.build();
                    out.push(s);
                }
            }
            out
        }
        "histogram_fraction" => {
            let (lo, hi) = (scalar(0), scalar(1));
            let groups = classic_buckets(&v[2], args[2].pos(), st.annos, delayed);
            groups
                .into_iter()
                .map(|(metric, mut buckets)| Sample {
                    metric: name_dropped(&metric),
                    t: st.ts,
                    f: bucket_fraction(lo, hi, &mut buckets),
                    drop_name: true,
                })
                .collect()
        }
        // Native-histogram functions ignore float samples; start timestamps do not travel
        // through expressions, so `start_timestamp` of anything but a selector is empty.
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar"
        | "start_timestamp" => Vec::new(),
        _ => return Err(Error::exec(format!("unknown function {name}"))),
    })
}

/// Upstream `labels.FormatOpenMetricsFloat`: Go's shortest `'g'` form, with `.0` appended to
/// integral values.
fn open_metrics_float(f: f64) -> String {
    let s = format_go_float(f);
    if f.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

fn cmp_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// Groups classic-histogram bucket samples by their labels without `le`.
fn classic_buckets(vec: &Vector, pos: PosRange, annos: &mut Annotations, delayed: bool) -> Vec<(Labels, Vec<Bucket>)> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for s in vec {
        let le = s.metric.get("le").unwrap_or("");
        let Some(upper) = parse_go_float(le) else {
            let name = s.metric.metric_name().unwrap_or("");
            let mut msg = format!(
                "bucket label \"le\" is missing or has a malformed value of {}",
                watchfire_model::go_quote(le)
            );
            if delayed && !name.is_empty() {
                msg.push_str(&format!(" for metric name {}", watchfire_model::go_quote(name)));
            }
            annos.add(Annotation::warning(msg, pos));
            continue;
        };
        let mut b = s.metric.builder();
        b.del("le");
        let key = b.build();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            out.push((key, Vec::new()));
            out.len() - 1
        });
        out[i].1.push(Bucket { upper, count: s.f });
    }
    out
}

fn histogram_quantile(
    q: f64,
    vec: &Vector,
    st: &mut Step<'_>,
    qpos: PosRange,
    vpos: PosRange,
    delayed: bool,
) -> Vector {
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        st.annos.add(Annotation::warning(
            format!("quantile value should be between 0 and 1, got {}", format_go_float(q)),
            qpos,
        ));
    }
    let groups = classic_buckets(vec, vpos, st.annos, delayed);
    let mut out = Vec::with_capacity(groups.len());
    for (metric, mut buckets) in groups {
        let (v, mono) = bucket_quantile(q, &mut buckets);
        if mono.is_some() {
            let mut msg = "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_owned();
            if delayed && let Some(n) = metric.metric_name() {
                msg.push_str(&format!(" for metric name {}", watchfire_model::go_quote(n)));
            }
            st.annos.add(Annotation::info(msg, vpos));
        }
        out.push(Sample {
            metric: if delayed { metric } else { drop_metadata(&metric) },
            t: st.ts,
            f: v,
            drop_name: true,
        });
    }
    out
}
