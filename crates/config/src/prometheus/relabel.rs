//! Relabeling rules (`relabel_configs`, `metric_relabel_configs`, `write_relabel_configs`,
//! `alert_relabel_configs`): the types, upstream's validation rules
//! (model/relabel/relabel.go `Config.Validate`) and [`process`], which applies a list of rules
//! to a label set exactly as upstream's `ProcessBuilder` does.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::NameValidationScheme;
use super::checked::{Origin, present};
use crate::yaml::Spanned;
use watchfire_model::Labels;

/// What a relabeling rule does. Written in lower case; upstream also accepts any case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Sets `target_label` to `replacement` (with capture groups) if `regex` matches.
    #[default]
    Replace,
    /// Drops the target or sample unless `regex` matches.
    Keep,
    /// Drops the target or sample if `regex` matches.
    Drop,
    /// Drops unless the joined source values equal the value of `target_label`.
    KeepEqual,
    /// Drops if the joined source values equal the value of `target_label`.
    DropEqual,
    /// Sets `target_label` to a hash of the joined source values modulo `modulus`.
    HashMod,
    /// Copies labels whose names match `regex` to the names given by `replacement`.
    LabelMap,
    /// Removes labels whose names match `regex`.
    LabelDrop,
    /// Removes labels whose names do not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined source values in lower case.
    Lowercase,
    /// Sets `target_label` to the joined source values in upper case.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The action's name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name in any case.
    pub fn parse(s: &str) -> Option<Action> {
        let lower = s.to_ascii_lowercase();
        Action::ALL.into_iter().find(|a| a.as_str() == lower)
    }

    /// Whether the action writes `target_label` (and so requires it).
    fn needs_target(self) -> bool {
        matches!(
            self,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::parse(&s).ok_or_else(|| D::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

/// A relabeling regular expression: the text as written (for printing) and its compiled
/// form, anchored at both ends with `.` matching newlines, as Prometheus 3 compiles it.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    compiled: Regex,
}

/// The regex a rule gets when it sets none.
pub const DEFAULT_REGEX: &str = "(.*)";

impl RelabelRegex {
    /// Compiles `source` with Prometheus' anchoring.
    pub fn new(source: &str) -> Result<Self, watchfire_model::Error> {
        let compiled = watchfire_model::anchored_regex(source)?;
        Ok(RelabelRegex {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The expression as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled, anchored expression (for captures and replacement).
    pub fn regex(&self) -> &Regex {
        &self.compiled
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }

    /// Whether this is the default `(.*)`.
    pub fn is_default(&self) -> bool {
        self.source == DEFAULT_REGEX
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new(DEFAULT_REGEX).expect("the default relabel regex is a valid constant")
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl fmt::Display for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(|e| match e {
            // The regex crate's message spans several lines (the anchored pattern with a caret
            // under the problem); its last line names the problem.
            watchfire_model::Error::InvalidRegex { reason, .. } => {
                let problem = reason.lines().last().unwrap_or_default().trim_start_matches("error: ");
                D::Error::custom(format!("invalid regular expression {s:?}: {problem}"))
            }
            other => D::Error::custom(other),
        })
    }
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// Joins the source label values (default `;`).
    #[serde(skip_serializing_if = "is_default_separator")]
    pub separator: String,
    /// The label written by replace, hashmod, lowercase and uppercase, and compared by
    /// keepequal and dropequal.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    /// Matched against the joined source values, or label names for labelmap, labeldrop and
    /// labelkeep (default `(.*)`).
    #[serde(skip_serializing_if = "RelabelRegex::is_default")]
    pub regex: RelabelRegex,
    /// The modulus for hashmod.
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// The value written for replace and the name template for labelmap (default `$1`).
    #[serde(skip_serializing_if = "is_default_replacement")]
    pub replacement: String,
    /// What the rule does (default `replace`).
    pub action: Action,
    /// Where the rule was written.
    #[serde(skip)]
    pub origin: Origin,
}

fn is_default_separator(s: &str) -> bool {
    s == DEFAULT_SEPARATOR
}

fn is_default_replacement(s: &str) -> bool {
    s == DEFAULT_REPLACEMENT
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for RelabelConfig {
    /// The rule an empty mapping gives: replace with `(.*)`, `;` and `$1`.
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            target_label: String::new(),
            regex: RelabelRegex::default(),
            modulus: 0,
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: Action::Replace,
            origin: Origin::default(),
        }
    }
}

/// The rule as written, keeping apart what was left out, what was null and what was set,
/// since upstream's rules depend on it (a regex given explicitly, even as `(.*)`, is not
/// allowed with keepequal; `regex:` with no value is the empty regex).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    separator: Option<Option<String>>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default, deserialize_with = "present")]
    regex: Option<Option<RelabelRegex>>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    replacement: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    action: Option<Option<Action>>,
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Option<Written>>::deserialize(d)?;
        let origin = Origin(crate::error::Position::from_location(&spanned.referenced));
        let written = spanned
            .value
            .ok_or_else(|| D::Error::custom("empty or null relabeling rule"))?;
        RelabelConfig::from_written(written, origin).map_err(D::Error::custom)
    }
}

impl RelabelConfig {
    /// Applies the defaults and upstream's rules that do not depend on the name validation
    /// scheme, in upstream's order.
    fn from_written(w: Written, origin: Origin) -> Result<Self, String> {
        let action = match w.action {
            None => Action::Replace,
            Some(Some(action)) => action,
            Some(None) => return Err("relabel action cannot be empty".into()),
        };
        let regex_set = w.regex.is_some();
        let source_labels_set = w.source_labels.is_some();
        let rule = RelabelConfig {
            source_labels: w.source_labels.unwrap_or_default(),
            separator: w
                .separator
                .map_or_else(|| DEFAULT_SEPARATOR.to_owned(), Option::unwrap_or_default),
            target_label: w.target_label.unwrap_or_default(),
            regex: match w.regex {
                None => RelabelRegex::default(),
                Some(None) => RelabelRegex::new("").map_err(|e| e.to_string())?,
                Some(Some(r)) => r,
            },
            modulus: w.modulus.unwrap_or_default(),
            replacement: w
                .replacement
                .map_or_else(|| DEFAULT_REPLACEMENT.to_owned(), Option::unwrap_or_default),
            action,
            origin,
        };
        if let Some(name) = rule.source_labels.iter().find(|n| n.is_empty()) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        if action == Action::HashMod && rule.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if action.needs_target() && rule.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        let compares = matches!(action, Action::KeepEqual | Action::DropEqual);
        let cases = matches!(action, Action::Lowercase | Action::Uppercase);
        if (compares || cases) && rule.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if compares && (regex_set || rule.modulus != 0 || rule.separator != DEFAULT_SEPARATOR) {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (source_labels_set
                || !rule.target_label.is_empty()
                || rule.modulus != 0
                || rule.separator != DEFAULT_SEPARATOR
                || rule.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{action} action requires only 'regex', and no other fields"));
        }
        Ok(rule)
    }

    /// Upstream's rules that depend on the name validation scheme in force: the label names a
    /// rule writes must be valid under it.
    pub fn validate_names(&self, scheme: NameValidationScheme) -> Result<(), String> {
        let action = self.action;
        let target = self.target_label.as_str();
        let invalid = |what: &str, value: &str| format!("{value:?} is invalid '{what}' for {action} action");
        match action {
            Action::Replace if !has_template(target) && !scheme.is_valid_label_name(target) => {
                Err(invalid("target_label", target))
            }
            Action::Replace if has_template(target) && !is_valid_templated_name(scheme, target) => {
                Err(invalid("target_label", target))
            }
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual | Action::HashMod
                if !scheme.is_valid_label_name(target) =>
            {
                Err(invalid("target_label", target))
            }
            Action::LabelMap if !is_valid_templated_name(scheme, &self.replacement) => {
                Err(invalid("replacement", &self.replacement))
            }
            _ => Ok(()),
        }
    }
}

/// Whether a target label or replacement refers to capture groups.
fn has_template(s: &str) -> bool {
    s.contains('$')
}

/// Legacy label names with `$1`, `${name}` references allowed in them.
static LEGACY_TEMPLATED_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("constant regex is valid"));

/// A label name that may contain capture-group references, valid under `scheme`.
fn is_valid_templated_name(scheme: NameValidationScheme, name: &str) -> bool {
    match scheme {
        NameValidationScheme::Utf8 => scheme.is_valid_label_name(name),
        NameValidationScheme::Legacy => LEGACY_TEMPLATED_NAME.is_match(name),
    }
}

// ---------------------------------------------------------------------------------------------
// Applying rules

/// Applies `configs` in order to `labels`, as upstream's `relabel.Process` does, validating
/// target label names under Prometheus 3's default UTF-8 scheme. Returns `None` when a rule
/// drops the label set. An empty result (every label removed) is `Some` of the empty set;
/// callers decide what that means.
pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    process_with_scheme(labels, configs, NameValidationScheme::Utf8)
}

/// [`process`] with the name validation scheme of the job the rules belong to: a `replace`
/// whose expanded `target_label` is not a valid label name under `scheme` does nothing.
pub fn process_with_scheme(labels: &Labels, configs: &[RelabelConfig], scheme: NameValidationScheme) -> Option<Labels> {
    let mut work = Work::new(labels);
    for rule in configs {
        if !apply(rule, &mut work, scheme) {
            return None;
        }
    }
    Some(work.build())
}

impl RelabelConfig {
    /// [`process`] as an associated function, reachable as
    /// `watchfire_config::prometheus::RelabelConfig::process` while the module is private.
    pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
        process(labels, configs)
    }

    /// [`process_with_scheme`] as an associated function.
    pub fn process_with_scheme(
        labels: &Labels,
        configs: &[RelabelConfig],
        scheme: NameValidationScheme,
    ) -> Option<Labels> {
        process_with_scheme(labels, configs, scheme)
    }
}

/// The label set being relabeled. It mirrors Go's `labels.Builder` (the original labels plus
/// ordered additions and deletions) because the order in which `labelmap` visits labels
/// decides which source wins when two map to the same name: original labels in name order
/// first, then labels set by earlier rules in the order they were set.
struct Work<'a> {
    base: &'a Labels,
    add: Vec<(String, String)>,
    del: Vec<String>,
}

impl<'a> Work<'a> {
    fn new(base: &'a Labels) -> Self {
        Work {
            base,
            add: Vec::new(),
            del: Vec::new(),
        }
    }

    /// The current value of `name`; absent labels read as "".
    fn get(&self, name: &str) -> &str {
        if let Some((_, v)) = self.add.iter().find(|(n, _)| n == name) {
            return v;
        }
        if self.del.iter().any(|n| n == name) {
            return "";
        }
        self.base.get(name).unwrap_or("")
    }

    /// Sets `name`; an empty value deletes it, as an empty label is an absent one.
    fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.del(name);
            return;
        }
        match self.add.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => value.clone_into(&mut entry.1),
            None => self.add.push((name.to_owned(), value.to_owned())),
        }
    }

    fn del(&mut self, name: &str) {
        self.add.retain(|(n, _)| n != name);
        self.del.push(name.to_owned());
    }

    /// The current labels in upstream's `Builder.Range` order, copied so rules may change the
    /// set while walking it.
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .base
            .iter()
            .filter(|l| !self.del.iter().any(|n| n == l.name) && !self.add.iter().any(|(n, _)| n == l.name))
            .map(|l| (l.name.to_owned(), l.value.to_owned()))
            .collect();
        out.extend(self.add.iter().cloned());
        out
    }

    fn build(self) -> Labels {
        if self.add.is_empty() && self.del.is_empty() {
            return self.base.clone();
        }
        let mut b = self.base.builder();
        for name in &self.del {
            b.del(name);
        }
        for (name, value) in &self.add {
            b.set(name, value);
        }
        b.build()
    }
}

/// Applies one rule; false means drop.
fn apply(rule: &RelabelConfig, work: &mut Work<'_>, scheme: NameValidationScheme) -> bool {
    let values: Vec<&str> = rule.source_labels.iter().map(|n| work.get(n)).collect();
    let val = values.join(&rule.separator);
    let regex = rule.regex.regex();
    match rule.action {
        Action::Drop => return !regex.is_match(&val),
        Action::Keep => return regex.is_match(&val),
        Action::DropEqual => return work.get(&rule.target_label) != val,
        Action::KeepEqual => return work.get(&rule.target_label) == val,
        Action::Replace => {
            // Upstream's fast path: nothing to match against and nothing to expand, so the
            // replacement is written as is (an empty one deletes the label).
            if val.is_empty()
                && rule.regex.is_default()
                && !has_template(&rule.target_label)
                && !has_template(&rule.replacement)
            {
                work.set(&rule.target_label, &rule.replacement);
                return true;
            }
            let Some(caps) = regex.captures(&val) else {
                return true;
            };
            let target = expand(&rule.target_label, regex, &caps);
            if !scheme.is_valid_label_name(&target) {
                return true;
            }
            let value = expand(&rule.replacement, regex, &caps);
            if value.is_empty() {
                work.del(&target);
            } else {
                work.set(&target, &value);
            }
        }
        // Go's strings.ToLower/ToUpper map rune by rune without context, unlike Rust's
        // str::to_lowercase (final sigma), so map each char on its own.
        Action::Lowercase => {
            let lower: String = val.chars().flat_map(char::to_lowercase).collect();
            work.set(&rule.target_label, &lower);
        }
        Action::Uppercase => {
            let upper: String = val.chars().flat_map(char::to_uppercase).collect();
            work.set(&rule.target_label, &upper);
        }
        Action::HashMod => {
            // The last 8 bytes of the MD5 sum as a big-endian integer, as upstream (and every
            // Prometheus since hashmod exists), so shards agree with Prometheus servers.
            let sum = md5(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&sum[8..]);
            let modulus = rule.modulus.max(1);
            let shard = u64::from_be_bytes(tail) % modulus;
            work.set(&rule.target_label, &shard.to_string());
        }
        Action::LabelMap => {
            for (name, value) in work.snapshot() {
                if let Some(caps) = regex.captures(&name) {
                    // The regex is anchored at both ends, so Go's ReplaceAllString replaces
                    // exactly one match spanning the whole name.
                    let new_name = expand(&rule.replacement, regex, &caps);
                    work.set(&new_name, &value);
                }
            }
        }
        Action::LabelDrop => {
            for (name, _) in work.snapshot() {
                if regex.is_match(&name) {
                    work.del(&name);
                }
            }
        }
        Action::LabelKeep => {
            for (name, _) in work.snapshot() {
                if !regex.is_match(&name) {
                    work.del(&name);
                }
            }
        }
    }
    true
}

/// Expands `$1`, `${1}`, `$name`, `${name}` and `$$` in `template` as Go's `Regexp.Expand`
/// does: a reference takes the longest run of letters, digits and `_` after the `$` (so `$1x`
/// is the group named `1x`, not group 1 then `x`); numbers with a leading zero are names; an
/// unknown or non-participating group expands to nothing; a malformed `$` stays literal.
fn expand(template: &str, regex: &Regex, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = group_reference(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            None => regex
                .capture_names()
                .enumerate()
                .filter(|(_, n)| *n == Some(name))
                .find_map(|(i, _)| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

/// Splits a group reference (what follows a `$`) into its name and the rest of the template.
fn group_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// The group number a reference names: ASCII digits without a leading zero, below 10^8 (Go's
/// limits); anything else is a group name.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) || name.len() > 8 {
        return None;
    }
    name.parse().ok()
}

/// MD5 of `input`, as upstream's hashmod computes it.
fn md5(input: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(input).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(src: &str) -> Result<RelabelConfig, String> {
        crate::yaml::from_str::<RelabelConfig>(src, Path::new("r.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_upstream() {
        let r = parse("target_label: x\n").unwrap();
        assert_eq!(r.action, Action::Replace);
        assert_eq!(
            (r.separator.as_str(), r.replacement.as_str(), r.regex.as_str()),
            (";", "$1", "(.*)")
        );
        assert!(r.regex.is_match("any\nthing"));
    }

    #[test]
    fn regex_is_anchored_and_null_means_empty() {
        let r = parse("action: keep\nregex: a|b\n").unwrap();
        assert!(r.regex.is_match("a") && !r.regex.is_match("ab") && !r.regex.is_match("xa"));
        let r = parse("target_label: x\nregex:\n").unwrap();
        assert_eq!(r.regex.as_str(), "");
        assert!(r.regex.is_match("") && !r.regex.is_match("a"));
    }

    #[test]
    fn actions_are_case_insensitive() {
        assert_eq!(
            parse("action: LabelDrop\nregex: x\n").unwrap().action,
            Action::LabelDrop
        );
        assert!(
            parse("action: explode\n")
                .unwrap_err()
                .contains("unknown relabel action \"explode\"")
        );
    }

    #[test]
    fn static_rules_follow_upstream() {
        for (src, want) in [
            ("action: null\n", "relabel action cannot be empty"),
            (
                "action: hashmod\ntarget_label: x\n",
                "hashmod requires non-zero modulus",
            ),
            (
                "action: hashmod\nmodulus: 2\n",
                "for hashmod action requires 'target_label' value",
            ),
            (
                "source_labels: [a]\n",
                "for replace action requires 'target_label' value",
            ),
            (
                "action: uppercase\ntarget_label: x\nreplacement: y\n",
                "'replacement' can not be set for uppercase action",
            ),
            (
                "action: keepequal\ntarget_label: x\nregex: (.*)\n",
                "keepequal action requires only 'source_labels'",
            ),
            (
                "action: dropequal\ntarget_label: x\nseparator: ','\n",
                "dropequal action requires only 'source_labels'",
            ),
            (
                "action: labeldrop\nsource_labels: []\n",
                "labeldrop action requires only 'regex'",
            ),
            (
                "action: labelkeep\nreplacement: y\n",
                "labelkeep action requires only 'regex'",
            ),
            (
                "action: labelkeep\ntarget_label: y\n",
                "labelkeep action requires only 'regex'",
            ),
            (
                "source_labels: ['']\ntarget_label: x\n",
                "\"\" is not a valid label name",
            ),
            ("regex: 'abc(def'\ntarget_label: x\n", "invalid regular expression"),
        ] {
            let e = parse(src).unwrap_err();
            assert!(e.contains(want), "{src:?}: {e}");
        }
        parse("action: keepequal\nsource_labels: [a]\ntarget_label: b\nreplacement: $1\nseparator: ;\n").unwrap();
        parse("action: labeldrop\nregex: tmp_.*\n").unwrap();
    }

    #[test]
    fn names_depend_on_the_scheme() {
        let r = parse("target_label: 'my.label'\n").unwrap();
        r.validate_names(NameValidationScheme::Utf8).unwrap();
        let e = r.validate_names(NameValidationScheme::Legacy).unwrap_err();
        assert_eq!(e, "\"my.label\" is invalid 'target_label' for replace action");
        let r = parse("target_label: 'x_${1}'\nregex: '(.*)'\n").unwrap();
        r.validate_names(NameValidationScheme::Legacy).unwrap();
        let r = parse("action: labelmap\nregex: 'a_(.*)'\nreplacement: ''\n").unwrap();
        assert!(
            r.validate_names(NameValidationScheme::Utf8)
                .unwrap_err()
                .contains("'replacement' for labelmap")
        );
    }

    #[test]
    fn serializes_what_was_set() {
        let r = parse("source_labels: [a, b]\ntarget_label: x\nregex: 'y(.*)'\n").unwrap();
        let out = serde_saphyr::to_string(&r).unwrap();
        assert!(
            out.contains("regex: y(.*)") && !out.contains("separator") && out.contains("action: replace"),
            "{out}"
        );
        let back = parse(&out).unwrap();
        assert_eq!(back, r);
    }

    fn rules(src: &str) -> Vec<RelabelConfig> {
        crate::yaml::from_str::<Vec<RelabelConfig>>(src, Path::new("r.yml")).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    /// One relabeling case: input labels, rules in YAML, and the expected labels (None: dropped).
    fn check(input: &[(&str, &str)], src: &str, want: Option<&[(&str, &str)]>) {
        let got = process(&labels(input), &rules(src));
        assert_eq!(got, want.map(labels), "rules:\n{src}");
    }

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(md5(b"message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
        assert_eq!(
            hex(md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        // 55 and 56 bytes straddle the padding boundary.
        assert_eq!(hex(md5(&[b'a'; 55])), "ef1772b6dff9a122358552954ad0df65");
        assert_eq!(hex(md5(&[b'a'; 56])), "3b0c8ac703f828b04c6c197006d17218");
    }

    #[test]
    fn replace_expands_groups_in_value_and_target() {
        let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
        check(
            &abc,
            "- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}\n",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
        );
        // Rules see the labels earlier rules wrote; several groups, repeated.
        check(
            &abc,
            "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}\n\
             - {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, replacement: '$1$2$2$3'}\n",
            Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
        );
        check(
            &[("a", "abc")],
            "- {source_labels: [a], regex: '.*(b).*', target_label: d}\n",
            Some(&[("a", "abc"), ("d", "b")]),
        );
        // No match: nothing changes.
        check(
            &[("a", "boo")],
            "- {source_labels: [a], regex: f, target_label: b, replacement: bar}\n",
            Some(&[("a", "boo")]),
        );
        // Target label from a group; an empty expanded value deletes that label.
        check(
            &[("a", "foo"), ("f", "baz")],
            "- {source_labels: [a], regex: '(f).*', target_label: '$1', replacement: '$2'}\n",
            Some(&[("a", "foo")]),
        );
        check(
            &[("a", "some-name-value")],
            "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${1}', replacement: '${2}'}\n",
            Some(&[("a", "some-name-value"), ("name", "value")]),
        );
        // A target that expands to nothing is not a label name: the rule is skipped.
        check(
            &[("a", "some-name-0")],
            "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${3}', replacement: '${1}'}\n",
            Some(&[("a", "some-name-0")]),
        );
        // `.` matches newlines; an unknown group expands to "".
        check(
            &[("a", "line1\nline2")],
            "- {source_labels: [a], regex: 'line1.*line2', target_label: 'utf-8.label${1}', replacement: 'match${1}'}\n",
            Some(&[("a", "line1\nline2"), ("utf-8.label", "match")]),
        );
        // Named groups in both spellings; `$1x` names group "1x" (absent), as in Go.
        check(
            &[("a", "line1\nline2")],
            "- {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'l1_${1}', replacement: 'v_${second}'}\n\
             - {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'l2_$1', replacement: 'v_$second'}\n\
             - {source_labels: [a], regex: '(line1).*', target_label: x, replacement: '[$1x][$$1][${1}x][$-]'}\n",
            Some(&[
                ("a", "line1\nline2"),
                ("l1_line1", "v_line2"),
                ("l2_line1", "v_line2"),
                ("x", "[][$1][line1x][$-]"),
            ]),
        );
        // Real-life shape: pulling a path, a job and a free label out of one tag string.
        check(
            &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
            "- {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)path:(/[^,]+).*', target_label: __metrics_path__}\n\
             - {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)job:([^,]+).*', target_label: job}\n\
             - {source_labels: [__meta_sd_tags], regex: '(?:.+,|^)label:([^=]+)=([^,]+).*', target_label: '${1}', replacement: '${2}'}\n",
            Some(&[
                ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
                ("__metrics_path__", "/secret"),
                ("job", "some-job"),
                ("foo", "bar"),
            ]),
        );
    }

    #[test]
    fn replace_fast_path_and_missing_sources() {
        // No source labels: the default regex matches "", the literal replacement is written.
        check(
            &[("a", "1")],
            "- {target_label: env, replacement: prod}\n",
            Some(&[("a", "1"), ("env", "prod")]),
        );
        // A missing source reads as "": `(.+)` does not match, nothing happens.
        check(
            &[("a", "1")],
            "- {source_labels: [nope], regex: '(.+)', target_label: b}\n",
            Some(&[("a", "1")]),
        );
        // Default replacement `$1` of an empty match deletes the target.
        check(
            &[("a", "1"), ("b", "2")],
            "- {source_labels: [nope], target_label: b}\n",
            Some(&[("a", "1")]),
        );
        // Joined with the separator, missing ones as "".
        check(
            &[("a", "x"), ("c", "z")],
            "- {source_labels: [a, b, c], separator: '|', target_label: j}\n",
            Some(&[("a", "x"), ("c", "z"), ("j", "x||z")]),
        );
    }

    #[test]
    fn keep_and_drop() {
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: '.*o.*', action: drop}\n",
            None,
        );
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: '.*o.*', action: drop}\n- {source_labels: [a], target_label: d}\n",
            None,
        );
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: no-match, action: drop}\n",
            Some(&[("a", "foo")]),
        );
        // Anchored: `f|o` matches neither the whole of "foo".
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: 'f|o', action: drop}\n",
            Some(&[("a", "foo")]),
        );
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: no-match, action: keep}\n",
            None,
        );
        check(
            &[("a", "foo")],
            "- {source_labels: [a], regex: 'f.*', action: keep}\n",
            Some(&[("a", "foo")]),
        );
        // Dropping a label then keeping on it: issue 12283's shape.
        check(
            &[("__meta_port_name", "foo"), ("__meta_annotation_port", "9091")],
            "- {regex: '^__meta_port_name$', action: labeldrop}\n\
             - {source_labels: [__meta_annotation_port], regex: '(.+)', target_label: __meta_port_name, replacement: metrics}\n\
             - {source_labels: [__meta_port_name], regex: '^metrics$', action: keep}\n",
            Some(&[("__meta_annotation_port", "9091"), ("__meta_port_name", "metrics")]),
        );
    }

    #[test]
    fn keepequal_and_dropequal() {
        let ports = [("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")];
        check(
            &ports,
            "- {source_labels: [__tmp_port], target_label: __port1, action: keepequal}\n",
            Some(&ports),
        );
        check(
            &ports,
            "- {source_labels: [__tmp_port], target_label: __port1, action: dropequal}\n",
            None,
        );
        check(
            &ports,
            "- {source_labels: [__tmp_port], target_label: __port2, action: dropequal}\n",
            Some(&ports),
        );
        check(
            &ports,
            "- {source_labels: [__tmp_port], target_label: __port2, action: keepequal}\n",
            None,
        );
        // A missing target label equals an empty joined value.
        check(
            &[("a", "1")],
            "- {source_labels: [b], target_label: c, action: keepequal}\n",
            Some(&[("a", "1")]),
        );
    }

    #[test]
    fn hashmod_matches_prometheus_shards() {
        check(
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}\n",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        );
        check(
            &[("a", "foo\nbar")],
            "- {source_labels: [a], target_label: b, action: hashmod, modulus: 1000}\n",
            Some(&[("a", "foo\nbar"), ("b", "734")]),
        );
        // The usual sharding recipe: hash the address, keep one shard.
        let shard_of = |addr: &str| {
            process(
                &labels(&[("__address__", addr)]),
                &rules("- {source_labels: [__address__], target_label: __tmp_hash, action: hashmod, modulus: 4}\n"),
            )
            .unwrap()
            .get("__tmp_hash")
            .unwrap()
            .parse::<u64>()
            .unwrap()
        };
        assert!((0..20).map(|i| shard_of(&format!("10.0.0.{i}:9100"))).all(|s| s < 4));
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let input = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
        check(
            &input,
            "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}\n",
            Some(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ]),
        );
        check(
            &[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
            ],
            "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}\n",
            Some(&[
                ("a", "foo"),
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb"),
            ]),
        );
        check(
            &input,
            "- {regex: '(b.*)', action: labelkeep}\n",
            Some(&[("b1", "bar"), ("b2", "baz")]),
        );
        check(&input, "- {regex: '(b.*)', action: labeldrop}\n", Some(&[("a", "foo")]));
        // Everything removed is an empty set, not a drop.
        check(&input, "- {regex: '.*', action: labeldrop}\n", Some(&[]));
    }

    #[test]
    fn labelmap_collisions_follow_go_builder_order() {
        // Two labels map to the same name: original labels are visited in name order, then
        // labels earlier rules set, in the order set; the last one visited wins.
        check(
            &[("x_b", "from_b"), ("y_b", "from_y")],
            "- {regex: '[a-z]_(b)', replacement: 'm_$1', action: labelmap}\n",
            Some(&[("x_b", "from_b"), ("y_b", "from_y"), ("m_b", "from_y")]),
        );
        check(
            &[("z_b", "orig")],
            "- {target_label: a_b, replacement: added}\n- {regex: '[a-z]_(b)', replacement: 'm_$1', action: labelmap}\n",
            Some(&[("z_b", "orig"), ("a_b", "added"), ("m_b", "added")]),
        );
    }

    #[test]
    fn lowercase_and_uppercase() {
        check(
            &[("foo", "bAr123Foo")],
            "- {source_labels: [foo], target_label: foo_uppercase, action: uppercase}\n\
             - {source_labels: [foo], target_label: foo_lowercase, action: lowercase}\n",
            Some(&[
                ("foo", "bAr123Foo"),
                ("foo_lowercase", "bar123foo"),
                ("foo_uppercase", "BAR123FOO"),
            ]),
        );
        check(
            &[("a", "ÄÖ")],
            "- {source_labels: [a], target_label: a, action: lowercase}\n",
            Some(&[("a", "äö")]),
        );
    }

    #[test]
    fn legacy_scheme_skips_invalid_expanded_targets() {
        let r = rules("- {source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: v}\n");
        let input = labels(&[("a", "my.name")]);
        assert_eq!(
            process_with_scheme(&input, &r, NameValidationScheme::Utf8),
            Some(labels(&[("a", "my.name"), ("my.name", "v")]))
        );
        assert_eq!(
            process_with_scheme(&input, &r, NameValidationScheme::Legacy),
            Some(input.clone())
        );
        assert_eq!(RelabelConfig::process(&input, &[]), Some(input));
    }
}
