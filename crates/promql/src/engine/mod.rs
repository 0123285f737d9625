//! The PromQL evaluator: instant and range queries over the `watchfire-storage` traits, with
//! Prometheus 3.x semantics (promql/engine.go, functions.go, quantile.go).
//!
//! Every expression is evaluated, as upstream does, into a matrix that holds one point per
//! evaluation step; an instant query is a range query with a single step. Selectors read each
//! series once, front to back: instant selectors keep the newest sample within the lookback
//! window, and range selectors under a function keep a sliding window that moves forward from
//! step to step, so a range query never decodes a series more than once.
//!
//! Native histograms are not supported (the storage holds floats only).

mod aggregate;
mod annotations;
mod binop;
mod eval;
mod functions;
mod info;
mod plan;
mod quantile;
mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant};

use thiserror::Error;
use watchfire_model::{Duration, Timestamp};
use watchfire_storage::Queryable;

use crate::ast::Expr;
use crate::error::ParseError;

pub use annotations::{Annotation, AnnotationKind, Annotations};
pub use value::{FPoint, Matrix, Sample, Series, Value, Vector};

pub(crate) use plan::at_modifier_unsafe;
pub(crate) use quantile::almost_equal;

/// Evaluation errors. The texts are Prometheus'.
#[derive(Clone, Debug, Error)]
pub enum Error {
    /// The query does not parse or type-check.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The query is not valid for this kind of evaluation (a range query over a range
    /// vector, a duration expression without a valid value).
    #[error("{0}")]
    BadQuery(String),
    /// More samples would be held in memory than [`EngineOptions::max_samples`] allows.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// [`EngineOptions::timeout`] elapsed.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The cancellation flag was raised.
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// The storage failed.
    #[error("expanding series: {0}")]
    Storage(watchfire_storage::Error),
    /// Any other evaluation error (`vector cannot contain metrics with the same labelset`,
    /// many-to-many matching, invalid function arguments, ...).
    #[error("{0}")]
    Execution(String),
}

impl Error {
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        Error::Execution(msg.into())
    }
}

/// Engine-wide settings (upstream `EngineOpts`).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// The most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// How long a query may run (`--query.timeout`); `None` for no limit.
    pub timeout: Option<StdDuration>,
    /// The step of subqueries written without one (`foo[1h:]`), upstream's global
    /// evaluation interval.
    pub default_subquery_step: Duration,
    /// Upstream's `promql-delayed-name-removal`: the metric name is removed at the end of
    /// evaluation rather than by each function, so `label_replace(rate(x[1m]), "__name__", …)`
    /// and similar work. The conformance tests run with it on.
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Some(StdDuration::from_secs(120)),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: true,
        }
    }
}

/// Per-query settings.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// Overrides [`EngineOptions::lookback_delta`] (the API's `lookback_delta` parameter).
    pub lookback_delta: Option<Duration>,
    /// Evaluation stops with [`Error::Canceled`] soon after this flag is set.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// A query as text or as an already parsed tree.
#[derive(Clone, Copy, Debug)]
pub enum Query<'a> {
    Text(&'a str),
    Expr(&'a Expr),
}

impl<'a> From<&'a str> for Query<'a> {
    fn from(s: &'a str) -> Self {
        Query::Text(s)
    }
}

impl<'a> From<&'a String> for Query<'a> {
    fn from(s: &'a String) -> Self {
        Query::Text(s)
    }
}

impl<'a> From<&'a Expr> for Query<'a> {
    fn from(e: &'a Expr) -> Self {
        Query::Expr(e)
    }
}

/// The value of a query and the annotations raised while computing it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// The PromQL engine. Cheap to share: it holds only options.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at time `t` (milliseconds).
    pub fn instant<'q>(
        &self,
        storage: &dyn Queryable,
        query: impl Into<Query<'q>>,
        t: Timestamp,
    ) -> Result<QueryResult, Error> {
        self.instant_with(storage, query, t, &QueryOptions::default())
    }

    /// Evaluates `query` at time `t` with per-query options.
    pub fn instant_with<'q>(
        &self,
        storage: &dyn Queryable,
        query: impl Into<Query<'q>>,
        t: Timestamp,
        qopts: &QueryOptions,
    ) -> Result<QueryResult, Error> {
        let expr = parsed(query.into())?;
        self.exec(storage, &expr, t, t, 0, qopts)
    }

    /// Evaluates `query` at every `step` milliseconds from `start` to `end` (inclusive).
    pub fn range<'q>(
        &self,
        storage: &dyn Queryable,
        query: impl Into<Query<'q>>,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<QueryResult, Error> {
        self.range_with(storage, query, start, end, step, &QueryOptions::default())
    }

    /// A range query with per-query options.
    pub fn range_with<'q>(
        &self,
        storage: &dyn Queryable,
        query: impl Into<Query<'q>>,
        start: Timestamp,
        end: Timestamp,
        step: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult, Error> {
        let expr = parsed(query.into())?;
        let ty = expr.value_type();
        if ty != crate::ast::ValueType::Vector && ty != crate::ast::ValueType::Scalar {
            return Err(Error::BadQuery(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                ty.documented()
            )));
        }
        if step <= 0 {
            return Err(Error::BadQuery(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(Error::BadQuery("end timestamp must not be before start time".into()));
        }
        self.exec(storage, &expr, start, end, step, qopts)
    }

    fn exec(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: Timestamp,
        end: Timestamp,
        step: i64,
        qopts: &QueryOptions,
    ) -> Result<QueryResult, Error> {
        let lookback = qopts
            .lookback_delta
            .filter(|d| d.as_millis() > 0)
            .unwrap_or(self.opts.lookback_delta)
            .as_millis();
        let plan = plan::Plan::build(expr, start, end, step, lookback)?;
        let (mint, maxt) = plan.time_range(start, end, lookback);
        let querier = storage.querier(mint, maxt).map_err(Error::Storage)?;
        let guard = Guard {
            deadline: self.opts.timeout.map(|t| Instant::now() + t),
            cancel: qopts.cancel.clone(),
            checks: std::cell::Cell::new(0),
        };
        let ctx = eval::Context::new(&*querier, &plan, &self.opts, guard, lookback, (mint, maxt));
        eval::run(&ctx, &plan, start, end, step)
    }
}

fn parsed(q: Query<'_>) -> Result<Expr, Error> {
    match q {
        Query::Text(s) => Ok(crate::parser::parse_expr(s)?),
        Query::Expr(e) => Ok(e.clone()),
    }
}

/// Timeout and cancellation, checked between evaluation steps and series.
#[derive(Debug)]
pub(crate) struct Guard {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    /// Calls of [`check`](Self::check) so far: the clock is read on every 64th (the first
    /// included), since checks come per series and reading it costs more than a cheap series.
    checks: std::cell::Cell<u32>,
}

impl Guard {
    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Some(c) = &self.cancel
            && c.load(Ordering::Relaxed)
        {
            return Err(Error::Canceled);
        }
        let n = self.checks.get();
        self.checks.set(n.wrapping_add(1));
        if n.is_multiple_of(64)
            && let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(Error::Timeout);
        }
        Ok(())
    }
}
