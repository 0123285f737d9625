//! Out-of-order samples of one head series (upstream `memSeriesOOOFields` and `OOOChunk`):
//! samples older than the series' newest in-order sample but inside
//! `storage.tsdb.out_of_order_time_window` of the head's newest sample. They collect in a small
//! sorted buffer; a full buffer becomes an XOR chunk kept on the heap. Chunks may overlap each
//! other and the in-order chunks; readers merge them ([`OooState::samples`]). See FORMAT.md,
//! "Out-of-order samples".

use std::sync::Arc;

use crate::chunkenc::{XorChunk, XorIterator};

/// Samples the buffer holds before it becomes a chunk (upstream `--storage.tsdb.out-of-order-cap`
/// default, `DefaultOutOfOrderCapMax`).
pub(crate) const OOO_CAPACITY: usize = 32;
/// Samples per chunk when merged out-of-order data is handed to a reader.
const READ_CHUNK_SAMPLES: usize = 120;

/// A chunk cut from the buffer.
#[derive(Clone, Debug)]
pub(crate) struct OooChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) bytes: Arc<[u8]>,
}

/// The out-of-order data of a series.
#[derive(Debug, Default)]
pub(crate) struct OooState {
    /// Samples not in a chunk yet, sorted by time, one per timestamp.
    open: Vec<(i64, f64)>,
    /// Chunks in the order they were cut.
    chunks: Vec<OooChunk>,
    /// The first `sealed` chunks are what the running head compaction writes to blocks; they
    /// are dropped (up to the compaction's end) when it truncates the head.
    sealed: usize,
}

/// Encodes sorted samples as XOR chunks; `(min_t, max_t, bytes)` each.
pub(crate) fn encode(samples: &[(i64, f64)], per_chunk: usize) -> Vec<OooChunk> {
    samples
        .chunks(per_chunk.max(1))
        .map(|part| {
            let mut c = XorChunk::new();
            for &(t, v) in part {
                // Sorted, distinct timestamps and at most `u16::MAX` samples per chunk: every
                // append fits.
                c.append(t, v).expect("sorted samples append to a fresh chunk");
            }
            OooChunk {
                min_t: part[0].0,
                max_t: part[part.len() - 1].0,
                bytes: Arc::from(c.bytes()),
            }
        })
        .collect()
}

impl OooState {
    /// Inserts a sample; false (and nothing stored) when the buffer already has one at `t`.
    /// Duplicates in earlier chunks are not looked for, as upstream; readers keep the first.
    pub(crate) fn insert(&mut self, t: i64, v: f64) -> bool {
        match self.open.binary_search_by_key(&t, |s| s.0) {
            Ok(_) => false,
            Err(i) => {
                self.open.insert(i, (t, v));
                if self.open.len() >= OOO_CAPACITY {
                    self.cut();
                }
                true
            }
        }
    }

    /// The value bits the buffer holds at `t`, if any (for duplicate checks).
    pub(crate) fn buffered(&self, t: i64) -> Option<u64> {
        self.open
            .binary_search_by_key(&t, |s| s.0)
            .ok()
            .map(|i| self.open[i].1.to_bits())
    }

    fn cut(&mut self) {
        if !self.open.is_empty() {
            self.chunks.extend(encode(&self.open, self.open.len()));
            self.open.clear();
        }
    }

    /// Oldest and newest timestamps held.
    pub(crate) fn bounds(&self) -> Option<(i64, i64)> {
        let open = self.open.first().map(|f| (f.0, self.open[self.open.len() - 1].0));
        self.chunks
            .iter()
            .map(|c| (c.min_t, c.max_t))
            .chain(open)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Bounds of the sealed chunks.
    pub(crate) fn sealed_bounds(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.chunks[..self.sealed].iter().map(|c| (c.min_t, c.max_t))
    }

    /// Whether any sample (of the sealed chunks only, with `sealed_only`) lies in
    /// `[mint, maxt]`.
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64, sealed_only: bool) -> bool {
        let chunks = if sealed_only {
            &self.chunks[..self.sealed]
        } else {
            &self.chunks[..]
        };
        chunks.iter().any(|c| c.max_t >= mint && c.min_t <= maxt)
            || (!sealed_only && self.open.iter().any(|s| s.0 >= mint && s.0 <= maxt))
    }

    /// The samples in `[mint, maxt]`, sorted, one per timestamp: of several at one timestamp
    /// the one of the earliest chunk (the buffer counts as the latest) is kept.
    pub(crate) fn samples(&self, mint: i64, maxt: i64, sealed_only: bool) -> Vec<(i64, f64)> {
        let chunks = if sealed_only {
            &self.chunks[..self.sealed]
        } else {
            &self.chunks[..]
        };
        let mut out: Vec<(i64, f64)> = Vec::new();
        for c in chunks.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt) {
            // Bytes this head encoded itself.
            let Ok(mut it) = XorIterator::new(&c.bytes[..]) else {
                continue;
            };
            while it.next() {
                let (t, v) = it.at();
                if t >= mint && t <= maxt {
                    out.push((t, v));
                }
            }
        }
        if !sealed_only {
            out.extend(self.open.iter().filter(|s| s.0 >= mint && s.0 <= maxt));
        }
        // Stable: the earliest source stays first among equal timestamps.
        out.sort_by_key(|s| s.0);
        out.dedup_by_key(|s| s.0);
        out
    }

    /// The samples in `[mint, maxt]` as XOR chunks for a reader.
    pub(crate) fn read_chunks(&self, mint: i64, maxt: i64, sealed_only: bool) -> Vec<OooChunk> {
        encode(&self.samples(mint, maxt, sealed_only), READ_CHUNK_SAMPLES)
    }

    /// Turns the buffer into a chunk and marks every chunk as taken by a compaction.
    pub(crate) fn seal(&mut self) {
        self.cut();
        self.sealed = self.chunks.len();
    }

    /// After a compaction wrote the sealed chunks' samples before `end` to blocks: drops
    /// them, keeping sealed samples at or after `end` (re-encoded) and everything added
    /// since the seal.
    pub(crate) fn truncate_sealed(&mut self, end: i64) {
        let sealed: Vec<OooChunk> = self.chunks.drain(..self.sealed).collect();
        self.sealed = 0;
        let mut kept: Vec<OooChunk> = Vec::new();
        for c in sealed {
            if c.max_t < end {
                continue;
            }
            if c.min_t >= end {
                kept.push(c);
                continue;
            }
            let Ok(mut it) = XorIterator::new(&c.bytes[..]) else {
                continue;
            };
            let mut rest = Vec::new();
            while it.next() {
                if it.at().0 >= end {
                    rest.push(it.at());
                }
            }
            kept.extend(encode(&rest, rest.len()));
        }
        kept.append(&mut self.chunks);
        self.chunks = kept;
    }

    /// Number of chunks (the buffer counts as one when it holds samples).
    pub(crate) fn num_chunks(&self) -> usize {
        self.chunks.len() + usize::from(!self.open.is_empty())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.open.capacity() * std::mem::size_of::<(i64, f64)>()
            + self
                .chunks
                .iter()
                .map(|c| std::mem::size_of::<OooChunk>() + c.bytes.len() + 16)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_sorts_rejects_duplicates_and_cuts_at_capacity() {
        let mut o = OooState::default();
        for t in (0..OOO_CAPACITY as i64).rev() {
            assert!(o.insert(t * 10, t as f64));
            if t > 0 {
                assert!(!o.insert(t * 10, 0.0), "a second sample at one timestamp");
            }
        }
        assert_eq!(o.chunks.len(), 1, "a full buffer became a chunk");
        assert!(o.open.is_empty());
        assert!(o.insert(5, 0.5));
        assert!(o.insert(0, 99.0), "duplicates in chunks are not looked for");
        let s = o.samples(i64::MIN, i64::MAX, false);
        assert_eq!(s.len(), OOO_CAPACITY + 1);
        assert_eq!(s[0], (0, 0.0), "the earlier chunk wins a timestamp");
        assert_eq!(s[1], (5, 0.5));
        assert_eq!(o.bounds(), Some((0, 310)));
        assert_eq!(o.samples(100, 200, false).len(), 11);
    }

    #[test]
    fn truncation_keeps_what_the_seal_did_not_take_and_the_tail_of_a_straddling_chunk() {
        let mut o = OooState::default();
        for t in 0..40 {
            o.insert(t, t as f64);
        }
        o.seal();
        assert_eq!(o.chunks.len(), 2);
        o.insert(3, 33.0);
        o.insert(100, 100.0);
        assert!(o.overlaps(0, 10, true));
        assert!(!o.overlaps(100, 100, true));
        assert_eq!(o.samples(i64::MIN, i64::MAX, true).len(), 40);
        o.truncate_sealed(35);
        let s = o.samples(i64::MIN, i64::MAX, false);
        let ts: Vec<i64> = s.iter().map(|s| s.0).collect();
        assert_eq!(ts, [3, 35, 36, 37, 38, 39, 100]);
        assert_eq!(s[0].1, 33.0);
        assert_eq!(o.sealed, 0);
    }
}
