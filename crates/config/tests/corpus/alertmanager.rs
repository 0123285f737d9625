//! alertmanager.yml: upstream's example files, hand-written bad files, the matcher grammars and
//! secret hiding.

use std::path::Path;

use watchfire_config::Error;
use watchfire_config::alertmanager::matchers::{
    self, AmMatcher, Mode, parse_matcher, parse_matchers, parse_matchers_with,
};
use watchfire_config::alertmanager::timeinterval::{Location, TimeRange};
use watchfire_config::alertmanager::{Config, GroupBy, RouteOpts};
use watchfire_model::{Duration, MatchType};

use crate::compat_dir;

fn parse(src: &str) -> Result<Config, Error> {
    Config::parse(src, Path::new("am.yml"))
}

fn load_compat(name: &str) -> Option<Config> {
    let path = compat_dir()?.join("alertmanager/config").join(name);
    Some(Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// Every error in `e`, flattened.
fn errors(e: &Error) -> Vec<&Error> {
    match e {
        Error::Many(list) => list.iter().flat_map(errors).collect(),
        other => vec![other],
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream's example files.

#[test]
fn every_upstream_example_parses() {
    let Some(dir) = compat_dir() else { return };
    let dir = dir.join("alertmanager/config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 5, "expected upstream's example files in {}", dir.display());
}

#[test]
fn conf_good_tree_receivers_and_inheritance() {
    let Some(c) = load_compat("conf.good.yml") else { return };
    let root = &c.route.value;
    assert_eq!(root.receiver_name(), Some("team-X-mails"));
    assert_eq!(
        root.grouping(),
        Some(GroupBy::Labels(vec![
            "alertname".into(),
            "cluster".into(),
            "service".into()
        ]))
    );
    assert_eq!(root.repeat_interval, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(root.routes.len(), 3);

    let first = &root.routes[0].value;
    assert_eq!(first.match_re.0["service"].as_str(), "^(foo1|foo2|baz)$");
    assert_eq!(first.routes[0].value.r#match["severity"], "critical");
    assert_eq!(first.routes[0].value.receiver_name(), Some("team-X-pager"));
    let db = &root.routes[2].value;
    assert_eq!(
        db.grouping(),
        Some(GroupBy::Labels(vec![
            "alertname".into(),
            "cluster".into(),
            "database".into()
        ]))
    );
    assert!(db.routes[0].value.r#continue && !db.routes[1].value.r#continue);

    // Effective settings: the child inherits the root's and overrides group_by.
    let root_opts = root.opts(&RouteOpts::default());
    assert_eq!(root_opts.group_wait, Duration::from_secs(30));
    let db_opts = db.opts(&root_opts);
    assert_eq!(db_opts.repeat_interval, Duration::from_secs(3 * 3600));
    assert_eq!(db_opts.receiver, "team-DB-pager");

    // Email inherits every SMTP setting from global.
    let mails = c.receiver("team-X-mails").unwrap();
    let email = &mails.email_configs[0].value;
    assert_eq!(email.to, "team-X+alerts@example.org");
    assert_eq!(email.from, "alertmanager@example.org");
    assert_eq!(email.smarthost.to_string(), "localhost:25");
    assert_eq!(email.hello, "host.example.org");
    assert_eq!(email.auth_username, "alertmanager");
    assert_eq!(email.auth_password.expose(), "multiline\nmysecret");
    assert_eq!(email.require_tls, Some(true));
    assert_eq!(email.html, r#"{{ template "email.default.html" . }}"#);
    assert!(!email.send_resolved);
    assert_eq!(mails.labels["name"], "team-X-mails");

    // HTTP integrations inherit global http_config and URLs.
    let pd = &c.receiver("team-X-pager").unwrap().pagerduty_configs[0].value;
    assert_eq!(pd.routing_key.expose(), "mysecret");
    assert_eq!(
        pd.url.as_ref().unwrap().as_str(),
        "https://events.pagerduty.com/v2/enqueue"
    );
    assert_eq!(
        pd.http_config.as_ref().unwrap().proxy_url.as_deref(),
        Some("http://127.0.0.1:1025")
    );
    assert_eq!(pd.source, pd.client, "source defaults to client");
    assert!(pd.details.contains_key("num_firing") && pd.send_resolved);
    let vo = &c.receiver("victorOps-receiver").unwrap().victorops_configs[0].value;
    assert_eq!(
        vo.api_url.as_ref().unwrap().as_str(),
        "https://alert.victorops.com/integrations/generic/20131114/alert/"
    );
    assert_eq!(vo.message_type, "CRITICAL");
    let og = &c.receiver("opsGenie-receiver").unwrap().opsgenie_configs[0].value;
    assert_eq!(og.api_url.as_ref().unwrap().as_str(), "https://api.opsgenie.com/");
    let slack = &c.receiver("slack-receiver").unwrap().slack_configs[0].value;
    assert_eq!(slack.api_url.as_ref().unwrap().expose(), "http://mysecret.example.com/");
    assert_eq!(slack.channel, "#my-channel");
    assert!(!slack.send_resolved);
    let po = &c.receiver("pushover-receiver").unwrap().pushover_configs[0].value;
    assert_eq!(
        (po.retry.to_string().as_str(), po.expire.to_string().as_str()),
        ("1m0s", "1h0m0s")
    );

    let rule = &c.inhibit_rules[0].value;
    assert_eq!(rule.source_match["severity"], "critical");
    assert_eq!(rule.equal, ["alertname", "cluster", "service"]);
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(300));
}

#[test]
fn conf_good_hides_its_thirteen_secrets() {
    // Upstream's TestHideConfigSecrets: the re-marshalled conf.good.yml shows 13 `<secret>`s.
    let Some(c) = load_compat("conf.good.yml") else { return };
    let out = serde_saphyr::to_string(&c).unwrap();
    assert_eq!(out.matches("<secret>").count(), 13, "{out}");
    assert!(!out.contains("mysecret"), "{out}");
}

#[test]
fn serialized_config_loads_again() {
    let Some(c) = load_compat("conf.good.yml") else { return };
    let out = serde_saphyr::to_string(&c).unwrap();
    let again = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(again.route.value.routes.len(), 3);
    assert_eq!(again.receivers.len(), c.receivers.len());
    assert_eq!(
        serde_saphyr::to_string(&again).unwrap(),
        out,
        "re-marshalling is stable"
    );
}

#[test]
fn empty_fields_stay_empty() {
    let Some(c) = load_compat("conf.empty-fields.yml") else {
        return;
    };
    assert_eq!(c.global.smtp_hello, "", "an explicit empty value is not defaulted");
    let email = &c.receivers[0].value.email_configs[0].value;
    assert_eq!((email.hello.as_str(), email.auth_username.as_str()), ("", ""));
    assert!(email.auth_password.is_empty());
    let child = &c.route.value.routes[0].value;
    let re = &child.match_re.0["service"];
    assert_eq!(re.anchored(), "^(?:^(foo1|foo2|baz)$)$");
    let m = &child.all_matchers()[0];
    assert!(m.matches("foo2") && !m.matches("foo3"));
}

#[test]
fn group_by_all_and_http_config_inheritance() {
    let Some(c) = load_compat("conf.group-by-all.yml") else {
        return;
    };
    assert_eq!(c.route.value.grouping(), Some(GroupBy::All));
    let Some(c) = load_compat("conf.http-config.good.yml") else {
        return;
    };
    assert!(!c.global.http_config.follow_redirects);
    let slack = &c.receivers[0].value.slack_configs[0].value;
    let http = slack.http_config.as_ref().unwrap();
    assert!(
        http.follow_redirects,
        "a receiver's own http_config does not inherit global fields"
    );
    assert_eq!(http.proxy_url.as_deref(), Some("foo"));
}

#[test]
fn simple_example_matchers_and_tracing() {
    let Some(c) = load_compat("simple.yml") else { return };
    let first = &c.route.value.routes[0].value;
    assert_eq!(first.matchers[0].to_string(), r#"service=~"foo1|foo2|baz""#);
    assert!(first.matchers[0].matches("baz"));
    let rule = &c.inhibit_rules[0].value;
    assert_eq!(rule.source_matchers[0].to_string(), r#"severity="critical""#);
    let tracing = &c.tracing.as_ref().unwrap().value;
    assert_eq!(
        (tracing.endpoint.as_str(), tracing.client_type.as_str()),
        ("localhost:4317", "grpc")
    );
    assert!(tracing.insecure);
    let pd = &c.receiver("team-X-pager").unwrap().pagerduty_configs[0].value;
    assert_eq!(pd.service_key.expose(), "<team-X-key>");
}

// ---------------------------------------------------------------------------------------------
// Hand-written configs.

const MIN: &str = "route:\n  receiver: a\nreceivers:\n- name: a\n";

#[test]
fn defaults_of_a_minimal_file() {
    let c = parse(MIN).unwrap();
    assert_eq!(c.route.value.group_wait, None, "inherited values stay unset");
    let opts = c.route.value.opts(&RouteOpts::default());
    assert_eq!(opts.group_wait, Duration::from_secs(30));
    assert_eq!(opts.group_interval, Duration::from_secs(300));
    assert_eq!(opts.repeat_interval, Duration::from_secs(4 * 3600));
    assert_eq!(opts.group_by, GroupBy::Labels(vec![]));
    let g = &c.global;
    assert_eq!(g.smtp_hello, "localhost");
    assert!(g.smtp_require_tls && g.http_config.follow_redirects);
    assert_eq!(
        g.telegram_api_url.as_ref().unwrap().as_str(),
        "https://api.telegram.org"
    );
    assert_eq!(
        g.slack_app_url.as_ref().unwrap().as_str(),
        "https://slack.com/api/chat.postMessage"
    );
}

#[test]
fn integration_defaults_and_global_fallbacks() {
    let src = r#"
global:
  telegram_bot_token: tok
  wechat_api_secret: ws
  wechat_api_corp_id: corp
  rocketchat_token: rt
  rocketchat_token_id: rid
  mattermost_webhook_url: https://mm.example.com/hooks/x
  jira_api_url: https://jira.example.com
  slack_app_token: xoxb
route:
  receiver: a
receivers:
- name: a
  webhook_configs: [{url: 'http://example.com/{{ .GroupLabels.x }}', timeout: 10s}]
  telegram_configs: [{chat_id: 42}]
  wechat_configs: [{}]
  rocketchat_configs: [{channel: '#c'}]
  mattermost_configs: [{channel: c}]
  jira_configs: [{project: P, issue_type: Bug, summary: {enable_update: false}, description: 'd'}]
  slack_configs: [{channel: '#x'}]
  discord_configs: [{webhook_url: 'https://discord.example.com/x'}]
  sns_configs: [{topic_arn: arn}]
  msteamsv2_configs: [{webhook_url: 'https://teams.example.com/x'}]
  webex_configs: [{room_id: r, http_config: {authorization: {credentials: t}}}]
  incidentio_configs: [{url: 'https://api.incident.io/x', alert_source_token: t}]
"#;
    let c = parse(src).unwrap();
    let r = &c.receivers[0].value;
    assert_eq!(r.integration_count(), 12);
    let wh = &r.webhook_configs[0].value;
    assert!(wh.send_resolved && wh.http_config.is_some());
    assert_eq!(wh.timeout.to_string(), "10s");
    let tg = &r.telegram_configs[0].value;
    assert_eq!((tg.bot_token.expose(), tg.parse_mode.as_str()), ("tok", "HTML"));
    let wc = &r.wechat_configs[0].value;
    assert_eq!((wc.corp_id.as_str(), wc.message_type.as_str()), ("corp", "text"));
    assert_eq!(
        wc.api_url.as_ref().unwrap().as_str(),
        "https://qyapi.weixin.qq.com/cgi-bin/"
    );
    let rc = &r.rocketchat_configs[0].value;
    assert_eq!(rc.token.as_ref().unwrap().expose(), "rt");
    assert!(!rc.send_resolved);
    let mm = &r.mattermost_configs[0].value;
    assert_eq!(
        mm.webhook_url.as_ref().unwrap().expose(),
        "https://mm.example.com/hooks/x"
    );
    let jira = &r.jira_configs[0].value;
    assert_eq!(jira.summary.template, r#"{{ template "jira.default.summary" . }}"#);
    assert!(!jira.summary.enable_update() && jira.description.enable_update());
    assert_eq!(
        (jira.description.template.as_str(), jira.api_type.as_str()),
        ("d", "auto")
    );
    assert_eq!(jira.api_url.as_ref().unwrap().as_str(), "https://jira.example.com");
    // A global app token turns into a bearer token posting to the app URL.
    let slack = &r.slack_configs[0].value;
    let auth = slack.http_config.as_ref().unwrap().authorization.as_ref().unwrap();
    assert_eq!(
        (auth.kind.as_str(), auth.credentials.as_ref().unwrap().expose()),
        ("Bearer", "xoxb")
    );
    assert_eq!(
        slack.api_url.as_ref().unwrap().expose(),
        "https://slack.com/api/chat.postMessage"
    );
    assert_eq!(
        r.discord_configs[0].value.title,
        r#"{{ template "discord.default.title" . }}"#
    );
    assert_eq!(
        r.sns_configs[0].value.subject,
        r#"{{ template "sns.default.subject" . }}"#
    );
    assert!(r.msteamsv2_configs[0].value.http_config.is_some());
    assert_eq!(
        r.webex_configs[0].value.api_url.as_ref().unwrap().as_str(),
        "https://webexapis.com/v1/messages"
    );
    assert_eq!(r.incidentio_configs[0].value.max_alerts, 0);
}

#[test]
fn smtp_password_fallback_takes_the_pair() {
    // Upstream's conf.smtp-password-global-and-local.yml, in short.
    let src = r#"
global:
  smtp_smarthost: 'localhost:25'
  smtp_from: 'am@example.org'
  smtp_auth_password_file: /tmp/globalpassword
  smtp_auth_secret_file: /tmp/globalsecret
route: {receiver: a}
receivers:
- name: a
  email_configs:
  - to: one@example.org
  - to: two@example.org
    auth_password: mysecret
    auth_secret: myprecious
"#;
    let c = parse(src).unwrap();
    let e = &c.receivers[0].value.email_configs;
    assert_eq!(e[0].value.auth_password_file, "/tmp/globalpassword");
    assert_eq!(e[0].value.auth_secret_file, "/tmp/globalsecret");
    assert_eq!(e[1].value.auth_password.expose(), "mysecret");
    assert!(e[1].value.auth_password_file.is_empty() && e[1].value.auth_secret_file.is_empty());
}

#[test]
fn time_intervals_are_structured() {
    let src = r#"
route:
  receiver: a
  routes:
  - receiver: a
    mute_time_intervals: [offhours]
    active_time_intervals: [legacy]
receivers:
- name: a
mute_time_intervals:
- name: legacy
  time_intervals: [{}]
time_intervals:
- name: offhours
  time_intervals:
  - times:
    - {start_time: '17:00', end_time: '24:00'}
    weekdays: ['Monday:friday', sunday]
    days_of_month: ['1:5', '-3:-1', 7]
    months: ['may:august', 12]
    years: ['2020:2022']
    location: Europe/Berlin
"#;
    let c = parse(src).unwrap();
    let ti = &c.time_intervals[0].value.time_intervals[0];
    assert_eq!(
        ti.times.as_deref(),
        Some(
            &[TimeRange {
                start_minute: 17 * 60,
                end_minute: 24 * 60
            }][..]
        )
    );
    let w = ti.weekdays.as_ref().unwrap();
    assert_eq!((w[0].begin, w[0].end, w[1].begin), (1, 5, 0));
    let d = ti.days_of_month.as_ref().unwrap();
    assert_eq!((d[1].begin, d[1].end, d[2].begin), (-3, -1, 7));
    let m = ti.months.as_ref().unwrap();
    assert_eq!((m[0].begin, m[0].end, m[1].begin), (5, 8, 12));
    assert_eq!(ti.years.as_ref().unwrap()[0].end, 2022);
    assert_eq!(ti.location.as_ref().map(Location::name), Some("Europe/Berlin"));
    let legacy = &c.mute_time_intervals[0].value.time_intervals[0];
    assert!(
        legacy.times.is_none() && legacy.weekdays.is_none(),
        "an empty spec matches always"
    );
    assert_eq!(c.named_time_intervals().count(), 2);
    let child = &c.route.value.routes[0].value;
    assert_eq!(child.mute_time_interval_names().collect::<Vec<_>>(), ["offhours"]);
    let out = serde_saphyr::to_string(&c).unwrap();
    assert!(
        out.contains("monday:friday") && out.contains("'17:00'") || out.contains("\"17:00\""),
        "{out}"
    );
    parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
}

#[test]
fn yaml_anchors_merge_keys_and_null_sections() {
    let src = r#"
global:
route:
  receiver: a
  routes:
receivers:
- name: a
  email_configs:
  - to: x@example.org
    smarthost: mail:25
    from: am@example.org
    auth_username:
  slack_configs:
  - &slack
    api_url: https://hooks.slack.com/x
    channel: '#one'
  - <<: *slack
    channel: '#two'
inhibit_rules:
templates:
time_intervals:
"#;
    let c = parse(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.global.smtp_hello, "localhost",
        "a null global block means the defaults"
    );
    let slack = &c.receivers[0].value.slack_configs;
    assert_eq!(
        (slack[0].value.channel.as_str(), slack[1].value.channel.as_str()),
        ("#one", "#two")
    );
    assert_eq!(
        slack[1].value.api_url.as_ref().unwrap().expose(),
        "https://hooks.slack.com/x"
    );
    assert!(c.route.value.routes.is_empty() && c.inhibit_rules.is_empty() && c.templates.is_empty());
}

#[test]
fn empty_inhibit_rule_item_is_allowed() {
    // Upstream's acceptance test TestEmptyInhibitionRule.
    let c = parse(&format!("{MIN}inhibit_rules:\n-\n")).unwrap();
    assert_eq!(c.inhibit_rules.len(), 1);
    assert!(c.inhibit_rules[0].value.all_source_matchers().is_empty());
}

#[test]
fn template_paths_are_relative_to_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["b.tmpl", "a.tmpl", "skip.txt"] {
        std::fs::write(dir.path().join(f), "{{ define \"x\" }}{{ end }}").unwrap();
    }
    let c = parse(&format!(
        "{MIN}templates: ['*.tmpl', 'missing/*.tmpl', '/nonexistent/x.tmpl']\n"
    ))
    .unwrap();
    let paths = c.template_paths(dir.path()).unwrap();
    let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(names, ["a.tmpl", "b.tmpl"]);
    assert!(paths.iter().all(|p| p.starts_with(dir.path())));
}

/// A bad config: (what, yaml, expected message fragment, expected line).
const BAD: &[(&str, &str, &str, Option<u64>)] = &[
    (
        "unknown key",
        "route:\n  receiver: a\n  bogus: 1\nreceivers:\n- name: a\n",
        "unknown field `bogus`",
        Some(3),
    ),
    (
        "duplicate key",
        "route:\n  receiver: a\n  receiver: b\n",
        "duplicate mapping key",
        Some(3),
    ),
    ("empty file", "# nothing\n", "no route provided in config", None),
    (
        "missing root receiver",
        "route:\n  group_by: [a]\nreceivers:\n- name: a\n",
        "root route must specify a default receiver",
        Some(2),
    ),
    (
        "undefined receiver",
        "route:\n  receiver: a\n  routes:\n  - matchers: [x=\"y\"]\n    receiver: nope\nreceivers:\n- name: a\n",
        "undefined receiver \"nope\" used in route",
        Some(5),
    ),
    (
        "duplicate receiver",
        "route:\n  receiver: a\nreceivers:\n- name: a\n- name: a\n",
        "notification config name \"a\" is not unique",
        Some(5),
    ),
    (
        "receiver without name",
        "route:\n  receiver: a\nreceivers:\n- name: a\n- email_configs: []\n",
        "missing name in receiver",
        Some(5),
    ),
    (
        "receiver name label",
        "route:\n  receiver: a\nreceivers:\n- name: a\n  labels: {name: b}\n",
        "receiver label \"name\" must match receiver name \"a\", got \"b\"",
        Some(4),
    ),
    (
        "root route with matchers",
        "route:\n  receiver: a\n  matchers: [x=\"y\"]\nreceivers:\n- name: a\n",
        "root route must not have any matchers",
        Some(2),
    ),
    (
        "root route with continue",
        "route:\n  receiver: a\n  continue: true\nreceivers:\n- name: a\n",
        "cannot have continue in root route",
        Some(2),
    ),
    (
        "root route with mute intervals",
        "route:\n  receiver: a\n  mute_time_intervals: [t]\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n",
        "root route must not have any mute time intervals",
        Some(2),
    ),
    (
        "group_by mixing ...",
        "route:\n  receiver: a\n  group_by: ['...', alertname]\nreceivers:\n- name: a\n",
        "cannot have wildcard group_by (`...`) and other labels at the same time",
        Some(3),
    ),
    (
        "group_by duplicate",
        "route:\n  receiver: a\n  group_by: [a, b, a]\nreceivers:\n- name: a\n",
        "duplicated label \"a\" in group_by",
        Some(3),
    ),
    (
        "group_interval zero",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    group_interval: 0s\nreceivers:\n- name: a\n",
        "group_interval cannot be zero",
        Some(4),
    ),
    (
        "repeat_interval zero",
        "route:\n  receiver: a\n  repeat_interval: 0\nreceivers:\n- name: a\n",
        "repeat_interval cannot be zero",
        Some(2),
    ),
    (
        "bad duration",
        "route:\n  receiver: a\n  group_wait: 5x\n",
        "not a valid duration string",
        Some(3),
    ),
    (
        "bad matcher syntax",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    matchers: ['foo!bar']\nreceivers:\n- name: a\n",
        "bad matcher format: foo!bar",
        Some(5),
    ),
    (
        "bad matcher regex",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    matchers: ['foo=~\"(bar\"']\nreceivers:\n- name: a\n",
        "error parsing regexp",
        Some(5),
    ),
    (
        "bad match_re regex",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    match_re:\n      foo: '[a-'\nreceivers:\n- name: a\n",
        "error parsing regexp",
        Some(6),
    ),
    (
        "null match_re value",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    match_re:\n      invalid_label:\nreceivers:\n- name: a\n",
        "invalid regexp value for \"invalid_label\"",
        Some(6),
    ),
    (
        "bad match label name",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    match:\n      0bad: x\nreceivers:\n- name: a\n",
        "invalid label name \"0bad\"",
        Some(6),
    ),
    (
        "null source_match_re value",
        "route: {receiver: a}\nreceivers:\n- name: a\ninhibit_rules:\n- source_match_re:\n    invalid_source_label:\n",
        "invalid regexp value for \"invalid_source_label\"",
        Some(6),
    ),
    (
        "bad inhibit matcher",
        "route: {receiver: a}\nreceivers:\n- name: a\ninhibit_rules:\n- target_matchers: ['a=\"b']\n",
        "matcher value contains unescaped double quote",
        Some(5),
    ),
    (
        "global password and password_file",
        "global:\n  smtp_smarthost: 'h:25'\n  smtp_auth_password: x\n  smtp_auth_password_file: /f\nroute: {receiver: a}\nreceivers:\n- name: a\n",
        "at most one of smtp_auth_password & smtp_auth_password_file must be configured",
        Some(2),
    ),
    (
        "receiver password and password_file",
        "global: {smtp_smarthost: 'h:25', smtp_from: f@x}\nroute: {receiver: a}\nreceivers:\n- name: a\n  email_configs:\n  - to: t@x\n    auth_password: x\n    auth_password_file: /f\n",
        "at most one of auth_password & auth_password_file must be configured",
        Some(6),
    ),
    (
        "no global smarthost",
        "route:\n  receiver: a\nreceivers:\n- name: a\n  email_configs:\n  - to: x@example.org\n",
        "no global SMTP smarthost set",
        Some(6),
    ),
    (
        "no global from",
        "global: {smtp_smarthost: 'localhost:25'}\nroute:\n  receiver: a\nreceivers:\n- name: a\n  email_configs:\n  - to: x@example.org\n",
        "no global SMTP from set",
        Some(7),
    ),
    (
        "email without to",
        "route: {receiver: a}\nreceivers:\n- name: a\n  email_configs:\n  - from: x@example.org\n",
        "missing to address in email config",
        Some(5),
    ),
    (
        "smarthost without port",
        "global:\n  smtp_smarthost: localhost\n",
        "missing port in address",
        Some(2),
    ),
    (
        "time range end before start",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - times:\n    - {start_time: '10:00', end_time: '09:00'}\n",
        "start time cannot be equal or greater than end time",
        Some(8),
    ),
    (
        "bad timestamp",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - times:\n    - {start_time: '01:99', end_time: '23:59'}\n",
        "couldn't parse timestamp 01:99, invalid format",
        Some(8),
    ),
    (
        "bad weekday",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - weekdays: ['blurgsday:flurgsday']\n",
        "blurgsday is not a valid weekday",
        Some(7),
    ),
    (
        "weekdays reversed",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - weekdays: ['friday:monday']\n",
        "start day cannot be before end day",
        Some(7),
    ),
    (
        "day of month out of range",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - days_of_month: ['1:50']\n",
        "50 is not a valid day of the month: out of range",
        Some(7),
    ),
    (
        "day of month always empty",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - days_of_month: ['10:-25']\n",
        "end day -25 is always before start day 10",
        Some(7),
    ),
    (
        "months reversed",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - months: ['december:january']\n",
        "end month january is before start month december",
        Some(7),
    ),
    (
        "bad location",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- name: t\n  time_intervals:\n  - location: '../etc'\n",
        "unknown time zone ../etc",
        Some(7),
    ),
    (
        "time interval without name",
        "route: {receiver: a}\nreceivers:\n- name: a\ntime_intervals:\n- time_intervals: []\n",
        "missing name in time interval",
        Some(5),
    ),
    (
        "duplicate time interval across lists",
        "route: {receiver: a}\nreceivers:\n- name: a\nmute_time_intervals:\n- name: t\ntime_intervals:\n- name: t\n",
        "time interval \"t\" is not unique",
        Some(7),
    ),
    (
        "undefined mute time interval",
        "route:\n  receiver: a\n  routes:\n  - receiver: a\n    mute_time_intervals: [nope]\nreceivers:\n- name: a\n",
        "undefined time interval \"nope\" used in route",
        Some(5),
    ),
    (
        "webhook without url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - send_resolved: false\n",
        "one of url or url_file must be configured",
        Some(5),
    ),
    (
        "webhook url and url_file",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: http://x.example.com\n    url_file: /f\n",
        "at most one of url & url_file must be configured",
        Some(5),
    ),
    (
        "webhook bad url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: ftp://x.example.com\n",
        "invalid URL: unsupported scheme \"ftp\" for URL",
        Some(5),
    ),
    (
        "webhook bad template",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: 'http://x/{{ .Invalid'\n",
        "invalid template syntax",
        Some(5),
    ),
    (
        "null integration entry",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  -\n",
        "missing webhook config",
        Some(5),
    ),
    (
        "null slack entry without global url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  slack_configs:\n  -\n",
        "no Slack API URL nor App token set either inline or in a file",
        Some(5),
    ),
    (
        "slack api_url and api_url_file",
        "route: {receiver: a}\nreceivers:\n- name: a\n  slack_configs:\n  - api_url: https://hooks.slack.com/x\n    api_url_file: /f\n",
        "at most one of api_url & api_url_file must be configured",
        Some(5),
    ),
    (
        "slack update_message with a webhook",
        "route: {receiver: a}\nreceivers:\n- name: a\n  slack_configs:\n  - api_url: https://hooks.slack.com/x\n    update_message: true\n",
        "update_message can only be used with bot tokens",
        Some(5),
    ),
    (
        "slack action without text",
        "route: {receiver: a}\nreceivers:\n- name: a\n  slack_configs:\n  - api_url: https://hooks.slack.com/x\n    actions: [{type: button, url: 'http://x'}]\n",
        "missing text in Slack action configuration",
        Some(5),
    ),
    (
        "global slack token and url",
        "global:\n  slack_app_token: t\n  slack_api_url: https://hooks.slack.com/x\nroute: {receiver: a}\nreceivers:\n- name: a\n",
        "at most one of slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file must be configured",
        Some(2),
    ),
    (
        "pagerduty without key",
        "route: {receiver: a}\nreceivers:\n- name: a\n  pagerduty_configs:\n  - client: x\n",
        "missing service or routing key in PagerDuty config",
        Some(5),
    ),
    (
        "opsgenie old teams field",
        "global: {opsgenie_api_key: k}\nroute: {receiver: a}\nreceivers:\n- name: a\n  opsgenie_configs:\n  - teams: 'team-X'\n",
        "unknown field `teams`",
        Some(6),
    ),
    (
        "opsgenie bad responder type",
        "global: {opsgenie_api_key: k}\nroute: {receiver: a}\nreceivers:\n- name: a\n  opsgenie_configs:\n  - responders: [{name: n, type: group}]\n",
        "type does not match valid options",
        Some(6),
    ),
    (
        "opsgenie without key",
        "route: {receiver: a}\nreceivers:\n- name: a\n  opsgenie_configs:\n  - message: m\n",
        "no global OpsGenie API Key set either inline or in a file",
        Some(5),
    ),
    (
        "victorops without key",
        "route: {receiver: a}\nreceivers:\n- name: a\n  victorops_configs:\n  - routing_key: r\n",
        "no global VictorOps API Key set",
        Some(5),
    ),
    (
        "victorops reserved custom field",
        "route: {receiver: a}\nreceivers:\n- name: a\n  victorops_configs:\n  - routing_key: r\n    api_key: k\n    custom_fields: {entity_id: x}\n",
        "custom field entity_id which cannot be used",
        Some(5),
    ),
    (
        "telegram without token",
        "route: {receiver: a}\nreceivers:\n- name: a\n  telegram_configs:\n  - chat_id: 1\n",
        "missing bot_token or bot_token_file on telegram_config",
        Some(5),
    ),
    (
        "telegram bad parse_mode",
        "route: {receiver: a}\nreceivers:\n- name: a\n  telegram_configs:\n  - chat_id: 1\n    bot_token: t\n    parse_mode: bbcode\n",
        "unknown parse_mode on telegram_config",
        Some(5),
    ),
    (
        "wechat bad message type",
        "route: {receiver: a}\nreceivers:\n- name: a\n  wechat_configs:\n  - message_type: html\n",
        "weChat message type \"html\" does not match valid options",
        Some(5),
    ),
    (
        "rocketchat without token id",
        "route: {receiver: a}\nreceivers:\n- name: a\n  rocketchat_configs:\n  -\n",
        "no global Rocketchat TokenID set either inline or in a file",
        Some(5),
    ),
    (
        "pushover html and monospace",
        "route: {receiver: a}\nreceivers:\n- name: a\n  pushover_configs:\n  - {user_key: u, token: t, html: true, monospace: true}\n",
        "at most one of monospace & html must be configured",
        Some(5),
    ),
    (
        "sns without destination",
        "route: {receiver: a}\nreceivers:\n- name: a\n  sns_configs:\n  - subject: s\n",
        "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config",
        Some(5),
    ),
    (
        "webex without authorization",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webex_configs:\n  - room_id: r\n",
        "missing webex_configs.http_config.authorization",
        Some(5),
    ),
    (
        "discord without url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  discord_configs:\n  - title: t\n",
        "one of webhook_url or webhook_url_file must be configured",
        Some(5),
    ),
    (
        "jira without global url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  jira_configs:\n  - {project: P, issue_type: Bug}\n",
        "no global Jira Cloud URL set",
        Some(5),
    ),
    (
        "mattermost without url",
        "route: {receiver: a}\nreceivers:\n- name: a\n  mattermost_configs:\n  - channel: c\n",
        "missing webhook_url or webhook_url_file on mattermost_config",
        Some(5),
    ),
    (
        "incidentio http_config without credentials",
        "route: {receiver: a}\nreceivers:\n- name: a\n  incidentio_configs:\n  - url: https://x.example.com\n    http_config: {follow_redirects: true}\n",
        "at least one of alert_source_token, alert_source_token_file or http_config.authorization",
        Some(5),
    ),
    (
        "receiver http_config with two auth methods",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: http://x.example.com\n    http_config:\n      basic_auth: {username: u, password: p}\n      bearer_token: t\n",
        "at most one of basic_auth & bearer_token/bearer_token_file",
        Some(5),
    ),
    (
        "oauth2 is not supported",
        "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: http://x.example.com\n    http_config:\n      oauth2: {client_id: c, token_url: 'http://t'}\n",
        "not supported yet: oauth2",
        Some(7),
    ),
    (
        "event_recorder is not supported",
        "route: {receiver: a}\nreceivers:\n- name: a\nevent_recorder:\n  stdout_outputs: [{}]\n",
        "not supported yet: event_recorder",
        Some(5),
    ),
    (
        "tracing without endpoint",
        "route: {receiver: a}\nreceivers:\n- name: a\ntracing:\n  insecure: true\n",
        "tracing endpoint must be set",
        Some(5),
    ),
    (
        "inhibit equal with empty label",
        "route: {receiver: a}\nreceivers:\n- name: a\ninhibit_rules:\n- equal: ['']\n",
        "invalid label name \"\" in equal list",
        Some(5),
    ),
];

#[test]
fn bad_configs_fail_with_message_and_line() {
    for (what, src, fragment, line) in BAD {
        let err = match parse(src) {
            Ok(_) => panic!("{what}: accepted\n{src}"),
            Err(e) => e,
        };
        let all = errors(&err);
        let hit = all
            .iter()
            .find(|e| e.to_string().contains(fragment))
            .unwrap_or_else(|| panic!("{what}: no error contains {fragment:?}:\n{err}"));
        assert_eq!(hit.position().map(|p| p.line), *line, "{what}: wrong line in {hit}");
        assert!(
            hit.to_string().starts_with("am.yml"),
            "{what}: the file is named: {hit}"
        );
    }
}

#[test]
fn all_errors_are_reported_together() {
    let src = "route:\n  receiver: nope\n  group_interval: 0s\nreceivers:\n- name: a\n- name: a\n";
    let err = parse(src).unwrap_err();
    let text = err.to_string();
    for fragment in [
        "undefined receiver \"nope\"",
        "group_interval cannot be zero",
        "is not unique",
    ] {
        assert!(text.contains(fragment), "{fragment} missing from:\n{text}");
    }
    assert_eq!(errors(&err).len(), 3, "{text}");
}

// ---------------------------------------------------------------------------------------------
// Matchers.

/// A parsed matcher as (name, operator, value).
type Triple<'a> = (&'a str, MatchType, &'a str);

fn triple(m: &AmMatcher) -> Triple<'_> {
    (m.name.as_str(), m.kind, m.value.as_str())
}

#[test]
fn matcher_lists_parse() {
    use MatchType::*;
    let cases: &[(&str, &[Triple<'_>])] = &[
        ("", &[]),
        ("{}", &[]),
        ("foo=bar", &[("foo", Equal, "bar")]),
        ("{foo=bar}", &[("foo", Equal, "bar")]),
        ("{foo=bar,}", &[("foo", Equal, "bar")]),
        ("foo!=bar", &[("foo", NotEqual, "bar")]),
        ("foo=~[a-z]+", &[("foo", Regex, "[a-z]+")]),
        ("foo!~[a-z]+", &[("foo", NotRegex, "[a-z]+")]),
        (r#"{"foo"="bar"}"#, &[("foo", Equal, "bar")]),
        (r#"foo="bar""#, &[("foo", Equal, "bar")]),
        (r#"foo=~"\\d+""#, &[("foo", Regex, r"\d+")]),
        (r#"{foo="bar\n"}"#, &[("foo", Equal, "bar\n")]),
        (r#"{foo="\"bar\""}"#, &[("foo", Equal, "\"bar\"")]),
        (r#"{foo="bar\\"}"#, &[("foo", Equal, "bar\\")]),
        ("{foo=🙂}", &[("foo", Equal, "🙂")]),
        ("{foo=🙂bar}", &[("foo", Equal, "🙂bar")]),
        (r#"{"foo"="\U0001f642"}"#, &[("foo", Equal, "🙂")]),
        ("foo🙂=bar", &[("foo🙂", Equal, "bar")]),
        (r#"{"foo bar"="baz"}"#, &[("foo bar", Equal, "baz")]),
        ("{name-with-dashes = \"bar\"}", &[("name-with-dashes", Equal, "bar")]),
        ("{foo=bar,bar!=baz}", &[("foo", Equal, "bar"), ("bar", NotEqual, "baz")]),
        (
            "{foo = \"bar\", dings != \"bums\", }",
            &[("foo", Equal, "bar"), ("dings", NotEqual, "bums")],
        ),
        (
            r#"{foo="bar,quux", job="job1"}"#,
            &[("foo", Equal, "bar,quux"), ("job", Equal, "job1")],
        ),
        (r#"statuscode=~"5..""#, &[("statuscode", Regex, "5..")]),
        (r#"{foo=""}"#, &[("foo", Equal, "")]),
        (
            r#"{quote="She said: \"Hi, ladies! That's gender-neutral…\""}"#,
            &[("quote", Equal, "She said: \"Hi, ladies! That's gender-neutral…\"")],
        ),
        (
            r#"contains_quote != "\"" , contains_comma !~ "foo,bar" , "#,
            &[
                ("contains_quote", NotEqual, "\""),
                ("contains_comma", NotRegex, "foo,bar"),
            ],
        ),
        // Accepted by the classic grammar only: the fallback keeps these working.
        ("foo=", &[("foo", Equal, "")]),
        (
            "{foo=!bar,bar=$baz\\n}",
            &[("foo", Equal, "!bar"), ("bar", Equal, "$baz\n")],
        ),
        ("{foo=bar\\t}", &[("foo", Equal, "bar\\t")]),
        ("tricky=~~~", &[("tricky", Regex, "~~")]),
        ("{foo='}", &[("foo", Equal, "'")]),
        // Both accept these but disagree: the classic reading wins, as upstream.
        (r#"{foo="bar\t"}"#, &[("foo", Equal, r"bar\t")]),
        (r#"{foo="\xf0\x9f\x99\x82"}"#, &[("foo", Equal, r"\xf0\x9f\x99\x82")]),
    ];
    for (input, want) in cases {
        let got = parse_matchers(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let got: Vec<_> = got.iter().map(triple).collect();
        assert_eq!(got, *want, "{input:?}");
    }
}

#[test]
fn bad_matcher_lists_fail() {
    for (input, fragment) in [
        ("foo!bar", "bad matcher format: foo!bar"),
        ("{,}", "bad matcher format: "),
        ("job=\"value", "matcher value contains unescaped double quote: \"value"),
        ("job=value\"", "matcher value contains unescaped double quote: value\""),
        ("contains_unescaped_quote = foo\"bar", "unescaped double quote"),
        ("{foo=~\"invalid[regexp\"}", "error parsing regexp"),
        (r#""foo=\"bar""#, "bad matcher format"),
        ("{{foo=", "bad matcher format: {foo="),
        ("{invalid name = \"x\"}", "bad matcher format"),
    ] {
        let e = parse_matchers(input).unwrap_err();
        assert!(e.contains(fragment), "{input:?}: {e}");
    }
}

#[test]
fn utf8_grammar_errors_match_upstream() {
    for (input, want) in [
        (",", "0:1: unexpected ,: expected label name"),
        ("{,}", "1:2: unexpected ,: expected label name"),
        ("{", "0:1: end of input: expected close brace"),
        ("}", "0:1: }: expected opening brace"),
        ("foo=bar}", "0:8: }: expected opening brace"),
        ("{foo=bar", "0:8: end of input: expected close brace"),
        (
            "{foo=:\"bar\"}",
            "6:11: unexpected \"bar\": expected a comma or close brace",
        ),
        ("{foo=\"bar\\w\"}", "5:12: \"bar\\w\": invalid input"),
        ("{\"foo\"=~\"\\d+\"}", "8:13: \"\\d+\": invalid input"),
        (
            "{foo=bar\\n}",
            "8:9: \\: invalid input: expected a comma or close brace",
        ),
        ("{\"foo\"=\"\\xf0\\x9f\"}", "7:17: \"\\xf0\\x9f\": invalid input"),
        ("foo=", "end of input: expected label value"),
        ("{foo=\"bar}", "5:10: \"bar}: missing end \": expected label value"),
    ] {
        let e = parse_matchers_with(Mode::Utf8Strict, input).unwrap_err();
        assert_eq!(e, want, "{input:?}");
    }
    let tab = parse_matchers_with(Mode::Utf8Strict, r#"{foo="bar\t"}"#).unwrap();
    assert_eq!(tab[0].value, "bar\t", "Go escapes are decoded by the UTF-8 grammar");
    // Accepted by the UTF-8 grammar, refused by the classic one.
    assert!(parse_matchers_with(Mode::Classic, "foo🙂=bar").is_err());
    assert!(parse_matchers_with(Mode::Utf8Strict, "foo=!bar").is_err());
    assert_eq!(
        parse_matchers_with(Mode::Classic, "{foo=bar}}").unwrap()[0].value,
        "bar}"
    );
}

#[test]
fn single_matchers() {
    let m = parse_matcher("foo=\"bar\"").unwrap();
    assert_eq!(triple(&m), ("foo", MatchType::Equal, "bar"));
    assert!(
        parse_matcher("{foo=bar}")
            .unwrap_err()
            .contains("unexpected open or close brace")
    );
    assert_eq!(parse_matcher("foo🙂=bar").unwrap().name, "foo🙂");
    assert_eq!(parse_matcher("foo=!bar\\n").unwrap().value, "!bar\n");
    assert_eq!(
        matchers::parse_matcher_utf8("foo=bar,bar=baz").unwrap_err(),
        "expected 1 matcher, found 2"
    );
    assert_eq!(matchers::parse_matcher_utf8("").unwrap_err(), "no matchers");
}

#[test]
fn matchers_print_and_match_like_alertmanager() {
    let m = parse_matcher(r#"foo=~"a\\b""#).unwrap();
    assert_eq!(m.to_string(), r#"foo=~"a\\b""#);
    let m = AmMatcher::new(MatchType::Equal, "foo", "line\n\"q\"").unwrap();
    assert_eq!(m.to_string(), r#"foo="line\n\"q\"""#);
    let m = AmMatcher::new(MatchType::NotEqual, "foo bar", "x\ty").unwrap();
    assert_eq!(m.to_string(), r#""foo bar"!="x\ty""#);
    // Each printed matcher parses back to itself.
    for m in parse_matchers(r#"{a="1", "b c"=~"x|y", d!="\"", e!~"a\\.b"}"#).unwrap() {
        assert_eq!(parse_matcher(&m.to_string()).unwrap(), m, "{m}");
    }
    let re = AmMatcher::new(MatchType::Regex, "a", "foo|bar").unwrap();
    assert!(re.matches("foo") && !re.matches("foobar") && !re.matches("xfoo"));
    assert!(AmMatcher::new(MatchType::Regex, "a", ".*").unwrap().matches(""));
    assert!(!AmMatcher::new(MatchType::Regex, "a", "a.b").unwrap().matches("a\nb"));
    assert!(AmMatcher::new(MatchType::NotEqual, "a", "x").unwrap().matches(""));
    assert!(AmMatcher::new(MatchType::Regex, "a", "(").is_err());
}

#[test]
fn route_matchers_combine_sorted_with_legacy_maps() {
    let src = r#"
route:
  receiver: a
  routes:
  - receiver: a
    match: {zone: eu}
    match_re: {service: 'api|web'}
    matchers: ['severity="critical"', '{alpha!="x", alpha="x"}']
receivers:
- name: a
"#;
    let c = parse(src).unwrap();
    let child = &c.route.value.routes[0].value;
    let printed: Vec<String> = child.all_matchers().iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            r#"alpha="x""#,
            r#"alpha!="x""#,
            r#"service=~"^(?:api|web)$""#,
            r#"severity="critical""#,
            r#"zone="eu""#
        ]
    );
    assert_eq!(
        matchers::format_matchers(&child.matchers),
        r#"{alpha="x",alpha!="x",severity="critical"}"#
    );
    let svc = &child.all_matchers()[2];
    assert!(svc.matches("web") && !svc.matches("webx"));
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[test]
fn secrets_never_appear_when_serialized() {
    let src = r#"
global:
  smtp_smarthost: 'mail:25'
  smtp_from: am@example.org
  smtp_auth_password: S-global-smtp
  slack_api_url: https://hooks.slack.com/S-global-slack
  opsgenie_api_key: S-og
  victorops_api_key: S-vo
  wechat_api_secret: S-wechat
  wechat_api_corp_id: corp
  telegram_bot_token: S-tg
  rocketchat_token: S-rc
  rocketchat_token_id: S-rcid
  http_config:
    basic_auth: {username: u, password: S-basic}
route: {receiver: a}
receivers:
- name: a
  email_configs: [{to: t@example.org, auth_secret: S-cram}]
  webhook_configs: [{url: 'https://hook.example.com/S-webhook'}]
  slack_configs: [{channel: c}]
  pagerduty_configs: [{routing_key: S-pd}]
  pushover_configs: [{user_key: S-pu, token: S-pt}]
  opsgenie_configs: [{}]
  victorops_configs: [{routing_key: r}]
  wechat_configs: [{}]
  telegram_configs: [{chat_id: 1}]
  rocketchat_configs: [{}]
  discord_configs: [{webhook_url: 'https://discord.example.com/S-discord'}]
  msteams_configs: [{webhook_url: 'https://teams.example.com/S-teams'}]
  mattermost_configs: [{webhook_url: 'https://mm.example.com/S-mm'}]
  sns_configs: [{topic_arn: t, sigv4: {access_key: ak, secret_key: S-aws}}]
  incidentio_configs: [{url: 'https://api.incident.io/x', alert_source_token: S-iio}]
  webex_configs: [{room_id: r, http_config: {authorization: {credentials: S-webex}}}]
"#;
    let c = parse(src).unwrap();
    let out = serde_saphyr::to_string(&c).unwrap();
    assert!(!out.contains("S-"), "a secret leaked:\n{out}");
    assert!(out.matches("<secret>").count() >= 20, "{out}");
    let debug = format!("{c:?}");
    assert!(!debug.contains("S-"), "a secret leaked in Debug output");
    // The secrets are still there for the notifiers.
    let r = &c.receivers[0].value;
    assert_eq!(r.wechat_configs[0].value.api_secret.expose(), "S-wechat");
    assert!(r.webhook_configs[0].value.url.expose().ends_with("S-webhook"));
}
