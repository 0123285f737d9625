//! The executor: walks parsed trees against a data value, as Go's `text/template/exec.go`.
//!
//! Go reports execution errors at "the node being evaluated", which is whatever node its
//! evaluator last marked with `state.at`. Users see that node's text and position in every
//! error, so this executor marks nodes at the same points Go does (`at`), including the odd
//! ones (an error in `(f "x").Field` is reported at `"x"`, the last node evaluated).
//!
//! Execution is bounded: template calls, control structures and parenthesised pipelines
//! share one depth limit, and the number of steps and the output size are capped, so a
//! template can neither overflow the stack nor run or grow without end.

use std::collections::HashMap;
use std::sync::Arc;

use crate::builtins::Builtin;
use crate::error::Error;
use crate::fmt::{quote, sprint};
use crate::func::{CallContext, Executor, FuncMap, Function, Param, Signature};
use crate::parse::{Arg, Branch, CommandNode, ListNode, Node, NumberNode, PipeNode, Tree, VariableNode};
use crate::value::{Object, Value};

/// What a missing map key evaluates to (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=default`: no value; an action prints `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the zero value of the map's element type (`""` for label maps).
    /// Prometheus and Alertmanager execute templates with this option.
    Zero,
    /// `missingkey=error`: execution stops with an error.
    Error,
}

/// Bounds on one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of template calls, control structures and parenthesised pipelines. Go allows
    /// 100000 nested template calls on a growable stack; the default here keeps the worst case
    /// within a 2 MiB thread stack even in debug builds.
    pub max_depth: usize,
    /// Bytes of output, and of any single string a function returns.
    pub max_output_bytes: usize,
    /// Nodes visited, range iterations and function calls, together.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 500,
            max_output_bytes: 16 << 20,
            max_steps: 10_000_000,
        }
    }
}

/// How deeply a value computed by a function may nest lists and maps. Templates can build
/// values in loops (`$x = args $x`); printing and dropping them recurses.
const MAX_VALUE_DEPTH: usize = 100;

/// Whether `v` nests lists and maps more than `limit` levels deep.
fn nests_deeper(v: &Value, limit: usize) -> bool {
    match v {
        Value::List(items) => limit == 0 || items.iter().any(|i| nests_deeper(i, limit - 1)),
        Value::Map(m) => limit == 0 || m.iter().any(|(_, i)| nests_deeper(i, limit - 1)),
        _ => false,
    }
}

/// A namespace of parsed templates with the functions and options they run with.
#[derive(Clone, Debug, Default)]
pub(crate) struct Set {
    pub trees: HashMap<String, Arc<Tree>>,
    pub funcs: FuncMap,
    pub missing_key: MissingKey,
    pub limits: Limits,
}

impl Set {
    pub fn has_function(&self, name: &str) -> bool {
        self.funcs.contains(name) || Builtin::lookup(name).is_some()
    }

    /// Executes `name` with `data` as dot.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::ExecTemplate {
                template: name.to_owned(),
                message: format!("{} is an incomplete or empty template", quote(name)),
            });
        };
        let mut state = State {
            set: self,
            tree,
            out: String::new(),
            vars: vec![("$", data.clone())],
            depth: 0,
            steps: 0,
            at: At::None,
        };
        state.walk_list(data, &tree.root).map_err(|e| *e)?;
        Ok(state.out)
    }
}

/// The node errors are reported at.
#[derive(Clone, Copy)]
enum At<'s> {
    None,
    Node(&'s Node),
    Pipe(&'s PipeNode),
    Cmd(&'s CommandNode),
    Arg(&'s Arg),
    Var(&'s VariableNode),
}

/// How a list of nodes finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

enum Callee<'s> {
    Func(&'s Function),
    Builtin(Builtin),
    Method(Arc<dyn Object>, Signature),
}

struct State<'s> {
    set: &'s Set,
    tree: &'s Tree,
    out: String,
    vars: Vec<(&'s str, Value)>,
    depth: usize,
    steps: u64,
    at: At<'s>,
}

/// Errors are boxed inside the executor: it keeps the recursive frames small.
type R<T> = Result<T, Box<Error>>;

impl<'s> State<'s> {
    fn error(&self, message: impl Into<String>) -> Box<Error> {
        let message = message.into();
        let (pos, context) = match self.at {
            At::None => {
                return Box::new(Error::ExecTemplate {
                    template: self.tree.name.clone(),
                    message,
                });
            }
            At::Node(n) => (node_pos(n), n.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Var(v) => (v.pos, v.to_string()),
        };
        Box::new(Error::Exec {
            location: self.tree.location(pos),
            template: self.tree.name.clone(),
            context,
            message,
        })
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.set.limits.max_steps {
            return Err(self.error(format!(
                "exceeded maximum number of execution steps ({})",
                self.set.limits.max_steps
            )));
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        if self.depth >= self.set.limits.max_depth {
            return Err(self.error(format!(
                "exceeded maximum template depth ({})",
                self.set.limits.max_depth
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.set.limits.max_output_bytes {
            return Err(self.error(format!(
                "output exceeds the limit of {} bytes",
                self.set.limits.max_output_bytes
            )));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn var_value(&self, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, name: &str, value: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Value) {
        let len = self.vars.len();
        self.vars[len - n].1 = value;
    }

    fn walk_list(&mut self, dot: &Value, list: &'s ListNode) -> R<Flow> {
        for node in &list.nodes {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// Walks a nested list, counting it against the depth limit.
    fn walk_nested(&mut self, dot: &Value, list: &'s ListNode) -> R<Flow> {
        self.enter()?;
        let flow = self.walk_list(dot, list);
        self.depth -= 1;
        flow
    }

    fn walk(&mut self, dot: &Value, node: &'s Node) -> R<Flow> {
        self.step()?;
        self.at = At::Node(node);
        match node {
            Node::Text { text } => self.write(text)?,
            Node::Action { pipe, .. } => {
                let value = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(node, &value)?;
                }
            }
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe.as_ref())?,
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, b: &'s Branch) -> R<Flow> {
        let mark = self.vars.len();
        let result = (|| {
            let value = self.eval_pipeline(dot, &b.pipe)?;
            if value.is_true() {
                if with {
                    self.walk_nested(&value, &b.list)
                } else {
                    self.walk_nested(dot, &b.list)
                }
            } else if let Some(else_list) = &b.else_list {
                self.walk_nested(dot, else_list)
            } else {
                Ok(Flow::Normal)
            }
        })();
        self.vars.truncate(mark);
        result
    }

    fn walk_range(&mut self, dot: &Value, node: &'s Node, b: &'s Branch) -> R<Flow> {
        let outer = self.vars.len();
        let result = (|| {
            let value = self.eval_pipeline(dot, &b.pipe)?;
            let mark = self.vars.len();
            let ran = match &value {
                Value::List(items) => {
                    for (i, elem) in items.iter().enumerate() {
                        if self.one_iteration(b, mark, Value::from(i), elem.clone())? {
                            break;
                        }
                    }
                    !items.is_empty()
                }
                Value::Map(m) => {
                    for (k, elem) in m.iter() {
                        if self.one_iteration(b, mark, Value::string(k), elem.clone())? {
                            break;
                        }
                    }
                    !m.is_empty()
                }
                Value::Int(n) => {
                    if b.pipe.decl.len() > 1 {
                        return Err(self.error(format!(
                            "can't use {} to iterate over more than one variable",
                            sprint(std::slice::from_ref(&value))
                        )));
                    }
                    for i in 0..*n {
                        if self.one_iteration(b, mark, Value::Nil, Value::Int(i))? {
                            break;
                        }
                    }
                    *n > 0
                }
                Value::Object(o) => match o.range() {
                    Some(pairs) => {
                        for (k, elem) in &pairs {
                            if self.one_iteration(b, mark, k.clone(), elem.clone())? {
                                break;
                            }
                        }
                        !pairs.is_empty()
                    }
                    None => return Err(self.cannot_range(&value)),
                },
                Value::Nil => false,
                other => return Err(self.cannot_range(other)),
            };
            if !ran && let Some(else_list) = &b.else_list {
                self.at = At::Node(node);
                self.walk_nested(dot, else_list)?;
            }
            Ok(Flow::Normal)
        })();
        self.vars.truncate(outer);
        result
    }

    fn cannot_range(&self, v: &Value) -> Box<Error> {
        self.error(format!("range can't iterate over {}", sprint(std::slice::from_ref(v))))
    }

    /// Runs the range body once; returns whether `{{break}}` ended the loop.
    fn one_iteration(&mut self, b: &'s Branch, mark: usize, index: Value, elem: Value) -> R<bool> {
        self.step()?;
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                let first = if decl.len() > 1 { index.clone() } else { elem.clone() };
                self.set_var(&decl[0].ident[0], first)?;
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(&decl[1].ident[0], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let flow = self.walk_nested(&elem, &b.list);
        self.vars.truncate(mark);
        Ok(flow? == Flow::Break)
    }

    fn walk_template(&mut self, dot: &Value, node: &'s Node, name: &str, pipe: Option<&'s PipeNode>) -> R<()> {
        self.at = At::Node(node);
        let Some(tree) = self.set.trees.get(name) else {
            return Err(self.error(format!("template {} not defined", quote(name))));
        };
        self.enter()?;
        // Without a pipeline the template runs with nil data, as in Go.
        let dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let result = self.run_tree(tree, dot);
        self.depth -= 1;
        result
    }

    /// Runs `tree` with its own variables (templates inherit none) and returns to the caller's.
    fn run_tree(&mut self, tree: &'s Tree, dot: Value) -> R<()> {
        let vars = std::mem::replace(&mut self.vars, vec![("$", dot.clone())]);
        let caller = std::mem::replace(&mut self.tree, tree);
        let result = self.walk_list(&dot, &tree.root);
        self.tree = caller;
        self.vars = vars;
        result.map(|_| ())
    }

    fn print_value(&mut self, node: &'s Node, v: &Value) -> R<()> {
        self.at = At::Node(node);
        match v {
            Value::Nil => self.write("<no value>"),
            Value::String(s) => self.write(s),
            Value::Func(_) => Err(self.error(format!("can't print {node} of type func"))),
            v => {
                let s = sprint(std::slice::from_ref(v));
                self.write(&s)
            }
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'s PipeNode) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.ident[0], value.clone())?;
            } else {
                self.vars.push((&var.ident[0], value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_nested_pipeline(&mut self, dot: &Value, pipe: &'s PipeNode) -> R<Value> {
        self.enter()?;
        let v = self.eval_pipeline(dot, pipe);
        self.depth -= 1;
        v
    }

    fn not_a_function(&self, args: &'s [Arg], final_: &Option<Value>) -> R<()> {
        if args.len() > 1 || final_.is_some() {
            return Err(self.error(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'s CommandNode, final_: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { ident, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot, dot.clone(), At::Arg(first), ident, &cmd.args, final_);
            }
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, &cmd.args, final_),
            Arg::Identifier { name, .. } => {
                self.at = At::Arg(first);
                return self.eval_function(dot, name, At::Cmd(cmd), &cmd.args, final_);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &final_)?;
                return self.eval_nested_pipeline(dot, p);
            }
            Arg::Variable(v) => return self.eval_variable_node(dot, v, &cmd.args, final_),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &final_)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.error("nil is not a command")),
            Arg::Number(n) => self.ideal_constant(n),
            Arg::String { text, .. } => Ok(Value::string(text.as_str())),
            _ => Err(self.error(format!("can't evaluate command {}", quote(&first.to_string())))),
        }
    }

    /// A number in a context without a type: float if written as one, else int.
    fn ideal_constant(&self, n: &NumberNode) -> R<Value> {
        if n.is_float_literal()
            && let Some(f) = n.float
        {
            return Ok(Value::Float(f));
        }
        match n.int {
            Some(i) => Ok(Value::Int(i)),
            None => Err(self.error(format!("{} overflows int", n.text))),
        }
    }

    fn eval_chain_node(&mut self, dot: &Value, chain: &'s Arg, args: &'s [Arg], final_: Option<Value>) -> R<Value> {
        self.at = At::Arg(chain);
        let Arg::Chain { node, field, .. } = chain else {
            return Err(self.error("internal error: not a chain"));
        };
        if matches!(**node, Arg::Nil { .. }) {
            return Err(self.error(format!("indirection through explicit nil in {chain}")));
        }
        let receiver = self.eval_arg(dot, Param::Any, node)?;
        self.eval_field_chain(dot, receiver, At::Arg(chain), field, args, final_)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value,
        var: &'s VariableNode,
        args: &'s [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        self.at = At::Var(var);
        let value = self.var_value(&var.ident[0])?;
        if var.ident.len() == 1 {
            if !args.is_empty() {
                self.not_a_function(args, &final_)?;
            } else if final_.is_some() {
                return Err(self.error(format!("can't give argument to non-function {var}")));
            }
            return Ok(value);
        }
        self.eval_field_chain(dot, value, At::Var(var), &var.ident[1..], args, final_)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        node: At<'s>,
        ident: &'s [String],
        args: &'s [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let (last, init) = ident.split_last().expect("a field chain has at least one field");
        for name in init {
            receiver = self.eval_field(dot, name, node, &[], None, receiver)?;
        }
        self.eval_field(dot, last, node, args, final_, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: At<'s>,
        args: &'s [Arg],
        final_: Option<Value>,
        receiver: Value,
    ) -> R<Value> {
        let has_args = args.len() > 1 || final_.is_some();
        match &receiver {
            Value::Nil => {
                if self.set.missing_key == MissingKey::Error {
                    return Err(self.error(format!("nil data; no entry for key {}", quote(name))));
                }
                Ok(Value::Nil)
            }
            Value::Object(o) => {
                if let Some(sig) = o.method(name) {
                    return self.eval_call(dot, Callee::Method(o.clone(), sig), node, name, args, final_);
                }
                match o.field(name) {
                    Some(_) if has_args => {
                        Err(self.error(format!("{name} has arguments but cannot be invoked as function")))
                    }
                    Some(v) => Ok(v),
                    None => Err(self.error(format!("can't evaluate field {name} in type {}", o.type_name()))),
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                match m.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => match self.set.missing_key {
                        MissingKey::Default => Ok(Value::Nil),
                        MissingKey::Zero => Ok(m.zero().clone()),
                        MissingKey::Error => Err(self.error(format!("map has no entry for key {}", quote(name)))),
                    },
                }
            }
            other => Err(self.error(format!("can't evaluate field {name} in type {}", other.type_name()))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &'s str,
        node: At<'s>,
        args: &'s [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let callee = if let Some(f) = self.set.funcs.get(name) {
            Callee::Func(f)
        } else if let Some(b) = Builtin::lookup(name) {
            Callee::Builtin(b)
        } else {
            return Err(self.error(format!("{} is not a defined function", quote(name))));
        };
        self.eval_call(dot, callee, node, name, args, final_)
    }

    /// Calls a function or method. `args` starts with the node naming it (not an argument);
    /// `node` is where a failing call is reported.
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee<'s>,
        node: At<'s>,
        name: &str,
        args: &'s [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        let args = args.get(1..).unwrap_or_default();
        let sig = match &callee {
            Callee::Func(f) => f.signature().clone(),
            Callee::Builtin(b) => b.signature(),
            Callee::Method(_, sig) => sig.clone(),
        };
        let num_in = args.len() + usize::from(final_.is_some());
        if sig.variadic.is_some() {
            if num_in < sig.params.len() {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.params.len(),
                    args.len()
                )));
            }
        } else if num_in != sig.params.len() {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                sig.params.len()
            )));
        }
        self.step()?;

        // `and` and `or` evaluate their arguments only as far as needed.
        if let Callee::Builtin(b @ (Builtin::And | Builtin::Or)) = callee {
            let is_or = b == Builtin::Or;
            let mut v = Value::Nil;
            for arg in args {
                v = self.eval_arg(dot, Param::Any, arg)?;
                if v.is_true() == is_or {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }

        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, sig.param(i), arg)?);
        }
        if let Some(f) = final_ {
            argv.push(self.validate_type(f, sig.param(num_in - 1))?);
        }
        let result = match callee {
            Callee::Func(f) => f.call(&mut CallContext { exec: self }, &argv),
            Callee::Builtin(Builtin::Call) => {
                let callee_name = args.first().map(|a| a.to_string()).unwrap_or_default();
                self.call_builtin(&callee_name, &argv)
            }
            Callee::Builtin(b) => b.call(&argv),
            Callee::Method(o, _) => o.call_method(name, &argv),
        };
        match result {
            Ok(Value::String(s)) if s.len() > self.set.limits.max_output_bytes => {
                self.at = node;
                Err(self.error(format!(
                    "result of {name} exceeds the limit of {} bytes",
                    self.set.limits.max_output_bytes
                )))
            }
            Ok(v) if nests_deeper(&v, MAX_VALUE_DEPTH) => {
                self.at = node;
                Err(self.error(format!("result of {name} nests deeper than {MAX_VALUE_DEPTH} levels")))
            }
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = node;
                Err(self.error(format!("error calling {name}: {e}")))
            }
        }
    }

    /// The `call` builtin: calls a function value with already evaluated arguments.
    fn call_builtin(&mut self, callee_name: &str, argv: &[Value]) -> Result<Value, String> {
        let f = match &argv[0] {
            Value::Func(f) => f.clone(),
            Value::Nil => return Err("call of nil".into()),
            other => return Err(format!("non-function {callee_name} of type {}", other.type_name())),
        };
        let args = &argv[1..];
        let sig = f.signature();
        if sig.variadic.is_some() {
            if args.len() < sig.params.len() {
                return Err(format!(
                    "wrong number of args for {callee_name}: got {} want at least {}",
                    args.len(),
                    sig.params.len()
                ));
            }
        } else if args.len() != sig.params.len() {
            return Err(format!(
                "wrong number of args for {callee_name}: got {} want {}",
                args.len(),
                sig.params.len()
            ));
        }
        for (i, a) in args.iter().enumerate() {
            let want = sig.param(i);
            if want == Param::Any || value_matches(a, want) {
                continue;
            }
            if a.is_nil() {
                return Err(format!("arg {i}: value is nil; should be of type {}", want.go_type()));
            }
            return Err(format!(
                "arg {i}: value has type {}; should be {}",
                a.type_name(),
                want.go_type()
            ));
        }
        f.call(&mut CallContext { exec: self }, args)
    }

    fn validate_type(&self, value: Value, param: Param) -> R<Value> {
        if param == Param::Any || value_matches(&value, param) {
            return Ok(value);
        }
        if value.is_nil() {
            return Err(self.error(format!("invalid value; expected {}", param.go_type())));
        }
        Err(self.error(format!(
            "wrong type for value; expected {}; got {}",
            param.go_type(),
            value.type_name()
        )))
    }

    fn eval_arg(&mut self, dot: &Value, param: Param, arg: &'s Arg) -> R<Value> {
        self.at = At::Arg(arg);
        let v = match arg {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                if param == Param::Any {
                    return Ok(Value::Nil);
                }
                return Err(self.error(format!("cannot assign nil to {}", param.go_type())));
            }
            Arg::Field { ident, .. } => {
                self.eval_field_chain(dot, dot.clone(), At::Arg(arg), ident, std::slice::from_ref(arg), None)?
            }
            Arg::Variable(v) => self.eval_variable_node(dot, v, &[], None)?,
            Arg::Pipe(p) => self.eval_nested_pipeline(dot, p)?,
            Arg::Identifier { name, .. } => self.eval_function(dot, name, At::Arg(arg), &[], None)?,
            Arg::Chain { .. } => self.eval_chain_node(dot, arg, &[], None)?,
            Arg::Bool { val, .. } => {
                return match param {
                    Param::Any | Param::Bool => Ok(Value::Bool(*val)),
                    _ => Err(self.literal_mismatch(param, arg)),
                };
            }
            Arg::String { text, .. } => {
                return match param {
                    Param::Any | Param::String => Ok(Value::string(text.as_str())),
                    _ => Err(self.literal_mismatch(param, arg)),
                };
            }
            Arg::Number(n) => {
                return match param {
                    Param::Any => self.ideal_constant(n),
                    Param::Int => n.int.map(Value::Int).ok_or_else(|| self.literal_mismatch(param, arg)),
                    Param::Float => n
                        .float
                        .map(Value::Float)
                        .ok_or_else(|| self.literal_mismatch(param, arg)),
                    _ => Err(self.literal_mismatch(param, arg)),
                };
            }
        };
        self.validate_type(v, param)
    }

    fn literal_mismatch(&self, param: Param, arg: &Arg) -> Box<Error> {
        let want = match param {
            Param::Int => "integer",
            Param::Float => "float",
            Param::Bool => "bool",
            Param::String => "string",
            Param::Any | Param::Object(_) => {
                return self.error(format!("can't handle {arg} for arg of type {}", param.go_type()));
            }
        };
        self.error(format!("expected {want}; found {arg}"))
    }
}

fn value_matches(v: &Value, p: Param) -> bool {
    matches!(
        (p, v),
        (Param::Any, _)
            | (Param::String, Value::String(_))
            | (Param::Int, Value::Int(_))
            | (Param::Float, Value::Float(_))
            | (Param::Bool, Value::Bool(_))
    ) || matches!((p, v), (Param::Object(name), Value::Object(o)) if o.type_name() == name)
}

fn node_pos(n: &Node) -> usize {
    match n {
        Node::Action { pos, .. } | Node::Template { pos, .. } => *pos,
        Node::If(b) | Node::Range(b) | Node::With(b) => b.pipe.pos,
        Node::Text { .. } | Node::Break | Node::Continue => 0,
    }
}

impl Executor for State<'_> {
    fn execute_named(&mut self, name: &str, data: Value) -> Result<String, String> {
        let Some(tree) = self.set.trees.get(name) else {
            return Err(Error::NoTemplate {
                name: name.to_owned(),
                template: self.tree.name.clone(),
            }
            .to_string());
        };
        self.enter().map_err(|e| e.to_string())?;
        let out = std::mem::take(&mut self.out);
        let at = self.at;
        let result = self.run_tree(tree, data);
        self.at = at;
        let produced = std::mem::replace(&mut self.out, out);
        self.depth -= 1;
        result.map(|()| produced).map_err(|e| e.to_string())
    }
}
