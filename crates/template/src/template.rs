//! [`Template`]: a named template with its namespace of associated templates.

use std::sync::Arc;

use crate::error::Error;
use crate::exec::{Limits, MissingKey, Set};
use crate::func::FuncMap;
use crate::parse;
use crate::value::Value;

/// A parsed template and the templates associated with it (its `define`s and `block`s and any
/// text added with [`Template::add`]), like a Go `*template.Template`.
///
/// ```
/// use watchfire_template::{Template, Value};
///
/// let t = Template::new("greeting").parse("Hello, {{ .name }}!").unwrap();
/// let data = Value::map([("name", Value::from("world"))]);
/// assert_eq!(t.execute(&data).unwrap(), "Hello, world!");
/// ```
///
/// Functions must be registered before parsing, as in Go, because the parser rejects calls
/// of unknown functions. A `Template` is immutable once parsed and can be executed from many
/// threads at once.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    set: Set,
}

impl Template {
    /// An empty template called `name`.
    pub fn new(name: impl Into<String>) -> Template {
        Template {
            name: name.into(),
            set: Set::default(),
        }
    }

    /// Adds functions (replacing same-named ones, builtins included).
    pub fn funcs(mut self, funcs: FuncMap) -> Template {
        self.set.funcs.extend(funcs);
        self
    }

    /// Sets what missing map keys evaluate to.
    pub fn missing_key(mut self, missing_key: MissingKey) -> Template {
        self.set.missing_key = missing_key;
        self
    }

    /// Sets the execution bounds.
    pub fn limits(mut self, limits: Limits) -> Template {
        self.set.limits = limits;
        self
    }

    /// Parses `text` as the body of this template; its `define`s join the namespace.
    pub fn parse(mut self, text: &str) -> Result<Template, Error> {
        let name = self.name.clone();
        self.add(&name, text)?;
        Ok(self)
    }

    /// Parses `text` as template `name` in this template's namespace (Go's
    /// `t.New(name).Parse(text)`). A definition replaces an earlier one of the same name
    /// unless it is empty, so later files can override earlier `define`s.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let set = &self.set;
        let trees = parse::parse(name, text, &|f| set.has_function(f))?;
        for (tree_name, tree) in trees {
            let keep_old = tree.root.is_empty_tree() && self.set.trees.contains_key(&tree_name);
            if !keep_old {
                self.set.trees.insert(tree_name, Arc::new(tree));
            }
        }
        Ok(())
    }

    /// This template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the namespace defines template `name`.
    pub fn has_template(&self, name: &str) -> bool {
        self.set.trees.contains_key(name)
    }

    /// The names of all templates in the namespace, sorted.
    pub fn template_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.set.trees.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Executes this template with `data` as dot and returns its output.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        self.set.execute(&self.name, data)
    }

    /// Executes the associated template `name` with `data` as dot.
    pub fn execute_template(&self, name: &str, data: &Value) -> Result<String, Error> {
        if !self.set.trees.contains_key(name) {
            return Err(Error::NoTemplate {
                name: name.to_owned(),
                template: self.name.clone(),
            });
        }
        self.set.execute(name, data)
    }
}
