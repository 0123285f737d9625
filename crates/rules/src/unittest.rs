//! `promtool test rules` (upstream `cmd/promtool/unittest.go`): runs rule unit-test files
//! with promtool's output and exit codes. Native histograms are not supported (the engine
//! evaluates floats only): input series or expected samples written in histogram notation
//! fail the test group with an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use watchfire_model::{Duration, Labels, Timestamp, go_quote};
use watchfire_promql::engine::{Engine, EngineOptions};

use crate::group::{EvalContext, Group, GroupOptions, RuleStorage};
use crate::manager::load_groups;
use crate::rule::{AlertState, Rule, query_vector};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Duration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
    #[serde(default)]
    fuzzy_compare: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default)]
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    eval_time: Duration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
    #[serde(default)]
    histogram: String,
}

/// Go's `time.Duration.String()` for whole milliseconds.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if ms < 1000 {
        out.push_str(&format!("{ms}ms"));
        return out;
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`.
fn format_upper_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:E}");
    let (mant, exp) = s.split_once('E').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn indent_lines(lines: &str, indent: &str) -> String {
    lines.split('\n').collect::<Vec<_>>().join(&format!("\n{indent}"))
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct LabelsAndAnnotations {
    labels: Labels,
    annotations: Labels,
}

fn alerts_string(la: &[LabelsAndAnnotations]) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for (i, a) in la.iter().enumerate() {
        if i > 0 {
            s.push_str(",\n");
        }
        let one = format!("\nLabels:{}\nAnnotations:{}", a.labels, a.annotations);
        s.push_str(&format!("{i}:{}", indent_lines(&one, "  ")));
    }
    s.push_str("\n]");
    s
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{l} {}", format_upper_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn floats_equal(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b {
        return true;
    }
    fuzzy && (a.next_down() == b || a.next_up() == b)
}

/// Parses a `start_timestamp`: Unix seconds (possibly fractional) or RFC 3339.
fn parse_start(s: &str) -> Result<Timestamp, String> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1000.0).round() as Timestamp);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Runs the unit-test files as `promtool test rules` does, writing its output to `out` and
/// `err`; returns the exit code (0 success, 1 failure). `run` filters test groups by name
/// (regexes joined with `|`).
pub fn run_files(files: &[PathBuf], run: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let run = if run.is_empty() {
        None
    } else {
        match regex::Regex::new(&run.join("|")) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = writeln!(err, "invalid --run pattern: {e}");
                return 1;
            }
        }
    };
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {}", f.display());
        let errs = run_file(f, run.as_ref(), err);
        if errs.is_empty() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            let _ = writeln!(err, "  FAILED:");
            for e in errs {
                let _ = writeln!(err, "{e}");
                let _ = writeln!(out);
            }
            failed = true;
        }
        let _ = writeln!(out);
    }
    i32::from(failed)
}

fn run_file(path: &Path, run: Option<&regex::Regex>, warn: &mut dyn Write) -> Vec<String> {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return vec![format!("open {}: {e}", path.display())],
    };
    let file: UnitTestFile = match watchfire_config::yaml::from_str(&src, path) {
        Ok(f) => f,
        Err(e) => return vec![e.to_string()],
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    for rf in &file.rule_files {
        let full = if rf.is_empty() || Path::new(rf).is_absolute() {
            rf.clone()
        } else {
            base.join(rf).to_string_lossy().into_owned()
        };
        let matched: Vec<PathBuf> = match glob_paths(&full) {
            Ok(m) => m,
            Err(e) => return vec![e],
        };
        if matched.is_empty() {
            let _ = writeln!(warn, "  WARNING: no file match pattern {full}");
        }
        rule_files.extend(matched);
    }
    let eval_interval = file
        .evaluation_interval
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(60));
    let mut order = HashMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let mut errs = Vec::new();
    for tg in &file.tests {
        if let Some(r) = run
            && !r.is_match(&tg.name)
        {
            continue;
        }
        let interval = tg.interval.filter(|d| !d.is_zero()).unwrap_or(eval_interval);
        errs.extend(run_group(
            tg,
            interval,
            eval_interval,
            &order,
            file.fuzzy_compare,
            &rule_files,
        ));
    }
    errs
}

fn glob_paths(pattern: &str) -> Result<Vec<PathBuf>, String> {
    // Only the last path element may be a pattern in practice; expand with a simple matcher.
    let p = Path::new(pattern);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?', '[']) {
        return Ok(if p.exists() { vec![p.to_path_buf()] } else { Vec::new() });
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let re = format!(
        "^{}$",
        regex::escape(&name)
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
            .replace(r"\[", "[")
            .replace(r"\]", "]")
    );
    let re = regex::Regex::new(&re).map_err(|e| format!("syntax error in pattern: {e}"))?;
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| re.is_match(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    Ok(out)
}

fn run_group(
    tg: &TestGroup,
    interval: Duration,
    eval_interval: Duration,
    order: &HashMap<String, usize>,
    fuzzy: bool,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let mint = match tg.start_timestamp.as_deref() {
        None | Some("") => 0,
        Some(s) => match parse_start(s) {
            Ok(t) => t,
            Err(e) => return vec![e],
        },
    };
    // The input series, loaded lazily up to each evaluation time.
    let mut pending: Vec<(Timestamp, Labels, f64)> = Vec::new();
    for s in &tg.input_series {
        let desc = match watchfire_promql::test_script::parse_series_desc(&format!("{} {}", s.series, s.values)) {
            Ok(d) => d,
            Err(e) => return vec![e],
        };
        if desc.histogram {
            return vec![format!("native histograms are not supported (series {})", s.series)];
        }
        for (i, v) in desc.values.iter().enumerate() {
            if let watchfire_promql::test_script::SequenceValue::Value(v) = v {
                pending.push((mint + i as i64 * interval.as_millis(), desc.labels.clone(), *v));
            }
        }
    }
    pending.sort_by_key(|(t, _, _)| *t);
    let head = watchfire_tsdb::Head::in_memory(watchfire_tsdb::HeadOptions::default());
    let storage: Arc<dyn RuleStorage> = Arc::new(watchfire_tsdb::MemoryStorage(head));
    let engine = Engine::new(EngineOptions {
        default_subquery_step: eval_interval,
        delayed_name_removal: false,
        timeout: None,
        ..EngineOptions::default()
    });
    let mut ctx = EvalContext::new(storage.clone(), engine.clone());
    ctx.external_labels = Labels::from_pairs(tg.external_labels.iter());
    ctx.external_url = tg.external_url.clone();

    let opts = GroupOptions {
        default_interval_ms: interval.as_millis(),
        ..GroupOptions::default()
    };
    let mut groups = match load_groups(rule_files, &opts) {
        Ok(g) => g,
        Err(e) => return e,
    };
    groups.sort_by_key(|g: &Group| order.get(g.name()).copied().unwrap_or(0));

    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time.as_millis())
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time.as_millis()))
        .max()
        .unwrap_or(0)
        .max(0);
    let maxt = mint + max_eval;

    let mut alert_tests: BTreeMap<i64, Vec<&AlertTestCase>> = BTreeMap::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let log = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{log}",
                a.eval_time
            )];
        }
        alert_tests.entry(a.eval_time.as_millis()).or_default().push(a);
    }
    let alert_times: Vec<i64> = alert_tests.keys().copied().collect();
    let mut curr = 0;
    let mut errs = Vec::new();
    let step = eval_interval.as_millis().max(1);
    let mut next_pending = 0;
    let mut ts = mint;
    while ts <= maxt {
        // Load the input samples up to ts.
        {
            let mut app = storage.appender();
            while next_pending < pending.len() && pending[next_pending].0 <= ts {
                let (t, l, v) = &pending[next_pending];
                if let Err(e) = app.append(None, l, *t, *v) {
                    errs.push(e.to_string());
                }
                next_pending += 1;
            }
            if let Err(e) = app.commit() {
                errs.push(e.to_string());
            }
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &ctx);
            for r in g.rules() {
                if let Some(e) = r.last_error() {
                    eval_errs.push(format!("    rule: {}, time: {}, err: {e}", r.name(), go_duration(ts)));
                }
            }
        }
        let had_eval_errs = !eval_errs.is_empty();
        errs.extend(eval_errs);
        if had_eval_errs {
            return errs;
        }
        while curr < alert_times.len() && ts - mint <= alert_times[curr] && alert_times[curr] < ts + step - mint {
            let t = alert_times[curr];
            let cases = &alert_tests[&t];
            let present: HashSet<&str> = cases.iter().map(|c| c.alertname.as_str()).collect();
            let mut got: HashMap<String, Vec<LabelsAndAnnotations>> = HashMap::new();
            for g in &groups {
                for r in g.rules() {
                    let Rule::Alerting(ar) = r else { continue };
                    if !present.contains(ar.name()) {
                        continue;
                    }
                    let entry = got.entry(ar.name().to_owned()).or_default();
                    for a in ar.active_alerts() {
                        if a.state == AlertState::Firing {
                            entry.push(LabelsAndAnnotations {
                                labels: a.labels.clone(),
                                annotations: Labels::from_pairs(a.annotations.iter()),
                            });
                        }
                    }
                }
            }
            for case in cases {
                let mut got_alerts = got.get(&case.alertname).cloned().unwrap_or_default();
                let mut exp_alerts: Vec<LabelsAndAnnotations> = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), case.alertname.clone());
                        LabelsAndAnnotations {
                            labels: Labels::from_pairs(l.iter()),
                            annotations: Labels::from_pairs(a.exp_annotations.iter()),
                        }
                    })
                    .collect();
                got_alerts.sort();
                exp_alerts.sort();
                if exp_alerts != got_alerts {
                    let name = if tg.name.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {},\n", tg.name)
                    };
                    errs.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        case.eval_time,
                        indent_lines(&alerts_string(&exp_alerts), "            "),
                        indent_lines(&alerts_string(&got_alerts), "            ")
                    ));
                }
            }
            curr += 1;
        }
        ts += step;
    }
    // Remaining input samples, for expression tests past the last evaluation.
    {
        let mut app = storage.appender();
        for (t, l, v) in &pending[next_pending..] {
            let _ = app.append(None, l, *t, *v);
        }
        let _ = app.commit();
    }

    'cases: for case in &tg.promql_expr_test {
        let t = mint + case.eval_time.as_millis();
        let expr = match watchfire_promql::parse_expr(&case.expr) {
            Ok(e) => e,
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {}, err: {e}",
                    go_quote(&case.expr),
                    case.eval_time
                ));
                continue;
            }
        };
        let mut got = match query_vector(&ctx, &expr, t) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {}, err: {e}",
                    go_quote(&case.expr),
                    case.eval_time
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &case.exp_samples {
            let parsed = if s.labels.trim().is_empty() {
                Ok(Labels::empty())
            } else {
                watchfire_promql::test_script::parse_series_desc(&format!("{} 0", s.labels)).map(|d| d.labels)
            };
            let parsed = parsed.and_then(|l| {
                if s.histogram.is_empty() {
                    Ok(l)
                } else {
                    Err("native histograms are not supported".to_owned())
                }
            });
            match parsed {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {}, time: {}, err: labels {}: {e}",
                        go_quote(&case.expr),
                        case.eval_time,
                        go_quote(&s.labels)
                    ));
                    continue 'cases;
                }
            }
        }
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let equal = exp.len() == got.len()
            && exp
                .iter()
                .zip(&got)
                .all(|(a, b)| a.0 == b.0 && floats_equal(a.1, b.1, fuzzy));
        if !equal {
            errs.push(format!(
                "    expr: {}, time: {},\n        exp: {}\n        got: {}",
                go_quote(&case.expr),
                case.eval_time,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(file: &str) -> (i32, String, String) {
        let dir = Path::new("/work/shared/compat/prometheus/promtool");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_files(&[dir.join(file)], &[], &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(5_400_500), "1h30m0.5s");
        assert_eq!(format_upper_e(1.0), "1E+00");
        assert_eq!(format_upper_e(0.25), "2.5E-01");
    }

    #[test]
    fn compat_suites_pass_or_fail_as_promtool() {
        if !Path::new("/work/shared/compat/prometheus/promtool").exists() {
            return;
        }
        for good in [
            "at-modifier-test.yml",
            "negative-offset-test.yml",
            "no-test-group-interval.yml",
            "start-time-test.yml",
            "long-period.yml",
        ] {
            let (code, out, err) = run(good);
            assert_eq!(code, 0, "{good}: {out}{err}");
            assert!(out.contains("  SUCCESS"), "{good}");
        }
        let (code, _, err) = run("failing.yml");
        assert_eq!(code, 1);
        assert!(err.contains("  FAILED:"));
        // Promtool's exact report (checked against Debian's promtool).
        let expected = concat!(
            "  FAILED:\n",
            "    name: Failing test,\n    alertname: Test, time: 0s, \n        exp:[\n            0:\n",
            "              Labels:{alertname=\"Test\"}\n              Annotations:{}\n            ], \n        got:[]\n",
            "    expr: \"test\", time: 0s,\n        exp: {__name__=\"test\"} 1E+00\n        got: {__name__=\"test\"} 0E+00\n",
        );
        assert!(err.starts_with(expected), "{err}");
        assert!(err.contains(concat!(
            "              Labels:{alertname=\"InstanceDown\", job=\"test\", severity=\"page\"}\n",
            "              Annotations:{description=\" of job test has been down for more than 5 minutes.\", summary=\"Instance  down\"}\n"
        )));
        for bad in [
            "bad-input-series.yml",
            "bad-promql.yml",
            "bad-rules-error-test.yml",
            "bad-rules-syntax-test.yml",
        ] {
            let (code, _, err) = run(bad);
            assert_eq!(code, 1, "{bad}: {err}");
        }
    }
}
