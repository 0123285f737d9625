//! Reading the WAL while it is written (upstream `tsdb/wlog/live_reader.go` and the segment
//! walking of `watcher.go`), for consumers such as remote write.
//!
//! * [`LiveReader`] reads one segment file incrementally: it yields each complete record,
//!   answers [`Step::Wait`] at the live end (an incomplete fragment or record is "not written
//!   yet", never an error), and resumes there when called again after more was written. A
//!   fragment that is complete but bad (checksum, flags, a record that does not decompress) is
//!   reported as [`Step::Corrupt`] and skipped: the reader drops the record it was assembling
//!   and continues at the next page.
//! * [`WalFollower`] walks the WAL directory: the newest checkpoint first, then each segment
//!   after it in order, moving to the next segment once it exists (the writer completes a
//!   segment before creating the next). Segments removed by truncation before they were
//!   opened (truncation does not wait for readers, as upstream's does not) are reported as
//!   [`Event::Skipped`]; the checkpoint that replaced them is read first, so the series they
//!   introduced are known. A segment already open when it is removed is read to its end (the
//!   open file stays readable). New checkpoints written while tailing are read as well, so a
//!   consumer can forget series that no longer exist ([`Event::CheckpointDone`]).
//!
//! Nothing here writes or deletes: the follower never holds truncation back. The writer wakes
//! followers through [`WalNotify`](crate::wal::WalNotify).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::checkpoint;
use crate::wal::{
    self, CASTAGNOLI, Corruption, FLAG_SNAPPY, FLAG_ZSTD, FRAG_FIRST, FRAG_FULL, FRAG_LAST, FRAG_MIDDLE,
    FRAGMENT_HEADER_SIZE, PAGE_SIZE,
};

/// Bytes read from the file at a time.
const READ_CHUNK: usize = 4 * PAGE_SIZE;
/// How often a follower tailing a segment looks for a newer checkpoint.
const CHECKPOINT_CHECK: Duration = Duration::from_secs(5);
/// How often a follower tailing a segment lists the directory for newer segments, beyond the
/// cheap check for the next number.
const SEGMENT_LIST_CHECK: Duration = Duration::from_secs(1);

/// What [`LiveReader::next_step`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A complete record starts at this byte offset; [`LiveReader::record`] holds it.
    Record(u64),
    /// Nothing more is complete yet.
    Wait,
    /// A bad fragment or record was skipped.
    Corrupt(Corruption),
}

/// Where the last record returned lives.
#[derive(Clone, Copy, Debug)]
enum Last {
    None,
    /// A whole uncompressed record in `buf[start..end]`.
    Buf(usize, usize),
    /// Reassembled from fragments, in `rec`.
    Rec,
    /// Decompressed, in `plain`.
    Plain,
}

/// Reads one WAL segment file as it grows. See the module documentation.
#[derive(Debug)]
pub struct LiveReader {
    segment: u32,
    file: File,
    /// Bytes of the file from offset `base` on, parsed up to `pos`.
    buf: Vec<u8>,
    base: u64,
    pos: usize,
    /// The record being reassembled from fragments: its start offset and compression flag.
    rec_start: Option<(u64, u8)>,
    rec: Vec<u8>,
    plain: Vec<u8>,
    decoder: snap::raw::Decoder,
    last: Last,
    /// After a corruption, parsing resumes at this file offset (the next page).
    skip_until: Option<u64>,
}

/// The outcome of parsing at the current position.
enum Parsed {
    /// A record is ready (see `last`).
    Record(u64),
    /// Consumed something that is not a whole record (padding, a first or middle fragment).
    Progress,
    /// More bytes are needed.
    More,
    Corrupt(Corruption),
}

impl LiveReader {
    /// Opens segment `segment` at `path`, reading from its start.
    pub fn open(path: &Path, segment: u32) -> std::io::Result<Self> {
        Ok(Self::new(File::open(path)?, segment))
    }

    /// Reads `file` (positioned at its start) as segment `segment`.
    pub fn new(file: File, segment: u32) -> Self {
        LiveReader {
            segment,
            file,
            buf: Vec::new(),
            base: 0,
            pos: 0,
            rec_start: None,
            rec: Vec::new(),
            plain: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            last: Last::None,
            skip_until: None,
        }
    }

    /// The segment number.
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// The byte offset up to which the file has been parsed.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The record the last [`Step::Record`] announced (decompressed). Valid until the next call
    /// to [`next`](Self::next).
    pub fn record(&self) -> &[u8] {
        match self.last {
            Last::None => &[],
            Last::Buf(s, e) => &self.buf[s..e],
            Last::Rec => &self.rec,
            Last::Plain => &self.plain,
        }
    }

    /// The next complete record, [`Step::Wait`] when the data ends before one is complete, or
    /// a skipped corruption. I/O errors reading the file are returned as errors.
    pub fn next_step(&mut self) -> std::io::Result<Step> {
        self.last = Last::None;
        loop {
            match self.parse() {
                Parsed::Record(off) => return Ok(Step::Record(off)),
                Parsed::Progress => {}
                Parsed::Corrupt(c) => return Ok(Step::Corrupt(c)),
                Parsed::More => {
                    if self.fill()? == 0 {
                        return Ok(Step::Wait);
                    }
                }
            }
        }
    }

    /// For a segment known to be complete (the writer has moved on), read up to
    /// [`Step::Wait`]: whatever is left unparsed is a torn end, reported here.
    pub fn leftover(&self) -> Option<Corruption> {
        let start = match self.rec_start {
            Some((s, _)) => s,
            None if self.pos < self.buf.len() => self.offset(),
            None => return None,
        };
        Some(Corruption {
            segment: self.segment,
            offset: start,
            reason: "segment ends inside a record".into(),
        })
    }

    /// Reads more of the file into the buffer, dropping what was parsed; returns the number of
    /// bytes read (0 at the current end of the file).
    fn fill(&mut self) -> std::io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let res = loop {
            match self.file.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let n = *res.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        res
    }

    fn corrupt(&mut self, at: u64, skip_to_page_end: bool, reason: String) -> Parsed {
        let offset = self.rec_start.map_or(at, |(s, _)| s);
        self.rec_start = None;
        self.rec.clear();
        if skip_to_page_end {
            // Resynchronise at the next page: nothing after a damaged fragment header in this
            // page can be trusted. Bytes not read yet are skipped as they arrive.
            let abs = self.offset();
            let page_end = (abs / PAGE_SIZE as u64 + 1) * PAGE_SIZE as u64;
            let avail_end = self.base + self.buf.len() as u64;
            if page_end <= avail_end {
                self.pos = (page_end - self.base) as usize;
            } else {
                self.pos = self.buf.len();
                self.skip_until = Some(page_end);
            }
        }
        Parsed::Corrupt(Corruption {
            segment: self.segment,
            offset,
            reason,
        })
    }

    fn parse(&mut self) -> Parsed {
        if let Some(until) = self.skip_until {
            let avail_end = self.base + self.buf.len() as u64;
            if until > avail_end {
                self.pos = self.buf.len();
                return Parsed::More;
            }
            self.pos = (until - self.base) as usize;
            self.skip_until = None;
        }
        let abs = self.offset();
        let avail = self.buf.len() - self.pos;
        if avail == 0 {
            return Parsed::More;
        }
        let page_left = PAGE_SIZE - (abs % PAGE_SIZE as u64) as usize;
        let typ = self.buf[self.pos];
        if page_left < FRAGMENT_HEADER_SIZE || typ == 0 {
            // Padding to the end of the page: all zeros. The writer pads a page in one write,
            // so a partly visible padding is waited for.
            let n = page_left.min(avail);
            if self.buf[self.pos..self.pos + n].iter().any(|&b| b != 0) {
                return self.corrupt(abs, true, format!("non-zero page padding at {abs}"));
            }
            if n < page_left {
                return Parsed::More;
            }
            self.pos += n;
            return Parsed::Progress;
        }
        if typ & FLAG_ZSTD != 0 || typ >> 5 != 0 {
            return self.corrupt(abs, true, format!("unsupported fragment flags {typ:#04x} at {abs}"));
        }
        if avail < FRAGMENT_HEADER_SIZE {
            return Parsed::More;
        }
        let h = &self.buf[self.pos..self.pos + FRAGMENT_HEADER_SIZE];
        let len = usize::from(u16::from_be_bytes([h[1], h[2]]));
        let crc = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
        if len > page_left - FRAGMENT_HEADER_SIZE {
            return self.corrupt(abs, true, format!("fragment at {abs} crosses its page"));
        }
        if avail < FRAGMENT_HEADER_SIZE + len {
            return Parsed::More;
        }
        let body = self.pos + FRAGMENT_HEADER_SIZE;
        if CASTAGNOLI.checksum(&self.buf[body..body + len]) != crc {
            // The header looks sane: skip just this fragment (if its length was the damaged
            // part, what follows fails to parse and the page is skipped then).
            let p = self.corrupt(abs, false, format!("checksum mismatch in fragment at {abs}"));
            self.pos = body + len;
            return p;
        }
        let snappy = typ & FLAG_SNAPPY;
        if let Some((_, flag)) = self.rec_start
            && flag != snappy
        {
            return self.corrupt(
                abs,
                true,
                format!("fragment at {abs} is flagged differently from its record's first fragment"),
            );
        }
        let next = body + len;
        let start = match (typ & 0b111, self.rec_start) {
            (FRAG_FULL, None) => {
                self.pos = next;
                if snappy == 0 {
                    self.last = Last::Buf(body, next);
                    return Parsed::Record(abs);
                }
                self.rec.clear();
                self.rec.extend_from_slice(&self.buf[body..next]);
                abs
            }
            (FRAG_FIRST, None) => {
                self.rec.clear();
                self.rec.extend_from_slice(&self.buf[body..next]);
                self.rec_start = Some((abs, snappy));
                self.pos = next;
                return Parsed::Progress;
            }
            (FRAG_MIDDLE, Some(_)) => {
                self.rec.extend_from_slice(&self.buf[body..next]);
                self.pos = next;
                return Parsed::Progress;
            }
            (FRAG_LAST, Some((s, _))) => {
                self.rec.extend_from_slice(&self.buf[body..next]);
                self.rec_start = None;
                self.pos = next;
                if snappy == 0 {
                    self.last = Last::Rec;
                    return Parsed::Record(s);
                }
                s
            }
            (FRAG_FULL | FRAG_FIRST, Some(_)) => {
                // The record in progress never got its last fragment; this one starts anew and
                // is parsed again next time.
                return self.corrupt(abs, false, format!("record interrupted by a new one at {abs}"));
            }
            (t, _) => {
                // A well-formed fragment out of place (after a skipped corruption, say): skip
                // just it.
                let p = self.corrupt(abs, false, format!("unexpected fragment type {t} at {abs}"));
                self.pos = next;
                return p;
            }
        };
        match wal::decompress(&mut self.decoder, &self.rec, &mut self.plain) {
            Ok(()) => {
                self.last = Last::Plain;
                Parsed::Record(start)
            }
            Err(e) => Parsed::Corrupt(Corruption {
                segment: self.segment,
                offset: start,
                reason: format!("record at {start} does not decompress: {e}"),
            }),
        }
    }
}

/// What [`WalFollower::next_event`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A record of checkpoint `checkpoint` (covering the segments up to that number);
    /// [`WalFollower::record`] holds it.
    CheckpointRecord { checkpoint: u32 },
    /// Checkpoint `checkpoint` was read to its end: a series none of its series records and
    /// no segment after it mentions no longer exists.
    CheckpointDone(u32),
    /// Reading segment `n` from its start now.
    Segment(u32),
    /// A record of segment `segment` at byte `offset`; [`WalFollower::record`] holds it.
    Record { segment: u32, offset: u64 },
    /// Segments `from..=to` were removed (truncation) before they were read; at most those
    /// numbers, some may not have existed.
    Skipped { from: u32, to: u32 },
    /// A damaged fragment, record or torn segment end was skipped.
    Corrupt(Corruption),
    /// Everything written so far was read: wait (see [`WalNotify`](crate::wal::WalNotify))
    /// and call again.
    Wait,
}

/// A checkpoint being read.
#[derive(Debug)]
struct CheckpointRead {
    seq: u32,
    dir: PathBuf,
    files: Vec<u32>,
    idx: usize,
    reader: Option<LiveReader>,
}

/// Which reader holds the last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Checkpoint,
    Segment,
}

/// Follows a WAL directory: the newest checkpoint, then every segment after it, tailing the
/// newest. See the module documentation.
#[derive(Debug)]
pub struct WalFollower {
    dir: PathBuf,
    started: bool,
    checkpoint: Option<CheckpointRead>,
    /// The segment being read, and whether a newer one exists (so it is complete).
    segment: Option<(LiveReader, bool)>,
    /// The segment to open when none is being read.
    next: u32,
    /// The newest checkpoint read.
    last_checkpoint: Option<u32>,
    last_checkpoint_check: Instant,
    checkpoint_interval: Duration,
    last_list: Instant,
    from: Source,
}

fn not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound)
}

impl WalFollower {
    /// A follower of the WAL directory `dir` (`<data>/wal`), starting at its newest checkpoint.
    pub fn new(dir: &Path) -> Self {
        WalFollower {
            dir: dir.to_path_buf(),
            started: false,
            checkpoint: None,
            segment: None,
            next: 0,
            last_checkpoint: None,
            last_checkpoint_check: Instant::now(),
            checkpoint_interval: CHECKPOINT_CHECK,
            last_list: Instant::now(),
            from: Source::Segment,
        }
    }

    /// How often, while tailing, to look for a newer checkpoint (5 s, upstream's period).
    pub fn set_checkpoint_interval(&mut self, every: Duration) {
        self.checkpoint_interval = every;
    }

    /// The segment being read or to be read next.
    pub fn current_segment(&self) -> u32 {
        self.segment.as_ref().map_or(self.next, |(r, _)| r.segment())
    }

    /// The record the last [`Event::Record`] or [`Event::CheckpointRecord`] announced.
    pub fn record(&self) -> &[u8] {
        match self.from {
            Source::Checkpoint => self
                .checkpoint
                .as_ref()
                .and_then(|c| c.reader.as_ref())
                .map_or(&[], |r| r.record()),
            Source::Segment => self.segment.as_ref().map_or(&[], |(r, _)| r.record()),
        }
    }

    /// Starts reading checkpoint `seq` in `dir`, or a newer one should a newer one have
    /// replaced it meanwhile; returns the number of the one started.
    fn start_checkpoint(&mut self, mut seq: u32, mut dir: PathBuf) -> Result<u32, Error> {
        let mut tries = 0;
        loop {
            match wal::list_segments(&dir) {
                Ok(files) => {
                    self.checkpoint = Some(CheckpointRead {
                        seq,
                        dir,
                        files,
                        idx: 0,
                        reader: None,
                    });
                    return Ok(seq);
                }
                Err(e) if not_found(&e) && tries < 3 => match self.newest_checkpoint()? {
                    Some((s, d)) if s != seq => {
                        (seq, dir) = (s, d);
                        tries += 1;
                    }
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// The newest checkpoint, if any.
    fn newest_checkpoint(&self) -> Result<Option<(u32, PathBuf)>, Error> {
        Ok(checkpoint::list(&self.dir)?.pop())
    }

    /// The next event. Errors are I/O failures on the directory or files other than their
    /// disappearance by truncation, which is handled.
    pub fn next_event(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(ev) = self.step_checkpoint()? {
                return Ok(ev);
            }
            if !self.started {
                let segments = wal::list_segments(&self.dir)?;
                match self.newest_checkpoint()? {
                    Some((seq, dir)) => {
                        let seq = self.start_checkpoint(seq, dir)?;
                        let segments = wal::list_segments(&self.dir)?;
                        self.next = segments.iter().copied().find(|&s| s > seq).unwrap_or(seq + 1);
                    }
                    None => match segments.first() {
                        Some(&first) => self.next = first,
                        None => return Ok(Event::Wait),
                    },
                }
                self.started = true;
                continue;
            }
            let Some((reader, sealed)) = self.segment.as_mut() else {
                let path = self.dir.join(wal::segment_name(self.next));
                match LiveReader::open(&path, self.next) {
                    Ok(r) => {
                        self.segment = Some((r, false));
                        self.last_list = Instant::now();
                        return Ok(Event::Segment(self.next));
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => return self.missing_segment(),
                    Err(e) => return Err(Error::io("open WAL segment", &path, e)),
                }
            };
            let seg = reader.segment();
            let step = reader
                .next_step()
                .map_err(|e| Error::io("read WAL segment", &self.dir.join(wal::segment_name(seg)), e))?;
            match step {
                Step::Record(offset) => {
                    self.from = Source::Segment;
                    return Ok(Event::Record { segment: seg, offset });
                }
                Step::Corrupt(c) => return Ok(Event::Corrupt(c)),
                Step::Wait if *sealed => {
                    let left = reader.leftover();
                    self.segment = None;
                    self.next = seg + 1;
                    if let Some(c) = left {
                        return Ok(Event::Corrupt(c));
                    }
                }
                Step::Wait => {
                    if self.newer_segment_exists(seg)? {
                        // The writer completes a segment before creating the next: read what
                        // is left of this one, then move on.
                        if let Some((_, sealed)) = self.segment.as_mut() {
                            *sealed = true;
                        }
                        continue;
                    }
                    if self.last_checkpoint_check.elapsed() >= self.checkpoint_interval {
                        self.last_checkpoint_check = Instant::now();
                        if let Some((c, dir)) = self.newest_checkpoint()?
                            && self.last_checkpoint.is_none_or(|l| c > l)
                            && c < seg
                        {
                            self.start_checkpoint(c, dir)?;
                            continue;
                        }
                    }
                    return Ok(Event::Wait);
                }
            }
        }
    }

    /// Whether a segment after `seg` exists, or `seg` itself was removed (truncation removes
    /// only complete segments).
    fn newer_segment_exists(&mut self, seg: u32) -> Result<bool, Error> {
        if self.dir.join(wal::segment_name(seg + 1)).exists() || !self.dir.join(wal::segment_name(seg)).exists() {
            return Ok(true);
        }
        if self.last_list.elapsed() >= SEGMENT_LIST_CHECK {
            self.last_list = Instant::now();
            return Ok(wal::list_segments(&self.dir)?.last().is_some_and(|&l| l > seg));
        }
        Ok(false)
    }

    /// Segment `self.next` does not exist: either it is not written yet, or truncation removed
    /// it (and maybe more) before it was read.
    fn missing_segment(&mut self) -> Result<Event, Error> {
        let from = self.next;
        let segments = wal::list_segments(&self.dir)?;
        if let Some((c, dir)) = self.newest_checkpoint()?
            && c >= from
        {
            // The checkpoint replaced the segments up to `c`: its series are needed for the
            // segments after it.
            let c = self.start_checkpoint(c, dir)?;
            let segments = wal::list_segments(&self.dir)?;
            self.next = segments.iter().copied().find(|&s| s > c).unwrap_or(c + 1);
            return Ok(Event::Skipped {
                from,
                to: self.next - 1,
            });
        }
        if let Some(&m) = segments.iter().find(|&&s| s > from) {
            self.next = m;
            return Ok(Event::Skipped { from, to: m - 1 });
        }
        Ok(Event::Wait)
    }

    /// Advances the checkpoint being read, if any: `Some` event, or `None` when there is none
    /// (any more).
    fn step_checkpoint(&mut self) -> Result<Option<Event>, Error> {
        loop {
            let Some(c) = self.checkpoint.as_mut() else {
                return Ok(None);
            };
            let Some(reader) = c.reader.as_mut() else {
                if c.idx >= c.files.len() {
                    let seq = c.seq;
                    self.checkpoint = None;
                    self.last_checkpoint = Some(seq);
                    return Ok(Some(Event::CheckpointDone(seq)));
                }
                let n = c.files[c.idx];
                let path = c.dir.join(wal::segment_name(n));
                match LiveReader::open(&path, n) {
                    Ok(r) => c.reader = Some(r),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        // A newer checkpoint replaced this one while it was read: read that
                        // one instead (series records are idempotent for the consumer).
                        self.checkpoint = None;
                        match self.newest_checkpoint()? {
                            Some((seq, dir)) => {
                                self.start_checkpoint(seq, dir)?;
                            }
                            None => return Ok(None),
                        }
                    }
                    Err(e) => return Err(Error::io("open checkpoint", &path, e)),
                }
                continue;
            };
            let step = reader
                .next_step()
                .map_err(|e| Error::io("read checkpoint", &c.dir.join(wal::segment_name(c.files[c.idx])), e))?;
            match step {
                Step::Record(_) => {
                    self.from = Source::Checkpoint;
                    return Ok(Some(Event::CheckpointRecord { checkpoint: c.seq }));
                }
                Step::Corrupt(k) => return Ok(Some(Event::Corrupt(k))),
                Step::Wait => {
                    // A checkpoint is complete before it gets its name.
                    let left = reader.leftover();
                    c.reader = None;
                    c.idx += 1;
                    if let Some(k) = left {
                        return Ok(Some(Event::Corrupt(k)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    use watchfire_model::Labels;

    use super::*;
    use crate::record::{self, Record, RefSample};
    use crate::wal::{SyncPolicy, Wal, WalOptions, segment_name};

    fn opts(segment_pages: usize, compress: bool) -> WalOptions {
        WalOptions {
            segment_size: segment_pages * PAGE_SIZE,
            sync: SyncPolicy::SegmentBoundary,
            compress,
        }
    }

    /// Records of assorted sizes: small, page-spanning, compressible and not.
    fn records(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                let len = match i % 5 {
                    0 => 3,
                    1 => 700,
                    2 => 40_000,
                    3 => PAGE_SIZE - 7,
                    _ => 9_000,
                };
                (0..len)
                    .map(|j| {
                        if i % 2 == 0 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        } else {
                            (i * 7 + j / 16) as u8
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Follows until `Wait`, at most `limit` events; returns the segment records and every
    /// other event.
    fn drain(f: &mut WalFollower, limit: usize) -> (Vec<Vec<u8>>, Vec<Event>) {
        let mut recs = Vec::new();
        let mut other = Vec::new();
        for _ in 0..limit {
            match f.next_event().unwrap() {
                Event::Wait => return (recs, other),
                Event::Record { .. } => recs.push(f.record().to_vec()),
                e => other.push(e),
            }
        }
        panic!("no Wait within {limit} events");
    }

    #[test]
    fn follower_yields_exactly_the_records_across_segments_compressed_or_not() {
        for compress in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = Wal::create(dir.path(), opts(3, compress)).unwrap();
            let first = records(40, 7);
            for chunk in first.chunks(3) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                w.log(&refs).unwrap();
            }
            assert!(w.segment() >= 3, "several segments: {}", w.segment());
            let mut f = WalFollower::new(dir.path());
            let (got, other) = drain(&mut f, 1000);
            assert_eq!(got, first, "compress={compress}");
            let segs: Vec<u32> = other
                .iter()
                .map(|e| match e {
                    Event::Segment(n) => *n,
                    e => panic!("unexpected {e:?}"),
                })
                .collect();
            assert_eq!(segs, (0..=w.segment()).collect::<Vec<_>>());
            // The writer goes on; the follower picks up where it waited, into new segments.
            let second = records(25, 99);
            for r in &second {
                w.log(&[r]).unwrap();
            }
            let (got, _) = drain(&mut f, 1000);
            assert_eq!(got, second, "compress={compress}");
            assert_eq!(f.current_segment(), w.segment());
        }
    }

    #[test]
    fn torn_tail_waits_and_resumes_when_completed() {
        // A finished log, copied into the followed directory a few bytes at a time: at every
        // cut the follower yields only whole records and waits, never reports damage.
        let src = tempfile::tempdir().unwrap();
        let mut w = Wal::create(src.path(), opts(64, false)).unwrap();
        let want = records(12, 3);
        for r in &want {
            w.log(&[r]).unwrap();
        }
        drop(w);
        let data = fs::read(src.path().join(segment_name(0))).unwrap();
        assert!(data.len() > 3 * PAGE_SIZE);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(0));
        let mut file = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut f = WalFollower::new(dir.path());
        let mut got = Vec::new();
        let mut waits = 0;
        let mut at = 0;
        let mut step = 1;
        while at < data.len() {
            // Chunk sizes vary from 1 byte to several pages so cuts land everywhere: in
            // headers, in fragment bodies, between fragments of a record, in page padding.
            let n = step.min(data.len() - at);
            file.write_all(&data[at..at + n]).unwrap();
            at += n;
            step = (step * 7 + 3) % 20_000 + 1;
            let (recs, other) = drain(&mut f, 100);
            assert!(
                other.iter().all(|e| matches!(e, Event::Segment(0))),
                "{other:?} at {at}"
            );
            got.extend(recs);
            waits += 1;
            // Every record is complete when yielded, in order.
            assert_eq!(got[..], want[..got.len()], "at {at}");
        }
        assert_eq!(got, want);
        assert!(waits > 12);
    }

    #[test]
    fn a_record_split_over_pages_waits_for_its_last_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), opts(8, false)).unwrap();
        w.log(&[b"before"]).unwrap();
        let big = vec![5u8; 2 * PAGE_SIZE];
        w.log(&[&big]).unwrap();
        drop(w);
        let path = dir.path().join(segment_name(0));
        let full = fs::read(&path).unwrap();
        // Cut inside the last fragment.
        fs::write(&path, &full[..full.len() - 10]).unwrap();
        let mut f = WalFollower::new(dir.path());
        let (got, _) = drain(&mut f, 10);
        assert_eq!(got, vec![b"before".to_vec()]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&full[full.len() - 10..]).unwrap();
        let (got, other) = drain(&mut f, 10);
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(got, vec![big]);
    }

    #[test]
    fn corrupt_fragment_is_reported_with_segment_and_offset_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), opts(1, false)).unwrap();
        let recs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 5000]).collect();
        for r in &recs {
            w.log(&[r]).unwrap();
        }
        let path = dir.path().join(segment_name(1));
        let mut data = fs::read(&path).unwrap();
        // Segment 0 holds 6 records; damage the second of segment 1.
        data[7 + 5000 + 7 + 10] ^= 0x10;
        fs::write(&path, data).unwrap();
        let mut f = WalFollower::new(dir.path());
        let (got, other) = drain(&mut f, 1000);
        let corrupt: Vec<&Corruption> = other
            .iter()
            .filter_map(|e| match e {
                Event::Corrupt(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(corrupt.len(), 1, "{other:?}");
        assert_eq!((corrupt[0].segment, corrupt[0].offset), (1, 5007));
        assert!(corrupt[0].reason.contains("checksum"), "{}", corrupt[0].reason);
        let mut want = recs.clone();
        want.remove(7);
        assert_eq!(got, want);
        // Writing goes on after the damage.
        w.log(&[b"later"]).unwrap();
        let (got, _) = drain(&mut f, 10);
        assert_eq!(got, vec![b"later".to_vec()]);
    }

    #[test]
    fn a_sealed_segment_with_a_torn_end_is_reported_and_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), opts(4, false)).unwrap();
        w.log(&[b"one"]).unwrap();
        w.log(&[&[9u8; 50_000]]).unwrap();
        drop(w);
        let path = dir.path().join(segment_name(0));
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        let mut w = Wal::create(dir.path(), opts(4, false)).unwrap();
        w.log(&[b"two"]).unwrap();
        let mut f = WalFollower::new(dir.path());
        let (got, other) = drain(&mut f, 100);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(
            other
                .iter()
                .any(|e| matches!(e, Event::Corrupt(c) if c.segment == 0 && c.offset == 10)),
            "{other:?}"
        );
    }

    fn series_record(refs: std::ops::Range<u64>) -> Vec<u8> {
        let labels: Vec<(u64, Labels)> = refs
            .map(|r| (r, Labels::from_pairs([("__name__", "m"), ("r", &r.to_string())])))
            .collect();
        let mut b = Vec::new();
        record::encode_series(labels.iter().map(|(r, l)| (*r, l)), &mut b);
        b
    }

    fn samples_record(refs: std::ops::Range<u64>, t: i64) -> Vec<u8> {
        let s: Vec<RefSample> = refs.map(|r| RefSample { r, t, v: t as f64 }).collect();
        let mut b = Vec::new();
        record::encode_compact_samples(&s, &mut b);
        b
    }

    #[test]
    fn segments_truncated_under_the_follower_continue_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), opts(1, true)).unwrap();
        // Series 1-3 in segment 0, series 4 appears in segment 2; samples everywhere.
        w.log(&[&series_record(1..4)]).unwrap();
        let mut t = 0;
        while w.segment() < 2 {
            t += 1;
            w.log(&[&samples_record(1..4, t)]).unwrap();
        }
        w.log(&[&series_record(4..5)]).unwrap();
        while w.segment() < 5 {
            t += 1;
            w.log(&[&samples_record(1..5, t)]).unwrap();
        }
        let mut f = WalFollower::new(dir.path());
        // Read into segment 1.
        let mut seen = Vec::new();
        loop {
            match f.next_event().unwrap() {
                Event::Record { segment: 1, .. } => break,
                Event::Record { .. } | Event::Segment(_) => {}
                e => panic!("{e:?}"),
            }
        }
        seen.push(1u32);
        // Truncation: a checkpoint of segments 0-3, which are deleted.
        crate::checkpoint::checkpoint(dir.path(), 3, |_| true, 0, 0, true).unwrap();
        assert_eq!(wal::list_segments(dir.path()).unwrap(), vec![4, 5]);
        let mut events = Vec::new();
        let mut checkpoint_series = Vec::new();
        let mut segment4_samples = 0;
        for _ in 0..10_000 {
            let e = f.next_event().unwrap();
            match &e {
                Event::Wait => break,
                Event::CheckpointRecord { checkpoint: 3 } => {
                    if let Ok(Record::Series(s)) = record::decode(f.record()) {
                        checkpoint_series.extend(s.into_iter().map(|s| s.r));
                    }
                    continue;
                }
                Event::Record { segment: 1, .. } => continue,
                Event::Record { segment: 4, .. } => {
                    if let Ok(Record::Samples(s)) = record::decode(f.record()) {
                        segment4_samples += s.len();
                        assert!(s.iter().all(|s| (1..5).contains(&s.r)));
                    }
                    continue;
                }
                Event::Record { segment: 5, .. } => continue,
                _ => {}
            }
            events.push(e);
        }
        // Segment 1 was open and is read to its end; 2 and 3 are gone, the checkpoint
        // replaces them; then segment 4 and the live segment 5.
        assert_eq!(
            events,
            vec![
                Event::Skipped { from: 2, to: 3 },
                Event::CheckpointDone(3),
                Event::Segment(4),
                Event::Segment(5),
            ]
        );
        checkpoint_series.sort_unstable();
        assert_eq!(checkpoint_series, vec![1, 2, 3, 4]);
        assert!(segment4_samples > 0);
    }

    #[test]
    fn a_new_checkpoint_is_read_while_tailing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), opts(1, false)).unwrap();
        w.log(&[&series_record(1..3)]).unwrap();
        let mut t = 0;
        while w.segment() < 3 {
            t += 1;
            w.log(&[&samples_record(1..3, t)]).unwrap();
        }
        let mut f = WalFollower::new(dir.path());
        f.set_checkpoint_interval(Duration::ZERO);
        let (_, other) = drain(&mut f, 10_000);
        assert_eq!(other.last(), Some(&Event::Segment(3)));
        // Only series 2 survives the truncation.
        crate::checkpoint::checkpoint(dir.path(), 2, |r| r == 2, 0, 0, false).unwrap();
        let mut events = Vec::new();
        for _ in 0..100 {
            match f.next_event().unwrap() {
                Event::Wait => break,
                Event::CheckpointRecord { checkpoint } => {
                    if let Ok(Record::Series(s)) = record::decode(f.record()) {
                        events.push(format!(
                            "series {:?} in {checkpoint}",
                            s.iter().map(|s| s.r).collect::<Vec<_>>()
                        ));
                    }
                }
                e => events.push(format!("{e:?}")),
            }
        }
        assert_eq!(
            events,
            vec!["series [2] in 2".to_owned(), "CheckpointDone(2)".to_owned()]
        );
    }
}
