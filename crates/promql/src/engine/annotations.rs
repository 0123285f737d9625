//! Warnings and infos attached to a query result, with Prometheus' texts
//! (`util/annotations/annotations.go`).

use std::collections::BTreeMap;
use std::fmt;

use crate::ast::PosRange;
use crate::error::ParseError;

/// Whether an annotation is a warning or an info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnnotationKind {
    Warning,
    Info,
}

/// One annotation: its text (starting `PromQL warning: ` or `PromQL info: `) and the part of
/// the query it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub kind: AnnotationKind,
    pub message: String,
    pub pos: PosRange,
}

impl Annotation {
    pub(crate) fn warning(message: impl fmt::Display, pos: PosRange) -> Self {
        Annotation {
            kind: AnnotationKind::Warning,
            message: format!("PromQL warning: {message}"),
            pos,
        }
    }

    pub(crate) fn info(message: impl fmt::Display, pos: PosRange) -> Self {
        Annotation {
            kind: AnnotationKind::Info,
            message: format!("PromQL info: {message}"),
            pos,
        }
    }

    /// The text with the query position appended, as the HTTP API returns it:
    /// `PromQL info: … (1:6)`.
    pub fn with_position(&self, query: &str) -> String {
        let p = ParseError::new(query, self.pos.start as usize, self.pos.end as usize, "").position;
        format!("{} ({p})", self.message)
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The set of annotations of one query. Like upstream's `annotations.Annotations` (a map keyed
/// by the text), the same text is kept once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    by_text: BTreeMap<String, Annotation>,
}

impl Annotations {
    /// No annotations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an annotation unless one with the same text is present.
    pub fn add(&mut self, a: Annotation) {
        self.by_text.entry(a.message.clone()).or_insert(a);
    }

    /// Adds every annotation of `other`.
    pub fn merge(&mut self, other: Annotations) {
        for (_, a) in other.by_text {
            self.add(a);
        }
    }

    /// All annotations, ordered by text.
    pub fn iter(&self) -> impl Iterator<Item = &Annotation> {
        self.by_text.values()
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Annotation> {
        self.iter().filter(|a| a.kind == AnnotationKind::Warning)
    }

    /// The infos.
    pub fn infos(&self) -> impl Iterator<Item = &Annotation> {
        self.iter().filter(|a| a.kind == AnnotationKind::Info)
    }

    pub fn is_empty(&self) -> bool {
        self.by_text.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_text.len()
    }
}
