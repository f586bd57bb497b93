//! The children of one retained-trie node, kept in level-name order.

use std::collections::btree_map::{self, BTreeMap};
use std::ops::Bound;

/// Children per node kept in a sorted vector before switching to a B-tree.
const FEW_CHILDREN: usize = 16;

/// Child nodes by level name, iterable in byte order of the names from any starting name, so
/// a walk interrupted after some topic can resume right after it.
///
/// Most nodes have one or two children (a sorted vector: one small allocation, binary search);
/// a node such as `devices/<id>` may have a million, which a B-tree keeps at O(log n) per
/// insert and per resumed walk.
#[derive(Debug)]
pub(super) enum Children<Id> {
    /// Up to `FEW_CHILDREN` entries, sorted by name.
    Few(Vec<(Box<str>, Id)>),
    /// More entries.
    Many(BTreeMap<Box<str>, Id>),
}

impl<Id: Copy> Default for Children<Id> {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl<Id: Copy> Children<Id> {
    /// True if there are no children.
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Children::Few(v) => v.is_empty(),
            Children::Many(m) => m.is_empty(),
        }
    }

    /// The child named `level`.
    pub(super) fn get(&self, level: &str) -> Option<Id> {
        match self {
            Children::Few(v) => v
                .binary_search_by(|(k, _)| (**k).cmp(level))
                .ok()
                .map(|at| v[at].1),
            Children::Many(m) => m.get(level).copied(),
        }
    }

    /// Adds child `id` named `level` (which must not exist yet).
    pub(super) fn insert(&mut self, level: &str, id: Id) {
        match self {
            Children::Few(v) => match v.binary_search_by(|(k, _)| (**k).cmp(level)) {
                Ok(at) => v[at].1 = id,
                Err(at) if v.len() < FEW_CHILDREN => {
                    if v.capacity() == 0 {
                        // Most nodes have one child: start at one slot, not `Vec`'s four.
                        v.reserve_exact(1);
                    }
                    v.insert(at, (level.into(), id));
                }
                Err(_) => {
                    let mut map: BTreeMap<Box<str>, Id> = v.drain(..).collect();
                    map.insert(level.into(), id);
                    *self = Children::Many(map);
                }
            },
            Children::Many(m) => {
                m.insert(level.into(), id);
            }
        }
    }

    /// Removes the child named `level`.
    pub(super) fn remove(&mut self, level: &str) {
        match self {
            Children::Few(v) => {
                if let Ok(at) = v.binary_search_by(|(k, _)| (**k).cmp(level)) {
                    v.remove(at);
                    if v.is_empty() {
                        // Emptied nodes are recycled and should cost nothing.
                        *v = Vec::new();
                    }
                }
            }
            Children::Many(m) => {
                m.remove(level);
                if m.len() <= FEW_CHILDREN / 2 {
                    // Back only at half the threshold, so a node does not flap between forms.
                    *self = Children::Few(std::mem::take(m).into_iter().collect());
                }
            }
        }
    }

    /// The children in name order, starting with the first whose name is `>= from` (all of
    /// them without `from`).
    pub(super) fn iter_from(&self, from: Option<&str>) -> ChildIter<'_, Id> {
        match self {
            Children::Few(v) => {
                let start = from.map_or(0, |from| v.partition_point(|(k, _)| **k < *from));
                ChildIter::Few(v[start..].iter())
            }
            Children::Many(m) => {
                let lower = from.map_or(Bound::Unbounded, Bound::Included);
                ChildIter::Many(m.range::<str, _>((lower, Bound::Unbounded)))
            }
        }
    }
}

/// Iterator over a node's children in name order.
pub(super) enum ChildIter<'a, Id> {
    Few(std::slice::Iter<'a, (Box<str>, Id)>),
    Many(btree_map::Range<'a, Box<str>, Id>),
}

impl<'a, Id: Copy> Iterator for ChildIter<'a, Id> {
    type Item = (&'a str, Id);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChildIter::Few(it) => it.next().map(|(k, id)| (&**k, *id)),
            ChildIter::Many(it) => it.next().map(|(k, id)| (&**k, *id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: &Children<u32>, from: Option<&str>) -> Vec<String> {
        c.iter_from(from).map(|(k, _)| k.to_owned()).collect()
    }

    #[test]
    fn sorted_in_both_forms_and_back() {
        let mut c = Children::default();
        let all: Vec<String> = (0..40).rev().map(|i| format!("n{i:02}")).collect();
        for (i, name) in all.iter().enumerate() {
            c.insert(name, i as u32);
            assert_eq!(c.get(name), Some(i as u32));
            let got = names(&c, None);
            let mut want = got.clone();
            want.sort();
            assert_eq!(got, want);
        }
        assert!(matches!(c, Children::Many(_)));
        assert_eq!(
            names(&c, Some("n35"))[..],
            ["n35", "n36", "n37", "n38", "n39"]
        );
        assert_eq!(names(&c, Some("n355")), ["n36", "n37", "n38", "n39"]);
        for name in &all[..35] {
            c.remove(name);
        }
        assert!(matches!(c, Children::Few(_)));
        assert_eq!(names(&c, None), ["n00", "n01", "n02", "n03", "n04"]);
        assert_eq!(names(&c, Some("n02")), ["n02", "n03", "n04"]);
        assert_eq!(c.get("n39"), None);
        for name in &all[35..] {
            c.remove(name);
        }
        assert!(c.is_empty());
    }
}
