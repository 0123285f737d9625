//! Evaluator tests: the upstream promqltest corpus (with a checked-in known-failures list),
//! query limits, and API behaviour.

mod corpus;
mod limits;
mod start_timestamps;
