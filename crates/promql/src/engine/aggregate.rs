//! Aggregation operators (upstream `rangeEvalAgg`, `aggregation`, `aggregationK`,
//! `aggregationCountValues`).

use std::cmp::Ordering;
use std::collections::HashMap;

use watchfire_model::{Labels, METRIC_NAME, format_go_float};

use super::Error;
use super::annotations::{Annotation, Annotations};
use super::eval::{Evaluator, HashKeyed, Step};
use super::functions::kahan_inc;
use super::plan::Node;
use super::quantile::quantile;
use super::value::{FPoint, Matrix, Sample, Series, Vector};
use crate::ast::{AggregateOp, PosRange};

/// The parameter of `topk`, `quantile` and friends, per step (upstream `fParams`).
struct Params {
    values: Vec<f64>,
    constant: Option<f64>,
    min: f64,
    max: f64,
    has_nan: bool,
    next: usize,
}

impl Params {
    fn next(&mut self) -> f64 {
        if let Some(c) = self.constant {
            return c;
        }
        let v = self.values.get(self.next).copied().unwrap_or(0.0);
        self.next += 1;
        v
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

pub(crate) fn grouping_key(metric: &Labels, grouping: &[&str], without: bool) -> u64 {
    if without {
        metric.hash_without_labels(grouping)
    } else if grouping.is_empty() {
        0
    } else {
        metric.hash_for_labels(grouping)
    }
}

pub(crate) fn grouping_labels(metric: &Labels, grouping: &[&str], without: bool) -> Labels {
    if without {
        let mut b = metric.builder();
        b.retain(|n, _| n != METRIC_NAME && !grouping.contains(&n));
        b.build()
    } else if grouping.is_empty() {
        Labels::empty()
    } else {
        let mut b = metric.builder();
        b.retain(|n, _| grouping.contains(&n));
        b.build()
    }
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    drop_name: bool,
    values: Vec<f64>,
    heap: Vec<Sample>,
    complete: bool,
}

/// Go's `container/heap` over samples with a caller-given "less".
fn heap_up(h: &mut [Sample], mut j: usize, less: &dyn Fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if i == j || !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, n: usize, less: &dyn Fn(&Sample, &Sample) -> bool) -> bool {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<Sample>, s: Sample, less: &dyn Fn(&Sample, &Sample) -> bool) {
    h.push(s);
    let n = h.len();
    heap_up(h, n - 1, less);
}

fn heap_fix0(h: &mut [Sample], less: &dyn Fn(&Sample, &Sample) -> bool) {
    let n = h.len();
    if !heap_down(h, 0, n, less) {
        heap_up(h, 0, less);
    }
}

/// Ascending by value with NaN first (upstream `vectorByValueHeap`).
fn less_value(a: &Sample, b: &Sample) -> bool {
    a.f.is_nan() || a.f < b.f
}

/// Descending by value with NaN first (upstream `vectorByReverseValueHeap`).
fn less_reverse(a: &Sample, b: &Sample) -> bool {
    a.f.is_nan() || a.f > b.f
}

impl Evaluator<'_> {
    fn params(&mut self, param: Option<&Node>) -> Result<Params, Error> {
        let mut p = Params {
            values: Vec::new(),
            constant: None,
            min: 0.0,
            max: 0.0,
            has_nan: false,
            next: 0,
        };
        let Some(node) = param else { return Ok(p) };
        if matches!(node, Node::String(_)) {
            return Ok(p);
        }
        let constant = matches!(node.inner(), Node::Number(..));
        let mat = match self.eval(node)? {
            super::eval::Val::Matrix(m) => m,
            super::eval::Val::String(_) => return Ok(p),
        };
        let Some(series) = mat.into_iter().next() else {
            return Ok(p);
        };
        if constant && let Some(first) = series.floats.first() {
            p.constant = Some(first.f);
            p.min = first.f;
            p.max = first.f;
            p.has_nan = first.f.is_nan();
            return Ok(p);
        }
        p.min = f64::MAX;
        p.max = -f64::MAX;
        for pt in &series.floats {
            p.max = go_max(p.max, pt.f);
            p.min = go_min(p.min, pt.f);
            p.has_nan |= pt.f.is_nan();
        }
        p.values = series.floats.iter().map(|x| x.f).collect();
        Ok(p)
    }

    pub(crate) fn aggregate(&mut self, node: &Node) -> Result<Matrix, Error> {
        let Node::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
            pos,
        } = node
        else {
            unreachable!("aggregate() is only called on aggregations");
        };
        let (op, without, pos) = (*op, *without, *pos);
        if op == AggregateOp::CountValues {
            let Some(Node::String(label)) = param.as_deref() else {
                return Err(Error::exec("count_values needs a string parameter"));
            };
            if label.invalid_utf8.is_some() || label.value.is_empty() {
                return Err(Error::exec(format!("invalid label name {label}")));
            }
            let value_label = label.value.clone();
            let mut names: Vec<String> = grouping.clone();
            if !without {
                names.push(value_label.clone());
                names.sort();
            }
            return self.range_eval(None, &[expr], &mut |st: &mut Step<'_>| {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                Ok(count_values(&st.vectors[0], &refs, without, &value_label))
            });
        }
        let original = self.current;
        let mut params = self.params(param.as_deref())?;
        let input = self.eval(expr)?;
        let input = match input {
            super::eval::Val::Matrix(m) => m,
            super::eval::Val::String(_) => Vec::new(),
        };
        let names: Vec<&str> = grouping.iter().map(String::as_str).collect();
        let param_pos = param.as_deref().map(|p| p.pos()).unwrap_or_default();
        let expr_pos = expr.pos();
        let result = self.range_eval_agg(op, &names, without, input, &mut params, pos, expr_pos, param_pos)?;
        self.current = original + result.iter().map(|s| s.floats.len() as i64).sum::<i64>();
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn range_eval_agg(
        &mut self,
        op: AggregateOp,
        grouping: &[&str],
        without: bool,
        input: Matrix,
        params: &mut Params,
        _pos: PosRange,
        expr_pos: PosRange,
        param_pos: PosRange,
    ) -> Result<Matrix, Error> {
        let is_k = matches!(
            op,
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk | AggregateOp::LimitRatio
        );
        let mut group_index: HashKeyed<usize> = HashKeyed::default();
        let mut series_group = Vec::with_capacity(input.len());
        let mut result: Matrix = Vec::new();
        for s in &input {
            let key = grouping_key(&s.metric, grouping, without);
            let next = group_index.len();
            let idx = *group_index.entry(key).or_insert_with(|| {
                if !is_k {
                    result.push(Series::new(grouping_labels(&s.metric, grouping, without), Vec::new()));
                }
                next
            });
            series_group.push(idx);
        }
        let num_groups = group_index.len();
        let mut groups = vec![Group::default(); num_groups];
        let mut annos = Annotations::new();
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                if params.max < 1.0 {
                    return Ok(Vec::new());
                }
                if params.has_nan {
                    return Err(Error::exec("Parameter value is NaN"));
                }
                if params.min <= i64::MIN as f64 {
                    return Err(Error::exec(format!(
                        "Scalar value {} underflows int64",
                        format_go_float(params.min)
                    )));
                }
                if params.max >= i64::MAX as f64 {
                    return Err(Error::exec(format!(
                        "Scalar value {} overflows int64",
                        format_go_float(params.max)
                    )));
                }
            }
            AggregateOp::LimitRatio => {
                if params.max == 0.0 && params.min == 0.0 {
                    return Ok(Vec::new());
                }
                if params.has_nan {
                    return Err(Error::exec("Ratio value is NaN"));
                }
                if params.max > 1.0 {
                    annos.add(Annotation::warning(
                        format!(
                            "ratio value should be between -1 and 1, got {}, capping to 1",
                            format_go_float(params.max)
                        ),
                        param_pos,
                    ));
                }
                if params.min < -1.0 {
                    annos.add(Annotation::warning(
                        format!(
                            "ratio value should be between -1 and 1, got {}, capping to -1",
                            format_go_float(params.min)
                        ),
                        param_pos,
                    ));
                }
            }
            AggregateOp::Quantile => {
                if params.has_nan {
                    annos.add(invalid_quantile(f64::NAN, param_pos));
                }
                if params.max > 1.0 {
                    annos.add(invalid_quantile(params.max, param_pos));
                }
                if params.min < 0.0 {
                    annos.add(invalid_quantile(params.min, param_pos));
                }
            }
            _ => {}
        }
        let mut positions = vec![0usize; input.len()];
        let mut k_series: Vec<Series> = Vec::new();
        let mut k_index: HashMap<Labels, usize> = HashMap::new();
        let instant = self.start == self.end;
        let temp = self.current;
        for step in 0..self.num_steps() {
            let ts = self.start + step as i64 * self.interval;
            let fparam = params.next();
            self.check()?;
            self.current = temp;
            if is_k {
                let out = self.aggregation_k(op, fparam, &input, &series_group, &mut groups, &mut positions, ts);
                if instant {
                    self.annos.merge(annos);
                    return Ok(out
                        .into_iter()
                        .map(|s| Series {
                            metric: s.metric,
                            floats: vec![FPoint { t: ts, f: s.f }],
                            drop_name: s.drop_name,
                        })
                        .collect());
                }
                for s in out {
                    match k_index.get(&s.metric) {
                        Some(&i) => k_series[i].floats.push(FPoint { t: ts, f: s.f }),
                        None => {
                            k_index.insert(s.metric.clone(), k_series.len());
                            k_series.push(Series {
                                metric: s.metric,
                                floats: vec![FPoint { t: ts, f: s.f }],
                                drop_name: s.drop_name,
                            });
                        }
                    }
                }
            } else {
                aggregation(
                    op,
                    fparam,
                    &input,
                    &series_group,
                    &mut groups,
                    &mut positions,
                    ts,
                    &mut result,
                );
            }
            if self.current > self.ctx.opts.max_samples as i64 {
                return Err(Error::TooManySamples);
            }
        }
        let _ = expr_pos;
        self.annos.merge(annos);
        if is_k {
            return Ok(k_series);
        }
        result.retain(|s| !s.floats.is_empty());
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn aggregation_k(
        &mut self,
        op: AggregateOp,
        fparam: f64,
        input: &Matrix,
        series_group: &[usize],
        groups: &mut [Group],
        positions: &mut [usize],
        ts: i64,
    ) -> Vector {
        for g in groups.iter_mut() {
            g.seen = false;
            g.heap.clear();
            g.complete = false;
        }
        let mut groups_remaining = groups.len();
        let k = (fparam as i64).min(input.len() as i64);
        let ratio = fparam.clamp(-1.0, 1.0);
        let mut si = 0;
        while si < input.len() {
            let Some(f) = next_value(&input[si], &mut positions[si], ts) else {
                si += 1;
                continue;
            };
            let s = Sample {
                metric: input[si].metric.clone(),
                t: ts,
                f,
                drop_name: input[si].drop_name,
            };
            match op {
                AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk if k < 1 => {
                    advance_rest(input, positions, si + 1, ts);
                    return Vec::new();
                }
                AggregateOp::LimitRatio if fparam == 0.0 => {
                    advance_rest(input, positions, si + 1, ts);
                    return Vec::new();
                }
                _ => {}
            }
            let g = &mut groups[series_group[si]];
            if !g.seen {
                g.seen = true;
                match op {
                    AggregateOp::LimitRatio => {
                        if add_ratio_sample(ratio, &s) {
                            g.heap.push(s);
                        }
                    }
                    AggregateOp::Limitk => g.heap.push(s),
                    AggregateOp::Topk => heap_push(&mut g.heap, s, &less_value),
                    _ => heap_push(&mut g.heap, s, &less_reverse),
                }
                si += 1;
                // A fresh group may already hold k elements (k == 1).
                if op == AggregateOp::Limitk && g.heap.len() as i64 == k && !g.complete {
                    g.complete = true;
                    groups_remaining -= 1;
                    if groups_remaining == 0 {
                        advance_rest(input, positions, si, ts);
                        break;
                    }
                }
                continue;
            }
            match op {
                AggregateOp::Topk => {
                    if (g.heap.len() as i64) < k {
                        heap_push(&mut g.heap, s, &less_value);
                    } else if g.heap[0].f < s.f || (g.heap[0].f.is_nan() && !s.f.is_nan()) {
                        g.heap[0] = s;
                        if k > 1 {
                            heap_fix0(&mut g.heap, &less_value);
                        }
                    }
                }
                AggregateOp::Bottomk => {
                    if (g.heap.len() as i64) < k {
                        heap_push(&mut g.heap, s, &less_reverse);
                    } else if g.heap[0].f > s.f || (g.heap[0].f.is_nan() && !s.f.is_nan()) {
                        g.heap[0] = s;
                        if k > 1 {
                            heap_fix0(&mut g.heap, &less_reverse);
                        }
                    }
                }
                AggregateOp::Limitk => {
                    if (g.heap.len() as i64) < k {
                        g.heap.push(s);
                    }
                    if !g.complete && g.heap.len() as i64 == k {
                        g.complete = true;
                        groups_remaining -= 1;
                        if groups_remaining == 0 {
                            advance_rest(input, positions, si + 1, ts);
                            break;
                        }
                    }
                }
                _ => {
                    if add_ratio_sample(ratio, &s) {
                        g.heap.push(s);
                    }
                }
            }
            si += 1;
        }
        let mut out = Vec::new();
        for g in groups.iter_mut() {
            if !g.seen {
                continue;
            }
            match op {
                AggregateOp::Topk => {
                    // Descending, NaN last.
                    g.heap.sort_by(|a, b| desc_nan_last(a.f, b.f));
                }
                AggregateOp::Bottomk => {
                    g.heap.sort_by(|a, b| asc_nan_last(a.f, b.f));
                }
                _ => {}
            }
            out.append(&mut g.heap);
        }
        self.current += out.len() as i64;
        out
    }
}

fn desc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

fn asc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Deterministic sampling by label hash (upstream `HashRatioSampler`).
fn add_ratio_sample(ratio: f64, s: &Sample) -> bool {
    let offset = s.metric.stable_hash() as f64 / u64::MAX as f64;
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn invalid_quantile(q: f64, pos: PosRange) -> Annotation {
    Annotation::warning(
        format!("quantile value should be between 0 and 1, got {}", format_go_float(q)),
        pos,
    )
}

fn next_value(s: &Series, pos: &mut usize, ts: i64) -> Option<f64> {
    match s.floats.get(*pos) {
        Some(p) if p.t == ts => {
            *pos += 1;
            Some(p.f)
        }
        _ => None,
    }
}

fn advance_rest(input: &Matrix, positions: &mut [usize], from: usize, ts: i64) {
    for i in from..input.len() {
        next_value(&input[i], &mut positions[i], ts);
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

#[allow(clippy::too_many_arguments)]
fn aggregation(
    op: AggregateOp,
    q: f64,
    input: &Matrix,
    series_group: &[usize],
    groups: &mut [Group],
    positions: &mut [usize],
    ts: i64,
    result: &mut Matrix,
) {
    for g in groups.iter_mut() {
        g.seen = false;
    }
    for (si, s) in input.iter().enumerate() {
        let Some(f) = next_value(s, &mut positions[si], ts) else {
            continue;
        };
        let g = &mut groups[series_group[si]];
        if !g.seen {
            *g = Group {
                seen: true,
                value: f,
                mean: f,
                count: 1.0,
                drop_name: s.drop_name,
                values: std::mem::take(&mut g.values),
                ..Group::default()
            };
            match op {
                AggregateOp::Stddev | AggregateOp::Stdvar => {
                    g.value = if f.is_nan() || f.is_infinite() { f64::NAN } else { 0.0 };
                }
                AggregateOp::Quantile => {
                    g.values.clear();
                    g.values.push(f);
                }
                AggregateOp::Group => g.value = 1.0,
                _ => {}
            }
            continue;
        }
        if s.drop_name {
            g.drop_name = true;
        }
        match op {
            AggregateOp::Sum => {
                (g.value, g.kahan_c) = kahan_inc(f, g.value, g.kahan_c);
            }
            AggregateOp::Avg => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (nv, nc) = kahan_inc(f, g.value, g.kahan_c);
                    if !nv.is_infinite() {
                        g.value = nv;
                        g.kahan_c = nc;
                        continue;
                    }
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let qq = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = kahan_inc(f / g.count, qq * g.mean, qq * g.kahan_c);
            }
            AggregateOp::Max if g.value < f || g.value.is_nan() => g.value = f,
            AggregateOp::Min if g.value > f || g.value.is_nan() => g.value = f,
            AggregateOp::Count => g.count += 1.0,
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            AggregateOp::Quantile => g.values.push(f),
            _ => {}
        }
    }
    for (ri, g) in groups.iter_mut().enumerate() {
        if !g.seen {
            continue;
        }
        let v = match op {
            AggregateOp::Avg => {
                if g.incremental_mean {
                    g.mean + g.kahan_c
                } else {
                    g.value / g.count + g.kahan_c / g.count
                }
            }
            AggregateOp::Count => g.count,
            AggregateOp::Stdvar => g.value / g.count,
            AggregateOp::Stddev => (g.value / g.count).sqrt(),
            AggregateOp::Quantile => quantile(q, &mut g.values),
            AggregateOp::Sum => g.value + g.kahan_c,
            _ => g.value,
        };
        let out = &mut result[ri];
        out.floats.push(FPoint { t: ts, f: v });
        out.drop_name = g.drop_name;
    }
}

fn count_values(vec: &Vector, grouping: &[&str], without: bool, label: &str) -> Vector {
    let mut groups: HashKeyed<(Labels, usize)> = HashKeyed::default();
    let mut order = Vec::new();
    for s in vec {
        let mut b = s.metric.builder();
        b.set(label, &format_f(s.f));
        let metric = b.build();
        let key = grouping_key(&metric, grouping, without);
        match groups.get_mut(&key) {
            Some(g) => g.1 += 1,
            None => {
                order.push(key);
                groups.insert(key, (grouping_labels(&metric, grouping, without), 1));
            }
        }
    }
    order
        .into_iter()
        .map(|k| {
            let (l, c) = groups.remove(&k).expect("every key in order was inserted");
            Sample::new(l, 0, c as f64)
        })
        .collect()
}
