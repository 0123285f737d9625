//! Block identifiers: ULIDs (a 48-bit millisecond timestamp followed by 80 random bits, printed
//! as 26 characters of Crockford base32), the names upstream gives block directories. Ids made
//! by one process within the same millisecond increase, so sorting names sorts creation order.

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_BITS: u32 = 80;
const RANDOM_MASK: u128 = (1u128 << RANDOM_BITS) - 1;

/// A 128-bit ULID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ulid(pub u128);

/// The last id handed out, to keep ids of one millisecond increasing.
static LAST: Mutex<u128> = Mutex::new(0);

fn random_bits() -> u128 {
    let mut buf = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if from_os.is_err() {
        // No /dev/urandom (unusual sandboxes): std's per-process random hash keys, mixed with
        // the clock, are unpredictable enough for names that only need to be unique.
        use std::hash::{BuildHasher, Hasher};
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for half in 0..2 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u8(half);
            buf[half as usize * 8..half as usize * 8 + 8].copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    u128::from_le_bytes(buf)
}

impl Ulid {
    /// A new id for the current time.
    pub fn new() -> Ulid {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ulid::with_time(ms)
    }

    /// A new id with the timestamp `ms` (milliseconds since the epoch, 48 bits).
    pub fn with_time(ms: u64) -> Ulid {
        let fresh = Ulid::from_parts(ms, random_bits());
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let id =
            if fresh.0 >> RANDOM_BITS == *last >> RANDOM_BITS && fresh.0 <= *last && *last & RANDOM_MASK != RANDOM_MASK
            {
                Ulid(*last + 1)
            } else {
                fresh
            };
        *last = (*last).max(id.0);
        id
    }

    /// An id from its parts; only the low 48 bits of `ms` and the low 80 of `random` are used.
    pub fn from_parts(ms: u64, random: u128) -> Ulid {
        Ulid((u128::from(ms & ((1 << 48) - 1)) << RANDOM_BITS) | (random & RANDOM_MASK))
    }

    /// The timestamp part in milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        (self.0 >> RANDOM_BITS) as u64
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *c = ALPHABET[((self.0 >> shift) & 0x1f) as usize];
        }
        f.write_str(std::str::from_utf8(&out).expect("the alphabet is ASCII"))
    }
}

impl fmt::Debug for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ulid({self})")
    }
}

/// A string that is not a ULID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ULID {0:?}")]
pub struct UlidError(pub String);

impl FromStr for Ulid {
    type Err = UlidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 26 {
            return Err(UlidError(s.into()));
        }
        let mut x: u128 = 0;
        for &c in b {
            let up = c.to_ascii_uppercase();
            let v = ALPHABET
                .iter()
                .position(|&a| a == up)
                .ok_or_else(|| UlidError(s.into()))?;
            x = (x << 5) | v as u128;
        }
        // 26 × 5 = 130 bits: the first character may only carry 3.
        if ALPHABET
            .iter()
            .position(|&a| a == b[0].to_ascii_uppercase())
            .unwrap_or(0)
            > 7
        {
            return Err(UlidError(s.into()));
        }
        Ok(Ulid(x))
    }
}

impl serde::Serialize for Ulid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ulid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encoding_and_order() {
        // The timestamp of the spec example 01ARYZ6S41...
        let id = Ulid::from_parts(1_469_918_176_385, 0);
        assert_eq!(&id.to_string()[..10], "01ARYZ6S41");
        assert_eq!(&id.to_string()[10..], "0000000000000000");
        assert_eq!(id.timestamp_ms(), 1_469_918_176_385);
        // The latest possible millisecond: ids other tests make meanwhile (at the real time)
        // cannot come between the two, as an earlier millisecond here could.
        let far = (1 << 48) - 1;
        let a = Ulid::with_time(far);
        let b = Ulid::with_time(far);
        assert!(b > a, "same millisecond ids increase");
        assert!(a.to_string() < b.to_string());
        assert!("8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41".parse::<Ulid>().is_err());
        assert!("01ARYZ6S41000000000000000U".parse::<Ulid>().is_err());
    }

    proptest! {
        #[test]
        fn parse_print_round_trip(x in any::<u128>()) {
            let id = Ulid(x);
            let s = id.to_string();
            prop_assert_eq!(s.len(), 26);
            prop_assert_eq!(s.parse::<Ulid>().unwrap(), id);
            prop_assert_eq!(s.to_lowercase().parse::<Ulid>().unwrap(), id);
        }
    }
}
