//! Arbitrary input never panics the parser or the executor.

use proptest::prelude::*;
use watchfire_template::{Limits, Template};

use crate::support::data;

/// Fragments that make random strings look like templates, so parsing gets deep.
fn template_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{{- ".to_owned()),
        Just(" -}}".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("|".to_owned()),
        Just(" ".to_owned()),
        Just("$x := ".to_owned()),
        Just("$x".to_owned()),
        Just(".SI".to_owned()),
        Just(".MSI.one".to_owned()),
        Just(".Obj.Method1 2".to_owned()),
        Just("if ".to_owned()),
        Just("else ".to_owned()),
        Just("end".to_owned()),
        Just("range ".to_owned()),
        Just("break".to_owned()),
        Just("with ".to_owned()),
        Just("define \"a\"".to_owned()),
        Just("template \"a\" .".to_owned()),
        Just("printf \"%5.2f %d %s %q %x %[2]v %*d\" ".to_owned()),
        Just("index ".to_owned()),
        Just("slice ".to_owned()),
        Just("len ".to_owned()),
        Just("eq ".to_owned()),
        Just("and ".to_owned()),
        Just("1".to_owned()),
        Just("1.5e3".to_owned()),
        Just("'x'".to_owned()),
        Just("\"s\"".to_owned()),
        "[ -~\u{a0}é\n]{0,4}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,200}") {
        if let Ok(t) = Template::new("t").parse(&s) {
            let _ = t.execute(&data());
        }
    }

    #[test]
    fn template_like_input_never_panics(s in template_like()) {
        let limits = Limits { max_depth: 100, max_output_bytes: 1 << 16, max_steps: 10_000 };
        if let Ok(t) = Template::new("t").limits(limits).parse(&s) {
            let _ = t.execute(&data());
        }
    }
}
