//! WAL record payloads. Series, tombstones and metadata are encoded as upstream's
//! `tsdb/record/record.go` encodes them. Float samples are written in Watchfire's compact
//! layout (type 128: deltas to the previous sample, values as short decimals when that is
//! exact), about a third smaller than upstream's v1 samples record (type 2), which is still
//! read; out-of-order samples use the same layout under type 129. See FORMAT.md, "Records".

use watchfire_model::Labels;

/// Record type codes (the first payload byte).
pub const SERIES: u8 = 1;
pub const SAMPLES: u8 = 2;
pub const TOMBSTONES: u8 = 3;
pub const METADATA: u8 = 6;
/// Watchfire's compact float samples (not an upstream type).
pub const COMPACT_SAMPLES: u8 = 128;
/// Out-of-order float samples in the compact layout (upstream writes these to a separate
/// write-behind log as type 2; Watchfire keeps them in the WAL under their own type).
pub const OOO_SAMPLES: u8 = 129;
/// Watchfire's in-order samples with start timestamps: the layout of 128, each sample
/// followed by `varint (t - st)`.
pub const ST_SAMPLES: u8 = 130;

/// A series and the reference its samples use.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    pub r: u64,
    pub labels: Labels,
}

/// One float sample of series `r`.
#[derive(Clone, Copy, Debug)]
pub struct RefSample {
    pub r: u64,
    pub t: i64,
    pub v: f64,
}

/// Samples of series `r` in `[mint, maxt]` are deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stone {
    pub r: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// Metadata of series `r`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefMetadata {
    pub r: u64,
    pub metric_type: u8,
    pub unit: String,
    pub help: String,
}

/// A decoded record.
#[derive(Clone, Debug)]
pub enum Record {
    Series(Vec<RefSeries>),
    /// In-order samples (type 2 or 128).
    Samples(Vec<RefSample>),
    /// Samples that went to out-of-order chunks (type 129).
    OooSamples(Vec<RefSample>),
    /// In-order samples with their start timestamps, one per sample, 0 when unknown (type
    /// 130).
    StSamples(Vec<RefSample>, Vec<i64>),
    Tombstones(Vec<Stone>),
    Metadata(Vec<RefMetadata>),
    /// A type this version does not read (exemplars, histograms); skipped on replay.
    Unknown(u8),
}

/// A record whose payload does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} record at payload byte {offset}: {reason}")]
pub struct RecordError {
    pub kind: &'static str,
    pub offset: usize,
    pub reason: &'static str,
}

fn put_uvarint(b: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        b.push(x as u8 | 0x80);
        x >>= 7;
    }
    b.push(x as u8);
}

fn put_varint(b: &mut Vec<u8>, x: i64) {
    put_uvarint(b, ((x << 1) ^ (x >> 63)) as u64);
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_uvarint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// Appends a series record to `b`.
pub fn encode_series<'a>(series: impl IntoIterator<Item = (u64, &'a Labels)>, b: &mut Vec<u8>) {
    b.push(SERIES);
    for (r, labels) in series {
        b.extend_from_slice(&r.to_be_bytes());
        put_uvarint(b, labels.len() as u64);
        for l in labels.iter() {
            put_str(b, l.name);
            put_str(b, l.value);
        }
    }
}

/// Appends a samples record to `b`: the first sample's reference and timestamp as big-endian
/// bases, then every sample as signed varint deltas to them and its value's bits.
pub fn encode_samples(samples: &[RefSample], b: &mut Vec<u8>) {
    b.push(SAMPLES);
    let Some(first) = samples.first() else { return };
    b.extend_from_slice(&first.r.to_be_bytes());
    b.extend_from_slice(&first.t.to_be_bytes());
    for s in samples {
        put_varint(b, (s.r as i64).wrapping_sub(first.r as i64));
        put_varint(b, s.t.wrapping_sub(first.t));
        b.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Exact powers of ten (every one up to 10^22 is exactly representable).
const POW10: [f64; 17] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
];
/// Mantissas stay below 2^53 so they convert to and from `f64` exactly.
const MAX_MANTISSA: f64 = 9.0e15;
/// Value kinds of the compact layout's sample header (bits 0–6); see FORMAT.md.
const KIND_DIVIDE_MAX: u8 = 15;
const KIND_MULTIPLY_MAX: u8 = 31;
const KIND_RAW: u8 = 0x40;
/// Header bit: the sample's reference is the previous one plus one (no delta follows).
const NEXT_REF: u8 = 0x80;
/// Record flag: every sample has the timestamp written once after the flags.
const FLAG_SHARED_T: u8 = 1;

/// The value of decimal kind `k` with mantissa `m`. The encoder checks its choice with this
/// very expression, so decoding reproduces the value's bits exactly.
fn decimal(k: u8, m: i64) -> f64 {
    if k == 0 {
        m as f64
    } else if k <= KIND_DIVIDE_MAX {
        m as f64 / POW10[usize::from(k)]
    } else {
        m as f64 * POW10[usize::from(k - KIND_DIVIDE_MAX)]
    }
}

/// The mantissa of `v` at `k` decimal places if `m / 10^k` is exactly `v`. A cheap test that
/// `v × 10^k` lies within a few ulps of an integer (always true for a match) spares most
/// divisions; rounding is an add and a truncating cast rather than a libm call.
fn mantissa(v: f64, k: u8) -> Option<i64> {
    let x = v * POW10[usize::from(k)];
    let m = (x + 0.5f64.copysign(x)) as i64;
    let mf = m as f64;
    ((x - mf).abs() <= mf.abs() * 1e-15 && decimal(k, m).to_bits() == v.to_bits()).then_some(m)
}

/// The shortest exact decimal form `(kind, mantissa)` of `v`, if it has one: an integer
/// (with trailing zeros moved into the exponent) or at most 9 decimal places. It runs on every
/// committed sample: integers and one or two decimals are tried first; beyond that, a value
/// exact at `k` places is exact at every larger `k` too, so one test at the largest usable `k`
/// rejects values with no short form and a binary search finds the shortest otherwise.
fn to_decimal(v: f64) -> Option<(u8, i64)> {
    if !v.is_finite() || v.abs() >= MAX_MANTISSA {
        return None;
    }
    if let Some(m) = mantissa(v, 0) {
        if m == 0 || m % 10 != 0 {
            return Some((0, m));
        }
        // An integer ending in zeros: move them into the exponent when that stays exact.
        let (mut short, mut j) = (m, 0u8);
        while j < 16 && short % 10 == 0 {
            short /= 10;
            j += 1;
        }
        let k = KIND_DIVIDE_MAX + j;
        return Some(if decimal(k, short).to_bits() == v.to_bits() {
            (k, short)
        } else {
            (0, m)
        });
    }
    for k in 1..=2 {
        if let Some(m) = mantissa(v, k) {
            return Some((k, m));
        }
    }
    let mut hi = 9u8;
    while hi > 2 && v.abs() * POW10[usize::from(hi)] >= MAX_MANTISSA {
        hi -= 1;
    }
    let mut found = (hi, mantissa(v, hi)?);
    let mut lo = 3u8;
    while lo < found.0 {
        let mid = lo + (found.0 - lo) / 2;
        match mantissa(v, mid) {
            Some(m) => found = (mid, m),
            None => lo = mid + 1,
        }
    }
    Some(found)
}

/// Appends a compact samples record (type 128) to `b`; see FORMAT.md for the layout.
pub fn encode_compact_samples(samples: &[RefSample], b: &mut Vec<u8>) {
    encode_compact(COMPACT_SAMPLES, samples, b);
}

/// Appends an out-of-order samples record (type 129, the compact layout) to `b`.
pub fn encode_ooo_samples(samples: &[RefSample], b: &mut Vec<u8>) {
    encode_compact(OOO_SAMPLES, samples, b);
}

/// Appends an in-order samples record with start timestamps (type 130, the compact layout
/// plus `t - st` per sample) to `b`; `sts` has one start timestamp per sample.
pub fn encode_st_samples(samples: &[RefSample], sts: &[i64], b: &mut Vec<u8>) {
    debug_assert_eq!(samples.len(), sts.len());
    encode_compact_with(ST_SAMPLES, samples, Some(sts), b);
}

fn encode_compact(kind: u8, samples: &[RefSample], b: &mut Vec<u8>) {
    encode_compact_with(kind, samples, None, b);
}

fn encode_compact_with(kind: u8, samples: &[RefSample], sts: Option<&[i64]>, b: &mut Vec<u8>) {
    b.push(kind);
    // One scrape commits every sample at one timestamp: write it once.
    let shared = match samples.split_first() {
        Some((first, rest)) if rest.iter().all(|s| s.t == first.t) => Some(first.t),
        _ => None,
    };
    match shared {
        Some(t) => {
            b.push(FLAG_SHARED_T);
            put_varint(b, t);
        }
        None => b.push(0),
    }
    let (mut prev_r, mut prev_t) = (0u64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        let next = s.r == prev_r.wrapping_add(1);
        let at = b.len();
        b.push(if next { NEXT_REF } else { 0 });
        if !next {
            put_varint(b, s.r.wrapping_sub(prev_r) as i64);
        }
        prev_r = s.r;
        if shared.is_none() {
            put_varint(b, s.t.wrapping_sub(prev_t));
            prev_t = s.t;
        }
        match to_decimal(s.v) {
            Some((k, m)) => {
                b[at] |= k;
                put_varint(b, m);
            }
            None => {
                // Raw bits without their trailing zero bytes.
                let bits = s.v.to_bits();
                let n = 8 - (bits.trailing_zeros() / 8) as usize;
                b[at] |= KIND_RAW | n as u8;
                b.extend_from_slice(&bits.to_be_bytes()[..n]);
            }
        }
        if let Some(sts) = sts {
            // An unknown start (0) is written as `t` like any other and reads back as 0.
            put_varint(b, s.t.wrapping_sub(sts.get(i).copied().unwrap_or(0)));
        }
    }
}

/// Appends a tombstones record to `b`.
pub fn encode_tombstones(stones: &[Stone], b: &mut Vec<u8>) {
    b.push(TOMBSTONES);
    for s in stones {
        b.extend_from_slice(&s.r.to_be_bytes());
        put_varint(b, s.mint);
        put_varint(b, s.maxt);
    }
}

/// Appends a metadata record to `b` (two fields, `UNIT` and `HELP`, as upstream writes).
pub fn encode_metadata(meta: &[RefMetadata], b: &mut Vec<u8>) {
    b.push(METADATA);
    for m in meta {
        put_uvarint(b, m.r);
        b.push(m.metric_type);
        put_uvarint(b, 2);
        put_str(b, "UNIT");
        put_str(b, &m.unit);
        put_str(b, "HELP");
        put_str(b, &m.help);
    }
}

struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Dec<'a> {
    fn err(&self, reason: &'static str) -> RecordError {
        RecordError {
            kind: self.kind,
            offset: self.pos,
            reason,
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn be64(&mut self) -> Result<u64, RecordError> {
        let bytes = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| self.err("truncated 8-byte field"))?;
        self.pos += 8;
        Ok(u64::from_be_bytes(
            bytes.try_into().map_err(|_| self.err("truncated 8-byte field"))?,
        ))
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        let b = *self.b.get(self.pos).ok_or_else(|| self.err("truncated byte"))?;
        self.pos += 1;
        Ok(b)
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut x = 0u64;
        let mut shift = 0;
        for i in 0..10 {
            let b = self.byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(self.err("varint overflows 64 bits"));
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(self.err("varint overflows 64 bits"))
    }

    fn varint(&mut self) -> Result<i64, RecordError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = usize::try_from(self.uvarint()?).map_err(|_| self.err("string length too large"))?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or_else(|| self.err("string length too large"))?;
        let bytes = self.b.get(self.pos..end).ok_or_else(|| self.err("truncated string"))?;
        self.pos = end;
        std::str::from_utf8(bytes).map_err(|_| self.err("string is not UTF-8"))
    }
}

/// Decodes one record payload.
pub fn decode(b: &[u8]) -> Result<Record, RecordError> {
    let Some((&kind, _)) = b.split_first() else {
        return Err(RecordError {
            kind: "empty",
            offset: 0,
            reason: "record has no type byte",
        });
    };
    let name = match kind {
        SERIES => "series",
        SAMPLES => "samples",
        TOMBSTONES => "tombstones",
        METADATA => "metadata",
        COMPACT_SAMPLES => "samples",
        OOO_SAMPLES => "out-of-order samples",
        ST_SAMPLES => "samples with start timestamps",
        other => return Ok(Record::Unknown(other)),
    };
    let mut d = Dec { b, pos: 1, kind: name };
    match kind {
        SERIES => {
            let mut out = Vec::new();
            while !d.done() {
                let r = d.be64()?;
                let n = d.uvarint()?;
                let mut pairs = Vec::with_capacity(n.min(64) as usize);
                for _ in 0..n {
                    let name = d.str()?;
                    let value = d.str()?;
                    pairs.push((name, value));
                }
                out.push(RefSeries {
                    r,
                    labels: Labels::from_pairs(pairs),
                });
            }
            Ok(Record::Series(out))
        }
        SAMPLES => {
            let mut out = Vec::new();
            if d.done() {
                return Ok(Record::Samples(out));
            }
            let base_r = d.be64()?;
            let base_t = d.be64()? as i64;
            while !d.done() {
                let dr = d.varint()?;
                let dt = d.varint()?;
                let v = f64::from_bits(d.be64()?);
                out.push(RefSample {
                    r: (base_r as i64).wrapping_add(dr) as u64,
                    t: base_t.wrapping_add(dt),
                    v,
                });
            }
            Ok(Record::Samples(out))
        }
        COMPACT_SAMPLES => Ok(Record::Samples(decode_compact(&mut d, None)?)),
        OOO_SAMPLES => Ok(Record::OooSamples(decode_compact(&mut d, None)?)),
        ST_SAMPLES => {
            let mut sts = Vec::new();
            let samples = decode_compact(&mut d, Some(&mut sts))?;
            Ok(Record::StSamples(samples, sts))
        }
        TOMBSTONES => {
            let mut out = Vec::new();
            while !d.done() {
                let r = d.be64()?;
                let mint = d.varint()?;
                let maxt = d.varint()?;
                out.push(Stone { r, mint, maxt });
            }
            Ok(Record::Tombstones(out))
        }
        _ => {
            let mut out = Vec::new();
            while !d.done() {
                let r = d.uvarint()?;
                let metric_type = d.byte()?;
                let n = d.uvarint()?;
                let (mut unit, mut help) = (String::new(), String::new());
                for _ in 0..n {
                    let name = d.str()?;
                    let value = d.str()?;
                    match name {
                        "UNIT" => value.clone_into(&mut unit),
                        "HELP" => value.clone_into(&mut help),
                        _ => {}
                    }
                }
                out.push(RefMetadata {
                    r,
                    metric_type,
                    unit,
                    help,
                });
            }
            Ok(Record::Metadata(out))
        }
    }
}

fn decode_compact(d: &mut Dec<'_>, mut sts: Option<&mut Vec<i64>>) -> Result<Vec<RefSample>, RecordError> {
    let mut out = Vec::new();
    if d.done() {
        return Ok(out);
    }
    let flags = d.byte()?;
    if flags & !FLAG_SHARED_T != 0 {
        return Err(d.err("unknown flags"));
    }
    let shared = if flags & FLAG_SHARED_T != 0 {
        Some(d.varint()?)
    } else {
        None
    };
    let (mut r, mut t) = (0u64, 0i64);
    while !d.done() {
        let h = d.byte()?;
        r = if h & NEXT_REF != 0 {
            r.wrapping_add(1)
        } else {
            r.wrapping_add(d.varint()? as u64)
        };
        t = match shared {
            Some(t) => t,
            None => t.wrapping_add(d.varint()?),
        };
        let kind = h & !NEXT_REF;
        let v = if kind <= KIND_MULTIPLY_MAX {
            decimal(kind, d.varint()?)
        } else if kind & !0x0f == KIND_RAW && kind & 0x0f <= 8 {
            let n = usize::from(kind & 0x0f);
            let mut bits = [0u8; 8];
            for b in bits.iter_mut().take(n) {
                *b = d.byte()?;
            }
            f64::from_bits(u64::from_be_bytes(bits))
        } else {
            return Err(d.err("unknown value kind"));
        };
        if let Some(sts) = sts.as_deref_mut() {
            sts.push(t.wrapping_sub(d.varint()?));
        }
        out.push(RefSample { r, t, v });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-z_]{1,8}", "\\PC{1,12}"), 0..6).prop_map(Labels::from_pairs)
    }

    /// Any bits, short decimals (the compact layout's fast path) and the edge cases.
    fn values() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (any::<i32>(), 0u32..12).prop_map(|(m, k)| f64::from(m) / 10f64.powi(k as i32)),
            (-1_000_000i64..1_000_000, 0u32..20).prop_map(|(m, k)| m as f64 * 10f64.powi(k as i32)),
            prop::sample::select(vec![
                0.0,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::from_bits(watchfire_model::STALE_NAN_BITS),
                f64::MIN_POSITIVE,
                5e-324,
                8.999_999_999_999_999e15,
                9.0e15,
                f64::MAX,
            ]),
        ]
    }

    proptest! {
        #[test]
        fn series_round_trip(series in proptest::collection::vec((any::<u64>(), labels()), 0..10)) {
            let mut b = Vec::new();
            encode_series(series.iter().map(|(r, l)| (*r, l)), &mut b);
            let Record::Series(got) = decode(&b).unwrap() else { panic!("wrong record type") };
            let want: Vec<RefSeries> = series.into_iter().map(|(r, labels)| RefSeries { r, labels }).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn samples_round_trip_bit_exact(samples in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..50)) {
            let samples: Vec<RefSample> = samples.iter().map(|&(r, t, v)| RefSample { r, t, v: f64::from_bits(v) }).collect();
            let mut b = Vec::new();
            encode_samples(&samples, &mut b);
            let Record::Samples(got) = decode(&b).unwrap() else { panic!("wrong record type") };
            prop_assert_eq!(got.len(), samples.len());
            for (g, w) in got.iter().zip(&samples) {
                prop_assert_eq!((g.r, g.t, g.v.to_bits()), (w.r, w.t, w.v.to_bits()));
            }
        }

        #[test]
        fn st_samples_round_trip(
            samples in proptest::collection::vec((any::<u64>(), any::<i64>(), values(), prop_oneof![Just(0i64), any::<i64>()]), 0..60),
        ) {
            let refs: Vec<RefSample> = samples.iter().map(|&(r, t, v, _)| RefSample { r, t, v }).collect();
            let sts: Vec<i64> = samples.iter().map(|s| s.3).collect();
            let mut b = Vec::new();
            encode_st_samples(&refs, &sts, &mut b);
            prop_assert_eq!(b[0], ST_SAMPLES);
            let Record::StSamples(got, got_sts) = decode(&b).unwrap() else { panic!("wrong record type") };
            prop_assert_eq!(got_sts, sts);
            prop_assert_eq!(got.len(), refs.len());
            for (g, w) in got.iter().zip(&refs) {
                prop_assert_eq!((g.r, g.t, g.v.to_bits()), (w.r, w.t, w.v.to_bits()));
            }
            // A truncated record is an error, never a panic.
            if b.len() > 2 {
                let _ = decode(&b[..b.len() - 1]);
            }
        }

        #[test]
        fn compact_samples_round_trip_bit_exact(
            samples in proptest::collection::vec((any::<u64>(), any::<i64>(), values(), any::<bool>(), any::<bool>()), 0..60),
            ooo in any::<bool>(),
        ) {
            // Runs of consecutive references and shared timestamps, as commits have them,
            // mixed with arbitrary ones.
            let mut prev = (0u64, 0i64);
            let samples: Vec<RefSample> = samples
                .iter()
                .map(|&(r, t, v, next, same_t)| {
                    let r = if next { prev.0.wrapping_add(1) } else { r };
                    let t = if same_t { prev.1 } else { t };
                    prev = (r, t);
                    RefSample { r, t, v }
                })
                .collect();
            let mut b = Vec::new();
            if ooo {
                encode_ooo_samples(&samples, &mut b);
            } else {
                encode_compact_samples(&samples, &mut b);
            }
            let got = match decode(&b).unwrap() {
                Record::Samples(s) if !ooo => s,
                Record::OooSamples(s) if ooo => s,
                other => panic!("wrong record type {other:?}"),
            };
            prop_assert_eq!(got.len(), samples.len());
            for (g, w) in got.iter().zip(&samples) {
                prop_assert_eq!((g.r, g.t, g.v.to_bits()), (w.r, w.t, w.v.to_bits()));
            }
        }

        #[test]
        fn compact_garbage_is_an_error_or_a_record_never_a_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut rec = vec![COMPACT_SAMPLES];
            rec.extend_from_slice(&b);
            let _ = decode(&rec);
        }

        #[test]
        fn stones_and_metadata_round_trip(
            stones in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..10),
            meta in proptest::collection::vec((any::<u64>(), 0u8..8, "\\PC{0,10}", "\\PC{0,30}"), 0..10),
        ) {
            let stones: Vec<Stone> = stones.into_iter().map(|(r, mint, maxt)| Stone { r, mint, maxt }).collect();
            let mut b = Vec::new();
            encode_tombstones(&stones, &mut b);
            let Record::Tombstones(got) = decode(&b).unwrap() else { panic!("wrong record type") };
            prop_assert_eq!(got, stones);
            let meta: Vec<RefMetadata> = meta.into_iter().map(|(r, metric_type, unit, help)| RefMetadata { r, metric_type, unit, help }).collect();
            let mut b = Vec::new();
            encode_metadata(&meta, &mut b);
            let Record::Metadata(got) = decode(&b).unwrap() else { panic!("wrong record type") };
            prop_assert_eq!(got, meta);
        }

        #[test]
        fn garbage_is_an_error_or_a_record_never_a_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&b);
        }
    }

    #[test]
    fn samples_layout_matches_upstream() {
        let mut b = Vec::new();
        encode_samples(
            &[RefSample { r: 7, t: 1000, v: 1.5 }, RefSample { r: 5, t: 1015, v: 2.0 }],
            &mut b,
        );
        let mut want = vec![SAMPLES];
        want.extend_from_slice(&7u64.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[3, 30]); // zigzag(-2) = 3, zigzag(15) = 30
        want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
        assert_eq!(b, want);
    }

    #[test]
    fn compact_layout_is_as_documented() {
        let mut b = Vec::new();
        encode_compact_samples(
            &[
                RefSample { r: 7, t: 1000, v: 1.5 },
                RefSample { r: 8, t: 1000, v: 3e9 },
                RefSample {
                    r: 5,
                    t: 1000,
                    v: f64::from_bits(watchfire_model::STALE_NAN_BITS),
                },
                RefSample {
                    r: 6,
                    t: 1000,
                    v: 0.1 + 0.2,
                },
            ],
            &mut b,
        );
        let mut want = vec![COMPACT_SAMPLES, FLAG_SHARED_T, 0xd0, 0x0f]; // zigzag(1000) = 2000
        want.extend_from_slice(&[1, 14, 30]); // ref +7 (zigzag 14), 15 / 10^1 (zigzag 30)
        want.extend_from_slice(&[NEXT_REF | 24, 6]); // 3 × 10^9 (zigzag 6)
        want.extend_from_slice(&[KIND_RAW | 8, 5]); // ref −3 (zigzag 5), stale NaN raw
        want.extend_from_slice(&watchfire_model::STALE_NAN_BITS.to_be_bytes());
        want.push(NEXT_REF | KIND_RAW | 8); // 0.30000000000000004 has no short decimal
        want.extend_from_slice(&(0.1f64 + 0.2).to_bits().to_be_bytes());
        assert_eq!(b, want);
        // Separate timestamps are deltas; -0.0 is raw bits (one byte left), 2.0 a decimal.
        let mut b = Vec::new();
        encode_compact_samples(
            &[RefSample { r: 1, t: 10, v: -0.0 }, RefSample { r: 2, t: 25, v: 2.0 }],
            &mut b,
        );
        assert_eq!(
            b,
            [COMPACT_SAMPLES, 0, NEXT_REF | KIND_RAW | 1, 20, 0x80, NEXT_REF, 30, 4]
        );
    }
}
