//! Subscription and retained trie benchmarks at broker scale (a million entries).
//!
//! Run with `cargo bench --bench trie`. The million-entry trees are built once per group; the
//! insert benchmark rebuilds one per iteration and so runs only ten samples.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use midge_core::{RetainedTree, SubscriptionTree};

const SUBSCRIPTIONS: u64 = 1_000_000;
const SITES: u64 = 1_000;

/// Filter for subscription `i`: 80% exact (`site/S/dev/I/cmd`), 10% with a `+`
/// (`site/S/+/I/status`) and 10% with a `#` (`site/S/dev/I/#`), spread over 1 000 sites so the
/// site level has 1 000 children and each site about 900 devices plus a `+` branch.
fn filter(i: u64) -> String {
    let site = (i / 10) % SITES;
    match i % 10 {
        8 => format!("site/{site}/+/{i}/status"),
        9 => format!("site/{site}/dev/{i}/#"),
        _ => format!("site/{site}/dev/{i}/cmd"),
    }
}

fn build_subscriptions() -> SubscriptionTree<u64, u8> {
    let mut tree = SubscriptionTree::new();
    for i in 0..SUBSCRIPTIONS {
        tree.insert(&filter(i), i, 1);
    }
    // A handful of monitoring clients subscribed to every device's status.
    for k in 0..8 {
        tree.insert("site/+/dev/+/status", SUBSCRIPTIONS + k, 2);
    }
    tree
}

fn count_matches(tree: &SubscriptionTree<u64, u8>, topic: &str) -> u64 {
    let mut n = 0u64;
    tree.for_each_match(topic, |k, v| {
        black_box((k, v));
        n += 1;
    });
    n
}

fn subscription_insert(c: &mut Criterion) {
    let filters: Vec<String> = (0..SUBSCRIPTIONS).map(filter).collect();
    let mut group = c.benchmark_group("subscriptions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SUBSCRIPTIONS));
    group.bench_function("insert_1m", |b| {
        b.iter_with_large_drop(|| {
            let mut tree = SubscriptionTree::new();
            for (i, f) in filters.iter().enumerate() {
                tree.insert(f, i as u64, 0u8);
            }
            tree
        })
    });
    group.finish();
}

fn subscription_match(c: &mut Criterion) {
    let tree = build_subscriptions();
    // Device 420_000 has an exact `cmd` filter, 420_008 a `+` one and 420_009 a `#` one.
    let exact = format!("site/{}/dev/420000/cmd", 42_000 % SITES);
    let plus = format!("site/{}/dev/420008/status", 42_000 % SITES);
    let hash = format!("site/{}/dev/420009/cmd/reboot", 42_000 % SITES);
    let miss = format!("site/{}/dev/999999999/cmd", 42_000 % SITES);
    assert_eq!(count_matches(&tree, &exact), 1);
    assert_eq!(count_matches(&tree, &plus), 1 + 8);
    assert_eq!(count_matches(&tree, &hash), 1);
    assert_eq!(count_matches(&tree, &miss), 0);

    let mut group = c.benchmark_group("subscriptions_1m");
    group.throughput(Throughput::Elements(1));
    for (name, topic) in [
        ("match_exact", &exact),
        ("match_plus_9", &plus),
        ("match_hash", &hash),
        ("match_none", &miss),
    ] {
        group.bench_function(name, |b| b.iter(|| count_matches(&tree, black_box(topic))));
    }
    // Subscribe/unsubscribe churn on a populated tree: one new branch created and pruned.
    let mut churn = tree;
    group.bench_function("insert_remove_one", |b| {
        b.iter(|| {
            churn.insert(black_box("site/7/dev/new/cmd"), u64::MAX, 0);
            churn.remove(black_box("site/7/dev/new/cmd"), &u64::MAX)
        })
    });
    group.finish();
}

fn fanout(c: &mut Criterion) {
    const FANOUT: u64 = 10_000;
    let mut tree = SubscriptionTree::new();
    for k in 0..FANOUT {
        tree.insert("fan/out", k, 0u8);
    }
    let mut group = c.benchmark_group("fanout_10k");
    group.throughput(Throughput::Elements(FANOUT));
    group.bench_function("match", |b| {
        b.iter(|| count_matches(&tree, black_box("fan/out")))
    });
    group.bench_function("insert_then_remove_all", |b| {
        b.iter_batched(
            SubscriptionTree::<u64, u8>::new,
            |mut tree| {
                for k in 0..FANOUT {
                    tree.insert("fan/out", k, 0);
                }
                for k in 0..FANOUT {
                    tree.remove("fan/out", &k);
                }
                tree
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// 1 000 sites x 100 devices x 10 metrics = 1M retained topics `site/S/dev/D/mM`.
fn build_retained() -> RetainedTree<u64> {
    let mut tree = RetainedTree::new();
    let mut n = 0;
    for site in 0..SITES {
        for dev in 0..100 {
            for metric in 0..10 {
                tree.insert(&format!("site/{site}/dev/{dev}/m{metric}"), n);
                n += 1;
            }
        }
    }
    tree
}

fn count_retained(tree: &RetainedTree<u64>, filter: &str) -> u64 {
    let mut n = 0u64;
    tree.for_each_match(filter, |topic, v| {
        black_box((topic, v));
        n += 1;
    });
    n
}

fn retained(c: &mut Criterion) {
    let tree = build_retained();
    assert_eq!(tree.len(), 1_000_000);
    let cases = [
        ("exact", "site/42/dev/7/m3", 1),
        ("plus_device_100", "site/42/dev/+/m3", 100),
        ("plus_site_1000", "site/+/dev/7/m3", 1_000),
        ("hash_site_1000", "site/42/#", 1_000),
        ("hash_device_10", "site/42/dev/7/#", 10),
    ];
    let mut group = c.benchmark_group("retained_1m");
    for (name, filter, expected) in cases {
        assert_eq!(count_retained(&tree, filter), expected, "{filter}");
        group.throughput(Throughput::Elements(expected));
        group.bench_function(name, |b| {
            b.iter(|| count_retained(&tree, black_box(filter)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    subscription_insert,
    subscription_match,
    fanout,
    retained
);
criterion_main!(benches);
