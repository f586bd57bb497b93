//! Tests for the retained trie; the spec table and reference matcher come from the subscription
//! trie's tests so both tries are held to the same definition of matching.

use super::*;
use crate::subscription_tree::tests::{filter_strategy, naive_matches, topic_strategy, SPEC_CASES};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

fn matches<V: Clone + Ord>(tree: &RetainedTree<V>, filter: &str) -> BTreeSet<(String, V)> {
    let mut out = BTreeSet::new();
    tree.for_each_match(filter, |topic, v| {
        assert!(
            out.insert((topic.to_owned(), v.clone())),
            "duplicate {topic}"
        );
    });
    out
}

#[test]
fn spec_table() {
    for &(filter, topic, expected) in SPEC_CASES {
        let mut tree = RetainedTree::new();
        tree.insert(topic, 1u32);
        let got = matches(&tree, filter);
        let want: BTreeSet<_> = expected
            .then(|| (topic.to_owned(), 1))
            .into_iter()
            .collect();
        assert_eq!(got, want, "{filter} vs {topic}");
    }
}

#[test]
fn spec_table_all_topics_in_one_tree() {
    let mut tree = RetainedTree::new();
    for &(_, topic, _) in SPEC_CASES {
        tree.insert(topic, 0u32);
    }
    for &(filter, _, _) in SPEC_CASES {
        let want: BTreeSet<(String, u32)> = SPEC_CASES
            .iter()
            .filter(|(_, t, _)| naive_matches(filter, t))
            .map(|(_, t, _)| (t.to_string(), 0))
            .collect();
        assert_eq!(matches(&tree, filter), want, "filter {filter}");
    }
}

#[test]
fn insert_replace_get_remove() {
    let mut tree = RetainedTree::new();
    assert!(tree.is_empty());
    assert_eq!(tree.insert("a/b", 1), None);
    assert_eq!(tree.insert("a/b", 2), Some(1));
    assert_eq!(tree.insert("a", 3), None);
    assert_eq!(tree.insert("/a", 4), None);
    assert_eq!(tree.len(), 3);
    assert_eq!(tree.get("a/b"), Some(&2));
    assert_eq!(tree.get("a"), Some(&3));
    assert_eq!(tree.get("/a"), Some(&4));
    assert_eq!(tree.get("a/b/c"), None);
    assert_eq!(tree.get(""), None);
    assert_eq!(tree.remove("a/b/c"), None);
    assert_eq!(tree.remove("a/b"), Some(2));
    assert_eq!(tree.remove("a/b"), None);
    assert_eq!(tree.get("a"), Some(&3), "parent kept");
    assert_eq!(tree.len(), 2);
}

#[test]
fn callback_gets_full_topic_names() {
    let mut tree = RetainedTree::new();
    for topic in ["a", "a/b", "a//c", "/a", "/", "a/b/", "$SYS/x"] {
        tree.insert(topic, 0u8);
    }
    let names = |filter| {
        matches(&tree, filter)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("#"), ["/", "/a", "a", "a//c", "a/b", "a/b/"]);
    assert_eq!(names("a/#"), ["a", "a//c", "a/b", "a/b/"]);
    assert_eq!(names("+/+"), ["/", "/a", "a/b"]);
    assert_eq!(names("a/+/+"), ["a//c", "a/b/"]);
    assert_eq!(names("$SYS/+"), ["$SYS/x"]);
    assert_eq!(names("a//c"), ["a//c"]);
    // `#` anywhere but last matches nothing.
    assert!(names("a/#/c").is_empty());
}

#[test]
fn pruning_returns_to_a_bare_root() {
    let mut tree = RetainedTree::new();
    let topics = ["a/b/c", "a/b", "a/x/y/z", "/", "", "$SYS/broker/load"];
    for t in topics {
        tree.insert(t, ());
    }
    assert!(tree.node_count() > topics.len());
    let before = tree.node_count();
    assert_eq!(tree.remove("a/x/y/z"), Some(()));
    assert_eq!(tree.node_count(), before - 3, "`x`, `y` and `z` pruned");
    for t in topics {
        tree.remove(t);
    }
    assert!(tree.is_empty());
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn retain_removes_and_prunes() {
    let mut tree = RetainedTree::new();
    for (i, t) in ["a/1", "a/2", "b/1", "$SYS/1", "c/d/e/f"]
        .iter()
        .enumerate()
    {
        tree.insert(t, i);
    }
    let mut visited = Vec::new();
    tree.retain(|topic, v| {
        visited.push(topic.to_owned());
        v % 2 == 0
    });
    visited.sort();
    assert_eq!(visited, ["$SYS/1", "a/1", "a/2", "b/1", "c/d/e/f"]);
    assert_eq!(tree.len(), 3);
    assert_eq!(tree.get("a/2"), None);
    assert_eq!(tree.get("$SYS/1"), None);
    assert_eq!(tree.get("c/d/e/f"), Some(&4));
    tree.retain(|_, _| false);
    assert!(tree.is_empty());
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn very_deep_topics_do_not_overflow_the_stack() {
    let depth = 32_768;
    let deep = vec!["x"; depth].join("/");
    let mut tree = RetainedTree::new();
    tree.insert(&deep, 1u8);
    tree.insert("x", 2);
    assert_eq!(matches(&tree, "#").len(), 2);
    assert_eq!(matches(&tree, &vec!["+"; depth].join("/")).len(), 1);
    tree.retain(|_, v| *v == 2);
    assert_eq!(tree.len(), 1);
    assert_eq!(tree.node_count(), 2);
    tree.insert(&deep, 1);
    drop(tree);
}

#[test]
fn wide_branching_deeper_than_the_inline_stack() {
    // Two children per level for 40 levels: a `#` walk keeps one frame per level.
    let mut tree = RetainedTree::new();
    let mut prefix = String::from("r");
    for i in 0..40 {
        tree.insert(&format!("{prefix}/leaf"), i);
        prefix.push_str("/n");
    }
    let got = matches(&tree, "r/#");
    assert_eq!(got.len(), 40);
    assert!(got.contains(&(format!("r{}/leaf", "/n".repeat(39)), 39)));
}

proptest! {
    #[test]
    fn matches_reference_model(
        inserts in prop::collection::vec((topic_strategy(), 0..100u32), 0..60),
        removes in prop::collection::vec(topic_strategy(), 0..20),
        filters in prop::collection::vec(filter_strategy(), 1..20),
        keep_below in 0..100u32,
    ) {
        let mut tree = RetainedTree::new();
        let mut model = BTreeMap::new();
        for (topic, value) in &inserts {
            prop_assert_eq!(tree.insert(topic, *value), model.insert(topic.clone(), *value));
        }
        for topic in &removes {
            prop_assert_eq!(tree.remove(topic), model.remove(topic));
            prop_assert_eq!(tree.len(), model.len());
        }
        for (topic, value) in &model {
            prop_assert_eq!(tree.get(topic), Some(value));
        }
        for filter in &filters {
            let want: BTreeSet<(String, u32)> = model
                .iter()
                .filter(|(t, _)| naive_matches(filter, t))
                .map(|(t, v)| (t.clone(), *v))
                .collect();
            prop_assert_eq!(matches(&tree, filter), want, "filter {}", filter);
        }
        tree.retain(|_, v| *v < keep_below);
        model.retain(|_, v| *v < keep_below);
        prop_assert_eq!(tree.len(), model.len());
        let all: BTreeMap<String, u32> = {
            let mut all = BTreeMap::new();
            tree.retain(|t, v| {
                all.insert(t.to_owned(), *v);
                true
            });
            all
        };
        prop_assert_eq!(&all, &model);
        tree.retain(|_, _| false);
        prop_assert_eq!(tree.node_count(), 1);
    }
}

/// Every match of `filter`, in walk order, resumed `window` topics at a time.
fn windows<V: Clone>(tree: &RetainedTree<V>, filter: &str, window: usize) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    loop {
        let after = all.last().cloned();
        let mut taken = 0;
        let flow = tree.for_each_match_after(filter, after.as_deref(), |topic, _| {
            all.push(topic.to_owned());
            taken += 1;
            if taken == window {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if flow.is_continue() {
            return all;
        }
    }
}

#[test]
fn walks_in_topic_order_and_resume_after_any_topic() {
    let mut tree = RetainedTree::new();
    let topics = [
        "a", "a/b", "a-", "a/b/c", "a//x", "b", "/", "/a", "a/c", "$SYS/x", "a/b/",
    ];
    for t in topics {
        tree.insert(t, ());
    }
    let mut sorted: Vec<&str> = topics
        .iter()
        .copied()
        .filter(|t| !t.starts_with('$'))
        .collect();
    sorted.sort_by(|a, b| topic_order(a, b));
    assert_eq!(
        sorted,
        ["/", "/a", "a", "a//x", "a/b", "a/b/", "a/b/c", "a/c", "a-", "b"]
    );
    assert_eq!(windows(&tree, "#", usize::MAX), sorted);
    for window in 1..4 {
        assert_eq!(windows(&tree, "#", window), sorted, "window {window}");
    }
    // Resuming after a topic that is not stored (removed meanwhile) continues after it.
    let mut rest = Vec::new();
    let _ = tree.for_each_match_after("a/#", Some("a/b/b"), |t, _| {
        rest.push(t.to_owned());
        ControlFlow::Continue(())
    });
    assert_eq!(rest, ["a/b/c", "a/c"]);
    // A literal filter has one match: resuming after anything yields nothing.
    let mut hits = 0;
    let _ = tree.for_each_match_after("a/b", Some("0"), |_, _| {
        hits += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(hits, 0);
}

#[test]
fn many_children_resume_in_order() {
    let mut tree = RetainedTree::new();
    for i in 0..20_000u32 {
        tree.insert(&format!("dev/{i:06}/t"), i);
    }
    let got = windows(&tree, "dev/+/t", 1000);
    assert_eq!(got.len(), 20_000);
    assert!(got.windows(2).all(|w| topic_order(&w[0], &w[1]).is_lt()));
}

proptest! {
    #[test]
    fn resumed_walks_match_the_sorted_reference(
        inserts in prop::collection::vec(topic_strategy(), 0..60),
        filter in filter_strategy(),
        window in 1..5usize,
        removed_each_window in prop::collection::vec(topic_strategy(), 0..10),
    ) {
        let mut tree = RetainedTree::new();
        for topic in &inserts {
            tree.insert(topic, ());
        }
        let mut want: Vec<String> = inserts
            .iter()
            .filter(|t| naive_matches(&filter, t))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        want.sort_by(|a, b| topic_order(a, b));
        prop_assert_eq!(windows(&tree, &filter, window), want.clone());

        // Removing topics between windows (the cursor's own included) never repeats or skips
        // a topic that stays stored.
        let mut seen: Vec<String> = Vec::new();
        let mut removals = removed_each_window.iter();
        loop {
            let after = seen.last().cloned();
            let mut taken = 0;
            let flow = tree.for_each_match_after(&filter, after.as_deref(), |topic, _| {
                seen.push(topic.to_owned());
                taken += 1;
                if taken == window { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            });
            if flow.is_continue() {
                break;
            }
            if let Some(gone) = removals.next() {
                tree.remove(gone);
            }
        }
        prop_assert!(seen.windows(2).all(|w| topic_order(&w[0], &w[1]).is_lt()));
        for topic in &want {
            if tree.get(topic).is_some() {
                prop_assert!(seen.contains(topic), "{} skipped", topic);
            }
        }
    }
}
