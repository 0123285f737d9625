//! Chunk segment files of a block (`<block>/chunks/000001`, ...), laid out as upstream's
//! `tsdb/chunks/chunks.go` writes them; see FORMAT.md, "Block chunk segments". Segments are
//! read through read-only memory maps; a chunk's checksum is verified every time it is read.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::Error;
use crate::chunks_head::MappedChunk;
use crate::encoding::{Dec, put_uvarint};
use crate::wal::CASTAGNOLI;

/// Segment magic number.
pub const MAGIC: u32 = 0x85BD_40DD;
/// Segment format version.
pub const VERSION: u8 = 1;
/// Magic, version, three padding bytes.
pub const SEGMENT_HEADER_SIZE: u64 = 8;
/// Upstream's maximum segment size (`DefaultChunkSegmentSize`, 512 MiB).
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// The file name of segment index `i` (0-based; files are numbered from 1).
pub fn segment_name(i: u32) -> String {
    format!("{:06}", u64::from(i) + 1)
}

/// A chunk's reference: 0-based segment index in the high 32 bits, byte offset in the low 32.
pub fn chunk_ref(segment: u32, offset: u32) -> u64 {
    (u64::from(segment) << 32) | u64::from(offset)
}

/// Writes the chunks of a new block.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    max_size: u64,
    cur: Option<(BufWriter<File>, PathBuf)>,
    segment: u32,
    pos: u64,
    done: Vec<(File, PathBuf)>,
    buf: Vec<u8>,
    /// Bytes written over all segments.
    pub(crate) bytes: u64,
}

impl ChunkWriter {
    pub(crate) fn new(dir: &Path, max_size: u64) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_size: max_size.clamp(4096, u32::MAX as u64),
            cur: None,
            segment: 0,
            pos: 0,
            done: Vec::new(),
            buf: Vec::new(),
            bytes: 0,
        })
    }

    fn cut(&mut self) -> Result<(), Error> {
        let next = match self.cur.take() {
            Some((w, path)) => {
                let f = w
                    .into_inner()
                    .map_err(|e| Error::io("write chunk segment", &path, e.into_error()))?;
                self.done.push((f, path));
                self.segment + 1
            }
            None => 0,
        };
        let path = self.dir.join(segment_name(next));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create chunk segment", &path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut header = [0u8; SEGMENT_HEADER_SIZE as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        w.write_all(&header)
            .map_err(|e| Error::io("write chunk segment", &path, e))?;
        self.cur = Some((w, path));
        self.segment = next;
        self.pos = SEGMENT_HEADER_SIZE;
        self.bytes += SEGMENT_HEADER_SIZE;
        Ok(())
    }

    /// Appends one chunk and returns its reference.
    pub(crate) fn write(&mut self, encoding: u8, data: &[u8]) -> Result<u64, Error> {
        let need = (10 + 1 + data.len() + 4) as u64;
        if self.cur.is_none() || (self.pos + need > self.max_size && self.pos > SEGMENT_HEADER_SIZE) {
            self.cut()?;
        }
        if self.pos + need > u32::MAX as u64 {
            return Err(Error::Corruption {
                file: self.dir.clone(),
                offset: self.pos,
                reason: "chunk does not fit in a 4 GiB segment".into(),
            });
        }
        self.buf.clear();
        put_uvarint(&mut self.buf, data.len() as u64);
        let crc_from = self.buf.len();
        self.buf.push(encoding);
        self.buf.extend_from_slice(data);
        let crc = CASTAGNOLI.checksum(&self.buf[crc_from..]);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let r = chunk_ref(self.segment, self.pos as u32);
        let (w, path) = self.cur.as_mut().expect("cut installs a segment");
        w.write_all(&self.buf)
            .map_err(|e| Error::io("write chunk segment", path, e))?;
        self.pos += self.buf.len() as u64;
        self.bytes += self.buf.len() as u64;
        Ok(r)
    }

    /// Flushes and fsyncs every segment.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if let Some((w, path)) = self.cur.take() {
            let f = w
                .into_inner()
                .map_err(|e| Error::io("write chunk segment", &path, e.into_error()))?;
            self.done.push((f, path));
        }
        for (f, path) in &self.done {
            f.sync_all().map_err(|e| Error::io("fsync chunk segment", path, e))?;
        }
        crate::wal::sync_dir(&self.dir)
    }
}

/// Reads the chunks of an open block.
#[derive(Debug)]
pub(crate) struct ChunkReader {
    dir: PathBuf,
    segments: Vec<Arc<Mmap>>,
    pub(crate) size: u64,
}

fn corrupt(file: PathBuf, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corruption {
        file,
        offset,
        reason: reason.into(),
    }
}

impl ChunkReader {
    /// Maps every segment in `dir` and checks their headers. Segment files must be numbered
    /// 1, 2, ... without gaps.
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let mut names: Vec<u32> = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
            let e = e.map_err(|e| Error::io("read directory", dir, e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            match name.parse::<u32>() {
                Ok(n) if name.bytes().all(|b| b.is_ascii_digit()) => names.push(n),
                _ => return Err(corrupt(dir.join(name), 0, "unexpected file in chunks directory")),
            }
        }
        names.sort_unstable();
        let mut segments = Vec::with_capacity(names.len());
        let mut size = 0;
        for (i, &n) in names.iter().enumerate() {
            let path = dir.join(segment_name(i as u32));
            if n != i as u32 + 1 {
                return Err(corrupt(path, 0, format!("chunk segment {:06} is missing", i + 1)));
            }
            let f = File::open(&path).map_err(|e| Error::io("open chunk segment", &path, e))?;
            // SAFETY: block files are immutable once their block directory has been renamed into
            // place: nothing writes to or truncates them while the block is open (deletion only
            // unlinks, which leaves existing mappings intact), and the mapping is read-only.
            let map = unsafe { Mmap::map(&f) }.map_err(|e| Error::io("mmap chunk segment", &path, e))?;
            if map.len() < SEGMENT_HEADER_SIZE as usize || map[..4] != MAGIC.to_be_bytes() {
                return Err(corrupt(path, 0, "bad chunk segment magic number"));
            }
            if map[4] != VERSION {
                return Err(corrupt(
                    path,
                    4,
                    format!("unsupported chunk segment version {}", map[4]),
                ));
            }
            size += map.len() as u64;
            segments.push(Arc::new(map));
        }
        Ok(ChunkReader {
            dir: dir.to_path_buf(),
            segments,
            size,
        })
    }

    /// The encoding and data of chunk `r`, after checking its CRC.
    pub(crate) fn chunk(&self, r: u64) -> Result<(u8, MappedChunk), Error> {
        let seg = (r >> 32) as usize;
        let off = (r & 0xffff_ffff) as usize;
        let path = || self.dir.join(segment_name(seg as u32));
        let map = self
            .segments
            .get(seg)
            .ok_or_else(|| corrupt(path(), off as u64, "chunk reference to a missing segment"))?;
        if off < SEGMENT_HEADER_SIZE as usize {
            return Err(corrupt(path(), off as u64, "chunk reference inside the segment header"));
        }
        let mut d = Dec::new(map, off);
        let len = d.uvarint().map_err(|e| corrupt(path(), off as u64, e))?;
        let start = d.pos;
        let len = usize::try_from(len).map_err(|_| corrupt(path(), off as u64, "chunk length too large"))?;
        let body = d.bytes(1 + len).map_err(|e| corrupt(path(), off as u64, e))?;
        let crc = d.be32().map_err(|e| corrupt(path(), off as u64, e))?;
        if CASTAGNOLI.checksum(body) != crc {
            return Err(corrupt(path(), off as u64, "chunk checksum mismatch"));
        }
        Ok((body[0], MappedChunk::new(map.clone(), start + 1, start + 1 + len)))
    }

    /// Checks every chunk's CRC: a full read of the block's chunk data.
    pub(crate) fn verify_all(&self) -> Result<u64, Error> {
        let mut n = 0;
        for (i, map) in self.segments.iter().enumerate() {
            let mut off = SEGMENT_HEADER_SIZE as usize;
            while off < map.len() {
                let (_, c) = self.chunk(chunk_ref(i as u32, off as u32))?;
                off = c.end() + 4;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_across_segments_and_bad_crc_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 4096).unwrap();
        let mut refs = Vec::new();
        for i in 0..200usize {
            let data: Vec<u8> = (0..i % 90).map(|j| (i + j) as u8).collect();
            refs.push((w.write(1, &data).unwrap(), data));
        }
        w.finish().unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        assert!(r.segments.len() > 1);
        assert_eq!(r.verify_all().unwrap(), 200);
        for (cr, data) in &refs {
            let (enc, c) = r.chunk(*cr).unwrap();
            assert_eq!((enc, c.as_ref()), (1, &data[..]));
        }
        drop(r);
        let p = dir.path().join(segment_name(0));
        let mut b = fs::read(&p).unwrap();
        b[20] ^= 1;
        fs::write(&p, b).unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        assert!(r.verify_all().is_err());
        assert!(r.chunk(u64::MAX).is_err());
    }
}
