//! Inhibition (upstream `inhibit/inhibit.go`): while an alert matching a rule's source
//! matchers fires, alerts matching its target matchers with equal values for the `equal`
//! labels are muted.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use watchfire_config::alertmanager::InhibitRule;
use watchfire_config::alertmanager::matchers::AmMatcher;
use watchfire_model::Labels;

use crate::types::{Alert, Fingerprint, fingerprint, fingerprint_pairs, is_zero};

/// Whether every matcher accepts the label's value (an absent label reads as "").
pub(crate) fn matches_all(matchers: &[AmMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// What a rule needs of a source alert: its labels (shared with the stored alert) and end.
#[derive(Debug)]
struct Source {
    labels: Labels,
    ends_at: Timestamp,
}

impl Source {
    fn resolved_at(&self, t: Timestamp) -> bool {
        !is_zero(self.ends_at) && self.ends_at <= t
    }
}

#[derive(Debug, Default)]
struct Cache {
    /// Source alerts by fingerprint.
    alerts: HashMap<Fingerprint, Source>,
    /// Fingerprint of the `equal` label values → the source alert standing for them.
    index: HashMap<Fingerprint, Fingerprint>,
}

#[derive(Debug)]
struct Rule {
    source: Vec<AmMatcher>,
    target: Vec<AmMatcher>,
    /// Sorted, deduplicated.
    equal: Vec<String>,
    cache: Mutex<Cache>,
}

impl Rule {
    fn equal_fingerprint(&self, labels: &Labels) -> Fingerprint {
        fingerprint_pairs(self.equal.iter().map(|n| (n.as_str(), labels.get(n).unwrap_or(""))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inhibit.go `updateIndex`: the index keeps, per equal-set, the source alert that resolves
    /// last.
    fn add_source(&self, labels: &Labels, ends_at: Timestamp) {
        let fp = fingerprint(labels);
        let eq = self.equal_fingerprint(labels);
        let mut cache = self.lock();
        cache.alerts.insert(
            fp,
            Source {
                labels: labels.clone(),
                ends_at,
            },
        );
        let replace = match cache.index.get(&eq) {
            None => true,
            Some(indexed) if *indexed == fp => false,
            Some(indexed) => match cache.alerts.get(indexed) {
                None => true,
                Some(existing) => existing.resolved_at(ends_at),
            },
        };
        if replace {
            cache.index.insert(eq, fp);
        }
    }

    /// Inhibit.go `hasEqual`.
    fn has_equal(&self, labels: &Labels, exclude_two_sided: bool, now: Timestamp) -> Option<Fingerprint> {
        let cache = self.lock();
        let src_fp = cache.index.get(&self.equal_fingerprint(labels))?;
        let src = cache.alerts.get(src_fp)?;
        if src.resolved_at(now) {
            return None;
        }
        if exclude_two_sided && matches_all(&self.target, &src.labels) {
            return None;
        }
        Some(*src_fp)
    }
}

/// The inhibitor for one configuration.
#[derive(Debug)]
pub struct Inhibitor {
    rules: Vec<Rule>,
}

impl Inhibitor {
    /// Builds the rules of a configuration.
    pub fn new(rules: &[InhibitRule]) -> Inhibitor {
        let rules = rules
            .iter()
            .map(|r| {
                let mut equal = r.equal.clone();
                equal.sort();
                equal.dedup();
                Rule {
                    source: r.all_source_matchers(),
                    target: r.all_target_matchers(),
                    equal,
                    cache: Mutex::new(Cache::default()),
                }
            })
            .collect();
        Inhibitor { rules }
    }

    /// Feeds a stored alert (every version, resolved ones too) into the rules' source caches.
    pub fn process(&self, alert: &Alert) {
        self.process_source(&alert.labels, alert.ends_at);
    }

    /// [`Inhibitor::process`] of an alert given by its labels and end.
    pub(crate) fn process_source(&self, labels: &Labels, ends_at: Timestamp) {
        for r in &self.rules {
            if matches_all(&r.source, labels) {
                r.add_source(labels, ends_at);
            }
        }
    }

    /// The fingerprint of the alert inhibiting `labels` at `now`, if any (inhibit.go `Mutes`).
    /// Whether the source alert is itself silenced or inhibited does not matter.
    pub fn mutes(&self, labels: &Labels, now: Timestamp) -> Option<Fingerprint> {
        for r in &self.rules {
            if !matches_all(&r.target, labels) {
                continue;
            }
            let two_sided = matches_all(&r.source, labels);
            if let Some(fp) = r.has_equal(labels, two_sided, now) {
                return Some(fp);
            }
        }
        None
    }

    /// Drops resolved source alerts from the caches (the source cache's GC).
    pub fn gc(&self, now: Timestamp) {
        for r in &self.rules {
            let mut cache = r.lock();
            let gone: Vec<Fingerprint> = cache
                .alerts
                .iter()
                .filter(|(_, a)| a.resolved_at(now))
                .map(|(fp, _)| *fp)
                .collect();
            for fp in gone {
                if let Some(a) = cache.alerts.remove(&fp) {
                    let eq = r.equal_fingerprint(&a.labels);
                    if cache.index.get(&eq) == Some(&fp) {
                        cache.index.remove(&eq);
                    }
                }
            }
        }
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
