//! Alertmanager's default notification templates parse completely.

use std::path::Path;

use watchfire_template::{FuncMap, Function, Param, Template, Value};

const DEFAULT_TMPL: &str = "/work/shared/compat/alertmanager/default.tmpl";

/// Alertmanager functions default.tmpl uses, minimally implemented for parsing and for
/// executing the templates below (the full set belongs to the notification templates).
fn alertmanager_funcs() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "toUpper",
        Function::new(&[Param::String], |a| {
            Ok(Value::from(a[0].as_str().unwrap_or_default().to_uppercase()))
        }),
    );
    m.insert(
        "join",
        Function::new(&[Param::String, Param::Any], |a| match &a[1] {
            Value::List(items) => {
                let parts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
                Ok(Value::from(parts.join(a[0].as_str().unwrap_or_default())))
            }
            other => Err(format!("cannot join {}", other.type_name())),
        }),
    );
    m
}

#[test]
fn default_tmpl_parses() {
    if !Path::new(DEFAULT_TMPL).exists() {
        eprintln!("skipping: {DEFAULT_TMPL} is not present in this checkout");
        return;
    }
    let text = std::fs::read_to_string(DEFAULT_TMPL).unwrap();
    let t = Template::new("default.tmpl")
        .funcs(alertmanager_funcs())
        .parse(&text)
        .unwrap();
    let defines = text.matches("define \"").count();
    // Every define, plus the file's own (whitespace-only) top-level template.
    assert_eq!(t.template_names().len(), defines + 1);
    for name in [
        "__subject",
        "__text_alert_list",
        "slack.default.title",
        "email.default.subject",
        "jira.default.priority",
        "msteamsv2.default.text",
    ]
    .iter()
    .filter(|n| text.contains(&format!("define \"{n}\"")))
    {
        assert!(t.has_template(name), "{name} missing");
    }

    // Templates needing only plain data render.
    assert_eq!(
        t.execute_template("__alertmanager", &Value::Nil).unwrap(),
        "Alertmanager"
    );
    let data = Value::map([
        ("Status", Value::from("firing")),
        ("ExternalURL", Value::from("http://am:9093")),
        ("Receiver", Value::from("team a")),
    ]);
    assert_eq!(t.execute_template("slack.default.color", &data).unwrap(), "danger");
    assert_eq!(
        t.execute_template("slack.default.titlelink", &data).unwrap(),
        "http://am:9093/#/alerts?receiver=team+a"
    );
    // The priority template trims all its whitespace; with no alerts it renders nothing.
    let no_alerts = Value::map([(
        "Alerts",
        Value::map([("Firing", Value::list([])), ("Resolved", Value::list([]))]),
    )]);
    assert_eq!(t.execute_template("jira.default.priority", &no_alerts).unwrap(), "");
    let critical = Value::map([(
        "Alerts",
        Value::map([
            (
                "Firing",
                Value::list([Value::map([("Labels", Value::string_map([("severity", "critical")]))])]),
            ),
            ("Resolved", Value::list([])),
        ]),
    )]);
    assert_eq!(t.execute_template("jira.default.priority", &critical).unwrap(), "High");
}
