//! `/api/v1/parse_query`: a parsed expression as the JSON tree upstream's UI draws (the shape
//! of upstream's `translateAST`: one object per node with a `type` and the node's fields).

use serde_json::{Value, json};
use watchfire_model::{Duration, Matcher};
use watchfire_promql::{
    AtModifier, Cardinality, DurationParam, Expr, RangeMode, UnaryOp, Variadic, VectorMatching, VectorSelector,
};

/// The JSON tree of `expr`.
pub fn translate(expr: &Expr) -> Value {
    match expr {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": translate(&a.expr),
            "param": a.param.as_deref().map(translate),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Binary(b) => json!({
            "type": "binaryExpr",
            "op": b.op.as_str(),
            "lhs": translate(&b.lhs),
            "rhs": translate(&b.rhs),
            "matching": b.matching.as_ref().map(matching),
            "bool": b.return_bool,
        }),
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "variadic": match c.func.variadic {
                    Variadic::None => 0,
                    Variadic::UpTo(n) => n as i64,
                    Variadic::Unbounded => -1,
                },
                "returnType": c.func.return_type.as_str(),
            },
            "args": c.args.iter().map(translate).collect::<Vec<_>>(),
        }),
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.selector, "matrixSelector");
            v["range"] = json!(millis(&m.range));
            v
        }
        Expr::VectorSelector(s) => selector(s, "vectorSelector"),
        Expr::Subquery(s) => {
            let (timestamp, start_or_end) = at(s.at);
            json!({
                "type": "subquery",
                "expr": translate(&s.expr),
                "range": millis(&s.range),
                "offset": s.offset.as_ref().map_or(0, offset_millis),
                "step": s.step.as_ref().map_or(0, millis),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": go_float(n.value)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.value}),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": translate(&p.expr)}),
        Expr::Unary(u) => json!({
            "type": "unaryExpr",
            "op": match u.op { UnaryOp::Plus => "+", UnaryOp::Minus => "-" },
            "expr": translate(&u.expr),
        }),
    }
}

fn selector(s: &VectorSelector, kind: &str) -> Value {
    let (timestamp, start_or_end) = at(s.at);
    json!({
        "type": kind,
        "name": s.name.as_deref().unwrap_or(""),
        "offset": s.offset.as_ref().map_or(0, offset_millis),
        "matchers": s.matchers.iter().map(matcher).collect::<Vec<_>>(),
        "timestamp": timestamp,
        "startOrEnd": start_or_end,
        "anchored": s.mode == RangeMode::Anchored,
        "smoothed": s.mode == RangeMode::Smoothed,
    })
}

fn matcher(m: &Matcher) -> Value {
    json!({"name": m.name, "value": m.value, "type": m.kind.as_str()})
}

fn matching(m: &VectorMatching) -> Value {
    json!({
        "card": match m.card {
            Cardinality::OneToOne => "one-to-one",
            Cardinality::ManyToOne => "many-to-one",
            Cardinality::OneToMany => "one-to-many",
            Cardinality::ManyToMany => "many-to-many",
        },
        "labels": m.labels,
        "on": m.on,
        "include": m.include,
        "fillValues": {"lhs": m.fill.lhs, "rhs": m.fill.rhs},
    })
}

/// `@ <time>` as milliseconds, or `@ start()`/`@ end()` by name.
fn at(at: Option<AtModifier>) -> (Option<i64>, Option<&'static str>) {
    match at {
        None => (None, None),
        Some(AtModifier::Timestamp(ms)) => (Some(ms), None),
        Some(AtModifier::Start) => (None, Some("start")),
        Some(AtModifier::End) => (None, Some("end")),
    }
}

/// A range or step in milliseconds. Duration expressions (`[step()*2]`) depend on the query
/// they run in; outside one they count as zero, as an unresolved duration does upstream.
fn millis(d: &DurationParam) -> i64 {
    d.resolve(Duration::ZERO, Duration::ZERO, false)
        .map_or(0, |d| d.as_millis())
}

fn offset_millis(d: &DurationParam) -> i64 {
    match d {
        DurationParam::Literal(d) => d.as_millis(),
        DurationParam::Expr(e) => e
            .evaluate(Duration::ZERO, Duration::ZERO)
            .map_or(0, |secs| (secs * 1000.0) as i64),
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::translate;
    use serde_json::json;

    fn tree(q: &str) -> serde_json::Value {
        translate(&watchfire_promql::parse_expr(q).unwrap())
    }

    #[test]
    fn selectors_and_calls() {
        assert_eq!(
            tree(r#"rate(http_requests_total{job="api"}[5m] offset 1m)"#),
            json!({
                "type": "call",
                "func": {"name": "rate", "argTypes": ["matrix"], "variadic": 0, "returnType": "vector"},
                "args": [{
                    "type": "matrixSelector",
                    "name": "http_requests_total",
                    "range": 300000,
                    "offset": 60000,
                    "matchers": [
                        {"name": "job", "value": "api", "type": "="},
                        {"name": "__name__", "value": "http_requests_total", "type": "="}
                    ],
                    "timestamp": null,
                    "startOrEnd": null,
                    "anchored": false,
                    "smoothed": false
                }]
            })
        );
    }

    #[test]
    fn binary_aggregation_and_literals() {
        let t = tree(r#"sum by (job) (up) / on (job) group_left (team) count(up @ end()) > bool 1e20"#);
        assert_eq!(t["type"], "binaryExpr");
        assert_eq!(t["op"], ">");
        assert_eq!(t["bool"], true);
        assert_eq!(
            t["rhs"],
            json!({"type": "numberLiteral", "val": "100000000000000000000"})
        );
        let div = &t["lhs"];
        assert_eq!(div["op"], "/");
        assert_eq!(div["matching"]["card"], "many-to-one");
        assert_eq!(div["matching"]["labels"], json!(["job"]));
        assert_eq!(div["matching"]["include"], json!(["team"]));
        assert_eq!(div["matching"]["on"], true);
        assert_eq!(div["lhs"]["type"], "aggregation");
        assert_eq!(div["lhs"]["grouping"], json!(["job"]));
        assert_eq!(div["lhs"]["param"], json!(null));
        assert_eq!(div["rhs"]["expr"]["startOrEnd"], "end");
        assert_eq!(tree("-Inf")["val"], "-Inf");
        assert_eq!(tree("(x)[5m:30s]")["step"], 30000);
        assert_eq!(tree(r#"-"a""#.trim_start_matches('-'))["type"], "stringLiteral");
        assert_eq!(tree("-x")["op"], "-");
    }
}
