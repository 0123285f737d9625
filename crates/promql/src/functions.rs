//! The PromQL function table: names, argument types, arity and which functions are experimental,
//! as in Prometheus 3.x `promql/parser/functions.go`.

use crate::ast::ValueType;

/// How many arguments beyond the declared ones a function accepts. The last declared argument
/// type applies to the extra arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variadic {
    /// Exactly the declared arguments.
    None,
    /// The last declared argument may be omitted or repeated up to this many times in all
    /// (`round(v, to_nearest=1)` is `UpTo(1)`: 1 or 2 arguments).
    UpTo(usize),
    /// The last declared argument may repeat without limit (`label_join`).
    Unbounded,
}

/// A PromQL function.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub arg_types: &'static [ValueType],
    pub variadic: Variadic,
    pub return_type: ValueType,
    /// Needs `--enable-feature=promql-experimental-functions` upstream. Watchfire accepts
    /// experimental functions unconditionally for now.
    pub experimental: bool,
}

impl Function {
    /// The fewest arguments a call may have.
    pub fn min_args(&self) -> usize {
        match self.variadic {
            Variadic::None => self.arg_types.len(),
            Variadic::UpTo(_) | Variadic::Unbounded => self.arg_types.len().saturating_sub(1),
        }
    }

    /// The most arguments a call may have, or `None` when unbounded.
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            Variadic::None => Some(self.arg_types.len()),
            Variadic::UpTo(n) => Some(self.arg_types.len().saturating_sub(1) + n),
            Variadic::Unbounded => None,
        }
    }

    /// The type expected for argument `i`, or `None` past the end of a non-variadic function.
    pub fn arg_type(&self, i: usize) -> Option<ValueType> {
        match self.arg_types.get(i) {
            Some(t) => Some(*t),
            None if self.variadic != Variadic::None => self.arg_types.last().copied(),
            None => None,
        }
    }
}

/// Looks a function up by its exact (case-sensitive) name.
pub fn lookup_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

const S: ValueType = ValueType::Scalar;
const V: ValueType = ValueType::Vector;
const M: ValueType = ValueType::Matrix;
const T: ValueType = ValueType::String;
const STABLE: bool = false;
const EXPERIMENTAL: bool = true;

const fn func(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: Variadic,
    return_type: ValueType,
    experimental: bool,
) -> Function {
    Function {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// Every function, sorted by name (for binary search).
pub static FUNCTIONS: &[Function] = &[
    func("abs", &[V], Variadic::None, V, STABLE),
    func("absent", &[V], Variadic::None, V, STABLE),
    func("absent_over_time", &[M], Variadic::None, V, STABLE),
    func("acos", &[V], Variadic::None, V, STABLE),
    func("acosh", &[V], Variadic::None, V, STABLE),
    func("asin", &[V], Variadic::None, V, STABLE),
    func("asinh", &[V], Variadic::None, V, STABLE),
    func("atan", &[V], Variadic::None, V, STABLE),
    func("atanh", &[V], Variadic::None, V, STABLE),
    func("avg_over_time", &[M], Variadic::None, V, STABLE),
    func("ceil", &[V], Variadic::None, V, STABLE),
    func("changes", &[M], Variadic::None, V, STABLE),
    func("clamp", &[V, S, S], Variadic::None, V, STABLE),
    func("clamp_max", &[V, S], Variadic::None, V, STABLE),
    func("clamp_min", &[V, S], Variadic::None, V, STABLE),
    func("cos", &[V], Variadic::None, V, STABLE),
    func("cosh", &[V], Variadic::None, V, STABLE),
    func("count_over_time", &[M], Variadic::None, V, STABLE),
    func("day_of_month", &[V], Variadic::UpTo(1), V, STABLE),
    func("day_of_week", &[V], Variadic::UpTo(1), V, STABLE),
    func("day_of_year", &[V], Variadic::UpTo(1), V, STABLE),
    func("days_in_month", &[V], Variadic::UpTo(1), V, STABLE),
    func("deg", &[V], Variadic::None, V, STABLE),
    func("delta", &[M], Variadic::None, V, STABLE),
    func("deriv", &[M], Variadic::None, V, STABLE),
    func(
        "double_exponential_smoothing",
        &[M, S, S],
        Variadic::None,
        V,
        EXPERIMENTAL,
    ),
    func("end", &[], Variadic::None, S, EXPERIMENTAL),
    func("exp", &[V], Variadic::None, V, STABLE),
    func("first_over_time", &[M], Variadic::None, V, STABLE),
    func("floor", &[V], Variadic::None, V, STABLE),
    func("histogram_avg", &[V], Variadic::None, V, STABLE),
    func("histogram_count", &[V], Variadic::None, V, STABLE),
    func("histogram_fraction", &[S, S, V], Variadic::None, V, STABLE),
    func("histogram_quantile", &[S, V], Variadic::None, V, STABLE),
    func("histogram_quantiles", &[V, T, S, S], Variadic::UpTo(9), V, EXPERIMENTAL),
    func("histogram_stddev", &[V], Variadic::None, V, STABLE),
    func("histogram_stdvar", &[V], Variadic::None, V, STABLE),
    func("histogram_sum", &[V], Variadic::None, V, STABLE),
    func("hour", &[V], Variadic::UpTo(1), V, STABLE),
    func("idelta", &[M], Variadic::None, V, STABLE),
    func("increase", &[M], Variadic::None, V, STABLE),
    func("info", &[V, V], Variadic::UpTo(1), V, EXPERIMENTAL),
    func("irate", &[M], Variadic::None, V, STABLE),
    func("label_join", &[V, T, T, T], Variadic::Unbounded, V, STABLE),
    func("label_replace", &[V, T, T, T, T], Variadic::None, V, STABLE),
    func("last_over_time", &[M], Variadic::None, V, STABLE),
    func("ln", &[V], Variadic::None, V, STABLE),
    func("log10", &[V], Variadic::None, V, STABLE),
    func("log2", &[V], Variadic::None, V, STABLE),
    func("mad_over_time", &[M], Variadic::None, V, EXPERIMENTAL),
    func("max_of", &[S, S], Variadic::None, S, EXPERIMENTAL),
    func("max_over_time", &[M], Variadic::None, V, STABLE),
    func("min_of", &[S, S], Variadic::None, S, EXPERIMENTAL),
    func("min_over_time", &[M], Variadic::None, V, STABLE),
    func("minute", &[V], Variadic::UpTo(1), V, STABLE),
    func("month", &[V], Variadic::UpTo(1), V, STABLE),
    func("pi", &[], Variadic::None, S, STABLE),
    func("predict_linear", &[M, S], Variadic::None, V, STABLE),
    func("present_over_time", &[M], Variadic::None, V, STABLE),
    func("quantile_over_time", &[S, M], Variadic::None, V, STABLE),
    func("rad", &[V], Variadic::None, V, STABLE),
    func("range", &[], Variadic::None, S, EXPERIMENTAL),
    func("rate", &[M], Variadic::None, V, STABLE),
    func("resets", &[M], Variadic::None, V, STABLE),
    func("round", &[V, S], Variadic::UpTo(1), V, STABLE),
    func("scalar", &[V], Variadic::None, S, STABLE),
    func("sgn", &[V], Variadic::None, V, STABLE),
    func("sin", &[V], Variadic::None, V, STABLE),
    func("sinh", &[V], Variadic::None, V, STABLE),
    func("sort", &[V], Variadic::None, V, STABLE),
    func("sort_by_label", &[V, T], Variadic::Unbounded, V, EXPERIMENTAL),
    func("sort_by_label_desc", &[V, T], Variadic::Unbounded, V, EXPERIMENTAL),
    func("sort_desc", &[V], Variadic::None, V, STABLE),
    func("sqrt", &[V], Variadic::None, V, STABLE),
    func("start", &[], Variadic::None, S, EXPERIMENTAL),
    func("start_timestamp", &[V], Variadic::None, V, EXPERIMENTAL),
    func("stddev_over_time", &[M], Variadic::None, V, STABLE),
    func("stdvar_over_time", &[M], Variadic::None, V, STABLE),
    func("step", &[], Variadic::None, S, EXPERIMENTAL),
    func("sum_over_time", &[M], Variadic::None, V, STABLE),
    func("tan", &[V], Variadic::None, V, STABLE),
    func("tanh", &[V], Variadic::None, V, STABLE),
    func("time", &[], Variadic::None, S, STABLE),
    func("timestamp", &[V], Variadic::None, V, STABLE),
    func("ts_of_first_over_time", &[M], Variadic::None, V, EXPERIMENTAL),
    func("ts_of_last_over_time", &[M], Variadic::None, V, EXPERIMENTAL),
    func("ts_of_max_over_time", &[M], Variadic::None, V, EXPERIMENTAL),
    func("ts_of_min_over_time", &[M], Variadic::None, V, EXPERIMENTAL),
    func("vector", &[S], Variadic::None, V, STABLE),
    func("year", &[V], Variadic::UpTo(1), V, STABLE),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(FUNCTIONS.len(), 90);
        assert!(lookup_function("rate").is_some());
        assert!(lookup_function("Rate").is_none());
        assert!(lookup_function("holt_winters").is_none());
    }

    #[test]
    fn arity() {
        let round = lookup_function("round").unwrap();
        assert_eq!((round.min_args(), round.max_args()), (1, Some(2)));
        let join = lookup_function("label_join").unwrap();
        assert_eq!((join.min_args(), join.max_args()), (3, None));
        assert_eq!(join.arg_type(7), Some(ValueType::String));
        let hq = lookup_function("histogram_quantiles").unwrap();
        assert_eq!((hq.min_args(), hq.max_args()), (3, Some(12)));
        let abs = lookup_function("abs").unwrap();
        assert_eq!(abs.arg_type(1), None);
        let hour = lookup_function("hour").unwrap();
        assert_eq!((hour.min_args(), hour.max_args()), (0, Some(1)));
    }
}
