//! Type checking after parsing, as upstream's `parser.checkAST`: operand types, function
//! signatures, vector matching rules and selector sanity. Like upstream it also settles the
//! vector matching of binary expressions (none unless both sides are vectors; many-to-many
//! for set operators).
//!
//! Upstream collects every error and reports the first; this walks the tree in the same order
//! and stops at the first.

use watchfire_model::{METRIC_NAME, go_quote};

use crate::ast::*;
use crate::error::ParseError;
use crate::functions::Variadic;

pub(crate) fn check(expr: &mut Expr, input: &str) -> Result<(), ParseError> {
    Checker { input }.check(expr, false).map(|_| ())
}

struct Checker<'i> {
    input: &'i str,
}

impl Checker<'_> {
    fn error(&self, pos: PosRange, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, pos.start as usize, pos.end as usize, message)
    }

    fn expect_type(&self, e: &mut Expr, want: ValueType, context: &str) -> Result<(), ParseError> {
        let got = self.check(e, false)?;
        if got != want {
            return Err(self.error(
                e.pos(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented(),
                    got.documented()
                ),
            ));
        }
        Ok(())
    }

    /// Checks `e` and returns its type. `label_selector_only` marks the second argument of
    /// `info()`, which may select no metric name and no non-empty matcher.
    fn check(&self, e: &mut Expr, label_selector_only: bool) -> Result<ValueType, ParseError> {
        if matches!(e, Expr::Binary(_)) {
            return self.check_binary_chain(e);
        }
        let typ = e.value_type();
        match e {
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression")?;
                if let Some(param) = &mut a.param {
                    let want = if a.op == AggregateOp::CountValues {
                        ValueType::String
                    } else {
                        ValueType::Scalar
                    };
                    self.expect_type(param, want, "aggregation parameter")?;
                }
            }
            Expr::Binary(_) => unreachable!("binary expressions are checked as chains"),
            Expr::Call(c) => self.check_call(c)?,
            Expr::Paren(p) => {
                self.check(&mut p.expr, false)?;
            }
            Expr::Unary(u) => {
                let t = self.check(&mut u.expr, false)?;
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(self.error(
                        u.pos,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            go_quote(t.documented())
                        ),
                    ));
                }
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr, false)?;
                if t != ValueType::Vector {
                    return Err(self.error(
                        s.pos,
                        format!("subquery is only allowed on instant vector, got {} instead", t.as_str()),
                    ));
                }
            }
            Expr::MatrixSelector(m) => self.check_selector(&m.selector, false)?,
            Expr::VectorSelector(v) => self.check_selector(v, label_selector_only)?,
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
        Ok(typ)
    }

    fn check_selector(&self, v: &VectorSelector, label_selector_only: bool) -> Result<(), ParseError> {
        if let Some(name) = &v.name {
            // The last matcher is the one for `name`; an earlier `__name__` sets it twice.
            let before = &v.matchers[..v.matchers.len().saturating_sub(1)];
            if let Some(m) = before.iter().find(|m| m.name == METRIC_NAME) {
                return Err(self.error(
                    v.pos,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        go_quote(name),
                        go_quote(&m.value)
                    ),
                ));
            }
            return Ok(());
        }
        if !label_selector_only && v.matchers.iter().all(|m| m.matches_empty()) {
            return Err(self.error(v.pos, "vector selector must contain at least one non-empty matcher"));
        }
        Ok(())
    }

    /// Checks a binary expression and the binary expressions down its left side without
    /// recursing along that side: `a + b + c + …` nests to the left, and long chains of this
    /// kind (hundreds of `or`s) must not exhaust the stack. The order of checks is upstream's
    /// post-order: the leftmost operand, then each right operand followed by its operator.
    fn check_binary_chain(&self, e: &mut Expr) -> Result<ValueType, ParseError> {
        let mut chain = Vec::new();
        let mut cur = std::mem::replace(e, Expr::placeholder());
        while let Expr::Binary(mut b) = cur {
            cur = std::mem::replace(&mut *b.lhs, Expr::placeholder());
            chain.push(b);
        }
        let mut lt = self.check(&mut cur, false)?;
        let mut acc = cur;
        while let Some(mut b) = chain.pop() {
            *b.lhs = acc;
            let rt = self.check(&mut b.rhs, false)?;
            self.check_binary(&mut b, lt, rt)?;
            lt = if lt == ValueType::Scalar && rt == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            };
            acc = Expr::Binary(b);
        }
        *e = acc;
        Ok(lt)
    }

    /// The rules for one binary expression whose operands have types `lt` and `rt`.
    fn check_binary(&self, b: &mut BinaryExpr, lt: ValueType, rt: ValueType) -> Result<(), ParseError> {
        let op = b.op;
        if b.return_bool && !op.is_comparison() {
            return Err(self.error(b.op_pos, "bool modifier can only be used on comparison operators"));
        }
        if op.is_comparison() && !b.return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar {
            return Err(self.error(b.op_pos, "comparisons between scalars must use BOOL modifier"));
        }
        let vm = b.matching.get_or_insert_with(VectorMatching::default);
        if op.is_set_operator() && vm.card == Cardinality::OneToOne {
            vm.card = Cardinality::ManyToMany;
        }
        if vm.on
            && let Some(l) = vm.labels.iter().find(|l| vm.include.contains(l))
        {
            return Err(self.error(
                b.op_pos,
                format!("label {} must not occur in ON and GROUP clause at once", go_quote(l)),
            ));
        }
        for (t, side) in [(lt, &b.lhs), (rt, &b.rhs)] {
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(self.error(
                    side.pos(),
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        let has_fill = vm.fill.lhs.is_some() || vm.fill.rhs.is_some();
        if lt != ValueType::Vector || rt != ValueType::Vector {
            if !vm.labels.is_empty() {
                return Err(self.error(b.pos, "vector matching only allowed between instant vectors"));
            }
            if has_fill {
                return Err(self.error(b.pos, "filling in missing series only allowed between instant vectors"));
            }
            b.matching = None;
        } else if op.is_set_operator() {
            if matches!(vm.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                return Err(self.error(
                    b.pos,
                    format!("no grouping allowed for {} operation", go_quote(op.as_str())),
                ));
            }
            if vm.card != Cardinality::ManyToMany {
                return Err(self.error(b.pos, "set operations must always be many-to-many"));
            }
            if has_fill {
                return Err(self.error(b.pos, "filling in missing series not allowed for set operators"));
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set_operator() {
            return Err(self.error(
                b.pos,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    go_quote(op.as_str())
                ),
            ));
        }
        Ok(())
    }

    fn check_call(&self, c: &mut Call) -> Result<(), ParseError> {
        let f = c.func;
        let n = c.args.len();
        if f.variadic == Variadic::None {
            if n != f.arg_types.len() {
                return Err(self.error(
                    c.pos,
                    format!(
                        "expected {} argument(s) in call to {}, got {n}",
                        f.arg_types.len(),
                        go_quote(f.name)
                    ),
                ));
            }
        } else if n < f.min_args() {
            return Err(self.error(
                c.pos,
                format!(
                    "expected at least {} argument(s) in call to {}, got {n}",
                    f.min_args(),
                    go_quote(f.name)
                ),
            ));
        } else if let Some(max) = f.max_args()
            && n > max
        {
            return Err(self.error(
                c.pos,
                format!(
                    "expected at most {max} argument(s) in call to {}, got {n}",
                    go_quote(f.name)
                ),
            ));
        }
        let info_labels = f.name == "info" && n > 1;
        if info_labels {
            let arg = &c.args[1];
            let t = arg.value_type();
            if t != ValueType::Vector {
                return Err(self.error(
                    c.pos,
                    format!(
                        "expected type {} in call to function {}, got {}",
                        ValueType::Vector.documented(),
                        go_quote(f.name),
                        t.documented()
                    ),
                ));
            }
            match arg {
                Expr::VectorSelector(v) if v.name.is_some() => {
                    return Err(self.error(arg.pos(), "expected label selectors only, got vector selector instead"));
                }
                Expr::VectorSelector(_) => {}
                _ => return Err(self.error(arg.pos(), "expected label selectors only")),
            }
        }
        for (i, arg) in c.args.iter_mut().enumerate() {
            // Extra arguments of a fixed-arity call were reported above; upstream stops here.
            let Some(want) = f.arg_type(i) else { break };
            let got = self.check(arg, info_labels && i == 1)?;
            if got != want {
                return Err(self.error(
                    arg.pos(),
                    format!(
                        "expected type {} in call to function {}, got {}",
                        want.documented(),
                        go_quote(f.name),
                        got.documented()
                    ),
                ));
            }
        }
        Ok(())
    }
}
