//! `watchfire rules backtest` against a running server holding seeded history, and rule files
//! with a PromQL syntax error reported at their line and column (check, load, reload).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use watchfire_model::Labels;
use watchfire_rules::backtest::rfc3339;
use watchfire_storage::Appendable;

use crate::support::{Server, run, write};

const M: i64 = 60_000;

/// Two hours of one-minute samples ending an hour ago: `temp{room="a"}` is 1 from minute 30
/// to minute 59 and 0 otherwise, `temp{room="b"}` is always 0. Returns the first timestamp.
fn seed_store(dir: &Path) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3 * 3600 * 1000).div_euclid(M) * M;
    let db = watchfire_tsdb::Db::open(&dir.join("data"), watchfire_tsdb::Options::default()).unwrap();
    let mut app = db.appender();
    let a = Labels::from_pairs([("__name__", "temp"), ("room", "a")]);
    let b = Labels::from_pairs([("__name__", "temp"), ("room", "b")]);
    for m in 0..120 {
        let v = if (30..60).contains(&m) { 1.0 } else { 0.0 };
        app.append(None, &a, base + m * M, v).unwrap();
        app.append(None, &b, base + m * M, 0.0).unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
    base
}

const RULES: &str = r#"groups:
- name: e2e
  interval: 1m
  rules:
  - alert: RoomHot
    expr: temp > 0.5
    for: 5m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.room }} is hot"}
"#;

const BAD: &str = "groups:\n  - name: g\n    rules:\n      - alert: Plain\n        expr: up ==\n        for: 5m\n";

#[test]
fn backtest_replays_stored_history_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let base = seed_store(dir.path());
    let rules = write(dir.path(), "hot.yml", RULES);
    let server = Server::start(dir.path(), &[]);
    let url = format!("http://{}", server.addr);
    let (from, to) = ((base / 1000).to_string(), ((base + 119 * M) / 1000).to_string());
    let args = |output: &str| {
        vec![
            "rules".to_owned(),
            "backtest".to_owned(),
            format!("--url={url}"),
            format!("--from={from}"),
            format!("--to={to}"),
            "--step=1m".to_owned(),
            format!("--output={output}"),
            rules.display().to_string(),
        ]
    };
    let at = |m: i64| rfc3339(base + m * M);

    let a = args("table");
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("RoomHot{room=\"a\", severity=\"page\"}"))
        .unwrap_or_else(|| panic!("no episode row: {out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2..], [at(30), at(35), at(60), "25m".into(), "2".into()], "{out}");
    let summary = out.lines().find(|l| l.starts_with("RoomHot ")).unwrap();
    assert_eq!(
        summary.split_whitespace().collect::<Vec<_>>(),
        ["RoomHot", "e2e", "5m", "1", "1", "25m", "0", "0", "2", "0"],
        "{out}"
    );
    assert!(out.contains("120 evaluations"), "{out}");

    let a = args("json");
    let (code, out, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let alerts = report["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "room b never fires: {report}");
    assert_eq!(alerts[0]["annotations"]["summary"], "a is hot");
    assert_eq!(alerts[0]["file"], rules.display().to_string());
    let ep = &alerts[0]["episodes"][0];
    assert_eq!(
        (&ep["pendingAt"], &ep["firingAt"], &ep["resolvedAt"], &ep["end"]),
        (
            &Value::from(at(30)),
            &Value::from(at(35)),
            &Value::from(at(60)),
            &Value::from("resolved")
        )
    );
    assert_eq!(report["rules"][0]["notifications"], 2);

    // The same through the API with the rule text in a form field.
    let res = reqwest::blocking::Client::new()
        .post(format!("{url}/api/watchfire/rules/backtest"))
        .form(&[
            ("rules", RULES),
            ("from", from.as_str()),
            ("to", to.as_str()),
            ("step", "60"),
        ])
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().unwrap();
    assert_eq!(v["data"]["alerts"][0]["episodes"][0]["firingAt"], at(35));

    // A broken rule file is refused before the server is asked.
    let bad = write(dir.path(), "bad.yml", BAD);
    let (code, out, err) = run(&[
        "rules",
        "backtest",
        "--url=http://127.0.0.1:1",
        "--from=-1h",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}:5:20: group \"g\", rule 1, \"Plain\": could not parse expression: 1:6: parse error",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("the backtest was not run"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");
}

#[test]
fn expression_errors_carry_file_line_and_column_like_promtool_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yml", BAD);
    let (code, _, err) = run(&["check", "rules", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let ours = err
        .lines()
        .find(|l| l.contains("could not parse expression"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        ours.trim_start()
            .starts_with(&format!("{}:5:20: group \"g\", rule 1, \"Plain\"", bad.display())),
        "{err}"
    );

    // promtool reports the expression's start (5:15) and the position inside it (1:6); ours
    // is their sum, and the message after the position is the same.
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", bad.to_str().unwrap()])
        .output()
        .expect("promtool runs: `bash .ci/test` installs Debian's prometheus package");
    let theirs = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let theirs = theirs
        .lines()
        .find(|l| l.contains("could not parse expression"))
        .unwrap_or_else(|| panic!("{theirs}"));
    assert!(
        theirs.contains(" 5:15: group \"g\", rule 1, \"Plain\": could not parse expression: 1:6: parse error"),
        "{theirs}"
    );
    let tail = |l: &str| l[l.find("group ").unwrap()..].to_owned();
    assert_eq!(tail(ours), tail(theirs));

    // On reload the running rules stay and the error names the position.
    let rules = write(dir.path(), "rules.yml", RULES);
    let config = write(
        dir.path(),
        "prometheus.yml",
        &format!("rule_files: ['{}']\n", rules.display()),
    );
    let server = Server::start(
        dir.path(),
        &[&format!("--config.file={}", config.display()), "--web.enable-lifecycle"],
    );
    std::fs::write(&rules, BAD).unwrap();
    let res = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .post(format!("http://{}/-/reload", server.addr))
        .send()
        .unwrap();
    let body = res.text().unwrap();
    assert!(
        body.contains(&format!("{}:5:20: group \"g\"", rules.display())),
        "{body}"
    );
    let groups: Value = reqwest::blocking::get(format!("http://{}/api/v1/rules", server.addr))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(groups["data"]["groups"][0]["rules"][0]["name"], "RoomHot", "{groups}");
}
