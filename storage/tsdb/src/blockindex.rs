//! The index file of a block: symbols, series with their chunk references, postings lists and
//! the postings offset table, each with a CRC32-Castagnoli, and a table of contents at the end.
//! The layout is upstream's index format version 2 (`tsdb/docs/format/index.md`,
//! `tsdb/index/index.go`); FORMAT.md, "Block index", lists where it differs.
//!
//! The reader maps the file, checks every section's checksum when the block is opened, and keeps
//! only a sample of the symbol offsets and of the postings offset table in memory (every 32nd
//! entry, as upstream), so an open block costs little heap.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use watchfire_model::{Labels, Matcher};

use crate::Error;
use crate::encoding::{Dec, put_uvarint, put_uvarint_str, put_varint};
use crate::index::postings_for_matchers_with;
use crate::wal::CASTAGNOLI;

/// Index magic number.
pub const MAGIC: u32 = 0xBAAA_D700;
/// The index format version written and read.
pub const FORMAT_V2: u8 = 2;
const HEADER_LEN: usize = 5;
const TOC_LEN: usize = 6 * 8 + 4;
const SERIES_ALIGN: u64 = 16;
/// One in this many symbols and postings table entries is kept in memory.
const SAMPLE_EVERY: usize = 32;

/// A chunk as the index describes it: time range (both inclusive) and segment reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_t: i64,
    pub max_t: i64,
    pub r: u64,
}

fn corrupt(file: &Path, offset: usize, reason: impl Into<String>) -> Error {
    Error::Corruption {
        file: file.to_path_buf(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Writes an index: symbols first (all of them, sorted), then series in label order, then
/// [`finish`](Self::finish) writes postings, the offset table and the TOC.
#[derive(Debug)]
pub(crate) struct IndexWriter {
    w: BufWriter<File>,
    path: PathBuf,
    pos: u64,
    symbols: Vec<String>,
    /// (name symbol, value symbol) → series ids. Symbol order is string order.
    postings: BTreeMap<(u32, u32), Vec<u32>>,
    all: Vec<u32>,
    last: Option<Labels>,
    toc_series: u64,
    toc_symbols: u64,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates `path` and writes the header and the symbol table. `symbols` must be sorted and
    /// free of duplicates and hold every label name and value of the series to come.
    pub(crate) fn new(path: &Path, symbols: Vec<String>) -> Result<Self, Error> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io("create index", path, e))?;
        let mut w = IndexWriter {
            w: BufWriter::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            pos: 0,
            symbols: Vec::new(),
            postings: BTreeMap::new(),
            all: Vec::new(),
            last: None,
            toc_series: 0,
            toc_symbols: 0,
            buf: Vec::new(),
        };
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(&MAGIC.to_be_bytes());
        b.push(FORMAT_V2);
        w.put(&b)?;
        w.toc_symbols = w.pos;
        let mut body = Vec::new();
        body.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
        for s in &symbols {
            put_uvarint_str(&mut body, s);
        }
        w.section(&body)?;
        w.symbols = symbols;
        w.toc_series = w.pos;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), Error> {
        self.w
            .write_all(b)
            .map_err(|e| Error::io("write index", &self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), Error> {
        let n = (align - self.pos % align) % align;
        self.put(&vec![0; n as usize])
    }

    /// Writes `len u32`, `body`, `crc32(body)`.
    fn section(&mut self, body: &[u8]) -> Result<(), Error> {
        let len =
            u32::try_from(body.len()).map_err(|_| corrupt(&self.path, self.pos as usize, "section over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(body)?;
        self.put(&CASTAGNOLI.checksum(body).to_be_bytes())
    }

    fn symbol(&self, s: &str) -> Result<u32, Error> {
        self.symbols
            .binary_search_by(|x| x.as_str().cmp(s))
            .map(|i| i as u32)
            .map_err(|_| {
                corrupt(
                    &self.path,
                    self.pos as usize,
                    format!("symbol {s:?} missing from the table"),
                )
            })
    }

    /// Adds the next series (label sets strictly increasing) with its chunks (time ordered,
    /// references increasing).
    pub(crate) fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<(), Error> {
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(corrupt(
                &self.path,
                self.pos as usize,
                format!("series {labels} out of order"),
            ));
        }
        self.pad(SERIES_ALIGN)?;
        let id = u32::try_from(self.pos / SERIES_ALIGN)
            .map_err(|_| corrupt(&self.path, self.pos as usize, "series section beyond 64 GiB"))?;
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        put_uvarint(&mut b, labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (self.symbol(l.name)?, self.symbol(l.value)?);
            put_uvarint(&mut b, u64::from(n));
            put_uvarint(&mut b, u64::from(v));
            self.postings.entry((n, v)).or_default().push(id);
        }
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some((first, rest)) = chunks.split_first() {
            put_varint(&mut b, first.min_t);
            put_uvarint(&mut b, first.max_t.wrapping_sub(first.min_t) as u64);
            put_uvarint(&mut b, first.r);
            let (mut t0, mut r0) = (first.max_t, first.r);
            for c in rest {
                put_uvarint(&mut b, c.min_t.wrapping_sub(t0) as u64);
                put_uvarint(&mut b, c.max_t.wrapping_sub(c.min_t) as u64);
                put_varint(&mut b, (c.r as i64).wrapping_sub(r0 as i64));
                t0 = c.max_t;
                r0 = c.r;
            }
        }
        let mut len = Vec::with_capacity(5);
        put_uvarint(&mut len, b.len() as u64);
        self.put(&len)?;
        self.put(&b)?;
        self.put(&CASTAGNOLI.checksum(&b).to_be_bytes())?;
        self.buf = b;
        self.all.push(id);
        self.last = Some(labels.clone());
        Ok(())
    }

    fn write_postings(&mut self, list: &[u32]) -> Result<(), Error> {
        self.pad(4)?;
        let mut body = Vec::with_capacity(4 + list.len() * 4);
        body.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for id in list {
            body.extend_from_slice(&id.to_be_bytes());
        }
        self.section(&body)
    }

    /// Writes postings, the postings offset table and the TOC, then fsyncs. Returns the file
    /// size.
    pub(crate) fn finish(mut self) -> Result<u64, Error> {
        self.pad(4)?;
        let toc_postings = self.pos;
        let mut table: Vec<(String, String, u64)> = Vec::with_capacity(self.postings.len() + 1);
        let all = std::mem::take(&mut self.all);
        self.pad(4)?;
        table.push((String::new(), String::new(), self.pos));
        self.write_postings(&all)?;
        let postings = std::mem::take(&mut self.postings);
        for ((n, v), list) in &postings {
            self.pad(4)?;
            table.push((
                self.symbols[*n as usize].clone(),
                self.symbols[*v as usize].clone(),
                self.pos,
            ));
            self.write_postings(list)?;
        }
        let toc_table = self.pos;
        let mut body = Vec::new();
        body.extend_from_slice(&(table.len() as u32).to_be_bytes());
        for (n, v, off) in &table {
            put_uvarint(&mut body, 2);
            put_uvarint_str(&mut body, n);
            put_uvarint_str(&mut body, v);
            put_uvarint(&mut body, *off);
        }
        self.section(&body)?;
        let mut toc = Vec::with_capacity(TOC_LEN);
        for off in [self.toc_symbols, self.toc_series, 0, 0, toc_postings, toc_table] {
            toc.extend_from_slice(&off.to_be_bytes());
        }
        let crc = CASTAGNOLI.checksum(&toc);
        toc.extend_from_slice(&crc.to_be_bytes());
        self.put(&toc)?;
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io("write index", &self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io("fsync index", &self.path, e))?;
        Ok(self.pos)
    }
}

/// The values of one label name in the postings offset table.
#[derive(Debug)]
struct NameEntries {
    /// Byte offset of the name's first table entry.
    first: usize,
    count: usize,
    /// Every 32nd value and the last one, with the offset of its table entry.
    samples: Vec<(Box<str>, usize)>,
}

/// A read-only view of an index file.
#[derive(Debug)]
pub(crate) struct IndexReader {
    map: Mmap,
    path: PathBuf,
    /// Offset of the first symbol string and the symbol count.
    symbols_start: usize,
    num_symbols: usize,
    symbol_samples: Vec<usize>,
    names: BTreeMap<Box<str>, NameEntries>,
    table_end: usize,
    num_series: u64,
}

/// Reads one postings offset table entry at `d`: name, value, postings offset.
fn table_entry<'a>(d: &mut Dec<'a>) -> Result<(&'a str, &'a str, u64), String> {
    let n = d.uvarint()?;
    if n != 2 {
        return Err(format!("postings table entry with {n} keys"));
    }
    Ok((d.uvarint_str()?, d.uvarint_str()?, d.uvarint()?))
}

impl IndexReader {
    /// Maps `path` and verifies the checksums of every section.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let f = File::open(path).map_err(|e| Error::io("open index", path, e))?;
        // SAFETY: index files are immutable once their block directory is in place; nothing
        // writes or truncates them while the block is open, and the mapping is read-only.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| Error::io("mmap index", path, e))?;
        let b: &[u8] = &map;
        let c = |off: usize, why: String| corrupt(path, off, why);
        if b.len() < HEADER_LEN + TOC_LEN || b[..4] != MAGIC.to_be_bytes() {
            return Err(c(0, "bad index magic number or file too short".into()));
        }
        if b[4] != FORMAT_V2 {
            return Err(c(4, format!("unsupported index version {}", b[4])));
        }
        let toc_at = b.len() - TOC_LEN;
        let toc = &b[toc_at..];
        if CASTAGNOLI.checksum(&toc[..48]) != u32::from_be_bytes([toc[48], toc[49], toc[50], toc[51]]) {
            return Err(c(toc_at, "TOC checksum mismatch".into()));
        }
        let mut d = Dec::new(toc, 0);
        let mut offs = [0usize; 6];
        for o in &mut offs {
            *o = usize::try_from(d.be64().map_err(|e| c(toc_at, e))?)
                .ok()
                .filter(|&o| o <= toc_at)
                .ok_or_else(|| c(toc_at, "TOC offset past the end".into()))?;
        }
        let [symbols, series, _, _, postings, table] = offs;
        if !(HEADER_LEN <= symbols && symbols <= series && series <= postings && postings <= table) {
            return Err(c(toc_at, "TOC sections out of order".into()));
        }
        // Each section: len, body, CRC.
        let section = |off: usize| -> Result<(usize, usize), Error> {
            let mut d = Dec::new(b, off);
            let len = d.be32().map_err(|e| c(off, e))? as usize;
            let body = d.bytes(len).map_err(|e| c(off, e))?;
            let crc = d.be32().map_err(|e| c(off, e))?;
            if CASTAGNOLI.checksum(body) != crc {
                return Err(c(off, "section checksum mismatch".into()));
            }
            Ok((off + 4, off + 4 + len))
        };
        let (sym_body, sym_end) = section(symbols)?;
        let mut d = Dec::new(&b[..sym_end], sym_body);
        let num_symbols = d.be32().map_err(|e| c(sym_body, e))? as usize;
        let symbols_start = d.pos;
        let mut symbol_samples = Vec::with_capacity(num_symbols / SAMPLE_EVERY + 1);
        let mut prev: Option<&str> = None;
        for i in 0..num_symbols {
            if i % SAMPLE_EVERY == 0 {
                symbol_samples.push(d.pos);
            }
            let s = d.uvarint_str().map_err(|e| c(d.pos, e))?;
            if prev.is_some_and(|p| p >= s) {
                return Err(c(d.pos, "symbols not sorted".into()));
            }
            prev = Some(s);
        }
        let (tab_body, tab_end) = section(table)?;
        let mut d = Dec::new(&b[..tab_end], tab_body);
        let entries = d.be32().map_err(|e| c(tab_body, e))? as usize;
        let mut names: BTreeMap<Box<str>, NameEntries> = BTreeMap::new();
        let mut postings_offsets = Vec::with_capacity(entries);
        let mut last: Option<(&str, &str, usize)> = None;
        for _ in 0..entries {
            let at = d.pos;
            let (n, v, off) = table_entry(&mut d).map_err(|e| c(at, e))?;
            if last.is_some_and(|(ln, lv, _)| (ln, lv) >= (n, v)) {
                return Err(c(at, "postings table not sorted".into()));
            }
            let off = usize::try_from(off)
                .ok()
                .filter(|&o| o >= postings && o < table)
                .ok_or_else(|| c(at, "postings offset outside the postings section".into()))?;
            postings_offsets.push(off);
            match names.get_mut(n) {
                Some(e) => {
                    if e.count % SAMPLE_EVERY == 0 {
                        e.samples.push((v.into(), at));
                    }
                    e.count += 1;
                }
                None => {
                    if let Some((ln, lv, lat)) = last
                        && let Some(prev) = names.get_mut(ln)
                        && prev.samples.last().is_none_or(|s| s.1 != lat)
                    {
                        prev.samples.push((lv.into(), lat));
                    }
                    names.insert(
                        n.into(),
                        NameEntries {
                            first: at,
                            count: 1,
                            samples: vec![(v.into(), at)],
                        },
                    );
                }
            }
            last = Some((n, v, at));
        }
        if let Some((ln, lv, lat)) = last
            && let Some(prev) = names.get_mut(ln)
            && prev.samples.last().is_none_or(|s| s.1 != lat)
        {
            prev.samples.push((lv.into(), lat));
        }
        // Padding between entries is not covered by a checksum, so it must be zeros.
        let zeros = |from: usize, to: usize| -> Result<(), Error> {
            match b[from.min(to)..to].iter().position(|&x| x != 0) {
                Some(i) => Err(c(from + i, "non-zero padding".into())),
                None => Ok(()),
            }
        };
        // Series entries: 16-byte aligned, each with its own CRC.
        let mut num_series = 0u64;
        let mut pos = series;
        loop {
            let aligned = pos.div_ceil(SERIES_ALIGN as usize) * SERIES_ALIGN as usize;
            if aligned >= postings {
                zeros(pos, postings)?;
                break;
            }
            zeros(pos, aligned)?;
            pos = aligned;
            let mut d = Dec::new(&b[..postings], pos);
            let len = d.uvarint().map_err(|e| c(pos, e))? as usize;
            let body = d.bytes(len).map_err(|e| c(pos, e))?;
            let crc = d.be32().map_err(|e| c(pos, e))?;
            if CASTAGNOLI.checksum(body) != crc {
                return Err(c(pos, "series entry checksum mismatch".into()));
            }
            num_series += 1;
            pos = d.pos;
        }
        let mut prev_end = postings;
        for off in postings_offsets {
            if off < prev_end {
                return Err(c(off, "postings lists overlap".into()));
            }
            zeros(prev_end, off)?;
            let (body, end) = section(off)?;
            prev_end = end + 4;
            let n = u32::from_be_bytes(
                b[body..body + 4]
                    .try_into()
                    .map_err(|_| c(off, "short postings".into()))?,
            );
            if (n as usize) * 4 + 4 != end - body {
                return Err(c(off, "postings length does not match its count".into()));
            }
        }
        zeros(prev_end, table)?;
        Ok(IndexReader {
            path: path.to_path_buf(),
            symbols_start,
            num_symbols,
            symbol_samples,
            names,
            table_end: tab_end,
            num_series,
            map,
        })
    }

    fn err(&self, off: usize, why: impl Into<String>) -> Error {
        corrupt(&self.path, off, why)
    }

    /// Size of the file in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Number of series entries.
    pub(crate) fn num_series(&self) -> u64 {
        self.num_series
    }

    /// Symbol `i`.
    fn symbol(&self, i: u64) -> Result<&str, Error> {
        let i = usize::try_from(i)
            .ok()
            .filter(|&i| i < self.num_symbols)
            .ok_or_else(|| self.err(self.symbols_start, format!("symbol {i} out of range")))?;
        let mut d = Dec::new(&self.map, self.symbol_samples[i / SAMPLE_EVERY]);
        for _ in 0..i % SAMPLE_EVERY {
            d.uvarint_str().map_err(|e| self.err(d.pos, e))?;
        }
        d.uvarint_str().map_err(|e| self.err(d.pos, e))
    }

    /// The labels and chunks of series `id`.
    pub(crate) fn series(&self, id: u64, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, Error> {
        let off = usize::try_from(id * SERIES_ALIGN).unwrap_or(usize::MAX);
        let mut d = Dec::new(&self.map, off.min(self.map.len()));
        let e = |d: &Dec, why: String| self.err(d.pos, format!("series {id}: {why}"));
        let len = d.uvarint().map_err(|w| e(&d, w))? as usize;
        let body = d.bytes(len).map_err(|w| e(&d, w))?;
        let mut d = Dec::new(body, 0);
        let n = d.uvarint().map_err(|w| e(&d, w))?;
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let name = self.symbol(d.uvarint().map_err(|w| e(&d, w))?)?;
            let value = self.symbol(d.uvarint().map_err(|w| e(&d, w))?)?;
            pairs.push((name, value));
        }
        chunks.clear();
        let k = d.uvarint().map_err(|w| e(&d, w))?;
        let (mut t0, mut r0) = (0i64, 0u64);
        for i in 0..k {
            let (min_t, max_t, r);
            if i == 0 {
                min_t = d.varint().map_err(|w| e(&d, w))?;
                max_t = min_t.wrapping_add(d.uvarint().map_err(|w| e(&d, w))? as i64);
                r = d.uvarint().map_err(|w| e(&d, w))?;
            } else {
                min_t = t0.wrapping_add(d.uvarint().map_err(|w| e(&d, w))? as i64);
                max_t = min_t.wrapping_add(d.uvarint().map_err(|w| e(&d, w))? as i64);
                r = (r0 as i64).wrapping_add(d.varint().map_err(|w| e(&d, w))?) as u64;
            }
            chunks.push(ChunkMeta { min_t, max_t, r });
            t0 = max_t;
            r0 = r;
        }
        Ok(Labels::from_pairs(pairs))
    }

    fn postings_at(&self, off: u64) -> Result<Vec<u64>, Error> {
        let mut d = Dec::new(&self.map, off as usize);
        let len = d.be32().map_err(|w| self.err(off as usize, w))? as usize;
        let n = d.be32().map_err(|w| self.err(off as usize, w))? as usize;
        if n * 4 + 4 != len {
            return Err(self.err(off as usize, "postings length does not match its count"));
        }
        let raw = d.bytes(n * 4).map_err(|w| self.err(off as usize, w))?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }

    /// Calls `f(value, postings_offset)` for the values of `name` from the table entry at
    /// `from`, in order, until `f` returns false or the name's entries end.
    fn scan_values(&self, e: &NameEntries, from: usize, mut f: impl FnMut(&str, u64) -> bool) -> Result<(), Error> {
        let mut d = Dec::new(&self.map[..self.table_end], from);
        let first_name = {
            let mut p = Dec::new(&self.map[..self.table_end], e.first);
            table_entry(&mut p).map_err(|w| self.err(e.first, w))?.0
        };
        while d.remaining() > 4 {
            let at = d.pos;
            let (n, v, off) = table_entry(&mut d).map_err(|w| self.err(at, w))?;
            if n != first_name || !f(v, off) {
                break;
            }
        }
        Ok(())
    }

    /// The series with `name` = `value`.
    pub(crate) fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>, Error> {
        let Some(e) = self.names.get(name) else {
            return Ok(Vec::new());
        };
        let i = e.samples.partition_point(|(v, _)| &**v <= value);
        if i == 0 {
            return Ok(Vec::new());
        }
        let mut found = None;
        self.scan_values(e, e.samples[i - 1].1, |v, off| {
            if v == value {
                found = Some(off);
            }
            v < value
        })?;
        match found {
            Some(off) => self.postings_at(off),
            None => Ok(Vec::new()),
        }
    }

    /// The union of the postings of the values of `name` that `keep` accepts.
    pub(crate) fn union_where(&self, name: &str, keep: &dyn Fn(&str) -> bool) -> Result<Vec<u64>, Error> {
        let Some(e) = self.names.get(name) else {
            return Ok(Vec::new());
        };
        let mut offs = Vec::new();
        self.scan_values(e, e.first, |v, off| {
            if keep(v) {
                offs.push(off);
            }
            true
        })?;
        let lists = offs
            .into_iter()
            .map(|o| self.postings_at(o))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
        Ok(crate::index::union(&refs))
    }

    /// The sorted series ids matching every matcher (upstream `PostingsForMatchers`).
    pub(crate) fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Vec<u64>, Error> {
        postings_for_matchers_with(
            matchers,
            |n, v| self.postings(n, v),
            |n, keep| self.union_where(n, keep),
            || self.postings("", ""),
        )
    }

    /// Sorted label names.
    pub(crate) fn label_names(&self) -> Vec<String> {
        self.names
            .keys()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string())
            .collect()
    }

    /// Sorted values of `name`.
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<String>, Error> {
        let Some(e) = self.names.get(name) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(e.count);
        self.scan_values(e, e.first, |v, _| {
            out.push(v.to_string());
            true
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use watchfire_model::MatchType;

    #[test]
    fn index_round_trips_and_detects_flipped_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut series: Vec<Labels> = (0..300)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", format!("m{}", i % 3)),
                    ("instance", format!("host-{i:04}")),
                    ("job", if i % 2 == 0 { "a".into() } else { "b".into() }),
                ])
            })
            .collect();
        series.sort();
        let symbols: BTreeSet<String> = series
            .iter()
            .flat_map(|l| {
                l.iter()
                    .flat_map(|p| [p.name.to_string(), p.value.to_string()])
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut w = IndexWriter::new(&path, symbols.into_iter().collect()).unwrap();
        for (i, l) in series.iter().enumerate() {
            let i = i as i64;
            let chunks = [
                ChunkMeta {
                    min_t: i * 10 - 500,
                    max_t: i * 10,
                    r: (i as u64) << 8,
                },
                ChunkMeta {
                    min_t: i * 10 + 1,
                    max_t: i * 10 + 9,
                    r: ((i as u64) << 8) + 77,
                },
            ];
            w.add_series(l, &chunks).unwrap();
        }
        assert!(
            w.add_series(&series[0], &[]).is_err(),
            "out of order series are refused"
        );
        drop(w);
        std::fs::remove_file(&path).unwrap();
        let symbols: BTreeSet<String> = series
            .iter()
            .flat_map(|l| {
                l.iter()
                    .flat_map(|p| [p.name.to_string(), p.value.to_string()])
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut w = IndexWriter::new(&path, symbols.into_iter().collect()).unwrap();
        for (i, l) in series.iter().enumerate() {
            let i = i as i64;
            w.add_series(
                l,
                &[ChunkMeta {
                    min_t: i - 5,
                    max_t: i,
                    r: 8 + i as u64,
                }],
            )
            .unwrap();
        }
        w.finish().unwrap();

        let r = IndexReader::open(&path).unwrap();
        assert_eq!(r.num_series(), 300);
        let all = r.postings("", "").unwrap();
        assert_eq!(all.len(), 300);
        let mut chunks = Vec::new();
        for (i, id) in all.iter().enumerate() {
            assert_eq!(r.series(*id, &mut chunks).unwrap(), series[i]);
            assert_eq!(
                chunks,
                [ChunkMeta {
                    min_t: i as i64 - 5,
                    max_t: i as i64,
                    r: 8 + i as u64
                }]
            );
        }
        assert_eq!(r.label_names(), ["__name__", "instance", "job"]);
        assert_eq!(r.label_values("job").unwrap(), ["a", "b"]);
        assert_eq!(r.label_values("instance").unwrap().len(), 300);
        assert_eq!(r.postings("instance", "host-0123").unwrap().len(), 1);
        assert_eq!(r.postings("instance", "host-0299").unwrap().len(), 1);
        assert!(r.postings("instance", "host-9").unwrap().is_empty());
        let ms = [
            Matcher::new(MatchType::Equal, "job", "a").unwrap(),
            Matcher::new(MatchType::Regex, "instance", "host-00.*").unwrap(),
            Matcher::new(MatchType::NotEqual, "__name__", "m1").unwrap(),
        ];
        let got = r.postings_for_matchers(&ms).unwrap();
        let want = series
            .iter()
            .filter(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .count();
        assert_eq!(got.len(), want);
        assert!(want > 10);

        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let clean = std::fs::read(&path).unwrap();
        for at in [7, 40, len / 3, len / 2, len * 2 / 3, len - 60, len - 20, len - 1] {
            let mut b = clean.clone();
            b[at] ^= 0x04;
            std::fs::write(&path, &b).unwrap();
            assert!(
                IndexReader::open(&path).is_err(),
                "flip at {at} of {len} went unnoticed"
            );
        }
    }
}
