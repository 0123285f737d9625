//! The alert store (upstream `provider/mem`): the current version of every alert by
//! fingerprint, merged on update, garbage-collected once resolved, and — unlike upstream —
//! persisted in `alerts.log` so a restart loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use crate::Error;
use crate::logfile::{Keyed, Kind, LogFile, Record};
use crate::types::{Alert, Fingerprint, StoredAlert};

impl Keyed for Alert {
    fn key(&self) -> String {
        self.fingerprint().to_string()
    }
}

#[derive(Debug)]
struct Inner {
    /// Shared with the aggregation groups the alert is in: one copy per version.
    alerts: HashMap<Fingerprint, Arc<StoredAlert>>,
    log: Option<LogFile>,
}

/// The alert store.
#[derive(Debug)]
pub struct AlertStore {
    inner: Mutex<Inner>,
}

impl AlertStore {
    /// An empty store that keeps nothing on disk.
    pub fn in_memory() -> AlertStore {
        AlertStore {
            inner: Mutex::new(Inner {
                alerts: HashMap::new(),
                log: None,
            }),
        }
    }

    /// Opens the store persisted at `path`, loading the alerts in it.
    pub fn open(path: &Path) -> Result<AlertStore, Error> {
        let (log, values): (LogFile, BTreeMap<String, Alert>) = LogFile::open(path, Kind::Alerts)?;
        let alerts = values
            .into_values()
            .map(|a| (a.fingerprint(), Arc::new(StoredAlert::from(&a))))
            .collect();
        Ok(AlertStore {
            inner: Mutex::new(Inner { alerts, log: Some(log) }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `alert`, merging it with the stored version when their activity ranges overlap
    /// (mem.go `Put`), and returns the version now stored.
    pub(crate) fn put(&self, alert: &Alert) -> Result<Arc<StoredAlert>, Error> {
        let alert = StoredAlert::from(alert);
        let mut inner = self.lock();
        let fp = alert.fingerprint();
        let alert = match inner.alerts.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                old.merge(alert)
            }
            _ => alert,
        };
        let live = inner.alerts.len() + 1;
        if let Some(log) = inner.log.as_mut() {
            log.append(&Record::Put(&alert))?;
            if log.needs_compaction(live) {
                let Inner { alerts, log } = &mut *inner;
                let mut all: Vec<&StoredAlert> = alerts
                    .values()
                    .map(|a| &**a)
                    .filter(|a| a.fingerprint() != fp)
                    .collect();
                all.push(&alert);
                log.as_mut().expect("checked above").rewrite(all)?;
            }
        }
        let alert = Arc::new(alert);
        inner.alerts.insert(fp, Arc::clone(&alert));
        Ok(alert)
    }

    /// All stored alerts, resolved ones included, in fingerprint order.
    pub(crate) fn list(&self) -> Vec<Arc<StoredAlert>> {
        let mut all: Vec<(Fingerprint, Arc<StoredAlert>)> =
            self.lock().alerts.iter().map(|(fp, a)| (*fp, Arc::clone(a))).collect();
        all.sort_unstable_by_key(|(fp, _)| *fp);
        all.into_iter().map(|(_, a)| a).collect()
    }

    /// The number of stored alerts.
    pub fn len(&self) -> usize {
        self.lock().alerts.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the alerts resolved at `now` and returns them (mem.go `gc`). Aggregation groups
    /// keep their references until the resolved notification has gone out.
    pub(crate) fn gc(&self, now: Timestamp) -> Result<Vec<Arc<StoredAlert>>, Error> {
        let mut inner = self.lock();
        let gone: Vec<Fingerprint> = inner
            .alerts
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, _)| *fp)
            .collect();
        let mut removed = Vec::with_capacity(gone.len());
        for fp in gone {
            if let Some(a) = inner.alerts.remove(&fp) {
                removed.push(a);
            }
        }
        if !removed.is_empty() {
            let Inner { alerts, log } = &mut *inner;
            if let Some(log) = log.as_mut() {
                // Compaction writes the survivors only, so it is also the cheapest delete.
                log.rewrite(alerts.values().map(|a| &**a))?;
            }
        }
        Ok(removed)
    }

    /// Flushes the file to stable storage (on shutdown).
    pub fn sync(&self) -> Result<(), Error> {
        match &self.lock().log {
            Some(log) => log.sync(),
            None => Ok(()),
        }
    }
}
