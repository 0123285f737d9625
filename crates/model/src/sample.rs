//! Samples, timestamps and the staleness marker.

/// A timestamp in milliseconds since the Unix epoch, as Prometheus stores it.
pub type Timestamp = i64;

/// The bit pattern of the NaN that marks a series stale (`value.StaleNaN` upstream). It is a
/// signalling-free NaN distinct from the NaN that arithmetic produces, so it survives storage
/// bit for bit and is recognised only by its exact bits.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is exactly the staleness marker (an ordinary NaN is not).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: Timestamp,
    /// The value; may be the staleness marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: Timestamp, v: f64) -> Self {
        Sample { t, v }
    }

    /// Whether this sample is a staleness marker.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_recognised_by_bits_only() {
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan((-1.0f64).sqrt()));
        assert!(Sample::new(1, stale_nan()).is_stale());
        assert_eq!(stale_nan().to_bits(), STALE_NAN_BITS);
    }
}
