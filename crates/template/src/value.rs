//! The values templates compute with.
//!
//! Go templates work on arbitrary Go values through reflection. Watchfire's templates work on
//! [`Value`]: the Go kinds templates actually meet (nil, bool, int, float64, string, slices and
//! string-keyed maps), functions for the `call` builtin, and host objects ([`Object`]) for
//! everything with fields and methods of its own (Alertmanager's alert lists and label sets,
//! Prometheus' query results, `time.Time`).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use watchfire_model::Labels;

use crate::func::{Function, Signature};

/// A template value.
///
/// Ints and floats stay distinct because Go prints them differently (`1` and `1` but `1e+06`
/// and `1000000`) and its comparison functions refuse to mix them. Cloning is cheap: strings,
/// lists, maps and objects are shared.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil, and the "no value" of a missing field or map key. Printed by an action as
    /// `<no value>` and by `print`/`printf` as `<nil>`, as Go does.
    #[default]
    Nil,
    Bool(bool),
    /// Go's `int` (64 bits).
    Int(i64),
    /// Go's `float64`.
    Float(f64),
    String(Arc<str>),
    /// A Go slice (`[]interface {}`).
    List(Arc<Vec<Value>>),
    /// A Go map with string keys; iteration is in key order, as Go's template `range` and
    /// `fmt` sort map keys.
    Map(Arc<Map>),
    /// A host object exposing fields and methods.
    Object(Arc<dyn Object>),
    /// A function value, callable with the `call` builtin.
    Func(Function),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A list of values.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(Arc::new(items.into_iter().collect()))
    }

    /// A `map[string]interface {}`: missing keys read as nil under `missingkey=zero`.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(Arc::new(Map::new(Value::Nil, entries)))
    }

    /// A `map[string]string`: missing keys read as `""` under `missingkey=zero`.
    pub fn string_map<K: Into<String>, V: AsRef<str>>(entries: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(Arc::new(Map::new(
            Value::string(""),
            entries.into_iter().map(|(k, v)| (k, Value::string(v.as_ref()))),
        )))
    }

    /// A host object.
    pub fn object(o: impl Object) -> Value {
        Value::Object(Arc::new(o))
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The host object of type `T`, if this is one.
    pub fn downcast<T: Object>(&self) -> Option<&T> {
        match self {
            Value::Object(o) => {
                let any: &dyn Any = &**o;
                any.downcast_ref::<T>()
            }
            _ => None,
        }
    }

    /// Whether this is nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Go's notion of truth for `if`, `with`, `and`, `or` and `not`: false for nil, false,
    /// zero numbers and empty strings, lists and maps.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.truth(),
            Value::Func(_) => true,
        }
    }

    /// The Go type name, as error messages and `%T` print it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(m) => match m.zero {
                Value::String(_) => "map[string]string".into(),
                _ => "map[string]interface {}".into(),
            },
            Value::Object(o) => o.type_name().into(),
            Value::Func(_) => "func".into(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x:?})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter()).finish(),
            Value::Object(o) => write!(f, "Object({o:?})"),
            Value::Func(_) => f.write_str("Func"),
        }
    }
}

impl fmt::Display for Value {
    /// Go's default format (`%v`), as `print` would write the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::fmt::sprint(std::slice::from_ref(self)))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}

impl From<usize> for Value {
    fn from(i: usize) -> Self {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::string(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(Arc::new(v))
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(Arc::new(m))
    }
}

impl From<&Labels> for Value {
    /// A label set as Prometheus hands it to templates: a `map[string]string`.
    fn from(labels: &Labels) -> Self {
        Value::string_map(labels.iter().map(|l| (l.name, l.value)))
    }
}

/// A string-keyed map with the zero value of its element type (what a missing key yields
/// under `missingkey=zero` and from `index`).
#[derive(Clone, Debug, Default)]
pub struct Map {
    entries: BTreeMap<String, Value>,
    zero: Value,
}

impl Map {
    /// A map whose element type has the zero value `zero`.
    pub fn new<K: Into<String>>(zero: Value, entries: impl IntoIterator<Item = (K, Value)>) -> Map {
        Map {
            entries: entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            zero,
        }
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Stores `value` under `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.entries.insert(key.into(), value);
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The zero value of the element type.
    pub fn zero(&self) -> &Value {
        &self.zero
    }
}

/// A host value with fields and methods, such as Alertmanager's `Alerts` or a `time.Time`.
///
/// Field and method names are looked up the way Go's evaluator does: `.Name args...` first
/// tries a method (which receives the arguments), then a field. A method's [`Signature`] is
/// checked before the call, so arity and argument-type errors read as Go's do.
pub trait Object: Any + fmt::Debug + Send + Sync {
    /// The Go type name for error messages and `%T`, e.g. `template.queryResult`.
    fn type_name(&self) -> &str;

    /// The value of field (or map key) `name`, or `None` if there is no such field.
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    /// The signature of method `name`, or `None` if there is no such method.
    fn method(&self, _name: &str) -> Option<Signature> {
        None
    }

    /// Calls method `name` (which [`method`](Object::method) reported) with checked arguments.
    /// An error is reported as `error calling NAME: ...`.
    fn call_method(&self, name: &str, _args: &[Value]) -> Result<Value, String> {
        Err(format!("{} has no method {name}", self.type_name()))
    }

    /// How `fmt` prints the value with `%v` (for a Go `Stringer`, its `String()`).
    fn format(&self) -> String;

    /// Whether the value is a Go `Stringer`: `%s`, `%q` and `%x` then format [`format`]'s
    /// result as a string.
    ///
    /// [`format`]: Object::format
    fn is_stringer(&self) -> bool {
        false
    }

    /// The plain value `fmt` uses for other verbs (a `time.Duration` is an int64 underneath).
    fn underlying(&self) -> Option<Value> {
        None
    }

    /// The length for `len`, if the object has one.
    fn length(&self) -> Option<usize> {
        None
    }

    /// `index OBJ KEY`, if the object supports indexing.
    fn index(&self, _key: &Value) -> Option<Result<Value, String>> {
        None
    }

    /// The `(key, element)` pairs `range` visits, if the object is iterable.
    fn range(&self) -> Option<Vec<(Value, Value)>> {
        None
    }

    /// Truth for `if` and friends. Go structs and non-nil pointers are true; slice-like and
    /// map-like objects should be true only when non-empty.
    fn truth(&self) -> bool {
        self.length().is_none_or(|n| n > 0)
    }
}
