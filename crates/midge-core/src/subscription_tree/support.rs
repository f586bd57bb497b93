//! Building blocks shared by the subscription and retained tries: a fast seeded hasher, a map
//! that stays a plain vector while small, a stack that lives on the call stack until it gets
//! deep, and topic-level splitting.

use std::borrow::Borrow;
use std::collections::hash_map::{self, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::OnceLock;

/// A `HashMap` using [`LevelHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<LevelHasher>>;

/// Odd 64-bit constant (2^64 / golden ratio) used as the multiplier when mixing words.
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Seed chosen once per process: SipHash (std's default) costs too much on the routing hot
/// path, but an unseeded fast hash lets a client precompute topic levels that all land in one
/// bucket. A random start state at least keeps that from working offline.
fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| RandomState::new().hash_one(0x006d_6964_6765_u64))
}

/// Multiplies into 128 bits and folds the halves together, so every input bit reaches both the
/// low bits (bucket index) and the high bits (hashbrown's control byte).
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Packs 1 to 7 bytes into a word with at most two loads. Copying them into a zeroed buffer
/// instead compiles to a `memcpy` call plus a store-forwarding stall, which was the single most
/// expensive instruction of a topic match. For a given length the packing is injective: the two
/// (possibly overlapping) reads cover every byte.
#[inline]
fn read_tail(tail: &[u8]) -> u64 {
    let n = tail.len();
    if n >= 4 {
        let low = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let high = u32::from_le_bytes([tail[n - 4], tail[n - 3], tail[n - 2], tail[n - 1]]);
        u64::from(low) | (u64::from(high) << 32)
    } else if n > 0 {
        u64::from(tail[0]) | (u64::from(tail[n / 2]) << 8) | (u64::from(tail[n - 1]) << 16)
    } else {
        0
    }
}

/// A small folded-multiply hasher: one multiplication per 8 input bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LevelHasher {
    state: u64,
}

impl Default for LevelHasher {
    fn default() -> Self {
        LevelHasher {
            state: process_seed(),
        }
    }
}

impl LevelHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, MUL);
    }
}

impl Hasher for LevelHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // The tail length goes into the top byte so "ab" and "ab\0" differ even for callers
            // that, unlike `str`, do not append a terminator.
            self.mix(read_tail(tail) ^ ((tail.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// A map that is a vector of pairs (linear search, no hashing, one small allocation) while it
/// has at most `FEW` entries, and a boxed hash map beyond that. Most trie nodes have one or two
/// children and most filters one or two subscribers, yet one node may have a million children
/// or one filter ten thousand subscribers, which must stay O(1) per operation.
#[derive(Debug)]
pub(crate) enum SmallMap<K, V, const FEW: usize> {
    /// Up to `FEW` entries, unordered.
    Few(Vec<(K, V)>),
    /// More entries. Boxed so the common `Few` case keeps nodes small.
    Many(Box<FastMap<K, V>>),
}

impl<K, V, const FEW: usize> Default for SmallMap<K, V, FEW> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Eq + Hash, V, const FEW: usize> SmallMap<K, V, FEW> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        match self {
            SmallMap::Few(v) => v.len(),
            SmallMap::Many(m) => m.len(),
        }
    }

    /// True if there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `value` under `key`, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self {
            SmallMap::Few(v) => {
                if let Some(slot) = v.iter_mut().find(|(k, _)| *k == key) {
                    return Some(std::mem::replace(&mut slot.1, value));
                }
                if v.len() < FEW {
                    if v.capacity() == 0 {
                        // Most nodes have one child and most filters one subscriber: start at
                        // one slot rather than `Vec`'s default of four.
                        v.reserve_exact(1);
                    }
                    v.push((key, value));
                } else {
                    let mut map = FastMap::with_capacity_and_hasher(FEW * 2, Default::default());
                    map.extend(v.drain(..));
                    map.insert(key, value);
                    *self = SmallMap::Many(Box::new(map));
                }
                None
            }
            SmallMap::Many(m) => m.insert(key, value),
        }
    }

    /// Removes and returns the value under `key`.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            SmallMap::Few(v) => {
                let at = v.iter().position(|(k, _)| k.borrow() == key)?;
                let (_, value) = v.swap_remove(at);
                if v.is_empty() {
                    // Drop the allocation: emptied nodes are recycled and should cost nothing.
                    *v = Vec::new();
                }
                Some(value)
            }
            SmallMap::Many(m) => {
                let value = m.remove(key)?;
                if m.len() <= FEW / 2 {
                    // Going back only at half the threshold avoids flapping around `FEW`.
                    *self = SmallMap::Few(m.drain().collect());
                } else if m.capacity() > 4 * m.len() {
                    // Hash maps never shrink on their own; after a mass unsubscribe a node that
                    // once had a million children would keep that table forever. Shrinking at a
                    // quarter of the capacity keeps the amortized cost O(1) per removal.
                    m.shrink_to_fit();
                }
                Some(value)
            }
        }
    }

    /// Iterates over the entries in no particular order.
    pub(crate) fn iter(&self) -> SmallMapIter<'_, K, V> {
        match self {
            SmallMap::Few(v) => SmallMapIter::Few(v.iter()),
            SmallMap::Many(m) => SmallMapIter::Many(m.iter()),
        }
    }
}

impl<V, const FEW: usize> SmallMap<Box<str>, V, FEW> {
    /// The value stored under level name `level`. In the vector form, short names are compared
    /// with word loads instead of a `memcmp` call per candidate: topic levels are mostly a few
    /// bytes long, and this lookup runs once per level of every routed message.
    #[inline]
    pub(crate) fn get_level(&self, level: &str) -> Option<&V> {
        match self {
            SmallMap::Few(v) => v
                .iter()
                .find(|(k, _)| short_eq(k.as_bytes(), level.as_bytes()))
                .map(|(_, v)| v),
            SmallMap::Many(m) => m.get(level),
        }
    }
}

/// Byte-slice equality that avoids the out-of-line `memcmp` for slices of up to 16 bytes.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=7 => read_tail(a) == read_tail(b),
        8..=16 => read_word(a, 0) == read_word(b, 0) && read_word(a, n - 8) == read_word(b, n - 8),
        _ => a == b,
    }
}

/// The 8 bytes of `bytes` starting at `at` (which the caller keeps in bounds).
#[inline]
fn read_word(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Iterator over a [`SmallMap`].
#[derive(Clone)]
pub(crate) enum SmallMapIter<'a, K, V> {
    /// Over the vector form.
    Few(std::slice::Iter<'a, (K, V)>),
    /// Over the hash map form.
    Many(hash_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for SmallMapIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SmallMapIter::Few(it) => it.next().map(|(k, v)| (k, v)),
            SmallMapIter::Many(it) => it.next(),
        }
    }
}

/// A LIFO stack whose first `N` slots live inline (on the caller's stack frame) and which spills
/// to the heap only beyond that. Trie walks use it instead of recursion, so a client that
/// subscribes to a filter with 30 000 levels cannot overflow the thread stack, while ordinary
/// topics are matched without allocating.
pub(crate) struct Stack<T, const N: usize> {
    inline: [Option<T>; N],
    inline_len: usize,
    spill: Vec<T>,
}

impl<T, const N: usize> Stack<T, N> {
    /// An empty stack (no allocation).
    #[inline]
    pub(crate) fn new() -> Self {
        Stack {
            inline: std::array::from_fn(|_| None),
            inline_len: 0,
            spill: Vec::new(),
        }
    }

    /// Pushes `item`.
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        if self.inline_len < N {
            self.inline[self.inline_len] = Some(item);
            self.inline_len += 1;
        } else {
            self.spill.push(item);
        }
    }

    /// Pops the most recently pushed item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if let Some(item) = self.spill.pop() {
            return Some(item);
        }
        if self.inline_len == 0 {
            return None;
        }
        self.inline_len -= 1;
        self.inline[self.inline_len].take()
    }

    /// The most recently pushed item, mutably.
    #[inline]
    pub(crate) fn last_mut(&mut self) -> Option<&mut T> {
        if !self.spill.is_empty() {
            return self.spill.last_mut();
        }
        let top = self.inline_len.checked_sub(1)?;
        self.inline[top].as_mut()
    }
}

/// Splits off the first level of `rest`: `"a/b/c"` gives `("a", Some("b/c"))`, `"a"` gives
/// `("a", None)` and `"a/"` gives `("a", Some(""))` (an empty last level is a real level).
#[inline]
pub(crate) fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_map_switches_forms_both_ways() {
        let mut map: SmallMap<u32, u32, 4> = SmallMap::default();
        for i in 0..100 {
            assert_eq!(map.insert(i, i), None);
        }
        assert!(matches!(map, SmallMap::Many(_)));
        assert_eq!(map.insert(7, 70), Some(7));
        assert_eq!(
            map.iter().find(|(k, _)| **k == 7).map(|(_, v)| *v),
            Some(70)
        );
        assert_eq!(map.len(), 100);
        for i in 0..99 {
            assert!(map.remove(&i).is_some());
        }
        assert!(matches!(map, SmallMap::Few(_)));
        assert_eq!(map.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![99]);
        assert_eq!(map.remove(&99), Some(99));
        assert_eq!(map.remove(&99), None);
        assert!(map.is_empty());
    }

    #[test]
    fn short_eq_agrees_with_slice_eq() {
        let words = [
            "", "a", "b", "ab", "abc", "abcd", "abce", "abcdefg", "abcdefgh", "abcdefgi",
        ];
        let long = [
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "bbcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for a in words.iter().chain(&long) {
            for b in words.iter().chain(&long) {
                assert_eq!(short_eq(a.as_bytes(), b.as_bytes()), a == b, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn stack_spills_and_unwinds_in_order() {
        let mut stack: Stack<usize, 3> = Stack::new();
        for i in 0..10 {
            stack.push(i);
        }
        if let Some(top) = stack.last_mut() {
            *top += 100;
        }
        let popped: Vec<_> = std::iter::from_fn(|| stack.pop()).collect();
        assert_eq!(popped, vec![109, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn split_level_keeps_empty_levels() {
        assert_eq!(split_level("a/b/c"), ("a", Some("b/c")));
        assert_eq!(split_level("a"), ("a", None));
        assert_eq!(split_level("/a"), ("", Some("a")));
        assert_eq!(split_level("a/"), ("a", Some("")));
        assert_eq!(split_level(""), ("", None));
    }

    #[test]
    fn hasher_distinguishes_padding_and_is_deterministic() {
        let build = BuildHasherDefault::<LevelHasher>::default();
        assert_ne!(build.hash_one("ab"), build.hash_one("ab\0"));
        assert_ne!(build.hash_one(1u64), build.hash_one(2u64));
        assert_eq!(build.hash_one("sensor"), build.hash_one("sensor"));
        // Every byte of a short tail counts, whatever its length.
        for len in 1..8 {
            let base = vec![b'a'; len];
            for at in 0..len {
                let mut other = base.clone();
                other[at] = b'b';
                assert_ne!(read_tail(&base), read_tail(&other), "len {len} byte {at}");
            }
        }
    }
}
