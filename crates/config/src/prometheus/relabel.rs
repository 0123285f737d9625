//! Relabeling rules (`relabel_configs`, `metric_relabel_configs`, `write_relabel_configs`,
//! `alert_relabel_configs`): the types and upstream's validation rules
//! (model/relabel/relabel.go `Config.Validate`). Applying them is the scrape crate's job.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::NameValidationScheme;
use super::checked::{Origin, present};
use crate::yaml::Spanned;

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
}
