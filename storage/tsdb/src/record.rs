//! WAL record payloads, encoded as upstream's `tsdb/record/record.go` encodes them (series,
//! float samples in the v1 layout, tombstones, metadata), so the bytes inside a record are the
//! same as Prometheus'. See FORMAT.md, "WAL records".

use watchfire_model::Labels;

/// Record type codes (the first payload byte).
pub const SERIES: u8 = 1;
pub const SAMPLES: u8 = 2;
pub const TOMBSTONES: u8 = 3;
pub const METADATA: u8 = 6;

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
    Samples(Vec<RefSample>),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-z_]{1,8}", "\\PC{1,12}"), 0..6).prop_map(Labels::from_pairs)
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
}
