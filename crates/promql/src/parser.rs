//! Builds the AST from the pest parse tree, applying the checks upstream makes in its grammar
//! actions (`generated_parser.y`, `parse.go`): literal validation, modifier placement, offsets,
//! `@`, ranges, aggregation and function arity.
//!
//! Operator precedence is resolved with pest's PrattParser. Upstream's yacc grammar gives unary
//! `+`/`-` the precedence of `*` (`%prec MUL`), so `-a * b` is `(-a) * b` and `-a ^ b` is
//! `-(a ^ b)`; pest's Pratt parser parses a prefix operand at one level below the prefix, so
//! the prefix is registered between `* / % atan2` and `^` to get the same trees. Postfix
//! modifiers (`[..]`, `offset`, `@`, `anchored`, `smoothed`) bind tightest: upstream shifts them
//! onto the expression just before them.

use std::cell::Cell;
use std::sync::LazyLock;

use pest::Parser as _;
use pest::error::InputLocation;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use watchfire_model::{Duration, METRIC_NAME, MatchType, Matcher, go_quote};

use crate::ast::*;
use crate::check;
use crate::error::ParseError;
use crate::functions::lookup_function;
use crate::lex::{self, Kind, Lexer, NumberKind};

#[derive(pest_derive::Parser)]
#[grammar = "promql.pest"]
struct PromQlParser;

/// How deeply expressions may nest: brackets, and the operators that nest to the right (`^`,
/// unary signs, duration arithmetic). Deeper input is rejected rather than risking the stack
/// (upstream has no limit, but no real query comes near it). Left-nested chains such as
/// `a or b or c …` do not count: they are built, checked, printed and dropped without recursion.
const MAX_DEPTH: usize = 256;

static EXPR_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left) | Op::infix(Rule::op_unless, Assoc::Left))
        .op(Op::infix(Rule::op_eqlc, Assoc::Left)
            | Op::infix(Rule::op_neq, Assoc::Left)
            | Op::infix(Rule::op_lte, Assoc::Left)
            | Op::infix(Rule::op_lss, Assoc::Left)
            | Op::infix(Rule::op_gte, Assoc::Left)
            | Op::infix(Rule::op_gtr, Assoc::Left)
            | Op::infix(Rule::op_trim_upper, Assoc::Left)
            | Op::infix(Rule::op_trim_lower, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::infix(Rule::op_mul, Assoc::Left)
            | Op::infix(Rule::op_div, Assoc::Left)
            | Op::infix(Rule::op_mod, Assoc::Left)
            | Op::infix(Rule::op_atan2, Assoc::Left))
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
        .op(Op::infix(Rule::op_pow, Assoc::Right))
        .op(Op::postfix(Rule::range_suffix)
            | Op::postfix(Rule::offset_modifier)
            | Op::postfix(Rule::at_modifier)
            | Op::postfix(Rule::anchored_modifier)
            | Op::postfix(Rule::smoothed_modifier))
});

static DURATION_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::dur_add, Assoc::Left) | Op::infix(Rule::dur_sub, Assoc::Left))
        .op(Op::infix(Rule::dur_mul, Assoc::Left)
            | Op::infix(Rule::dur_div, Assoc::Left)
            | Op::infix(Rule::dur_mod, Assoc::Left))
        .op(Op::prefix(Rule::dur_neg) | Op::prefix(Rule::dur_pos))
        .op(Op::infix(Rule::dur_pow, Assoc::Right))
});

/// Parses a PromQL expression and type-checks it as Prometheus 3.x does.
pub fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    check_nesting(input)?;
    let expr_pair = PromQlParser::parse(Rule::expression, input)
        .map_err(|e| syntax_error(input, &e))?
        .find(|p| p.as_rule() == Rule::expr)
        .expect("a parsed expression contains expr");
    let builder = Builder {
        input,
        depth: Cell::new(0),
    };
    let mut expr = builder.expr(expr_pair)?;
    check::check(&mut expr, input)?;
    Ok(expr)
}

/// Parses a series selector such as `up{job="x"}` or `{__name__=~"a.*"}` (the `match[]`
/// parameter of the HTTP API) into its matchers.
///
/// As upstream's `ParseMetricSelector`, this does not require a non-empty matcher; the API
/// layer checks that itself ("match[] must contain at least one non-empty matcher").
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    check_nesting(input)?;
    let sel = PromQlParser::parse(Rule::metric_selector, input)
        .map_err(|e| syntax_error(input, &e))?
        .find(|p| p.as_rule() == Rule::vector_selector)
        .expect("a parsed metric selector contains vector_selector");
    let builder = Builder {
        input,
        depth: Cell::new(0),
    };
    Ok(builder.vector_selector(sel)?.matchers)
}

/// Rejects input whose brackets nest more than [`MAX_DEPTH`] deep, ignoring brackets in
/// strings and comments.
fn check_nesting(input: &str) -> Result<(), ParseError> {
    let bytes = input.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ParseError::new(
                        input,
                        i,
                        i + 1,
                        format!("expression nests more than {MAX_DEPTH} levels deep"),
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Turns a pest failure into upstream's message: a lexer error if the input cannot even be
/// tokenised up to the failure, otherwise "unexpected <token>" with some context.
fn syntax_error(input: &str, err: &pest::error::Error<Rule>) -> ParseError {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((p, _)) => p,
    };
    let positives: &[Rule] = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
        // pest stops before exhausting the stack ("stack limit reached").
        pest::error::ErrorVariant::CustomError { message } => {
            return ParseError::new(input, pos, input.len(), format!("expression too complex: {message}"));
        }
    };
    diagnose(input, pos, context_for(positives))
}

/// Upstream's context phrase for what the parser was expecting.
fn context_for(expected: &[Rule]) -> &'static str {
    let has = |r: Rule| expected.contains(&r);
    if has(Rule::label_value) || expected == [Rule::string] {
        " in label matching, expected string"
    } else if has(Rule::match_op) {
        " in label matching, expected label matching operator"
    } else if expected == [Rule::rbrace, Rule::comma] || expected == [Rule::comma, Rule::rbrace] {
        " in label matching, expected \",\" or \"}\""
    } else if has(Rule::label_matcher) || has(Rule::label_name) {
        " in label matching, expected identifier or \"}\""
    } else if has(Rule::grouping_label) || has(Rule::grouping_ident) {
        " in grouping opts, expected label"
    } else if has(Rule::grouping_labels) {
        " in grouping opts, expected \"(\""
    } else if has(Rule::offset_atom) || has(Rule::offset_expr) {
        " in offset, expected number, duration, step(), or range()"
    } else if has(Rule::at_start) || has(Rule::at_number) {
        " in @, expected timestamp"
    } else if has(Rule::subquery_colon) {
        " in subquery or range, expected \":\" or \"]\""
    } else if has(Rule::dur_expr) {
        " in subquery or range selector, expected number, duration, step(), or range()"
    } else {
        ""
    }
}

/// Explains why parsing stopped at byte `pos`.
pub(crate) fn diagnose(input: &str, pos: usize, context: &str) -> ParseError {
    let mut lexer = Lexer::new(input);
    let mut first = true;
    loop {
        match lexer.next_token() {
            Err(e) => return ParseError::new(input, e.pos, input.len(), e.message),
            Ok(tok) => {
                if first && tok.kind == Kind::Eof {
                    return ParseError::new(input, 0, 0, "no expression found in input");
                }
                first = false;
                if tok.kind == Kind::Eof || tok.end > pos {
                    let message = format!("unexpected {}{context}", lex::describe(input, &tok));
                    return ParseError::new(input, tok.start, tok.end, message);
                }
            }
        }
    }
}

/// Converts seconds to whole milliseconds the way upstream does: round to nanoseconds
/// (`time.Duration(math.Round(v * 1e9))`), then truncate to milliseconds.
pub(crate) fn seconds_to_millis(v: f64) -> i64 {
    let ns = (v * 1e9).round() as i64;
    ns / 1_000_000
}

/// Upstream's `durationLiteralOutOfRange`: whether `v` seconds overflow int64 nanoseconds.
fn duration_out_of_range(v: f64) -> bool {
    const LIMIT: f64 = 9_223_372_036.854_776; // 2^63 / 1e9
    !(-LIMIT..=LIMIT).contains(&v)
}

fn span(pair: &Pair<'_, Rule>) -> PosRange {
    let s = pair.as_span();
    PosRange::new(s.start(), s.end())
}

fn unexpected_pair(input: &str, pair: &Pair<'_, Rule>) -> ParseError {
    let s = pair.as_span();
    ParseError::new(
        input,
        s.start(),
        s.end(),
        format!("internal parser error: unexpected {:?}", pair.as_rule()),
    )
}

struct Builder<'i> {
    input: &'i str,
    /// The nesting budget used so far (see [`MAX_DEPTH`]).
    depth: Cell<usize>,
}

impl<'i> Builder<'i> {
    fn error(&self, pos: PosRange, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, pos.start as usize, pos.end as usize, message)
    }

    /// Runs `f` one nesting level deeper, costing `cost` levels of [`MAX_DEPTH`].
    fn nested<T>(
        &self,
        pos: PosRange,
        cost: usize,
        f: impl FnOnce() -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        let depth = self.depth.get() + cost;
        if depth > MAX_DEPTH {
            return Err(self.error(pos, format!("expression nests more than {MAX_DEPTH} levels deep")));
        }
        self.depth.set(depth);
        let result = f();
        self.depth.set(depth - cost);
        result
    }

    fn expr(&self, pair: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        let pos = span(&pair);
        let pairs = pair.into_inner();
        // Pratt parsing recurses for prefix operators and the right-associative `^`.
        let cost = 1 + pairs
            .clone()
            .filter(|p| matches!(p.as_rule(), Rule::neg | Rule::pos | Rule::op_pow))
            .count();
        self.nested(pos, cost, || {
            EXPR_PRATT
                .map_primary(|p| self.primary(p))
                .map_prefix(|op, rhs| self.prefix(op, rhs?))
                .map_postfix(|lhs, op| self.postfix(lhs?, op))
                .map_infix(|lhs, op, rhs| self.infix(lhs?, op, rhs?))
                .parse(pairs)
        })
    }

    fn primary(&self, pair: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        match pair.as_rule() {
            Rule::number_literal => {
                let tok = pair.into_inner().next().expect("number_literal has a token");
                Ok(Expr::NumberLiteral(self.number(tok)?))
            }
            Rule::string_literal => {
                let tok = pair.into_inner().next().expect("string_literal has a string");
                Ok(Expr::StringLiteral(self.string(tok)?))
            }
            Rule::paren_expr => {
                let pos = span(&pair);
                let inner = pair.into_inner().next().expect("paren_expr has an expr");
                Ok(Expr::Paren(ParenExpr {
                    expr: Box::new(self.expr(inner)?),
                    pos,
                }))
            }
            Rule::aggregate_expr => self.aggregate(pair),
            Rule::function_call => self.call(pair),
            Rule::vector_selector => Ok(Expr::VectorSelector(self.vector_selector(pair)?)),
            _ => Err(unexpected_pair(self.input, &pair)),
        }
    }

    /// A NUMBER or DURATION token, or `Inf`/`NaN`, as a literal in seconds.
    fn number(&self, tok: Pair<'i, Rule>) -> Result<NumberLiteral, ParseError> {
        let pos = span(&tok);
        let text = tok.as_str();
        if tok.as_rule() == Rule::inf_nan {
            let value = lex::number_value(text).map_err(|m| self.error(pos, m))?;
            return Ok(NumberLiteral {
                value,
                duration: false,
                pos,
            });
        }
        let start = pos.start as usize;
        match lex::scan_number_or_duration(self.input, start) {
            Err(end) => Err(self.error(
                pos,
                format!("bad number or duration syntax: {}", go_quote(&self.input[start..end])),
            )),
            Ok((_, end)) if end != pos.end as usize => Err(diagnose(self.input, end, "")),
            Ok((NumberKind::Number, _)) => {
                let value = lex::number_value(text).map_err(|m| self.error(pos, m))?;
                Ok(NumberLiteral {
                    value,
                    duration: false,
                    pos,
                })
            }
            Ok((NumberKind::Duration, _)) => {
                let d = Duration::parse(text).map_err(|e| self.error(pos, e.to_string()))?;
                if d.as_millis() > i64::MAX / 1_000_000 {
                    return Err(self.error(pos, "duration out of range"));
                }
                Ok(NumberLiteral {
                    value: d.as_secs_f64(),
                    duration: true,
                    pos,
                })
            }
        }
    }

    fn string_bytes(&self, tok: &Pair<'i, Rule>) -> Result<Vec<u8>, ParseError> {
        lex::unquote(tok.as_str()).map_err(|m| self.error(span(tok), m))
    }

    fn string(&self, tok: Pair<'i, Rule>) -> Result<StringLiteral, ParseError> {
        let pos = span(&tok);
        let bytes = self.string_bytes(&tok)?;
        Ok(match String::from_utf8(bytes) {
            Ok(value) => StringLiteral {
                value,
                invalid_utf8: None,
                pos,
            },
            Err(e) => {
                let bytes = e.into_bytes();
                StringLiteral {
                    value: String::from_utf8_lossy(&bytes).into_owned(),
                    invalid_utf8: Some(bytes.into_boxed_slice()),
                    pos,
                }
            }
        })
    }

    /// A string used as a name or matcher value; Rust strings cannot hold invalid UTF-8, so
    /// such bytes become U+FFFD.
    fn lossy_string(&self, tok: &Pair<'i, Rule>) -> Result<String, ParseError> {
        let bytes = self.string_bytes(tok)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn call_args(&self, pair: Pair<'i, Rule>) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::expr => args.push(self.expr(p)?),
                Rule::trailing_comma => {
                    return Err(self.error(span(&p), "trailing commas not allowed in function call args"));
                }
                _ => {}
            }
        }
        Ok(args)
    }

    fn aggregate(&self, pair: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        let pos = span(&pair);
        let mut op = None;
        let mut args = None;
        let mut grouping = Vec::new();
        let mut without = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::aggregate_op => op = AggregateOp::from_keyword(p.as_str()),
                Rule::call_args => args = Some(self.call_args(p)?),
                Rule::grouping => {
                    let mut inner = p.into_inner();
                    let kw = inner.next().expect("grouping has a keyword");
                    without = kw.as_rule() == Rule::kw_without;
                    let labels = inner.next().expect("grouping has labels");
                    grouping = self.grouping_labels(labels)?;
                }
                _ => return Err(unexpected_pair(self.input, &p)),
            }
        }
        let op = op.expect("aggregate_expr starts with aggregate_op");
        let mut args = args.unwrap_or_default();
        if args.is_empty() {
            return Err(self.error(pos, "no arguments for aggregate expression provided"));
        }
        let wanted = if op.has_param() { 2 } else { 1 };
        if args.len() != wanted {
            return Err(self.error(
                pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {wanted}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = Box::new(args.pop().expect("length checked"));
        let param = args.pop().map(Box::new);
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            pos,
        }))
    }

    fn grouping_labels(&self, pair: Pair<'i, Rule>) -> Result<Vec<String>, ParseError> {
        let mut labels = Vec::new();
        for label in pair.into_inner().filter(|p| p.as_rule() == Rule::grouping_label) {
            let tok = label.into_inner().next().expect("grouping_label has a token");
            if tok.as_rule() == Rule::grouping_ident {
                labels.push(tok.as_str().to_owned());
                continue;
            }
            let bytes = self.string_bytes(&tok)?;
            match String::from_utf8(bytes) {
                Ok(s) if !s.is_empty() => labels.push(s),
                Ok(s) => {
                    return Err(self.error(span(&tok), format!("invalid label name for grouping: {}", go_quote(&s))));
                }
                Err(e) => {
                    return Err(self.error(
                        span(&tok),
                        format!("invalid label name for grouping: {}", lex::quote_bytes(e.as_bytes())),
                    ));
                }
            }
        }
        Ok(labels)
    }

    fn call(&self, pair: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        let pos = span(&pair);
        let mut inner = pair.into_inner();
        let name = inner.next().expect("function_call has a name");
        let func = lookup_function(name.as_str()).ok_or_else(|| {
            self.error(
                span(&name),
                format!("unknown function with name {}", go_quote(name.as_str())),
            )
        })?;
        let args = self.call_args(inner.next().expect("function_call has arguments"))?;
        Ok(Expr::Call(Call { func, args, pos }))
    }

    pub(crate) fn vector_selector(&self, pair: Pair<'i, Rule>) -> Result<VectorSelector, ParseError> {
        let pos = span(&pair);
        let mut name = None;
        let mut matchers = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::metric_name => name = Some(p.as_str().to_owned()),
                Rule::label_matchers => {
                    for m in p.into_inner().filter(|m| m.as_rule() == Rule::label_matcher) {
                        matchers.push(self.label_matcher(m)?);
                    }
                }
                _ => return Err(unexpected_pair(self.input, &p)),
            }
        }
        if let Some(n) = &name {
            matchers
                .push(Matcher::new(MatchType::Equal, METRIC_NAME, n.clone()).expect("equality matchers always build"));
        }
        Ok(VectorSelector {
            name,
            matchers,
            offset: None,
            at: None,
            mode: RangeMode::Default,
            pos,
        })
    }

    fn label_matcher(&self, pair: Pair<'i, Rule>) -> Result<Matcher, ParseError> {
        let pos = span(&pair);
        let mut inner = pair.into_inner();
        let first = inner.next().expect("label_matcher has a name");
        let Some(op) = inner.next() else {
            // A quoted name alone selects the metric name.
            let value = self.lossy_string(&first)?;
            return Matcher::new(MatchType::Equal, METRIC_NAME, value).map_err(|e| self.error(pos, e.to_string()));
        };
        let name = match first.as_rule() {
            Rule::label_name => first.as_str().to_owned(),
            _ => self.lossy_string(&first)?,
        };
        let kind = MatchType::parse(op.as_str()).map_err(|e| self.error(span(&op), e.to_string()))?;
        let value_tok = inner
            .next()
            .and_then(|v| v.into_inner().next())
            .expect("label_matcher has a value");
        let value = self.lossy_string(&value_tok)?;
        Matcher::new(kind, name, value).map_err(|e| self.error(pos, e.to_string()))
    }

    fn prefix(&self, op: Pair<'i, Rule>, operand: Expr) -> Result<Expr, ParseError> {
        let op_pos = span(&op);
        let minus = op.as_rule() == Rule::neg;
        Ok(match operand {
            Expr::NumberLiteral(mut n) => {
                if minus {
                    n.value = -n.value;
                }
                n.pos.start = op_pos.start;
                Expr::NumberLiteral(n)
            }
            other => {
                let pos = PosRange {
                    start: op_pos.start,
                    end: other.pos().end,
                };
                let op = if minus { UnaryOp::Minus } else { UnaryOp::Plus };
                Expr::Unary(UnaryExpr {
                    op,
                    expr: Box::new(other),
                    pos,
                })
            }
        })
    }

    fn infix(&self, lhs: Expr, op: Pair<'i, Rule>, rhs: Expr) -> Result<Expr, ParseError> {
        let op_pos = span(&op);
        let bin_op = match op.as_rule() {
            Rule::op_pow => BinaryOp::Pow,
            Rule::op_mul => BinaryOp::Mul,
            Rule::op_div => BinaryOp::Div,
            Rule::op_mod => BinaryOp::Mod,
            Rule::op_atan2 => BinaryOp::Atan2,
            Rule::op_add => BinaryOp::Add,
            Rule::op_sub => BinaryOp::Sub,
            Rule::op_eqlc => BinaryOp::Eql,
            Rule::op_neq => BinaryOp::Neq,
            Rule::op_lte => BinaryOp::Lte,
            Rule::op_lss => BinaryOp::Lss,
            Rule::op_gte => BinaryOp::Gte,
            Rule::op_gtr => BinaryOp::Gtr,
            Rule::op_trim_upper => BinaryOp::TrimUpper,
            Rule::op_trim_lower => BinaryOp::TrimLower,
            Rule::op_and => BinaryOp::And,
            Rule::op_or => BinaryOp::Or,
            Rule::op_unless => BinaryOp::Unless,
            _ => return Err(unexpected_pair(self.input, &op)),
        };
        let mut return_bool = false;
        let mut vm = VectorMatching::default();
        for m in op.into_inner() {
            match m.as_rule() {
                Rule::bool_modifier => return_bool = true,
                Rule::matching => {
                    let mut inner = m.into_inner();
                    vm.on = inner.next().expect("matching has a keyword").as_rule() == Rule::kw_on;
                    vm.labels = self.grouping_labels(inner.next().expect("matching has labels"))?;
                }
                Rule::group_modifier => {
                    let mut inner = m.into_inner();
                    let kw = inner.next().expect("group_modifier has a keyword");
                    vm.card = if kw.as_rule() == Rule::kw_group_left {
                        Cardinality::ManyToOne
                    } else {
                        Cardinality::OneToMany
                    };
                    if let Some(labels) = inner.next() {
                        vm.include = self.grouping_labels(labels)?;
                    }
                }
                Rule::fill_modifiers => {
                    let mut inner = m.into_inner();
                    while let Some(kw) = inner.next() {
                        let value = self.fill_value(inner.next().expect("fill keyword has a value"))?;
                        match kw.as_rule() {
                            Rule::kw_fill => {
                                vm.fill.lhs = Some(value);
                                vm.fill.rhs = Some(value);
                            }
                            Rule::kw_fill_left => vm.fill.lhs = Some(value),
                            _ => vm.fill.rhs = Some(value),
                        }
                    }
                }
                // The operator keyword itself (and, or, unless, atan2).
                _ => {}
            }
        }
        let pos = PosRange {
            start: lhs.pos().start,
            end: rhs.pos().end,
        };
        Ok(Expr::Binary(BinaryExpr {
            op: bin_op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            return_bool,
            matching: Some(vm),
            pos,
            op_pos,
        }))
    }

    fn fill_value(&self, pair: Pair<'i, Rule>) -> Result<f64, ParseError> {
        let mut negative = false;
        let mut value = 0.0;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::sign => negative = p.as_str() == "-",
                Rule::number | Rule::inf_nan => value = self.number(p)?.value,
                _ => {}
            }
        }
        Ok(if negative { -value } else { value })
    }

    fn postfix(&self, lhs: Expr, op: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        let op_pos = span(&op);
        match op.as_rule() {
            Rule::range_suffix => self.range_suffix(lhs, op),
            Rule::offset_modifier => {
                let value = op.into_inner().nth(1).expect("offset has a value");
                let offset = self.offset_value(value)?;
                self.set_offset(lhs, offset, op_pos)
            }
            Rule::at_modifier => {
                let value = op.into_inner().next().expect("@ has a value");
                self.set_at(lhs, value, op_pos)
            }
            Rule::anchored_modifier => self.set_mode(lhs, RangeMode::Anchored, op_pos),
            Rule::smoothed_modifier => self.set_mode(lhs, RangeMode::Smoothed, op_pos),
            _ => Err(unexpected_pair(self.input, &op)),
        }
    }

    fn range_suffix(&self, lhs: Expr, op: Pair<'i, Rule>) -> Result<Expr, ParseError> {
        let op_pos = span(&op);
        let mut range = None;
        let mut subquery = false;
        let mut step = None;
        for p in op.into_inner() {
            match p.as_rule() {
                Rule::dur_expr if subquery => step = Some(self.positive_duration(p)?),
                Rule::dur_expr => range = Some(self.positive_duration(p)?),
                Rule::subquery_colon => subquery = true,
                _ => {}
            }
        }
        let range = range.expect("range_suffix has a range");
        let pos = PosRange {
            start: lhs.pos().start,
            end: op_pos.end,
        };
        if subquery {
            return Ok(Expr::Subquery(SubqueryExpr {
                expr: Box::new(lhs),
                range,
                step,
                offset: None,
                at: None,
                pos,
            }));
        }
        let Expr::VectorSelector(selector) = lhs else {
            return Err(self.error(op_pos, "ranges only allowed for vector selectors"));
        };
        // Upstream only looks at a literal offset and a numeric @ here.
        if matches!(selector.offset, Some(DurationParam::Literal(_))) {
            return Err(self.error(op_pos, "no offset modifiers allowed before range"));
        }
        if matches!(selector.at, Some(AtModifier::Timestamp(_))) {
            return Err(self.error(op_pos, "no @ modifiers allowed before range"));
        }
        Ok(Expr::MatrixSelector(MatrixSelector { selector, range, pos }))
    }

    fn set_offset(&self, mut e: Expr, offset: Option<DurationParam>, op_pos: PosRange) -> Result<Expr, ParseError> {
        let pos = e.pos();
        let slot = match &mut e {
            Expr::VectorSelector(v) => &mut v.offset,
            Expr::MatrixSelector(m) => &mut m.selector.offset,
            Expr::Subquery(s) => &mut s.offset,
            _ => {
                return Err(self.error(
                    pos,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(pos, "offset may not be set multiple times"));
        }
        *slot = offset;
        e.pos_mut().end = op_pos.end;
        Ok(e)
    }

    fn set_at(&self, mut e: Expr, value: Pair<'i, Rule>, op_pos: PosRange) -> Result<Expr, ParseError> {
        let pos = e.pos();
        let at = match value.as_rule() {
            Rule::at_start => AtModifier::Start,
            Rule::at_end => AtModifier::End,
            _ => {
                let mut negative = false;
                let mut ts = 0.0;
                for p in value.into_inner() {
                    match p.as_rule() {
                        Rule::sign => negative = p.as_str() == "-",
                        _ => ts = self.number(p)?.value,
                    }
                }
                if negative {
                    ts = -ts;
                }
                let ms = ts * 1000.0;
                if !ts.is_finite() || ms.round() >= i64::MAX as f64 || ms.round() <= i64::MIN as f64 {
                    return Err(self.error(
                        pos,
                        format!("timestamp out of bounds for @ modifier: {}", go_fixed6(ts)),
                    ));
                }
                AtModifier::Timestamp(ms.round() as i64)
            }
        };
        let slot = match &mut e {
            Expr::VectorSelector(v) => &mut v.at,
            Expr::MatrixSelector(m) => &mut m.selector.at,
            Expr::Subquery(s) => &mut s.at,
            _ => {
                return Err(self.error(
                    pos,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(pos, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        e.pos_mut().end = op_pos.end;
        Ok(e)
    }

    fn set_mode(&self, mut e: Expr, mode: RangeMode, op_pos: PosRange) -> Result<Expr, ParseError> {
        let pos = e.pos();
        let name = if mode == RangeMode::Anchored {
            "anchored"
        } else {
            "smoothed"
        };
        let selector = match &mut e {
            Expr::VectorSelector(v) => v,
            Expr::MatrixSelector(m) => &mut m.selector,
            Expr::Subquery(_) => {
                return Err(self.error(pos, format!("{name} modifier is not supported for subqueries")));
            }
            _ => return Err(self.error(pos, format!("{name} modifier not implemented"))),
        };
        if selector.mode != RangeMode::Default && selector.mode != mode {
            return Err(self.error(pos, "anchored and smoothed modifiers cannot be used together"));
        }
        selector.mode = mode;
        e.pos_mut().end = op_pos.end;
        Ok(e)
    }

    /// A range or subquery step: a literal must be positive (upstream's
    /// positive_duration_expr).
    fn positive_duration(&self, pair: Pair<'i, Rule>) -> Result<DurationParam, ParseError> {
        match self.dur_expr(pair, true)? {
            DurationExpr::Number(n) => {
                if n.value <= 0.0 {
                    return Err(self.error(n.pos, "duration must be greater than 0"));
                }
                Ok(DurationParam::Literal(Duration::from_millis(seconds_to_millis(
                    n.value,
                ))))
            }
            e => Ok(DurationParam::Expr(e)),
        }
    }

    /// The value of `offset`; zero means no offset, as upstream.
    fn offset_value(&self, pair: Pair<'i, Rule>) -> Result<Option<DurationParam>, ParseError> {
        let e = match pair.as_rule() {
            Rule::offset_expr => {
                let inner = pair.into_inner().next().expect("offset_expr has dur_expr");
                match self.dur_expr(inner, false)? {
                    // `offset (5m) + 1m` drops the parentheses around the literal; keep the sum
                    // in parentheses so that it prints as an offset that parses back the same
                    // (upstream prints `offset 5m + 1m`, which parses as a binary expression).
                    e @ DurationExpr::Binary { .. } => DurationExpr::Paren(Box::new(e)),
                    e => e,
                }
            }
            _ => self.offset_atom(pair)?,
        };
        Ok(match e {
            DurationExpr::Number(n) => {
                let ms = seconds_to_millis(n.value);
                (ms != 0).then(|| DurationParam::Literal(Duration::from_millis(ms)))
            }
            e => Some(DurationParam::Expr(e)),
        })
    }

    fn offset_atom(&self, pair: Pair<'i, Rule>) -> Result<DurationExpr, ParseError> {
        let mut sign = None;
        let mut core = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::sign => sign = Some(p),
                Rule::offset_number => {
                    let tok = p.into_inner().next().expect("offset_number has a token");
                    core = Some(self.duration_number(tok, false)?);
                }
                _ => core = Some(self.dur_primary(p, false)?),
            }
        }
        let core = core.expect("offset_atom has a value");
        match sign {
            Some(s) => self.dur_prefix(s, core),
            None => Ok(core),
        }
    }

    /// A number inside a duration expression, with upstream's range check.
    fn duration_number(&self, tok: Pair<'i, Rule>, in_brackets: bool) -> Result<DurationExpr, ParseError> {
        if in_brackets && tok.as_rule() == Rule::inf_nan {
            // Upstream's lexer does not produce Inf/NaN inside brackets.
            return Err(diagnose(self.input, tok.as_span().start(), ""));
        }
        let n = self.number(tok)?;
        if duration_out_of_range(n.value) {
            return Err(self.error(n.pos, "duration out of range"));
        }
        Ok(DurationExpr::Number(n))
    }

    fn dur_expr(&self, pair: Pair<'i, Rule>, in_brackets: bool) -> Result<DurationExpr, ParseError> {
        let pos = span(&pair);
        let pairs = pair.into_inner();
        // Duration expressions are small; every operator counts towards the nesting budget
        // because their trees are walked recursively.
        let cost = pairs.clone().count();
        self.nested(pos, cost, || {
            DURATION_PRATT
                .map_primary(|p| self.dur_primary(p, in_brackets))
                .map_prefix(|op, rhs| self.dur_prefix(op, rhs?))
                .map_infix(|lhs, op, rhs| self.dur_infix(lhs?, op, rhs?))
                .parse(pairs)
        })
    }

    fn dur_primary(&self, pair: Pair<'i, Rule>, in_brackets: bool) -> Result<DurationExpr, ParseError> {
        match pair.as_rule() {
            Rule::dur_number => {
                let tok = pair.into_inner().next().expect("dur_number has a token");
                self.duration_number(tok, in_brackets)
            }
            Rule::dur_step => Ok(DurationExpr::Step),
            Rule::dur_range => Ok(DurationExpr::Range),
            Rule::dur_min_of | Rule::dur_max_of => {
                let min = pair.as_rule() == Rule::dur_min_of;
                let mut args = pair.into_inner().filter(|p| p.as_rule() == Rule::dur_expr);
                let a = self.dur_expr(args.next().expect("min_of/max_of has two arguments"), in_brackets)?;
                let b = self.dur_expr(args.next().expect("min_of/max_of has two arguments"), in_brackets)?;
                Ok(if min {
                    DurationExpr::MinOf(Box::new(a), Box::new(b))
                } else {
                    DurationExpr::MaxOf(Box::new(a), Box::new(b))
                })
            }
            Rule::dur_paren => {
                let inner = self.dur_expr(pair.into_inner().next().expect("dur_paren has dur_expr"), in_brackets)?;
                // Parentheses around a literal vanish, and are not doubled (paren_duration_expr).
                Ok(match inner {
                    e @ (DurationExpr::Number(_) | DurationExpr::Paren(_)) => e,
                    e => DurationExpr::Paren(Box::new(e)),
                })
            }
            _ => Err(unexpected_pair(self.input, &pair)),
        }
    }

    fn dur_prefix(&self, op: Pair<'i, Rule>, operand: DurationExpr) -> Result<DurationExpr, ParseError> {
        let op_pos = span(&op);
        let minus = op.as_str() == "-";
        match operand {
            DurationExpr::Number(mut n) => {
                if minus {
                    n.value = -n.value;
                }
                if duration_out_of_range(n.value) {
                    return Err(self.error(op_pos, "duration out of range"));
                }
                n.pos.start = op_pos.start;
                Ok(DurationExpr::Number(n))
            }
            e if minus => Ok(DurationExpr::Neg(Box::new(e))),
            e => Ok(e),
        }
    }

    fn dur_infix(&self, lhs: DurationExpr, op: Pair<'i, Rule>, rhs: DurationExpr) -> Result<DurationExpr, ParseError> {
        let op_pos = span(&op);
        let op = match op.as_rule() {
            Rule::dur_add => DurationOp::Add,
            Rule::dur_sub => DurationOp::Sub,
            Rule::dur_mul => DurationOp::Mul,
            Rule::dur_div => DurationOp::Div,
            Rule::dur_mod => DurationOp::Mod,
            Rule::dur_pow => DurationOp::Pow,
            _ => return Err(unexpected_pair(self.input, &op)),
        };
        if let DurationExpr::Number(n) = &rhs
            && n.value == 0.0
        {
            if op == DurationOp::Div {
                return Err(self.error(op_pos, "division by zero"));
            }
            if op == DurationOp::Mod {
                return Err(self.error(op_pos, "modulo by zero"));
            }
        }
        Ok(DurationExpr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        })
    }
}

/// Go's `%f` (six decimals), with Go's spelling of infinities and NaN.
fn go_fixed6(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() }
    } else {
        format!("{v:.6}")
    }
}
