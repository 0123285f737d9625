//! Parse and execution errors, printed exactly as Go's `text/template` prints them.

use crate::fmt::quote;

/// A template error. `Display` gives Go's text, e.g.
/// `template: t:1:3: executing "t" at <.Foo>: map has no entry for key "Foo"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not parse. `name` is the template being parsed, `line` 1-based.
    #[error("template: {name}:{line}: {message}")]
    Parse { name: String, line: usize, message: String },
    /// Execution failed at a node: `location` is `NAME:LINE:COL` (column counted in bytes from
    /// 0, as Go does), `template` the template executing, `context` the node's text.
    #[error("template: {location}: executing {} at <{context}>: {message}", quote(template))]
    Exec {
        location: String,
        template: String,
        context: String,
        message: String,
    },
    /// Execution failed before reaching any node of template `template`.
    #[error("template: {template}: {message}")]
    ExecTemplate { template: String, message: String },
    /// Prometheus' expansion wrapper: `error parsing template NAME: ...` or
    /// `error executing template NAME: ...`.
    #[error("error {action} template {name}: {source}")]
    Expand {
        action: &'static str,
        name: String,
        source: Box<Error>,
    },
    /// `execute_template` was asked for a name the set does not define.
    #[error("template: no template {} associated with template {}", quote(name), quote(template))]
    NoTemplate { name: String, template: String },
}
