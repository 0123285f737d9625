//! The parser: builds a tree per template (`define`/`block` bodies become their own trees).
//!
//! The grammar, the node positions and the error messages follow Go's
//! `text/template/parse/parse.go`; node positions matter because execution errors report the
//! line and column of the node being evaluated, exactly as Go does. Nesting is bounded
//! ([`MAX_PARSE_DEPTH`]) so that hostile input cannot overflow the stack.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::error::Error;
use crate::lex::{Item, ItemType, lex};

/// The deepest nesting of control structures and parenthesised pipelines a template may use.
/// Go has no such limit; real templates nest a handful of levels.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;

/// One parsed template: the body of the top-level text or of a `define`/`block`.
#[derive(Debug)]
pub(crate) struct Tree {
    pub name: String,
    /// The name of the top-level template whose text this tree came from (for error locations).
    pub parse_name: Arc<str>,
    /// The whole text that was parsed, for turning byte offsets into lines and columns.
    pub text: Arc<str>,
    pub root: ListNode,
}

impl Tree {
    /// `NAME:LINE:COL` of a byte offset, with Go's column convention (bytes since the start of
    /// the line, counting from 0).
    pub fn location(&self, pos: usize) -> String {
        let before = &self.text[..pos.min(self.text.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        format!("{}:{}:{}", self.parse_name, line, col)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ListNode {
    pub nodes: Vec<Node>,
}

impl ListNode {
    /// Whether the list holds nothing but whitespace text (Go's `parse.IsEmptyTree`).
    pub fn is_empty_tree(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n, Node::Text { text, .. } if text.trim().is_empty()))
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    Text {
        text: String,
    },
    Action {
        pos: usize,
        pipe: PipeNode,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<PipeNode>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: PipeNode,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

#[derive(Debug)]
pub(crate) struct PipeNode {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<VariableNode>,
    pub cmds: Vec<CommandNode>,
}

#[derive(Debug)]
pub(crate) struct VariableNode {
    pub pos: usize,
    /// `$x.A.B` is `["$x", "A", "B"]`.
    pub ident: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct CommandNode {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// An operand of a command.
#[derive(Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        field: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Variable(VariableNode),
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number(NumberNode),
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<PipeNode>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

/// A numeric literal with every interpretation Go's parser accepts for it.
#[derive(Debug)]
pub(crate) struct NumberNode {
    pub pos: usize,
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
}

impl NumberNode {
    /// The value in a context without a type (Go's `idealConstant`): a float when the literal
    /// is written as one, otherwise an int.
    pub fn is_float_literal(&self) -> bool {
        let t = &self.text;
        let hex_int = t.len() > 2 && t.starts_with('0') && matches!(t.as_bytes()[1], b'x' | b'X');
        !hex_int && !t.starts_with('\'') && t.contains(['.', 'e', 'E', 'p', 'P'])
    }
}

// Go's node String() forms, used for error context.

impl fmt::Display for ListNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.nodes.iter().try_for_each(|n| write!(f, "{n}"))
    }
}

fn write_branch(f: &mut fmt::Formatter<'_>, kw: &str, b: &Branch) -> fmt::Result {
    write!(f, "{{{{{kw} {}}}}}{}", b.pipe, b.list)?;
    if let Some(e) = &b.else_list {
        write!(f, "{{{{else}}}}{e}")?;
    }
    f.write_str("{{end}}")
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text { text, .. } => f.write_str(text),
            Node::Action { pipe, .. } => write!(f, "{{{{{pipe}}}}}"),
            Node::If(b) => write_branch(f, "if", b),
            Node::Range(b) => write_branch(f, "range", b),
            Node::With(b) => write_branch(f, "with", b),
            Node::Template { name, pipe, .. } => match pipe {
                None => write!(f, "{{{{template {}}}}}", crate::fmt::quote(name)),
                Some(p) => write!(f, "{{{{template {} {p}}}}}", crate::fmt::quote(name)),
            },
            Node::Break => f.write_str("{{break}}"),
            Node::Continue => f.write_str("{{continue}}"),
        }
    }
}

impl fmt::Display for PipeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for VariableNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl fmt::Display for CommandNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            match a {
                Arg::Pipe(p) => write!(f, "({p})")?,
                a => write!(f, "{a}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { ident, .. } => ident.iter().try_for_each(|i| write!(f, ".{i}")),
            Arg::Chain { node, field, .. } => {
                match &**node {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    n => write!(f, "{n}")?,
                }
                field.iter().try_for_each(|i| write!(f, ".{i}"))
            }
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Variable(v) => write!(f, "{v}"),
            Arg::Dot { .. } => f.write_char('.'),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

/// What an action parsed to: a node, or one of the markers that end a list.
enum Parsed {
    Node(Node),
    Marker(Marker),
}

/// `{{end}}` or `{{else}}` (`is_chain` for `{{else if ...}}`/`{{else with ...}}`).
enum Marker {
    End,
    Else { is_chain: bool },
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::End => f.write_str("{{end}}"),
            Marker::Else { .. } => f.write_str("{{else}}"),
        }
    }
}

/// Parses `text` as template `name`, adding it and every `define`/`block` in it to `trees`
/// with Go's rules: a later definition in the same text that is not empty is an error.
pub(crate) fn parse(
    name: &str,
    text: &str,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, Tree>, Error> {
    let parse_name: Arc<str> = Arc::from(name);
    let text: Arc<str> = Arc::from(text);
    let mut p = Parser {
        items: lex(&text, !has_function("break"), !has_function("continue")),
        i: 0,
        furthest: 0,
        parse_name: parse_name.clone(),
        text: text.clone(),
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        has_function,
        trees: BTreeMap::new(),
    };
    let root = p.parse_top()?;
    let tree = Tree {
        name: name.to_owned(),
        parse_name,
        text,
        root,
    };
    p.add(tree)?;
    Ok(p.trees)
}

struct Parser<'a> {
    items: Vec<Item>,
    i: usize,
    /// The furthest token read; Go reports parse errors at its line.
    furthest: usize,
    parse_name: Arc<str>,
    text: Arc<str>,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
    has_function: &'a dyn Fn(&str) -> bool,
    trees: BTreeMap<String, Tree>,
}

type PResult<T> = Result<T, Error>;

impl Parser<'_> {
    fn next(&mut self) -> Item {
        let idx = self.i.min(self.items.len() - 1);
        self.i = idx + 1;
        self.furthest = self.furthest.max(idx);
        self.items[idx].clone()
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn peek(&mut self) -> Item {
        let it = self.next();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl Into<String>) -> Error {
        let line = self.items[self.furthest.min(self.items.len() - 1)].line;
        Error::Parse {
            name: self.parse_name.to_string(),
            line,
            message: msg.into(),
        }
    }

    fn unexpected(&self, token: &Item, context: &str) -> Error {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.parse_name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_owned();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != typ {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.errorf(format!("nesting deeper than {MAX_PARSE_DEPTH} levels")));
        }
        Ok(())
    }

    fn add(&mut self, tree: Tree) -> PResult<()> {
        let replace = match self.trees.get(&tree.name) {
            None => true,
            Some(old) if old.root.is_empty_tree() => true,
            Some(_) if !tree.root.is_empty_tree() => {
                return Err(self.errorf(format!(
                    "template: multiple definition of template {}",
                    crate::fmt::quote(&tree.name)
                )));
            }
            Some(_) => false,
        };
        if replace {
            self.trees.insert(tree.name.clone(), tree);
        }
        Ok(())
    }

    fn new_tree(&self, name: String, root: ListNode) -> Tree {
        Tree {
            name,
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root,
        }
    }

    /// The top level: like an item list, but also accepts `define` and runs to EOF.
    fn parse_top(&mut self) -> PResult<ListNode> {
        let mut root = ListNode::default();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let mark = self.i;
                self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.i = mark;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.nodes.push(n),
                Parsed::Marker(m) => return Err(self.errorf(format!("unexpected {m}"))),
            }
        }
        Ok(root)
    }

    /// A sub-template shares the token stream but has its own variables and range depth.
    fn with_sub_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let result = f(self);
        self.vars = vars;
        self.range_depth = range_depth;
        result
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        if t.typ != ItemType::String && t.typ != ItemType::RawString {
            return Err(self.unexpected(&t, CONTEXT));
        }
        let name = unquote(&t.val).map_err(|e| self.errorf(e))?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let root = self.with_sub_tree(|p| {
            let (root, end) = p.item_list()?;
            if !matches!(end, Marker::End) {
                return Err(p.errorf(format!("unexpected {end} in {CONTEXT}")));
            }
            Ok(root)
        })?;
        let tree = self.new_tree(name, root);
        self.add(tree)
    }

    /// `textOrAction*`, up to `{{end}}` or `{{else}}`, which is returned separately.
    fn item_list(&mut self) -> PResult<(ListNode, Marker)> {
        let mut list = ListNode::default();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.nodes.push(n),
                Parsed::Marker(m) => return Ok((list, m)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text { text: token.val })),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break => return self.break_continue("{{break}}").map(|()| Parsed::Node(Node::Break)),
            ItemType::Continue => {
                return self
                    .break_continue("{{continue}}")
                    .map(|()| Parsed::Node(Node::Continue));
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::Marker(Marker::End));
            }
            ItemType::If => return self.if_control().map(Parsed::Node),
            ItemType::Range => return self.range_control().map(Parsed::Node),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::With => return self.with_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action { pos, pipe }))
    }

    fn break_continue(&mut self, what: &str) -> PResult<()> {
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return Err(self.unexpected(&token, what));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(format!("{what} outside {{{{range}}}}")));
        }
        Ok(())
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            // `{{else if ...}}` is read as `{{else}}{{if ...}}...{{end}}`.
            return Ok(Parsed::Marker(Marker::Else { is_chain: true }));
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Marker(Marker::Else { is_chain: false }))
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let vars = self.vars.len();
        let result = self.parse_control_inner(context);
        self.vars.truncate(vars);
        self.depth -= 1;
        result
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let list = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = list?;
        let else_list = match next {
            Marker::End => None,
            Marker::Else { is_chain } => {
                let peek = self.peek().typ;
                if is_chain && context == "if" && peek == ItemType::If {
                    self.next();
                    Some(ListNode {
                        nodes: vec![self.if_control()?],
                    })
                } else if is_chain && context == "with" && peek == ItemType::With {
                    self.next();
                    Some(ListNode {
                        nodes: vec![self.with_control()?],
                    })
                } else {
                    let (list, next) = self.item_list()?;
                    if !matches!(next, Marker::End) {
                        return Err(self.errorf(format!("expected end; found {next}")));
                    }
                    Some(list)
                }
            }
        };
        Ok(Branch { pipe, list, else_list })
    }

    fn if_control(&mut self) -> PResult<Node> {
        self.parse_control("if").map(Node::If)
    }

    fn range_control(&mut self) -> PResult<Node> {
        self.parse_control("range").map(Node::Range)
    }

    fn with_control(&mut self) -> PResult<Node> {
        self.parse_control("with").map(Node::With)
    }

    fn template_name(&self, token: &Item, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => unquote(&token.val).map_err(|e| self.errorf(e)),
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        self.enter()?;
        let root = self.with_sub_tree(|p| {
            let (root, end) = p.item_list()?;
            if !matches!(end, Marker::End) {
                return Err(p.errorf(format!("unexpected {end} in {CONTEXT}")));
            }
            Ok(root)
        })?;
        self.depth -= 1;
        let tree = self.new_tree(name.clone(), root);
        self.add(tree)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            Some(self.pipeline(CONTEXT, ItemType::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    /// `declarations? command ('|' command)*`, up to `end` (a right delimiter or paren).
    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<PipeNode> {
        let pos = self.peek_non_space().pos;
        let mut pipe = PipeNode {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let mark = self.i;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(variable(v.pos, &v.val));
                    self.vars.push(v.val.clone());
                    break;
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(variable(v.pos, &v.val));
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => continue,
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    self.i = mark;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &PipeNode, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool { .. } | Arg::Dot { .. } | Arg::Nil { .. } | Arg::Number(_) | Arg::String { .. }
            ) {
                return Err(self.errorf(format!("non executable command in pipeline stage {}", i + 1)));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<CommandNode> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(CommandNode { pos, args })
    }

    /// `term .Field*`
    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            fields.push(self.next().val[1..].to_owned());
        }
        Ok(Some(match node {
            // Go folds fields after a field or variable into that node, positioned where the
            // chain starts.
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field { pos: chain_pos, ident }
            }
            Arg::Variable(mut v) => {
                v.ident.extend(fields);
                v.pos = chain_pos;
                Arg::Variable(v)
            }
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number(_) | Arg::Nil { .. } | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    crate::fmt::quote(&node.to_string())
                )));
            }
            node => Arg::Chain {
                pos: chain_pos,
                node: Box::new(node),
                field: fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !(self.has_function)(&token.val) {
                    return Err(self.errorf(format!("function {} not defined", crate::fmt::quote(&token.val))));
                }
                Arg::Identifier { pos, name: token.val }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let v = variable(pos, &token.val);
                if !self.vars.contains(&v.ident[0]) {
                    return Err(self.errorf(format!("undefined variable {}", crate::fmt::quote(&v.ident[0]))));
                }
                Arg::Variable(v)
            }
            ItemType::Field => Arg::Field {
                pos,
                ident: token.val[1..].split('.').map(str::to_owned).collect(),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                Arg::Number(new_number(pos, &token.val, token.typ).map_err(|e| self.errorf(e))?)
            }
            ItemType::LeftParen => {
                if self.depth >= MAX_PARSE_DEPTH {
                    return Err(self.errorf("max expression depth exceeded"));
                }
                self.depth += 1;
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            ItemType::String | ItemType::RawString => {
                let text = unquote(&token.val).map_err(|e| self.errorf(e))?;
                Arg::String {
                    pos,
                    quoted: token.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn variable(pos: usize, name: &str) -> VariableNode {
    VariableNode {
        pos,
        ident: name.split('.').map(str::to_owned).collect(),
    }
}

/// Builds a number node as Go's `parse.newNumber` does: integers in any Go base (with `_`
/// separators), floats, and character constants; a float literal that is integral also
/// counts as an int.
fn new_number(pos: usize, text: &str, typ: ItemType) -> Result<NumberNode, String> {
    let mut n = NumberNode {
        pos,
        text: text.to_owned(),
        int: None,
        float: None,
    };
    if typ == ItemType::CharConstant {
        let (c, tail) = unquote_char(&text[1..], '\'').ok_or_else(|| "invalid syntax".to_owned())?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        n.int = Some(c as i64);
        n.float = Some(c as u32 as f64);
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        return Err(format!(
            "complex numbers are not supported: {}",
            crate::fmt::quote(text)
        ));
    }
    if let Some(i) = parse_go_int(text) {
        n.int = Some(i);
        n.float = Some(i as f64);
        return Ok(n);
    }
    let Some(f) = parse_go_float_literal(text) else {
        return Err(format!("illegal number syntax: {}", crate::fmt::quote(text)));
    };
    if !text.contains(['.', 'e', 'E', 'p', 'P']) {
        // It parsed as a float but looks like an integer: too large for an int.
        return Err(format!("integer overflow: {}", crate::fmt::quote(text)));
    }
    n.float = Some(f);
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        n.int = Some(f as i64);
    }
    Ok(n)
}

/// Validates Go's digit-separator rule: `_` only between digits or after a base prefix.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut prev = b'.';
    let mut i = 0;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'x' | b'b' | b'o') {
        prev = b'0';
        i = 2;
    }
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            if !prev.is_ascii_hexdigit() {
                return false;
            }
        } else if prev == b'_' && !c.is_ascii_hexdigit() {
            return false;
        }
        prev = c;
        i += 1;
    }
    prev != b'_'
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || (body.contains('_') && !underscores_ok(body)) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseFloat` for template literals (decimal forms; hex floats are rejected).
fn parse_go_float_literal(s: &str) -> Option<f64> {
    if s.contains('_') && !underscores_ok(s.trim_start_matches(['+', '-'])) {
        return None;
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    let body = cleaned.trim_start_matches(['+', '-']);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') || body.starts_with("0x") {
        return None;
    }
    let v: f64 = cleaned.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Go's `strconv.UnquoteChar`: one (possibly escaped) character from the start of `s`, and the
/// rest of `s`. `quote` is the surrounding quote, which must be escaped inside.
pub(crate) fn unquote_char(s: &str, quote: char) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c, chars.as_str()));
    }
    let e = chars.next()?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Some((c, rest));
    }
    let hex = |n: usize| -> Option<(u32, &str)> {
        let digits = rest.get(..n)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((u32::from_str_radix(digits, 16).ok()?, &rest[n..]))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            // `\xNN` is a byte; in Go it may form UTF-8 with neighbours. Only ASCII is
            // representable in a Rust string on its own.
            (v < 0x80).then(|| (char::from(v as u8), tail))
        }
        'u' => {
            let (v, tail) = hex(4)?;
            Some((char::from_u32(v)?, tail))
        }
        'U' => {
            let (v, tail) = hex(8)?;
            Some((char::from_u32(v)?, tail))
        }
        '0'..='7' => {
            let digits = s.get(1..4)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            let v = u32::from_str_radix(digits, 8).ok()?;
            (v < 0x80).then(|| (char::from(v as u8), &s[4..]))
        }
        _ => None,
    }
}

/// Go's `strconv.Unquote` for the string forms templates use: `"..."` with escapes, and
/// `` `...` `` raw strings (carriage returns dropped).
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    const SYNTAX: &str = "invalid syntax";
    if s.len() < 2 {
        return Err(SYNTAX.into());
    }
    if s.starts_with('`') {
        if !s.ends_with('`') || s[1..s.len() - 1].contains('`') {
            return Err(SYNTAX.into());
        }
        return Ok(s[1..s.len() - 1].replace('\r', ""));
    }
    if !s.starts_with('"') || !s.ends_with('"') {
        return Err(SYNTAX.into());
    }
    let mut body = &s[1..s.len() - 1];
    if body.contains('\n') {
        return Err(SYNTAX.into());
    }
    let mut out = String::with_capacity(body.len());
    while !body.is_empty() {
        let (c, rest) = unquote_char(body, '"').ok_or_else(|| SYNTAX.to_owned())?;
        out.push(c);
        body = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go_rules() {
        let num = |s: &str| new_number(0, s, ItemType::Number).unwrap();
        assert_eq!(num("0x1F").int, Some(31));
        assert_eq!(num("010").int, Some(8));
        assert_eq!(num("1_000").int, Some(1000));
        assert_eq!(num("1e3").int, Some(1000));
        assert!(num("1e3").is_float_literal());
        assert!(!num("0x10").is_float_literal());
        assert_eq!(num("1.5").int, None);
        assert!(
            new_number(0, "99999999999999999999", ItemType::Number)
                .unwrap_err()
                .contains("overflow")
        );
        let c = new_number(0, "'\\n'", ItemType::CharConstant).unwrap();
        assert_eq!(c.int, Some(10));
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a\tb\u00e9\x41\101""#).unwrap(), "a\tbéAA");
        assert_eq!(unquote("`a\\n`").unwrap(), "a\\n");
        assert!(unquote(r#""\q""#).is_err());
    }
}
