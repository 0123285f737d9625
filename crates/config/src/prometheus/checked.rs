//! Deserialization helpers that give every validation error a line and column.
//!
//! Config items that validate themselves implement [`Check`]; a list or field of them is
//! deserialized through [`list`], [`item`] or [`optional`], which record where each item starts
//! (its [`Origin`]) and run its static checks while the YAML deserializer still knows the
//! position, so a failure is reported at the item. Checks that need the rest of the file (the
//! global defaults, duplicate names) run after parsing and use the recorded origin.
//!
//! The same helpers also accept an explicit YAML null where upstream's decoder does: `targets:`
//! with nothing after it is an empty list, not a type error.

use std::fmt;
use std::path::PathBuf;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Position};
use crate::yaml::Spanned;

/// Where a config item was written in its file (1-based line and column of its first key).
///
/// Set by the parser; `None` for items built in code or filled in as defaults. Two items are
/// equal whatever their origins, so moving a block in the file does not make it "changed".
#[derive(Clone, Copy, Default)]
pub struct Origin(pub Option<Position>);

impl Origin {
    /// A validation error located at this origin (the file is added later).
    pub(crate) fn error(self, message: impl Into<String>) -> Error {
        Error::Invalid {
            path: PathBuf::new(),
            position: self.0,
            message: message.into(),
        }
    }

    /// Gives `e` (and every error inside it) this position unless it already has one.
    pub(crate) fn place(self, e: Error) -> Error {
        match e {
            Error::Invalid {
                path,
                position,
                message,
            } => Error::Invalid {
                path,
                position: position.or(self.0),
                message,
            },
            Error::Parse {
                path,
                position,
                message,
            } => Error::Parse {
                path,
                position: position.or(self.0),
                message,
            },
            Error::Many(list) => Error::Many(list.into_iter().map(|e| self.place(e)).collect()),
            io @ Error::Io { .. } => io,
        }
    }
}

impl PartialEq for Origin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{}:{}", p.line, p.column),
            None => f.write_str("-"),
        }
    }
}

/// Prefixes the message of `e` (and of every error inside it) with `ctx: `.
///
/// (`Error::context` would do, but its generic recursion through `&ctx` cannot be
/// instantiated by the compiler, so it is not usable yet.)
pub(crate) fn with_context(e: Error, ctx: &str) -> Error {
    match e {
        Error::Invalid {
            path,
            position,
            message,
        } => Error::Invalid {
            path,
            position,
            message: format!("{ctx}: {message}"),
        },
        Error::Parse {
            path,
            position,
            message,
        } => Error::Parse {
            path,
            position,
            message: format!("{ctx}: {message}"),
        },
        Error::Many(list) => Error::Many(list.into_iter().map(|e| with_context(e, ctx)).collect()),
        io @ Error::Io { .. } => io,
    }
}

/// A config item that knows its own static rules.
pub(crate) trait Check: Sized {
    /// What the item is called in "empty or null <WHAT>" when a list entry is null.
    const WHAT: &'static str;

    /// Where to record the item's origin, for items validated again after parsing.
    fn origin_mut(&mut self) -> Option<&mut Origin> {
        None
    }

    /// Checks (and may normalize) the item; the message becomes a located parse error.
    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// One checked item; its `Deserialize` records the origin and runs the checks.
struct Checked<T>(T);

impl<'de, T: Check + Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Option<T>>::deserialize(d)?;
        let Some(mut value) = spanned.value else {
            return Err(D::Error::custom(format!("empty or null {}", T::WHAT)));
        };
        if let Some(origin) = value.origin_mut() {
            *origin = Origin(Position::from_location(&spanned.referenced));
        }
        value.check().map_err(D::Error::custom)?;
        Ok(Checked(value))
    }
}

/// A list of checked items; null is the empty list, a null entry is an error.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Check + Deserialize<'de>,
{
    let items = Option::<Vec<Checked<T>>>::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().map(|c| c.0).collect())
}

/// One checked item; null is the item's default.
pub(crate) fn item<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Check + Default + Deserialize<'de>,
{
    Ok(Option::<Checked<T>>::deserialize(d)?.map(|c| c.0).unwrap_or_default())
}

/// An optional checked item; null is `None`.
pub(crate) fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Check + Deserialize<'de>,
{
    Ok(Option::<Checked<T>>::deserialize(d)?.map(|c| c.0))
}

/// Any value for which null means its default (lists, maps, label sets).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A field whose absence and explicit null must be told apart: absent is `None` (through
/// `#[serde(default)]`), null is `Some(None)`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A string for which null means "" (as upstream's decoder gives).
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    nullable(d)
}

/// Splits the result of a nested validator into plain errors, leaving out the
/// "not supported yet" ones, which the caller collects separately.
pub(crate) fn without_unsupported(result: crate::Result<()>) -> Vec<Error> {
    fn flatten(e: Error, out: &mut Vec<Error>) {
        match e {
            Error::Many(list) => list.into_iter().for_each(|e| flatten(e, out)),
            e => out.push(e),
        }
    }
    let mut out = Vec::new();
    if let Err(e) = result {
        flatten(e, &mut out);
    }
    out.retain(|e| !is_unsupported(e));
    out
}

/// Whether `e` is a "not supported yet: <key>" refusal.
pub(crate) fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Invalid { message, .. } if message.starts_with(UNSUPPORTED_PREFIX))
}

/// The message prefix of refusals (see `crate::yaml::refuse_unsupported`).
pub(crate) const UNSUPPORTED_PREFIX: &str = "not supported yet: ";

/// The bare message of an error, without file or position.
pub(crate) fn message(e: &Error) -> String {
    match e {
        Error::Invalid { message, .. } | Error::Parse { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[serde(default)]
        name: String,
        #[serde(skip)]
        origin: Origin,
    }

    impl Check for Item {
        const WHAT: &'static str = "item";
        fn origin_mut(&mut self) -> Option<&mut Origin> {
            Some(&mut self.origin)
        }
        fn check(&mut self) -> Result<(), String> {
            if self.name == "bad" {
                Err("bad name".into())
            } else {
                Ok(())
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default, deserialize_with = "list")]
        items: Vec<Item>,
        #[serde(default, deserialize_with = "item")]
        one: Item,
    }

    fn parse(src: &str) -> crate::Result<Doc> {
        crate::yaml::from_str(src, Path::new("t.yml"))
    }

    #[test]
    fn items_know_where_they_are() {
        let d = parse("items:\n  - name: a\n\n  - name: b\none:\n  name: c\n").unwrap();
        let lines: Vec<u64> = d.items.iter().map(|i| i.origin.0.unwrap().line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(d.one.origin.0.unwrap().line, 6);
    }

    #[test]
    fn check_failures_point_at_the_item() {
        let e = parse("items:\n  - name: a\n  - name: bad\n").unwrap_err();
        assert_eq!(e.position().map(|p| p.line), Some(3), "{e}");
        assert!(e.to_string().contains("bad name"), "{e}");
    }

    #[test]
    fn null_lists_are_empty_and_null_entries_are_errors() {
        let d = parse("items:\none:\n").unwrap();
        assert!(d.items.is_empty() && d.one.name.is_empty());
        let e = parse("items:\n  - name: a\n  -\n").unwrap_err();
        assert!(e.to_string().contains("empty or null item"), "{e}");
        assert_eq!(e.position().map(|p| p.line), Some(3));
    }

    #[test]
    fn origins_do_not_affect_equality() {
        let a = Origin(Some(Position { line: 1, column: 1 }));
        assert_eq!(a, Origin(None));
        assert_eq!(format!("{a:?}"), "1:1");
    }
}
