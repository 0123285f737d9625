//! Go `fmt` verbs, flags and misuse forms, as `printf` prints them.

use watchfire_template::Value;
use watchfire_template::fmt::{sprint, sprintf, sprintln};

use crate::support::check_outputs;

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

#[test]
fn verbs_flags_widths() {
    let list = Value::list([v(1), v("a")]);
    let map = Value::map([("b", v(2)), ("a", v(1))]);
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        ("%d", vec![v(12345)], "12345"),
        ("%v", vec![v(12345)], "12345"),
        ("%5d", vec![v(12)], "   12"),
        ("%-5d|", vec![v(12)], "12   |"),
        ("%05d", vec![v(-12)], "-0012"),
        ("%-05d|", vec![v(12)], "12   |"),
        ("%+d %+d", vec![v(12), v(-12)], "+12 -12"),
        ("% d", vec![v(12)], " 12"),
        ("%x %X %#x %#X", vec![v(255), v(255), v(255), v(255)], "ff FF 0xff 0XFF"),
        ("%x", vec![v(-255)], "-ff"),
        (
            "%o %#o %O %b %#b",
            vec![v(8), v(8), v(8), v(5), v(5)],
            "10 010 0o10 101 0b101",
        ),
        (
            "%.3d|%6.3d|%.0d|%5.0d|",
            vec![v(7), v(7), v(0), v(0)],
            "007|   007||     |",
        ),
        ("%08.3d", vec![v(7)], "     007"),
        (
            "%c%c %q %U %#U",
            vec![v(65), v(0x65e5), v(65), v(0x1F600), v(65)],
            "A日 'A' U+1F600 U+0041 'A'",
        ),
        ("%c", vec![v(-1)], "\u{FFFD}"),
        ("%t %5t %v", vec![v(true), v(true), v(false)], "true  true false"),
        (
            "%s|%5s|%-5s|%.2s|%.1s",
            vec![v("abc"), v("abc"), v("abc"), v("abc"), v("日本")],
            "abc|  abc|abc  |ab|日",
        ),
        ("%05s|%05x", vec![v("ab"), v("ab")], "   ab| 6162"),
        ("%q", vec![v("a\"b\n")], "\"a\\\"b\\n\""),
        ("%#q %#q", vec![v("abc"), v("a`b")], "`abc` \"a`b\""),
        ("%+q", vec![v("日本")], "\"\\u65e5\\u672c\""),
        ("%.3q", vec![v("abcdef")], "\"abc\""),
        (
            "%x|% x|%#x|%# x|%X|%.1x",
            vec![v("hi"), v("hi"), v("hi"), v("hi"), v("hi"), v("hi")],
            "6869|68 69|0x6869|0x68 0x69|6869|68",
        ),
        (
            "%f|%.2f|%8.3f|%-8.3f|%08.3f|%+.1f",
            vec![v(1.23456), v(1.23456), v(1.23456), v(1.23456), v(-1.23456), v(2.0)],
            "1.234560|1.23|   1.235|1.235   |-001.235|+2.0",
        ),
        ("%F", vec![v(1.5)], "1.500000"),
        (
            "%e|%.2e|%E",
            vec![v(1234.5678), v(1234.5678), v(1e-7)],
            "1.234568e+03|1.23e+03|1.000000E-07",
        ),
        (
            "%g|%g|%g|%.3g|%G",
            vec![v(1234.5678), v(1e21), v(1e-7), v(1234.5678), v(1e-7)],
            "1234.5678|1e+21|1e-07|1.23e+03|1E-07",
        ),
        (
            "%.4g|%.4g|%.4g",
            vec![v(1234567.0), v(0.000123), v(100.0)],
            "1.235e+06|0.000123|100",
        ),
        (
            "%#g|%#.3g|%#.0f|%#e",
            vec![v(1.0), v(1.0), v(1.0), v(1.0)],
            "1.00000|1.00|1.|1.000000e+00",
        ),
        (
            "%v|%v|%v|%v",
            vec![v(1e6), v(100000.0), v(0.000001), v(-0.0)],
            "1e+06|100000|1e-06|-0",
        ),
        ("%10.4v|", vec![v(1.23456)], "     1.235|"),
        (
            "%f|%v|%+f|%05.1f|% f",
            vec![
                v(f64::INFINITY),
                v(f64::NAN),
                v(f64::NAN),
                v(f64::NEG_INFINITY),
                v(f64::INFINITY),
            ],
            "+Inf|NaN|+NaN| -Inf| Inf",
        ),
        (
            "%v|%d|%q|%5v",
            vec![
                list.clone(),
                Value::list([v(1), v(2)]),
                Value::list([v("a"), v("b")]),
                Value::list([v(1), v(2)]),
            ],
            "[1 a]|[1 2]|[\"a\" \"b\"]|[    1     2]",
        ),
        (
            "%v|%d",
            vec![map.clone(), map.clone()],
            "map[a:1 b:2]|map[%!d(string=a):1 %!d(string=b):2]",
        ),
        (
            "%v|%s|%d",
            vec![Value::Nil, Value::Nil, Value::Nil],
            "<nil>|%!s(<nil>)|%!d(<nil>)",
        ),
        (
            "%T %T %T %T %T %T",
            vec![v(1), v("s"), v(1.5), v(true), list.clone(), Value::Nil],
            "int string float64 bool []interface {} <nil>",
        ),
        (
            "%#v|%#v|%#v|%#v",
            vec![v("a"), list.clone(), v(1.0), map.clone()],
            "\"a\"|[]interface {}{1, \"a\"}|1|map[string]interface {}{\"a\":1, \"b\":2}",
        ),
        ("%%|%5%|%z", vec![v(1)], "%|%|%!z(int=1)"),
    ];
    let mut failures = Vec::new();
    for (format, args, want) in &cases {
        let got = sprintf(format, args);
        if got != *want {
            failures.push(format!("{format:?} {args:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn misuse_and_argument_indexes() {
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        ("%d", vec![v("x")], "%!d(string=x)"),
        ("%s", vec![v(5)], "%!s(int=5)"),
        ("%5d", vec![v("ab")], "%!d(string=   ab)"),
        ("%d", vec![], "%!d(MISSING)"),
        ("%d %d", vec![v(1)], "1 %!d(MISSING)"),
        ("x", vec![v(1), v("a")], "x%!(EXTRA int=1, string=a)"),
        ("%", vec![], "%!(NOVERB)"),
        ("%[2]d %[1]d", vec![v(1), v(2)], "2 1"),
        ("%[2]d %d", vec![v(1), v(2), v(3)], "2 3"),
        ("%[3]d", vec![v(1)], "%!d(BADINDEX)"),
        (
            "%*d|%-*d|%.*f",
            vec![v(5), v(12), v(4), v(3), v(2), v(1.23456)],
            "   12|3   |1.23",
        ),
        ("%*d", vec![v(-4), v(1)], "1   "),
        ("%*d", vec![v("x"), v(1)], "%!(BADWIDTH)1"),
        ("%.*d", vec![v("x"), v(1)], "%!(BADPREC)1"),
    ];
    let mut failures = Vec::new();
    for (format, args, want) in &cases {
        let got = sprintf(format, args);
        if got != *want {
            failures.push(format!("{format:?} {args:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn print_and_println_spacing() {
    assert_eq!(sprint(&[v(1), v(2), v("a"), v(3), v("b"), v("c")]), "1 2a3bc");
    assert_eq!(sprint(&[v("a"), v(1.5), v(true)]), "a1.5 true");
    assert_eq!(sprintln(&[v("a"), v(1), Value::Nil]), "a 1 <nil>\n");
    assert_eq!(sprintln(&[]), "\n");
}

#[test]
fn printf_in_templates() {
    check_outputs(&[
        ("{{printf \"%s=%d\" .Str .I}}", "foo=17"),
        ("{{printf \"%.2f\" .F}}", "1.50"),
        ("{{printf \"%5.1f|%-6s|%03d\" 3.14159 \"ab\" 7}}", "  3.1|ab    |007"),
        ("{{printf \"%v %v\" .SI .MSI}}", "[3 4 5] map[one:1 three:3 two:2]"),
        ("{{printf \"%q\" .SS}}", "[\"a\" \"b\"]"),
        ("{{printf \"%s\" .Obj}}", "Thing(x)"),
        ("{{printf \"%v\" .Missing}}", "<nil>"),
        ("{{printf \"%d\" 1.5}}", "%!d(float64=1.5)"),
        ("{{printf \"%T %T\" 1 1.0}}", "int float64"),
        ("{{printf \"%x\" \"Go\"}}", "476f"),
        ("{{printf \"%d%%\" 50}}", "50%"),
    ]);
}
