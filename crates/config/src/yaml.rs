//! Loading YAML with serde-saphyr, with errors that name file, line and column.

use std::path::Path;

use serde::de::DeserializeOwned;
pub use serde_saphyr::{Location, Spanned};

use crate::error::{Error, Position, Result};

/// Whether `src` holds no YAML content at all (only blanks and comments). Upstream treats
/// such a file as an empty configuration with every default.
fn is_blank(src: &str) -> bool {
    src.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

/// Strips serde-saphyr's "line N column M: " prefix, since [`Error`] prints the position itself.
fn bare_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let re_prefix = |t: &str| -> Option<usize> {
        let rest = t.strip_prefix("line ")?;
        let idx = rest.find(": ")?;
        let head = &rest[..idx];
        let (l, c) = head.split_once(" column ")?;
        (l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok()).then_some("line ".len() + idx + 2)
    };
    let text = match re_prefix(text) {
        Some(n) => &text[n..],
        None => text,
    };
    // Messages end at the first line; the rest is a rendered snippet. Some messages also end
    // with " at line N, column M", which the position already says.
    let first = text.lines().next().unwrap_or_default().trim();
    match first.rfind(" at line ") {
        Some(i) if first[i + " at line ".len()..].contains(", column ") => first[..i].to_owned(),
        _ => first.to_owned(),
    }
}

/// Deserializes `src` (the contents of `path`) as `T`. A blank document yields `T`'s value
/// for an empty mapping.
pub fn from_str<T: DeserializeOwned>(src: &str, path: &Path) -> Result<T> {
    let src = if is_blank(src) { "{}" } else { src };
    serde_saphyr::from_str(src).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        position: e.location().as_ref().and_then(Position::from_location),
        message: bare_message(&e),
    })
}

/// Reads and deserializes the file at `path`.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let src = read_file(path)?;
    from_str(&src, path)
}

/// Reads a file to a string, with the path in the error.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A YAML value that Watchfire accepts in the schema but ignores (or reports as unsupported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ignored;

impl<'de> serde::Deserialize<'de> for Ignored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Ignored)
    }
}

impl serde::Serialize for Ignored {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// A configuration block that upstream accepts and Watchfire does not implement yet. It parses
/// (so the rest of the file is still checked) and remembers where it was, so that validation
/// can refuse it with `not supported yet: <key>` at the right line.
pub type Unsupported = Option<Spanned<Ignored>>;

/// Records an error for `key` if the unsupported block is present.
pub fn refuse_unsupported(errors: &mut Vec<Error>, key: &str, block: &Unsupported) {
    if let Some(b) = block {
        errors.push(Error::invalid(format!("not supported yet: {key}")).at(&b.referenced));
    }
}

/// Serde helper: `true` by default (for `#[serde(default = "crate::yaml::default_true")]`).
pub fn default_true() -> bool {
    true
}

/// Serde helper: skip serializing a value equal to its default.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        later: Unsupported,
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let e = from_str::<Doc>("name: x\nbogus: 1\n", Path::new("p.yml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("p.yml:2:1: unknown field `bogus`"), "{s}");
        assert_eq!(e.position(), Some(Position { line: 2, column: 1 }));
        let e = from_str::<Doc>("name: [1]\n", Path::new("p.yml"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains(" at line "), "the position is printed once: {e}");
    }

    #[test]
    fn blank_documents_are_empty_configs() {
        let d: Doc = from_str("# just a comment\n\n", Path::new("p.yml")).unwrap();
        assert!(d.name.is_none());
    }

    #[test]
    fn unsupported_blocks_are_located() {
        let d: Doc = from_str("name: x\nlater:\n  deep: [1, 2]\n", Path::new("p.yml")).unwrap();
        let mut errs = vec![];
        refuse_unsupported(&mut errs, "later", &d.later);
        let s = errs.remove(0).in_file(Path::new("p.yml")).to_string();
        assert!(
            s.starts_with("p.yml:3:") && s.ends_with("not supported yet: later"),
            "{s}"
        );
    }
}
