//! PromQL for Watchfire: the parser, the syntax tree, type checking, the canonical and pretty
//! printers, the evaluator ([`engine`]) and the promqltest script runner ([`test_script`]).
//!
//! This crate owns the PromQL language as Prometheus 3.x parses it: [`parse_expr`] turns a
//! query into an [`Expr`] (with upstream's syntax and type errors as [`ParseError`] values,
//! printed `1:12: parse error: …`), `Display` on [`Expr`] prints the canonical form that
//! `/api/v1/format_query` returns, and [`parse_metric_selector`] reads `match[]` selectors.
//! Experimental syntax (duration expressions, `anchored`/`smoothed`, `fill` modifiers,
//! experimental functions and aggregations) is always accepted for now.
//!
//! The grammar is a pest grammar (`promql.pest`) with operator precedence resolved by pest's
//! Pratt parser; `lex.rs` mirrors upstream's lexer where token validation and error messages
//! need it. [`Expr::pretty`] is upstream's `Pretty(0)` for `/api/v1/format_query`.
//!
//! [`engine::Engine`] evaluates instant and range queries over the `watchfire-storage` traits
//! with Prometheus 3.x semantics (floats only). [`test_script`] parses and runs upstream's
//! promqltest files and exposes the series-description parser for rule unit tests.
//!
//! This crate depends on `watchfire-model` and `watchfire-storage` only among Watchfire
//! crates (`watchfire-tsdb` for tests and benches); it is synchronous and must never depend on
//! tokio or an HTTP crate.

mod ast;
mod check;
pub mod engine;
mod error;
mod functions;
mod lex;
mod parser;
mod pretty;
mod printer;
pub mod test_script;

pub use ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, DurationExpr, DurationOp,
    DurationParam, Expr, FillValues, MatrixSelector, NumberLiteral, ParenExpr, PosRange, RangeMode, StringLiteral,
    SubqueryExpr, UnaryExpr, UnaryOp, ValueType, VectorMatching, VectorSelector,
};
pub use error::{DurationError, ParseError, Position};
pub use functions::{FUNCTIONS, Function, Variadic, lookup_function};
pub use parser::{parse_expr, parse_metric_selector};
