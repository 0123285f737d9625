//! The record log every piece of persisted state uses (alerts, silences, the notification log,
//! the notification history). The byte layout is specified in `FORMAT.md`; in short: an 8-byte
//! header (magic, version, kind), then records of `u32 length, u32 CRC-32, JSON payload`, each
//! either a `put` of a whole value or a `delete` of a key. Replaying the file in order yields
//! the state. When dead records dominate, the file is rewritten as a snapshot (temporary
//! file, fsync, rename).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

const MAGIC: &[u8; 4] = b"WFAL";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;
const RECORD_HEADER_LEN: usize = 8;
/// Larger records are refused; a corrupt length field must not make us allocate gigabytes.
const MAX_RECORD_LEN: usize = 64 << 20;
/// Compaction starts once the file holds this many records and four times the live count.
const COMPACT_MIN_RECORDS: u64 = 1024;

/// Which state a file holds; stored in the header so files cannot be mixed up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Alerts = 1,
    Silences = 2,
    Nflog = 3,
    History = 4,
}

/// One record: a whole value to store under its key, or a key to forget.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Record<T> {
    Put(T),
    Delete(String),
}

/// A value kept in a log file under a unique key.
pub(crate) trait Keyed {
    fn key(&self) -> String;
}

/// An open log file, positioned at its end for appending.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    kind: Kind,
    file: File,
    records: u64,
    size: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn header(kind: Kind) -> [u8; HEADER_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, kind as u8, 0, 0]
}

fn encode<T: Serialize>(rec: &Record<T>, out: &mut Vec<u8>) -> Result<(), Error> {
    let payload = serde_json::to_vec(rec).map_err(|e| Error::Encode(e.to_string()))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_RECORD_LEN)
        .ok_or_else(|| Error::Encode(format!("record of {} bytes is too large", payload.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

impl LogFile {
    /// Opens (or creates) the file and replays it. Returns the live values by key. A record cut
    /// short at the end of the file (a crash during a write) is dropped and the file truncated
    /// to the last whole record; any other damage is [`Error::Corrupt`].
    pub(crate) fn open<T: Keyed + DeserializeOwned>(
        path: &Path,
        kind: Kind,
    ) -> Result<(LogFile, BTreeMap<String, T>), Error> {
        let mut values = BTreeMap::new();
        let mut records = 0u64;
        let bytes = match fs::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(path)(e)),
        };
        let corrupt = |offset: usize, reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let mut good_len = HEADER_LEN;
        match &bytes {
            None => {
                let mut f = File::create(path).map_err(io_err(path))?;
                f.write_all(&header(kind)).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
            }
            Some(b) if b.len() < HEADER_LEN => {
                // A crash while creating the file: nothing was ever stored in it.
                tracing::warn!(file = %path.display(), "state file shorter than its header; starting it afresh");
                fs::write(path, header(kind)).map_err(io_err(path))?;
            }
            Some(b) => {
                if &b[..4] != MAGIC {
                    return Err(corrupt(0, "not a Watchfire state file (bad magic)".into()));
                }
                if b[4] != VERSION {
                    return Err(corrupt(4, format!("unsupported format version {}", b[4])));
                }
                if b[5] != kind as u8 {
                    return Err(corrupt(
                        5,
                        format!("file holds state kind {}, expected {}", b[5], kind as u8),
                    ));
                }
                let mut pos = HEADER_LEN;
                while pos < b.len() {
                    let rest = b.len() - pos;
                    if rest < RECORD_HEADER_LEN {
                        break; // torn record header
                    }
                    let len = u32::from_le_bytes(b[pos..pos + 4].try_into().expect("slice of 4 bytes")) as usize;
                    let crc = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().expect("slice of 4 bytes"));
                    if len > MAX_RECORD_LEN {
                        return Err(corrupt(pos, format!("record length {len} exceeds the limit")));
                    }
                    if rest - RECORD_HEADER_LEN < len {
                        break; // torn payload
                    }
                    let payload = &b[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + len];
                    let end = pos + RECORD_HEADER_LEN + len;
                    if crc32fast::hash(payload) != crc {
                        if end == b.len() {
                            break; // the last record was being written when the process died
                        }
                        return Err(corrupt(pos, "checksum mismatch".into()));
                    }
                    let rec: Record<T> = serde_json::from_slice(payload)
                        .map_err(|e| corrupt(pos, format!("undecodable record: {e}")))?;
                    match rec {
                        Record::Put(v) => {
                            values.insert(v.key(), v);
                        }
                        Record::Delete(k) => {
                            values.remove(&k);
                        }
                    }
                    records += 1;
                    pos = end;
                    good_len = end;
                }
                if good_len < b.len() {
                    tracing::warn!(
                        file = %path.display(),
                        offset = good_len,
                        dropped_bytes = b.len() - good_len,
                        "state file ends in a partial record; truncating it"
                    );
                    let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
                    f.set_len(good_len as u64).map_err(io_err(path))?;
                    f.sync_all().map_err(io_err(path))?;
                }
            }
        }
        let file = OpenOptions::new().append(true).open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len();
        Ok((
            LogFile {
                path: path.to_path_buf(),
                kind,
                file,
                records,
                size,
            },
            values,
        ))
    }

    /// Appends one record with a single write (no fsync: a process crash loses nothing, a power
    /// loss may lose the last records; see FORMAT.md).
    pub(crate) fn append<T: Serialize>(&mut self, rec: &Record<T>) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(256);
        encode(rec, &mut buf)?;
        self.file.write_all(&buf).map_err(io_err(&self.path))?;
        self.records += 1;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Whether the file holds enough dead records that [`LogFile::rewrite`] is worth it.
    pub(crate) fn needs_compaction(&self, live: usize) -> bool {
        self.records >= COMPACT_MIN_RECORDS && self.records > 4 * live as u64
    }

    /// Replaces the file's contents with one `put` per value, atomically (write a temporary
    /// file, fsync it, rename it over the old one, fsync the directory).
    pub(crate) fn rewrite<'a, T: Serialize + 'a>(
        &mut self,
        values: impl IntoIterator<Item = &'a T>,
    ) -> Result<(), Error> {
        let mut buf = header(self.kind).to_vec();
        let mut records = 0;
        for v in values {
            encode(&Record::Put(v), &mut buf)?;
            records += 1;
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&buf).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            // Best effort: not every platform can fsync a directory.
            let _ = d.sync_all();
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        self.records = records;
        self.size = buf.len() as u64;
        Ok(())
    }

    /// Flushes the file to stable storage.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        self.file.sync_all().map_err(io_err(&self.path))
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}
