//! Silences (upstream `silence/silence.go`): creation, the edit rules that keep history
//! (`Set`/`canUpdate`), expiry, states, retention, matching alerts, persistence in
//! `silences.log`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use watchfire_config::alertmanager::matchers::{AmMatcher, Mode, is_valid_label_name};
use watchfire_model::{Labels, MatchType};

use crate::Error;
use crate::logfile::{Keyed, Kind, LogFile, Record};
use crate::types::{add_duration, is_zero, rfc3339};

/// A silence matcher as the API and the file carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    /// The matcher type.
    pub fn kind(&self) -> MatchType {
        match (self.is_equal, self.is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regex,
            (false, true) => MatchType::NotRegex,
        }
    }
}

/// A silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    #[serde(with = "rfc3339")]
    pub starts_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub ends_at: Timestamp,
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Keyed for Silence {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// A silence's state at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// The state at `t` as the silencer sees it (silence.go `getState`: still active at the
    /// very instant it ends).
    pub fn state_at(&self, t: Timestamp) -> SilenceState {
        if t < self.starts_at {
            SilenceState::Pending
        } else if t > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// The state at `t` as the API reports it (state.go `CurrentState`: expired from the
    /// instant it ends).
    pub fn api_state_at(&self, t: Timestamp) -> SilenceState {
        if t < self.starts_at {
            SilenceState::Pending
        } else if t < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// Compiles and checks a silence's matchers (silence.go `validateMatcher`).
fn compile(matchers: &[SilenceMatcher]) -> Result<Vec<AmMatcher>, String> {
    let mut out = Vec::with_capacity(matchers.len());
    for (i, m) in matchers.iter().enumerate() {
        if !is_valid_label_name(Mode::Fallback, &m.name) {
            return Err(format!(
                "invalid label matcher {i} in set 0: invalid label name {:?}",
                m.name
            ));
        }
        let c = AmMatcher::new(m.kind(), &m.name, &m.value).map_err(|e| {
            format!(
                "invalid label matcher {i} in set 0: invalid regular expression {:?}: {e}",
                m.value
            )
        })?;
        out.push(c);
    }
    Ok(out)
}

/// Upstream `validateSilence`.
fn validate(s: &Silence) -> Result<Vec<AmMatcher>, String> {
    if s.matchers.is_empty() {
        return Err("at least one matcher set required".into());
    }
    let compiled = compile(&s.matchers)?;
    let all_match_empty = compiled.iter().all(|m| match m.kind {
        MatchType::Equal | MatchType::Regex => m.matches(""),
        MatchType::NotEqual | MatchType::NotRegex => false,
    });
    if all_match_empty {
        return Err("matcher set 0: at least one matcher must not match the empty string".into());
    }
    if is_zero(s.starts_at) {
        return Err("invalid zero start timestamp".into());
    }
    if is_zero(s.ends_at) {
        return Err("invalid zero end timestamp".into());
    }
    if s.ends_at < s.starts_at {
        return Err("end time must not be before start time".into());
    }
    Ok(compiled)
}

/// Whether `prev` may be changed into `next` in place without rewriting history
/// (silence.go `canUpdate`).
fn can_update(prev: &Silence, next: &Silence, now: Timestamp) -> bool {
    if prev.matchers != next.matchers {
        return false;
    }
    match prev.state_at(now) {
        SilenceState::Active => prev.starts_at.as_second() == next.starts_at.as_second() && next.ends_at >= now,
        SilenceState::Pending => next.starts_at >= now,
        SilenceState::Expired => false,
    }
}

#[derive(Debug)]
struct Entry {
    silence: Silence,
    matchers: Vec<AmMatcher>,
}

#[derive(Debug)]
struct Inner {
    silences: HashMap<String, Entry>,
    log: Option<LogFile>,
}

/// The silences.
#[derive(Debug)]
pub struct Silences {
    inner: Mutex<Inner>,
    retention: std::time::Duration,
}

/// A fresh UUID v4, as upstream's `uuid.NewRandom`.
fn new_id() -> Result<String, Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

impl Silences {
    /// Silences kept only in memory; expired ones are kept for `retention`.
    pub fn in_memory(retention: std::time::Duration) -> Silences {
        Silences {
            inner: Mutex::new(Inner {
                silences: HashMap::new(),
                log: None,
            }),
            retention,
        }
    }

    /// Opens the silences persisted at `path`.
    pub fn open(path: &Path, retention: std::time::Duration) -> Result<Silences, Error> {
        let (log, values): (LogFile, BTreeMap<String, Silence>) = LogFile::open(path, Kind::Silences)?;
        let mut silences = HashMap::with_capacity(values.len());
        for (id, silence) in values {
            match compile(&silence.matchers) {
                Ok(matchers) => {
                    silences.insert(id, Entry { silence, matchers });
                }
                // A regex this build cannot compile: keep going without that silence.
                Err(e) => tracing::error!(silence = %id, err = %e, "dropping a stored silence with invalid matchers"),
            }
        }
        Ok(Silences {
            inner: Mutex::new(Inner {
                silences,
                log: Some(log),
            }),
            retention,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(inner: &mut Inner, silence: Silence, matchers: Vec<AmMatcher>) -> Result<(), Error> {
        let live = inner.silences.len() + 1;
        if let Some(log) = inner.log.as_mut() {
            log.append(&Record::Put(&silence))?;
        }
        inner.silences.insert(silence.id.clone(), Entry { silence, matchers });
        let Inner { silences, log } = inner;
        if let Some(log) = log.as_mut()
            && log.needs_compaction(live)
        {
            log.rewrite(silences.values().map(|e| &e.silence))?;
        }
        Ok(())
    }

    /// Creates or updates a silence (silence.go `Set`) and returns its ID, which is new unless
    /// the update could be made in place. A missing start means now; a new silence starting in
    /// the past starts now. Updating an unknown ID is [`Error::SilenceNotFound`].
    pub fn set(&self, mut silence: Silence, now: Timestamp) -> Result<String, Error> {
        if is_zero(silence.starts_at) {
            silence.starts_at = now;
        }
        let matchers = validate(&silence).map_err(Error::InvalidSilence)?;
        let mut inner = self.lock();
        let prev = if silence.id.is_empty() {
            None
        } else {
            match inner.silences.get(&silence.id) {
                Some(e) => Some(e.silence.clone()),
                None => return Err(Error::SilenceNotFound),
            }
        };
        if let Some(prev) = &prev
            && can_update(prev, &silence, now)
        {
            silence.updated_at = now;
            let id = silence.id.clone();
            Self::store(&mut inner, silence, matchers)?;
            return Ok(id);
        }
        silence.id = new_id()?;
        if silence.starts_at < now {
            silence.starts_at = now;
        }
        silence.updated_at = now;
        if let Some(prev) = prev
            && prev.state_at(now) != SilenceState::Expired
        {
            // The edit would rewrite history: expire the old silence and create a new one.
            Self::expire_locked(&mut inner, &prev.id, now)?;
        }
        let id = silence.id.clone();
        Self::store(&mut inner, silence, matchers)?;
        Ok(id)
    }

    fn expire_locked(inner: &mut Inner, id: &str, now: Timestamp) -> Result<(), Error> {
        let Some(entry) = inner.silences.get(id) else {
            return Err(Error::SilenceNotFound);
        };
        let mut s = entry.silence.clone();
        let matchers = entry.matchers.clone();
        match s.state_at(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Self::store(inner, s, matchers)
    }

    /// Expires a silence now (silence.go `Expire`); expiring an expired silence is a no-op.
    pub fn expire(&self, id: &str, now: Timestamp) -> Result<(), Error> {
        Self::expire_locked(&mut self.lock(), id, now)
    }

    /// The silence with this ID.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.lock().silences.get(id).map(|e| e.silence.clone())
    }

    /// All silences (in no particular order).
    pub fn list(&self) -> Vec<Silence> {
        self.lock().silences.values().map(|e| e.silence.clone()).collect()
    }

    /// The IDs of the silences active at `now` whose matchers all match `labels`, sorted.
    pub fn mutes(&self, labels: &Labels, now: Timestamp) -> Vec<String> {
        let inner = self.lock();
        let mut ids: Vec<String> = inner
            .silences
            .values()
            .filter(|e| e.silence.state_at(now) == SilenceState::Active)
            .filter(|e| e.matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or(""))))
            .map(|e| e.silence.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// How many silences are in each state at `now` (for `alertmanager_silences`).
    pub fn count_states(&self, now: Timestamp) -> [(SilenceState, usize); 3] {
        let inner = self.lock();
        let mut counts = [
            (SilenceState::Active, 0),
            (SilenceState::Pending, 0),
            (SilenceState::Expired, 0),
        ];
        for e in inner.silences.values() {
            let st = e.silence.state_at(now);
            for c in counts.iter_mut() {
                if c.0 == st {
                    c.1 += 1;
                }
            }
        }
        counts
    }

    /// Deletes silences that ended more than the retention ago (silence.go `GC`); returns how
    /// many.
    pub fn gc(&self, now: Timestamp) -> Result<usize, Error> {
        let mut inner = self.lock();
        let retention = self.retention;
        let before = inner.silences.len();
        inner
            .silences
            .retain(|_, e| add_duration(e.silence.ends_at, retention) > now);
        let n = before - inner.silences.len();
        if n > 0 {
            let Inner { silences, log } = &mut *inner;
            if let Some(log) = log.as_mut() {
                log.rewrite(silences.values().map(|e| &e.silence))?;
            }
        }
        Ok(n)
    }

    /// The size of the silences file in bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_id().unwrap());
    }
}
