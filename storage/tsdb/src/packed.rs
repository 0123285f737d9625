//! Watchfire's packed float chunk ([`Encoding::Packed`](crate::chunkenc::Encoding::Packed),
//! code 129), written into persisted blocks by compaction. The head keeps appending to XOR
//! chunks (cheap to extend one sample at a time); a block is written once and read many
//! times, so its chunks are encoded from all their samples at once and may be larger.
//!
//! Timestamps are stored as deltas of deltas in frames of bit-packed integers: at a regular
//! scrape interval a frame of zeros costs nothing beyond a shared header byte, where XOR
//! spends a bit on every sample. Values that are decimals of up to 18 fractional digits (what
//! exporters print: byte counts, ticks, milliseconds, hundredths) are stored as integers
//! scaled by a power of ten, as deltas or deltas of deltas in the same frames; a value must
//! decode to exactly its bits, or the chunk's values fall back to XOR coding. FORMAT.md,
//! "Packed chunk", has every bit.

use crate::chunkenc::{BitReader, BitWriter, ChunkError, put_varint, read_xor_value};

/// Values per frame of a packed integer stream.
const FRAME: usize = 16;
/// The largest decimal scale tried: values with more fractional digits use XOR coding.
const MAX_SCALE: usize = 18;
/// Header bytes from this one up are runs of all-zero frames: `h - ZERO_RUN + 1` frames.
const ZERO_RUN: u64 = 128;
/// Magnitudes at and above this are not exact in a float; such values use XOR coding.
const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Value codings, 2 bits after the timestamps.
const MODE_DELTA: u64 = 0;
const MODE_DOD: u64 = 1;
const MODE_XOR: u64 = 2;

/// Most samples compaction puts in one packed chunk: a whole 2 h block of a series scraped
/// every 7.5 s or slower. Decoding a chunk is one pass, and a query seeks in it by binary
/// search.
pub const MAX_SAMPLES: usize = 1024;

const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
];

#[inline]
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline]
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// The value `m / 10^scale` decodes to.
#[inline]
fn scaled(m: i64, scale: usize) -> f64 {
    m as f64 / POW10[scale]
}

/// The integer `m` with `m / 10^scale` exactly `v` (bit for bit), if there is one.
#[inline]
fn at_scale(v: f64, scale: usize) -> Option<i64> {
    let m = (v * POW10[scale]).round();
    if m.is_nan() || m.abs() >= EXACT {
        return None;
    }
    let m = m as i64;
    (scaled(m, scale).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at which every value is an exact decimal, with the scaled integers.
fn decimal(values: impl Iterator<Item = f64> + Clone) -> Option<(usize, Vec<i64>)> {
    let mut scale = 0;
    for v in values.clone() {
        while at_scale(v, scale).is_none() {
            scale += 1;
            if scale > MAX_SCALE {
                return None;
            }
        }
    }
    // A larger scale than a value needs names the same decimal, but check every value at the
    // common one rather than rely on it.
    values
        .map(|v| at_scale(v, scale))
        .collect::<Option<Vec<_>>>()
        .map(|ms| (scale, ms))
}

/// Bits [`write_stream`] spends on `zz`.
fn stream_bits(zz: &[u64]) -> usize {
    let mut bits = 0;
    let mut in_run = 0u64;
    for f in zz.chunks(FRAME) {
        let width = 64 - f.iter().fold(0, |a, z| a | z).leading_zeros() as usize;
        if width == 0 {
            if in_run == 0 || in_run == 256 - ZERO_RUN {
                bits += 8;
                in_run = 0;
            }
            in_run += 1;
        } else {
            in_run = 0;
            bits += 8 + width * f.len();
        }
    }
    bits
}

/// Writes `zz` as frames of [`FRAME`] values (the last may be shorter): a header byte, the
/// frame's bit width `w` ≤ 64, then each value in `w` bits; or a header byte ≥ 128 standing for
/// `h - 127` frames of zeros.
fn write_stream(w: &mut BitWriter, zz: &[u64]) {
    let frames: Vec<&[u64]> = zz.chunks(FRAME).collect();
    let mut i = 0;
    while i < frames.len() {
        let width = 64 - frames[i].iter().fold(0, |a, z| a | z).leading_zeros();
        if width == 0 {
            let mut run = 1;
            while run < 256 - ZERO_RUN as usize && frames.get(i + run).is_some_and(|f| f.iter().all(|z| *z == 0)) {
                run += 1;
            }
            w.write_bits(ZERO_RUN + run as u64 - 1, 8);
            i += run;
            continue;
        }
        w.write_bits(u64::from(width), 8);
        for &z in frames[i] {
            w.write_bits(z, width);
        }
        i += 1;
    }
}

/// Reads `n` values written by [`write_stream`].
fn read_stream<B: AsRef<[u8]>>(r: &mut BitReader<B>, n: usize, out: &mut Vec<u64>) -> Result<(), ChunkError> {
    out.clear();
    out.reserve(n);
    while out.len() < n {
        let h = r
            .read_small(8)
            .ok_or(ChunkError::BadPacked("data ends inside the samples"))?;
        if h >= ZERO_RUN {
            for _ in 0..=(h - ZERO_RUN) {
                let len = FRAME.min(n - out.len());
                if len == 0 {
                    return Err(ChunkError::BadPacked("zero frames past the last sample"));
                }
                out.resize(out.len() + len, 0);
            }
        } else if h <= 64 {
            let len = FRAME.min(n - out.len());
            for _ in 0..len {
                out.push(
                    r.read_bits(h as u32)
                        .ok_or(ChunkError::BadPacked("data ends inside the samples"))?,
                );
            }
        } else {
            return Err(ChunkError::BadPacked("frame width above 64"));
        }
    }
    Ok(())
}

/// Encodes `samples` (at least one, at most `u16::MAX`) as a packed chunk. Any timestamps and
/// any floats round-trip bit for bit; timestamps are meant to increase.
pub fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let n = samples.len();
    assert!(
        (1..=usize::from(u16::MAX)).contains(&n),
        "a packed chunk holds 1..=65535 samples"
    );
    let mut w = BitWriter::from_vec((n as u16).to_be_bytes().to_vec(), 0);
    let t0 = samples[0].0;
    w.write_bits(t0 as u64, 64);
    if n >= 2 {
        put_varint(&mut w, samples[1].0.wrapping_sub(t0));
    }
    if n >= 3 {
        let dods: Vec<u64> = samples
            .windows(3)
            .map(|s| zigzag(s[2].0.wrapping_sub(s[1].0).wrapping_sub(s[1].0.wrapping_sub(s[0].0))))
            .collect();
        write_stream(&mut w, &dods);
    }
    match decimal(samples.iter().map(|s| s.1)) {
        Some((scale, ms)) => {
            // The deltas' greatest common divisor is divided out: byte gauges move in pages
            // (multiples of 4096), which XOR gets for free as trailing zero bits.
            let step = ms
                .windows(2)
                .fold(0u64, |g, m| gcd(g, m[1].wrapping_sub(m[0]).unsigned_abs()))
                .max(1);
            let deltas: Vec<i64> = ms.windows(2).map(|m| m[1].wrapping_sub(m[0]) / step as i64).collect();
            let dz: Vec<u64> = deltas.iter().map(|d| zigzag(*d)).collect();
            let ddz: Vec<u64> = deltas.windows(2).map(|d| zigzag(d[1].wrapping_sub(d[0]))).collect();
            // The first delta of the dod coding is a varint of at most 10 bytes; count it as
            // what it costs.
            let first = deltas
                .first()
                .map_or(0, |d| 8 * (64 - zigzag(*d).leading_zeros() as usize).div_ceil(7).max(1));
            let dod = stream_bits(&ddz) + first < stream_bits(&dz);
            w.write_bits(if dod { MODE_DOD } else { MODE_DELTA }, 2);
            w.write_bits(scale as u64, 5);
            put_varint(&mut w, step as i64);
            put_varint(&mut w, ms[0]);
            if dod {
                if let Some(d) = deltas.first() {
                    put_varint(&mut w, *d);
                }
                write_stream(&mut w, &ddz);
            } else {
                write_stream(&mut w, &dz);
            }
        }
        None => {
            w.write_bits(MODE_XOR, 2);
            let mut prev = samples[0].1.to_bits();
            w.write_bits(prev, 64);
            for s in &samples[1..] {
                let v = s.1.to_bits();
                w.write_xor_value(prev, v);
                prev = v;
            }
        }
    }
    w.into_vec()
}

/// The number of samples a packed chunk's header announces.
pub fn num_samples(bytes: &[u8]) -> Result<usize, ChunkError> {
    match bytes {
        [a, b, ..] => Ok(usize::from(u16::from_be_bytes([*a, *b]))),
        _ => Err(ChunkError::NoHeader),
    }
}

fn varint<B: AsRef<[u8]>>(r: &mut BitReader<B>) -> Result<i64, ChunkError> {
    r.read_varint().map_err(|overlong| {
        ChunkError::BadPacked(if overlong {
            "overlong varint"
        } else {
            "data ends inside the samples"
        })
    })
}

/// Decodes a packed chunk into `ts` and `vs` (cleared first).
pub fn decode(bytes: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Result<(), ChunkError> {
    let n = num_samples(bytes)?;
    ts.clear();
    vs.clear();
    if n == 0 {
        return Err(ChunkError::BadPacked("no samples"));
    }
    let short = ChunkError::BadPacked("data ends inside the samples");
    let mut r = BitReader::new(bytes, 2);
    let mut zz = Vec::new();
    ts.reserve(n);
    vs.reserve(n);
    let mut t = r.read_bits(64).ok_or(short.clone())? as i64;
    ts.push(t);
    if n >= 2 {
        let mut d = varint(&mut r)?;
        t = t.wrapping_add(d);
        ts.push(t);
        read_stream(&mut r, n - 2, &mut zz)?;
        for z in &zz {
            d = d.wrapping_add(unzigzag(*z));
            t = t.wrapping_add(d);
            ts.push(t);
        }
    }
    let mode = r.read_small(2).ok_or(short.clone())?;
    match mode {
        MODE_DELTA | MODE_DOD => {
            let scale = r.read_small(5).ok_or(short.clone())? as usize;
            if scale > MAX_SCALE {
                return Err(ChunkError::BadPacked("decimal scale above 18"));
            }
            let step = varint(&mut r)?;
            if step <= 0 {
                return Err(ChunkError::BadPacked("delta step not positive"));
            }
            let mut m = varint(&mut r)?;
            vs.push(scaled(m, scale));
            if mode == MODE_DELTA {
                read_stream(&mut r, n - 1, &mut zz)?;
                for z in &zz {
                    m = m.wrapping_add(unzigzag(*z).wrapping_mul(step));
                    vs.push(scaled(m, scale));
                }
            } else if n >= 2 {
                let mut d = varint(&mut r)?;
                m = m.wrapping_add(d.wrapping_mul(step));
                vs.push(scaled(m, scale));
                read_stream(&mut r, n - 2, &mut zz)?;
                for z in &zz {
                    d = d.wrapping_add(unzigzag(*z));
                    m = m.wrapping_add(d.wrapping_mul(step));
                    vs.push(scaled(m, scale));
                }
            }
        }
        MODE_XOR => {
            let mut v = r.read_bits(64).ok_or(short.clone())?;
            vs.push(f64::from_bits(v));
            let (mut leading, mut trailing) = (0xff, 0);
            for _ in 1..n {
                if !read_xor_value(&mut r, &mut v, &mut leading, &mut trailing) {
                    return Err(ChunkError::BadPacked("bad XOR value"));
                }
                vs.push(f64::from_bits(v));
            }
        }
        _ => return Err(ChunkError::BadPacked("unknown value coding")),
    }
    Ok(())
}

/// A cursor over a decoded packed chunk, with the interface of
/// [`XorIterator`](crate::chunkenc::XorIterator).
#[derive(Clone, Debug, Default)]
pub struct PackedCursor {
    ts: Vec<i64>,
    vs: Vec<f64>,
    /// Samples consumed: the current one is `read - 1`.
    read: usize,
}

impl PackedCursor {
    /// Decodes `bytes`, reusing the buffers of `self`; the cursor stands before the first
    /// sample.
    pub fn reset(&mut self, bytes: &[u8]) -> Result<(), ChunkError> {
        self.read = 0;
        decode(bytes, &mut self.ts, &mut self.vs)
    }

    /// Advances to the next sample; false at the end.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> bool {
        if self.read < self.ts.len() {
            self.read += 1;
            true
        } else {
            false
        }
    }

    /// Advances to the first sample at or after `t`; never moves backwards.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.read > 0 && self.ts[self.read - 1] >= t {
            return true;
        }
        let from = self.read.saturating_sub(1);
        let i = from + self.ts[from..].partition_point(|x| *x < t);
        if i < self.ts.len() {
            self.read = i + 1;
            true
        } else {
            self.read = self.ts.len();
            false
        }
    }

    /// The current sample.
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        let i = self.read.saturating_sub(1);
        (self.ts[i], self.vs[i])
    }

    /// The current timestamp.
    #[inline]
    pub fn at_t(&self) -> i64 {
        self.ts[self.read.saturating_sub(1)]
    }

    /// The position of the current sample in the chunk (0 for the first).
    #[inline]
    pub fn index(&self) -> usize {
        self.read.saturating_sub(1)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether the chunk decoded to no sample (never true after a successful `reset`).
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorChunk;
    use proptest::prelude::*;
    use watchfire_model::STALE_NAN_BITS;

    fn roundtrip(samples: &[(i64, f64)]) -> Vec<u8> {
        let bytes = encode(samples);
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        decode(&bytes, &mut ts, &mut vs).unwrap();
        assert_eq!(ts, samples.iter().map(|s| s.0).collect::<Vec<_>>());
        let bits: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, samples.iter().map(|s| s.1.to_bits()).collect::<Vec<_>>());
        bytes
    }

    fn xor_len(samples: &[(i64, f64)]) -> usize {
        let mut c = XorChunk::new();
        for (t, v) in samples {
            c.append(*t, *v).unwrap();
        }
        c.bytes().len()
    }

    fn value_mode(bytes: &[u8]) -> u64 {
        // Skip the header, t0 and (for these regular series) the delta and the zero run.
        let mut r = BitReader::new(bytes, 2);
        r.read_bits(64).unwrap();
        r.read_varint().unwrap();
        r.read_small(8).unwrap();
        r.read_small(2).unwrap()
    }

    #[test]
    fn regular_series_cost_a_few_bytes() {
        // A constant at a regular interval: header, t0, delta, one zero run for the
        // timestamps; mode, scale, the value and one zero run for the values.
        let s: Vec<(i64, f64)> = (0..480).map(|i| (1_700_000_000_000 + i * 15_000, 42.0)).collect();
        let b = roundtrip(&s);
        assert!(b.len() <= 20, "{} bytes", b.len());
        assert!(xor_len(&s) > 100);
        // A counter of hundredths growing unevenly: scaled integers, much smaller than XOR.
        let mut v = 15681.73f64;
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| {
                v = ((v * 100.0).round() + f64::from((i * 37 % 90) as u8) + 400.0) / 100.0;
                (1_700_000_000_000 + i * 15_000, v)
            })
            .collect();
        let b = roundtrip(&s);
        assert_ne!(value_mode(&b), MODE_XOR);
        assert!(b.len() * 3 < xor_len(&s), "{} vs {}", b.len(), xor_len(&s));
        // A gauge walking up and down by small steps: plain deltas are the narrower.
        let mut g = 2.0f64;
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| {
                g = ((g * 100.0).round() + f64::from((i * 37 % 11) as u8) - 5.0) / 100.0;
                (i * 15_000, g)
            })
            .collect();
        let b = roundtrip(&s);
        assert_eq!(value_mode(&b), MODE_DELTA);
        assert!(b.len() * 3 < xor_len(&s), "{} vs {}", b.len(), xor_len(&s));
        // A byte gauge moving by whole pages: the common step is divided out, so it costs
        // what the page counts cost, as XOR's trailing zero bits make it cost there.
        let s: Vec<(i64, f64)> = (0..480)
            .map(|i| (i * 15_000, (3_588_272_128 + 4096 * ((i * 37) % 23 - 11)) as f64))
            .collect();
        let b = roundtrip(&s);
        assert!(b.len() * 4 < xor_len(&s) * 3, "{} vs {}", b.len(), xor_len(&s));
        // A counter with a constant rate: deltas of deltas are zero.
        let s: Vec<(i64, f64)> = (0..480).map(|i| (i * 15_000, (i * 4096) as f64)).collect();
        let b = roundtrip(&s);
        assert_eq!(value_mode(&b), MODE_DOD);
        assert!(b.len() < 30, "{} bytes", b.len());
    }

    #[test]
    fn values_that_are_not_short_decimals_use_xor() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        for odd in [
            stale,
            f64::NAN,
            f64::INFINITY,
            -0.0,
            1e300,
            264.055_518_999_999_95,
            0.1 + 0.2,
        ] {
            let s: Vec<(i64, f64)> = (0..20)
                .map(|i| (i * 1000, if i == 7 { odd } else { i as f64 }))
                .collect();
            let b = roundtrip(&s);
            assert_eq!(value_mode(&b), MODE_XOR, "{odd}");
        }
        // A single sample, and two.
        roundtrip(&[(5, 1.5)]);
        roundtrip(&[(5, 1.5), (7, stale)]);
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let s: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000 + (i % 3), (i * i) as f64 / 8.0)).collect();
        let b = encode(&s);
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for cut in 0..b.len() - 1 {
            assert!(decode(&b[..cut], &mut ts, &mut vs).is_err(), "cut at {cut}");
        }
        assert!(decode(&[0, 0], &mut ts, &mut vs).is_err());
    }

    #[test]
    fn cursor_seeks_forward_only() {
        let s: Vec<(i64, f64)> = (0..50).map(|i| (i * 10, i as f64)).collect();
        let mut c = PackedCursor::default();
        c.reset(&encode(&s)).unwrap();
        assert!(c.seek(95));
        assert_eq!(c.at(), (100, 10.0));
        assert!(c.seek(0));
        assert_eq!(c.at_t(), 100);
        assert!(c.next());
        assert_eq!((c.at_t(), c.index()), (110, 11));
        assert!(!c.seek(10_000));
        assert!(!c.next());
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::from_bits(STALE_NAN_BITS)),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            (-1_000_000i64..1_000_000, 0usize..=6).prop_map(|(m, k)| m as f64 / POW10[k]),
        ]
    }

    proptest! {
        #[test]
        fn any_samples_round_trip(
            start in any::<i64>(),
            steps in prop::collection::vec(prop_oneof![Just(15_000i64), 0i64..100_000, any::<i64>()], 0..300),
            values in prop::collection::vec(any_f64(), 301),
        ) {
            let mut t = start;
            let mut s = vec![(t, values[0])];
            for (i, d) in steps.iter().enumerate() {
                t = t.wrapping_add(*d);
                s.push((t, values[i + 1]));
            }
            roundtrip(&s);
        }

        #[test]
        fn decimal_series_round_trip(
            start in 0i64..1 << 42,
            ms in prop::collection::vec(-(1i64 << 40)..1 << 40, 1..600),
            scale in 0usize..=MAX_SCALE,
        ) {
            let s: Vec<(i64, f64)> = ms.iter().enumerate().map(|(i, m)| (start + i as i64 * 15_000, scaled(*m, scale))).collect();
            roundtrip(&s);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let (mut ts, mut vs) = (Vec::new(), Vec::new());
            let _ = decode(&bytes, &mut ts, &mut vs);
        }
    }
}
