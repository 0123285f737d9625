//! Label matchers: `=`, `!=`, `=~`, `!~`.

use std::fmt;

use regex::Regex;

use crate::Error;
use crate::names::is_valid_legacy_label_name;
use crate::quote::go_quote;

/// The four matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchType {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }

    /// Parses `=`, `!=`, `=~` or `!~`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "=" => MatchType::Equal,
            "!=" => MatchType::NotEqual,
            "=~" => MatchType::Regex,
            "!~" => MatchType::NotRegex,
            _ => return Err(Error::InvalidMatchType(s.to_owned())),
        })
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label matcher. A label that is absent matches as if its value were the empty string, as
/// in Prometheus.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub kind: MatchType,
    pub value: String,
    regex: Option<Regex>,
}

/// Compiles `re` anchored at both ends the way Prometheus 3 does (`^(?s:re)$`): the whole
/// value must match, and `.` also matches a newline.
pub fn anchored_regex(re: &str) -> Result<Regex, Error> {
    Regex::new(&format!("^(?s:{re})$")).map_err(|e| Error::InvalidRegex {
        regex: re.to_owned(),
        reason: e.to_string(),
    })
}

impl Matcher {
    /// A matcher; regular expressions are compiled (and checked) here.
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self, Error> {
        let value = value.into();
        let regex = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(anchored_regex(&value)?),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            kind,
            value,
            regex,
        })
    }

    /// Whether `value` (the label's value, or "" when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.kind {
            MatchType::Equal => value == self.value,
            MatchType::NotEqual => value != self.value,
            MatchType::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchType::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher matches the empty string, i.e. also series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.kind.hash(state);
        self.value.hash(state);
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` as Prometheus prints it, quoting the name when it is not legacy-valid.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_valid_legacy_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            f.write_str(&go_quote(&self.name))?;
        }
        write!(f, "{}{}", self.kind, go_quote(&self.value))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, v: &str) -> Matcher {
        Matcher::new(kind, "l", v).unwrap()
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let r = m(MatchType::Regex, "foo|bar");
        assert!(r.matches("foo"));
        assert!(r.matches("bar"));
        assert!(!r.matches("foobar"));
        assert!(!r.matches("xfoo"));
        // Alternation binds inside the group, so anchoring applies to every branch.
        assert!(!m(MatchType::Regex, "a|b").matches("ab"));
    }

    #[test]
    fn dot_matches_newline_as_in_prometheus_3() {
        assert!(m(MatchType::Regex, "a.b").matches("a\nb"));
        assert!(m(MatchType::Regex, ".*").matches("multi\nline"));
    }

    #[test]
    fn empty_and_negative_matchers() {
        assert!(m(MatchType::Equal, "").matches(""));
        assert!(m(MatchType::NotEqual, "x").matches(""));
        assert!(m(MatchType::NotRegex, "x.*").matches("y"));
        assert!(!m(MatchType::NotRegex, "x.*").matches("xy"));
        assert!(m(MatchType::Regex, ".*").matches_empty());
        assert!(!m(MatchType::Regex, ".+").matches_empty());
    }

    #[test]
    fn bad_regex_is_an_error() {
        let e = Matcher::new(MatchType::Regex, "l", "(").unwrap_err();
        assert!(matches!(e, Error::InvalidRegex { .. }), "{e}");
    }

    #[test]
    fn prints_like_promql() {
        assert_eq!(m(MatchType::NotRegex, "a\"b").to_string(), r#"l!~"a\"b""#);
        let q = Matcher::new(MatchType::Equal, "my.name", "v").unwrap();
        assert_eq!(q.to_string(), r#""my.name"="v""#);
        assert_eq!(MatchType::parse("=~").unwrap(), MatchType::Regex);
        assert!(MatchType::parse("==").is_err());
    }
}
