//! Constructs and builtins, in the manner of Go's exec_test.go: template in, output out.

use watchfire_template::{FuncMap, Function, Limits, MissingKey, Param, Template, Value};

use crate::support::{check_outputs, data, run, run_with};

#[test]
fn text_comments_and_trimming() {
    check_outputs(&[
        ("", ""),
        ("plain text", "plain text"),
        ("a{{/* a comment */}}b", "ab"),
        ("a {{- /* trimmed */ -}} b", "ab"),
        ("a\n{{/* multi\nline */}}\nb", "a\n\nb"),
        ("{{23 -}} < {{- 45}}", "23<45"),
        ("{{23 -}}\n\t  <\n {{- 45}}", "23<45"),
        ("x \n\t{{- .I -}} \n y", "x17y"),
        ("x {{- .I}} y", "x17 y"),
        ("x {{.I -}} y", "x 17y"),
        // A minus without a space is a number, not a trim marker.
        ("x {{-3}} y", "x -3 y"),
        ("{{- .I}}", "17"),
        ("[{{- \"  \" -}}]", "[  ]"),
        ("{{if true -}}\n  yes\n{{- end}}", "yes"),
    ]);
}

#[test]
fn literals_and_default_formatting() {
    check_outputs(&[
        ("{{1}}", "1"),
        ("{{-5}}", "-5"),
        ("{{1.5}}", "1.5"),
        ("{{1.0}}", "1"),
        ("{{1e3}}", "1000"),
        ("{{1e6}}", "1e+06"),
        ("{{0.1}}", "0.1"),
        ("{{0.00001}}", "1e-05"),
        ("{{0x10}}", "16"),
        ("{{0o17}}", "15"),
        ("{{017}}", "15"),
        ("{{0b101}}", "5"),
        ("{{1_000}}", "1000"),
        ("{{'a'}}", "97"),
        ("{{'\\n'}}", "10"),
        ("{{\"a\\tb\\u00e9\"}}", "a\tbé"),
        ("{{`raw\\n`}}", "raw\\n"),
        ("{{true}} {{false}}", "true false"),
        ("{{.I}} {{.Neg}} {{.F}} {{.FZero}} {{.Million}}", "17 -3 1.5 0 1e+06"),
        ("{{.Str}}|{{.EmptyStr}}|{{.True}}", "foo||true"),
        ("{{.SI}} {{.SS}} {{.SIEmpty}}", "[3 4 5] [a b] []"),
        ("{{.Mixed}}", "[1 x 2.5 <nil>]"),
        ("{{.MSI}}", "map[one:1 three:3 two:2]"),
        ("{{.MSIEmpty}}", "map[]"),
        ("{{.Nested}}", "map[Inner:map[Leaf:deep]]"),
        ("{{.Empty}}", "<no value>"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Missing.Deeper}}", "<no value>"),
        ("{{.Obj}}", "Thing(x)"),
        ("{{.Items}}", "[10 11 12]"),
    ]);
}

#[test]
fn fields_maps_and_methods() {
    check_outputs(&[
        ("{{.Nested.Inner.Leaf}}", "deep"),
        ("{{.MSI.two}}", "2"),
        ("{{.MSS.k}}", "v"),
        ("{{.Obj.X}}", "x"),
        ("{{.Obj.Labels.b}}", "2"),
        ("{{.Obj.Method0}}", "M0"),
        ("{{.Obj.Method1 3}}", "Method1: 3"),
        ("{{.Obj.Method2 3 \"x\"}}", "Method2: 3 x"),
        ("{{3 | .Obj.Method1}}", "Method1: 3"),
        ("{{\"x\" | .Obj.Method2 4}}", "Method2: 4 x"),
        ("{{.Obj.Join \"-\" \"a\" \"b\" \"c\"}}", "a-b-c"),
        ("{{.Obj.Self.X}}", "inner"),
        ("{{.Obj.Self.Self.Method0}}", "M0"),
        ("{{(.Obj.Self).X}}", "inner"),
        ("{{with .Obj}}{{.X}}{{end}}", "x"),
        ("{{$o := .Obj}}{{$o.Self.X}}", "inner"),
        ("{{.Items.Evens}}", "[10 12]"),
        ("{{len .Items.Evens}}", "2"),
        ("{{(index .SMSI 0).two}}", "22"),
        ("{{index .SMSI 0 \"two\"}}", "22"),
    ]);
}

#[test]
fn variables() {
    check_outputs(&[
        ("{{$x := 1}}{{$x}}", "1"),
        ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
        ("{{$x := .Str}}{{$x}}{{$x := 3}}{{$x}}", "foo3"),
        ("{{with .I}}{{$.Str}}{{end}}", "foo"),
        ("{{$.Obj.X}}", "x"),
        ("{{with $x := .I}}{{$x}}{{end}}", "17"),
        ("{{if $x := .I}}{{$x}}{{else}}{{$x}}no{{end}}", "17"),
        ("{{if $x := 0}}{{$x}}{{else}}{{$x}}no{{end}}", "0no"),
        // A variable declared in a block is gone after its end.
        ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
        // Assignment reaches the outer variable.
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{$x := 0}}{{range .SI}}{{$x = .}}{{end}}{{$x}}", "5"),
        // Declared variables print nothing.
        ("{{$x := 99}}", ""),
    ]);
    // `$` is the data, and templates start with their own `$`.
    let out = run_with(
        Template::new("t"),
        "{{define \"x\"}}{{$}}{{end}}{{template \"x\" 5}}",
        &Value::Int(1),
    );
    assert_eq!(out.unwrap(), "5");
    assert_eq!(run("{{$}}").unwrap().len(), data().to_string().len());
}

#[test]
fn if_else_and_with() {
    check_outputs(&[
        ("{{if true}}T{{end}}", "T"),
        ("{{if false}}T{{else}}F{{end}}", "F"),
        ("{{if 0}}a{{else if 1}}b{{else}}c{{end}}", "b"),
        ("{{if 0}}a{{else if 0}}b{{else if \"\"}}c{{else}}d{{end}}", "d"),
        ("{{if .SIEmpty}}full{{else}}empty{{end}}", "empty"),
        ("{{if .MSIEmpty}}full{{else}}empty{{end}}", "empty"),
        ("{{if .Empty}}full{{else}}nil{{end}}", "nil"),
        ("{{if .FZero}}full{{else}}zero{{end}}", "zero"),
        ("{{if .Obj}}obj{{end}}", "obj"),
        ("{{if .ItemsEmpty}}full{{else}}empty{{end}}", "empty"),
        ("{{if and .True .I}}both{{end}}", "both"),
        ("{{with .Str}}{{.}}{{end}}", "foo"),
        ("{{with .EmptyStr}}{{.}}{{else}}none{{end}}", "none"),
        ("{{with 0}}a{{else with 2}}{{.}}{{end}}", "2"),
        ("{{with 0}}a{{else with 0}}b{{else}}c{{end}}", "c"),
    ]);
}

#[test]
fn range() {
    check_outputs(&[
        ("{{range .SI}}-{{.}}-{{end}}", "-3--4--5-"),
        ("{{range $i, $x := .SI}}<{{$i}}={{$x}}>{{end}}", "<0=3><1=4><2=5>"),
        ("{{range $x := .SI}}{{$x}}{{end}}", "345"),
        ("{{range .MSI}}{{.}}{{end}}", "132"),
        ("{{range $k, $v := .MSI}}{{$k}}={{$v}} {{end}}", "one=1 three=3 two=2 "),
        ("{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
        ("{{range .MSIEmpty}}x{{else}}EMPTY{{end}}", "EMPTY"),
        ("{{range .Empty}}x{{else}}NIL{{end}}", "NIL"),
        ("{{range .Missing}}x{{end}}", ""),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ("{{range $i := 3}}{{$i}}{{end}}", "012"),
        ("{{range 0}}x{{else}}none{{end}}", "none"),
        ("{{range .Items}}{{.}},{{end}}", "10,11,12,"),
        ("{{range $i, $e := .Items.Evens}}{{$i}}:{{$e}} {{end}}", "0:10 1:12 "),
        ("{{range .ItemsEmpty}}x{{else}}empty{{end}}", "empty"),
        ("{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}", "3"),
        ("{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", "35"),
        (
            "{{range .SI}}{{range $.SS}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}{{.}}{{end}}",
            "a3a4a5",
        ),
        (
            "{{range .SI}}{{with .}}{{if gt . 3}}{{break}}{{end}}{{end}}{{.}}{{end}}",
            "3",
        ),
        ("{{$i := 0}}{{$e := 0}}{{range $i, $e = .SS}}{{end}}{{$i}}{{$e}}", "1b"),
        ("{{range .SI}}{{$.Str}}{{end}}", "foofoofoo"),
    ]);
}

#[test]
fn templates_and_blocks() {
    check_outputs(&[
        ("{{define \"x\"}}[{{.}}]{{end}}{{template \"x\" .I}}", "[17]"),
        ("{{define \"x\"}}{{.}}{{end}}{{template \"x\"}}", "<no value>"),
        ("{{define \"x\"}}{{.}}{{end}}{{template \"x\" (len .SI)}}", "3"),
        (
            "{{define \"x\"}}a{{template \"y\" .}}{{end}}{{define \"y\"}}b{{.}}{{end}}{{template \"x\" 1}}",
            "ab1",
        ),
        ("{{block \"b\" .I}}B{{.}}{{end}}", "B17"),
        ("{{define `raw`}}r{{end}}{{template `raw`}}", "r"),
        // Variables from the template's pipeline persist in the caller.
        ("{{define \"x\"}}{{end}}{{template \"x\" $y := 4}}{{$y}}", "4"),
        // Recursion to a fixed depth.
        (
            "{{define \"down\"}}{{.}}{{if gt . 0}}{{template \"down\" (len (slice \"abc\" 0 (len (slice \"abc\" .))))}}{{end}}{{end}}{{template \"down\" 3}}",
            "30",
        ),
    ]);
    let mut t = Template::new("root").parse("{{block \"b\" .}}default{{end}}").unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "default");
    t.add("override", "{{define \"b\"}}custom{{end}}").unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "custom");
    // An empty redefinition does not replace a real one.
    t.add("empty", "{{define \"b\"}}  {{end}}").unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "custom");
    assert_eq!(t.execute_template("b", &Value::Nil).unwrap(), "custom");
    assert_eq!(t.template_names(), vec!["b", "empty", "override", "root"]);
    assert_eq!(
        t.execute_template("nope", &Value::Nil).unwrap_err().to_string(),
        "template: no template \"nope\" associated with template \"root\""
    );
}

#[test]
fn pipelines_and_parens() {
    check_outputs(&[
        ("{{.Str | printf \"%s-%s\" \"a\"}}", "a-foo"),
        ("{{1 | printf \"%d%d\" 2}}", "21"),
        ("{{.SI | len | printf \"%03d\"}}", "003"),
        ("{{printf \"%d\" (len .SI)}}", "3"),
        ("{{(len .SI)}}", "3"),
        ("{{((1))}}", "1"),
        ("{{printf \"%s\" (printf \"%d\" (len (slice .SI 1)))}}", "2"),
        ("{{\"x\" | printf \"%s%s\" (\"y\" | printf \"[%s]\")}}", "[y]x"),
    ]);
}

#[test]
fn logic_and_comparison() {
    check_outputs(&[
        ("{{and 1 0 2}}", "0"),
        ("{{and 1 2}}", "2"),
        ("{{and .True .Str}}", "foo"),
        ("{{or 0 \"\" 3}}", "3"),
        ("{{or 0 \"\"}}", ""),
        ("{{or .Empty .Str}}", "foo"),
        ("{{0 | or 1}}", "1"),
        ("{{0 | and 1}}", "0"),
        // Short-circuit: the failing index is never evaluated.
        ("{{or 1 (index .SI 10)}}", "1"),
        ("{{and 0 (index .SI 10)}}", "0"),
        (
            "{{not 0}} {{not 1}} {{not .EmptyStr}} {{not .Obj}}",
            "true false true false",
        ),
        ("{{eq 1 1}} {{eq 1 2}} {{eq 3 1 2 3}}", "true false true"),
        ("{{eq \"a\" \"a\"}} {{eq .Str \"foo\" \"bar\"}}", "true true"),
        ("{{eq 1.5 .F}} {{eq true .True}}", "true true"),
        ("{{eq .Empty \"x\"}} {{eq .Missing .Empty}}", "false true"),
        ("{{ne 1 2}} {{ne \"a\" \"a\"}}", "true false"),
        (
            "{{lt 1 2}} {{lt 2 1}} {{lt \"a\" \"b\"}} {{lt 1.5 2.5}}",
            "true false true true",
        ),
        ("{{le 2 2}} {{le 3 2}}", "true false"),
        ("{{gt 3 2}} {{gt \"a\" \"b\"}}", "true false"),
        ("{{ge 2 2}} {{ge 1.5 2.5}}", "true false"),
    ]);
}

#[test]
fn collections_and_calls() {
    check_outputs(&[
        ("{{len .SI}} {{len .MSI}} {{len \"héllo\"}} {{len .Items}}", "3 3 6 3"),
        ("{{index .SI 1}}", "4"),
        ("{{index .MSI \"two\"}} {{index .MSI \"nope\"}}", "2 0"),
        ("{{index .MSS \"nope\"}}|", "|"),
        ("{{index \"abc\" 1}}", "98"),
        ("{{index .SI}}", "[3 4 5]"),
        ("{{slice .SI 1}} {{slice .SI 1 2}} {{slice .SI}}", "[4 5] [4] [3 4 5]"),
        ("{{slice .SI 0 1 2}}", "[3]"),
        ("{{slice \"abcde\" 1 3}}", "bc"),
        ("{{call .Add 2 3}}", "5"),
        ("{{3 | call .Add 2}}", "5"),
        ("{{print 1 2 \"a\" 3 \"b\" \"c\"}}", "1 2a3bc"),
        ("{{print}}", ""),
        ("{{print .Empty}} {{print nil}}", "<nil> <nil>"),
        ("{{println 1 \"a\"}}", "1 a\n"),
        (
            "{{html \"<a href='x'>&\\\"</a>\"}}",
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;",
        ),
        ("{{html .Empty}}", "&lt;no value&gt;"),
        ("{{html 1 2}}", "1 2"),
        (
            "{{js \"it's <b> & a=b\\n\"}}",
            "it\\'s \\u003Cb\\u003E \\u0026 a\\u003Db\\u000A",
        ),
        ("{{urlquery \"a b&c=d/é\"}}", "a+b%26c%3Dd%2F%C3%A9"),
        ("{{\"a b\" | urlquery}}", "a+b"),
    ]);
}

#[test]
fn user_functions_and_options() {
    let mut funcs = FuncMap::new();
    funcs.insert(
        "double",
        Function::new(&[Param::Float], |a| match a[0] {
            Value::Float(f) => Ok(Value::Float(f * 2.0)),
            _ => Err("not a float".into()),
        }),
    );
    funcs.insert(
        "join",
        Function::variadic(&[Param::String], Param::String, |a| {
            let parts: Vec<&str> = a[1..].iter().filter_map(Value::as_str).collect();
            Ok(Value::from(parts.join(a[0].as_str().unwrap_or_default())))
        }),
    );
    // A user function replaces a builtin of the same name.
    funcs.insert("len", Function::new(&[Param::Any], |_| Ok(Value::from("mine"))));
    let t = || Template::new("t").funcs(funcs.clone());
    let out = |text: &str| run_with(t(), text, &data());
    // An int literal converts to a float parameter, as Go's constants do.
    assert_eq!(out("{{double 2}} {{double 1.25}}").unwrap(), "4 2.5");
    assert_eq!(out("{{join \",\" \"a\" \"b\"}}").unwrap(), "a,b");
    assert_eq!(out("{{len .SI}}").unwrap(), "mine");

    // missingkey.
    let d = Value::string_map([("a", "1")]);
    let t_mk = |mk| Template::new("t").missing_key(mk);
    assert_eq!(run_with(t_mk(MissingKey::Default), "{{.b}}", &d).unwrap(), "<no value>");
    assert_eq!(run_with(t_mk(MissingKey::Zero), "[{{.b}}]", &d).unwrap(), "[]");
    assert_eq!(
        run_with(t_mk(MissingKey::Error), "{{.b}}", &d).unwrap_err(),
        "template: t:1:2: executing \"t\" at <.b>: map has no entry for key \"b\""
    );
    let any_map = Value::map([("a", Value::Int(1))]);
    assert_eq!(
        run_with(t_mk(MissingKey::Zero), "{{.b}}", &any_map).unwrap(),
        "<no value>"
    );

    // Limits.
    let small = Limits {
        max_depth: 50,
        max_output_bytes: 64,
        max_steps: 1000,
    };
    let limited = || Template::new("t").limits(small);
    assert!(
        run_with(limited(), "{{range 100000}}{{end}}", &Value::Nil)
            .unwrap_err()
            .ends_with("exceeded maximum number of execution steps (1000)")
    );
    assert!(
        run_with(limited(), "{{range 100}}0123456789{{end}}", &Value::Nil)
            .unwrap_err()
            .ends_with("output exceeds the limit of 64 bytes")
    );
    assert!(
        run_with(
            limited(),
            "{{$x := \"ab\"}}{{range 10}}{{$x = printf \"%s%s\" $x $x}}{{end}}",
            &Value::Nil
        )
        .unwrap_err()
        .ends_with("result of printf exceeds the limit of 64 bytes")
    );
}

#[test]
fn recursion_is_bounded() {
    // Runs on a 2 MiB thread, the size of a test or tokio worker thread: the depth limit must
    // hold before the stack runs out, in debug builds too.
    for text in [
        "{{define \"r\"}}{{if true}}{{with .}}{{template \"r\" .}}{{end}}{{end}}{{end}}{{template \"r\" 1}}",
        "{{define \"r\"}}{{range $i := 1}}{{template \"r\" (or (and 1 (or 0 (and 1 .))))}}{{end}}{{end}}{{template \"r\" 1}}",
        "{{define \"r\"}}{{template \"r\" (printf \"%v\" (printf \"%v\" (printf \"%v\" .)))}}{{end}}{{template \"r\" 1}}",
    ] {
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let t = Template::new("t").parse(text).unwrap();
                t.execute(&Value::Nil).unwrap_err().to_string()
            })
            .unwrap();
        let err = handle.join().unwrap();
        assert!(err.ends_with("exceeded maximum template depth (500)"), "{err}");
    }

    let deep_parens = format!("{{{{{}1{}}}}}", "(".repeat(200), ")".repeat(200));
    let err = Template::new("t").parse(&deep_parens).unwrap_err().to_string();
    assert_eq!(err, "template: t:1: max expression depth exceeded");

    // Values built up in a loop cannot nest without bound.
    let mut funcs = FuncMap::new();
    funcs.insert(
        "wrap",
        Function::variadic(&[], Param::Any, |a| Ok(Value::list(a.iter().cloned()))),
    );
    let err = run_with(
        Template::new("t").funcs(funcs),
        "{{$x := 1}}{{range 1000}}{{$x = wrap $x}}{{end}}{{$x}}",
        &Value::Nil,
    )
    .unwrap_err();
    assert!(err.ends_with("result of wrap nests deeper than 100 levels"), "{err}");
}

#[test]
fn templates_and_values_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Value>();
    let t = std::sync::Arc::new(Template::new("t").parse("{{.}}").unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || t.execute(&Value::Int(i)).unwrap())
        })
        .collect();
    let outs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outs, ["0", "1", "2", "3"]);
}
