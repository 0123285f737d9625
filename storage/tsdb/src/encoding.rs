//! Byte-level helpers shared by the block formats: Go-compatible varints (`binary.PutUvarint`,
//! `binary.PutVarint`) and a bounds-checked decoder whose every failure is an error message,
//! never a panic.

pub(crate) fn put_uvarint(b: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        b.push(x as u8 | 0x80);
        x >>= 7;
    }
    b.push(x as u8);
}

pub(crate) fn put_varint(b: &mut Vec<u8>, x: i64) {
    put_uvarint(b, ((x << 1) ^ (x >> 63)) as u64);
}

pub(crate) fn put_uvarint_str(b: &mut Vec<u8>, s: &str) {
    put_uvarint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// A cursor over bytes read from disk.
#[derive(Debug, Clone)]
pub(crate) struct Dec<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

pub(crate) type DecResult<T> = Result<T, String>;

impl<'a> Dec<'a> {
    pub(crate) fn new(b: &'a [u8], pos: usize) -> Self {
        Dec { b, pos }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> DecResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("{n} bytes at offset {} run past the end", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> DecResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn be32(&mut self) -> DecResult<u32> {
        let s = self.bytes(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub(crate) fn be64(&mut self) -> DecResult<u64> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> DecResult<u64> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(format!("varint at offset {} overflows 64 bits", self.pos));
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(format!("varint at offset {} overflows 64 bits", self.pos))
    }

    pub(crate) fn varint(&mut self) -> DecResult<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn uvarint_str(&mut self) -> DecResult<&'a str> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| "string length too large".to_string())?;
        let at = self.pos;
        let s = self.bytes(n)?;
        std::str::from_utf8(s).map_err(|_| format!("string at offset {at} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>(), s in "\\PC{0,20}") {
            let mut b = Vec::new();
            put_uvarint(&mut b, u);
            put_varint(&mut b, i);
            put_uvarint_str(&mut b, &s);
            let mut d = Dec::new(&b, 0);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert_eq!(d.uvarint_str().unwrap(), s.as_str());
            prop_assert_eq!(d.remaining(), 0);
            prop_assert!(d.byte().is_err());
        }
    }
}
