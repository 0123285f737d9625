//! The notification history: every notification attempt the pipeline made (receiver,
//! integration, group, alerts, when, outcome), kept for the retention period in `history.log`
//! and queryable. Upstream has no such thing (issues #172, #1305); it answers "what did we
//! send, and did it arrive?".

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use watchfire_model::Labels;

use crate::Error;
use crate::logfile::{Keyed, Kind, LogFile, Record};
use crate::types::{Alert, add_duration, rfc3339};

/// The result of a notification attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Not delivered, after all retries.
    Failed { error: String },
}

/// One notification attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// A sequence number, increasing across restarts.
    pub seq: u64,
    /// When the attempt finished.
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
    pub receiver: String,
    pub integration: String,
    pub index: u32,
    pub group_key: String,
    pub group_labels: Labels,
    /// Why it was sent (`first notification`, `repeat interval elapsed`, ...).
    pub reason: String,
    pub alerts: Vec<Alert>,
    /// How many delivery attempts were made.
    pub attempts: u32,
    pub outcome: Outcome,
}

impl Keyed for HistoryEntry {
    fn key(&self) -> String {
        // Zero-padded so the replayed map iterates in sequence order.
        format!("{:020}", self.seq)
    }
}

/// Which entries a history query returns.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Only this receiver.
    pub receiver: Option<String>,
    /// Only this group key.
    pub group_key: Option<String>,
    /// Only attempts at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many (the newest); 0 means no limit.
    pub limit: usize,
}

#[derive(Debug)]
struct Inner {
    entries: VecDeque<HistoryEntry>,
    /// The alerts the entries hold, together.
    alerts: usize,
    next_seq: u64,
    log: Option<LogFile>,
}

/// The notification history.
#[derive(Debug)]
pub struct History {
    inner: Mutex<Inner>,
    retention: std::time::Duration,
    limits: HistoryLimits,
}

/// How much history is kept besides the retention: the oldest entries go first.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    /// The most entries.
    pub max_entries: usize,
    /// The most alerts all entries hold together (each entry keeps a copy of its group's
    /// alerts; a big group notified often would otherwise hold many copies). The newest entry
    /// is kept whole even if it alone holds more.
    pub max_alerts: usize,
}

impl History {
    /// A history kept in memory only.
    pub fn in_memory(retention: std::time::Duration, limits: HistoryLimits) -> History {
        History {
            inner: Mutex::new(Inner {
                entries: VecDeque::new(),
                alerts: 0,
                next_seq: 1,
                log: None,
            }),
            retention,
            limits,
        }
    }

    /// Opens the history persisted at `path`.
    pub fn open(path: &Path, retention: std::time::Duration, limits: HistoryLimits) -> Result<History, Error> {
        let (log, values): (LogFile, BTreeMap<String, HistoryEntry>) = LogFile::open(path, Kind::History)?;
        let entries: VecDeque<HistoryEntry> = values.into_values().collect();
        let next_seq = entries.back().map_or(1, |e| e.seq + 1);
        let alerts = entries.iter().map(|e| e.alerts.len()).sum();
        Ok(History {
            inner: Mutex::new(Inner {
                entries,
                alerts,
                next_seq,
                log: Some(log),
            }),
            retention,
            limits,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an entry (its `seq` is assigned here). A write failure is logged, not returned:
    /// the history must never stop a notification.
    pub fn record(&self, mut entry: HistoryEntry) {
        let mut inner = self.lock();
        entry.seq = inner.next_seq;
        inner.next_seq += 1;
        let mut dropped = Vec::new();
        while !inner.entries.is_empty()
            && (inner.entries.len() >= self.limits.max_entries.max(1)
                || inner.alerts + entry.alerts.len() > self.limits.max_alerts)
        {
            if let Some(old) = inner.entries.pop_front() {
                inner.alerts -= old.alerts.len();
                dropped.push(old.key());
            }
        }
        inner.alerts += entry.alerts.len();
        let Inner { entries, log, .. } = &mut *inner;
        if let Some(log) = log.as_mut() {
            let res = dropped
                .iter()
                .try_for_each(|k| log.append(&Record::<HistoryEntry>::Delete(k.clone())))
                .and_then(|()| log.append(&Record::Put(&entry)));
            if let Err(e) = res {
                tracing::error!(err = %e, "writing the notification history");
            } else if log.needs_compaction(entries.len() + 1) {
                let all: Vec<&HistoryEntry> = entries.iter().chain(std::iter::once(&entry)).collect();
                if let Err(e) = log.rewrite(all) {
                    tracing::error!(err = %e, "compacting the notification history");
                }
            }
        }
        entries.push_back(entry);
    }

    /// Entries matching the query, newest first.
    pub fn query(&self, q: &HistoryQuery) -> Vec<HistoryEntry> {
        let inner = self.lock();
        let mut out: Vec<HistoryEntry> = inner
            .entries
            .iter()
            .rev()
            .filter(|e| q.receiver.as_ref().is_none_or(|r| *r == e.receiver))
            .filter(|e| q.group_key.as_ref().is_none_or(|g| *g == e.group_key))
            .filter(|e| q.since.is_none_or(|s| e.at >= s))
            .cloned()
            .collect();
        if q.limit > 0 {
            out.truncate(q.limit);
        }
        out
    }

    /// Drops entries older than the retention.
    pub fn gc(&self, now: Timestamp) -> Result<usize, Error> {
        let mut inner = self.lock();
        let before = inner.entries.len();
        let retention = self.retention;
        inner.entries.retain(|e| add_duration(e.at, retention) > now);
        inner.alerts = inner.entries.iter().map(|e| e.alerts.len()).sum();
        let n = before - inner.entries.len();
        if n > 0 {
            let Inner { entries, log, .. } = &mut *inner;
            if let Some(log) = log.as_mut() {
                log.rewrite(entries.iter())?;
            }
        }
        Ok(n)
    }

    /// Flushes the file to stable storage.
    pub fn sync(&self) -> Result<(), Error> {
        match &self.lock().log {
            Some(log) => log.sync(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(receiver: &str, alerts: usize) -> HistoryEntry {
        let alert = |i: usize| Alert {
            labels: Labels::from_pairs([("alertname", format!("A{i}"))]),
            annotations: BTreeMap::new(),
            starts_at: Timestamp::UNIX_EPOCH,
            ends_at: Timestamp::UNIX_EPOCH,
            generator_url: String::new(),
            updated_at: Timestamp::UNIX_EPOCH,
            timeout: false,
        };
        HistoryEntry {
            seq: 0,
            at: Timestamp::now(),
            receiver: receiver.into(),
            integration: "webhook".into(),
            index: 0,
            group_key: "{}:{}".into(),
            group_labels: Labels::empty(),
            reason: "first notification".into(),
            alerts: (0..alerts).map(alert).collect(),
            attempts: 1,
            outcome: Outcome::Sent,
        }
    }

    fn receivers(h: &History) -> Vec<String> {
        h.query(&HistoryQuery::default())
            .into_iter()
            .map(|e| e.receiver)
            .collect()
    }

    #[test]
    fn oldest_entries_go_when_the_alerts_held_would_exceed_the_limit() {
        let limits = HistoryLimits {
            max_entries: 100,
            max_alerts: 5,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.log");
        let h = History::open(&path, std::time::Duration::from_secs(3600), limits).unwrap();
        for r in ["a", "b"] {
            h.record(entry(r, 2));
        }
        assert_eq!(receivers(&h), ["b", "a"]);
        // 2 + 2 + 2 > 5: the oldest goes.
        h.record(entry("c", 2));
        assert_eq!(receivers(&h), ["c", "b"]);
        // An entry bigger than the limit on its own is kept, alone.
        h.record(entry("big", 7));
        assert_eq!(receivers(&h), ["big"]);
        h.record(entry("d", 1));
        assert_eq!(receivers(&h), ["d"]);
        // The count survives a restart: the reopened history still holds 1 alert of 5.
        drop(h);
        let h = History::open(&path, std::time::Duration::from_secs(3600), limits).unwrap();
        h.record(entry("e", 4));
        assert_eq!(receivers(&h), ["e", "d"]);
        h.record(entry("f", 1));
        assert_eq!(receivers(&h), ["f", "e"]);
    }
}
