//! Integration tests of watchfire-template: one binary, one module per area.

mod default_tmpl;
mod errors;
mod exec;
mod fuzz;
mod printf;
mod prometheus;
mod support;
