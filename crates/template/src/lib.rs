//! Go `text/template` for Watchfire: the template language of Prometheus alerting-rule labels
//! and annotations and of Alertmanager notifications, rendering exactly as upstream does.
//!
//! This crate owns the lexer, parser and executor of the template language ([`Template`]),
//! the value model templates compute with ([`Value`], with host objects behind the
//! [`Object`] trait), Go's `fmt` printing (`print`, `printf`, `println` and the default
//! formatting of values), the function-registration API ([`FuncMap`], [`Function`]) and, in
//! [`prometheus`], Prometheus' rule-template functions and annotation expansion. It is
//! synchronous and must never depend on tokio, an HTTP crate or the PromQL engine: `query`
//! is a closure the caller supplies.
//!
//! The lexer and parser are hand-written rather than generated with pest because Go's
//! template grammar is lexer-driven in ways a PEG expresses badly: text and actions are split
//! by delimiters with whitespace-trim markers that reach into neighbouring text, spaces are
//! significant tokens inside actions (`$x := ...` versus `$x ...` needs three tokens of
//! look-ahead), and users see Go's exact error messages with Go's line and column, which is
//! easiest to reproduce by following the structure of Go's own recursive-descent parser.
//!
//! Behaviour follows Go's `text/template` documentation and implementation: whitespace
//! trimming, comments, pipelines, variables and assignment, field and map-key chains,
//! methods on host objects, `if`/`else if`/`with`/`else with`/`range` (lists, maps in key
//! order, integers, host iterables; `break` and `continue`), `define`/`template`/`block`, the
//! `missingkey` option, and all builtins (`and`/`or` short-circuit). Not supported: custom
//! delimiters, complex and hex-float literals, range over channels or iterator functions, and
//! `html/template`'s contextual escaping.

mod builtins;
mod error;
mod exec;
pub mod fmt;
mod func;
mod lex;
mod parse;
pub mod prometheus;
mod template;
pub mod time;
mod value;

pub use error::Error;
pub use exec::{Limits, MissingKey};
pub use func::{CallContext, FuncMap, Function, Param, Signature};
pub use template::Template;
pub use value::{Map, Object, Value};
