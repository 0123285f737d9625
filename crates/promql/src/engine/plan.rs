//! The tree the evaluator runs: the parsed [`Expr`] with durations resolved to milliseconds,
//! `start()`/`end()`/`range()`/`step()` folded to numbers, parentheses removed, and the
//! step-invariant parts marked, as upstream's `PreprocessExpr` prepares a query.

use watchfire_model::{Duration, Matcher};

use super::Error;
use crate::ast::*;
use crate::functions::Function;

/// A selector with its modifiers resolved.
#[derive(Debug)]
pub(crate) struct Selector {
    /// Index into the evaluator's series cache.
    pub id: usize,
    pub matchers: Vec<Matcher>,
    /// The `offset` in milliseconds.
    pub offset: i64,
    /// The `@` time in milliseconds, with `start()`/`end()` resolved.
    pub at: Option<i64>,
    pub mode: RangeMode,
    pub pos: PosRange,
}

#[derive(Debug)]
pub(crate) enum Node {
    Number(f64, PosRange),
    String(StringLiteral),
    Vector(Selector),
    Matrix {
        sel: Selector,
        range: i64,
        pos: PosRange,
    },
    Subquery {
        expr: Box<Node>,
        range: i64,
        step: i64,
        offset: i64,
        at: Option<i64>,
        pos: PosRange,
    },
    Neg(Box<Node>, PosRange),
    Binary {
        op: BinaryOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        return_bool: bool,
        matching: Option<VectorMatching>,
        lhs_type: ValueType,
        rhs_type: ValueType,
        pos: PosRange,
    },
    Aggregate {
        op: AggregateOp,
        expr: Box<Node>,
        param: Option<Box<Node>>,
        /// Sorted.
        grouping: Vec<String>,
        without: bool,
        pos: PosRange,
    },
    Call {
        func: &'static Function,
        args: Vec<Node>,
        pos: PosRange,
    },
    /// Evaluated once at the start time; the result holds for every step.
    StepInvariant(Box<Node>),
}

impl Node {
    pub(crate) fn pos(&self) -> PosRange {
        match self {
            Node::Number(_, p) | Node::Neg(_, p) => *p,
            Node::String(s) => s.pos,
            Node::Vector(s) => s.pos,
            Node::Matrix { pos, .. }
            | Node::Subquery { pos, .. }
            | Node::Binary { pos, .. }
            | Node::Aggregate { pos, .. }
            | Node::Call { pos, .. } => *pos,
            Node::StepInvariant(n) => n.pos(),
        }
    }

    /// Looks through a step-invariant wrapper.
    pub(crate) fn inner(&self) -> &Node {
        match self {
            Node::StepInvariant(n) => n.inner(),
            n => n,
        }
    }
}

/// Functions whose value depends on the evaluation time even when their arguments do not
/// (upstream `AtModifierUnsafeFunctions`).
pub(crate) fn at_modifier_unsafe(name: &str) -> bool {
    matches!(
        name,
        "days_in_month"
            | "day_of_month"
            | "day_of_week"
            | "day_of_year"
            | "end"
            | "hour"
            | "minute"
            | "month"
            | "year"
            | "predict_linear"
            | "range"
            | "start"
            | "step"
            | "time"
            | "timestamp"
    )
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub root: Node,
    pub value_type: ValueType,
    pub num_selectors: usize,
}

struct Builder {
    start: i64,
    end: i64,
    step: i64,
    next_id: usize,
}

fn millis(d: Duration) -> i64 {
    d.as_millis()
}

impl Builder {
    fn resolve(&self, p: &DurationParam, allow_negative: bool) -> Result<i64, Error> {
        let step = Duration::from_millis(self.step);
        let range = Duration::from_millis(self.end - self.start);
        p.resolve(step, range, allow_negative)
            .map(millis)
            .map_err(|e| Error::BadQuery(e.to_string()))
    }

    fn at(&self, at: Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
        })
    }

    fn selector(&mut self, v: &VectorSelector) -> Result<Selector, Error> {
        let offset = match &v.offset {
            Some(o) => self.resolve(o, true)?,
            None => 0,
        };
        let id = self.next_id;
        self.next_id += 1;
        Ok(Selector {
            id,
            matchers: v.matchers.clone(),
            offset,
            at: self.at(v.at),
            mode: v.mode,
            pos: v.pos,
        })
    }

    fn node(&mut self, e: &Expr) -> Result<Node, Error> {
        Ok(match e {
            Expr::NumberLiteral(n) => Node::Number(n.value, n.pos),
            Expr::StringLiteral(s) => Node::String(s.clone()),
            Expr::Paren(p) => self.node(&p.expr)?,
            Expr::VectorSelector(v) => Node::Vector(self.selector(v)?),
            Expr::MatrixSelector(m) => Node::Matrix {
                sel: self.selector(&m.selector)?,
                range: self.resolve(&m.range, false)?,
                pos: m.pos,
            },
            Expr::Subquery(s) => {
                let range = self.resolve(&s.range, false)?;
                let step = match &s.step {
                    Some(st) => self.resolve(st, false)?,
                    None => 0,
                };
                let offset = match &s.offset {
                    Some(o) => self.resolve(o, true)?,
                    None => 0,
                };
                Node::Subquery {
                    expr: Box::new(self.node(&s.expr)?),
                    range,
                    step,
                    offset,
                    at: self.at(s.at),
                    pos: s.pos,
                }
            }
            Expr::Unary(u) => {
                let inner = self.node(&u.expr)?;
                match u.op {
                    UnaryOp::Plus => inner,
                    UnaryOp::Minus => Node::Neg(Box::new(inner), u.pos),
                }
            }
            Expr::Binary(b) => Node::Binary {
                op: b.op,
                lhs: Box::new(self.node(&b.lhs)?),
                rhs: Box::new(self.node(&b.rhs)?),
                return_bool: b.return_bool,
                matching: b.matching.clone(),
                lhs_type: b.lhs.value_type(),
                rhs_type: b.rhs.value_type(),
                pos: b.pos,
            },
            Expr::Aggregate(a) => {
                let mut grouping = a.grouping.clone();
                grouping.sort();
                grouping.dedup();
                Node::Aggregate {
                    op: a.op,
                    expr: Box::new(self.node(&a.expr)?),
                    param: match &a.param {
                        Some(p) => Some(Box::new(self.node(p)?)),
                        None => None,
                    },
                    grouping,
                    without: a.without,
                    pos: a.pos,
                }
            }
            Expr::Call(c) => {
                let secs = |ms: i64| ms as f64 / 1000.0;
                match c.func.name {
                    "start" => return Ok(Node::Number(secs(self.start), c.pos)),
                    "end" => return Ok(Node::Number(secs(self.end), c.pos)),
                    "range" => return Ok(Node::Number(secs(self.end - self.start), c.pos)),
                    "step" => {
                        let v = if self.start == self.end { 0.0 } else { secs(self.step) };
                        return Ok(Node::Number(v, c.pos));
                    }
                    _ => {}
                }
                let mut args = Vec::with_capacity(c.args.len());
                for a in &c.args {
                    args.push(self.node(a)?);
                }
                Node::Call {
                    func: c.func,
                    args,
                    pos: c.pos,
                }
            }
        })
    }
}

/// Marks the largest step-invariant subtrees (upstream `preprocessExprHelper`). Returns
/// whether `n` is step invariant and whether it should be wrapped if its parent is not.
fn mark_invariant(n: &mut Node) -> (bool, bool) {
    match n {
        Node::Vector(s) => (s.at.is_some(), s.at.is_some()),
        Node::Aggregate { expr, .. } => mark_invariant(expr),
        Node::Binary { lhs, rhs, .. } => {
            let (li, lw) = mark_invariant(lhs);
            let (ri, rw) = mark_invariant(rhs);
            if li && ri {
                return (true, true);
            }
            if lw {
                wrap(lhs);
            }
            if rw {
                wrap(rhs);
            }
            (false, false)
        }
        Node::Call { func, args, .. } => {
            let mut invariant = !at_modifier_unsafe(func.name);
            // timestamp(metric @ t) is step invariant although timestamp() is not in general.
            let mut timestamp_of_fixed_selector = func.name == "timestamp";
            let mut should_wrap = Vec::with_capacity(args.len());
            for a in args.iter_mut() {
                let (ai, aw) = mark_invariant(a);
                invariant &= ai;
                should_wrap.push(aw);
                if !ai || !matches!(a, Node::Vector(_)) {
                    timestamp_of_fixed_selector = false;
                }
            }
            if invariant || timestamp_of_fixed_selector {
                return (true, true);
            }
            for (a, w) in args.iter_mut().zip(should_wrap) {
                // Range arguments are read directly by the function, never wrapped.
                if w && !matches!(a, Node::Matrix { .. } | Node::Subquery { .. }) {
                    wrap(a);
                }
            }
            (false, false)
        }
        Node::Matrix { sel, .. } => (sel.at.is_some(), false),
        Node::Subquery { expr, at, .. } => {
            let (inner, _) = mark_invariant(expr);
            if inner {
                wrap(expr);
            }
            (at.is_some(), at.is_some())
        }
        Node::Neg(e, _) => mark_invariant(e),
        Node::Number(..) | Node::String(_) => (true, false),
        Node::StepInvariant(_) => (true, true),
    }
}

fn wrap(n: &mut Node) {
    let inner = std::mem::replace(n, Node::Number(0.0, PosRange::default()));
    *n = Node::StepInvariant(Box::new(inner));
}

impl Plan {
    pub(crate) fn build(expr: &Expr, start: i64, end: i64, step: i64, _lookback: i64) -> Result<Plan, Error> {
        let mut b = Builder {
            start,
            end,
            step,
            next_id: 0,
        };
        let mut root = b.node(expr)?;
        let (_, should_wrap) = mark_invariant(&mut root);
        if should_wrap {
            wrap(&mut root);
        }
        Ok(Plan {
            root,
            value_type: expr.value_type(),
            num_selectors: b.next_id,
        })
    }

    /// The earliest and latest timestamps any selector reads (upstream `FindMinMaxTime`);
    /// `(0, 0)` when there is no selector.
    pub(crate) fn time_range(&self, start: i64, end: i64, lookback: i64) -> (i64, i64) {
        let mut acc = (i64::MAX, i64::MIN);
        walk_ranges(&self.root, &mut Vec::new(), start, end, lookback, &mut acc);
        if acc.1 == i64::MIN { (0, 0) } else { acc }
    }
}

/// A subquery on the path from the root to a selector: (offset, range, @).
type SubqPath = Vec<(i64, i64, Option<i64>)>;

fn walk_ranges(n: &Node, path: &mut SubqPath, start: i64, end: i64, lookback: i64, acc: &mut (i64, i64)) {
    match n {
        Node::Vector(s) => sel_range(s, 0, path, start, end, lookback, acc),
        Node::Matrix { sel, range, .. } => sel_range(sel, *range, path, start, end, lookback, acc),
        Node::Subquery {
            expr,
            range,
            offset,
            at,
            ..
        } => {
            path.push((*offset, *range, *at));
            walk_ranges(expr, path, start, end, lookback, acc);
            path.pop();
        }
        Node::Neg(e, _) | Node::StepInvariant(e) => walk_ranges(e, path, start, end, lookback, acc),
        Node::Binary { lhs, rhs, .. } => {
            walk_ranges(lhs, path, start, end, lookback, acc);
            walk_ranges(rhs, path, start, end, lookback, acc);
        }
        Node::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                walk_ranges(p, path, start, end, lookback, acc);
            }
            walk_ranges(expr, path, start, end, lookback, acc);
        }
        Node::Call { args, .. } => {
            for a in args {
                walk_ranges(a, path, start, end, lookback, acc);
            }
        }
        Node::Number(..) | Node::String(_) => {}
    }
}

fn sel_range(s: &Selector, range: i64, path: &SubqPath, start: i64, end: i64, lookback: i64, acc: &mut (i64, i64)) {
    let (mut start, mut end) = (start, end);
    let (mut sq_off, mut sq_range, mut sq_at) = (0i64, 0i64, None);
    for &(o, r, at) in path {
        sq_off += o;
        sq_range += r;
        if at.is_some() {
            sq_off = o;
            sq_range = r;
            sq_at = at;
        }
    }
    if let Some(t) = sq_at {
        start = t;
        end = t;
    }
    if let Some(t) = s.at {
        start = t;
        end = t;
    } else {
        start = start - sq_off - sq_range;
        end -= sq_off;
    }
    if range == 0 {
        start -= lookback - 1;
        if s.mode == RangeMode::Smoothed {
            end += lookback;
        }
    } else {
        match s.mode {
            RangeMode::Anchored => start -= lookback + range - 1,
            RangeMode::Smoothed => {
                start -= lookback + range - 1;
                end += lookback;
            }
            RangeMode::Default => start -= range - 1,
        }
    }
    start -= s.offset;
    end -= s.offset;
    acc.0 = acc.0.min(start);
    acc.1 = acc.1.max(end);
}
