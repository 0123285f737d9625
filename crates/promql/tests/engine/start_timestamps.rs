//! Start timestamps (issue #4): loaded from `metric@st` lines through the appender, stored by
//! the head, read back by `start_timestamp()` and the counter functions; malformed `@st` lines
//! are refused with the line and the reason.

use std::sync::Arc;

use watchfire_promql::engine::{Engine, EngineOptions};
use watchfire_promql::test_script::{self, Outcome, Runner, ScriptStorage};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

fn run(script: &str) -> Vec<(usize, Outcome)> {
    let cmds = test_script::parse(script).unwrap_or_else(|e| panic!("script does not parse: {e}"));
    let mut runner = Runner {
        engine: Engine::new(EngineOptions::default()),
        new_storage: Box::new(|| -> Arc<dyn ScriptStorage> {
            Arc::new(MemoryStorage(Head::in_memory(HeadOptions::default())))
        }),
    };
    runner.run(&cmds).into_iter().map(|r| (r.line, r.outcome)).collect()
}

#[test]
fn issue_4_start_timestamp_function_reads_the_stored_starts() {
    // The float part of upstream's start_timestamps.test start_timestamp() case (upstream's
    // also has histograms, which Watchfire does not store yet).
    let script = r#"
load 10s
    series{case="a"}@st  _  1ms   _   0  -1ms  -10ms
    series{case="a"}     _   10  20  30    40     50
    series{case="b"}     _    _   _   _    40      _

eval range from 0s to 50s step 10s start_timestamp(series)
    {case="a"}  _ 10.001 0 30 39.999 49.99
    {case="b"}  _ _ _ _ 0 0

eval range from 10s to 50s step 10s start_timestamp(series * 1)

eval instant at 50s start_timestamp(series{case="a"} offset 20s)
    {case="a"} 30
"#;
    for (line, outcome) in run(script) {
        assert_eq!(outcome, Outcome::Pass, "eval at line {line}");
    }
}

#[test]
fn issue_4_rate_uses_start_timestamps_across_chunks() {
    // 600 samples a second apart make several head chunks; the start timestamps say the
    // counter restarted half a second before every 100th sample although its value never
    // drops.
    let mut st_line = String::from("    c_total@st ");
    let mut values = String::from("    c_total ");
    for i in 0..600 {
        let since_reset = i % 100;
        st_line += &format!("-{}ms ", since_reset * 1000 + 500);
        values += &format!("{} ", 1000 + i);
    }
    let script = format!(
        "load 1s\n{st_line}\n{values}\n\neval instant at 599s resets(c_total[10m])\n    {{}} 5\n\n\
         eval instant at 200s increase(c_total[1s])\n    {{}} 1200\n\n\
         eval instant at 250s increase(c_total[1s])\n\n\
         eval instant at 250s irate(c_total[2s])\n    {{}} 1\n\n\
         eval instant at 200s irate(c_total[2s])\n    {{}} 1200\n"
    );
    for (line, outcome) in run(&script) {
        assert_eq!(outcome, Outcome::Pass, "eval at line {line}");
    }
}

#[test]
fn issue_4_malformed_st_lines_are_refused_with_line_and_reason() {
    let cases = [
        (
            "load 1m\n    a@st 1m\n",
            "line 2: @st line has no following sample line",
        ),
        (
            "load 1m\n    a@st 1m\n    a@st 1m\n    a 1\n",
            "line 2: @st line has no following sample line",
        ),
        ("load 1m\n    a@st 1m\n    b 1\n", "line 2: @st metric does not match"),
        (
            "load 1m\n    a@st 1m 2m\n    a 1\n",
            "line 2: @st line has 2 values but sample line has 1",
        ),
        (
            "load 1m\n    a@st 1q\n    a 1\n",
            "line 2: invalid @st sequence: invalid ST item \"1q\"",
        ),
        (
            "load 1m\n    a@st 1m*2\n    a 1 2\n",
            "unexpected character '*' after duration",
        ),
        ("load 1m\n    a@st 1m+1m\n    a 1 2\n", "expected 'x<count>'"),
        ("load 1m\n    a@st _x0\n    a 1\n", "invalid repeat count"),
        ("load 1m\n    a@st\n", "invalid @st line: missing value sequence"),
        ("load 1m\n    a{b=~\"x\"}@st 1m\n    a 1\n", "invalid @st line metric"),
    ];
    for (script, want) in cases {
        let err = test_script::parse(script).expect_err(script).to_string();
        assert!(err.contains(want), "{script:?}: {err}");
    }
}
