//! Full head chunks on disk: numbered files in `chunks_head/` that are memory-mapped, so only a
//! series' open chunk stays on the heap (upstream `tsdb/chunks/head_chunks.go`
//! `ChunkDiskMapper`). The layout is upstream's; see FORMAT.md, "Head chunk files".
//!
//! The files are a cache of what the WAL already holds: a lost or damaged file costs replay
//! time, never samples, because WAL replay only skips samples that a valid chunk covers.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use memmap2::Mmap;

use crate::Error;
use crate::wal::CASTAGNOLI;

/// File magic number.
pub const MAGIC: u32 = 0x0130_BC91;
/// File format version.
pub const VERSION: u8 = 1;
/// Magic, version and three padding bytes.
pub const FILE_HEADER_SIZE: usize = 8;
/// Default maximum file size (upstream `MaxHeadChunkFileSize`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// Series ref, mint, maxt, encoding, the longest length varint, CRC.
const MAX_META_SIZE: usize = 8 + 8 + 8 + 1 + 10 + 4;
const MIN_META_SIZE: usize = 8 + 8 + 8 + 1 + 1 + 4;
const WRITE_BUFFER_SIZE: usize = 1 << 20;

/// A chunk's position: file number in the high 32 bits, byte offset in the low 32.
pub fn chunk_ref(seq: u32, offset: u32) -> u64 {
    (u64::from(seq) << 32) | u64::from(offset)
}

/// A chunk found while loading the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedChunk {
    pub chunk_ref: u64,
    pub series_ref: u64,
    pub min_t: i64,
    pub max_t: i64,
}

/// What loading found wrong and cut away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub file: u32,
    pub offset: u64,
    pub reason: String,
    pub removed_files: Vec<u32>,
}

/// Chunk bytes inside a mapped file; cheap to clone, keeps the mapping alive.
#[derive(Clone, Debug)]
pub struct MappedChunk {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl MappedChunk {
    /// The bytes `start..end` of `map`.
    pub(crate) fn new(map: Arc<Mmap>, start: usize, end: usize) -> Self {
        MappedChunk { map, start, end }
    }

    /// Offset of the end of the bytes in their file.
    pub(crate) fn end(&self) -> usize {
        self.end
    }
}

impl AsRef<[u8]> for MappedChunk {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}

#[derive(Debug)]
struct Writer {
    seq: u32,
    file: File,
    path: PathBuf,
    /// Logical end of the file, buffered bytes included.
    offset: u64,
    buf: Vec<u8>,
}

/// Writes full chunks to the newest file and reads any chunk back through its mapping.
#[derive(Debug)]
pub struct ChunkDiskMapper {
    dir: PathBuf,
    max_file_size: u64,
    maps: RwLock<BTreeMap<u32, Arc<Mmap>>>,
    writer: Mutex<Option<Writer>>,
    /// `chunk_ref` of the end of the bytes written to the active file; anything below it in
    /// the active file is readable through the mapping without taking the writer lock.
    flushed: AtomicU64,
    /// Per file: the newest chunk end time and the end of the used bytes.
    files: Mutex<BTreeMap<u32, FileInfo>>,
}

#[derive(Clone, Copy, Debug)]
struct FileInfo {
    max_t: i64,
    used: u64,
}

fn map_file(file: &File, path: &Path) -> Result<Mmap, Error> {
    // SAFETY: the mapping is read-only and only covers files in our own data directory, which
    // the database holds an exclusive lock on. A file is only truncated before it is mapped or
    // after its mapping is dropped, and the active file is sized to its full length before it
    // is mapped, so every mapped page stays backed by the file; readers only look at bytes
    // that were written before they got the chunk's reference.
    unsafe { Mmap::map(file) }.map_err(|e| Error::io("mmap head chunk file", path, e))
}

fn file_name(seq: u32) -> String {
    format!("{seq:06}")
}

impl ChunkDiskMapper {
    /// Opens `dir`, loading every valid chunk of the existing files. A damaged or truncated
    /// chunk ends its file there: the rest of that file and every later file are removed, and
    /// the damage is returned for the caller to count.
    pub fn open(dir: &Path, max_file_size: u64) -> Result<(Self, Vec<LoadedChunk>, Option<Damage>), Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let mut seqs = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
            let e = e.map_err(|e| Error::io("read directory", dir, e))?;
            if let Some(n) = e.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                && let Ok(n) = n.parse::<u32>()
            {
                seqs.push(n);
            }
        }
        seqs.sort_unstable();
        let mut maps = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut loaded = Vec::new();
        let mut damage: Option<Damage> = None;
        for &seq in &seqs {
            let path = dir.join(file_name(seq));
            if let Some(d) = damage.as_mut() {
                fs::remove_file(&path).map_err(|e| Error::io("remove head chunk file", &path, e))?;
                d.removed_files.push(seq);
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open head chunk file", &path, e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io("stat head chunk file", &path, e))?
                .len();
            let (end, bad) = if len < FILE_HEADER_SIZE as u64 {
                (0, Some("file shorter than its header".to_string()))
            } else {
                let map = map_file(&file, &path)?;
                scan(&map, seq, &mut loaded, |off| zeros_from(&file, &map, off))
            };
            if let Some(reason) = bad {
                damage = Some(Damage {
                    file: seq,
                    offset: end as u64,
                    reason,
                    removed_files: Vec::new(),
                });
            }
            if end <= FILE_HEADER_SIZE {
                fs::remove_file(&path).map_err(|e| Error::io("remove head chunk file", &path, e))?;
                continue;
            }
            if (end as u64) < len {
                // Cut the damaged tail or the zeros a crash left after the last chunk.
                file.set_len(end as u64)
                    .map_err(|e| Error::io("truncate head chunk file", &path, e))?;
            }
            let max_t = loaded
                .iter()
                .rev()
                .take_while(|c| (c.chunk_ref >> 32) as u32 == seq)
                .map(|c| c.max_t)
                .max()
                .unwrap_or(i64::MIN);
            files.insert(
                seq,
                FileInfo {
                    max_t,
                    used: end as u64,
                },
            );
            maps.insert(seq, Arc::new(map_file(&file, &path)?));
        }
        if damage.is_some() {
            crate::wal::sync_dir(dir)?;
        }
        let mapper = ChunkDiskMapper {
            dir: dir.to_path_buf(),
            max_file_size: max_file_size
                .max((FILE_HEADER_SIZE + MAX_META_SIZE + 1024) as u64)
                .min(u32::MAX as u64),
            maps: RwLock::new(maps),
            writer: Mutex::new(None),
            flushed: AtomicU64::new(0),
            files: Mutex::new(files),
        };
        Ok((mapper, loaded, damage))
    }

    fn new_file(&self, seq: u32) -> Result<Writer, Error> {
        let path = self.dir.join(file_name(seq));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create head chunk file", &path, e))?;
        let mut header = [0u8; FILE_HEADER_SIZE];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        file.write_all(&header)
            .map_err(|e| Error::io("write head chunk file", &path, e))?;
        // Size the file before mapping it so every mapped page is backed (a sparse tail reads
        // as zeros, which loading treats as the end of the chunks).
        file.set_len(self.max_file_size)
            .map_err(|e| Error::io("size head chunk file", &path, e))?;
        file.seek(SeekFrom::Start(FILE_HEADER_SIZE as u64))
            .map_err(|e| Error::io("seek head chunk file", &path, e))?;
        crate::wal::sync_dir(&self.dir)?;
        let map = map_file(&file, &path)?;
        self.maps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, Arc::new(map));
        self.flushed
            .store(chunk_ref(seq, FILE_HEADER_SIZE as u32), Ordering::Release);
        self.files.lock().unwrap_or_else(|e| e.into_inner()).insert(
            seq,
            FileInfo {
                max_t: i64::MIN,
                used: FILE_HEADER_SIZE as u64,
            },
        );
        Ok(Writer {
            seq,
            file,
            path,
            offset: FILE_HEADER_SIZE as u64,
            buf: Vec::with_capacity(WRITE_BUFFER_SIZE),
        })
    }

    fn flush(&self, w: &mut Writer) -> Result<(), Error> {
        if !w.buf.is_empty() {
            w.file
                .write_all(&w.buf)
                .map_err(|e| Error::io("write head chunk file", &w.path, e))?;
            w.buf.clear();
        }
        self.flushed.store(chunk_ref(w.seq, w.offset as u32), Ordering::Release);
        Ok(())
    }

    /// Appends a chunk of series `series_ref` and returns its reference. The bytes are buffered;
    /// reading the chunk flushes them.
    pub fn write(&self, series_ref: u64, min_t: i64, max_t: i64, encoding: u8, data: &[u8]) -> Result<u64, Error> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let need = (MAX_META_SIZE + data.len()) as u64;
        let cut = match guard.as_ref() {
            None => true,
            Some(w) => w.offset + need > self.max_file_size,
        };
        if cut {
            let next = match guard.as_mut() {
                Some(w) => {
                    self.flush(w)?;
                    w.seq + 1
                }
                None => self
                    .maps
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .next_back()
                    .map_or(1, |s| s + 1),
            };
            *guard = Some(self.new_file(next)?);
        }
        let w = guard.as_mut().expect("a writer was installed above");
        let start = w.buf.len();
        w.buf.extend_from_slice(&series_ref.to_be_bytes());
        w.buf.extend_from_slice(&min_t.to_be_bytes());
        w.buf.extend_from_slice(&max_t.to_be_bytes());
        w.buf.push(encoding);
        let mut n = data.len() as u64;
        while n >= 0x80 {
            w.buf.push(n as u8 | 0x80);
            n >>= 7;
        }
        w.buf.push(n as u8);
        w.buf.extend_from_slice(data);
        let crc = CASTAGNOLI.checksum(&w.buf[start..]);
        w.buf.extend_from_slice(&crc.to_be_bytes());
        let r = chunk_ref(w.seq, w.offset as u32);
        w.offset += (w.buf.len() - start) as u64;
        if let Some(info) = self.files.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&w.seq) {
            info.max_t = info.max_t.max(max_t);
            info.used = w.offset;
        }
        if w.buf.len() >= WRITE_BUFFER_SIZE {
            self.flush(w)?;
        }
        Ok(r)
    }

    /// The encoding code and data bytes of chunk `r`.
    pub fn chunk(&self, r: u64) -> Result<(u8, MappedChunk), Error> {
        let seq = (r >> 32) as u32;
        let flushed = self.flushed.load(Ordering::Acquire);
        if (flushed >> 32) as u32 == seq && r >= flushed {
            let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = guard.as_mut().filter(|w| w.seq == seq) {
                self.flush(w)?;
            }
        }
        let map = self.maps.read().unwrap_or_else(|e| e.into_inner()).get(&seq).cloned();
        let Some(map) = map else {
            return Err(Error::Corruption {
                file: self.dir.join(file_name(seq)),
                offset: r & 0xffff_ffff,
                reason: "no such head chunk file".into(),
            });
        };
        let off = (r & 0xffff_ffff) as usize;
        match parse_chunk(&map, off) {
            Ok((_, _, _, enc, data, _)) => Ok((
                enc,
                MappedChunk {
                    start: data.start,
                    end: data.end,
                    map,
                },
            )),
            Err(reason) => Err(Error::Corruption {
                file: self.dir.join(file_name(seq)),
                offset: off as u64,
                reason,
            }),
        }
    }

    /// Writes buffered chunks to the file.
    pub fn flush_all(&self) -> Result<(), Error> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = guard.as_mut() {
            self.flush(w)?;
        }
        Ok(())
    }

    /// Flushes, fsyncs and trims the active file to its used length.
    pub fn close(&self) -> Result<(), Error> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut w) = guard.take() {
            self.retire(&mut w)?;
        }
        Ok(())
    }

    /// Finishes the active file: writes what is buffered, trims the unused (sparse) tail it
    /// was sized with, and fsyncs. The next chunk starts a new file. Trimming spares the next
    /// open from reading through up to 128 MiB of zeros to find where the chunks end; readers
    /// of the mapping only look below the used length, which stays backed.
    fn retire(&self, w: &mut Writer) -> Result<(), Error> {
        self.flush(w)?;
        w.file
            .set_len(w.offset)
            .map_err(|e| Error::io("trim head chunk file", &w.path, e))?;
        w.file
            .sync_data()
            .map_err(|e| Error::io("fsync head chunk file", &w.path, e))
    }

    /// Per file, its number and the end of its used bytes, ascending.
    pub fn file_sizes(&self) -> Vec<(u32, u64)> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(&seq, f)| (seq, f.used))
            .collect()
    }

    /// Bytes of the files in use (the active file's unused, sparse tail is not counted).
    pub fn size(&self) -> u64 {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|f| f.used)
            .sum()
    }

    /// Deletes the files whose every chunk ends before `mint` (upstream
    /// `ChunkDiskMapper.Truncate`). The active file is closed first, so it can go too; the
    /// next chunk starts a new file. Readers holding chunks of a deleted file keep its mapping.
    /// Returns the number of files deleted.
    pub fn truncate(&self, mint: i64) -> Result<usize, Error> {
        {
            let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut w) = guard.take() {
                self.retire(&mut w)?;
            }
        }
        let victims: Vec<u32> = self
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, f)| f.max_t < mint)
            .map(|(s, _)| *s)
            .collect();
        for seq in &victims {
            let path = self.dir.join(file_name(*seq));
            self.maps.write().unwrap_or_else(|e| e.into_inner()).remove(seq);
            self.files.lock().unwrap_or_else(|e| e.into_inner()).remove(seq);
            fs::remove_file(&path).map_err(|e| Error::io("remove head chunk file", &path, e))?;
        }
        if !victims.is_empty() {
            crate::wal::sync_dir(&self.dir)?;
        }
        Ok(victims.len())
    }
}

type Parsed = (u64, i64, i64, u8, std::ops::Range<usize>, usize);

/// Parses the chunk at `off`: series ref, mint, maxt, encoding, data range, end offset.
fn parse_chunk(b: &[u8], off: usize) -> Result<Parsed, String> {
    let be = |i: usize| -> Result<u64, String> {
        b.get(i..i + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| "file ends inside a chunk header".to_string())
    };
    let series = be(off)?;
    let min_t = be(off + 8)? as i64;
    let max_t = be(off + 16)? as i64;
    let enc = *b.get(off + 24).ok_or("file ends inside a chunk header")?;
    let mut pos = off + 25;
    let mut len = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(pos).ok_or("file ends inside a chunk length")?;
        pos += 1;
        if shift > 63 {
            return Err("chunk length varint too long".into());
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
    }
    let len = usize::try_from(len).map_err(|_| "chunk length too large".to_string())?;
    let data_end = pos.checked_add(len).ok_or("chunk length too large")?;
    let crc_end = data_end.checked_add(4).ok_or("chunk length too large")?;
    if crc_end > b.len() {
        return Err("file ends inside a chunk".into());
    }
    Ok((series, min_t, max_t, enc, pos..data_end, crc_end))
}

/// Scans the chunks of one mapped file; returns where valid data ends and, if the end is not
/// clean, why.
/// Whether `b[off..]`, the mapping of `file`, is all zeros. The writer extends a file to its
/// full size before writing into it, so after a crash most of the tail is a hole: only the
/// ranges the filesystem reports as data (`SEEK_DATA`/`SEEK_HOLE`) are read, where reading a
/// 128 MiB hole through the mapping took longer than the rest of a small store's start-up.
/// Where the filesystem cannot tell, everything is data and all of it is read.
fn zeros_from(file: &File, b: &[u8], off: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let mut pos = off;
        while pos < b.len() {
            // SAFETY: lseek only moves the file offset of our own descriptor, which nothing
            // else uses while the store opens (reads go through the mapping).
            let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
            if data < 0 {
                // ENXIO: no data at or after `pos`, only a hole up to the end.
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                    return true;
                }
                break;
            }
            let data = (data as usize).min(b.len());
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data as libc::off_t, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                b.len()
            } else {
                (hole as usize).clamp(data, b.len())
            };
            if b[data..hole].iter().any(|&x| x != 0) {
                return false;
            }
            if hole <= pos {
                break;
            }
            pos = hole;
        }
        if pos >= b.len() {
            return true;
        }
        b[pos..].iter().all(|&x| x == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        b[off..].iter().all(|&x| x == 0)
    }
}

fn scan(b: &[u8], seq: u32, out: &mut Vec<LoadedChunk>, zeros_from: impl Fn(usize) -> bool) -> (usize, Option<String>) {
    if b[..4] != MAGIC.to_be_bytes() {
        return (0, Some("bad magic number".into()));
    }
    if b[4] != VERSION {
        return (0, Some(format!("unsupported version {}", b[4])));
    }
    let mut off = FILE_HEADER_SIZE;
    while off < b.len() {
        // Series references start at 1, so zeros where a chunk would start are unused space.
        if b.len() - off < MIN_META_SIZE || b[off..off + 8] == [0; 8] {
            if zeros_from(off) {
                return (off, None);
            }
            return (off, Some("garbage after the last chunk".into()));
        }
        let (series_ref, min_t, max_t, _enc, data, end) = match parse_chunk(b, off) {
            Ok(p) => p,
            Err(reason) => return (off, Some(reason)),
        };
        let crc = u32::from_be_bytes([b[end - 4], b[end - 3], b[end - 2], b[end - 1]]);
        if CASTAGNOLI.checksum(&b[off..data.end]) != crc {
            return (off, Some("checksum mismatch".into()));
        }
        if off > u32::MAX as usize {
            return (off, Some("chunk offset beyond 4 GiB".into()));
        }
        out.push(LoadedChunk {
            chunk_ref: chunk_ref(seq, off as u32),
            series_ref,
            min_t,
            max_t,
        });
        off = end;
    }
    (off, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_leaves_a_hole_that_reopens_clean_but_data_after_it_is_damage() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let size = 1 << 20;
        let (m, _, _) = ChunkDiskMapper::open(dir.path(), size).unwrap();
        let r = m.write(1, 0, 10, 1, &[7; 100]).unwrap();
        m.flush_all().unwrap();
        // Dropped without `close`, as a crash leaves it: the file keeps its full length.
        drop(m);
        let path = dir.path().join(file_name(1));
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        let (m, loaded, damage) = ChunkDiskMapper::open(dir.path(), size).unwrap();
        assert!(damage.is_none(), "{damage:?}");
        assert_eq!(loaded.len(), 1);
        assert_eq!(m.chunk(r).unwrap().1.as_ref(), &[7; 100]);
        drop(m);
        // The tail was cut at the last chunk; put the length back and write a byte far after
        // it, inside what was a hole.
        let mut f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(size).unwrap();
        f.seek(SeekFrom::Start(size - 5000)).unwrap();
        f.write_all(&[1]).unwrap();
        drop(f);
        let (_, loaded, damage) = ChunkDiskMapper::open(dir.path(), size).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(damage.unwrap().reason, "garbage after the last chunk");
    }

    #[test]
    fn chunks_round_trip_across_files_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (m, loaded, damage) = ChunkDiskMapper::open(dir.path(), 4096).unwrap();
        assert!(loaded.is_empty() && damage.is_none());
        let mut refs = Vec::new();
        for i in 0..100u64 {
            let data: Vec<u8> = (0..(i as usize * 7 % 300)).map(|j| j as u8).collect();
            let r = m.write(i + 1, i as i64 * 10, i as i64 * 10 + 9, 1, &data).unwrap();
            assert_eq!(m.chunk(r).unwrap().1.as_ref(), &data[..]);
            refs.push((r, data));
        }
        assert!((refs.last().unwrap().0 >> 32) > 2, "small files force cuts");
        m.close().unwrap();
        drop(m);
        let (m, loaded, damage) = ChunkDiskMapper::open(dir.path(), 4096).unwrap();
        assert!(damage.is_none(), "{damage:?}");
        assert_eq!(loaded.len(), 100);
        for (i, (l, (r, data))) in loaded.iter().zip(&refs).enumerate() {
            assert_eq!((l.chunk_ref, l.series_ref, l.min_t), (*r, i as u64 + 1, i as i64 * 10));
            assert_eq!(m.chunk(*r).unwrap().1.as_ref(), &data[..]);
        }
    }
}
