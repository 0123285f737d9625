//! The write-ahead log: numbered segment files of 32 KiB pages holding checksummed record
//! fragments, framed as upstream's `tsdb/wlog/wlog.go` frames them (LevelDB style). Records
//! are Snappy-compressed by default, flagged per fragment as upstream does, so compressed and
//! uncompressed records mix freely. See FORMAT.md, "WAL segments", for the bytes and the fsync
//! policy.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Error;

/// Page size; fragments never cross a page boundary.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Default segment size (upstream `DefaultSegmentSize`).
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;
/// Fragment header: type, length (u16 BE), CRC32-Castagnoli of the data (u32 BE).
pub const FRAGMENT_HEADER_SIZE: usize = 7;

pub(crate) const FRAG_FULL: u8 = 1;
pub(crate) const FRAG_FIRST: u8 = 2;
pub(crate) const FRAG_MIDDLE: u8 = 3;
pub(crate) const FRAG_LAST: u8 = 4;
/// Fragment type bit: the record is Snappy-compressed (block format, as Go's `snappy.Encode`).
pub(crate) const FLAG_SNAPPY: u8 = 0b0000_1000;
/// Fragment type bit: the record is zstd-compressed. Never written; refused when read.
pub(crate) const FLAG_ZSTD: u8 = 0b0001_0000;
/// Largest record a reader decompresses (a larger claimed length is treated as corruption, so
/// damaged bytes cannot make it allocate without bound).
const MAX_RECORD_SIZE: usize = 1 << 30;

/// CRC32-Castagnoli with slicing-by-16 tables (16 KiB), several times faster than the
/// one-table form on WAL replay and chunk reads.
pub(crate) static CASTAGNOLI: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// When the WAL calls fsync. Every commit is written to the operating system (`write(2)`)
/// before it returns, so a process crash loses nothing committed; these settle what a machine
/// crash or power loss can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync each segment when it is completed, and on close (upstream's behaviour). A machine
    /// crash can lose what was committed to the newest segment since it was opened.
    SegmentBoundary,
    /// Also fsync on the first commit after this much time has passed since the last fsync: a
    /// machine crash loses at most about this window.
    Interval(Duration),
    /// fsync before every commit returns: nothing committed is lost, at the cost of one fsync
    /// per commit.
    EveryCommit,
}

/// Where the log stopped being readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub segment: u32,
    /// Byte offset in the segment of the first fragment of the bad record.
    pub offset: u64,
    pub reason: String,
}

/// The segment file name for `seq` (`%08d`).
pub fn segment_name(seq: u32) -> String {
    format!("{seq:08}")
}

/// The segment numbers in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u32>, Error> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let e = e.map_err(|e| Error::io("read directory", dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = name.parse::<u32>()
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads every record of one segment's bytes, in order, decompressing those flagged as
/// compressed. Stops at the first fragment that is torn or fails its checksum, or at a record
/// that does not decompress, and reports it; a clean end of data is not an error.
pub fn read_segment(seg: u32, data: &[u8], mut f: impl FnMut(&[u8])) -> Result<(), Corruption> {
    let mut pos = 0usize;
    let mut rec: Vec<u8> = Vec::new();
    let mut plain: Vec<u8> = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    // Start offset and compression flag of the record being reassembled.
    let mut rec_start: Option<(usize, u8)> = None;
    let corrupt = |offset: usize, reason: String| Corruption {
        segment: seg,
        offset: offset as u64,
        reason,
    };
    loop {
        if pos >= data.len() {
            return match rec_start {
                Some((start, _)) => Err(corrupt(start, "segment ends inside a record".into())),
                None => Ok(()),
            };
        }
        let page_left = PAGE_SIZE - pos % PAGE_SIZE;
        let typ = data[pos];
        if page_left < FRAGMENT_HEADER_SIZE || typ == 0 {
            // Padding to the end of the page; it must be all zeros.
            let end = (pos + page_left).min(data.len());
            if data[pos..end].iter().any(|&b| b != 0) {
                return Err(corrupt(
                    rec_start.map_or(pos, |(s, _)| s),
                    format!("non-zero page padding at {pos}"),
                ));
            }
            pos = end;
            continue;
        }
        let start = rec_start.map_or(pos, |(s, _)| s);
        if typ & FLAG_ZSTD != 0 || typ >> 5 != 0 {
            return Err(corrupt(
                start,
                format!("unsupported fragment flags {typ:#04x} at {pos}"),
            ));
        }
        if pos + FRAGMENT_HEADER_SIZE > data.len() {
            return Err(corrupt(start, "segment ends inside a fragment header".into()));
        }
        let len = usize::from(u16::from_be_bytes([data[pos + 1], data[pos + 2]]));
        let crc = u32::from_be_bytes([data[pos + 3], data[pos + 4], data[pos + 5], data[pos + 6]]);
        let body = pos + FRAGMENT_HEADER_SIZE;
        if len > page_left - FRAGMENT_HEADER_SIZE {
            return Err(corrupt(start, format!("fragment at {pos} crosses its page")));
        }
        let Some(part) = data.get(body..body + len) else {
            return Err(corrupt(start, "segment ends inside a fragment".into()));
        };
        if CASTAGNOLI.checksum(part) != crc {
            return Err(corrupt(start, format!("checksum mismatch in fragment at {pos}")));
        }
        let snappy = typ & FLAG_SNAPPY;
        if let Some((_, flag)) = rec_start
            && flag != snappy
        {
            return Err(corrupt(
                start,
                format!("fragment at {pos} is flagged differently from its record's first fragment"),
            ));
        }
        let whole: Option<&[u8]> = match (typ & 0b111, rec_start.is_some()) {
            (FRAG_FULL, false) => Some(part),
            (FRAG_FIRST, false) => {
                rec.clear();
                rec.extend_from_slice(part);
                rec_start = Some((pos, snappy));
                None
            }
            (FRAG_MIDDLE, true) => {
                rec.extend_from_slice(part);
                None
            }
            (FRAG_LAST, true) => {
                rec.extend_from_slice(part);
                rec_start = None;
                Some(&rec)
            }
            (t, _) => return Err(corrupt(start, format!("unexpected fragment type {t} at {pos}"))),
        };
        if let Some(whole) = whole {
            if snappy == 0 {
                f(whole);
            } else {
                decompress(&mut decoder, whole, &mut plain)
                    .map_err(|e| corrupt(start, format!("record at {start} does not decompress: {e}")))?;
                f(&plain);
            }
        }
        pos = body + len;
    }
}

/// Decompresses one Snappy block into `out` (resized to the decompressed length).
pub(crate) fn decompress(decoder: &mut snap::raw::Decoder, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let n = snap::raw::decompress_len(input).map_err(|e| e.to_string())?;
    if n > MAX_RECORD_SIZE {
        return Err(format!("claimed length {n} exceeds {MAX_RECORD_SIZE}"));
    }
    out.resize(n, 0);
    let got = decoder.decompress(input, out).map_err(|e| e.to_string())?;
    out.truncate(got);
    Ok(())
}

/// Tells readers tailing the log ([`crate::wal_reader`]) that something was written: a
/// generation counter bumped after every [`Wal::log`] and segment cut, and a condition
/// variable for waiting on it. Writers pay an atomic add, plus a lock and a wake-up only while
/// someone waits.
#[derive(Debug, Default)]
pub struct WalNotify {
    generation: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl WalNotify {
    /// The number of writes so far; pass it to [`wait`](Self::wait) after reading.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Bumps the generation and wakes every waiter (the log calls it; a reader's owner may call
    /// it to wake the reader, e.g. to stop it).
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // A waiter registers before it checks the generation, so either it sees the new
        // generation or it is counted here and waiting when the lock is taken.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cv.notify_all();
        }
    }

    /// Waits until the generation differs from `seen` or `timeout` passes; returns the
    /// generation then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.waiters.fetch_add(1, Ordering::SeqCst);
        loop {
            if self.generation.load(Ordering::SeqCst) != seen {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        self.generation()
    }
}

/// Options of a [`Wal`].
#[derive(Clone, Copy, Debug)]
pub struct WalOptions {
    pub segment_size: usize,
    pub sync: SyncPolicy,
    /// Snappy-compress each record whose compressed form is smaller (upstream
    /// `--storage.tsdb.wal-compression`, on by default). Readers accept both forms, so this can
    /// change between runs.
    pub compress: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::SegmentBoundary,
            compress: true,
        }
    }
}

/// The writer of the log. Not internally synchronised: the head serialises commits.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    file: File,
    seq: u32,
    page: Vec<u8>,
    /// Bytes of the current page filled / already written to the file.
    page_alloc: usize,
    page_flushed: usize,
    /// Complete pages written to the current segment.
    done_pages: usize,
    last_sync: Instant,
    unsynced: bool,
    encoder: snap::raw::Encoder,
    /// Scratch space for the compressed form of a record.
    compressed: Vec<u8>,
    notify: Arc<WalNotify>,
}

impl Wal {
    /// Starts writing a new segment after the newest one in `dir` (upstream does the same, so an
    /// existing, possibly partial, segment is never appended to).
    pub fn create(dir: &Path, opts: WalOptions) -> Result<Self, Error> {
        Self::create_after(dir, opts, None)
    }

    /// [`create`](Self::create), numbering the new segment after `covered` as well (the last
    /// segment a checkpoint covers), so it is never mistaken for a covered one.
    pub fn create_after(dir: &Path, opts: WalOptions, covered: Option<u32>) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let after_segments = list_segments(dir)?.last().map_or(0, |s| s + 1);
        let seq = after_segments.max(covered.map_or(0, |c| c + 1));
        let file = create_segment(dir, seq)?;
        let opts = WalOptions {
            segment_size: opts.segment_size.max(PAGE_SIZE),
            ..opts
        };
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            file,
            seq,
            page: vec![0; PAGE_SIZE],
            page_alloc: 0,
            page_flushed: 0,
            done_pages: 0,
            last_sync: Instant::now(),
            unsynced: false,
            encoder: snap::raw::Encoder::new(),
            compressed: Vec::new(),
            notify: Arc::default(),
        })
    }

    /// What readers tailing this log wait on: bumped after every [`log`](Self::log) and
    /// segment cut.
    pub fn notifier(&self) -> Arc<WalNotify> {
        self.notify.clone()
    }

    /// The active segment number.
    pub fn segment(&self) -> u32 {
        self.seq
    }

    fn pages_per_segment(&self) -> usize {
        self.opts.segment_size / PAGE_SIZE
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment_name(self.seq))
    }

    /// Writes the pending part of the current page to the file; with `full`, pads the page to
    /// its end first and starts a new one.
    fn flush_page(&mut self, full: bool) -> Result<(), Error> {
        if full {
            self.page[self.page_alloc..].fill(0);
            self.page_alloc = PAGE_SIZE;
        }
        if self.page_flushed < self.page_alloc {
            if let Err(e) = self.file.write_all(&self.page[self.page_flushed..self.page_alloc]) {
                return Err(Error::io("write WAL segment", &self.path(), e));
            }
            self.page_flushed = self.page_alloc;
            self.unsynced = true;
        }
        if full {
            self.done_pages += 1;
            self.page.fill(0);
            self.page_alloc = 0;
            self.page_flushed = 0;
        }
        Ok(())
    }

    fn next_segment(&mut self) -> Result<(), Error> {
        if self.page_alloc > 0 {
            self.flush_page(true)?;
        }
        let path = self.path();
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync WAL segment", &path, e))?;
        self.seq += 1;
        self.file = create_segment(&self.dir, self.seq)?;
        self.done_pages = 0;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.notify.notify();
        Ok(())
    }

    /// Closes (and fsyncs) the active segment and starts the next one; returns its number.
    /// Truncation cuts first so every older segment is complete and can be checkpointed.
    pub fn cut_segment(&mut self) -> Result<u32, Error> {
        self.next_segment()?;
        Ok(self.seq)
    }

    /// Appends records and writes them to the operating system; fsyncs as the policy says.
    pub fn log(&mut self, records: &[&[u8]]) -> Result<(), Error> {
        for rec in records {
            self.log_one(rec)?;
        }
        self.flush_page(false)?;
        self.notify.notify();
        let due = match self.opts.sync {
            SyncPolicy::SegmentBoundary => false,
            SyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            SyncPolicy::EveryCommit => true,
        };
        if due && self.unsynced {
            self.sync()?;
        }
        Ok(())
    }

    fn log_one(&mut self, rec: &[u8]) -> Result<(), Error> {
        // Compress the whole record first (upstream `WL.log`), keeping the plain form when
        // compression does not make it smaller; every fragment then carries the flag.
        let mut compressed = std::mem::take(&mut self.compressed);
        let mut flag = 0;
        let mut data = rec;
        if self.opts.compress && !rec.is_empty() {
            compressed.resize(snap::raw::max_compress_len(rec.len()), 0);
            if let Ok(n) = self.encoder.compress(rec, &mut compressed)
                && n < rec.len()
            {
                data = &compressed[..n];
                flag = FLAG_SNAPPY;
            }
        }
        let res = self.log_fragments(data, flag);
        self.compressed = compressed;
        res
    }

    fn log_fragments(&mut self, mut rec: &[u8], flag: u8) -> Result<(), Error> {
        // A record never spans segments: cut first if it does not fit in what is left.
        let left = (PAGE_SIZE - self.page_alloc).saturating_sub(FRAGMENT_HEADER_SIZE)
            + (PAGE_SIZE - FRAGMENT_HEADER_SIZE) * self.pages_per_segment().saturating_sub(self.done_pages + 1);
        let empty = self.done_pages == 0 && self.page_alloc == 0;
        if rec.len() > left && !empty {
            self.next_segment()?;
        }
        let mut first = true;
        while first || !rec.is_empty() {
            let room = PAGE_SIZE - self.page_alloc - FRAGMENT_HEADER_SIZE;
            let n = rec.len().min(room);
            let (part, rest) = rec.split_at(n);
            let typ = match (first, rest.is_empty()) {
                (true, true) => FRAG_FULL,
                (true, false) => FRAG_FIRST,
                (false, true) => FRAG_LAST,
                (false, false) => FRAG_MIDDLE,
            };
            let a = self.page_alloc;
            self.page[a] = typ | flag;
            self.page[a + 1..a + 3].copy_from_slice(&(n as u16).to_be_bytes());
            self.page[a + 3..a + 7].copy_from_slice(&CASTAGNOLI.checksum(part).to_be_bytes());
            self.page[a + 7..a + 7 + n].copy_from_slice(part);
            self.page_alloc += FRAGMENT_HEADER_SIZE + n;
            if PAGE_SIZE - self.page_alloc < FRAGMENT_HEADER_SIZE {
                // A record larger than a whole segment keeps going past the nominal size, as
                // upstream's does.
                self.flush_page(true)?;
            }
            rec = rest;
            first = false;
        }
        Ok(())
    }

    /// fsyncs the active segment.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.flush_page(false)?;
        let path = self.path();
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync WAL segment", &path, e))?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

fn create_segment(dir: &Path, seq: u32) -> Result<File, Error> {
    let path = dir.join(segment_name(seq));
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("create WAL segment", &path, e))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Total bytes of the regular files under `dir`, recursively (0 if it does not exist).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// fsyncs a directory so a created or removed file name is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Reads every segment in `dir` in order, calling `f(segment, record)`. On a torn or corrupt
/// record, truncates that segment just before it, deletes every later segment and returns
/// what was cut; the caller counts it. Returns `None` for a clean log.
pub fn replay_and_repair(dir: &Path, f: impl FnMut(u32, &[u8])) -> Result<Option<Corruption>, Error> {
    replay_and_repair_from(dir, 0, f)
}

/// [`replay_and_repair`] over the segments numbered `from` and later only (those before are
/// covered by a checkpoint).
pub fn replay_and_repair_from(
    dir: &Path,
    from: u32,
    mut f: impl FnMut(u32, &[u8]),
) -> Result<Option<Corruption>, Error> {
    let segments: Vec<u32> = list_segments(dir)?.into_iter().filter(|&s| s >= from).collect();
    for (i, &seg) in segments.iter().enumerate() {
        let path = dir.join(segment_name(seg));
        let data = fs::read(&path).map_err(|e| Error::io("read WAL segment", &path, e))?;
        if let Err(c) = read_segment(seg, &data, |rec| f(seg, rec)) {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open WAL segment", &path, e))?;
            file.set_len(c.offset)
                .map_err(|e| Error::io("truncate WAL segment", &path, e))?;
            file.sync_all().map_err(|e| Error::io("fsync WAL segment", &path, e))?;
            for &later in &segments[i + 1..] {
                let p = dir.join(segment_name(later));
                fs::remove_file(&p).map_err(|e| Error::io("remove WAL segment", &p, e))?;
            }
            sync_dir(dir)?;
            return Ok(Some(c));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<Corruption>) {
        let mut out = Vec::new();
        let c = replay_and_repair(dir, |_, r| out.push(r.to_vec())).unwrap();
        (out, c)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn records_round_trip_across_pages_and_segments(
            sizes in proptest::collection::vec((prop_oneof![0usize..100, 0usize..40_000, Just(PAGE_SIZE - 7), Just(PAGE_SIZE - 14)], any::<bool>()), 1..40),
            batch in 1usize..4,
            compress in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = Wal::create(dir.path(), WalOptions { segment_size: 4 * PAGE_SIZE, sync: SyncPolicy::SegmentBoundary, compress }).unwrap();
            // Compressible (periodic) and incompressible (noise) records, so both the
            // compressed and the plain path are taken.
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let recs: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &(n, noise))| {
                    (0..n)
                        .map(|j| {
                            if noise {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                x as u8
                            } else {
                                (i * 31 + j / 8) as u8
                            }
                        })
                        .collect()
                })
                .collect();
            for chunk in recs.chunks(batch) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                w.log(&refs).unwrap();
            }
            drop(w);
            let (got, c) = read_all(dir.path());
            prop_assert!(c.is_none(), "{:?}", c);
            prop_assert_eq!(got, recs);
        }
    }

    fn plain() -> WalOptions {
        WalOptions {
            compress: false,
            ..WalOptions::default()
        }
    }

    #[test]
    fn log_writes_wake_a_waiting_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), plain()).unwrap();
        let notify = w.notifier();
        let seen = notify.generation();
        // Nothing written: the wait times out.
        let t = Instant::now();
        assert_eq!(notify.wait(seen, Duration::from_millis(50)), seen);
        assert!(t.elapsed() >= Duration::from_millis(50));
        let waiter = {
            let notify = notify.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let g = notify.wait(seen, Duration::from_secs(30));
                (g, t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        w.log(&[b"x"]).unwrap();
        let (g, waited) = waiter.join().unwrap();
        assert!(g > seen);
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        // A write before the wait is not missed.
        let seen = notify.generation();
        w.cut_segment().unwrap();
        assert!(notify.wait(seen, Duration::from_secs(30)) > seen);
    }

    #[test]
    fn torn_tail_is_truncated_and_later_writes_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), plain()).unwrap();
        w.log(&[b"one", b"two"]).unwrap();
        w.log(&[&[7u8; 50_000]]).unwrap();
        drop(w);
        let path = dir.path().join(segment_name(0));
        let len = fs::metadata(&path).unwrap().len();
        // Cut inside the big record's second fragment.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
        let (got, c) = read_all(dir.path());
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        let c = c.expect("torn tail reported");
        assert_eq!((c.segment, c.offset), (0, 2 * (7 + 3)));
        assert_eq!(fs::metadata(&path).unwrap().len(), 20);
        // The next writer starts a new segment and both read back cleanly.
        let mut w = Wal::create(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(w.segment(), 1);
        w.log(&[b"three"]).unwrap();
        drop(w);
        let (got, c) = read_all(dir.path());
        assert!(c.is_none());
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn flipped_bit_stops_replay_and_drops_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(
            dir.path(),
            WalOptions {
                segment_size: PAGE_SIZE,
                sync: SyncPolicy::EveryCommit,
                compress: false,
            },
        )
        .unwrap();
        for i in 0..20u8 {
            w.log(&[&[i; 5000]]).unwrap();
        }
        assert!(w.segment() > 1);
        drop(w);
        let path = dir.path().join(segment_name(1));
        let mut data = fs::read(&path).unwrap();
        data[7 + 5000 + 7 + 10] ^= 0x10;
        fs::write(&path, data).unwrap();
        let (got, c) = read_all(dir.path());
        let c = c.unwrap();
        assert_eq!((c.segment, c.offset), (1, 5007));
        assert!(c.reason.contains("checksum"), "{}", c.reason);
        // Segment 0 holds 6 records, segment 1 one before the damage.
        assert_eq!(got.len(), 7);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![0, 1]);
    }

    /// The fragment type bytes of every fragment in a segment (padding skipped).
    fn fragment_types(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let page_left = PAGE_SIZE - pos % PAGE_SIZE;
            if page_left < FRAGMENT_HEADER_SIZE || data[pos] == 0 {
                pos += page_left;
                continue;
            }
            out.push(data[pos]);
            pos += FRAGMENT_HEADER_SIZE + usize::from(u16::from_be_bytes([data[pos + 1], data[pos + 2]]));
        }
        out
    }

    #[test]
    fn compressed_and_plain_segments_mix_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i / 100) as u8).collect();
        let small = b"tiny".to_vec();
        let mut want = Vec::new();
        for compress in [true, false, true] {
            let mut w = Wal::create(
                dir.path(),
                WalOptions {
                    compress,
                    ..WalOptions::default()
                },
            )
            .unwrap();
            w.log(&[&big, &small]).unwrap();
            want.push(big.clone());
            want.push(small.clone());
            drop(w);
        }
        let types: Vec<Vec<u8>> = (0..3)
            .map(|s| fragment_types(&fs::read(dir.path().join(segment_name(s))).unwrap()))
            .collect();
        // Compressed: the big record shrinks to one flagged fragment; the tiny one, which
        // Snappy would grow, stays plain.
        assert_eq!(types[0], [FRAG_FULL | FLAG_SNAPPY, FRAG_FULL]);
        assert_eq!(types[2], types[0]);
        // Plain: the big record spans four pages, nothing is flagged.
        assert_eq!(types[1], [FRAG_FIRST, FRAG_MIDDLE, FRAG_MIDDLE, FRAG_LAST, FRAG_FULL]);
        let (got, c) = read_all(dir.path());
        assert!(c.is_none(), "{c:?}");
        assert_eq!(got, want);
    }

    /// Writes one record's fragments by hand: `(type byte, data)` each, CRCs computed.
    fn raw_fragments(frags: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (typ, part) in frags {
            out.push(*typ);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(&CASTAGNOLI.checksum(part).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn a_compressed_record_that_does_not_decompress_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::create(dir.path(), WalOptions::default()).unwrap();
        let big = vec![3u8; 10_000];
        w.log(&[&big]).unwrap();
        drop(w);
        let path = dir.path().join(segment_name(0));
        let mut data = fs::read(&path).unwrap();
        let good_len = data.len();
        // A valid checksum over bytes that are not Snappy (a claimed length, then a copy
        // reaching before the start of the output).
        data.extend_from_slice(&raw_fragments(&[(FRAG_FULL | FLAG_SNAPPY, &[10, 0x01, 0x05])]));
        fs::write(&path, &data).unwrap();
        fs::write(
            dir.path().join(segment_name(1)),
            raw_fragments(&[(FRAG_FULL, b"after")]),
        )
        .unwrap();
        let (got, c) = read_all(dir.path());
        assert_eq!(got, vec![big]);
        let c = c.expect("reported");
        assert_eq!((c.segment, c.offset), (0, good_len as u64));
        assert!(c.reason.contains("does not decompress"), "{}", c.reason);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len as u64);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![0]);
    }

    #[test]
    fn fragments_of_one_record_must_agree_on_compression() {
        let data = raw_fragments(&[(FRAG_FIRST | FLAG_SNAPPY, b"ab"), (FRAG_LAST, b"cd")]);
        let err = read_segment(0, &data, |_| panic!("no record expected")).unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.reason.contains("flagged differently"), "{}", err.reason);
        let zstd = raw_fragments(&[(FRAG_FULL | FLAG_ZSTD, b"ab")]);
        assert!(
            read_segment(0, &zstd, |_| {})
                .unwrap_err()
                .reason
                .contains("unsupported")
        );
    }
}
