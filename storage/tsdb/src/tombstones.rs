//! Deletions that have not been compacted away: per series, time intervals whose samples
//! queries must skip. A block keeps them in its `tombstones` file (upstream's layout,
//! `tsdb/docs/format/tombstones.md`); the head keeps them in memory and logs them to the WAL.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::Error;
use crate::encoding::{Dec, put_uvarint, put_varint};
use crate::wal::CASTAGNOLI;

/// Tombstones file magic number.
pub const MAGIC: u32 = 0x0130_BA30;
/// Tombstones file format version.
pub const VERSION: u8 = 1;
/// The file name inside a block.
pub const FILE_NAME: &str = "tombstones";

/// A deleted time range, both ends inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub mint: i64,
    pub maxt: i64,
}

impl Interval {
    /// Whether `t` is inside.
    pub fn contains(&self, t: i64) -> bool {
        self.mint <= t && t <= self.maxt
    }
}

/// Adds `iv` to a sorted list of disjoint intervals, merging overlapping and adjacent ones.
pub(crate) fn add_interval(list: &mut Vec<Interval>, iv: Interval) {
    if iv.mint > iv.maxt {
        return;
    }
    list.push(iv);
    list.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(list.len());
    for x in list.drain(..) {
        match out.last_mut() {
            Some(last) if x.mint <= last.maxt.saturating_add(1) => last.maxt = last.maxt.max(x.maxt),
            _ => out.push(x),
        }
    }
    *list = out;
}

/// Whether `t` falls in one of the sorted intervals.
pub(crate) fn is_deleted(list: &[Interval], t: i64) -> bool {
    let i = list.partition_point(|iv| iv.maxt < t);
    list.get(i).is_some_and(|iv| iv.contains(t))
}

/// Series reference → sorted, disjoint deleted intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: BTreeMap<u64, Vec<Interval>>,
}

impl Tombstones {
    /// Adds an interval for series `r`.
    pub fn add(&mut self, r: u64, iv: Interval) {
        add_interval(self.map.entry(r).or_default(), iv);
    }

    /// The intervals of series `r`, sorted.
    pub fn get(&self, r: u64) -> &[Interval] {
        self.map.get(&r).map_or(&[], Vec::as_slice)
    }

    /// Drops series `r`.
    pub fn remove(&mut self, r: u64) {
        self.map.remove(&r);
    }

    /// Drops intervals that end before `mint`.
    pub fn truncate_before(&mut self, mint: i64) {
        self.map.retain(|_, l| {
            l.retain(|iv| iv.maxt >= mint);
            !l.is_empty()
        });
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of intervals (upstream's `numTombstones`).
    pub fn num_intervals(&self) -> u64 {
        self.map.values().map(|l| l.len() as u64).sum()
    }

    /// Every (series, interval).
    pub fn iter(&self) -> impl Iterator<Item = (u64, Interval)> + '_ {
        self.map.iter().flat_map(|(r, l)| l.iter().map(move |iv| (*r, *iv)))
    }

    /// The file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(5 + self.map.len() * 8 + 4);
        b.extend_from_slice(&MAGIC.to_be_bytes());
        b.push(VERSION);
        for (r, iv) in self.iter() {
            put_uvarint(&mut b, r);
            put_varint(&mut b, iv.mint);
            put_varint(&mut b, iv.maxt);
        }
        // As upstream, the checksum leaves out the magic and the version byte.
        let crc = CASTAGNOLI.checksum(&b[5..]);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses file bytes; `path` is for error messages.
    pub fn decode(b: &[u8], path: &Path) -> Result<Self, Error> {
        let c = |off: usize, why: String| Error::Corruption {
            file: path.to_path_buf(),
            offset: off as u64,
            reason: why,
        };
        if b.len() < 9 || b[..4] != MAGIC.to_be_bytes() {
            return Err(c(0, "bad tombstones magic number or file too short".into()));
        }
        if b[4] != VERSION {
            return Err(c(4, format!("unsupported tombstones version {}", b[4])));
        }
        let body = &b[5..b.len() - 4];
        let crc = u32::from_be_bytes([b[b.len() - 4], b[b.len() - 3], b[b.len() - 2], b[b.len() - 1]]);
        if CASTAGNOLI.checksum(body) != crc {
            return Err(c(5, "tombstones checksum mismatch".into()));
        }
        let mut t = Tombstones::default();
        let mut d = Dec::new(body, 0);
        while d.remaining() > 0 {
            let at = d.pos + 5;
            let r = d.uvarint().map_err(|e| c(at, e))?;
            let mint = d.varint().map_err(|e| c(at, e))?;
            let maxt = d.varint().map_err(|e| c(at, e))?;
            t.add(r, Interval { mint, maxt });
        }
        Ok(t)
    }

    /// Reads `<dir>/tombstones`; a missing file means no tombstones.
    pub(crate) fn read_file(dir: &Path) -> Result<(Self, u64), Error> {
        let path = dir.join(FILE_NAME);
        match fs::read(&path) {
            Ok(b) => Ok((Self::decode(&b, &path)?, b.len() as u64)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Self::default(), 0)),
            Err(e) => Err(Error::io("read tombstones", &path, e)),
        }
    }

    /// Replaces `<dir>/tombstones` atomically (write a temporary file, fsync, rename, fsync
    /// the directory). Returns the file size.
    pub(crate) fn write_file(&self, dir: &Path) -> Result<u64, Error> {
        let b = self.encode();
        write_atomic(dir, FILE_NAME, &b)?;
        Ok(b.len() as u64)
    }
}

/// Writes `dir/name` through `dir/name.tmp`, fsyncing file and directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
    crate::wal::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn file_round_trips_and_intervals_merge(stones in proptest::collection::vec((0u64..20, -50i64..50, 0i64..30), 0..40)) {
            let mut t = Tombstones::default();
            let mut naive: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
            for &(r, a, len) in &stones {
                t.add(r, Interval { mint: a, maxt: a + len });
                naive.entry(r).or_default().extend(a..=a + len);
            }
            for (r, ts) in &naive {
                for x in -60..90 {
                    prop_assert_eq!(is_deleted(t.get(*r), x), ts.contains(&x));
                }
            }
            let b = t.encode();
            prop_assert_eq!(Tombstones::decode(&b, Path::new("t")).unwrap(), t);
            for i in 0..b.len() {
                let mut bad = b.clone();
                bad[i] ^= 0x20;
                prop_assert!(Tombstones::decode(&bad, Path::new("t")).is_err());
            }
        }
    }
}
