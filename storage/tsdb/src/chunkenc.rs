//! Chunk encodings. The float XOR ("Gorilla") encoding's bytes are laid out exactly as
//! Prometheus' `tsdb/chunkenc/xor.go` lays them out, so a chunk written here can be read by
//! Prometheus and the other way round (see FORMAT.md, "XOR chunk"). Chunks of samples with
//! start timestamps use Watchfire's own [`Encoding::XorSt`]: the XOR bytes unchanged, then an
//! [`StColumn`] (FORMAT.md, "XOR chunk with start timestamps"); series without start
//! timestamps never pay for it.

use std::fmt;

/// Chunk encoding codes, as stored in head chunk files and block chunk segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    None = 0,
    Xor = 1,
    Histogram = 2,
    FloatHistogram = 3,
    /// Watchfire's own: an XOR chunk followed by the samples' start timestamps. Upstream
    /// numbers its encodings from 0 up (its XOR2 is 4), so this one sits far above them.
    XorSt = 128,
    /// Watchfire's own packed chunk for persisted blocks ([`crate::packed`]; FORMAT.md,
    /// "Packed chunk").
    Packed = 129,
}

impl Encoding {
    /// The encoding for its code, if known.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Encoding::None),
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Histogram),
            3 => Some(Encoding::FloatHistogram),
            128 => Some(Encoding::XorSt),
            129 => Some(Encoding::Packed),
            _ => None,
        }
    }
}

/// A chunk that cannot be decoded or appended to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk ends before the number of samples its header announces.
    #[error("chunk truncated: header announces {announced} samples, data ends after {decoded}")]
    Truncated { announced: u16, decoded: u16 },
    /// A varint in the chunk is longer than 10 bytes.
    #[error("chunk has an overlong varint after {decoded} samples")]
    BadVarint { decoded: u16 },
    /// The chunk is shorter than its 2-byte header.
    #[error("chunk shorter than its header")]
    NoHeader,
    /// The chunk already holds `u16::MAX` samples.
    #[error("chunk is full")]
    Full,
    /// The start-timestamp part of an [`Encoding::XorSt`] chunk does not decode.
    #[error("chunk start timestamps corrupt: {0}")]
    BadStartTimestamps(&'static str),
    /// An [`Encoding::Packed`] chunk does not decode.
    #[error("packed chunk corrupt: {0}")]
    BadPacked(&'static str),
}

/// Bytes of the sample-count header at the start of every XOR chunk.
pub const XOR_HEADER_SIZE: usize = 2;

/// Size at which the head cuts an XOR chunk regardless of its sample count, so one chunk never
/// exceeds 1 KiB (upstream `chunkenc.MaxBytesPerXORChunkBeforeAppend`: 1024 minus the largest
/// possible sample, 19 bytes).
pub const MAX_BYTES_BEFORE_APPEND: usize = 1024 - 19;

/// Appends bits most significant first to a byte buffer. The buffer is a boxed slice whose
/// length is the capacity, with the written length beside it: 24 bytes in place of a `Vec`'s
/// 32 (with `free`). [`XorChunk`], held open by every series in the head, keeps its XOR window
/// in the writer's last two bytes, which its alignment would leave unused: 48 bytes a chunk.
#[derive(Clone, Default)]
pub(crate) struct BitWriter {
    /// Written bytes, then zeros up to the capacity.
    buf: Box<[u8]>,
    len: u32,
    /// Unwritten low bits left in the last byte (0-8).
    free: u8,
    /// The XOR window of the chunk written ([`XorChunk::write_value`]): leading-zero count,
    /// 0xff before the first window, and trailing-zero count.
    leading: u8,
    trailing: u8,
}

/// Smallest step by which a chunk's buffer grows.
const MIN_GROWTH: usize = 16;

/// The capacity to grow a buffer of `len` bytes to: an eighth more (at least
/// [`MIN_GROWTH`] bytes), rounded so that the allocation plus the allocator's 8-byte chunk
/// header fills a 16-byte multiple (glibc's malloc granularity on 64-bit).
fn grown_capacity(len: usize) -> usize {
    (len + (len / 8).max(MIN_GROWTH) + 8).next_multiple_of(16) - 8
}

impl BitWriter {
    /// A writer continuing after `bytes`, whose last byte has `free` unwritten low bits (zero).
    pub(crate) fn from_vec(bytes: Vec<u8>, free: u8) -> Self {
        BitWriter {
            len: u32::try_from(bytes.len()).expect("chunks are far smaller than 4 GiB"),
            buf: bytes.into_boxed_slice(),
            free,
            leading: 0xff,
            trailing: 0,
        }
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The written bytes.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        let mut v = self.buf.into_vec();
        v.truncate(self.len as usize);
        v
    }

    #[inline]
    fn last_byte(&mut self) -> &mut u8 {
        &mut self.buf[self.len as usize - 1]
    }

    /// Appends a zero byte. The head keeps one open chunk per series for 120 samples, so the
    /// buffer grows in small steps instead of doubling: doubling leaves a quarter of every
    /// open chunk unused on average, which over all series is more than the samples take.
    /// Chunks never exceed a few KiB, so the extra copies are short.
    #[inline]
    fn push_byte(&mut self) {
        let len = self.len as usize;
        if len == self.buf.len() {
            let mut v = std::mem::take(&mut self.buf).into_vec();
            let cap = grown_capacity(len);
            v.reserve_exact(cap - len);
            v.resize(cap, 0);
            self.buf = v.into_boxed_slice();
        }
        // Bytes past the written length are zero: filled so when the buffer grew, cleared by
        // `from_vec`'s callers, and cut by `shrink_to_fit`.
        self.len += 1;
    }

    fn shrink_to_fit(&mut self) {
        if self.buf.len() > self.len as usize {
            let mut v = std::mem::take(&mut self.buf).into_vec();
            v.truncate(self.len as usize);
            self.buf = v.into_boxed_slice();
        }
    }

    #[inline]
    fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.push_byte();
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            *self.last_byte() |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.free == 0 {
                self.push_byte();
                self.free = 8;
            }
            let take = u32::from(self.free).min(n);
            let chunk = (v >> (n - take)) & low_mask(take);
            let free = u32::from(self.free);
            *self.last_byte() |= (chunk as u8) << (free - take);
            self.free = (free - take) as u8;
            n -= take;
        }
    }

    /// XOR with the previous value: `0` when equal, `10` + bits inside the previous window,
    /// or `11` + 5 bits leading zeros + 6 bits significant length + the bits.
    pub(crate) fn write_xor_value(&mut self, prev: u64, vbits: u64) {
        let delta = vbits ^ prev;
        if delta == 0 {
            self.write_bit(false);
            return;
        }
        self.write_bit(true);
        // The leading count has 5 bits, so it is capped at 31.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        let (w_leading, w_trailing) = (self.leading, self.trailing);
        if w_leading != 0xff && leading >= w_leading && trailing >= w_trailing {
            self.write_bit(false);
            let sig = 64 - u32::from(w_leading) - u32::from(w_trailing);
            self.write_bits(delta >> w_trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.write_bit(true);
        self.write_bits(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit in 6 bits; they are written as 0 and read back as 64.
        self.write_bits(u64::from(sig) & 0x3f, 6);
        self.write_bits(delta >> trailing, sig);
    }
}

#[inline]
fn low_mask(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Reads bits most significant first from a byte slice.
#[derive(Clone)]
pub(crate) struct BitReader<B> {
    data: B,
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// The low `valid` bits are unread; bits above them are stale.
    buf: u64,
    valid: u32,
}

impl<B: AsRef<[u8]>> BitReader<B> {
    pub(crate) fn new(data: B, pos: usize) -> Self {
        BitReader {
            data,
            pos,
            buf: 0,
            valid: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        let d = self.data.as_ref();
        while self.valid <= 56 && self.pos < d.len() {
            self.buf = (self.buf << 8) | u64::from(d[self.pos]);
            self.pos += 1;
            self.valid += 8;
        }
    }

    /// Reads `n` ≤ 32 bits; `None` at the end of the data.
    #[inline]
    pub(crate) fn read_small(&mut self, n: u32) -> Option<u64> {
        if self.valid < n {
            self.refill();
            if self.valid < n {
                return None;
            }
        }
        self.valid -= n;
        Some((self.buf >> self.valid) & low_mask(n))
    }

    /// Reads `n` ≤ 64 bits.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n <= 32 {
            self.read_small(n)
        } else {
            let hi = self.read_small(n - 32)?;
            let lo = self.read_small(32)?;
            Some((hi << 32) | lo)
        }
    }

    #[inline]
    fn read_bit(&mut self) -> Option<bool> {
        self.read_small(1).map(|b| b == 1)
    }

    /// Go's `binary.ReadUvarint` over bits; `Err(true)` for an overlong varint, `Err(false)`
    /// at the end of data.
    fn read_uvarint(&mut self) -> Result<u64, bool> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.read_small(8).ok_or(false)?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(true);
                }
                return Ok(x | (b << shift));
            }
            x |= (b & 0x7f) << shift;
            shift += 7;
        }
        Err(true)
    }

    pub(crate) fn read_varint(&mut self) -> Result<i64, bool> {
        let u = self.read_uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

/// Reads one value written by [`BitWriter::write_xor_value`] into `v` (the previous value's
/// bits), keeping the XOR window in `leading` (0xff before the first) and `trailing`. False
/// when the data ends or the bits are ones no encoder writes.
#[inline]
pub(crate) fn read_xor_value<B: AsRef<[u8]>>(
    r: &mut BitReader<B>,
    v: &mut u64,
    leading: &mut u8,
    trailing: &mut u8,
) -> bool {
    let Some(changed) = r.read_bit() else {
        return false;
    };
    if !changed {
        return true;
    }
    let Some(new_window) = r.read_bit() else {
        return false;
    };
    let sig = if new_window {
        let (Some(l), Some(sig)) = (r.read_small(5), r.read_small(6)) else {
            return false;
        };
        let sig = if sig == 0 { 64 } else { sig as u32 };
        if l as u32 + sig > 64 {
            return false;
        }
        *leading = l as u8;
        *trailing = (64 - l as u32 - sig) as u8;
        sig
    } else if *leading == 0xff {
        // `10` (reuse the window) before any window exists: no encoder writes that.
        return false;
    } else {
        64 - u32::from(*leading) - u32::from(*trailing)
    };
    let Some(bits) = r.read_bits(sig) else {
        return false;
    };
    *v ^= bits << *trailing;
    true
}

/// Whether `x` fits the `nbits`-wide delta-of-delta bucket (upstream `bitRange`): the range is
/// asymmetric, `-(2^(n-1)-1) ..= 2^(n-1)`.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

fn put_uvarint(w: &mut BitWriter, mut x: u64) {
    while x >= 0x80 {
        w.write_bits((x as u8 | 0x80) as u64, 8);
        x >>= 7;
    }
    w.write_bits(x, 8);
}

pub(crate) fn put_varint(w: &mut BitWriter, x: i64) {
    put_uvarint(w, ((x << 1) ^ (x >> 63)) as u64);
}

/// The start timestamps of a chunk's samples, one per sample in order, appended beside an
/// [`XorChunk`]. Each is a zigzag varint: the first the start timestamp itself, the second its
/// difference from the first, the others the delta of deltas. Cumulative counters (a constant
/// start) and deltas at a regular interval (the start is the previous sample's time) both
/// cost one byte a sample. 0 is "unknown", as everywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StColumn {
    bytes: Vec<u8>,
    n: u16,
    last: i64,
    delta: i64,
}

impl StColumn {
    /// A column for a chunk that already holds `n` samples without start timestamps.
    pub fn with_unknown(n: u16) -> Self {
        let mut c = StColumn::default();
        for _ in 0..n {
            c.push(0);
        }
        c
    }

    /// Adds the start timestamp of the next sample.
    pub fn push(&mut self, st: i64) {
        let x = match self.n {
            0 => st,
            1 => st.wrapping_sub(self.last),
            _ => st.wrapping_sub(self.last).wrapping_sub(self.delta),
        };
        let mut z = ((x << 1) ^ (x >> 63)) as u64;
        while z >= 0x80 {
            self.bytes.push(z as u8 | 0x80);
            z >>= 7;
        }
        self.bytes.push(z as u8);
        if self.n > 0 {
            self.delta = st.wrapping_sub(self.last);
        }
        self.last = st;
        self.n = self.n.saturating_add(1);
    }

    /// The number of start timestamps.
    pub fn len(&self) -> u16 {
        self.n
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether every start timestamp is 0 (unknown), so the chunk can be written as plain XOR.
    pub fn all_unknown(&self) -> bool {
        self.bytes.iter().all(|b| *b == 0)
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The bytes of an [`Encoding::XorSt`] chunk: `xor` (an XOR chunk's bytes, whose samples
    /// this column describes), the column, and the length of `xor` as a big-endian `u32`.
    pub fn chunk_bytes(&self, xor: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(xor.len() + self.bytes.len() + 4);
        out.extend_from_slice(xor);
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&(xor.len() as u32).to_be_bytes());
        out
    }
}

/// Decodes the start timestamps of an [`Encoding::XorSt`] chunk, one per sample its XOR part
/// announces. The XOR part is the chunk's prefix, so [`XorIterator`] reads the chunk's bytes
/// as they are.
pub fn decode_start_timestamps(chunk: &[u8]) -> Result<Vec<i64>, ChunkError> {
    let bad = ChunkError::BadStartTimestamps;
    let Some(split) = chunk.len().checked_sub(4) else {
        return Err(bad("no trailer"));
    };
    let xor_len = u32::from_be_bytes([chunk[split], chunk[split + 1], chunk[split + 2], chunk[split + 3]]) as usize;
    if xor_len < XOR_HEADER_SIZE || xor_len > split {
        return Err(bad("XOR length out of range"));
    }
    let n = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let mut col = &chunk[xor_len..split];
    let mut out = Vec::with_capacity(n);
    let (mut last, mut delta) = (0i64, 0i64);
    for i in 0..n {
        let mut z = 0u64;
        let mut shift = 0;
        loop {
            let (&b, rest) = col.split_first().ok_or(bad("column ends early"))?;
            col = rest;
            if shift > 63 {
                return Err(bad("overlong varint"));
            }
            z |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        let x = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let st = match i {
            0 => x,
            1 => last.wrapping_add(x),
            _ => last.wrapping_add(delta).wrapping_add(x),
        };
        if i > 0 {
            delta = st.wrapping_sub(last);
        }
        last = st;
        out.push(st);
    }
    if !col.is_empty() {
        return Err(bad("bytes after the column"));
    }
    Ok(out)
}

/// Asks the CPU to load the cache line holding `p` without waiting for it (a no-op where
/// there is no such instruction in stable Rust).
#[inline]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch is only a hint: it reads nothing into the program and cannot fault,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// An XOR-encoded float chunk being appended to. It carries the appender state (previous
/// timestamp, delta, value and XOR window) so appending never re-reads the chunk.
#[derive(Clone)]
pub struct XorChunk {
    /// The bytes, and the current XOR window.
    w: BitWriter,
    t: i64,
    v: u64,
    t_delta: u64,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XorChunk")
            .field("samples", &self.num_samples())
            .field("bytes", &self.w.len)
            .finish()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        XorChunk {
            w: BitWriter::from_vec(vec![0; XOR_HEADER_SIZE], 0),
            t: i64::MIN,
            v: 0,
            t_delta: 0,
        }
    }

    /// Reopens encoded chunk bytes for appending, rebuilding the appender state by decoding
    /// them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ChunkError> {
        let mut it = XorIterator::new(&bytes[..])?;
        while it.next() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        // The iterator stops exactly at the end of the last sample; any bits after it within
        // the final byte are padding that later appends overwrite.
        let used_bits = it.bits_consumed();
        let (t, v, t_delta, leading, trailing) = (it.t, it.v, it.t_delta, it.leading, it.trailing);
        let mut bytes = bytes;
        bytes.truncate(used_bits.div_ceil(8));
        if used_bits % 8 != 0 {
            let last = bytes.len() - 1;
            bytes[last] &= !(0xffu8 >> (used_bits % 8));
        }
        let free = ((8 - used_bits % 8) % 8) as u8;
        let mut w = BitWriter::from_vec(bytes, free);
        w.leading = leading;
        w.trailing = trailing;
        Ok(XorChunk { w, t, v, t_delta })
    }

    /// The encoded bytes, header included.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// The number of samples.
    pub fn num_samples(&self) -> u16 {
        u16::from_be_bytes([self.w.buf[0], self.w.buf[1]])
    }

    /// Whether the chunk holds no sample. Unlike [`num_samples`](Self::num_samples) this reads
    /// only the chunk's own fields, not its bytes: the head asks it of every series it appends
    /// to, and the bytes are another cache line.
    pub fn is_empty(&self) -> bool {
        self.w.len as usize <= XOR_HEADER_SIZE
    }

    /// Asks the CPU to fetch the cache line the next append writes, without waiting for it.
    /// The head calls this when a sample is buffered and appends it at commit, after the
    /// rest of the scrape is parsed: the chunk's bytes are their own allocation, and reading
    /// them cold at commit was a tenth of the CPU a scraped sample cost.
    #[inline]
    pub fn prefetch_tail(&self) {
        prefetch(self.w.buf[..self.w.len as usize].as_ptr_range().end.wrapping_sub(1));
    }

    /// The timestamp of the last sample, `i64::MIN` when empty.
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// The value of the last sample.
    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.w.buf.len()
    }

    /// Releases spare capacity once the chunk is complete.
    pub fn shrink_to_fit(&mut self) {
        self.w.shrink_to_fit();
    }

    /// Appends a sample. Timestamps are meant to increase; any sequence round-trips because
    /// deltas use wrapping arithmetic, as upstream's unsigned deltas do.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let num = self.num_samples();
        let vbits = v.to_bits();
        let mut t_delta = 0u64;
        match num {
            0 => {
                put_varint(&mut self.w, t);
                self.w.write_bits(vbits, 64);
            }
            1 => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                put_uvarint(&mut self.w, t_delta);
                self.write_value(vbits);
            }
            u16::MAX => return Err(ChunkError::Full),
            _ => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                // Millisecond timestamps need wider buckets than Gorilla's second-based ones.
                if dod == 0 {
                    self.w.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(vbits);
            }
        }
        self.t = t;
        self.v = vbits;
        self.t_delta = t_delta;
        let n = (num + 1).to_be_bytes();
        self.w.buf[..2].copy_from_slice(&n);
        Ok(())
    }

    fn write_value(&mut self, vbits: u64) {
        self.w.write_xor_value(self.v, vbits);
    }

    /// The timestamp of the first sample, `i64::MIN` when empty. Decoded from the chunk's
    /// start (one varint), so the head need not keep it beside every open chunk.
    pub fn first_t(&self) -> i64 {
        let mut it = self.iter();
        if it.next() { it.at_t() } else { i64::MIN }
    }

    /// A cursor over the chunk's samples.
    pub fn iter(&self) -> XorIterator<&[u8]> {
        XorIterator::new(self.w.bytes()).expect("an XorChunk always has its header")
    }
}

/// A cursor over the samples of XOR chunk bytes; owns or borrows them through `B`.
#[derive(Clone)]
pub struct XorIterator<B> {
    r: BitReader<B>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    err: Option<ChunkError>,
}

impl<B> fmt::Debug for XorIterator<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XorIterator")
            .field("total", &self.total)
            .field("read", &self.read)
            .finish()
    }
}

impl<B: AsRef<[u8]>> XorIterator<B> {
    /// A cursor over encoded chunk bytes (header included).
    pub fn new(data: B) -> Result<Self, ChunkError> {
        let d = data.as_ref();
        if d.len() < XOR_HEADER_SIZE {
            return Err(ChunkError::NoHeader);
        }
        let total = u16::from_be_bytes([d[0], d[1]]);
        Ok(XorIterator {
            r: BitReader::new(data, XOR_HEADER_SIZE),
            total,
            read: 0,
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
            err: None,
        })
    }

    /// The number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    fn bits_consumed(&self) -> usize {
        self.r.pos * 8 - self.r.valid as usize
    }

    fn fail(&mut self, overlong: bool) -> bool {
        self.err = Some(if overlong {
            ChunkError::BadVarint { decoded: self.read }
        } else {
            ChunkError::Truncated {
                announced: self.total,
                decoded: self.read,
            }
        });
        false
    }

    /// Advances to the next sample; false at the end or on corrupt data (see `err`).
    // A cursor with `at`/`seek`/`err` like `SampleIterator`, not an `Iterator`: the hot loop
    // avoids building an `Option` per sample.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> bool {
        if self.err.is_some() || self.read == self.total {
            return false;
        }
        match self.read {
            0 => {
                let t = match self.r.read_varint() {
                    Ok(t) => t,
                    Err(o) => return self.fail(o),
                };
                let Some(v) = self.r.read_bits(64) else {
                    return self.fail(false);
                };
                self.t = t;
                self.v = v;
                self.read = 1;
                true
            }
            1 => {
                let d = match self.r.read_uvarint() {
                    Ok(d) => d,
                    Err(o) => return self.fail(o),
                };
                self.t_delta = d;
                self.t = self.t.wrapping_add(d as i64);
                self.read_value()
            }
            _ => {
                // The bucket prefix is up to four bits: 0, 10, 110, 1110 or 1111.
                let mut prefix = 0u8;
                for _ in 0..4 {
                    let Some(bit) = self.r.read_bit() else {
                        return self.fail(false);
                    };
                    prefix = (prefix << 1) | u8::from(bit);
                    if !bit {
                        break;
                    }
                }
                let dod = match prefix {
                    0b0 => 0i64,
                    0b1111 => match self.r.read_bits(64) {
                        Some(b) => b as i64,
                        None => return self.fail(false),
                    },
                    _ => {
                        let size = match prefix {
                            0b10 => 14,
                            0b110 => 17,
                            _ => 20,
                        };
                        let Some(mut b) = self.r.read_small(size) else {
                            return self.fail(false);
                        };
                        // Values above the positive limit are negative numbers in two's complement.
                        if b > 1 << (size - 1) {
                            b = b.wrapping_sub(1 << size);
                        }
                        b as i64
                    }
                };
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()
            }
        }
    }

    fn read_value(&mut self) -> bool {
        if !read_xor_value(&mut self.r, &mut self.v, &mut self.leading, &mut self.trailing) {
            return self.fail(false);
        }
        self.read += 1;
        true
    }

    /// Advances to the first sample at or after `t`; never moves backwards.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.err.is_some() {
            return false;
        }
        while self.read == 0 || self.t < t {
            if !self.next() {
                return false;
            }
        }
        true
    }

    /// The current sample.
    pub fn at(&self) -> (i64, f64) {
        (self.t, f64::from_bits(self.v))
    }

    /// The current timestamp.
    pub fn at_t(&self) -> i64 {
        self.t
    }

    /// Why iteration stopped early, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    /// The position of the current sample in the chunk (0 for the first).
    pub fn index(&self) -> usize {
        usize::from(self.read).saturating_sub(1)
    }
}

/// A cursor over a chunk of any float encoding a block or the head stores.
#[derive(Clone, Debug)]
pub enum ChunkCursor<B> {
    /// An XOR chunk, or the XOR part of an [`Encoding::XorSt`] chunk.
    Xor(XorIterator<B>),
    /// An [`Encoding::Packed`] chunk, decoded when opened.
    Packed(crate::packed::PackedCursor),
}

impl<B: AsRef<[u8]>> ChunkCursor<B> {
    /// A cursor over `bytes` of encoding `enc`, before the first sample.
    pub fn new(enc: Encoding, bytes: B) -> Result<Self, ChunkError> {
        match enc {
            Encoding::Packed => {
                let mut c = crate::packed::PackedCursor::default();
                c.reset(bytes.as_ref())?;
                Ok(ChunkCursor::Packed(c))
            }
            _ => XorIterator::new(bytes).map(ChunkCursor::Xor),
        }
    }

    /// Advances to the next sample; false at the end or on corrupt data (see `err`).
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> bool {
        match self {
            ChunkCursor::Xor(it) => it.next(),
            ChunkCursor::Packed(it) => it.next(),
        }
    }

    /// Advances to the first sample at or after `t`; never moves backwards.
    #[inline]
    pub fn seek(&mut self, t: i64) -> bool {
        match self {
            ChunkCursor::Xor(it) => it.seek(t),
            ChunkCursor::Packed(it) => it.seek(t),
        }
    }

    /// The current sample.
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        match self {
            ChunkCursor::Xor(it) => it.at(),
            ChunkCursor::Packed(it) => it.at(),
        }
    }

    /// The current timestamp.
    #[inline]
    pub fn at_t(&self) -> i64 {
        match self {
            ChunkCursor::Xor(it) => it.at_t(),
            ChunkCursor::Packed(it) => it.at_t(),
        }
    }

    /// Why iteration stopped early, if it did (a packed chunk fails when opened instead).
    pub fn err(&self) -> Option<&ChunkError> {
        match self {
            ChunkCursor::Xor(it) => it.err(),
            ChunkCursor::Packed(_) => None,
        }
    }

    /// The position of the current sample in the chunk (0 for the first).
    #[inline]
    pub fn index(&self) -> usize {
        match self {
            ChunkCursor::Xor(it) => it.index(),
            ChunkCursor::Packed(it) => it.index(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use watchfire_model::{STALE_NAN_BITS, stale_nan};

    fn decode(bytes: &[u8]) -> Vec<(i64, u64)> {
        let mut it = XorIterator::new(bytes).unwrap();
        let mut out = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            out.push((t, v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        out
    }

    fn encode(samples: &[(i64, f64)]) -> XorChunk {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v).unwrap();
        }
        c
    }

    #[test]
    fn open_chunks_keep_little_spare_capacity() {
        // A counter with jitter: a few bytes per sample, over the chunk sizes the head sees.
        let mut c = XorChunk::new();
        let mut v = 0.0;
        for i in 0..240i64 {
            v += (i * 7919 % 13) as f64 * 0.37;
            c.append(1_000 + i * 10_000 + i % 3, v).unwrap();
            let (len, cap) = (c.bytes().len(), c.heap_bytes());
            assert!(cap >= len);
            assert!(cap - len <= (len / 8).max(MIN_GROWTH) + 16, "len {len} cap {cap}");
        }
        assert_eq!(decode(c.bytes()).len(), 240);
    }

    #[test]
    fn is_empty_agrees_with_the_sample_count() {
        let empty = XorChunk::new();
        assert!(empty.is_empty() && empty.num_samples() == 0);
        assert!(XorChunk::from_bytes(empty.bytes().to_vec()).unwrap().is_empty());
        // A first sample of zeros still writes bits.
        for samples in [&[(0, 0.0)][..], &[(-5, 1.0)], &[(1_000, 1.0), (2_000, 2.0)]] {
            let c = encode(samples);
            assert!(!c.is_empty() && c.num_samples() > 0);
            assert!(!XorChunk::from_bytes(c.bytes().to_vec()).unwrap().is_empty());
        }
    }

    #[test]
    fn first_t_is_the_first_timestamp() {
        assert_eq!(XorChunk::new().first_t(), i64::MIN);
        assert_eq!(encode(&[(-5, 1.0)]).first_t(), -5);
        assert_eq!(encode(&[(1_000, 1.0), (2_000, 2.0), (3_500, 0.5)]).first_t(), 1_000);
    }

    #[test]
    fn grown_capacity_fills_allocator_chunks() {
        for len in [0, 2, 3, 24, 100, 1000, 5000] {
            let cap = grown_capacity(len);
            assert!(cap >= len + MIN_GROWTH.min(len / 8).max(1));
            assert!(cap > len);
            assert_eq!((cap + 8) % 16, 0);
        }
    }

    #[test]
    fn matches_prometheus_bytes_for_a_regular_series() {
        // Worked by hand from the format: count 3; varint(1000) = zigzag 2000 = d0 0f; 1.0 as
        // f64 BE; uvarint(15) = 0f; 2.0 xor 1.0 = 0x7ff0... → leading 1, sig 11 → `11 00001
        // 001011 11111111111`; dod 0 → `0`; value 2.0 unchanged → `0`.
        let c = encode(&[(1000, 1.0), (1015, 2.0), (1030, 2.0)]);
        let b = c.bytes();
        assert_eq!(&b[..2], &[0, 3]);
        assert_eq!(&b[2..4], &[0xd0, 0x0f]);
        assert_eq!(&b[4..12], &1.0f64.to_bits().to_be_bytes());
        assert_eq!(b[12], 0x0f);
        // Bits after the t1 delta: 1 1 00001 001011 11111111111 0 0 → padded to 4 bytes.
        let bits = "11000010010111111111111100";
        let mut expect = Vec::new();
        for chunk in bits.as_bytes().chunks(8) {
            let mut byte = 0u8;
            for (i, c) in chunk.iter().enumerate() {
                if *c == b'1' {
                    byte |= 0x80 >> i;
                }
            }
            expect.push(byte);
        }
        assert_eq!(&b[13..], &expect[..]);
        assert_eq!(
            decode(b),
            vec![
                (1000, 1.0f64.to_bits()),
                (1015, 2.0f64.to_bits()),
                (1030, 2.0f64.to_bits())
            ]
        );
    }

    #[test]
    fn special_floats_survive_bit_exact() {
        let vals = [
            stale_nan(),
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE / 3.0,
        ];
        let samples: Vec<(i64, f64)> = vals.iter().enumerate().map(|(i, v)| (i as i64 * 10, *v)).collect();
        let got = decode(encode(&samples).bytes());
        assert_eq!(got[0].1, STALE_NAN_BITS);
        let want: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn seek_is_forward_only() {
        let c = encode(&[(10, 1.0), (20, 2.0), (30, 3.0)]);
        let mut it = c.iter();
        assert!(it.seek(15));
        assert_eq!(it.at(), (20, 2.0));
        assert!(it.seek(0));
        assert_eq!(it.at_t(), 20);
        assert!(it.seek(30));
        assert!(!it.seek(31));
    }

    #[test]
    fn truncated_chunk_is_an_error_not_a_panic() {
        let c = encode(&[(10, 1.0), (20, 2.5), (35, 3.25), (36, -7.0)]);
        for cut in 0..c.bytes().len() {
            let Ok(mut it) = XorIterator::new(&c.bytes()[..cut]) else {
                assert!(cut < 2);
                continue;
            };
            while it.next() {}
            assert!(it.err().is_some(), "cut at {cut} decoded silently");
        }
    }

    #[test]
    fn start_timestamps_cost_a_byte_a_sample_for_counters_and_regular_deltas() {
        let (mut cumulative, mut delta) = (StColumn::default(), StColumn::default());
        for i in 0..120 {
            cumulative.push(1_000);
            delta.push(1_000 + i * 15_000);
        }
        assert_eq!(cumulative.heap_bytes().min(cumulative.bytes.len()), 2 + 119);
        assert_eq!(delta.bytes.len(), 2 + 3 + 118);
        let mut with_unknown = StColumn::with_unknown(3);
        with_unknown.push(5);
        assert!(!with_unknown.all_unknown());
        let mut c = XorChunk::new();
        for t in 0..4 {
            c.append(t, 0.0).unwrap();
        }
        let bytes = with_unknown.chunk_bytes(c.bytes());
        assert_eq!(decode_start_timestamps(&bytes).unwrap(), [0, 0, 0, 5]);
        // A truncated trailer or column is an error, not a panic.
        assert!(decode_start_timestamps(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_start_timestamps(&bytes[..3]).is_err());
    }

    #[test]
    fn full_chunk_refuses_appends() {
        let mut c = XorChunk::new();
        for t in 0..u16::MAX as i64 {
            c.append(t, 1.0).unwrap();
        }
        assert_eq!(c.append(1 << 20, 1.0), Err(ChunkError::Full));
        assert_eq!(decode(c.bytes()).len(), u16::MAX as usize);
    }

    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(stale_nan()),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            Just(1.0),
            (0u64..1 << 52).prop_map(f64::from_bits),
            (-1000i32..1000).prop_map(f64::from),
        ]
    }

    fn any_timestamps() -> impl Strategy<Value = Vec<i64>> {
        prop_oneof![
            // Irregular but increasing, crossing every delta-of-delta bucket.
            (
                any::<i32>(),
                proptest::collection::vec(
                    prop_oneof![Just(15_000i64), 0i64..100, 0i64..20_000, 0i64..600_000, 0i64..(1 << 40)],
                    0..300,
                )
            )
                .prop_map(|(start, deltas)| {
                    let mut t = i64::from(start);
                    let mut out = vec![t];
                    for d in deltas {
                        t += d;
                        out.push(t);
                    }
                    out
                }),
            // Anything at all, including decreasing and extreme values.
            proptest::collection::vec(any::<i64>(), 1..50),
        ]
    }

    proptest! {
        #[test]
        fn round_trips_any_samples(ts in any_timestamps(), vs in proptest::collection::vec(any_float(), 300)) {
            let samples: Vec<(i64, f64)> = ts.iter().zip(vs.iter().cycle()).map(|(t, v)| (*t, *v)).collect();
            let c = encode(&samples);
            let want: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            prop_assert_eq!(decode(c.bytes()), want.clone());
            prop_assert_eq!(c.num_samples() as usize, samples.len());
            // Reopening for append continues the same stream.
            let mut reopened = XorChunk::from_bytes(c.bytes().to_vec()).unwrap();
            let mut direct = c.clone();
            reopened.append(ts[ts.len() - 1].wrapping_add(7), 42.5).unwrap();
            direct.append(ts[ts.len() - 1].wrapping_add(7), 42.5).unwrap();
            prop_assert_eq!(reopened.bytes(), direct.bytes());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(mut it) = XorIterator::new(&bytes[..]) {
                let mut n = 0;
                while it.next() { n += 1; }
                prop_assert!(n <= it.num_samples() as usize);
            }
            let _ = decode_start_timestamps(&bytes);
        }

        #[test]
        fn start_timestamps_round_trip(ts in any_timestamps(), sts in proptest::collection::vec(
            prop_oneof![Just(0i64), any::<i64>(), -1000i64..1000], 300)) {
            let n = ts.len().min(sts.len());
            let samples: Vec<(i64, f64)> = ts[..n].iter().map(|t| (*t, 1.0)).collect();
            let sts = &sts[..n];
            let c = encode(&samples);
            let mut col = StColumn::default();
            for st in sts {
                col.push(*st);
            }
            prop_assert_eq!(col.all_unknown(), sts.iter().all(|s| *s == 0));
            let bytes = col.chunk_bytes(c.bytes());
            prop_assert_eq!(decode_start_timestamps(&bytes).unwrap(), sts.to_vec());
            // The XOR part reads as it is.
            let got: Vec<i64> = decode(&bytes).into_iter().map(|(t, _)| t).collect();
            prop_assert_eq!(got, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        }
    }
}
