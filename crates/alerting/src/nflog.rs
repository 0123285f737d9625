//! The notification log (upstream `nflog/nflog.go`): per group key and receiver integration,
//! what was last notified (firing and resolved alert hashes) and when. The dedup stage decides
//! from it; it is persisted in `nflog.log` so a restart does not notify twice.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::logfile::{Keyed, Kind, LogFile, Record};
use crate::types::{add_duration, rfc3339};

/// Which integration of which receiver an entry is about (nflogpb `Receiver`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceiverKey {
    /// The receiver name.
    pub group_name: String,
    /// The integration kind (`webhook`, `email`, ...).
    pub integration: String,
    /// The integration's index among the receiver's integrations of that kind.
    pub idx: u32,
}

impl std::fmt::Display for ReceiverKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.group_name, self.integration, self.idx)
    }
}

/// One notification log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub group_key: String,
    pub receiver: ReceiverKey,
    /// When the notification was logged (after it was sent).
    #[serde(with = "rfc3339")]
    pub timestamp: Timestamp,
    pub firing_alerts: Vec<u64>,
    pub resolved_alerts: Vec<u64>,
    /// When the entry may be forgotten.
    #[serde(with = "rfc3339")]
    pub expires_at: Timestamp,
}

impl Entry {
    /// Whether every hash in `subset` was firing at this notification.
    pub fn is_firing_subset(&self, subset: &std::collections::HashSet<u64>) -> bool {
        subset.iter().all(|h| self.firing_alerts.contains(h))
    }

    /// Whether every hash in `subset` was resolved at this notification.
    pub fn is_resolved_subset(&self, subset: &std::collections::HashSet<u64>) -> bool {
        subset.iter().all(|h| self.resolved_alerts.contains(h))
    }
}

fn state_key(group_key: &str, r: &ReceiverKey) -> String {
    format!("{group_key}:{r}")
}

impl Keyed for Entry {
    fn key(&self) -> String {
        state_key(&self.group_key, &self.receiver)
    }
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<String, Entry>,
    log: Option<LogFile>,
}

/// The notification log.
#[derive(Debug)]
pub struct Nflog {
    inner: Mutex<Inner>,
    retention: std::time::Duration,
}

impl Nflog {
    /// A log kept only in memory; entries live at most `retention`.
    pub fn in_memory(retention: std::time::Duration) -> Nflog {
        Nflog {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                log: None,
            }),
            retention,
        }
    }

    /// Opens the log persisted at `path`.
    pub fn open(path: &Path, retention: std::time::Duration) -> Result<Nflog, Error> {
        let (log, values): (LogFile, BTreeMap<String, Entry>) = LogFile::open(path, Kind::Nflog)?;
        Ok(Nflog {
            inner: Mutex::new(Inner {
                entries: values.into_iter().collect(),
                log: Some(log),
            }),
            retention,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for this group and integration.
    pub fn query(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry> {
        self.lock().entries.get(&state_key(group_key, receiver)).cloned()
    }

    /// Records a notification at `now` (nflog.go `Log`). The entry expires after the retention
    /// or `expiry` (twice the repeat interval), whichever is shorter; an existing entry with a
    /// later timestamp is kept.
    pub fn log(
        &self,
        receiver: &ReceiverKey,
        group_key: &str,
        firing_alerts: Vec<u64>,
        resolved_alerts: Vec<u64>,
        expiry: std::time::Duration,
        now: Timestamp,
    ) -> Result<(), Error> {
        let key = state_key(group_key, receiver);
        let mut inner = self.lock();
        if inner.entries.get(&key).is_some_and(|prev| prev.timestamp > now) {
            return Ok(());
        }
        let keep = if !expiry.is_zero() && self.retention > expiry {
            expiry
        } else {
            self.retention
        };
        let entry = Entry {
            group_key: group_key.to_owned(),
            receiver: receiver.clone(),
            timestamp: now,
            firing_alerts,
            resolved_alerts,
            expires_at: add_duration(now, keep),
        };
        let live = inner.entries.len() + 1;
        if let Some(log) = inner.log.as_mut() {
            log.append(&Record::Put(&entry))?;
        }
        inner.entries.insert(key, entry);
        let Inner { entries, log } = &mut *inner;
        if let Some(log) = log.as_mut()
            && log.needs_compaction(live)
        {
            log.rewrite(entries.values())?;
        }
        Ok(())
    }

    /// Drops entries expired at `now` (nflog.go `GC`); returns how many.
    pub fn gc(&self, now: Timestamp) -> Result<usize, Error> {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, e| e.expires_at > now);
        let n = before - inner.entries.len();
        if n > 0 {
            let Inner { entries, log } = &mut *inner;
            if let Some(log) = log.as_mut() {
                log.rewrite(entries.values())?;
            }
        }
        Ok(n)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.lock().log.as_ref().map_or(0, LogFile::size)
    }

    /// Flushes the file to stable storage.
    pub fn sync(&self) -> Result<(), Error> {
        match &self.lock().log {
            Some(log) => log.sync(),
            None => Ok(()),
        }
    }
}
