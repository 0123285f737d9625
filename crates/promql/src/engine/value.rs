//! Query results: the four PromQL value types as the evaluator returns them.

use std::fmt;

use watchfire_model::{Labels, Timestamp, format_go_float};

/// One float point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FPoint {
    /// Milliseconds since the epoch.
    pub t: Timestamp,
    pub f: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    /// For instant-query results, the evaluation time.
    pub t: Timestamp,
    pub f: f64,
    /// Delayed `__name__` removal (upstream `Sample.DropName`): the metric name is still
    /// present but will be dropped before the result is returned.
    pub(crate) drop_name: bool,
}

impl Sample {
    /// A sample with the given labels, time and value.
    pub fn new(metric: Labels, t: Timestamp, f: f64) -> Self {
        Sample {
            metric,
            t,
            f,
            drop_name: false,
        }
    }
}

/// One series of a range vector or range-query result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub floats: Vec<FPoint>,
    pub(crate) drop_name: bool,
}

impl Series {
    /// A series with the given labels and points.
    pub fn new(metric: Labels, floats: Vec<FPoint>) -> Self {
        Series {
            metric,
            floats,
            drop_name: false,
        }
    }
}

/// An instant vector.
pub type Vector = Vec<Sample>;

/// A range vector or the result of a range query, sorted by labels when returned by the
/// engine.
pub type Matrix = Vec<Series>;

/// The value of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar at the evaluation time `t`.
    Scalar {
        t: Timestamp,
        v: f64,
    },
    /// A string literal at the evaluation time `t`.
    String {
        t: Timestamp,
        v: String,
    },
    Vector(Vector),
    Matrix(Matrix),
}

impl Value {
    /// `"scalar"`, `"string"`, `"vector"` or `"matrix"`, as the HTTP API's `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

impl fmt::Display for Value {
    /// A compact human-readable form (`{a="b"} => 1 @[1000]` per line), for logs and test
    /// failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar { t, v } => write!(f, "scalar: {} @[{t}]", format_go_float(*v)),
            Value::String { t, v } => write!(f, "string: {v:?} @[{t}]"),
            Value::Vector(vec) => {
                for (i, s) in vec.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{} => {} @[{}]", s.metric, format_go_float(s.f), s.t)?;
                }
                Ok(())
            }
            Value::Matrix(m) => {
                for (i, s) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{} =>", s.metric)?;
                    for p in &s.floats {
                        write!(f, " {} @[{}]", format_go_float(p.f), p.t)?;
                    }
                }
                Ok(())
            }
        }
    }
}
