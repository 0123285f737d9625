//! The PromQL syntax tree, shaped after Prometheus' `promql/parser/ast.go` so that the
//! evaluator can follow upstream's engine node by node.
//!
//! Every node carries a [`PosRange`] (byte offsets into the query) for error messages and
//! annotations. Positions never take part in equality: two trees are equal when they mean the
//! same query, which is what the parse → print → parse property needs.

use watchfire_model::{Duration, Matcher};

use crate::error::DurationError;
use crate::functions::Function;

/// A byte range of the query text, `start..end`, as upstream's `posrange.PositionRange`.
///
/// Equality deliberately ignores the offsets (every `PosRange` equals every other), so that
/// derived equality on AST nodes compares meaning, not layout.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct PosRange {
    pub start: u32,
    pub end: u32,
}

impl PartialEq for PosRange {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl PosRange {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        PosRange {
            start: clamp_u32(start),
            end: clamp_u32(end),
        }
    }
}

fn clamp_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The four PromQL value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    /// The name upstream uses in type errors (`DocumentedType`): "instant vector", "range
    /// vector", "scalar" or "string".
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }

    /// The short name (`ValueType.String()` upstream): "scalar", "vector", "matrix", "string".
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(StringLiteral),
    VectorSelector(VectorSelector),
    MatrixSelector(MatrixSelector),
    Subquery(SubqueryExpr),
    Unary(UnaryExpr),
    Binary(BinaryExpr),
    Aggregate(AggregateExpr),
    Call(Call),
    Paren(ParenExpr),
}

impl Expr {
    /// The value type the expression evaluates to (`Expr.Type()` upstream).
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Unary(u) => u.expr.value_type(),
            Expr::Paren(p) => p.expr.value_type(),
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                // Scalar only if every operand down the left-nested chain is scalar; walked
                // iteratively so long chains do not recurse.
                let mut b = b;
                loop {
                    if b.rhs.value_type() != ValueType::Scalar {
                        return ValueType::Vector;
                    }
                    match &*b.lhs {
                        Expr::Binary(inner) => b = inner,
                        lhs if lhs.value_type() == ValueType::Scalar => return ValueType::Scalar,
                        _ => return ValueType::Vector,
                    }
                }
            }
        }
    }

    /// Where the expression is in the query text.
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::NumberLiteral(n) => n.pos,
            Expr::StringLiteral(s) => s.pos,
            Expr::VectorSelector(v) => v.pos,
            Expr::MatrixSelector(m) => m.pos,
            Expr::Subquery(s) => s.pos,
            Expr::Unary(u) => u.pos,
            Expr::Binary(b) => b.pos,
            Expr::Aggregate(a) => a.pos,
            Expr::Call(c) => c.pos,
            Expr::Paren(p) => p.pos,
        }
    }

    pub(crate) fn pos_mut(&mut self) -> &mut PosRange {
        match self {
            Expr::NumberLiteral(n) => &mut n.pos,
            Expr::StringLiteral(s) => &mut s.pos,
            Expr::VectorSelector(v) => &mut v.pos,
            Expr::MatrixSelector(m) => &mut m.pos,
            Expr::Subquery(s) => &mut s.pos,
            Expr::Unary(u) => &mut u.pos,
            Expr::Binary(b) => &mut b.pos,
            Expr::Aggregate(a) => &mut a.pos,
            Expr::Call(c) => &mut c.pos,
            Expr::Paren(p) => &mut p.pos,
        }
    }

    /// A cheap stand-in (no allocation) used while taking trees apart.
    pub(crate) fn placeholder() -> Expr {
        Expr::NumberLiteral(NumberLiteral {
            value: 0.0,
            duration: false,
            pos: PosRange::default(),
        })
    }

    /// The expression with any number of enclosing parentheses removed.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(p) = e {
            e = &p.expr;
        }
        e
    }
}

/// Two floats are the same literal when they compare equal (so `-0` and `0` are the same, as
/// upstream prints `-0s` as `0s`), or when both are NaN.
pub(crate) fn same_float(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// A number. `duration` records that it was written as a duration (`5m`), which only changes
/// how it prints: the value is always in seconds.
#[derive(Clone, Copy, Debug)]
pub struct NumberLiteral {
    pub value: f64,
    pub duration: bool,
    pub pos: PosRange,
}

impl PartialEq for NumberLiteral {
    fn eq(&self, other: &Self) -> bool {
        same_float(self.value, other.value) && self.duration == other.duration
    }
}

/// A string literal after unquoting.
///
/// Go strings may hold any bytes, and `\x`/octal escapes can produce invalid UTF-8 (the
/// conformance tests use `"a\xc5z"`). `value` then has U+FFFD in place of the bad bytes and
/// `invalid_utf8` keeps the exact bytes, so the evaluator can reject them where upstream does
/// (label names) and the printer can reproduce them.
#[derive(Clone, Debug, PartialEq)]
pub struct StringLiteral {
    pub value: String,
    pub invalid_utf8: Option<Box<[u8]>>,
    pub pos: PosRange,
}

/// `@` modifier: a fixed time, or the start or end of the query range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtModifier {
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Start,
    End,
}

/// A range, subquery step or offset: a plain duration, or an experimental duration expression
/// (`[5m+1m]`, `offset step()`) that is resolved per query.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationParam {
    Literal(Duration),
    Expr(DurationExpr),
}

impl DurationParam {
    /// The concrete duration for a query with the given step and range (end - start; both
    /// zero for instant queries), as upstream's `durationVisitor` resolves it before
    /// evaluation. Offsets may be negative (`allow_negative`); ranges and steps may not.
    pub fn resolve(&self, step: Duration, range: Duration, allow_negative: bool) -> Result<Duration, DurationError> {
        let e = match self {
            DurationParam::Literal(d) => return Ok(*d),
            DurationParam::Expr(e) => e,
        };
        let secs = e.evaluate(step, range)?;
        if !secs.is_finite() {
            return Err(DurationError::NotFinite);
        }
        if secs <= 0.0 && !allow_negative {
            return Err(DurationError::NotPositive);
        }
        const LIMIT: f64 = 9_223_372_036.854_776; // int64 nanoseconds, as the parser's bound
        if !(-LIMIT..=LIMIT).contains(&secs) {
            return Err(DurationError::OutOfRange);
        }
        // Upstream truncates to whole milliseconds: time.Duration(secs*1000) * time.Millisecond.
        Ok(Duration::from_millis((secs * 1000.0) as i64))
    }
}

impl DurationExpr {
    /// The value in seconds for a query with the given step and range.
    pub fn evaluate(&self, step: Duration, range: Duration) -> Result<f64, DurationError> {
        Ok(match self {
            DurationExpr::Number(n) => n.value,
            DurationExpr::Step => step.as_secs_f64(),
            DurationExpr::Range => range.as_secs_f64(),
            DurationExpr::MinOf(a, b) => go_min(a.evaluate(step, range)?, b.evaluate(step, range)?),
            DurationExpr::MaxOf(a, b) => go_max(a.evaluate(step, range)?, b.evaluate(step, range)?),
            DurationExpr::Neg(e) => -e.evaluate(step, range)?,
            DurationExpr::Paren(e) => e.evaluate(step, range)?,
            DurationExpr::Binary { op, lhs, rhs } => {
                let (l, r) = (lhs.evaluate(step, range)?, rhs.evaluate(step, range)?);
                match op {
                    DurationOp::Add => l + r,
                    DurationOp::Sub => l - r,
                    DurationOp::Mul => l * r,
                    DurationOp::Div if r == 0.0 => return Err(DurationError::DivisionByZero),
                    DurationOp::Div => l / r,
                    DurationOp::Mod if r == 0.0 => return Err(DurationError::ModuloByZero),
                    // Rust's `%` on floats is C's fmod, as Go's math.Mod.
                    DurationOp::Mod => l % r,
                    DurationOp::Pow => l.powf(r),
                }
            }
        })
    }
}

/// Go's `math.Min`: NaN wins, and -0 is less than +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN wins, and +0 is greater than -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_positive() { a } else { b }
    } else {
        a.max(b)
    }
}

/// How range selection is modified by the experimental `anchored` and `smoothed` keywords.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RangeMode {
    #[default]
    Default,
    Anchored,
    Smoothed,
}

/// An instant vector selector: `name{l="v", ...}` with optional modifiers.
#[derive(Clone, Debug)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers, in source order, with `__name__="<name>"` appended when `name` is set
    /// (as upstream `assembleVectorSelector` does).
    pub matchers: Vec<Matcher>,
    /// `None` when absent or zero (upstream does not distinguish `offset 0`).
    pub offset: Option<DurationParam>,
    pub at: Option<AtModifier>,
    pub mode: RangeMode,
    pub pos: PosRange,
}

impl PartialEq for VectorSelector {
    /// Matcher order is not significant (the printer sorts them).
    fn eq(&self, other: &Self) -> bool {
        fn key(m: &Matcher) -> (&str, &str, &str) {
            (&m.name, m.kind.as_str(), &m.value)
        }
        if self.name != other.name
            || self.offset != other.offset
            || self.at != other.at
            || self.mode != other.mode
            || self.matchers.len() != other.matchers.len()
        {
            return false;
        }
        let mut a: Vec<_> = self.matchers.iter().map(key).collect();
        let mut b: Vec<_> = other.matchers.iter().map(key).collect();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

/// A range vector selector `sel[range]`. Offset, `@` and range mode live on `selector`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    pub selector: VectorSelector,
    pub range: DurationParam,
    pub pos: PosRange,
}

/// A subquery `expr[range:step]` with optional modifiers.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range: DurationParam,
    /// `None` means the default step (the global evaluation interval).
    pub step: Option<DurationParam>,
    pub offset: Option<DurationParam>,
    pub at: Option<AtModifier>,
    pub pos: PosRange,
}

/// Unary `+` or `-`. A unary operator on a number literal is folded into the literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Plus,
    Minus,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub pos: PosRange,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    /// `</`: experimental native-histogram trimming (keep the part below).
    TrimUpper,
    /// `>/`: experimental native-histogram trimming (keep the part above).
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Gtr => ">",
            BinaryOp::Lss => "<",
            BinaryOp::Gte => ">=",
            BinaryOp::Lte => "<=",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// `== != > < >= <=` (the trimming operators are not comparisons).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql | BinaryOp::Neq | BinaryOp::Gtr | BinaryOp::Lss | BinaryOp::Gte | BinaryOp::Lte
        )
    }

    /// `and or unless`.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// Cardinality of vector matching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cardinality {
    #[default]
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// Values filled in for series missing on one side (experimental `fill`, `fill_left`,
/// `fill_right` modifiers).
#[derive(Clone, Copy, Debug, Default)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

impl PartialEq for FillValues {
    fn eq(&self, other: &Self) -> bool {
        fn same(a: Option<f64>, b: Option<f64>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => same_float(a, b),
                _ => false,
            }
        }
        same(self.lhs, other.lhs) && same(self.rhs, other.rhs)
    }
}

/// How the elements of two vectors are matched (`VectorMatching` upstream).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// The `on`/`ignoring` labels.
    pub labels: Vec<String>,
    /// `on` rather than `ignoring`.
    pub on: bool,
    /// The `group_left`/`group_right` labels copied from the "one" side.
    pub include: Vec<String>,
    pub fill: FillValues,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// The `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Present only when both sides are instant vectors (set by type checking, as upstream).
    pub matching: Option<VectorMatching>,
    pub pos: PosRange,
    /// The operator and its modifiers, for error positions.
    pub op_pos: PosRange,
}

impl Drop for BinaryExpr {
    /// Dismantles left-nested chains iteratively; the default drop would recurse once per
    /// operator and could exhaust the stack on very long `a or b or …` chains.
    fn drop(&mut self) {
        let mut next = match &mut *self.lhs {
            Expr::Binary(_) => std::mem::replace(&mut *self.lhs, Expr::placeholder()),
            _ => return,
        };
        while let Expr::Binary(b) = &mut next {
            let lhs = std::mem::replace(&mut *b.lhs, Expr::placeholder());
            next = lhs;
        }
    }
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    /// Experimental.
    Limitk,
    /// Experimental.
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Parses an aggregation keyword, in any case as upstream's lexer does.
    pub fn from_keyword(word: &str) -> Option<Self> {
        const ALL: [AggregateOp; 14] = [
            AggregateOp::Sum,
            AggregateOp::Avg,
            AggregateOp::Count,
            AggregateOp::Min,
            AggregateOp::Max,
            AggregateOp::Group,
            AggregateOp::Stddev,
            AggregateOp::Stdvar,
            AggregateOp::Topk,
            AggregateOp::Bottomk,
            AggregateOp::CountValues,
            AggregateOp::Quantile,
            AggregateOp::Limitk,
            AggregateOp::LimitRatio,
        ];
        ALL.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether the operator takes a parameter before the vector (`topk(3, x)`).
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }

    /// Whether the operator needs `--enable-feature=promql-experimental-functions` upstream.
    pub fn is_experimental(self) -> bool {
        matches!(self, AggregateOp::Limitk | AggregateOp::LimitRatio)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Box<Expr>,
    pub param: Option<Box<Expr>>,
    /// The `by`/`without` labels; `by ()` and no clause are the same.
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParenExpr {
    pub expr: Box<Expr>,
    pub pos: PosRange,
}

/// Arithmetic on durations inside ranges, subquery steps and offsets (experimental upstream,
/// `promql-duration-expr`; always enabled here). Values are in seconds.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationExpr {
    Number(NumberLiteral),
    /// `step()`: the query step.
    Step,
    /// `range()`: the query range (end - start).
    Range,
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
    Neg(Box<DurationExpr>),
    Binary {
        op: DurationOp,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
    },
    Paren(Box<DurationExpr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl DurationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationOp::Add => "+",
            DurationOp::Sub => "-",
            DurationOp::Mul => "*",
            DurationOp::Div => "/",
            DurationOp::Mod => "%",
            DurationOp::Pow => "^",
        }
    }
}
