//! Integration tests for the PromQL parser and printer: canonical printing, tree shapes and
//! precedence, error messages and positions, type checking, the upstream conformance corpus,
//! and the parse → print → parse property.

mod engine;

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use watchfire_model::{MatchType, go_quote};
use watchfire_promql::*;

fn parse(input: &str) -> Expr {
    parse_expr(input).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
}

/// Prints a tree with every node's structure explicit, to test precedence and associativity.
fn shape(e: &Expr) -> String {
    match e {
        Expr::NumberLiteral(n) => format!("{}", n.value),
        Expr::StringLiteral(s) => format!("{:?}", s.value),
        Expr::VectorSelector(v) => {
            let mut s = v.name.clone().unwrap_or_else(|| "{..}".into());
            if let Some(o) = &v.offset {
                write!(s, " offset {o}").unwrap();
            }
            if let Some(at) = &v.at {
                write!(s, " {at}").unwrap();
            }
            s
        }
        Expr::MatrixSelector(m) => format!("{}[{}]", shape(&Expr::VectorSelector(m.selector.clone())), m.range),
        Expr::Subquery(s) => format!("subquery({}, {})", shape(&s.expr), s.range),
        Expr::Unary(u) => format!("({}{})", if u.op == UnaryOp::Minus { "-" } else { "+" }, shape(&u.expr)),
        Expr::Binary(b) => format!("({} {} {})", shape(&b.lhs), b.op.as_str(), shape(&b.rhs)),
        Expr::Aggregate(a) => format!("{}({})", a.op.as_str(), shape(&a.expr)),
        Expr::Call(c) => {
            let args: Vec<String> = c.args.iter().map(shape).collect();
            format!("{}({})", c.func.name, args.join(", "))
        }
        Expr::Paren(p) => format!("[{}]", shape(&p.expr)),
    }
}

#[test]
fn canonical_printing() {
    // (input, canonical form); canonical forms are what Prometheus' printer produces.
    let cases = [
        ("1", "1"),
        ("+1.5", "1.5"),
        ("-0x10", "-16"),
        ("1_000_000", "1000000"),
        ("1e3", "1000"),
        ("1e-7", "0.0000001"),
        (".5", "0.5"),
        ("5.", "5"),
        ("0755", "493"),
        ("inF", "+Inf"),
        ("-Inf", "-Inf"),
        ("NaN", "NaN"),
        ("1h30m", "1h30m"),
        ("90s", "1m30s"),
        ("-5m", "-5m"),
        ("5m + 1", "5m + 1"),
        (r#"'single \' quoted'"#, r#""single ' quoted""#),
        ("`raw \\n`", r#""raw \\n""#),
        (r#""tab\there \u00e9 \x41""#, r#""tab\there é A""#),
        ("foo", "foo"),
        ("foo:bar:rate5m", "foo:bar:rate5m"),
        (
            r#"foo{b="1", a!="2", c=~"x.*", d!~"y"}"#,
            r#"foo{a!="2",b="1",c=~"x.*",d!~"y"}"#,
        ),
        (r#"{__name__="foo"}"#, r#"{__name__="foo"}"#),
        (r#"{"my.metric", "a.b"="c"}"#, r#"{"a.b"="c",__name__="my.metric"}"#),
        (r#"{"_0"="1"}"#, r#"{_0="1"}"#),
        (r#"foo{a="b",}"#, r#"foo{a="b"}"#),
        ("sum", "sum"),
        ("offset{step=\"1s\"}[5m]", r#"offset{step="1s"}[5m]"#),
        ("foo[5m]", "foo[5m]"),
        ("foo[300]", "foo[5m]"),
        ("foo[1.5]", "foo[1s500ms]"),
        ("foo[90m]", "foo[1h30m]"),
        ("foo offset 5m", "foo offset 5m"),
        ("foo OFFSET -7m", "foo offset -7m"),
        ("foo offset 0s", "foo"),
        ("foo @ 10", "foo @ 10.000"),
        ("foo @ 1.2345", "foo @ 1.235"),
        ("foo @ -5", "foo @ -5.000"),
        ("foo @ start()", "foo @ start()"),
        ("foo @ END()", "foo @ end()"),
        ("foo offset 1m @ 10", "foo @ 10.000 offset 1m"),
        ("foo[5m] @ 10 offset 1m", "foo[5m] @ 10.000 offset 1m"),
        ("foo[5m] offset 1m @ start()", "foo[5m] @ start() offset 1m"),
        ("foo anchored", "foo anchored"),
        ("foo[5m] smoothed offset 1m", "foo[5m] smoothed offset 1m"),
        ("foo @ 5 anchored offset 1m", "foo @ 5.000 anchored offset 1m"),
        ("foo[1h:5m]", "foo[1h:5m]"),
        ("foo[1h:]", "foo[1h:]"),
        (
            "rate(foo[5m])[30m:1m] offset 5m @ 100",
            "rate(foo[5m])[30m:1m] @ 100.000 offset 5m",
        ),
        ("(a + b)[5m:]", "(a + b)[5m:]"),
        ("foo[5m+1m]", "foo[5m + 1m]"),
        ("foo[(5m)]", "foo[5m]"),
        ("foo[2m*(10+5)]", "foo[2m * (10 + 5)]"),
        ("foo[-5m+35m]", "foo[-5m + 35m]"),
        ("foo[step()]", "foo[step()]"),
        ("foo[ STEP ( ) ]", "foo[step()]"),
        ("foo[(step())]", "foo[(step())]"),
        ("foo[((step()))]", "foo[(step())]"),
        ("foo[-(step())]", "foo[-(step())]"),
        ("foo[range()]", "foo[range()]"),
        ("foo[max_of(step(),5s)]", "foo[max_of(step(), 5s)]"),
        ("foo[29s+1s:5s+5s]", "foo[29s + 1s:5s + 5s]"),
        ("foo offset step()", "foo offset step()"),
        ("foo offset -step()", "foo offset -step()"),
        ("foo offset +step()", "foo offset step()"),
        ("foo offset (5*2)", "foo offset (5 * 2)"),
        ("foo offset +(5*2)", "foo offset (5 * 2)"),
        ("foo offset -(5)", "foo offset -5s"),
        ("foo offset (100 + 2)", "foo offset (100 + 2)"),
        // Parentheses around a literal vanish; the sum keeps them so it prints back the same.
        ("foo offset (5m) + 1m", "foo offset (5m + 1m)"),
        ("foo offset 100 + 2", "foo offset 1m40s + 2"),
        (
            "foo offset -min_of(10s, +max_of(step() ^ 2, 2))",
            "foo offset -min_of(10s, max_of(step() ^ 2, 2))",
        ),
        ("a+b", "a + b"),
        ("a+on(b)c", "a + on (b) c"),
        ("a - on() c", "a - on () c"),
        ("a - ignoring() c", "a - c"),
        ("a - ignoring(b) c", "a - ignoring (b) c"),
        ("a - on(b) group_left c", "a - on (b) group_left () c"),
        ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
        ("a - on(b) group_right(x, y) c", "a - on (b) group_right (x, y) c"),
        (
            "a - ignoring() group_left(__name__) c",
            "a - ignoring () group_left (__name__) c",
        ),
        (
            r#"foo / on("äää") group_left("ööö", job) bar"#,
            r#"foo / on ("äää") group_left ("ööö", job) bar"#,
        ),
        ("a > bool 1", "a > bool 1"),
        ("1 == bool 2", "1 == bool 2"),
        ("a and on(x) b", "a and on (x) b"),
        ("a unless ignoring(x) b", "a unless ignoring (x) b"),
        ("a atan2 b", "a atan2 b"),
        ("a </ b", "a </ b"),
        ("a >/ b", "a >/ b"),
        ("a + fill(-23) b", "a + fill (-23) b"),
        ("a + fill_left(1) fill_right(2) b", "a + fill_left (1) fill_right (2) b"),
        ("a + fill_right(2) fill_left(1) b", "a + fill_left (1) fill_right (2) b"),
        ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
        ("a + fill(1e6) b", "a + fill (1e+06) b"),
        ("a + fill(NaN) b", "a + fill_left (NaN) fill_right (NaN) b"),
        ("a + on(b) group_left fill(0) c", "a + on (b) group_left () fill (0) c"),
        ("fill + fill(0) other", "fill + fill (0) other"),
        ("-foo", "-foo"),
        ("+foo", "+foo"),
        ("- - foo", "--foo"),
        ("-(1)", "-(1)"),
        ("--1", "1"),
        ("sum(foo)", "sum(foo)"),
        ("SUM by (job) (foo)", "sum by (job) (foo)"),
        ("sum(foo) by (job, instance)", "sum by (job, instance) (foo)"),
        ("sum by() (foo)", "sum(foo)"),
        ("sum without() (foo)", "sum without () (foo)"),
        ("avg without(instance) (foo)", "avg without (instance) (foo)"),
        (r#"sum by ("foo.bar", a:b) (foo)"#, r#"sum by ("foo.bar", "a:b") (foo)"#),
        (
            "sum by (and, by, offset, on) (foo)",
            "sum by (and, by, offset, on) (foo)",
        ),
        ("topk(5, foo)", "topk(5, foo)"),
        ("bottomk by (a) (5, foo)", "bottomk by (a) (5, foo)"),
        (r#"count_values("value", foo)"#, r#"count_values("value", foo)"#),
        ("quantile(0.9, foo)", "quantile(0.9, foo)"),
        ("limitk(2, foo)", "limitk(2, foo)"),
        ("limit_ratio(0.5, foo)", "limit_ratio(0.5, foo)"),
        ("group(foo)", "group(foo)"),
        ("stddev(foo) + stdvar(foo)", "stddev(foo) + stdvar(foo)"),
        ("rate(foo[5m])", "rate(foo[5m])"),
        (
            "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
            "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        ),
        (
            r#"label_replace(up, "dst", "$1", "src", "(.*)")"#,
            r#"label_replace(up, "dst", "$1", "src", "(.*)")"#,
        ),
        (
            r#"label_join(up, "dst", ",", "a", "b", "c")"#,
            r#"label_join(up, "dst", ",", "a", "b", "c")"#,
        ),
        ("round(foo)", "round(foo)"),
        ("round(foo, 5)", "round(foo, 5)"),
        ("hour()", "hour()"),
        ("time()", "time()"),
        ("pi()", "pi()"),
        ("start()", "start()"),
        ("step() + range()", "step() + range()"),
        ("max_of(1, 2)", "max_of(1, 2)"),
        (r#"info(foo, {job="a"})"#, r#"info(foo, {job="a"})"#),
        (
            r#"histogram_quantiles(foo, "q", 0.5, 0.9)"#,
            r#"histogram_quantiles(foo, "q", 0.5, 0.9)"#,
        ),
        (r#"sort_by_label(foo, "a", "b")"#, r#"sort_by_label(foo, "a", "b")"#),
        (
            "double_exponential_smoothing(foo[5m], 0.5, 0.5)",
            "double_exponential_smoothing(foo[5m], 0.5, 0.5)",
        ),
        ("foo # a comment\n + bar", "foo + bar"),
        ("  (  foo  )  ", "(foo)"),
        ("predict_linear(foo[1h], 3000)", "predict_linear(foo[1h], 3000)"),
        ("1048576", "1048576"),
        ("1e21", "1000000000000000000000"),
        // Deliberately unlike upstream (`+Inf ^ 2`), which would parse back as `+(Inf ^ 2)`.
        ("Inf ^ 2", "Inf ^ 2"),
        ("Inf * 2", "+Inf * 2"),
        (
            r#"sum by ("without", "Inf", nan_x) (foo)"#,
            r#"sum by ("without", "Inf", nan_x) (foo)"#,
        ),
    ];
    for (input, want) in cases {
        let e = parse(input);
        assert_eq!(e.to_string(), want, "printing {input:?}");
        // The canonical form is a fixed point.
        assert_eq!(parse(want).to_string(), want, "reprinting {want:?}");
    }
}

#[test]
fn precedence_and_associativity() {
    let cases = [
        ("a + b * c", "(a + (b * c))"),
        ("a * b + c", "((a * b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b / c", "((a / b) / c)"),
        ("a ^ b ^ c", "(a ^ (b ^ c))"),
        ("a * b ^ c", "(a * (b ^ c))"),
        ("a atan2 b + c", "((a atan2 b) + c)"),
        ("a % b * c", "((a % b) * c)"),
        ("a + b > c", "((a + b) > c)"),
        ("a > b and c < d", "((a > b) and (c < d))"),
        ("a and b or c and d", "((a and b) or (c and d))"),
        ("a or b unless c", "(a or (b unless c))"),
        ("a unless b and c", "((a unless b) and c)"),
        ("a == b != c", "((a == b) != c)"),
        ("a </ b + c", "(a </ (b + c))"),
        // Unary minus binds like multiplication: looser than ^, as tight as *.
        ("-a ^ b", "(-(a ^ b))"),
        ("-a * b", "((-a) * b)"),
        ("-a + b", "((-a) + b)"),
        ("a * -b", "(a * (-b))"),
        ("a ^ -b", "(a ^ (-b))"),
        ("a ^ -b ^ c", "(a ^ (-(b ^ c)))"),
        ("2 ^ -1 ^ 2", "(2 ^ (-(1 ^ 2)))"),
        ("-2 ^ 2", "(-(2 ^ 2))"),
        ("-2 * 3", "(-2 * 3)"),
        ("- -2", "2"),
        // Postfix modifiers bind to the operand just before them.
        ("a + b offset 5m", "(a + b offset 5m)"),
        ("-a offset 5m", "(-a offset 5m)"),
        ("foo offset 5m + 1", "(foo offset 5m + 1)"),
        ("foo offset 5s-8", "(foo offset 5s - 8)"),
        ("foo offset -2 ^ 2", "(foo offset -2s ^ 2)"),
        ("foo offset -1^1", "(foo offset -1s ^ 1)"),
        ("foo offset step()*0", "(foo offset step() * 0)"),
        (
            "foo offset -min_of(step(), 1s)+8000",
            "(foo offset -min_of(step(), 1s) + 8000)",
        ),
        (
            "foo offset -(min_of(step(), 1s))+8000",
            "(foo offset -(min_of(step(), 1s)) + 8000)",
        ),
        ("(foo offset 2) ^ 2", "([foo offset 2s] ^ 2)"),
        ("foo @ 1 + bar", "(foo @ 1.000 + bar)"),
        ("sum(a) by (b) + c", "(sum(a) + c)"),
    ];
    for (input, want) in cases {
        assert_eq!(shape(&parse(input)), want, "shape of {input:?}");
    }
}

#[test]
fn duration_expressions_follow_upstream_grouping() {
    let shape_of_offset = |input: &str| match parse(input) {
        Expr::VectorSelector(v) => v.offset.map(|o| o.to_string()),
        other => panic!("{input:?} parsed as {other:?}"),
    };
    // A sign on a literal folds into it; on a power it stays an expression (worth -4s).
    assert_eq!(shape_of_offset("foo offset (-2 * 2)").as_deref(), Some("(-2 * 2)"));
    assert_eq!(shape_of_offset("foo offset (-2 ^ 2)").as_deref(), Some("(-2 ^ 2)"));
    assert_eq!(shape_of_offset("foo offset (-(2))").as_deref(), Some("-2s"));
    assert_eq!(shape_of_offset("foo offset (2 * 2)").as_deref(), Some("(2 * 2)"));
    assert_eq!(shape_of_offset("foo offset -(2 * 2)").as_deref(), Some("-(2 * 2)"));
    assert_eq!(shape_of_offset("foo offset --5m").as_deref(), Some("5m"));
    assert_eq!(shape_of_offset("foo offset -0").as_deref(), None);

    let Expr::MatrixSelector(m) = parse("foo[-2^2]") else {
        panic!("not a matrix selector")
    };
    match m.range {
        DurationParam::Expr(DurationExpr::Neg(inner)) => {
            assert!(matches!(
                *inner,
                DurationExpr::Binary {
                    op: DurationOp::Pow,
                    ..
                }
            ))
        }
        other => panic!("unexpected range {other:?}"),
    }
    let Expr::MatrixSelector(m) = parse("foo[1001ms]") else {
        panic!("not a matrix selector")
    };
    assert_eq!(
        m.range,
        DurationParam::Literal(watchfire_model::Duration::from_millis(1001))
    );
}

#[test]
fn duration_expressions_resolve_per_query() {
    use watchfire_model::Duration;
    let secs = Duration::from_secs;
    let range_of = |input: &str| match parse(input) {
        Expr::MatrixSelector(m) => m.range,
        Expr::Call(c) => match &c.args[0] {
            Expr::MatrixSelector(m) => m.range.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{input:?} parsed as {other:?}"),
    };
    let offset_of = |input: &str| match parse(input) {
        Expr::VectorSelector(v) => v.offset.expect("an offset"),
        other => panic!("{input:?} parsed as {other:?}"),
    };
    // Values from duration_expression.test: range queries from 50s to 60s.
    let (step, range) = (secs(10), secs(10));
    assert_eq!(
        range_of("foo[step()+1ms]").resolve(step, range, false),
        Ok(Duration::from_millis(10_001))
    );
    assert_eq!(
        range_of("foo[1+(STep()-5)*2]").resolve(step, range, false),
        Ok(secs(11))
    );
    assert_eq!(
        range_of("foo[min_of(step()+1,1h)]").resolve(secs(5), range, false),
        Ok(secs(6))
    );
    assert_eq!(range_of("foo[2m*(10+5)]").resolve(step, range, false), Ok(secs(1800)));
    assert_eq!(range_of("foo[1h30m % 1h]").resolve(step, range, false), Ok(secs(1800)));
    assert_eq!(
        range_of("foo[30m1s-30m1s % 1m]").resolve(step, range, false),
        Ok(secs(1800))
    );
    assert_eq!(
        offset_of("foo offset -(min_of(step(), 2s)-5)").resolve(secs(5), range, true),
        Ok(secs(3))
    );
    assert_eq!(
        offset_of("foo offset range()").resolve(step, Duration::ZERO, true),
        Ok(Duration::ZERO)
    );
    assert_eq!(
        offset_of("foo offset (-2 ^ 2)").resolve(step, range, true),
        Ok(secs(-4))
    );
    assert_eq!(range_of("foo[5m]").resolve(step, range, false), Ok(secs(300)));
    // Errors that only a concrete query can reveal.
    assert_eq!(
        range_of("foo[1h/range()]").resolve(step, Duration::ZERO, false),
        Err(DurationError::DivisionByZero)
    );
    assert_eq!(
        range_of("foo[1h%step()]").resolve(Duration::ZERO, range, false),
        Err(DurationError::ModuloByZero)
    );
    assert_eq!(
        range_of("foo[step()]").resolve(Duration::ZERO, range, false),
        Err(DurationError::NotPositive)
    );
    assert_eq!(
        range_of("foo[-step()+1s]").resolve(secs(5), range, false),
        Err(DurationError::NotPositive)
    );
    assert_eq!(
        range_of("foo[10^20]").resolve(step, range, false),
        Err(DurationError::OutOfRange)
    );
}

#[test]
fn ast_details() {
    // The metric name is also a matcher, appended last as upstream does.
    let Expr::VectorSelector(v) = parse(r#"foo{a="b"}"#) else {
        panic!()
    };
    assert_eq!(v.name.as_deref(), Some("foo"));
    let m: Vec<(String, MatchType, String)> = v
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.kind, m.value.clone()))
        .collect();
    assert_eq!(
        m,
        [
            ("a".into(), MatchType::Equal, "b".into()),
            ("__name__".into(), MatchType::Equal, "foo".into())
        ]
    );

    // Vector matching is settled by type checking.
    let Expr::Binary(b) = parse("a and b") else { panic!() };
    assert_eq!(b.matching.as_ref().unwrap().card, Cardinality::ManyToMany);
    let Expr::Binary(b) = parse("a * on(x) group_left(y) b") else {
        panic!()
    };
    let vm = b.matching.clone().unwrap();
    assert_eq!(
        (vm.card, vm.on, vm.labels, vm.include),
        (
            Cardinality::ManyToOne,
            true,
            vec!["x".to_string()],
            vec!["y".to_string()]
        )
    );
    let Expr::Binary(b) = parse("a + on() 1") else { panic!() };
    assert!(b.matching.is_none(), "scalar operands have no vector matching");
    let Expr::Binary(b) = parse("a + fill_left(1) b") else {
        panic!()
    };
    assert_eq!(
        b.matching.as_ref().unwrap().fill,
        FillValues {
            lhs: Some(1.0),
            rhs: None
        }
    );

    let Expr::Aggregate(a) = parse("topk by (x) (3, foo)") else {
        panic!()
    };
    assert_eq!(a.op, AggregateOp::Topk);
    assert_eq!(a.grouping, ["x"]);
    assert!(matches!(a.param.as_deref(), Some(Expr::NumberLiteral(n)) if n.value == 3.0));

    let Expr::Subquery(s) = parse("foo[10m:6s] @ end() offset 1m") else {
        panic!()
    };
    assert_eq!(s.at, Some(AtModifier::End));
    assert!(s.step.is_some() && s.offset.is_some());

    let Expr::MatrixSelector(m) = parse("foo[5m] @ 1603774699") else {
        panic!()
    };
    assert_eq!(m.selector.at, Some(AtModifier::Timestamp(1_603_774_699_000)));

    // Invalid UTF-8 from escapes is kept for the evaluator and the printer.
    let Expr::Call(c) = parse(r#"label_replace(x, "\xff", "", "src", "(.*)")"#) else {
        panic!()
    };
    let Expr::StringLiteral(s) = &c.args[1] else { panic!() };
    assert_eq!(s.invalid_utf8.as_deref(), Some(&b"\xff"[..]));
    assert_eq!(s.to_string(), r#""\xff""#);

    // Positions are byte offsets and do not take part in equality.
    let e = parse("  foo + bar");
    assert_eq!((e.pos().start, e.pos().end), (2, 11));
    assert_eq!(e, parse("foo+bar"));
}

#[test]
fn value_types() {
    let cases = [
        ("1", ValueType::Scalar),
        ("\"s\"", ValueType::String),
        ("foo", ValueType::Vector),
        ("foo[5m]", ValueType::Matrix),
        ("foo[5m:]", ValueType::Matrix),
        ("1 + 2", ValueType::Scalar),
        ("foo + 2", ValueType::Vector),
        ("-(1)", ValueType::Scalar),
        ("scalar(foo)", ValueType::Scalar),
        ("sum(foo)", ValueType::Vector),
        ("(foo[5m])", ValueType::Matrix),
        ("time()", ValueType::Scalar),
    ];
    for (input, want) in cases {
        assert_eq!(parse(input).value_type(), want, "{input:?}");
    }
}

#[test]
fn invalid_expressions() {
    // (input, byte offset of the error, fragment of the message). Offsets and messages follow
    // upstream's parser (promql/parser/parse_test.go).
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "no expression found in input"),
        ("# just a comment\n", 0, "no expression found in input"),
        ("1+", 2, "unexpected end of input"),
        (".", 0, "unexpected character: '.'"),
        ("2.5.", 0, "bad number or duration syntax: \"2.5.\""),
        ("0deadbeef", 0, "bad number or duration syntax: \"0de\""),
        ("0x1e", 0, "bad number or duration syntax"),
        ("1_", 0, "bad number or duration syntax"),
        ("*1", 0, "unexpected <op:*>"),
        ("(1))", 4, "unexpected right parenthesis ')'"),
        ("((1)", 4, "unclosed left parenthesis"),
        ("sum(rate(", 9, "unclosed left parenthesis"),
        ("1e400", 0, "value out of range"),
        (
            "1 and 1",
            0,
            "set operator \"and\" not allowed in binary scalar expression",
        ),
        ("1 == 1", 2, "comparisons between scalars must use BOOL modifier"),
        ("1 !~ 1", 2, "unexpected character after '!': '~'"),
        ("1 =~ 1", 2, "unexpected character after '=': '~'"),
        (
            "-\"string\"",
            0,
            "unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
        ),
        ("-test[5m]", 0, "got \"range vector\""),
        ("@@", 0, "unexpected <op:@>"),
        (
            "1 offset 1d",
            0,
            "offset modifier must be preceded by an instant vector selector",
        ),
        ("foo offset 1s offset 2s", 0, "offset may not be set multiple times"),
        ("a - on(b) ignoring(c) d", 10, "unexpected <ignoring>"),
        ("foo + group_left(baz) bar", 6, "unexpected <group_left>"),
        (
            "foo and on(bar) group_left(baz) bar",
            0,
            "no grouping allowed for \"and\" operation",
        ),
        (
            "foo == on(bar) 10",
            0,
            "vector matching only allowed between instant vectors",
        ),
        (
            "foo + fill(1) 2",
            0,
            "filling in missing series only allowed between instant vectors",
        ),
        (
            "foo or fill(1) bar",
            0,
            "filling in missing series not allowed for set operators",
        ),
        (
            "a + on(x) group_left(x) b",
            2,
            "label \"x\" must not occur in ON and GROUP clause at once",
        ),
        (
            "foo + bool bar",
            4,
            "bool modifier can only be used on comparison operators",
        ),
        ("foo @ +Inf", 0, "timestamp out of bounds for @ modifier: +Inf"),
        ("foo @ NaN", 0, "timestamp out of bounds for @ modifier: NaN"),
        ("foo @ 1 @ 2", 0, "@ <timestamp> may not be set multiple times"),
        ("sum(foo) @ 1", 0, "@ modifier must be preceded by"),
        ("{", 1, "unexpected end of input inside braces"),
        ("some}", 4, "unexpected character: '}'"),
        (
            "some_metric{a=b}",
            14,
            "unexpected identifier \"b\" in label matching, expected string",
        ),
        ("some_metric{a:b=\"b\"}", 13, "unexpected character inside braces: ':'"),
        (
            "foo{gibberish}",
            13,
            "unexpected \"}\" in label matching, expected label matching operator",
        ),
        ("foo{1}", 4, "unexpected character inside braces: '1'"),
        (
            "foo{,}",
            4,
            "unexpected \",\" in label matching, expected identifier or \"}\"",
        ),
        (
            "foo{__name__=\"bar\" lol}",
            19,
            "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\"",
        ),
        ("foo{a=~\"(\"}", 4, "invalid regular expression"),
        ("{}", 0, "vector selector must contain at least one non-empty matcher"),
        (
            "{x=~\".*\"}",
            0,
            "vector selector must contain at least one non-empty matcher",
        ),
        (
            "foo{__name__=\"bar\"}",
            0,
            "metric name must not be set twice: \"foo\" or \"bar\"",
        ),
        ("foo[5mm]", 4, "bad number or duration syntax: \"5mm\""),
        ("foo[5m1h]", 4, "not a valid duration string"),
        ("foo[0m]", 4, "duration must be greater than 0"),
        ("foo[-1]", 4, "duration must be greater than 0"),
        ("foo[5m:0s]", 7, "duration must be greater than 0"),
        ("foo[\"5m\"]", 4, "unexpected character in duration expression: '\"'"),
        (
            "foo[]",
            4,
            "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()",
        ),
        ("foo[inf]", 4, "unexpected character in duration expression: 'i'"),
        ("foo[5m", 6, "unclosed left bracket"),
        (
            "some_metric[5m] OFFSET",
            22,
            "unexpected end of input in offset, expected number, duration, step(), or range()",
        ),
        (
            "some_metric OFFSET 1m[5m]",
            21,
            "no offset modifiers allowed before range",
        ),
        (
            "some_metric[5m] @",
            17,
            "unexpected end of input in @, expected timestamp",
        ),
        ("some_metric @ 1234 [5m]", 19, "no @ modifiers allowed before range"),
        ("(foo + bar)[5m]", 11, "ranges only allowed for vector selectors"),
        (
            "rate(food[1m])[1h] offset 1h",
            14,
            "ranges only allowed for vector selectors",
        ),
        (
            "test[5d] OFFSET 10s [10m:5s]",
            0,
            "subquery is only allowed on instant vector, got matrix instead",
        ),
        ("sum by (\"foo)(some_metric{})", 8, "unterminated quoted string"),
        (
            "sum without(==)(some_metric)",
            12,
            "unexpected <op:==> in grouping opts, expected label",
        ),
        (
            "sum without(foo,,)(some_metric)",
            16,
            "unexpected \",\" in grouping opts, expected label",
        ),
        ("sum by (\"\") (foo)", 8, "invalid label name for grouping: \"\""),
        ("sum some_metric by (test)", 4, "unexpected identifier \"some_metric\""),
        (
            "sum (some_metric) by test",
            21,
            "unexpected identifier \"test\" in grouping opts, expected \"(\"",
        ),
        ("sum () by (test)", 0, "no arguments for aggregate expression provided"),
        ("sum (some_metric) without (test) by (test)", 33, "unexpected <by>"),
        (
            "topk(some_metric)",
            0,
            "wrong number of arguments for aggregate expression provided, expected 2, got 1",
        ),
        (
            "topk(some_metric,)",
            16,
            "trailing commas not allowed in function call args",
        ),
        (
            "topk(some_metric, other_metric)",
            5,
            "expected type scalar in aggregation parameter, got instant vector",
        ),
        (
            "count_values(5, other_metric)",
            13,
            "expected type string in aggregation parameter, got scalar",
        ),
        (
            "sum(foo[5m])",
            4,
            "expected type instant vector in aggregation expression, got range vector",
        ),
        ("floor()", 0, "expected 1 argument(s) in call to \"floor\", got 0"),
        (
            "floor(1)",
            6,
            "expected type instant vector in call to function \"floor\", got scalar",
        ),
        (
            "hour(a, a, a)",
            0,
            "expected at most 1 argument(s) in call to \"hour\", got 3",
        ),
        (
            "label_join(a, \"b\")",
            0,
            "expected at least 3 argument(s) in call to \"label_join\", got 2",
        ),
        (
            "non_existent_function_far_bar()",
            0,
            "unknown function with name \"non_existent_function_far_bar\"",
        ),
        ("Rate(foo[5m])", 0, "unknown function with name \"Rate\""),
        (
            "holt_winters(foo[5m], 0.5, 0.5)",
            0,
            "unknown function with name \"holt_winters\"",
        ),
        (
            "rate(some_metric)",
            5,
            "expected type range vector in call to function \"rate\", got instant vector",
        ),
        ("a>b()", 2, "unknown function with name \"b\""),
        ("foo:bar(x)", 7, "unexpected \"(\""),
        ("-=", 1, "unexpected \"=\""),
        ("`\\``", 3, "unterminated raw string"),
        ("\"\\c\"", 0, "unknown escape sequence U+0063 'c'"),
        ("\"\\x.\"", 0, "illegal character U+002E '.' in escape sequence"),
        ("\"a\nb\"", 0, "unterminated quoted string"),
        (
            "info(rate(x[5m]), target_info{foo=\"bar\"})",
            18,
            "expected label selectors only, got vector selector instead",
        ),
        ("info(x, {foo=\"bar\"} == 1)", 8, "expected label selectors only"),
        ("foo[step()/0d]", 10, "division by zero"),
        ("foo[5s%0d]", 6, "modulo by zero"),
        ("foo offset (4d/0)", 14, "division by zero"),
        ("foo offset 9.5e10", 11, "duration out of range"),
        ("foo offset inf", 11, "duration out of range"),
        ("foo[9.5e10]", 4, "duration out of range"),
        ("foo[5s x 5s]", 7, "unexpected character: 'x', expected ':'"),
        ("1[5m] smoothed", 1, "ranges only allowed for vector selectors"),
        (
            "foo anchored smoothed",
            0,
            "anchored and smoothed modifiers cannot be used together",
        ),
        (
            "foo[5m:] anchored",
            0,
            "anchored modifier is not supported for subqueries",
        ),
        ("sum(foo) smoothed", 0, "smoothed modifier not implemented"),
        // Upstream shifts the `+` into the duration expression and then fails on `bar`.
        ("foo offset (5m) + bar", 18, "unexpected identifier \"bar\""),
        ("a + on(b) group_left (c + d)", 24, "unexpected <op:+>"),
    ];
    for &(input, offset, fragment) in cases {
        let err = match parse_expr(input) {
            Ok(e) => panic!("{input:?} should fail, parsed as {e}"),
            Err(e) => e,
        };
        assert!(
            err.message.contains(fragment),
            "{input:?}: {err} does not mention {fragment:?}"
        );
        assert_eq!(err.offset(), offset, "{input:?}: {err}");
    }
}

#[test]
fn error_display_has_line_and_column() {
    let err = parse_expr("sum(rate(foo[5m])\n  by (job)").unwrap_err();
    assert_eq!(err.to_string(), "2:3: parse error: unexpected <by>");
    let err = parse_expr("foo{a=b}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "1:7: parse error: unexpected identifier \"b\" in label matching, expected string"
    );
    assert_eq!(
        parse_expr("").unwrap_err().to_string(),
        "unknown position: parse error: no expression found in input"
    );
}

#[test]
fn keywords_as_metric_names() {
    for name in [
        "sum", "avg", "by", "without", "offset", "start", "end", "step", "range", "and", "or", "unless", "anchored",
        "smoothed", "min_of", "fill", "limitk",
    ] {
        let Expr::VectorSelector(v) = parse(name) else {
            panic!("{name} is not a selector")
        };
        assert_eq!(v.name.as_deref(), Some(name));
        assert_eq!(
            parse(&format!("rate({name}[5m])")).to_string(),
            format!("rate({name}[5m])")
        );
    }
    for name in ["bool", "on", "ignoring", "group_left", "group_right", "atan2"] {
        assert!(parse_expr(name).is_err(), "{name} must not be a metric name");
    }
    assert_eq!(shape(&parse("or or or")), "(or or or)");
    assert!(parse_expr("Infinity").is_ok(), "only inf and nan are numbers");
}

#[test]
fn metric_selectors() {
    let m = parse_metric_selector(r#"up{job="x", instance=~"a.*"}"#).unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["job", "instance", "__name__"]);
    let m = parse_metric_selector(r#"{__name__=~"a.*"}"#).unwrap();
    assert_eq!(m.len(), 1);
    assert!(m[0].matches("abc") && !m[0].matches("b"));
    let m = parse_metric_selector(r#"{"my.metric"}"#).unwrap();
    assert_eq!((m[0].name.as_str(), m[0].value.as_str()), ("__name__", "my.metric"));
    // Like upstream, the empty-matcher rule is left to the API layer.
    assert!(parse_metric_selector("{}").unwrap().is_empty());
    for bad in [
        "up offset 5m",
        "rate(up[5m])",
        "up[5m]",
        "up{",
        "{a=~\"(\"}",
        "up + up",
        "",
    ] {
        assert!(parse_metric_selector(bad).is_err(), "{bad:?} is not a selector");
    }
}

#[test]
fn deep_and_long_inputs_do_not_overflow() {
    let nested = format!("{}1{}", "(".repeat(150), ")".repeat(150));
    assert_eq!(parse(&nested).value_type(), ValueType::Scalar);
    let too_deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_expr(&too_deep).unwrap_err().message.contains("nests"));
    let long_chain = vec!["x"; 2000].join(" + ");
    assert_eq!(parse(&long_chain).to_string(), long_chain);
    let signs = format!("{}x", "-".repeat(200));
    assert_eq!(parse(&signs).to_string(), signs);
    let too_many_signs = format!("{}x", "-".repeat(2000));
    assert!(parse_expr(&too_many_signs).unwrap_err().message.contains("nests"));
    let long_or = vec!["x"; 5000].join(" or ");
    assert_eq!(parse(&long_or).to_string(), long_or);
    let pow_chain = vec!["x"; 200].join(" ^ ");
    assert_eq!(parse(&pow_chain).to_string(), pow_chain);
    let too_many_pows = vec!["x"; 2000].join(" ^ ");
    assert!(parse_expr(&too_many_pows).unwrap_err().message.contains("nests"));
    let long_duration = format!("foo[{}1s]", "1s+".repeat(500));
    assert!(parse_expr(&long_duration).unwrap_err().message.contains("nests"));
}

// ---------------------------------------------------------------------------------------------
// The upstream conformance corpus.

const COMPAT_DIR: &str = "/work/shared/compat/prometheus/promqltest";

/// Expressions that parse differently from upstream, with the reason. Every entry is checked
/// to still disagree, so the list cannot go stale.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Eval {
    file: String,
    line: usize,
    expr: String,
    expect_fail: bool,
    fail_pattern: Option<String>,
}

/// Extracts every eval command as upstream's promqltest does: lines are trimmed, `#` lines
/// are comments, and the command's body runs to the next blank line.
fn corpus_evals(dir: &Path) -> Vec<Eval> {
    let instant =
        regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").unwrap();
    let range =
        regex::Regex::new(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
            .unwrap();
    let expect =
        regex::Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$").unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut evals = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| {
                let l = l.trim();
                if l.starts_with('#') { "" } else { l }
            })
            .collect();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if !line.to_lowercase().starts_with("eval") {
                i += 1;
                continue;
            }
            let (modifier, expr) = if let Some(c) = instant.captures(line) {
                (c.get(1).map(|m| m.as_str()), c[3].to_string())
            } else if let Some(c) = range.captures(line) {
                (c.get(1).map(|m| m.as_str()), c[5].to_string())
            } else {
                panic!("{file}:{}: unrecognised eval command {line:?}", i + 1);
            };
            let mut eval = Eval {
                file: file.clone(),
                line: i + 1,
                expr,
                expect_fail: modifier == Some("fail"),
                fail_pattern: None,
            };
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let body = lines[i];
                if let Some(rest) = body.strip_prefix("expected_fail_message") {
                    eval.fail_pattern = Some(rest.trim().to_string());
                } else if let Some(rest) = body.strip_prefix("expected_fail_regexp") {
                    eval.fail_pattern = Some(rest.trim().to_string());
                } else if let Some(c) = expect.captures(body)
                    && &c[1] == "fail"
                {
                    eval.expect_fail = true;
                    eval.fail_pattern = c.get(3).map(|m| m.as_str().trim().to_string());
                }
                i += 1;
            }
            evals.push(eval);
        }
    }
    evals
}

#[test]
fn upstream_corpus_parses() {
    let dir = Path::new(COMPAT_DIR);
    if !dir.is_dir() {
        eprintln!("skipping the corpus test: {COMPAT_DIR} is absent");
        return;
    }
    let evals = corpus_evals(dir);
    assert!(evals.len() > 1000, "only {} eval commands found", evals.len());
    let (mut parsed, mut expected_failures, mut wrong, mut fail_at_eval) = (0, 0, Vec::new(), 0);
    for e in &evals {
        let known = KNOWN_FAILURES.iter().find(|(x, _)| *x == e.expr);
        // promqltest parses every expression when it loads the file, so a parse error there
        // fails the whole file: an expected failure is a parse failure only if its message
        // says so.
        let wants_parse_error = e.expect_fail && e.fail_pattern.as_deref().is_some_and(|p| p.contains("parse error"));
        if e.expect_fail && !wants_parse_error {
            fail_at_eval += 1;
        }
        let result = parse_expr(&e.expr);
        let ok = match (&result, wants_parse_error) {
            (Ok(_), false) => {
                parsed += 1;
                true
            }
            (Err(_), true) => {
                expected_failures += 1;
                true
            }
            _ => false,
        };
        if !ok && known.is_none() {
            wrong.push(format!(
                "{}:{}: {} => {:?}",
                e.file,
                e.line,
                e.expr,
                result.as_ref().map(|x| x.to_string())
            ));
        }
        if ok && let Some((x, reason)) = known {
            panic!("{x:?} is listed as a known failure ({reason}) but now parses as upstream does");
        }
        if let Ok(expr) = result {
            let printed = expr.to_string();
            let again = parse_expr(&printed).unwrap_or_else(|err| {
                panic!(
                    "{}:{}: {printed:?} (printed from {:?}) fails: {err}",
                    e.file, e.line, e.expr
                )
            });
            assert_eq!(
                again, expr,
                "{}:{}: print/parse round trip of {:?} via {printed:?}",
                e.file, e.line, e.expr
            );
        }
    }
    println!(
        "corpus: {} eval expressions, {parsed} parsed as expected ({fail_at_eval} of them expect an evaluation failure), \
         {expected_failures} expected parse failures, {} wrong, {} known failures",
        evals.len(),
        wrong.len(),
        KNOWN_FAILURES.len()
    );
    assert!(
        wrong.is_empty(),
        "{} expressions disagree with upstream:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// parse → print → parse.

fn metric_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "foo",
        "http_requests_total",
        "job:rate:5m",
        "_x",
        "sum",
        "offset",
        "by",
        "start",
        "step",
        "anchored",
        "and",
        "fill",
        "min_of",
        "Inf_x",
        "nan_count",
    ])
    .prop_map(str::to_string)
}

fn label_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        "a",
        "production",
        "ä ö ü",
        "quo\"te",
        "back\\slash",
        "new\nline",
        "tab\t",
        "\u{1F600}",
    ])
    .prop_map(str::to_string)
}

fn quoted(value: &str) -> BoxedStrategy<String> {
    // Double quotes with Go escapes, or single quotes, or a raw string when possible.
    let double = go_quote(value);
    let single = format!(
        "'{}'",
        double[1..double.len() - 1].replace("\\\"", "\"").replace('\'', "\\'")
    );
    let mut choices = vec![double, single];
    if !value.contains('`') {
        choices.push(format!("`{value}`"));
    }
    prop::sample::select(choices).boxed()
}

fn matcher() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["job", "instance", "le", "\"a.b\"", "'ü'", "__meta_x", "on", "by"]);
    let eq = (name.clone(), prop::sample::select(vec!["=", "!="]), label_value())
        .prop_flat_map(|(n, op, v)| quoted(&v).prop_map(move |q| format!("{n}{op}{q}")));
    let re = (
        name,
        prop::sample::select(vec!["=~", "!~"]),
        prop::sample::select(vec!["a.*", "x|y", ".+", "[0-9]+", "(?i)abc"]),
    )
        .prop_map(|(n, op, v)| format!("{n}{op}\"{v}\""));
    prop_oneof![eq, re]
}

fn selector() -> impl Strategy<Value = String> {
    let named = (metric_name(), prop::collection::vec(matcher(), 0..3)).prop_map(|(n, ms)| {
        if ms.is_empty() {
            n
        } else {
            format!("{n}{{{}}}", ms.join(", "))
        }
    });
    let unnamed = (
        label_value().prop_filter("non-empty", |v| !v.is_empty()),
        prop::collection::vec(matcher(), 0..2),
    )
        .prop_map(|(metric, ms)| {
            let mut all = vec![go_quote(&metric)];
            all.extend(ms);
            format!("{{{}}}", all.join(","))
        });
    let by_matcher = Just(r#"{job=~"a.+"}"#.to_string());
    prop_oneof![4 => named, 1 => unnamed, 1 => by_matcher]
}

fn positive_duration() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "5m", "1h30m", "1m30s", "90s", "1ms", "2d", "1w", "1y", "300", "1.5", "10m1ms"
        ])
        .prop_map(str::to_string),
        Just("step()".to_string()),
        Just("range() + 1m".to_string()),
        Just("2m * (10 + 5)".to_string()),
        Just("max_of(step(), 5s)".to_string()),
        Just("-(step()) + 1h".to_string()),
    ]
}

fn offset() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "5m",
            "-7m",
            "1h30m",
            "3600",
            "-1.5",
            "step()",
            "-step()",
            "(1m + 2m)",
            "-(5 * 2)",
            "min_of(step(), 1s)",
            "(5m) * 2"
        ])
        .prop_map(|s| format!(" offset {s}")),
    ]
}

fn at() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        " @ 100",
        " @ 1.5",
        " @ -5",
        " @ start()",
        " @ end()",
        " @ 1603775091",
    ])
    .prop_map(str::to_string)
}

fn with_modifiers(base: String, allow_mode: bool) -> BoxedStrategy<String> {
    let mode = if allow_mode {
        prop::sample::select(vec!["", "", " anchored", " smoothed"]).boxed()
    } else {
        Just("").boxed()
    };
    (prop::option::of(at()), prop::option::of(offset()), mode, any::<bool>())
        .prop_map(move |(at, off, mode, at_first)| {
            let (at, off) = (at.unwrap_or_default(), off.unwrap_or_default());
            if at_first {
                format!("{base}{at}{mode}{off}")
            } else {
                format!("{base}{off}{mode}{at}")
            }
        })
        .boxed()
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "1.5", "0.25", ".5", "5.", "1e3", "2.5e-3", "0x1f", "1_000", "Inf", "nan", "1h", "5m", "90s", "1e21",
            "1e-7"
        ])
        .prop_map(str::to_string),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite() && *f >= 0.0)
            .prop_map(|f| format!("{f:e}")),
    ]
}

fn scalar_atom() -> BoxedStrategy<String> {
    prop_oneof![
        3 => number(),
        1 => Just("time()".to_string()),
        1 => Just("pi()".to_string()),
        1 => selector().prop_map(|s| format!("scalar({s})")),
    ]
    .boxed()
}

fn matrix(vector: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let range = (selector(), positive_duration()).prop_flat_map(|(s, d)| with_modifiers(format!("{s}[{d}]"), true));
    let subquery = (vector, positive_duration(), prop::option::of(positive_duration()))
        .prop_flat_map(|(v, r, step)| with_modifiers(format!("({v})[{r}:{}]", step.unwrap_or_default()), false));
    prop_oneof![3 => range, 1 => subquery].boxed()
}

const ARITH: &[&str] = &["+", "-", "*", "/", "%", "^", "atan2"];
const COMPARE: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
const SET: &[&str] = &["and", "or", "unless"];

/// A binary operator between two instant vectors, with random valid modifiers.
fn vector_op() -> impl Strategy<Value = String> {
    let all: Vec<&str> = ARITH
        .iter()
        .chain(COMPARE)
        .chain(SET)
        .chain(&["</", ">/"])
        .copied()
        .collect();
    (
        prop::sample::select(all),
        any::<bool>(),
        prop::option::of((
            any::<bool>(),
            prop::sample::select(vec!["", "job", "job, instance", "\"a.b\""]),
        )),
        prop::option::of((any::<bool>(), prop::sample::select(vec!["", "le", "x, \"ü\""]))),
        prop::option::of(prop::sample::select(vec![
            " fill(0)",
            " fill_left(-1)",
            " fill_right(NaN)",
            " fill_left(1) fill_right(2)",
            " fill(1e6)",
        ])),
    )
        .prop_map(|(op, bool_mod, matching, group, fill)| {
            let set = SET.contains(&op);
            let mut s = op.to_string();
            if bool_mod && COMPARE.contains(&op) {
                s.push_str(" bool");
            }
            if let Some((on, labels)) = matching {
                write!(s, " {}({labels})", if on { "on" } else { "ignoring" }).unwrap();
                if let Some((left, include)) = group
                    && !set
                {
                    write!(s, " group_{}({include})", if left { "left" } else { "right" }).unwrap();
                }
            }
            if let Some(fill) = fill
                && !set
            {
                s.push_str(fill);
            }
            s
        })
}

/// An operand for an unparenthesised chain: composite expressions get parentheses, so that
/// precedence can only regroup the chain itself (and never, say, put a scalar next to `and`).
fn operand(v: String) -> String {
    if v.contains(' ') { format!("({v})") } else { v }
}

/// Instant-vector expressions, built as text. Composite operands of postfix modifiers are
/// parenthesised; chains of binary operators are not, so that precedence is exercised.
fn vector() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        4 => selector().prop_flat_map(|s| with_modifiers(s, true)),
        1 => Just("vector(1)".to_string()),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let inner = inner.boxed();
        prop_oneof![
            // Aggregations, with the grouping before or after the arguments.
            (
                prop::sample::select(vec![
                    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "SUM"
                ]),
                prop::option::of((
                    any::<bool>(),
                    prop::sample::select(vec!["", "job", "job, le", "\"a.b\", on", "\"without\", NaN_x"])
                )),
                any::<bool>(),
                inner.clone(),
            )
                .prop_map(|(op, grouping, after, v)| match grouping {
                    Some((without, labels)) => {
                        let clause = format!("{} ({labels})", if without { "without" } else { "by" });
                        if after {
                            format!("{op}({v}) {clause}")
                        } else {
                            format!("{op} {clause} ({v})")
                        }
                    }
                    None => format!("{op}({v})"),
                }),
            (
                prop::sample::select(vec!["topk", "bottomk", "quantile", "limitk", "limit_ratio"]),
                scalar_atom(),
                inner.clone()
            )
                .prop_map(|(op, p, v)| format!("{op}({p}, {v})")),
            (label_value(), inner.clone())
                .prop_flat_map(|(l, v)| quoted(&l).prop_map(move |q| format!("count_values({q}, {v})"))),
            // Functions of each argument shape.
            (
                prop::sample::select(vec![
                    "abs",
                    "ceil",
                    "exp",
                    "sort_desc",
                    "timestamp",
                    "histogram_sum",
                    "-",
                    "+"
                ]),
                inner.clone()
            )
                // A one-character "function" is a sign applied to a parenthesised operand.
                .prop_map(|(f, v)| format!("{f}({v})")),
            (
                prop::sample::select(vec![
                    "rate",
                    "increase",
                    "delta",
                    "max_over_time",
                    "absent_over_time",
                    "last_over_time"
                ]),
                matrix(inner.clone())
            )
                .prop_map(|(f, m)| format!("{f}({m})")),
            (matrix(inner.clone()), scalar_atom()).prop_map(|(m, s)| format!("predict_linear({m}, {s})")),
            (scalar_atom(), inner.clone()).prop_map(|(s, v)| format!("histogram_quantile({s}, {v})")),
            (inner.clone(), scalar_atom(), scalar_atom()).prop_map(|(v, a, b)| format!("clamp({v}, {a}, {b})")),
            inner
                .clone()
                .prop_map(|v| format!("label_replace({v}, \"dst\", \"$1\", \"src\", \"(.*)\")")),
            inner.clone().prop_map(|v| format!("round({v})")),
            Just("hour()".to_string()),
            // Unparenthesised chains and vector/scalar mixes.
            (
                inner.clone(),
                prop::collection::vec((vector_op(), any::<bool>(), inner.clone()), 1..4)
            )
                .prop_map(|(first, rest)| {
                    let mut s = operand(first);
                    for (op, neg, v) in rest {
                        write!(s, " {op} {}{}", if neg { "-" } else { "" }, operand(v)).unwrap();
                    }
                    s
                }),
            (
                inner.clone(),
                prop::sample::select(ARITH.iter().chain(COMPARE).copied().collect::<Vec<_>>()),
                scalar_atom(),
                any::<bool>()
            )
                .prop_map(|(v, op, s, flip)| {
                    let v = operand(v);
                    if flip {
                        format!("{s} {op} {v}")
                    } else {
                        format!("{v} {op} {s}")
                    }
                }),
            inner.clone().prop_map(|v| format!("({v})")),
            inner.clone().prop_map(|v| format!("-{v}")),
            (inner, positive_duration()).prop_map(|(v, d)| format!("max_over_time(({v})[{d}:])")),
        ]
    })
    .boxed()
}

fn scalar() -> BoxedStrategy<String> {
    scalar_atom()
        .prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(ARITH.to_vec()),
                    any::<bool>(),
                    inner.clone()
                )
                    .prop_map(|(a, op, neg, b)| format!("{a} {op} {}{b}", if neg { "-" } else { "" })),
                (inner.clone(), prop::sample::select(COMPARE.to_vec()), inner.clone())
                    .prop_map(|(a, op, b)| format!("{a} {op} bool {b}")),
                inner.clone().prop_map(|s| format!("({s})")),
                inner.clone().prop_map(|s| format!("-{s}")),
                inner.prop_map(|s| format!("+({s})")),
            ]
        })
        .boxed()
}

fn any_expression() -> BoxedStrategy<String> {
    prop_oneof![
        6 => vector(),
        2 => scalar(),
        1 => matrix(vector()),
        1 => label_value().prop_flat_map(|v| quoted(&v)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn print_parse_round_trip(input in any_expression()) {
        let first = parse_expr(&input)
            .map_err(|e| TestCaseError::fail(format!("generated {input:?} does not parse: {e}")))?;
        let printed = first.to_string();
        let second = parse_expr(&printed).map_err(|e| {
            TestCaseError::fail(format!("printed {printed:?} (from {input:?}) does not parse: {e}"))
        })?;
        prop_assert_eq!(&second, &first, "{:?} printed as {:?}", input, printed);
        prop_assert_eq!(second.to_string(), printed);
    }

    #[test]
    fn arbitrary_input_never_panics(input in "[ -~\\n]{0,40}") {
        let _ = parse_expr(&input);
        let _ = parse_metric_selector(&input);
    }

    #[test]
    fn promql_flavoured_input_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "foo", "sum", "by", "(", ")", "[", "]", "{", "}", ",", ":", "5m", "1", "-", "+", "*", "^",
            "offset", "@", "start()", "bool", "on", "group_left", "\"a\"", "=", "=~", "step()", "fill",
            "anchored", "rate", "#", "\n", " ", "'", "`", "0x", "1e", ".", "min_of", "and",
        ]), 0..24)
    ) {
        let input: String = parts.concat();
        if let Ok(e) = parse_expr(&input) {
            // Whatever parses must print to something that parses to the same tree.
            let printed = e.to_string();
            let again = parse_expr(&printed).map_err(|err| {
                TestCaseError::fail(format!("{input:?} printed as {printed:?} which fails: {err}"))
            })?;
            prop_assert_eq!(again, e);
        }
    }
}
