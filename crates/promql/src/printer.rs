//! Canonical PromQL text for an AST, as Prometheus' `printer.go` (`Expr.String()`, used by
//! `/api/v1/format_query`) writes it: spaces around binary operators, `sum by (job) (x)`,
//! sorted matchers, `@ 100.000`, durations in Prometheus' duration syntax, numbers in Go's
//! shortest `'f'` format and strings double-quoted with Go escapes. No parentheses are added:
//! a parsed tree keeps the ones that matter as `Paren` nodes.

use std::fmt::{self, Display, Formatter, Write};

use watchfire_model::{Duration, METRIC_NAME, MatchType, format_go_float, go_quote, is_valid_legacy_label_name};

use crate::ast::*;
use crate::lex::quote_bytes;
use crate::parser::seconds_to_millis;

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => n.fmt(f),
            Expr::StringLiteral(s) => s.fmt(f),
            Expr::VectorSelector(v) => v.fmt(f),
            Expr::MatrixSelector(m) => m.fmt(f),
            Expr::Subquery(s) => s.fmt(f),
            Expr::Unary(u) => u.fmt(f),
            Expr::Binary(b) => b.fmt(f),
            Expr::Aggregate(a) => a.fmt(f),
            Expr::Call(c) => c.fmt(f),
            Expr::Paren(p) => write!(f, "({})", p.expr),
        }
    }
}

/// Seconds as a duration (`1h30m`, `-5m`), the way upstream prints duration literals.
fn write_seconds_as_duration(f: &mut Formatter<'_>, v: f64) -> fmt::Result {
    if v < 0.0 {
        write!(f, "-{}", Duration::from_millis(seconds_to_millis(-v)))
    } else {
        write!(f, "{}", Duration::from_millis(seconds_to_millis(v)))
    }
}

impl Display for NumberLiteral {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = self.value;
        if self.duration {
            write_seconds_as_duration(f, v)
        } else if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            // Rust's Display is Go's 'f' format with shortest digits (never an exponent).
            write!(f, "{v}")
        }
    }
}

impl Display for StringLiteral {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.invalid_utf8 {
            Some(bytes) => f.write_str(&quote_bytes(bytes)),
            None => f.write_str(&go_quote(&self.value)),
        }
    }
}

/// Labels of `by`, `without`, `on`, `ignoring` and `group_*` lists, quoted when they are not
/// legacy names. Unlike upstream, `without`, `inf` and `nan` are quoted too: the grammar does
/// not accept them bare in these lists, so upstream's output would not parse back.
pub(crate) fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let reserved = ["without", "inf", "nan"].iter().any(|w| l.eq_ignore_ascii_case(w));
        if is_valid_legacy_label_name(l) && !reserved {
            f.write_str(l)?;
        } else {
            f.write_str(&go_quote(l))?;
        }
    }
    Ok(())
}

impl Display for AtModifier {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AtModifier::Timestamp(ms) => write!(f, "@ {:.3}", *ms as f64 / 1000.0),
            AtModifier::Start => f.write_str("@ start()"),
            AtModifier::End => f.write_str("@ end()"),
        }
    }
}

impl Display for DurationParam {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurationParam::Literal(d) => d.fmt(f),
            DurationParam::Expr(e) => e.fmt(f),
        }
    }
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Number(n) => n.fmt(f),
            DurationExpr::Step => f.write_str("step()"),
            DurationExpr::Range => f.write_str("range()"),
            DurationExpr::MinOf(a, b) => write!(f, "min_of({a}, {b})"),
            DurationExpr::MaxOf(a, b) => write!(f, "max_of({a}, {b})"),
            DurationExpr::Neg(e) => write!(f, "-{e}"),
            DurationExpr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            DurationExpr::Paren(e) => write!(f, "({e})"),
        }
    }
}

impl VectorSelector {
    /// The name and matchers, without modifiers.
    fn fmt_selector(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().unwrap_or("");
        let mut shown: Vec<String> = self
            .matchers
            .iter()
            .filter(|m| {
                // The matcher for the name written before the braces is implied by it.
                !(m.name == METRIC_NAME && m.kind == MatchType::Equal && m.value == name && !m.value.is_empty())
            })
            .map(|m| m.to_string())
            .collect();
        f.write_str(name)?;
        if !shown.is_empty() {
            shown.sort_unstable();
            f.write_char('{')?;
            f.write_str(&shown.join(","))?;
            f.write_char('}')?;
        }
        Ok(())
    }

    fn fmt_mode(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.mode {
            RangeMode::Default => Ok(()),
            RangeMode::Anchored => f.write_str(" anchored"),
            RangeMode::Smoothed => f.write_str(" smoothed"),
        }
    }
}

fn fmt_at_offset(f: &mut Formatter<'_>, at: &Option<AtModifier>, offset: &Option<DurationParam>) -> fmt::Result {
    if let Some(at) = at {
        write!(f, " {at}")?;
    }
    fmt_offset(f, offset)
}

fn fmt_offset(f: &mut Formatter<'_>, offset: &Option<DurationParam>) -> fmt::Result {
    match offset {
        Some(o) => write!(f, " offset {o}"),
        None => Ok(()),
    }
}

impl Display for VectorSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.fmt_selector(f)?;
        if let Some(at) = &self.at {
            write!(f, " {at}")?;
        }
        self.fmt_mode(f)?;
        fmt_offset(f, &self.offset)
    }
}

impl Display for MatrixSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = &self.selector;
        s.fmt_selector(f)?;
        write!(f, "[{}]", self.range)?;
        s.fmt_mode(f)?;
        fmt_at_offset(f, &s.at, &s.offset)
    }
}

impl Display for SubqueryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}:", self.expr, self.range)?;
        if let Some(step) = &self.step {
            step.fmt(f)?;
        }
        f.write_char(']')?;
        fmt_at_offset(f, &self.at, &self.offset)
    }
}

impl Display for UnaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            UnaryOp::Plus => "+",
            UnaryOp::Minus => "-",
        };
        write!(f, "{op}{}", self.expr)
    }
}

impl Display for VectorMatching {
    /// The matching clause with a leading space (` on (a) group_left (b) fill (0)`), or
    /// nothing when it is the default.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let grouped = matches!(self.card, Cardinality::ManyToOne | Cardinality::OneToMany);
        if !self.labels.is_empty() || self.on || grouped {
            f.write_str(if self.on { " on (" } else { " ignoring (" })?;
            write_labels(f, &self.labels)?;
            f.write_char(')')?;
        }
        if grouped {
            let side = if self.card == Cardinality::ManyToOne {
                "left"
            } else {
                "right"
            };
            write!(f, " group_{side} (")?;
            write_labels(f, &self.include)?;
            f.write_char(')')?;
        }
        // Fill values print with Go's %v, which is the shortest 'g' format.
        match (self.fill.lhs, self.fill.rhs) {
            (Some(l), Some(r)) if l == r => write!(f, " fill ({})", format_go_float(l))?,
            (l, r) => {
                if let Some(l) = l {
                    write!(f, " fill_left ({})", format_go_float(l))?;
                }
                if let Some(r) = r {
                    write!(f, " fill_right ({})", format_go_float(r))?;
                }
            }
        }
        Ok(())
    }
}

impl Display for BinaryExpr {
    /// Walks left-nested chains (`a + b + c`) iteratively so that long ones do not recurse.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut chain = vec![self];
        let mut leftmost = &*self.lhs;
        while let Expr::Binary(b) = leftmost {
            chain.push(b);
            leftmost = &b.lhs;
        }
        match leftmost {
            // Upstream prints `Inf ^ 2` as `+Inf ^ 2`, which parses back as `+(Inf ^ 2)` and
            // grows another `+` on every round; the unsigned spelling keeps the tree.
            Expr::NumberLiteral(n)
                if n.value == f64::INFINITY && !n.duration && chain.last().is_some_and(|b| b.op == BinaryOp::Pow) =>
            {
                f.write_str("Inf")?
            }
            other => other.fmt(f)?,
        }
        for b in chain.iter().rev() {
            write!(f, " {}", b.op.as_str())?;
            if b.return_bool {
                f.write_str(" bool")?;
            }
            if let Some(vm) = &b.matching {
                vm.fmt(f)?;
            }
            f.write_char(' ')?;
            b.rhs.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for AggregateExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if self.without || !self.grouping.is_empty() {
            f.write_str(if self.without { " without (" } else { " by (" })?;
            write_labels(f, &self.grouping)?;
            f.write_str(") ")?;
        }
        f.write_char('(')?;
        if let Some(param) = &self.param {
            write!(f, "{param}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            a.fmt(f)?;
        }
        f.write_char(')')
    }
}
