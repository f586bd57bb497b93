//! A fast hasher for small integer keys (connection ids, session slots, packet ids).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes integers with one 128-bit multiply folded to 64 bits; not for untrusted strings.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl IntHasher {
    fn mix(&mut self, v: u64) {
        let product = u128::from(self.0 ^ v) * u128::from(MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(buf));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

/// Builds [`IntHasher`]s.
pub type IntBuildHasher = BuildHasherDefault<IntHasher>;

/// A map keyed by integers.
pub type IntMap<K, V> = HashMap<K, V, IntBuildHasher>;

/// A set of integers.
pub type IntSet<K> = HashSet<K, IntBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_small_keys_hash_differently() {
        let hashes: IntSet<u64> = (0u16..1000)
            .map(|k| {
                let mut h = IntHasher::default();
                h.write_u16(k);
                h.finish()
            })
            .collect();
        assert_eq!(hashes.len(), 1000);
    }

    #[test]
    fn map_works() {
        let mut m: IntMap<u32, &str> = IntMap::default();
        m.insert(7, "a");
        m.insert(70_000, "b");
        assert_eq!(m.get(&7), Some(&"a"));
        assert_eq!(m.get(&70_000), Some(&"b"));
    }
}
