//! Multi-line formatting for long queries, as `/api/v1/format_query` returns it: upstream's
//! `Pretty(0)` (promql/parser/prettier.go). A node whose one-line form is longer than 100
//! characters is split: aggregations and calls put their arguments on indented lines, binary
//! operators put each side on its own line with the operator between, parentheses wrap their
//! content. Everything shorter stays on one line in the canonical form.

use std::fmt::{self, Display, Formatter};

use crate::ast::{AggregateExpr, Expr};
use crate::printer::write_labels;

const MAX_LINE: usize = 100;
const INDENT: &str = "  ";

fn indent(level: usize) -> String {
    INDENT.repeat(level)
}

/// `sum by (job) ` / `sum without (job) ` / `sum`: the aggregation without its arguments.
struct AggOp<'a>(&'a AggregateExpr);

impl Display for AggOp<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let a = self.0;
        f.write_str(a.op.as_str())?;
        if a.without || !a.grouping.is_empty() {
            f.write_str(if a.without { " without (" } else { " by (" })?;
            write_labels(f, &a.grouping)?;
            f.write_str(") ")?;
        }
        Ok(())
    }
}

impl Expr {
    /// The query formatted over several lines when it is long (upstream `Prettify`).
    pub fn pretty(&self) -> String {
        pretty(self, 0, MAX_LINE)
    }

    /// [`pretty`](Self::pretty) with another line-length limit.
    pub fn pretty_with_width(&self, max_line: usize) -> String {
        pretty(self, 0, max_line)
    }
}

fn pretty(e: &Expr, level: usize, max: usize) -> String {
    let one_line = e.to_string();
    let split = one_line.len() > max;
    let ind = indent(level);
    match e {
        Expr::Aggregate(a) if split => {
            let mut s = format!("{ind}{}(\n", AggOp(a));
            if let Some(p) = &a.param {
                s.push_str(&pretty(p, level + 1, max));
                s.push_str(",\n");
            }
            s.push_str(&pretty(&a.expr, level + 1, max));
            s.push('\n');
            s.push_str(&ind);
            s.push(')');
            s
        }
        Expr::Binary(b) if split => {
            let mut op = b.op.as_str().to_owned();
            if b.return_bool {
                op.push_str(" bool");
            }
            if let Some(m) = &b.matching {
                op.push_str(&m.to_string());
            }
            format!(
                "{}\n{ind}{op}\n{}",
                pretty(&b.lhs, level + 1, max),
                pretty(&b.rhs, level + 1, max)
            )
        }
        Expr::Call(c) if split => {
            let args: Vec<String> = c.args.iter().map(|a| pretty(a, level + 1, max)).collect();
            format!("{ind}{}(\n{}\n{ind})", c.func.name, args.join(",\n"))
        }
        Expr::Paren(p) if split => format!("{ind}(\n{}\n{ind})", pretty(&p.expr, level + 1, max)),
        Expr::Subquery(s) => {
            if !split {
                // Upstream does not indent a subquery that fits on one line.
                return one_line;
            }
            let inner = s.expr.to_string();
            format!("{}{}", pretty(&s.expr, level, max), &one_line[inner.len()..])
        }
        Expr::Unary(u) => {
            let child = pretty(&u.expr, level, max);
            let op = match u.op {
                crate::ast::UnaryOp::Plus => "+",
                crate::ast::UnaryOp::Minus => "-",
            };
            format!("{ind}{op}{}", child.trim())
        }
        _ => format!("{ind}{one_line}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_expr;

    fn pretty(q: &str) -> String {
        parse_expr(q).unwrap().pretty()
    }

    fn narrow(q: &str) -> String {
        parse_expr(q).unwrap().pretty_with_width(10)
    }

    /// Cases from upstream's prettier tests, which use a 10-character limit.
    #[test]
    fn upstream_narrow_cases() {
        assert_eq!(narrow("sum(foo)"), "sum(foo)");
        assert_eq!(
            narrow(r#"sum by() (task:errors:rate10s{job="s"})"#),
            "sum(\n  task:errors:rate10s{job=\"s\"}\n)"
        );
        assert_eq!(
            narrow(r#"sum (task:errors:rate10s{job="s"}) by(job,foo)"#),
            "sum by (job, foo) (\n  task:errors:rate10s{job=\"s\"}\n)"
        );
        assert_eq!(
            narrow(r#"topk(10, ask:errors:rate10s{job="s"})"#),
            "topk(\n  10,\n  ask:errors:rate10s{job=\"s\"}\n)"
        );
        assert_eq!(
            narrow(r#"sum by(job,foo) (sum by(job,foo) (task:errors:rate10s{job="s"}))"#),
            "sum by (job, foo) (\n  sum by (job, foo) (\n    task:errors:rate10s{job=\"s\"}\n  )\n)"
        );
        assert_eq!(narrow("aaa + bbb + ccc"), "  aaa + bbb\n+\n  ccc");
        assert_eq!(narrow("aaaaa + bbbbb + c"), "    aaaaa\n  +\n    bbbbb\n+\n  c");
        assert_eq!(narrow("-metric_name"), "-metric_name");
        assert_eq!(narrow("-(a + b_long)"), "-(\n  a + b_long\n)");
    }

    #[test]
    fn short_queries_stay_on_one_line() {
        assert_eq!(pretty("sum by(job)(rate(foo[5m]))"), "sum by (job) (rate(foo[5m]))");
        assert_eq!(pretty("a+b"), "a + b");
    }

    #[test]
    fn long_binary_expressions_split_at_the_operator() {
        let q =
            "a_very_long_metric_name_number_one_for_this_test_case + a_very_long_metric_name_number_two_for_this_test";
        assert_eq!(
            pretty(q),
            "  a_very_long_metric_name_number_one_for_this_test_case\n+\n  a_very_long_metric_name_number_two_for_this_test"
        );
        let q = "first_quite_long_metric_name_for_testing_purposes > bool on (instance) group_left (job) second_quite_long_metric_name";
        assert_eq!(
            pretty(q),
            "  first_quite_long_metric_name_for_testing_purposes\n> bool on (instance) group_left (job)\n  second_quite_long_metric_name"
        );
    }

    #[test]
    fn long_aggregations_and_calls_indent_their_arguments() {
        let q = "topk by (instance, job) (5, rate(some_really_long_metric_name_that_goes_on_and_on_total{job=\"api\"}[5m]))";
        assert_eq!(
            pretty(q),
            "topk by (instance, job) (\n  5,\n  rate(some_really_long_metric_name_that_goes_on_and_on_total{job=\"api\"}[5m])\n)"
        );
        let q = "label_replace(some_really_long_metric_name_that_goes_on_and_on_and_on_total, \"dst\", \"$1\", \"src\", \"(.*)\")";
        assert_eq!(
            pretty(q),
            "label_replace(\n  some_really_long_metric_name_that_goes_on_and_on_and_on_total,\n  \"dst\",\n  \"$1\",\n  \"src\",\n  \"(.*)\"\n)"
        );
    }

    #[test]
    fn nested_splits_indent_per_level_and_parentheses_wrap() {
        let q = "(sum(rate(metric_one_with_a_much_longer_name_total[5m])) / sum(rate(metric_two_with_a_much_longer_name_total[5m])))";
        assert_eq!(
            pretty(q),
            "(\n    sum(rate(metric_one_with_a_much_longer_name_total[5m]))\n  /\n    sum(rate(metric_two_with_a_much_longer_name_total[5m]))\n)"
        );
        let q = "-sum(rate(metric_one_with_a_much_longer_name_total[5m]) + rate(metric_two_with_a_much_longer_name_total[5m]))";
        assert_eq!(
            pretty(q),
            "-sum(\n    rate(metric_one_with_a_much_longer_name_total[5m])\n  +\n    rate(metric_two_with_a_much_longer_name_total[5m])\n)"
        );
    }

    #[test]
    fn subqueries_keep_their_suffix_after_the_split_expression() {
        let q = "sum(rate(metric_one_with_a_much_longer_name_total[5m]) + rate(metric_two_with_a_much_longer_name_total[5m]))[1h:5m] offset 5m";
        assert_eq!(
            pretty(q),
            "sum(\n    rate(metric_one_with_a_much_longer_name_total[5m])\n  +\n    rate(metric_two_with_a_much_longer_name_total[5m])\n)[1h:5m] offset 5m"
        );
        assert_eq!(pretty("rate(foo[5m])[1h:]"), "rate(foo[5m])[1h:]");
    }
}
