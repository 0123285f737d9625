//! Rule files: groups of recording and alerting rules (upstream `model/rulefmt`).
//!
//! [`RuleFile::parse`] does what `rulefmt.Parse` does short of parsing PromQL and templates:
//! strict YAML, then the structural checks (group names, record or alert, expr present, fields
//! that only alerting rules may have, label and annotation names). Expressions and templates
//! are checked by [`RuleFile::validate_with`], to which the caller hands the PromQL parser and
//! the template engine, which live in crates this one must not depend on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use watchfire_model::{Duration, is_valid_label_name, is_valid_metric_name};

use crate::error::{Error, Result};
use crate::yaml::{self, Location, Spanned};

/// The label that holds a series' metric name; rules may not set it.
const METRIC_NAME_LABEL: &str = "__name__";

/// A rule file: a list of rule groups.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rule groups, each evaluated on its own schedule.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<Spanned<RuleGroup>>,
    /// The file this was read from, for error messages.
    #[serde(skip)]
    path: PathBuf,
    /// Problems that upstream only logs.
    #[serde(skip)]
    warnings: Vec<String>,
}

/// A group of rules evaluated one after the other, at the same timestamp.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// The group's name, unique within its file.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// How often the group is evaluated; the global `evaluation_interval` when unset or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How far in the past the rules query; the global `rule_query_offset` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_offset: Option<Duration>,
    /// The most series a recording rule, or alerts an alerting rule, may produce per
    /// evaluation before the evaluation fails; 0 (or less) means no limit.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub limit: i64,
    /// The rules, in evaluation order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rules: Vec<Spanned<Rule>>,
    /// Labels added to the output of every rule in the group; a rule's own labels win.
    #[serde(default, deserialize_with = "string_map", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A recording rule (`record` set) or an alerting rule (`alert` set).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The metric name a recording rule writes its result to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub record: String,
    /// The name of the alert an alerting rule fires.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub alert: String,
    /// The PromQL expression to evaluate.
    #[serde(default, deserialize_with = "null_as_default")]
    pub expr: String,
    /// Alerting rules: how long a series must keep being returned before its alert fires
    /// (pending until then).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_duration"
    )]
    pub r#for: Duration,
    /// Alerting rules: how long an alert keeps firing after its series is no longer returned.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_duration"
    )]
    pub keep_firing_for: Duration,
    /// Labels to add or override; for alerting rules the values are templates.
    #[serde(default, deserialize_with = "string_map", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Alerting rules: informational labels (summary, description, ...); values are templates.
    #[serde(default, deserialize_with = "string_map", skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The rule's name: the alert name for alerting rules, the record name otherwise.
    pub fn name(&self) -> &str {
        if self.alert.is_empty() {
            &self.record
        } else {
            &self.alert
        }
    }

    /// Whether this is an alerting rule.
    pub fn is_alerting(&self) -> bool {
        !self.alert.is_empty()
    }

    /// Structural checks, as `rulefmt` `Rule.Validate` short of PromQL and templates.
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.record.is_empty() && !self.alert.is_empty() {
            problems.push("only one of 'record' and 'alert' must be set".to_owned());
        }
        if self.record.is_empty() && self.alert.is_empty() {
            problems.push("one of 'record' or 'alert' must be set".to_owned());
        }
        if self.expr.is_empty() {
            problems.push("field 'expr' must be set in rule".to_owned());
        }
        if !self.record.is_empty() {
            if !self.annotations.is_empty() {
                problems.push("invalid field 'annotations' in recording rule".to_owned());
            }
            if !self.r#for.is_zero() {
                problems.push("invalid field 'for' in recording rule".to_owned());
            }
            if !self.keep_firing_for.is_zero() {
                problems.push("invalid field 'keep_firing_for' in recording rule".to_owned());
            }
            if !is_valid_metric_name(&self.record) {
                problems.push(format!("invalid recording rule name: {}", self.record));
            }
            // Any UTF-8 name is valid, but braces almost always mean a selector was pasted
            // into `record`; upstream refuses them for that reason.
            if self.record.contains(['{', '}']) {
                problems.push(format!(
                    "braces present in the recording rule name; should it be in expr?: {}",
                    self.record
                ));
            }
        }
        // Upstream also checks that label values are valid UTF-8, which Rust strings are.
        for name in self.labels.keys() {
            if !is_valid_label_name(name) || name == METRIC_NAME_LABEL {
                problems.push(format!("invalid label name: {name}"));
            }
        }
        for name in self.annotations.keys() {
            if !is_valid_label_name(name) {
                problems.push(format!("invalid annotation name: {name}"));
            }
        }
        problems
    }
}

impl RuleFile {
    /// Reads and checks a rule file.
    pub fn load(path: &Path) -> Result<RuleFile> {
        let src = yaml::read_file(path)?;
        RuleFile::parse(&src, path)
    }

    /// Parses and checks the contents of a rule file; `path` is used in error messages. Every
    /// structural problem is reported, not just the first.
    pub fn parse(src: &str, path: &Path) -> Result<RuleFile> {
        let (first, rest_line) = first_document(src);
        let mut file: RuleFile = yaml::from_str(first, path)?;
        file.path = path.to_path_buf();
        if let Some(line) = rest_line {
            file.warnings.push(format!(
                "{}:{line}: multiple document YAML rule files are not supported, only the first document is used",
                path.display()
            ));
        }
        for group in &mut file.groups {
            // Upstream's interval is a plain duration whose zero value means "unset".
            if group.value.interval.is_some_and(Duration::is_zero) {
                group.value.interval = None;
            }
        }
        file.check()?;
        Ok(file)
    }

    /// The file the rules were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What upstream logs as a warning while loading the file (a second YAML document).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The number of rules in all groups, as `promtool check rules` reports it.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.value.rules.len()).sum()
    }

    /// The checks that need the PromQL parser and the template engine, which live outside
    /// this crate. `check_expr` gets every rule's expression; `check_template` gets the values
    /// of every alerting rule's labels and annotations (upstream parses them with the
    /// `$labels`, `$externalLabels`, `$externalURL` and `$value` definitions prepended, so the
    /// checker should do the same). Every failure is reported with its group, rule and line.
    pub fn validate_with(
        &self,
        check_expr: impl Fn(&str) -> std::result::Result<(), String>,
        check_template: impl Fn(&str) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let mut errors = Vec::new();
        for group in &self.groups {
            for (index, rule) in group.value.rules.iter().enumerate() {
                let mut problems = Vec::new();
                if !rule.value.expr.is_empty()
                    && let Err(e) = check_expr(&rule.value.expr)
                {
                    problems.push(format!("could not parse expression: {e}"));
                }
                if rule.value.is_alerting() {
                    for (name, text) in &rule.value.labels {
                        if let Err(e) = check_template(text) {
                            problems.push(format!("label {name:?}: {e}"));
                        }
                    }
                    for (name, text) in &rule.value.annotations {
                        if let Err(e) = check_template(text) {
                            problems.push(format!("annotation {name:?}: {e}"));
                        }
                    }
                }
                errors.extend(rule_errors(&group.value.name, index, rule, problems));
            }
        }
        Error::from_list(errors).map_err(|e| e.in_file(&self.path))
    }

    /// Rules that write the same series: the same record (or alert) name with the same labels
    /// (group labels overridden by rule labels), anywhere in the file, as promtool's
    /// `checkDuplicates` finds them. Each duplicate is reported once, in promtool's form
    /// (`Metric: <name>` then `Label(s):` and one tab-indented `name: value` line per label),
    /// sorted by name and labels; promtool prints them after "N duplicate rule(s) found." and
    /// ends with "Might cause inconsistency while recording expressions".
    pub fn duplicate_rules(&self) -> Vec<String> {
        let mut keys: Vec<(&str, BTreeMap<&str, &str>)> = Vec::new();
        for group in &self.groups {
            for rule in &group.value.rules {
                let mut labels: BTreeMap<&str, &str> = group
                    .value
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                labels.extend(rule.value.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                keys.push((rule.value.name(), labels));
            }
        }
        keys.sort();
        let mut duplicates = Vec::new();
        let mut last_reported: Option<usize> = None;
        for i in 1..keys.len() {
            if keys[i] == keys[i - 1] && last_reported.is_none_or(|j| keys[j] != keys[i]) {
                duplicates.push(i);
                last_reported = Some(i);
            }
        }
        duplicates
            .into_iter()
            .map(|i| {
                let (name, labels) = &keys[i];
                let mut text = format!("Metric: {name}\nLabel(s):");
                for (k, v) in labels {
                    text.push_str(&format!("\n\t{k}: {v}"));
                }
                text
            })
            .collect()
    }

    /// The structural checks of upstream `RuleGroups.Validate`, all errors collected.
    fn check(&self) -> Result<()> {
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for group in &self.groups {
            let at = &group.referenced;
            let g = &group.value;
            if g.name.is_empty() {
                errors.push(Error::invalid("Groupname must not be empty").at(at));
            }
            if !seen.insert(g.name.as_str()) {
                errors.push(Error::invalid(format!("groupname: {:?} is repeated in the same file", g.name)).at(at));
            }
            for name in g.labels.keys() {
                if !is_valid_label_name(name) || name == METRIC_NAME_LABEL {
                    errors.push(
                        Error::invalid(format!("invalid label name: {name}"))
                            .context(format_args!("group {:?}", g.name))
                            .at(at),
                    );
                }
            }
            for (index, rule) in g.rules.iter().enumerate() {
                errors.extend(rule_errors(&g.name, index, rule, rule.value.check()));
            }
        }
        Error::from_list(errors).map_err(|e| e.in_file(&self.path))
    }
}

/// Errors for one rule, named as upstream names them: `group "g", rule 2, "name": problem`,
/// located at the rule.
fn rule_errors(group: &str, index: usize, rule: &Spanned<Rule>, problems: Vec<String>) -> Vec<Error> {
    let at: &Location = &rule.referenced;
    let ctx = format!("group {group:?}, rule {}, {:?}", index + 1, rule.value.name());
    problems
        .into_iter()
        .map(|p| Error::invalid(p).context(&ctx).at(at))
        .collect()
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_duration(d: &Duration) -> bool {
    d.is_zero()
}

/// The first YAML document of `src`, and the line where a further document starts, if any.
/// Upstream reads only the first document of a rule file and logs a warning about the rest.
/// A marker line (`---` or `...` at column 0) always ends a document in YAML, even inside a
/// scalar, so cutting the text there is exact; a `---` before any content starts the first
/// document rather than ending it.
fn first_document(src: &str) -> (&str, Option<usize>) {
    let mut offset = 0;
    let mut seen_content = false;
    for (index, line) in src.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = ["---", "..."].iter().any(|m| {
            bare.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        });
        if is_marker && seen_content {
            // After an explicit end (`...`), only more content makes a second document.
            let rest = &src[offset + line.len()..];
            let more = bare.starts_with("---")
                || rest
                    .lines()
                    .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            return (&src[..offset], more.then_some(index + 1));
        }
        let trimmed = bare.trim();
        if !is_marker && !trimmed.is_empty() && !trimmed.starts_with('#') && !bare.starts_with('%') {
            seen_content = true;
        }
        offset += line.len();
    }
    (src, None)
}

/// Serde helper: a string map whose values may be YAML `null` (read as empty strings, as Go
/// does), and which may itself be `null`.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?.unwrap_or_default();
    Ok(map.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

/// Serde helper: an explicit YAML `null` (`labels:` with nothing after it) reads as the
/// default value, as Go's YAML decoder leaves the zero value in place.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}
