//! The evaluator core: selectors, subqueries, step-invariant parts and the generic per-step
//! loop (upstream `evaluator.eval`, `rangeEval`, `evalSeries`, `matrixIterSlice`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use watchfire_model::{Labels, METRIC_NAME, Sample as StorageSample, Timestamp, is_stale_nan};
use watchfire_storage::{Querier, SampleIterator, SelectHints, Series as StorageSeries, VecSeries};

use super::annotations::{Annotation, Annotations};
use super::plan::{Node, Plan, Selector};
use super::value::{FPoint, Matrix, Sample, Series, Value, Vector};
use super::{EngineOptions, Error, Guard, QueryResult};
use crate::ast::{RangeMode, ValueType, VectorMatching};

/// The series one selector selected, shared between evaluations of that selector.
pub(crate) type SeriesList = Rc<Vec<Box<dyn StorageSeries>>>;

/// What every evaluator of one query shares.
pub(crate) struct Context<'a> {
    querier: &'a dyn Querier,
    pub(crate) opts: &'a EngineOptions,
    guard: Guard,
    pub(crate) lookback: i64,
    range: (i64, i64),
    cache: RefCell<Vec<Option<SeriesList>>>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        querier: &'a dyn Querier,
        plan: &Plan,
        opts: &'a EngineOptions,
        guard: Guard,
        lookback: i64,
        range: (i64, i64),
    ) -> Self {
        Context {
            querier,
            opts,
            guard,
            lookback,
            range,
            cache: RefCell::new(vec![None; plan.num_selectors]),
        }
    }

    /// The series of a selector, selected once per query.
    pub(crate) fn series(&self, sel: &Selector, func: Option<&str>, range: i64) -> Result<SeriesList, Error> {
        if let Some(s) = &self.cache.borrow()[sel.id] {
            return Ok(s.clone());
        }
        let hints = SelectHints {
            start: self.range.0,
            end: self.range.1,
            func: func.map(str::to_owned),
            range,
            ..SelectHints::default()
        };
        // Unsorted, as upstream's engine selects (`Select(ctx, false, ...)`): nothing here
        // depends on the order of a selector's series (range results are sorted at the end,
        // `sort*` functions sort explicitly), and the store may skip sorting by labels.
        let set = self.querier.select(false, Some(&hints), &sel.matchers);
        let mut out = Vec::with_capacity(set.size_hint().0);
        for s in set {
            out.push(s.map_err(Error::Storage)?);
        }
        let rc = Rc::new(out);
        self.cache.borrow_mut()[sel.id] = Some(rc.clone());
        Ok(rc)
    }
}

impl Context<'_> {
    /// Series matching `matchers`, not cached (for `info()`).
    pub(crate) fn select_direct(
        &self,
        matchers: &[watchfire_model::Matcher],
    ) -> Result<Vec<Box<dyn StorageSeries>>, Error> {
        let hints = SelectHints {
            start: self.range.0,
            end: self.range.1,
            func: Some("info".into()),
            ..SelectHints::default()
        };
        let mut out = Vec::new();
        for s in self.querier.select(true, Some(&hints), matchers) {
            out.push(s.map_err(Error::Storage)?);
        }
        Ok(out)
    }
}

/// An evaluated node: every node but a string literal yields a matrix.
pub(crate) enum Val {
    Matrix(Matrix),
    String(String),
}

impl Val {
    pub(crate) fn into_matrix(self) -> Matrix {
        self.matrix()
    }

    fn matrix(self) -> Matrix {
        match self {
            Val::Matrix(m) => m,
            Val::String(_) => Vec::new(),
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub(crate) ctx: &'a Context<'a>,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) interval: i64,
    /// Samples currently held (upstream `currentSamples`); may dip below zero transiently.
    pub(crate) current: i64,
    pub(crate) annos: Annotations,
}

/// Everything a per-step function sees.
pub(crate) struct Step<'s> {
    pub vectors: &'s [Vector],
    /// Per input vector, the matching-signature ordinal of each sample (binary operators).
    pub sigs: &'s [Vec<usize>],
    pub num_sigs: usize,
    pub ts: i64,
    pub annos: &'s mut Annotations,
}

pub(crate) fn run(ctx: &Context<'_>, plan: &Plan, start: i64, end: i64, step: i64) -> Result<QueryResult, Error> {
    let mut ev = Evaluator {
        ctx,
        start,
        end,
        interval: if step == 0 { 1 } else { step },
        current: 0,
        annos: Annotations::new(),
    };
    let val = ev.eval(&plan.root)?;
    let value = match val {
        Val::String(s) => Value::String { t: start, v: s },
        Val::Matrix(mut mat) => {
            if ctx.opts.delayed_name_removal {
                for s in &mut mat {
                    if s.drop_name {
                        s.metric = drop_metadata(&s.metric);
                    }
                }
                mat = merge_same_labelset(mat)?;
            }
            if step == 0 {
                match plan.value_type {
                    ValueType::Vector => Value::Vector(
                        mat.into_iter()
                            .map(|s| Sample {
                                f: s.floats.first().map_or(0.0, |p| p.f),
                                metric: s.metric,
                                t: start,
                                drop_name: false,
                            })
                            .collect(),
                    ),
                    ValueType::Scalar => Value::Scalar {
                        t: start,
                        v: mat.first().and_then(|s| s.floats.first()).map_or(f64::NAN, |p| p.f),
                    },
                    _ => {
                        mat.sort_by(|a, b| a.metric.cmp(&b.metric));
                        Value::Matrix(mat)
                    }
                }
            } else {
                ctx.guard.check()?;
                mat.sort_by(|a, b| a.metric.cmp(&b.metric));
                Value::Matrix(mat)
            }
        }
    };
    Ok(QueryResult {
        value,
        annotations: ev.annos,
    })
}

/// Removes `__name__` and the other metadata labels (`__type__`, `__unit__`), as upstream's
/// `DropReserved(schema.IsMetadataLabel)`.
pub(crate) fn drop_metadata(l: &Labels) -> Labels {
    if !l.iter().any(|x| is_metadata_label(x.name)) {
        return l.clone();
    }
    let mut b = l.builder();
    b.retain(|n, _| !is_metadata_label(n));
    b.build()
}

fn is_metadata_label(n: &str) -> bool {
    n == METRIC_NAME || n == "__type__" || n == "__unit__"
}

/// A hasher for keys that already are hashes of label sets: the key is its own hash.
#[derive(Clone, Copy, Default)]
pub(crate) struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; a simple multiplicative mix keeps it correct for anything else.
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by label-set hashes.
pub(crate) type HashKeyed<V> = HashMap<u64, V, std::hash::BuildHasherDefault<PreHashed>>;

/// Merges series that ended up with the same labels after the metric name was dropped;
/// overlapping timestamps are an error (upstream `mergeSeriesWithSameLabelset`).
pub(crate) fn merge_same_labelset(mat: Matrix) -> Result<Matrix, Error> {
    if mat.len() <= 1 {
        return Ok(mat);
    }
    // Usually every label set differs, which distinct hashes prove cheaply.
    let mut hashes: HashKeyed<()> = HashKeyed::with_capacity_and_hasher(mat.len(), Default::default());
    if mat.iter().all(|s| hashes.insert(s.metric.stable_hash(), ()).is_none()) {
        return Ok(mat);
    }
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(mat.len());
    let mut out: Matrix = Vec::with_capacity(mat.len());
    let mut merged_any = false;
    for s in mat {
        match index.get(&s.metric) {
            Some(&i) => {
                merged_any = true;
                out[i].floats.extend(s.floats);
            }
            None => {
                index.insert(s.metric.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged_any {
        for s in &mut out {
            s.floats.sort_by_key(|p| p.t);
            if s.floats.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(Error::exec("vector cannot contain metrics with the same labelset"));
            }
        }
    }
    Ok(out)
}

/// A forward-only cursor over one series' samples with a one-sample look-ahead.
pub(crate) struct Cursor {
    it: Box<dyn SampleIterator>,
    started: bool,
    cur: Option<StorageSample>,
}

impl Cursor {
    pub(crate) fn new(it: Box<dyn SampleIterator>) -> Self {
        Cursor {
            it,
            started: false,
            cur: None,
        }
    }

    fn fetch(&mut self, ok: bool) -> Result<(), Error> {
        if ok {
            self.cur = Some(self.it.at());
            Ok(())
        } else {
            self.cur = None;
            match self.it.err() {
                Some(e) => Err(Error::Storage(e.clone())),
                None => Ok(()),
            }
        }
    }

    /// The next unconsumed sample.
    fn peek(&mut self) -> Result<Option<StorageSample>, Error> {
        if !self.started {
            self.started = true;
            let ok = self.it.next();
            self.fetch(ok)?;
        }
        Ok(self.cur)
    }

    /// Passes every unconsumed sample with a timestamp at or before `t` to `f`, in order, and
    /// consumes it.
    fn consume_until(&mut self, t: Timestamp, f: &mut dyn FnMut(StorageSample)) -> Result<(), Error> {
        match self.peek()? {
            Some(s) if s.t <= t => {
                let positioned = self.it.for_each_until(t, f);
                self.fetch(positioned)
            }
            _ => Ok(()),
        }
    }

    /// [`consume_until`](Self::consume_until) with each sample's start timestamp.
    fn consume_until_st(&mut self, t: Timestamp, f: &mut dyn FnMut(StorageSample, Timestamp)) -> Result<(), Error> {
        match self.peek()? {
            Some(s) if s.t <= t => {
                let positioned = self.it.for_each_until_st(t, f);
                self.fetch(positioned)
            }
            _ => Ok(()),
        }
    }

    /// Skips samples before `t` (using the iterator's seek, which may skip whole chunks).
    fn skip_to(&mut self, t: Timestamp) -> Result<(), Error> {
        if self.started && self.cur.is_none_or(|s| s.t >= t) {
            return Ok(());
        }
        self.started = true;
        let ok = self.it.seek(t);
        self.fetch(ok)
    }
}

/// The instant-selector view of a series: the newest sample at or before a time.
pub(crate) struct LookbackCursor {
    cursor: Cursor,
    last: Option<StorageSample>,
    /// The start timestamp of `last`, when built by [`with_st`](Self::with_st).
    last_st: Option<Timestamp>,
}

impl LookbackCursor {
    pub(crate) fn new(it: Box<dyn SampleIterator>) -> Self {
        LookbackCursor {
            cursor: Cursor::new(it),
            last: None,
            last_st: None,
        }
    }

    /// A cursor that also keeps the start timestamp of the sample it returns ([`st`]).
    ///
    /// [`st`]: Self::st
    pub(crate) fn with_st(it: Box<dyn SampleIterator>) -> Self {
        LookbackCursor {
            last_st: Some(0),
            ..Self::new(it)
        }
    }

    /// The start timestamp of the sample the last [`at`](Self::at) returned (0: unknown).
    pub(crate) fn st(&self) -> Timestamp {
        self.last_st.unwrap_or(0)
    }

    /// The newest sample in `(reft - lookback, reft]` unless it is a stale marker. Calls must
    /// come with non-decreasing `reft`.
    pub(crate) fn at(&mut self, reft: Timestamp, lookback: i64) -> Result<Option<StorageSample>, Error> {
        let lo = reft - lookback;
        if self.last.is_none_or(|l| l.t <= lo) {
            self.last = None;
            self.cursor.skip_to(lo + 1)?;
        }
        let mut last = self.last;
        match &mut self.last_st {
            None => self.cursor.consume_until(reft, &mut |s| last = Some(s))?,
            Some(last_st) => self.cursor.consume_until_st(reft, &mut |s, st| {
                last = Some(s);
                *last_st = st;
            })?,
        }
        self.last = last;
        Ok(self.last.filter(|s| s.t > lo && s.t <= reft && !is_stale_nan(s.v)))
    }
}

/// The range-selector view of a series: a window `(mint, maxt]` that slides forward.
pub(crate) struct Window {
    cursor: Cursor,
}

impl Window {
    pub(crate) fn new(it: Box<dyn SampleIterator>) -> Self {
        Window {
            cursor: Cursor::new(it),
        }
    }

    /// Moves the window in `buf` to `(mint, maxt]`, dropping stale markers; returns how many
    /// points were added minus how many were dropped.
    pub(crate) fn fill(&mut self, buf: &mut Vec<FPoint>, mint: i64, maxt: i64) -> Result<i64, Error> {
        let before = buf.len() as i64;
        let drop = buf.partition_point(|p| p.t <= mint);
        buf.drain(..drop);
        let last = buf.last().map(|p| p.t);
        if mint < maxt {
            if last.is_none() {
                self.cursor.skip_to(mint + 1)?;
            }
            self.cursor.consume_until(maxt, &mut |s| {
                if s.t > mint && last.is_none_or(|l| s.t > l) && !is_stale_nan(s.v) {
                    buf.push(FPoint { t: s.t, f: s.v });
                }
            })?;
        }
        Ok(buf.len() as i64 - before)
    }

    /// [`fill`](Self::fill) that also keeps the points' start timestamps in `sts`, aligned
    /// with `buf` (upstream `matrixIterSlice` with `StartTimestamps`). `sts` stays empty, and
    /// costs nothing, while no point of the window has a start timestamp.
    pub(crate) fn fill_st(
        &mut self,
        buf: &mut Vec<FPoint>,
        sts: &mut Vec<Timestamp>,
        mint: i64,
        maxt: i64,
    ) -> Result<i64, Error> {
        let before = buf.len() as i64;
        let drop = buf.partition_point(|p| p.t <= mint);
        buf.drain(..drop);
        if !sts.is_empty() {
            sts.drain(..drop);
        }
        let last = buf.last().map(|p| p.t);
        if mint < maxt {
            if last.is_none() {
                self.cursor.skip_to(mint + 1)?;
            }
            self.cursor.consume_until_st(maxt, &mut |s, st| {
                if s.t > mint && last.is_none_or(|l| s.t > l) && !is_stale_nan(s.v) {
                    if st != 0 || !sts.is_empty() {
                        // Unknown for the points before the first start timestamp.
                        sts.resize(buf.len(), 0);
                        sts.push(st);
                    }
                    buf.push(FPoint { t: s.t, f: s.v });
                }
            })?;
        }
        Ok(buf.len() as i64 - before)
    }
}

impl<'a> Evaluator<'a> {
    pub(crate) fn child(&self, start: i64, end: i64, interval: i64) -> Evaluator<'a> {
        Evaluator {
            ctx: self.ctx,
            start,
            end,
            interval,
            current: self.current,
            annos: Annotations::new(),
        }
    }

    pub(crate) fn num_steps(&self) -> usize {
        ((self.end - self.start) / self.interval + 1) as usize
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        self.ctx.guard.check()
    }

    pub(crate) fn add_samples(&mut self, n: i64) -> Result<(), Error> {
        self.current += n;
        if self.current > self.ctx.opts.max_samples as i64 {
            return Err(Error::TooManySamples);
        }
        Ok(())
    }

    pub(crate) fn delayed(&self) -> bool {
        self.ctx.opts.delayed_name_removal
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Val, Error> {
        self.check()?;
        if self.end < self.start {
            return Ok(Val::Matrix(Vec::new()));
        }
        match node {
            Node::Number(v, _) => Ok(Val::Matrix(self.constant(*v)?)),
            Node::String(s) => Ok(Val::String(s.value.clone())),
            Node::Vector(sel) => Ok(Val::Matrix(self.vector_selector(sel)?)),
            Node::Matrix { sel, range, .. } => {
                if self.start != self.end {
                    return Err(Error::exec("cannot do range evaluation of matrix selector"));
                }
                Ok(Val::Matrix(self.matrix_selector(sel, *range)?))
            }
            Node::Subquery { .. } => Ok(Val::Matrix(self.subquery(node)?)),
            Node::Neg(e, _) => {
                let mut mat = self.eval(e)?.matrix();
                for s in &mut mat {
                    if !self.delayed() {
                        s.metric = drop_metadata(&s.metric);
                    }
                    s.drop_name = true;
                    for p in &mut s.floats {
                        p.f = -p.f;
                    }
                }
                if !self.delayed() {
                    mat = merge_same_labelset(mat)?;
                }
                Ok(Val::Matrix(mat))
            }
            Node::Binary { .. } => Ok(Val::Matrix(self.binary(node)?)),
            Node::Aggregate { .. } => Ok(Val::Matrix(self.aggregate(node)?)),
            Node::Call { .. } => Ok(Val::Matrix(self.call(node)?)),
            Node::StepInvariant(inner) => self.step_invariant(inner),
        }
    }

    fn constant(&mut self, v: f64) -> Result<Matrix, Error> {
        let n = self.num_steps();
        self.add_samples(n as i64)?;
        let floats = (0..n)
            .map(|i| FPoint {
                t: self.start + i as i64 * self.interval,
                f: v,
            })
            .collect();
        Ok(vec![Series::new(Labels::empty(), floats)])
    }

    fn step_invariant(&mut self, inner: &Node) -> Result<Val, Error> {
        let mut child = self.child(self.start, self.start, self.interval);
        let res = child.eval(inner);
        self.current = child.current;
        self.annos.merge(std::mem::take(&mut child.annos));
        let res = res?;
        if matches!(inner, Node::Matrix { .. } | Node::Subquery { .. }) {
            return Ok(res);
        }
        let mut mat = match res {
            Val::Matrix(m) => m,
            s @ Val::String(_) => return Ok(s),
        };
        let steps = self.num_steps();
        if steps > 1 {
            for s in &mut mat {
                let Some(first) = s.floats.first().copied() else {
                    continue;
                };
                s.floats.reserve(steps - 1);
                for i in 1..steps {
                    s.floats.push(FPoint {
                        t: self.start + i as i64 * self.interval,
                        f: first.f,
                    });
                }
                self.add_samples(steps as i64 - 1)?;
            }
        }
        Ok(Val::Matrix(mat))
    }

    fn vector_selector(&mut self, sel: &Selector) -> Result<Matrix, Error> {
        if sel.mode == RangeMode::Smoothed {
            return self.smoothed_vector_selector(sel);
        }
        let series = self.ctx.series(sel, None, 0)?;
        let lookback = self.ctx.lookback;
        let steps = self.num_steps();
        let mut mat = Vec::with_capacity(series.len());
        for s in series.iter() {
            self.check()?;
            let mut cur = LookbackCursor::new(s.iterator());
            let mut floats = Vec::new();
            for i in 0..steps {
                let ts = self.start + i as i64 * self.interval;
                let reft = sel.at.unwrap_or(ts) - sel.offset;
                if let Some(smp) = cur.at(reft, lookback)? {
                    self.add_samples(1)?;
                    if floats.is_empty() {
                        floats.reserve(steps);
                    }
                    floats.push(FPoint { t: ts, f: smp.v });
                }
            }
            if !floats.is_empty() {
                mat.push(Series::new(s.labels().clone(), floats));
            }
        }
        Ok(mat)
    }

    /// `smoothed` instant selectors: the value interpolated between the samples around each
    /// step (upstream `smoothSeries`).
    fn smoothed_vector_selector(&mut self, sel: &Selector) -> Result<Matrix, Error> {
        let series = self.ctx.series(sel, None, 0)?;
        let lb = self.ctx.lookback;
        let mut mat = Vec::with_capacity(series.len());
        let mut buf = Vec::new();
        for s in series.iter() {
            self.check()?;
            let mut win = Window::new(s.iterator());
            buf.clear();
            let mut floats = Vec::new();
            for i in 0..self.num_steps() {
                let ts = self.start + i as i64 * self.interval;
                let data_ts = sel.at.unwrap_or(ts) - sel.offset;
                win.fill(&mut buf, data_ts - lb, data_ts + lb)?;
                if buf.is_empty() {
                    continue;
                }
                let i = buf.partition_point(|p| p.t < data_ts);
                let v = if i < buf.len() && buf[i].t == data_ts {
                    buf[i].f
                } else if i > 0 && i < buf.len() {
                    super::functions::interpolate(buf[i - 1], buf[i], data_ts, false)
                } else if i > 0 {
                    buf[i - 1].f
                } else {
                    continue;
                };
                self.add_samples(1)?;
                floats.push(FPoint { t: ts, f: v });
            }
            if !floats.is_empty() {
                mat.push(Series::new(s.labels().clone(), floats));
            }
        }
        Ok(mat)
    }

    /// A range selector evaluated on its own (instant queries only).
    fn matrix_selector(&mut self, sel: &Selector, range: i64) -> Result<Matrix, Error> {
        let series = self.ctx.series(sel, None, range)?;
        let maxt = sel.at.unwrap_or(self.start) - sel.offset;
        let mint = maxt - range;
        let lb = self.ctx.lookback;
        let (wmin, wmax) = match sel.mode {
            RangeMode::Default => (mint, maxt),
            RangeMode::Anchored => (mint - lb, maxt),
            RangeMode::Smoothed => (mint - lb, maxt + lb),
        };
        let mut mat = Vec::with_capacity(series.len());
        for s in series.iter() {
            self.check()?;
            let mut buf = Vec::new();
            let added = Window::new(s.iterator()).fill(&mut buf, wmin, wmax)?;
            self.add_samples(added)?;
            if sel.mode != RangeMode::Default {
                if buf.is_empty() {
                    continue;
                }
                buf = super::functions::extend_floats(&buf, mint, maxt, sel.mode == RangeMode::Smoothed);
            }
            if !buf.is_empty() {
                mat.push(Series::new(s.labels().clone(), buf));
            }
        }
        Ok(mat)
    }

    /// Evaluates a subquery into a matrix with the subquery's own step timestamps (upstream
    /// `runSubquery`).
    pub(crate) fn subquery(&mut self, node: &Node) -> Result<Matrix, Error> {
        let Node::Subquery {
            expr,
            range,
            step,
            offset,
            at,
            ..
        } = node
        else {
            unreachable!("subquery() is only called on subqueries");
        };
        let parent_end = self.start + ((self.end - self.start) / self.interval) * self.interval;
        let (base_start, base_end) = match at {
            Some(t) => (*t, *t),
            None => (self.start, parent_end),
        };
        let interval = if *step > 0 {
            *step
        } else {
            self.ctx.opts.default_subquery_step.as_millis().max(1)
        };
        let end = base_end - offset;
        let lower = base_start - offset - range;
        let mut start = interval * (lower / interval);
        if start <= lower {
            start += interval;
        }
        let mut child = self.child(start, end, interval);
        let res = child.eval(expr);
        self.current = child.current;
        self.annos.merge(std::mem::take(&mut child.annos));
        Ok(res?.matrix())
    }

    /// The generic per-step loop (upstream `rangeEval`): evaluates `exprs`, then calls `f`
    /// with the input vectors at each step and collects the outputs into series.
    pub(crate) fn range_eval(
        &mut self,
        matching: Option<&VectorMatching>,
        exprs: &[&Node],
        f: &mut dyn FnMut(&mut Step<'_>) -> Result<Vector, Error>,
    ) -> Result<Matrix, Error> {
        let original = self.current;
        let mut mats: Vec<Matrix> = Vec::with_capacity(exprs.len());
        for e in exprs {
            match e {
                Node::String(_) => mats.push(Vec::new()),
                _ => mats.push(self.eval(e)?.matrix()),
            }
        }
        self.range_eval_matrices(matching, mats, original, f)
    }

    /// The per-step loop over already evaluated inputs.
    pub(crate) fn range_eval_matrices(
        &mut self,
        matching: Option<&VectorMatching>,
        mats: Vec<Matrix>,
        original: i64,
        f: &mut dyn FnMut(&mut Step<'_>) -> Result<Vector, Error>,
    ) -> Result<Matrix, Error> {
        // Signature ordinals for vector matching.
        let mut series_sigs: Vec<Vec<usize>> = vec![Vec::new(); mats.len()];
        let mut num_sigs = 0;
        if let Some(m) = matching {
            let mut names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
            names.sort_unstable();
            let mut ordinals: HashKeyed<usize> = HashKeyed::default();
            for (i, mat) in mats.iter().enumerate() {
                for s in mat {
                    let h = if m.on {
                        s.metric.hash_for_labels(&names)
                    } else {
                        s.metric.hash_without_labels(&names)
                    };
                    let next = ordinals.len();
                    series_sigs[i].push(*ordinals.entry(h).or_insert(next));
                }
            }
            num_sigs = ordinals.len();
        }
        let biggest = mats.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut positions: Vec<Vec<usize>> = mats.iter().map(|m| vec![0; m.len()]).collect();
        let mut vectors: Vec<Vector> = mats.iter().map(|m| Vec::with_capacity(m.len())).collect();
        let mut step_sigs: Vec<Vec<usize>> = vec![Vec::new(); mats.len()];
        let mut out: Matrix = Vec::with_capacity(biggest);
        let mut index: HashMap<Labels, (usize, i64)> = HashMap::with_capacity(biggest);
        let mut annos = Annotations::new();
        let steps = self.num_steps();
        let mut temp = self.current;
        for step in 0..steps {
            let ts = self.start + step as i64 * self.interval;
            self.check()?;
            self.current = temp;
            for (i, mat) in mats.iter().enumerate() {
                vectors[i].clear();
                step_sigs[i].clear();
                for (si, s) in mat.iter().enumerate() {
                    let pos = &mut positions[i][si];
                    if let Some(p) = s.floats.get(*pos)
                        && p.t == ts
                    {
                        *pos += 1;
                        vectors[i].push(Sample {
                            metric: s.metric.clone(),
                            t: ts,
                            f: p.f,
                            drop_name: s.drop_name,
                        });
                        if matching.is_some() {
                            step_sigs[i].push(series_sigs[i][si]);
                        }
                        self.add_samples(1)?;
                    }
                }
            }
            let result = f(&mut Step {
                vectors: &vectors,
                sigs: &step_sigs,
                num_sigs,
                ts,
                annos: &mut annos,
            })?;
            let n = result.len() as i64;
            self.add_samples(n)?;
            temp += n;
            if self.start == self.end {
                if !self.delayed() && contains_same_labelset(&result) {
                    return Err(Error::exec("vector cannot contain metrics with the same labelset"));
                }
                let mat: Matrix = result
                    .into_iter()
                    .map(|s| Series {
                        metric: s.metric,
                        floats: vec![FPoint { t: ts, f: s.f }],
                        drop_name: s.drop_name,
                    })
                    .collect();
                self.current = original + mat.len() as i64;
                self.annos.merge(annos);
                return Ok(mat);
            }
            for s in result {
                match index.get_mut(&s.metric) {
                    Some((i, last)) => {
                        if *last == ts {
                            return Err(Error::exec("vector cannot contain metrics with the same labelset"));
                        }
                        *last = ts;
                        out[*i].floats.push(FPoint { t: ts, f: s.f });
                    }
                    None => {
                        index.insert(s.metric.clone(), (out.len(), ts));
                        let mut floats = Vec::with_capacity(steps.min(64));
                        floats.push(FPoint { t: ts, f: s.f });
                        out.push(Series {
                            metric: s.metric,
                            floats,
                            drop_name: s.drop_name,
                        });
                    }
                }
            }
        }
        self.current = original + out.iter().map(|s| s.floats.len() as i64).sum::<i64>();
        self.annos.merge(annos);
        Ok(out)
    }

    /// The series a range function reads: from storage for a range selector, or the
    /// materialised result of a subquery.
    pub(crate) fn range_source(&mut self, node: &Node, func: &str) -> Result<RangeSource, Error> {
        match node {
            Node::Matrix { sel, range, .. } => {
                let series = self.ctx.series(sel, Some(func), *range)?;
                Ok(RangeSource {
                    series: SourceSeries::Storage(series),
                    drop_name: Vec::new(),
                    range: *range,
                    offset: sel.offset,
                    at: sel.at,
                    mode: sel.mode,
                })
            }
            Node::Subquery { range, offset, at, .. } => {
                let mat = self.subquery(node)?;
                let mut drop_name = Vec::with_capacity(mat.len());
                let mut series: Vec<Box<dyn StorageSeries>> = Vec::with_capacity(mat.len());
                for s in mat {
                    drop_name.push(s.drop_name);
                    let samples: Vec<StorageSample> = s.floats.iter().map(|p| StorageSample::new(p.t, p.f)).collect();
                    series.push(Box::new(VecSeries::new(s.metric, samples)));
                }
                Ok(RangeSource {
                    series: SourceSeries::Memory(series),
                    drop_name,
                    range: *range,
                    offset: *offset,
                    at: *at,
                    mode: RangeMode::Default,
                })
            }
            _ => Err(Error::exec("expected a range vector argument")),
        }
    }

    pub(crate) fn warn(&mut self, a: Annotation) {
        self.annos.add(a);
    }
}

pub(crate) enum SourceSeries {
    Storage(SeriesList),
    Memory(Vec<Box<dyn StorageSeries>>),
}

/// The input of a function over a range vector.
pub(crate) struct RangeSource {
    pub series: SourceSeries,
    /// Per series, whether the (subquery) input already asked for its name to be dropped.
    pub drop_name: Vec<bool>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub mode: RangeMode,
}

impl RangeSource {
    pub(crate) fn list(&self) -> &[Box<dyn StorageSeries>] {
        match &self.series {
            SourceSeries::Storage(s) => s,
            SourceSeries::Memory(s) => s,
        }
    }
}

pub(crate) fn contains_same_labelset(v: &Vector) -> bool {
    if v.len() <= 1 {
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    v.iter().any(|s| !seen.insert(&s.metric))
}
