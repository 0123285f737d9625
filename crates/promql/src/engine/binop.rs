//! Binary operators: scalar/scalar, vector/scalar and vector/vector with one-to-one,
//! many-to-one and set matching (upstream `VectorBinop`, `VectorAnd`/`Or`/`Unless`,
//! `VectorscalarBinop`, `resultMetric`).

use std::collections::{HashMap, HashSet};

use watchfire_model::{Labels, METRIC_NAME};

use super::Error;
use super::eval::{Evaluator, Step, drop_metadata};
use super::plan::Node;
use super::value::{Matrix, Sample, Vector};
use crate::ast::{BinaryOp, Cardinality, ValueType, VectorMatching};

/// Whether the operator changes what the value means, so the metric name must go.
fn changes_metric_schema(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow | BinaryOp::Mod | BinaryOp::Atan2
    )
}

/// Go's `math.Mod`: the result has the sign of `x`; Rust's `%` on floats behaves the same.
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Go's `math.Pow` agrees with Rust's `powf` except that `pow(-1, ±Inf)` and `pow(1, NaN)`
/// are 1 in both; `powf` follows C99 which Go also follows for the special cases.
fn go_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// A scalar operator; comparisons give 0 or 1.
pub(crate) fn scalar_binop(op: BinaryOp, l: f64, r: f64) -> f64 {
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Add => l + r,
        BinaryOp::Sub => l - r,
        BinaryOp::Mul => l * r,
        BinaryOp::Div => l / r,
        BinaryOp::Pow => go_pow(l, r),
        BinaryOp::Mod => go_mod(l, r),
        BinaryOp::Atan2 => l.atan2(r),
        BinaryOp::Eql => b(l == r),
        BinaryOp::Neq => b(l != r),
        BinaryOp::Gtr => b(l > r),
        BinaryOp::Lss => b(l < r),
        BinaryOp::Gte => b(l >= r),
        BinaryOp::Lte => b(l <= r),
        _ => f64::NAN,
    }
}

/// An operator between two vector elements: the value and whether to keep the element.
fn elem_binop(op: BinaryOp, l: f64, r: f64) -> Option<(f64, bool)> {
    Some(match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Pow => (go_pow(l, r), true),
        BinaryOp::Mod => (go_mod(l, r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        // The trimming operators apply to native histograms only.
        _ => return None,
    })
}

fn incompatible_float_op(op: BinaryOp) -> String {
    format!(
        "incompatible sample types encountered for binary operator \"{0}\": float {0} float",
        op.as_str()
    )
}

/// `Labels.MatchLabels` upstream: the `on` labels, or everything but the `ignoring` labels
/// and the metric name.
fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    let mut b = l.builder();
    if on {
        b.retain(|n, _| names.iter().any(|x| x == n));
    } else {
        b.retain(|n, _| n != METRIC_NAME && !names.iter().any(|x| x == n));
    }
    b.build()
}

impl Evaluator<'_> {
    pub(crate) fn binary(&mut self, node: &Node) -> Result<Matrix, Error> {
        let Node::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
            lhs_type,
            rhs_type,
            pos,
        } = node
        else {
            unreachable!("binary() is only called on binary expressions");
        };
        let (op, return_bool, pos) = (*op, *return_bool, *pos);
        let delayed = self.delayed();
        match (lhs_type, rhs_type) {
            (ValueType::Scalar, ValueType::Scalar) => self.range_eval(None, &[lhs, rhs], &mut |st: &mut Step<'_>| {
                let v = scalar_binop(op, st.vectors[0][0].f, st.vectors[1][0].f);
                Ok(vec![Sample::new(Labels::empty(), 0, v)])
            }),
            (ValueType::Vector, ValueType::Vector) => {
                let default = VectorMatching {
                    card: if op.is_set_operator() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    ..VectorMatching::default()
                };
                let m = matching.clone().unwrap_or(default);
                let mut helper = Helper::default();
                self.range_eval(Some(&m), &[lhs, rhs], &mut |st: &mut Step<'_>| {
                    let (l, r) = (&st.vectors[0], &st.vectors[1]);
                    let (ls, rs) = (&st.sigs[0], &st.sigs[1]);
                    match op {
                        BinaryOp::And => Ok(vector_and(l, r, ls, rs, st.num_sigs)),
                        BinaryOp::Or => Ok(vector_or(l, r, ls, rs, st.num_sigs)),
                        BinaryOp::Unless => Ok(vector_unless(l, r, ls, rs, st.num_sigs)),
                        _ => {
                            let (out, info) =
                                vector_binop(op, l, r, ls, rs, st.num_sigs, &m, return_bool, delayed, &mut helper)?;
                            if info {
                                st.annos.add(super::Annotation::info(incompatible_float_op(op), pos));
                            }
                            Ok(out)
                        }
                    }
                })
            }
            (ValueType::Vector, ValueType::Scalar) | (ValueType::Scalar, ValueType::Vector) => {
                let swap = *lhs_type == ValueType::Scalar;
                self.range_eval(None, &[lhs, rhs], &mut |st: &mut Step<'_>| {
                    let (vec, scalar) = if swap {
                        (&st.vectors[1], st.vectors[0][0].f)
                    } else {
                        (&st.vectors[0], st.vectors[1][0].f)
                    };
                    let mut out = Vec::with_capacity(vec.len());
                    let mut info = false;
                    for s in vec {
                        let (l, r) = if swap { (scalar, s.f) } else { (s.f, scalar) };
                        let Some((mut v, mut keep)) = elem_binop(op, l, r) else {
                            info = true;
                            continue;
                        };
                        if op.is_comparison() && swap {
                            v = r;
                        }
                        if return_bool {
                            v = if keep { 1.0 } else { 0.0 };
                            keep = true;
                        }
                        if keep {
                            let mut s = s.clone();
                            s.f = v;
                            if changes_metric_schema(op) || return_bool {
                                if !delayed {
                                    s.metric = drop_metadata(&s.metric);
                                }
                                s.drop_name = true;
                            }
                            out.push(s);
                        }
                    }
                    if info {
                        st.annos.add(super::Annotation::info(incompatible_float_op(op), pos));
                    }
                    Ok(out)
                })
            }
            _ => Err(Error::exec(format!(
                "operator {} not allowed between {} and {}",
                op.as_str(),
                lhs_type.documented(),
                rhs_type.documented()
            ))),
        }
    }
}

fn present(sigs: &[usize], n: usize) -> Vec<bool> {
    let mut p = vec![false; n];
    for &s in sigs {
        p[s] = true;
    }
    p
}

fn vector_and(l: &Vector, r: &Vector, ls: &[usize], rs: &[usize], n: usize) -> Vector {
    if l.is_empty() || r.is_empty() {
        return Vec::new();
    }
    let right = present(rs, n);
    l.iter()
        .zip(ls)
        .filter(|(_, s)| right[**s])
        .map(|(x, _)| x.clone())
        .collect()
}

fn vector_or(l: &Vector, r: &Vector, ls: &[usize], rs: &[usize], n: usize) -> Vector {
    if l.is_empty() {
        return r.clone();
    }
    if r.is_empty() {
        return l.clone();
    }
    let left = present(ls, n);
    let mut out = l.clone();
    out.extend(r.iter().zip(rs).filter(|(_, s)| !left[**s]).map(|(x, _)| x.clone()));
    out
}

fn vector_unless(l: &Vector, r: &Vector, ls: &[usize], rs: &[usize], n: usize) -> Vector {
    if l.is_empty() || r.is_empty() {
        return l.clone();
    }
    let right = present(rs, n);
    l.iter()
        .zip(ls)
        .filter(|(_, s)| !right[**s])
        .map(|(x, _)| x.clone())
        .collect()
}

/// Which match groups already produced a result at this step.
struct Matched {
    one: Vec<bool>,
    many: Vec<Option<HashSet<Labels>>>,
}

/// Caches result labels across steps, keyed by the input label pair.
#[derive(Default)]
struct Helper {
    result_metric: HashMap<(Labels, Labels), Labels>,
}

#[allow(clippy::too_many_arguments)]
fn vector_binop(
    op: BinaryOp,
    lhs: &Vector,
    rhs: &Vector,
    lsigs: &[usize],
    rsigs: &[usize],
    num_sigs: usize,
    m: &VectorMatching,
    return_bool: bool,
    delayed: bool,
    helper: &mut Helper,
) -> Result<(Vector, bool), Error> {
    let (fill_l, fill_r) = (m.fill.lhs, m.fill.rhs);
    if (lhs.is_empty() && rhs.is_empty())
        || ((lhs.is_empty() || rhs.is_empty()) && fill_l.is_none() && fill_r.is_none())
    {
        return Ok((Vec::new(), false));
    }
    let one_to_many = m.card == Cardinality::OneToMany;
    // For one-to-many, swap sides so the right side is always the "one" side.
    // As upstream, the fill values are not swapped.
    let (lhs, rhs, lsigs, rsigs) = if one_to_many {
        (rhs, lhs, rsigs, lsigs)
    } else {
        (lhs, rhs, lsigs, rsigs)
    };
    let mut right: Vec<Option<usize>> = vec![None; num_sigs];
    for (i, rs) in rhs.iter().enumerate() {
        let sig = rsigs[i];
        if let Some(prev) = right[sig] {
            let one_side = if one_to_many { "left" } else { "right" };
            let matched = match_labels(&rs.metric, m.on, &m.labels);
            return Err(Error::exec(format!(
                "found duplicate series for the match group {matched} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                rs.metric, rhs[prev].metric
            )));
        }
        right[sig] = Some(i);
    }
    let mut matched = Matched {
        one: vec![false; num_sigs],
        many: vec![None; num_sigs],
    };
    let mut out = Vec::new();
    let mut info = false;

    let mut do_op =
        |ls: &Sample, rs: &Sample, sig: usize, out: &mut Vector, matched: &mut Matched| -> Result<(), Error> {
            let (fl, fr) = if one_to_many { (rs.f, ls.f) } else { (ls.f, rs.f) };
            let Some((mut v, keep)) = elem_binop(op, fl, fr) else {
                info = true;
                return Ok(());
            };
            if return_bool {
                v = if keep { 1.0 } else { 0.0 };
            }
            let drop_name_now = !delayed && return_bool;
            let metric = result_metric(&ls.metric, &rs.metric, op, m, drop_name_now, helper);
            if m.card == Cardinality::OneToOne {
                if matched.one[sig] {
                    return Err(Error::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                matched.one[sig] = true;
            } else {
                let set = matched.many[sig].get_or_insert_with(HashSet::new);
                if !set.insert(metric.clone()) {
                    return Err(Error::exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
            if keep || return_bool {
                out.push(Sample {
                    metric,
                    t: 0,
                    f: v,
                    drop_name: return_bool,
                });
            }
            Ok(())
        };

    for (i, ls) in lhs.iter().enumerate() {
        let sig = lsigs[i];
        match right[sig] {
            Some(ri) => do_op(ls, &rhs[ri], sig, &mut out, &mut matched)?,
            None => {
                let Some(fill) = fill_r else { continue };
                let rs = Sample::new(match_labels(&ls.metric, m.on, &m.labels), 0, fill);
                do_op(ls, &rs, sig, &mut out, &mut matched)?;
            }
        }
    }
    if let Some(fill) = fill_l {
        for (i, rs) in rhs.iter().enumerate() {
            let sig = rsigs[i];
            let already = if m.card == Cardinality::OneToOne {
                matched.one[sig]
            } else {
                matched.many[sig].as_ref().is_some_and(|s| !s.is_empty())
            };
            if already {
                continue;
            }
            let ls = Sample::new(match_labels(&rs.metric, m.on, &m.labels), 0, fill);
            do_op(&ls, rs, sig, &mut out, &mut matched)?;
        }
    }
    Ok((out, info))
}

fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: BinaryOp,
    m: &VectorMatching,
    drop_name: bool,
    helper: &mut Helper,
) -> Labels {
    let key = (lhs.clone(), rhs.clone());
    if let Some(l) = helper.result_metric.get(&key) {
        return l.clone();
    }
    let mut b = lhs.builder();
    if drop_name || changes_metric_schema(op) {
        b.retain(|n, _| n != METRIC_NAME && n != "__type__" && n != "__unit__");
    }
    if m.card == Cardinality::OneToOne {
        if m.on {
            b.retain(|n, _| m.labels.iter().any(|x| x == n));
        } else {
            b.retain(|n, _| !m.labels.iter().any(|x| x == n));
        }
    }
    for ln in &m.include {
        match rhs.get(ln) {
            Some(v) if !v.is_empty() => {
                b.set(ln, v);
            }
            _ => {
                b.del(ln);
            }
        }
    }
    let l = b.build();
    helper.result_metric.insert(key, l.clone());
    l
}
