//! Parse and execution errors, with Go's exact messages, lines and columns.

use crate::support::{check_errors, run};

#[test]
fn parse_errors() {
    check_errors(&[
        ("{{", "template: t:1: unclosed action"),
        ("line1\n{{ .I\n\n", "template: t:4: unclosed action started at t:2"),
        ("{{if}}", "template: t:1: missing value for if"),
        ("{{end}}", "template: t:1: unexpected {{end}}"),
        ("{{else}}", "template: t:1: unexpected {{else}}"),
        ("{{range .SI}}", "template: t:1: unexpected EOF"),
        ("{{define \"a\"}}", "template: t:1: unexpected EOF"),
        (
            "{{if 1}}a{{else}}b{{else}}c{{end}}",
            "template: t:1: expected end; found {{else}}",
        ),
        (
            "{{.I | 3}}",
            "template: t:1: non executable command in pipeline stage 2",
        ),
        ("{{nosuch 1}}", "template: t:1: function \"nosuch\" not defined"),
        ("{{$x}}", "template: t:1: undefined variable \"$x\""),
        (
            "{{with $x := 1}}{{end}}{{$x}}",
            "template: t:1: undefined variable \"$x\"",
        ),
        ("{{break}}", "template: t:1: {{break}} outside {{range}}"),
        (
            "{{if 1}}{{continue}}{{end}}",
            "template: t:1: {{continue}} outside {{range}}",
        ),
        (
            "{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}",
            "template: t:1: template: multiple definition of template \"a\"",
        ),
        (
            "{{range $a, $b, $c := .}}{{end}}",
            "template: t:1: too many declarations in range",
        ),
        ("{{\"unterminated}}", "template: t:1: unterminated quoted string"),
        ("{{(1}}", "template: t:1: unclosed left paren"),
        ("{{1)}}", "template: t:1: unexpected right paren"),
        (
            "{{printf \"%d\" ( ) }}",
            "template: t:1: missing value for parenthesized pipeline",
        ),
        (
            "{{template .Name}}",
            "template: t:1: unexpected \".Name\" in template clause",
        ),
        ("{{.I := 1}}", "template: t:1: unexpected \":=\" in operand"),
        ("{{'ab'}}", "template: t:1: malformed character constant: 'ab'"),
        (
            "{{99999999999999999999}}",
            "template: t:1: integer overflow: \"99999999999999999999\"",
        ),
        ("{{3.X}}", "template: t:1: bad number syntax: \"3.X\""),
        ("{{\"a\".X}}", "template: t:1: unexpected . after term \"\\\"a\\\"\""),
        ("{{/* open", "template: t:1: unclosed comment"),
        ("{{/* x */ 1}}", "template: t:1: comment ends before closing delimiter"),
        ("\n\n{{if 1}}\n{{ end 1 }}", "template: t:4: unexpected \"1\" in end"),
    ]);
    let deep = format!("{}{}", "{{if 1}}".repeat(101), "{{end}}".repeat(101));
    assert_eq!(run(&deep).unwrap_err(), "template: t:1: nesting deeper than 100 levels");
}

#[test]
fn exec_errors() {
    check_errors(&[
        (
            "{{index .SI 10}}",
            "template: t:1:2: executing \"t\" at <index .SI 10>: error calling index: index out of range: 10",
        ),
        (
            "a\nb {{index .SI 9}}",
            "template: t:2:4: executing \"t\" at <index .SI 9>: error calling index: index out of range: 9",
        ),
        (
            "{{printf \"%d\" (index .SI 10 20 30 40)}}",
            "template: t:1:15: executing \"t\" at <index .SI 10 20 30 40>: error calling index: index out of range: 10",
        ),
        (
            "{{index .MSI 1}}",
            "template: t:1:2: executing \"t\" at <index .MSI 1>: error calling index: value has type int; should be string",
        ),
        (
            "{{index .I 1}}",
            "template: t:1:2: executing \"t\" at <index .I 1>: error calling index: can't index item of type int",
        ),
        (
            "{{slice .SI 2 1}}",
            "template: t:1:2: executing \"t\" at <slice .SI 2 1>: error calling slice: invalid slice index: 2 > 1",
        ),
        (
            "{{.I.Foo}}",
            "template: t:1:4: executing \"t\" at <.I.Foo>: can't evaluate field Foo in type int",
        ),
        (
            "{{template \"nope\"}}",
            "template: t:1:11: executing \"t\" at <{{template \"nope\"}}>: template \"nope\" not defined",
        ),
        (
            "{{define \"inner\"}}{{index .SI 5}}{{end}}{{template \"inner\" .}}",
            "template: t:1:20: executing \"inner\" at <index .SI 5>: error calling index: index out of range: 5",
        ),
        (
            "{{nil}}",
            "template: t:1:2: executing \"t\" at <nil>: nil is not a command",
        ),
        (
            "{{1 2}}",
            "template: t:1:2: executing \"t\" at <1>: can't give argument to non-function 1",
        ),
        (
            "{{$x := 1}}{{$x 2}}",
            "template: t:1:13: executing \"t\" at <$x>: can't give argument to non-function $x",
        ),
        (
            "{{printf 1}}",
            "template: t:1:9: executing \"t\" at <1>: expected string; found 1",
        ),
        (
            "{{printf nil}}",
            "template: t:1:9: executing \"t\" at <nil>: cannot assign nil to string",
        ),
        (
            "{{printf .I}}",
            "template: t:1:9: executing \"t\" at <.I>: wrong type for value; expected string; got int",
        ),
        (
            "{{printf .Empty}}",
            "template: t:1:9: executing \"t\" at <.Empty>: invalid value; expected string",
        ),
        (
            "{{len 3}}",
            "template: t:1:2: executing \"t\" at <len 3>: error calling len: len of type int",
        ),
        (
            "{{lt true false}}",
            "template: t:1:2: executing \"t\" at <lt true false>: error calling lt: invalid type for comparison",
        ),
        (
            "{{eq 1 \"a\"}}",
            "template: t:1:2: executing \"t\" at <eq 1 \"a\">: error calling eq: incompatible types for comparison",
        ),
        (
            "{{eq 1 1.0}}",
            "template: t:1:2: executing \"t\" at <eq 1 1.0>: error calling eq: incompatible types for comparison",
        ),
        (
            "{{eq 1}}",
            "template: t:1:2: executing \"t\" at <eq 1>: error calling eq: missing argument for comparison",
        ),
        (
            "{{not 1 2}}",
            "template: t:1:2: executing \"t\" at <not>: wrong number of args for not: want 1 got 2",
        ),
        (
            "{{and}}",
            "template: t:1:2: executing \"t\" at <and>: wrong number of args for and: want at least 1 got 0",
        ),
        (
            "{{.Obj.Method1}}",
            "template: t:1:6: executing \"t\" at <.Obj.Method1>: wrong number of args for Method1: want 1 got 0",
        ),
        (
            "{{.Obj.Method1 \"x\"}}",
            "template: t:1:15: executing \"t\" at <\"x\">: expected integer; found \"x\"",
        ),
        (
            "{{.Obj.Fails}}",
            "template: t:1:6: executing \"t\" at <.Obj.Fails>: error calling Fails: it failed",
        ),
        (
            "{{.Obj.X 1}}",
            "template: t:1:6: executing \"t\" at <.Obj.X>: X has arguments but cannot be invoked as function",
        ),
        (
            "{{.MSI.one 1}}",
            "template: t:1:6: executing \"t\" at <.MSI.one>: one is not a method but has arguments",
        ),
        (
            "{{.Obj.Nope}}",
            "template: t:1:6: executing \"t\" at <.Obj.Nope>: can't evaluate field Nope in type *main.Thing",
        ),
        (
            "{{call .Boom}}",
            "template: t:1:2: executing \"t\" at <call .Boom>: error calling call: boom",
        ),
        (
            "{{call .I}}",
            "template: t:1:2: executing \"t\" at <call .I>: error calling call: non-function .I of type int",
        ),
        (
            "{{call .Empty}}",
            "template: t:1:2: executing \"t\" at <call .Empty>: error calling call: call of nil",
        ),
        (
            "{{call .Add 1}}",
            "template: t:1:2: executing \"t\" at <call .Add 1>: error calling call: wrong number of args for .Add: got 1 want 2",
        ),
        (
            "{{call .Add 1 \"x\"}}",
            "template: t:1:2: executing \"t\" at <call .Add 1 \"x\">: error calling call: arg 1: value has type string; should be int",
        ),
        (
            "{{range .F}}{{end}}",
            "template: t:1:8: executing \"t\" at <.F>: range can't iterate over 1.5",
        ),
        (
            "{{range $i, $x := 3}}{{end}}",
            "template: t:1:18: executing \"t\" at <3>: can't use 3 to iterate over more than one variable",
        ),
        (
            "{{.Add}}",
            "template: t:1:2: executing \"t\" at <{{.Add}}>: can't print {{.Add}} of type func",
        ),
    ]);
}
