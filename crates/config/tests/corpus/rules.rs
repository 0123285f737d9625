//! Rule files: upstream's promtool test data, then hand-written good and bad files.

use std::path::Path;

use watchfire_config::rules::RuleFile;
use watchfire_config::{Error, Result};
use watchfire_model::Duration;

/// Files in `promtool/` that are `promtool test rules` unit-test files (`rule_files:`,
/// `tests:`), not rule files; a unit-test runner reads them, not this parser.
const UNIT_TEST_FILES: &[&str] = &[
    "at-modifier-test.yml",
    "bad-input-series.yml",
    "bad-promql.yml",
    "bad-rules-error-test.yml",
    "bad-rules-syntax-test.yml",
    "failing.yml",
    "long-period.yml",
    "negative-offset-test.yml",
    "no-test-group-interval.yml",
    "start-time-test.yml",
    "unittest.yml",
];

/// Rule files `promtool check rules` accepts, with their rule counts.
///
/// bad-rules-error.yml is among them: its `join_1 + on(a) join_2` is valid PromQL and only
/// fails when evaluated against the many-to-many data of bad-rules-error-test.yml.
const GOOD_RULE_FILES: &[(&str, usize)] = &[
    ("rules.yml", 5),
    ("at-modifier.yml", 1),
    ("negative-offset.yml", 1),
    ("rules_duplicates.yml", 5),
    ("bad-rules-error.yml", 1),
];

/// Rule files upstream rejects only for what this crate cannot check yet. They must parse
/// structurally here; the reason is the stand-in checker's verdict, with its line.
///
/// Needs the PromQL parser: bad-rules-syntax.yml (`test +` is a syntax error).
/// Needs the template engine: rules-bad.yml (`{{ $label.foo }}`: `$label` is undefined).
const NEEDS_PARSERS: &[&str] = &["bad-rules-syntax.yml", "rules-bad.yml"];

fn promtool_dir() -> Option<std::path::PathBuf> {
    crate::compat_dir().map(|d| d.join("prometheus/promtool"))
}

#[test]
fn every_promtool_file_is_classified() {
    let Some(dir) = promtool_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("promtool corpus directory is readable")
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    for name in &names {
        let known = UNIT_TEST_FILES.contains(&name.as_str())
            || GOOD_RULE_FILES.iter().any(|(n, _)| n == name)
            || NEEDS_PARSERS.contains(&name.as_str());
        assert!(known, "{name}: new upstream file; classify it in tests/corpus/rules.rs");
    }
}

#[test]
fn unit_test_files_are_not_rule_files() {
    // They have keys a rule file does not, so loading one as a rule file must fail on them.
    let Some(dir) = promtool_dir() else { return };
    for name in UNIT_TEST_FILES {
        let err = RuleFile::load(&dir.join(name)).expect_err(name).to_string();
        assert!(err.contains("unknown field"), "{name}: {err}");
    }
}

#[test]
fn good_promtool_rule_files_load() {
    let Some(dir) = promtool_dir() else { return };
    for (name, count) in GOOD_RULE_FILES {
        let file = RuleFile::load(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.rule_count(), *count, "{name}");
    }
}

#[test]
fn promtool_rules_yml_in_detail() {
    let Some(dir) = promtool_dir() else { return };
    let file = RuleFile::load(&dir.join("rules.yml")).unwrap();
    assert_eq!(file.groups.len(), 2);
    let alerts = &file.groups[0].value;
    assert_eq!(alerts.name, "alerts");
    let down = &alerts.rules[0].value;
    assert_eq!((down.alert.as_str(), down.expr.as_str()), ("InstanceDown", "up == 0"));
    assert_eq!(down.r#for, Duration::from_secs(300));
    assert_eq!(down.labels["severity"], "page");
    assert_eq!(down.annotations["summary"], "Instance {{ $labels.instance }} down");
    assert_eq!(alerts.rules[0].referenced.line(), 6);
    // `expr: 1` is a YAML integer; Go's decoder reads it into the string field.
    assert_eq!(alerts.rules[1].value.expr, "1");
    let records = &file.groups[1].value;
    assert_eq!(records.rules[2].value.record, "suquery_interval_test");
    assert_eq!(records.rules[2].referenced.line(), 27);
    assert!(file.duplicate_rules().is_empty());
}

#[test]
fn promtool_duplicates_are_reported_once() {
    let Some(dir) = promtool_dir() else { return };
    let file = RuleFile::load(&dir.join("rules_duplicates.yml")).unwrap();
    // Three rules record job:test:count_over_time1m with no labels, across two groups:
    // promtool reports that once.
    assert_eq!(
        file.duplicate_rules(),
        vec!["Metric: job:test:count_over_time1m\nLabel(s):".to_owned()]
    );
}

#[test]
fn files_needing_parsers_parse_structurally() {
    let Some(dir) = promtool_dir() else { return };
    // Stand-ins for the PromQL parser and template engine that know just these two mistakes,
    // to show the failures come back with the rule's group, number and line.
    let promql = |e: &str| {
        if e.trim_end().ends_with('+') {
            Err("unexpected end of input".to_owned())
        } else {
            Ok(())
        }
    };
    let template = |t: &str| {
        if t.contains("$label.") {
            Err("undefined variable \"$label\"".to_owned())
        } else {
            Ok(())
        }
    };
    let expected = [
        (
            "bad-rules-syntax.yml",
            ":6:",
            "group \"bad-syntax\", rule 1, \"x\": could not parse expression: unexpected end",
        ),
        (
            "rules-bad.yml",
            ":6:",
            "group \"alerts\", rule 1, \"InstanceDown\": annotation \"summary\": undefined variable",
        ),
    ];
    assert_eq!(expected.len(), NEEDS_PARSERS.len());
    for (name, line, message) in expected {
        let file = RuleFile::load(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let err = file.validate_with(promql, template).expect_err(name).to_string();
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(&format!("{name}{line}")) && err.contains(message),
            "{name}: {err}"
        );
    }
    // And the good files pass the same stand-ins.
    for (name, _) in GOOD_RULE_FILES {
        let file = RuleFile::load(&dir.join(name)).unwrap();
        file.validate_with(promql, template)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn parse(src: &str) -> Result<RuleFile> {
    RuleFile::parse(src, Path::new("r.yml"))
}

/// Why the error has no line `r.yml:<line>:<col>: ...<fragment>...`, if it has none.
fn mismatch(name: &str, err: &Error, line: u64, fragment: &str) -> Option<String> {
    let text = err.to_string();
    let prefix = format!("r.yml:{line}:");
    let found = text.lines().any(|l| l.starts_with(&prefix) && l.contains(fragment));
    (!found).then(|| format!("{name}: expected {fragment:?} at line {line}, got:\n{text}"))
}

fn assert_error_at(name: &str, err: &Error, line: u64, fragment: &str) {
    if let Some(m) = mismatch(name, err, line, fragment) {
        panic!("{m}");
    }
}

#[test]
fn bad_rule_files() {
    let cases: &[(&str, &str, u64, &str)] = &[
        (
            "unknown key in a rule",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    exprs: up\n",
            6,
            "unknown field `exprs`",
        ),
        (
            "unknown key in a group",
            "groups:\n- name: g\n  intervall: 1m\n  rules: []\n",
            3,
            "unknown field `intervall`",
        ),
        (
            "unknown top-level key",
            "group:\n- name: g\n",
            1,
            "unknown field `group`",
        ),
        (
            "missing expr",
            "groups:\n- name: g\n  rules:\n  - record: r\n    labels: {a: b}\n",
            4,
            "group \"g\", rule 1, \"r\": field 'expr' must be set in rule",
        ),
        (
            "record and alert",
            "groups:\n- name: g\n  rules:\n  - expr: up\n  - record: r\n    alert: A\n    expr: up\n",
            5,
            "rule 2, \"A\": only one of 'record' and 'alert' must be set",
        ),
        (
            "neither record nor alert",
            "groups:\n- name: g\n  rules:\n  - expr: up\n",
            4,
            "rule 1, \"\": one of 'record' or 'alert' must be set",
        ),
        (
            "duplicate group",
            "groups:\n- name: a\n  rules: []\n- name: b\n- name: a\n  rules: []\n",
            5,
            "groupname: \"a\" is repeated in the same file",
        ),
        (
            "empty group name",
            "groups:\n- rules:\n  - record: r\n    expr: up\n",
            2,
            "Groupname must not be empty",
        ),
        (
            "annotations on a recording rule",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    annotations:\n      summary: s\n",
            4,
            "invalid field 'annotations' in recording rule",
        ),
        (
            "for on a recording rule",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 5m\n",
            4,
            "invalid field 'for' in recording rule",
        ),
        (
            "keep_firing_for on a recording rule",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    keep_firing_for: 5m\n",
            4,
            "invalid field 'keep_firing_for' in recording rule",
        ),
        (
            "braces in a record name",
            "groups:\n- name: g\n  rules:\n  - record: 'x{a=\"b\"}'\n    expr: up\n",
            4,
            "braces present in the recording rule name; should it be in expr?: x{a=\"b\"}",
        ),
        (
            "__name__ as a rule label",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      __name__: x\n",
            4,
            "invalid label name: __name__",
        ),
        (
            "empty rule label name",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      '': x\n",
            4,
            "invalid label name: ",
        ),
        (
            "empty annotation name",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      '': x\n",
            4,
            "invalid annotation name: ",
        ),
        (
            "__name__ as a group label",
            "groups:\n- name: g\n  labels:\n    __name__: x\n  rules: []\n",
            2,
            "group \"g\": invalid label name: __name__",
        ),
        (
            "bad duration in for",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n",
            6,
            "not a valid duration string",
        ),
        (
            "duration without a unit",
            "groups:\n- name: g\n  interval: 30\n  rules: []\n",
            3,
            "a unit is required",
        ),
        (
            "duplicate key",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    expr: down\n",
            6,
            "duplicate",
        ),
        (
            "rules not a list",
            "groups:\n- name: g\n  rules: up\n",
            3,
            "expected sequence",
        ),
        (
            "limit not a number",
            "groups:\n- name: g\n  limit: many\n",
            3,
            "invalid",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, src, line, fragment)| match parse(src) {
            Ok(_) => Some(format!("{name}: parsed without error")),
            Err(err) => mismatch(name, &err, *line, fragment),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn all_problems_are_reported() {
    let src = "\
groups:
- name: g
  rules:
  - record: r
    expr: up
    for: 1m
  - alert: A
- name: g
";
    let err = parse(src).unwrap_err();
    let Error::Many(errors) = &err else {
        panic!("expected several errors, got {err}")
    };
    assert_eq!(errors.len(), 3, "{err}");
    assert_error_at("for", &err, 4, "invalid field 'for' in recording rule");
    assert_error_at("expr", &err, 7, "rule 2, \"A\": field 'expr' must be set in rule");
    assert_error_at("group", &err, 8, "groupname: \"g\" is repeated in the same file");
}

#[test]
fn good_rule_files() {
    // Blank files, empty lists and nulls are all an empty rule file, as upstream.
    for src in ["", "# nothing\n", "groups: []\n", "groups:\n", "{}\n"] {
        let file = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(file.rule_count(), 0, "{src:?}");
    }

    let src = "\
groups:
- name: full
  interval: 30s
  query_offset: 1m
  limit: 10
  labels:
    team: a
  rules:
  - alert: HighErrors
    expr: |
      sum(rate(errors_total[5m])) > 1
    for: 5m
    keep_firing_for: 10m
    labels:
      severity: 2
      empty:
    annotations:
      summary: '{{ $value }} errors'
  - record: 'job:up:sum'
    expr: sum by (job) (up)
    labels:
    annotations:
- name: defaults
  interval: 0s
  rules:
  - record: ünïcode.name
    expr: vector(1)
    labels:
      dotted.label: x
";
    let file = parse(src).unwrap();
    assert_eq!(file.path(), Path::new("r.yml"));
    assert_eq!(file.rule_count(), 3);
    let full = &file.groups[0].value;
    assert_eq!(full.interval, Some(Duration::from_secs(30)));
    assert_eq!(full.query_offset, Some(Duration::from_secs(60)));
    assert_eq!(full.limit, 10);
    assert_eq!(full.labels["team"], "a");
    let alert = &full.rules[0].value;
    assert!(alert.is_alerting());
    assert_eq!(alert.name(), "HighErrors");
    assert_eq!(alert.expr, "sum(rate(errors_total[5m])) > 1\n");
    assert_eq!(alert.keep_firing_for, Duration::from_secs(600));
    assert_eq!(alert.labels["severity"], "2");
    assert_eq!(alert.labels["empty"], "");
    let record = &full.rules[1].value;
    assert!(!record.is_alerting() && record.labels.is_empty() && record.annotations.is_empty());
    // `interval: 0s` means the global evaluation interval, like leaving it out.
    let defaults = &file.groups[1].value;
    assert_eq!(
        (defaults.interval, defaults.query_offset, defaults.limit),
        (None, None, 0)
    );
    assert_eq!(defaults.rules[0].value.record, "ünïcode.name");

    // Serialized back with upstream's keys and without empty optional ones.
    let json = serde_json::to_value(&file).unwrap();
    assert_eq!(json["groups"][0]["rules"][0]["for"], "5m");
    assert_eq!(json["groups"][0]["query_offset"], "1m");
    assert!(json["groups"][0]["rules"][1].get("for").is_none());
    assert!(json["groups"][1].get("interval").is_none());
}

#[test]
fn only_the_first_document_is_used() {
    // Upstream decodes the first document and logs a warning about the rest, which need not
    // even be a rule file; a lone trailing `---` counts too.
    let one = "---\n# leading marker and comment\ngroups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n";
    let file = parse(one).unwrap();
    assert_eq!((file.rule_count(), file.warnings().len()), (1, 0));
    // An explicit document end with nothing after it is just the end.
    let ended = parse(&format!("{one}...\n# trailing comment\n")).unwrap();
    assert_eq!((ended.rule_count(), ended.warnings().len()), (1, 0));
    for (rest, line) in [
        ("---\nnot: [a rule file\n", 8),
        ("---\n", 8),
        ("...\n---\ngroups: []\n", 8),
    ] {
        let file = parse(&format!("{one}{rest}")).unwrap_or_else(|e| panic!("{rest:?}: {e}"));
        assert_eq!(file.rule_count(), 1, "{rest:?}");
        assert_eq!(file.warnings().len(), 1, "{rest:?}");
        assert!(
            file.warnings()[0].starts_with(&format!("r.yml:{line}: multiple document")),
            "{:?}",
            file.warnings()
        );
    }
}

#[test]
fn anchors_aliases_and_merge_keys() {
    // The shape of upstream's model/rulefmt/testdata/test_aliases.yaml.
    let src = "\
groups:
- name: g
  rules:
  - &high
    alert: &name HighAlert
    expr: &expr sum(rate(errors_total[5m]))
    for: 5m
    labels:
      severity: &sev critical
  - record: new_metric
    expr: *expr
  - alert: *name
    expr: *expr
    labels:
      severity: *sev
  - <<: *high
    alert: HighAlert2
";
    let file = parse(src).unwrap();
    let rules = &file.groups[0].value.rules;
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[1].value.expr, "sum(rate(errors_total[5m]))");
    assert_eq!(rules[2].value.alert, "HighAlert");
    assert_eq!(rules[3].value.alert, "HighAlert2");
    assert_eq!(rules[3].value.r#for, Duration::from_secs(300));
    assert_eq!(rules[3].value.labels["severity"], "critical");
}

#[test]
fn duplicates_follow_promtool() {
    let src = "\
groups:
- name: a
  labels: {team: x}
  rules:
  - record: r
    expr: up
  - record: r
    expr: up
    labels: {team: y}
  - alert: A
    expr: up
- name: b
  rules:
  - record: r
    expr: up
    labels: {team: x}
  - record: r
    expr: up
  - alert: A
    expr: down
  - alert: A
    expr: down
";
    let file = parse(src).unwrap();
    // r{team="x"} twice (from a group label, then from a rule label in another group) and A{}
    // twice in group b; group a's A carries team="x", and r{} and r{team="y"} are unique.
    assert_eq!(
        file.duplicate_rules(),
        vec![
            "Metric: A\nLabel(s):".to_owned(),
            "Metric: r\nLabel(s):\n\tteam: x".to_owned()
        ]
    );
}

#[test]
fn checkers_see_expressions_and_alert_templates() {
    let src = "\
groups:
- name: g
  rules:
  - record: r
    expr: BAD
    labels:
      l: '{{ BAD }}'
  - alert: A
    expr: up
    labels:
      l: '{{ BAD }}'
    annotations:
      a: fine
";
    let file = parse(src).unwrap();
    let reject = |s: &str| {
        if s.contains("BAD") {
            Err(format!("rejected {s:?}"))
        } else {
            Ok(())
        }
    };
    let err = file.validate_with(reject, reject).unwrap_err();
    let text = err.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_error_at(
        "expr",
        &err,
        4,
        "group \"g\", rule 1, \"r\": could not parse expression: rejected \"BAD\"",
    );
    // Recording rule labels are not templates; alerting rule labels are.
    assert_error_at("label", &err, 8, "rule 2, \"A\": label \"l\": rejected \"{{ BAD }}\"");
    file.validate_with(|_| Ok(()), |_| Ok(())).unwrap();
}

#[test]
fn load_names_the_missing_file() {
    let err = RuleFile::load(Path::new("/nonexistent/rules.yml")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().starts_with("/nonexistent/rules.yml: "), "{err}");
}
