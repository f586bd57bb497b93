//! Tests for the subscription trie, plus the spec table and reference matcher that the retained
//! tree's tests reuse.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// (filter, topic, matches) cases taken from MQTT 3.1.1 / 5.0 section 4.7.
pub(crate) const SPEC_CASES: &[(&str, &str, bool)] = &[
    // 4.7.1.2 multi-level wildcard (MQTT-4.7.1-2 in 3.1.1, MQTT-4.7.1-1 in 5.0): `#` matches the
    // parent and any number of child levels.
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/tennis/player1/#", "sport/tennis/player2", false),
    ("sport/tennis/player1/#", "sport/tennis", false),
    ("sport/#", "sport", true),
    ("sport/#", "sports", false),
    ("sport/#", "sport/", true),
    ("#", "sport/tennis/player1", true),
    ("#", "/", true),
    ("+/tennis/#", "sport/tennis/player1/ranking", true),
    ("+/#", "sport", true),
    // 4.7.1.3 single-level wildcard (MQTT-4.7.1-3 in 3.1.1, MQTT-4.7.1-2 in 5.0): `+` matches
    // exactly one level, which may be empty.
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player2", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("sport/+/player1", "sport/tennis/player1", true),
    ("+", "sport", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    ("+/+", "a/b/c", false),
    ("+/+/+", "//", true),
    // 4.7.1.1 topic level separator: empty levels are levels of their own.
    ("/finance", "/finance", true),
    ("/finance", "finance", false),
    ("finance", "/finance", false),
    ("a//b", "a//b", true),
    ("a//b", "a/b", false),
    ("a/+/b", "a//b", true),
    ("/", "/", true),
    ("+", "/", false),
    // 4.7.3: topics are case sensitive and may contain spaces.
    ("ACCOUNTS", "Accounts", false),
    ("Accounts payable", "Accounts payable", true),
    // 4.7.2 topics beginning with `$` (MQTT-4.7.2-1): filters starting with a wildcard do not
    // match them, filters starting with a literal `$` level do.
    ("#", "$SYS/broker/uptime", false),
    ("#", "$SYS", false),
    ("+", "$SYS", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("+/#", "$SYS/monitor", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/#", "$SYS", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$SYS/+/Clients", "$SYS/monitor/Clients", true),
    // The `$` rule is about the first level only.
    ("a/+", "a/$b", true),
    ("a/#", "a/$b/c", true),
];

/// Reference matcher written straight from the spec text, on split level vectors, to check the
/// tries against.
pub(crate) fn naive_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if topic.starts_with('$') && (f[0] == "+" || f[0] == "#") {
        return false;
    }
    for (i, level) in f.iter().enumerate() {
        if *level == "#" {
            // Only valid as the last level; it then matches whatever is left, even nothing.
            return i == f.len() - 1;
        }
        match t.get(i) {
            Some(t_level) if *level == "+" || level == t_level => {}
            _ => return false,
        }
    }
    f.len() == t.len()
}

/// First levels: more than `FEW_CHILDREN` names, so the root switches to (and, as entries are
/// removed, back from) its hash map form.
const FIRST_LEVELS: &[&str] = &["a", "b", "", "$a", "c", "d", "e", "f", "g", "h", "i"];

/// Deeper levels: a tiny alphabet so that random filters and topics collide often.
const LEVELS: &[&str] = &["a", "b", "", "$a"];

/// Random valid filters: `+` anywhere, `#` only last.
pub(crate) fn filter_strategy() -> impl Strategy<Value = String> {
    let first = prop::sample::select([FIRST_LEVELS, &["+"]].concat());
    let level = prop::sample::select([LEVELS, &["+"]].concat());
    (
        prop::option::weighted(0.9, first),
        prop::collection::vec(level, 0..3),
        any::<bool>(),
    )
        .prop_map(|(first, rest, hash)| {
            let mut levels: Vec<&str> = first.into_iter().collect();
            if !levels.is_empty() {
                levels.extend(rest);
            }
            if hash || levels.is_empty() {
                levels.push("#");
            }
            levels.join("/")
        })
}

/// Random topic names over the same alphabets, without wildcards.
pub(crate) fn topic_strategy() -> impl Strategy<Value = String> {
    let first = prop::sample::select(FIRST_LEVELS);
    let level = prop::sample::select(LEVELS);
    (first, prop::collection::vec(level, 0..4)).prop_map(|(first, rest)| {
        std::iter::once(first)
            .chain(rest)
            .collect::<Vec<_>>()
            .join("/")
    })
}

fn matches(tree: &SubscriptionTree<u32, String>, topic: &str) -> BTreeSet<(u32, String)> {
    let mut out = BTreeSet::new();
    tree.for_each_match(topic, |k, v| {
        assert!(out.insert((*k, v.clone())), "duplicate match for {topic}");
    });
    out
}

#[test]
fn spec_table() {
    for &(filter, topic, expected) in SPEC_CASES {
        assert_eq!(
            naive_matches(filter, topic),
            expected,
            "reference: {filter} vs {topic}"
        );
        let mut tree = SubscriptionTree::new();
        tree.insert(filter, 1u32, filter.to_string());
        let got = !matches(&tree, topic).is_empty();
        assert_eq!(got, expected, "trie: {filter} vs {topic}");
    }
}

#[test]
fn spec_table_all_filters_in_one_tree() {
    let mut tree = SubscriptionTree::new();
    for (i, &(filter, _, _)) in SPEC_CASES.iter().enumerate() {
        tree.insert(filter, i as u32, filter.to_string());
    }
    for &(_, topic, _) in SPEC_CASES {
        let expected: BTreeSet<(u32, String)> = SPEC_CASES
            .iter()
            .enumerate()
            .filter(|(_, (f, _, _))| naive_matches(f, topic))
            .map(|(i, (f, _, _))| (i as u32, f.to_string()))
            .collect();
        assert_eq!(matches(&tree, topic), expected, "topic {topic}");
    }
}

#[test]
fn insert_replace_remove() {
    let mut tree = SubscriptionTree::new();
    assert!(tree.is_empty());
    assert_eq!(tree.insert("a/+", 1u32, "one".to_string()), None);
    assert_eq!(tree.insert("a/+", 2, "two".to_string()), None);
    assert_eq!(
        tree.insert("a/+", 1, "uno".to_string()),
        Some("one".to_string())
    );
    assert_eq!(tree.insert("a/b", 1, "exact".to_string()), None);
    assert_eq!(tree.len(), 3);
    let expected: BTreeSet<_> = [(1, "exact"), (1, "uno"), (2, "two")]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    assert_eq!(matches(&tree, "a/b"), expected);

    assert_eq!(tree.remove("a/+", &3), None, "unknown key");
    assert_eq!(tree.remove("a/#", &1), None, "unknown filter");
    assert_eq!(
        tree.remove("a/b/c", &1),
        None,
        "filter below an existing one"
    );
    assert_eq!(tree.remove("a/+", &1), Some("uno".to_string()));
    assert_eq!(tree.remove("a/+", &1), None, "already removed");
    assert_eq!(tree.len(), 2);
    assert_eq!(matches(&tree, "a/c").len(), 1);
}

#[test]
fn pruning_returns_to_a_bare_root() {
    let mut tree = SubscriptionTree::new();
    let filters = [
        "a/b/c", "a/b", "a/+/c/#", "#", "+", "/", "", "a//b/+", "$SYS/#",
    ];
    for (i, f) in filters.iter().enumerate() {
        tree.insert(f, i as u32, String::new());
    }
    assert!(tree.node_count() > filters.len());
    // Remove the leaves first so that interior nodes must survive while still needed.
    assert!(tree.remove("a/b/c", &0).is_some());
    assert_eq!(matches(&tree, "a/b").len(), 2, "`a/b` and `#`");
    let before = tree.node_count();
    assert!(tree.remove("a/+/c/#", &2).is_some());
    assert_eq!(
        tree.node_count(),
        before - 3,
        "`+`, `c` and `#` nodes pruned"
    );
    for (i, f) in filters.iter().enumerate() {
        tree.remove(f, &(i as u32));
    }
    assert!(tree.is_empty());
    assert_eq!(tree.node_count(), 1);
    assert!(tree.free.is_empty());
}

#[test]
fn invalid_filters_are_stored_and_removable() {
    let mut tree = SubscriptionTree::new();
    for f in ["a/#/b", "#/#", "a/b+", "+x/y", "a#"] {
        tree.insert(f, 1u32, f.to_string());
    }
    // `#` not at the end never matches; partial-level wildcards are plain text.
    assert!(matches(&tree, "a/x/b").is_empty());
    assert!(matches(&tree, "a/b").is_empty());
    assert_eq!(matches(&tree, "a/b+").len(), 1);
    for f in ["a/#/b", "#/#", "a/b+", "+x/y", "a#"] {
        assert_eq!(tree.remove(f, &1), Some(f.to_string()));
    }
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn many_subscribers_on_one_filter() {
    let mut tree = SubscriptionTree::new();
    for k in 0..20_000u32 {
        tree.insert("fan/out", k, k);
    }
    let mut seen = 0u64;
    tree.for_each_match("fan/out", |k, v| {
        assert_eq!(k, v);
        seen += 1;
    });
    assert_eq!(seen, 20_000);
    for k in (0..20_000u32).rev() {
        assert_eq!(tree.remove("fan/out", &k), Some(k));
    }
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn very_deep_filters_do_not_overflow_the_stack() {
    // A 64 KiB filter of `+` levels would recurse 32 768 times in a recursive trie.
    let depth = 32_768;
    let filter = vec!["+"; depth].join("/");
    let topic = vec!["x"; depth].join("/");
    let mut tree = SubscriptionTree::new();
    tree.insert(&filter, 1u32, ());
    tree.insert(&topic, 2, ());
    let mut seen = Vec::new();
    tree.for_each_match(&topic, |k, _| seen.push(*k));
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2]);
    assert_eq!(tree.remove(&filter, &1), Some(()));
    assert_eq!(tree.remove(&topic, &2), Some(()));
    assert_eq!(tree.node_count(), 1);
    tree.insert(&filter, 1, ());
    drop(tree);
}

#[test]
fn branching_deeper_than_the_inline_stack() {
    // Filters `x/…/x/+/x/…/x` with the `+` at every depth: matching `x/…/x` leaves one pending
    // `+` branch per level, which spills the match stack to the heap.
    let depth = 3 * INLINE_FRAMES;
    let mut tree = SubscriptionTree::new();
    for plus_at in 0..depth {
        let levels: Vec<&str> = (0..depth)
            .map(|i| if i == plus_at { "+" } else { "x" })
            .collect();
        tree.insert(&levels.join("/"), plus_at as u32, ());
    }
    tree.insert(&vec!["x"; depth].join("/"), depth as u32, ());
    let mut seen = Vec::new();
    tree.for_each_match(&vec!["x"; depth].join("/"), |k, _| seen.push(*k));
    seen.sort_unstable();
    assert_eq!(seen, (0..=depth as u32).collect::<Vec<_>>());
}

#[test]
fn node_stays_small() {
    // Nodes are the bulk of the memory at a million subscriptions.
    assert!(std::mem::size_of::<Node<u64, u64>>() <= 64);
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u32),
    /// Subscribes keys `0..n` to one filter: more than `FEW_KEYS`, to use the map form.
    Fan(String, u32),
    /// Removes a random (filter, key) pair, most of which do not exist.
    Remove(String, u32),
    /// Removes the n-th currently stored pair (modulo their number).
    RemoveStored(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let key = 0..4u32;
    prop_oneof![
        6 => (filter_strategy(), key.clone()).prop_map(|(f, k)| Op::Insert(f, k)),
        1 => (filter_strategy(), 0..40u32).prop_map(|(f, n)| Op::Fan(f, n)),
        1 => (filter_strategy(), key).prop_map(|(f, k)| Op::Remove(f, k)),
        4 => any::<usize>().prop_map(Op::RemoveStored),
    ]
}

proptest! {
    #[test]
    fn matches_reference_model(
        ops in prop::collection::vec(op_strategy(), 0..100),
        topics in prop::collection::vec(topic_strategy(), 1..20),
    ) {
        let mut tree = SubscriptionTree::new();
        // A BTreeMap so that `RemoveStored` picks the same pair on every run of a case.
        let mut model: BTreeMap<(String, u32), String> = BTreeMap::new();
        for (n, op) in ops.iter().enumerate() {
            let mut insert = |f: &String, k: u32| {
                let value = format!("{f}#{n}");
                let old = model.insert((f.clone(), k), value.clone());
                prop_assert_eq!(tree.insert(f, k, value), old);
                Ok(())
            };
            match op {
                Op::Insert(f, k) => insert(f, *k)?,
                Op::Fan(f, count) => {
                    for k in 0..*count {
                        insert(f, k)?;
                    }
                }
                Op::Remove(f, k) => {
                    prop_assert_eq!(tree.remove(f, k), model.remove(&(f.clone(), *k)));
                }
                Op::RemoveStored(i) => {
                    if let Some((f, k)) = model.keys().nth(i % model.len().max(1)).cloned() {
                        prop_assert_eq!(tree.remove(&f, &k), model.remove(&(f.clone(), k)));
                    }
                }
            }
            prop_assert_eq!(tree.len(), model.len());
        }
        for topic in &topics {
            let expected: BTreeSet<(u32, String)> = model
                .iter()
                .filter(|((f, _), _)| naive_matches(f, topic))
                .map(|((_, k), v)| (*k, v.clone()))
                .collect();
            prop_assert_eq!(matches(&tree, topic), expected, "topic {}", topic);
        }
        for (f, k) in model.keys() {
            prop_assert!(tree.remove(f, k).is_some());
        }
        prop_assert!(tree.is_empty());
        prop_assert_eq!(tree.node_count(), 1);
    }
}
