//! Shared test data: a data value with the shapes Go's exec_test.go uses, and a host object.

use watchfire_template::{Function, Map, Object, Param, Signature, Template, Value};

/// A host object with fields, methods and a method returning another object.
#[derive(Debug)]
pub struct Thing {
    pub x: &'static str,
}

impl Object for Thing {
    fn type_name(&self) -> &str {
        "*main.Thing"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "X" => Some(Value::from(self.x)),
            "Labels" => Some(Value::string_map([("a", "1"), ("b", "2")])),
            _ => None,
        }
    }

    fn method(&self, name: &str) -> Option<Signature> {
        match name {
            "Method0" | "Self" | "Fails" => Some(Signature::fixed(&[])),
            "Method1" => Some(Signature::fixed(&[Param::Int])),
            "Method2" => Some(Signature::fixed(&[Param::Int, Param::String])),
            "Join" => Some(Signature::variadic(&[Param::String], Param::String)),
            _ => None,
        }
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        Ok(match name {
            "Method0" => Value::from("M0"),
            "Self" => Value::object(Thing { x: "inner" }),
            "Fails" => return Err("it failed".into()),
            "Method1" => Value::from(format!("Method1: {}", args[0])),
            "Method2" => Value::from(format!("Method2: {} {}", args[0], args[1])),
            "Join" => {
                let sep = args[0].as_str().unwrap_or_default();
                let parts: Vec<&str> = args[1..].iter().filter_map(Value::as_str).collect();
                Value::from(parts.join(sep))
            }
            _ => unreachable!("method() lists the methods"),
        })
    }

    fn format(&self) -> String {
        format!("Thing({})", self.x)
    }

    fn is_stringer(&self) -> bool {
        true
    }
}

/// A list-like object with a method, like Alertmanager's `Alerts`.
#[derive(Debug)]
pub struct Items(pub Vec<Value>);

impl Object for Items {
    fn type_name(&self) -> &str {
        "main.Items"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        (name == "Evens").then(|| Signature::fixed(&[]))
    }

    fn call_method(&self, _name: &str, _args: &[Value]) -> Result<Value, String> {
        Ok(Value::object(Items(self.0.iter().step_by(2).cloned().collect())))
    }

    fn format(&self) -> String {
        Value::list(self.0.iter().cloned()).to_string()
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v.clone()))
                .collect(),
        )
    }
}

fn ints(v: &[i64]) -> Value {
    Value::list(v.iter().map(|&i| Value::Int(i)))
}

/// The data most table tests run against.
pub fn data() -> Value {
    let msi = Map::new(
        Value::Int(0),
        [("one", Value::Int(1)), ("two", Value::Int(2)), ("three", Value::Int(3))],
    );
    Value::map([
        ("True", Value::Bool(true)),
        ("False", Value::Bool(false)),
        ("I", Value::Int(17)),
        ("Neg", Value::Int(-3)),
        ("F", Value::Float(1.5)),
        ("FZero", Value::Float(0.0)),
        ("Million", Value::Float(1e6)),
        ("Str", Value::from("foo")),
        ("Empty", Value::Nil),
        ("EmptyStr", Value::from("")),
        ("SI", ints(&[3, 4, 5])),
        ("SIEmpty", Value::list([])),
        ("SS", Value::list([Value::from("a"), Value::from("b")])),
        (
            "Mixed",
            Value::list([Value::Int(1), Value::from("x"), Value::Float(2.5), Value::Nil]),
        ),
        ("MSI", Value::from(msi)),
        ("MSIEmpty", Value::map::<&str>([])),
        ("MSS", Value::string_map([("k", "v")])),
        (
            "Nested",
            Value::map([("Inner", Value::map([("Leaf", Value::from("deep"))]))]),
        ),
        ("SMSI", Value::list([Value::map([("two", Value::Int(22))])])),
        ("Obj", Value::object(Thing { x: "x" })),
        (
            "Items",
            Value::object(Items(vec![Value::Int(10), Value::Int(11), Value::Int(12)])),
        ),
        ("ItemsEmpty", Value::object(Items(vec![]))),
        (
            "Add",
            Value::Func(Function::new(&[Param::Int, Param::Int], |a| match (&a[0], &a[1]) {
                (Value::Int(x), Value::Int(y)) => Ok(Value::Int(x + y)),
                _ => Err("not ints".into()),
            })),
        ),
        ("Boom", Value::Func(Function::new(&[], |_| Err("boom".into())))),
    ])
}

/// Parses and executes `text` as template "t" against [`data`].
pub fn run(text: &str) -> Result<String, String> {
    run_with(Template::new("t"), text, &data())
}

pub fn run_with(t: Template, text: &str, data: &Value) -> Result<String, String> {
    let t = t.parse(text).map_err(|e| e.to_string())?;
    t.execute(data).map_err(|e| e.to_string())
}

/// Asserts each `(template, expected output)` pair.
pub fn check_outputs(cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (text, want) in cases {
        match run(text) {
            Ok(got) if got == *want => {}
            other => failures.push(format!("{text:?}: want {want:?}, got {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Asserts each `(template, expected error)` pair.
pub fn check_errors(cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (text, want) in cases {
        match run(text) {
            Err(got) if got == *want => {}
            other => failures.push(format!("{text:?}:\n  want Err({want:?})\n  got  {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
