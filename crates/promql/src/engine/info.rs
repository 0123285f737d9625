//! The experimental `info()` function: enriches series with the data labels of info metrics
//! (`target_info` by default) that share their identifying labels `instance` and `job`
//! (upstream promql/info.go).

use std::collections::{BTreeMap, HashMap, HashSet};

use watchfire_model::{Labels, METRIC_NAME, MatchType, Matcher};

use super::Error;
use super::eval::{Evaluator, LookbackCursor, Step};
use super::plan::Node;
use super::value::{FPoint, Matrix, Sample, Series};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

fn matcher(kind: MatchType, name: &str, value: &str) -> Result<Matcher, Error> {
    Matcher::new(kind, name, value).map_err(|e| Error::exec(e.to_string()))
}

/// The name matchers an info-series selection uses: the given ones when one of them is `=` or
/// `=~`, otherwise restricted to `*_info` names, or `target_info` when none are given.
fn effective_name_matchers(ms: Vec<Matcher>) -> Result<Vec<Matcher>, Error> {
    if ms.iter().any(|m| matches!(m.kind, MatchType::Equal | MatchType::Regex)) {
        return Ok(ms);
    }
    if !ms.is_empty() {
        let mut out = vec![matcher(MatchType::Regex, METRIC_NAME, ".+_info")?];
        out.extend(ms);
        return Ok(out);
    }
    Ok(vec![matcher(MatchType::Equal, METRIC_NAME, TARGET_INFO)?])
}

fn signature(name: &str, l: &Labels) -> (String, Option<String>, Option<String>) {
    (
        name.to_owned(),
        l.get(IDENTIFYING[0]).map(str::to_owned),
        l.get(IDENTIFYING[1]).map(str::to_owned),
    )
}

impl Evaluator<'_> {
    pub(crate) fn info(&mut self, args: &[Node]) -> Result<Matrix, Error> {
        let original = self.current;
        let mat = self.eval(&args[0])?.into_matrix();
        let mut data: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
        let mut name_matchers = Vec::new();
        if let Some(Node::Vector(sel)) = args.get(1).map(Node::inner) {
            for m in &sel.matchers {
                data.entry(m.name.clone()).or_default().push(m.clone());
                if m.name == METRIC_NAME {
                    name_matchers.push(m.clone());
                }
            }
        } else {
            name_matchers.push(matcher(MatchType::Equal, METRIC_NAME, TARGET_INFO)?);
        }
        let effective = effective_name_matchers(name_matchers)?;
        let ignore: HashSet<Labels> = mat
            .iter()
            .filter(|s| {
                let name = s.metric.metric_name().unwrap_or("");
                effective.iter().all(|m| m.matches(name))
            })
            .map(|s| s.metric.clone())
            .collect();
        let info_mat = self.fetch_info_series(&mat, &ignore, &mut data)?;
        self.combine_info(mat, info_mat, &ignore, &data, original)
    }

    fn fetch_info_series(
        &mut self,
        mat: &Matrix,
        ignore: &HashSet<Labels>,
        data: &mut BTreeMap<String, Vec<Matcher>>,
    ) -> Result<Matrix, Error> {
        let mut id_values: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in mat {
            if ignore.contains(&s.metric) {
                continue;
            }
            for l in IDENTIFYING {
                if let Some(v) = s.metric.get(l)
                    && !v.is_empty()
                {
                    let vals = id_values.entry(l).or_default();
                    if !vals.iter().any(|x| x == v) {
                        vals.push(v.to_owned());
                    }
                }
            }
        }
        let remove_names = |data: &mut BTreeMap<String, Vec<Matcher>>| {
            data.retain(|_, ms| {
                ms.retain(|m| m.name != METRIC_NAME);
                !ms.is_empty()
            });
        };
        if id_values.is_empty() {
            remove_names(data);
            return Ok(Vec::new());
        }
        let mut matchers = Vec::new();
        for (name, vals) in &id_values {
            let re = vals.iter().map(|v| regex::escape(v)).collect::<Vec<_>>().join("|");
            matchers.push(matcher(MatchType::Regex, name, &re)?);
        }
        let mut name_ms = Vec::new();
        for ms in data.values() {
            for m in ms {
                if m.name == METRIC_NAME {
                    name_ms.push(m.clone());
                } else {
                    matchers.push(m.clone());
                }
            }
        }
        remove_names(data);
        matchers.extend(effective_name_matchers(name_ms)?);
        let series = self.ctx.select_direct(&matchers)?;
        // Each point holds the timestamp of the sample it came from, to pick the newest info
        // series when several match.
        let lookback = self.ctx.lookback;
        let mut out = Vec::with_capacity(series.len());
        for s in &series {
            let mut cur = LookbackCursor::new(s.iterator());
            let mut floats = Vec::new();
            for i in 0..self.num_steps() {
                let ts = self.start + i as i64 * self.interval;
                if let Some(smp) = cur.at(ts, lookback)? {
                    self.add_samples(1)?;
                    floats.push(FPoint { t: ts, f: smp.t as f64 });
                }
            }
            if !floats.is_empty() {
                out.push(Series::new(s.labels().clone(), floats));
            }
        }
        Ok(out)
    }

    fn combine_info(
        &mut self,
        mat: Matrix,
        info_mat: Matrix,
        ignore: &HashSet<Labels>,
        data: &BTreeMap<String, Vec<Matcher>>,
        original: i64,
    ) -> Result<Matrix, Error> {
        let mut info_names: Vec<String> = info_mat
            .iter()
            .filter_map(|s| s.metric.metric_name().map(str::to_owned))
            .collect();
        info_names.sort();
        info_names.dedup();
        let all_match_empty = data.values().flatten().all(|m| m.matches_empty());
        let base_len = mat.len();
        let mut mats = mat;
        mats.extend(info_mat);
        // Mark which series are info series by moving them to a second input.
        let info_part: Matrix = mats.split_off(base_len);
        self.range_eval_matrices(None, vec![mats, info_part], original, &mut |st: &mut Step<'_>| {
            let (base, info) = (&st.vectors[0], &st.vectors[1]);
            if base.is_empty() {
                return Ok(Vec::new());
            }
            let mut right: HashMap<(String, Option<String>, Option<String>), &Sample> = HashMap::new();
            for s in info {
                let name = s.metric.metric_name().unwrap_or("");
                let sig = signature(name, &s.metric);
                match right.get(&sig) {
                    Some(existing) => {
                        let (et, nt) = (existing.f as i64, s.f as i64);
                        if et < nt {
                            right.insert(sig, s);
                        } else if et == nt {
                            return Err(Error::exec(format!(
                                "found duplicate series for info metric: existing {} @ {et}, new {} @ {nt}",
                                existing.metric, s.metric
                            )));
                        }
                    }
                    None => {
                        right.insert(sig, s);
                    }
                }
            }
            let mut out = Vec::with_capacity(base.len());
            for bs in base {
                if ignore.contains(&bs.metric) {
                    out.push(Sample::new(bs.metric.clone(), bs.t, bs.f));
                    continue;
                }
                let mut added: Vec<(String, String)> = Vec::new();
                let mut seen = false;
                for name in &info_names {
                    let Some(is) = right.get(&signature(name, &bs.metric)) else {
                        continue;
                    };
                    seen = true;
                    for l in is.metric.iter() {
                        if l.name == METRIC_NAME || (!data.is_empty() && !data.contains_key(l.name)) {
                            continue;
                        }
                        if let Some((_, v)) = added.iter().find(|(n, _)| n == l.name)
                            && v != l.value
                        {
                            return Err(Error::exec(format!("conflicting label: {}", l.name)));
                        }
                        if bs.metric.has(l.name) || added.iter().any(|(n, _)| n == l.name) {
                            continue;
                        }
                        added.push((l.name.to_owned(), l.value.to_owned()));
                    }
                }
                if !seen && !all_match_empty {
                    continue;
                }
                let mut b = bs.metric.builder();
                for (n, v) in &added {
                    b.set(n, v);
                }
                out.push(Sample::new(b.build(), bs.t, bs.f));
            }
            Ok(out)
        })
    }
}
