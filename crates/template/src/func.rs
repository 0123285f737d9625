//! Functions callable from templates, and the maps that register them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::value::Value;

/// The type a parameter accepts. Arguments are checked before the call, with Go's messages
/// (`wrong type for value; expected string; got int`), and literals are converted as Go
/// converts constants (`1` passed to a `Float` parameter is `1.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Anything (Go's `interface {}`); nil included.
    Any,
    String,
    Int,
    Float,
    Bool,
    /// A host object whose [`type_name`](crate::Object::type_name) is this.
    Object(&'static str),
}

impl Param {
    /// The Go type name used in error messages.
    pub fn go_type(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::String => "string",
            Param::Int => "int",
            Param::Float => "float64",
            Param::Bool => "bool",
            Param::Object(name) => name,
        }
    }
}

/// Parameter types of a function or method: fixed parameters, then optionally any number of
/// arguments of one type (a Go variadic `...T`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<Param>,
    pub variadic: Option<Param>,
}

impl Signature {
    /// Exactly these parameters.
    pub fn fixed(params: &[Param]) -> Signature {
        Signature {
            params: params.to_vec(),
            variadic: None,
        }
    }

    /// These parameters, then any number of `rest`.
    pub fn variadic(params: &[Param], rest: Param) -> Signature {
        Signature {
            params: params.to_vec(),
            variadic: Some(rest),
        }
    }

    /// The type of argument `i`.
    pub(crate) fn param(&self, i: usize) -> Param {
        self.params.get(i).copied().or(self.variadic).unwrap_or(Param::Any)
    }
}

type PlainFn = dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync;
type ContextFn = dyn Fn(&mut CallContext<'_>, &[Value]) -> Result<Value, String> + Send + Sync;

#[derive(Clone)]
enum Imp {
    Plain(Arc<PlainFn>),
    Context(Arc<ContextFn>),
}

/// A function templates can call. Its arguments arrive checked against its [`Signature`]; an
/// `Err` is reported as Go reports a function's error: `error calling NAME: MESSAGE`.
#[derive(Clone)]
pub struct Function {
    sig: Signature,
    imp: Imp,
}

impl Function {
    /// A function with exactly `params`.
    pub fn new(params: &[Param], f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static) -> Self {
        Function {
            sig: Signature::fixed(params),
            imp: Imp::Plain(Arc::new(f)),
        }
    }

    /// A function with `params` then any number of `rest` arguments.
    pub fn variadic(
        params: &[Param],
        rest: Param,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        Function {
            sig: Signature::variadic(params, rest),
            imp: Imp::Plain(Arc::new(f)),
        }
    }

    /// A function that can execute other templates of the set being executed (Prometheus'
    /// `tmpl`).
    pub fn with_context(
        sig: Signature,
        f: impl Fn(&mut CallContext<'_>, &[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        Function {
            sig,
            imp: Imp::Context(Arc::new(f)),
        }
    }

    /// The parameter types.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    pub(crate) fn call(&self, ctx: &mut CallContext<'_>, args: &[Value]) -> Result<Value, String> {
        match &self.imp {
            Imp::Plain(f) => f(args),
            Imp::Context(f) => f(ctx, args),
        }
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("sig", &self.sig)
            .finish_non_exhaustive()
    }
}

/// Named functions to add to a template, like Go's `template.FuncMap`.
#[derive(Clone, Debug, Default)]
pub struct FuncMap {
    funcs: HashMap<String, Function>,
}

impl FuncMap {
    /// An empty map.
    pub fn new() -> FuncMap {
        FuncMap::default()
    }

    /// Adds (or replaces) function `name`.
    pub fn insert(&mut self, name: impl Into<String>, f: Function) -> &mut Self {
        self.funcs.insert(name.into(), f);
        self
    }

    /// Adds every function of `other`, replacing functions with the same name.
    pub fn extend(&mut self, other: FuncMap) -> &mut Self {
        self.funcs.extend(other.funcs);
        self
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&Function> {
        self.funcs.get(name)
    }

    /// Whether a function called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.funcs.contains_key(name)
    }

    /// The function names, unordered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.funcs.keys().map(String::as_str)
    }
}

/// What a context function can do with the execution it runs in.
pub(crate) trait Executor {
    fn execute_named(&mut self, name: &str, data: Value) -> Result<String, String>;
}

/// Access to the executing template set, for functions made with
/// [`Function::with_context`].
pub struct CallContext<'a> {
    pub(crate) exec: &'a mut dyn Executor,
}

impl CallContext<'_> {
    /// Executes template `name` of the set being executed with `data` as dot, within the same
    /// depth and output limits, and returns its output.
    pub fn execute_template(&mut self, name: &str, data: Value) -> Result<String, String> {
        self.exec.execute_named(name, data)
    }
}

impl fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallContext")
    }
}
