//! Prometheus' template functions, checked against the cases of Prometheus'
//! template/template_test.go, and alert-template expansion.

use std::sync::Arc;

use watchfire_model::Labels;
use watchfire_template::prometheus::{AlertData, Context, QuerySample, expand, expand_alert, functions};
use watchfire_template::{MissingKey, Template, Value};

fn ctx(result: Vec<QuerySample>) -> Context {
    Context {
        query: Some(Arc::new(move |_q: &str| Ok(result.clone()))),
        timestamp_ms: 1_353_755_652_000,
        external_url: "http://testhost:9090/path/prefix".into(),
    }
}

fn sample(pairs: &[(&str, &str)], value: f64) -> QuerySample {
    QuerySample {
        labels: Labels::from_pairs(pairs.iter().copied()),
        value,
    }
}

fn run(text: &str, input: Value, result: Vec<QuerySample>) -> Result<String, String> {
    expand("test", text, &input, &ctx(result)).map_err(|e| e.to_string())
}

fn floats(v: &[f64]) -> Value {
    Value::list(v.iter().map(|&f| Value::Float(f)))
}

fn ints(v: &[i64]) -> Value {
    Value::list(v.iter().map(|&i| Value::Int(i)))
}

fn strs(v: &[&str]) -> Value {
    Value::list(v.iter().map(|&s| Value::from(s)))
}

#[test]
fn upstream_expansion_cases() {
    let metric_a = || vec![sample(&[("__name__", "metric"), ("instance", "a")], 11.0)];
    let ok: Vec<(&str, Value, Vec<QuerySample>, &str)> = vec![
        ("plain text", Value::Nil, vec![], "plain text"),
        ("{{ 1 }}", Value::Nil, vec![], "1"),
        ("{{ \"<b>\" }}", Value::Nil, vec![], "<b>"),
        (
            "{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}",
            Value::Nil,
            vec![],
            "1 2",
        ),
        (
            "{{ query \"1.5\" | first | value }}",
            Value::Nil,
            vec![sample(&[], 1.5)],
            "1.5",
        ),
        (
            "{{ query \"metric{instance='a'}\" | first | value }}",
            Value::Nil,
            metric_a(),
            "11",
        ),
        (
            "{{ query \"metric{instance='a'}\" | first | label \"instance\" }}",
            Value::Nil,
            metric_a(),
            "a",
        ),
        (
            "{{ query \"metric{__value__='a'}\" | first | strvalue }}",
            Value::Nil,
            vec![sample(&[("__name__", "metric"), ("__value__", "a")], 11.0)],
            "a",
        ),
        (
            "{{ query \"metric{instance='a'}\" | first | label \"foo\" }}",
            Value::Nil,
            metric_a(),
            "",
        ),
        (
            "{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}",
            Value::Nil,
            metric_a(),
            "",
        ),
        (
            "{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}",
            Value::Nil,
            vec![
                sample(&[("__name__", "metric"), ("instance", "b")], 21.0),
                sample(&[("__name__", "metric"), ("instance", "a")], 11.0),
            ],
            "a:11: b:21: ",
        ),
        (
            "{{ \"foo.example.com\" | stripPort }}",
            Value::Nil,
            vec![],
            "foo.example.com",
        ),
        (
            "{{ \"foo.example.com:12345\" | stripPort }}",
            Value::Nil,
            vec![],
            "foo.example.com",
        ),
        ("{{ \"192.0.2.1\" | stripPort }}", Value::Nil, vec![], "192.0.2.1"),
        ("{{ \"192.0.2.1:12345\" | stripPort }}", Value::Nil, vec![], "192.0.2.1"),
        ("{{ \"2001:0DB8::1\" | stripPort }}", Value::Nil, vec![], "2001:0DB8::1"),
        (
            "{{ \"[2001:0DB8::1]:12345\" | stripPort }}",
            Value::Nil,
            vec![],
            "2001:0DB8::1",
        ),
        (
            "{{ \"[2001:0DB8::1]::12345\" | stripPort }}",
            Value::Nil,
            vec![],
            "[2001:0DB8::1]::12345",
        ),
        ("{{ .Foo }}", Value::Nil, vec![], "<no value>"),
        ("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", Value::Nil, vec![], "xa"),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            floats(&[0.0, 1.0, 1234567.0, 0.12]),
            vec![],
            "0:1:1.235M:120m:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            strs(&["0.0", "1.0", "1234567.0", ".12"]),
            vec![],
            "0:1:1.235M:120m:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            vec![],
            "0:-1:1:1.235M:9.223E:",
        ),
        // Prometheus' uint64 cases, as floats (Watchfire has no unsigned ints).
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            floats(&[u64::MAX as f64]),
            vec![],
            "18.45E:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            floats(&[0.0, 1.0, 1048576.0, 0.12]),
            vec![],
            "0:1:1Mi:0.12:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            strs(&["0.0", "1.0", "1048576.0", ".12"]),
            vec![],
            "0:1:1Mi:0.12:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            vec![],
            "0:-1:1:1.177Mi:8Ei:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            floats(&[u64::MAX as f64]),
            vec![],
            "16Ei:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600.0,
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                899.99,
            ]),
            vec![],
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            strs(&["0", "1", "60", "3600", "86400"]),
            vec![],
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]),
            vec![],
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            strs(&[".1", ".0001", ".12345", "60.1", "60.5", "1.2345", "12.345"]),
            vec![],
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567]),
            vec![],
            "0s:-1s:1s:14d 6h 56m 7s:",
        ),
        ("{{ humanizeDuration 3661 }}", Value::Nil, vec![], "1h 1m 1s"),
        (
            "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
            floats(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]),
            vec![],
            "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
            strs(&["+Inf", "-Inf", "NaN"]),
            vec![],
            "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
        ),
        (
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
            Value::Nil,
            vec![],
            "-22.22%:0%:12.35%:123.5%",
        ),
        ("{{ 0.1234 | humanizePercentage }}", Value::Nil, vec![], "12.34%"),
        (
            "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            vec![],
            "0%:-100%:100%:1.235e+08%:9.223e+20%:",
        ),
        (
            "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
            floats(&[u64::MAX as f64]),
            vec![],
            "1.845e+21%:",
        ),
        (
            "{{ \"-0.22222\" | humanizePercentage }}:{{ \"0.0\" | humanizePercentage }}:{{ \"0.1234567\" | humanizePercentage }}:{{ \"1.23456\" | humanizePercentage }}",
            Value::Nil,
            vec![],
            "-22.22%:0%:12.35%:123.5%",
        ),
        (
            "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, 9223372036]),
            vec![],
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
        ),
        (
            "{{ 1435065584.128 | humanizeTimestamp }}",
            Value::Nil,
            vec![],
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
        (
            "{{ \"1435065584.128\" | humanizeTimestamp }}",
            Value::Nil,
            vec![],
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
        (
            "{{ (1435065584.128 | toTime).Format \"2006\" }}",
            Value::Nil,
            vec![],
            "2015",
        ),
        (
            "{{ (\"1435065584.128\" | toTime).Format \"2006\" }}",
            Value::Nil,
            vec![],
            "2015",
        ),
        ("{{ (1800 | toDuration).String }}", Value::Nil, vec![], "30m0s"),
        ("{{ (\"1800\" | toDuration).String }}", Value::Nil, vec![], "30m0s"),
        (
            "{{ 1800 | toDuration }} {{ printf \"%d\" (1.5 | toDuration) }}",
            Value::Nil,
            vec![],
            "30m0s 1500000000",
        ),
        ("{{ now }}", Value::Nil, vec![], "1.353755652e+09"),
        (
            "{{ (now | toTime).Format \"Mon Jan 2 15:04:05 2006\" }}",
            Value::Nil,
            vec![],
            "Sat Nov 24 11:14:12 2012",
        ),
        (
            "{{ (\"-30m\" | parseDuration | toDuration | (now | toTime).Add).UnixMilli }}",
            Value::Nil,
            vec![],
            "1353753852000",
        ),
        ("{{ \"aa bb CC\" | title }}", Value::Nil, vec![], "Aa Bb CC"),
        ("{{ \"aa bb CC\" | toUpper }}", Value::Nil, vec![], "AA BB CC"),
        ("{{ \"aA bB CC\" | toLower }}", Value::Nil, vec![], "aa bb cc"),
        (
            "{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}",
            Value::Nil,
            vec![],
            "true false",
        ),
        (
            "{{ graphLink \"up\" }}",
            Value::Nil,
            vec![],
            "/graph?g0.expr=up&g0.tab=0",
        ),
        (
            "{{ tableLink \"up\" }}",
            Value::Nil,
            vec![],
            "/graph?g0.expr=up&g0.tab=1",
        ),
        (
            "{{ tableLink \"rate(x[5m]) > 1\" }}",
            Value::Nil,
            vec![],
            "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1",
        ),
        ("{{ pathPrefix }}", Value::Nil, vec![], "/path/prefix"),
        (
            "{{ externalURL }}",
            Value::Nil,
            vec![],
            "http://testhost:9090/path/prefix",
        ),
        (
            "{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}",
            Value::Nil,
            vec![],
            "3720.01",
        ),
        (
            "{{ printf \"%0.2f\" (parseDuration \"-1h2m10ms\") }}",
            Value::Nil,
            vec![],
            "-3720.01",
        ),
        ("{{ \"foo.example.com\" | stripDomain }}", Value::Nil, vec![], "foo"),
        (
            "{{ \"foo.example.com:12345\" | stripDomain }}",
            Value::Nil,
            vec![],
            "foo:12345",
        ),
        ("{{ \"192.0.2.1\" | stripDomain }}", Value::Nil, vec![], "192.0.2.1"),
        (
            "{{ \"192.0.2.1:12345\" | stripDomain }}",
            Value::Nil,
            vec![],
            "192.0.2.1:12345",
        ),
        (
            "{{ \"2001:0DB8::1\" | stripDomain }}",
            Value::Nil,
            vec![],
            "2001:0DB8::1",
        ),
        (
            "{{ \"[2001:0DB8::1]:12345\" | stripDomain }}",
            Value::Nil,
            vec![],
            "[2001:0DB8::1]:12345",
        ),
        (
            "{{ \"[2001:0DB8::1]::12345\" | stripDomain }}",
            Value::Nil,
            vec![],
            "[2001:0DB8::1]::12345",
        ),
        ("{{ \"a b&c\" | urlQueryEscape }}", Value::Nil, vec![], "a+b%26c"),
        ("{{ \"<b>\" | safeHtml }}", Value::Nil, vec![], "<b>"),
        (
            "{{ humanize 1234567 }} {{ humanize 0.000123 }} {{ humanize1024 1048576 }}",
            Value::Nil,
            vec![],
            "1.235M 123u 1Mi",
        ),
        (
            "{{ len (query \"x\") }} {{ range $i, $s := query \"x\" }}{{ $i }}={{ $s.Value }}{{ end }}",
            Value::Nil,
            metric_a(),
            "1 0=11",
        ),
    ];
    let mut failures = Vec::new();
    for (text, input, result, want) in ok {
        match run(text, input, result) {
            Ok(got) if got == want => {}
            other => failures.push(format!("{text:?}: want {want:?}, got {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn upstream_error_cases() {
    let err: Vec<(&str, Value, &str)> = vec![
        (
            "{{ \u{a0}}}",
            Value::Nil,
            "error parsing template test: template: test:1: unrecognized character in action: U+00A0",
        ),
        (
            "{{",
            Value::Nil,
            "error parsing template test: template: test:1: unclosed action",
        ),
        (
            "{{ query \"missing\" | first }}",
            Value::Nil,
            "error executing template test: template: test:1:21: executing \"test\" at <first>: error calling first: first() called on vector with no elements",
        ),
        (
            "{{ (query \"missing\").banana }}",
            Value::Nil,
            "error executing template test: template: test:1:10: executing \"test\" at <\"missing\">: can't evaluate field banana in type template.queryResult",
        ),
        (
            "{{ humanize \"one\" }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax",
        ),
        (
            "{{ humanize1024 \"one\" }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <humanize1024 \"one\">: error calling humanize1024: strconv.ParseFloat: parsing \"one\": invalid syntax",
        ),
        (
            "{{ humanizeDuration \"one\" }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <humanizeDuration \"one\">: error calling humanizeDuration: strconv.ParseFloat: parsing \"one\": invalid syntax",
        ),
        (
            "{{ \"one\" | humanizePercentage }}",
            Value::Nil,
            "error executing template test: template: test:1:11: executing \"test\" at <humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing \"one\": invalid syntax",
        ),
        (
            "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
            ints(&[i64::MIN, i64::MAX]),
            "error executing template test: template: test:1:16: executing \"test\" at <humanizeTimestamp .>: error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64",
        ),
        (
            "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
            floats(&[u64::MAX as f64]),
            "error executing template test: template: test:1:16: executing \"test\" at <humanizeTimestamp .>: error calling humanizeTimestamp: 1.8446744073709552e+19 cannot be represented as a nanoseconds timestamp since it overflows int64",
        ),
        (
            "{{ humanize true }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <humanize true>: error calling humanize: can't convert bool to float",
        ),
        (
            "{{ parseDuration \"1x\" }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <parseDuration \"1x\">: error calling parseDuration: not a valid duration string: \"1x\"",
        ),
        (
            "{{ label \"a\" \"b\" }}",
            Value::Nil,
            "error executing template test: template: test:1:13: executing \"test\" at <\"b\">: can't handle \"b\" for arg of type *template.sample",
        ),
        (
            "{{ \"x\" | first }}",
            Value::Nil,
            "error executing template test: template: test:1:9: executing \"test\" at <first>: wrong type for value; expected template.queryResult; got string",
        ),
        (
            "{{ match \"(\" \"a\" }}",
            Value::Nil,
            "error executing template test: template: test:1:3: executing \"test\" at <match \"(\" \"a\">: error calling match: error parsing regexp: unclosed group: `(`",
        ),
        (
            "{{ tmpl \"a\" . }}",
            Value::Nil,
            "error parsing template test: template: test:1: function \"tmpl\" not defined",
        ),
    ];
    let mut failures = Vec::new();
    for (text, input, want) in err {
        match run(text, input, vec![]) {
            Err(got) if got == want => {}
            other => failures.push(format!("{text:?}:\n  want Err({want:?})\n  got  {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // missingkey=error, which Prometheus accepts as an option.
    let t = Template::new("test")
        .funcs(functions(&ctx(vec![])))
        .missing_key(MissingKey::Error)
        .parse("{{ .Foo }}")
        .unwrap();
    assert_eq!(
        t.execute(&Value::Nil).unwrap_err().to_string(),
        "template: test:1:3: executing \"test\" at <.Foo>: nil data; no entry for key \"Foo\""
    );
}

#[test]
fn tmpl_renders_another_template() {
    let mut funcs = functions(&ctx(vec![]));
    funcs.insert("tmpl", watchfire_template::prometheus::tmpl_function());
    let t = Template::new("test")
        .funcs(funcs)
        .parse("{{ define \"a\" }}x{{ . }}{{ end }}{{ $name := \"a\"}}{{ tmpl $name 1 }}")
        .unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "x1");
}

#[test]
fn alert_templates_get_prometheus_variables() {
    let labels = Labels::from_pairs([("alertname", "HighLatency"), ("instance", "a:9100"), ("job", "api")]);
    let external = Labels::from_pairs([("cluster", "eu1")]);
    let data = AlertData::new(&labels, &external, "http://prom.example:9090", 0.8123);
    let c = ctx(vec![]);
    let out = expand_alert(
        "HighLatency",
        "{{ $labels.instance | stripPort }} in {{ $externalLabels.cluster }} is at {{ $value | humanizePercentage }} (see {{ $externalURL }}){{ $labels.missing }}",
        &data,
        &c,
    )
    .unwrap();
    assert_eq!(out, "a in eu1 is at 81.23% (see http://prom.example:9090)");
    assert_eq!(
        expand_alert("R", "{{ .Value }} {{ $value }}", &data, &c).unwrap(),
        "0.8123 0.8123"
    );

    // Errors name the rule's template, and columns count the prepended definitions.
    let err = expand_alert("HighLatency", "{{ .Nope }}", &data, &c)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "error executing template __alert_HighLatency: template: __alert_HighLatency:1:115: executing \"__alert_HighLatency\" at <.Nope>: can't evaluate field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"
    );
}
