#!/usr/bin/env python3
"""MQTT 5.0 shared subscriptions ($share/{group}/{filter}) with paho-mqtt."""

import time

from midgecheck import QUIET, V5, WAIT, Checks, Client, check, check_eq, unique

N = 40


def members(port, share_filter, count=2, qos=1):
    out = []
    for _ in range(count):
        c = Client(port, V5)
        c.connect()
        c.subscribe(share_filter, qos)
        out.append(c)
    return out


def gather(clients, total):
    """Collects from all clients until `total` messages arrived overall (bounded), then
    QUIET more; returns one payload list per client."""
    got = [[] for _ in clients]
    deadline = time.monotonic() + WAIT
    while sum(len(g) for g in got) < total and time.monotonic() < deadline:
        for i, c in enumerate(clients):
            got[i].extend(m.payload for m in c.collect(0.02))
    for i, c in enumerate(clients):
        got[i].extend(m.payload for m in c.collect(QUIET if i == 0 else 0.05))
    return got


def publish_all(port, topic, count, qos=1, prefix="m"):
    pub = Client(port, V5)
    pub.connect()
    sent = [f"{prefix}-{i:03}".encode() for i in range(count)]
    for p in sent:
        pub.publish(topic, p, qos=qos)
    pub.disconnect()
    return sent


def check_split(what, got, sent, spread=True):
    everything = [p for g in got for p in g]
    dups = sorted({p for p in everything if everything.count(p) > 1})
    check(not dups, f"{what}: duplicated across/within members: {dups[:5]!r}")
    missing = sorted(set(sent) - set(everything))
    check(not missing, f"{what}: {len(missing)} never delivered, e.g. {missing[:5]!r}")
    check_eq(f"{what}: total", len(everything), len(sent))
    if spread:
        counts = [len(g) for g in got]
        check(all(n > 0 for n in counts), f"{what}: not spread over members: {counts}")


def spread(port):
    topic = unique("sh/t")
    group = unique("g")
    ms = members(port, f"$share/{group}/{topic}")
    sent = publish_all(port, topic, N)
    check_split("one group, two members", gather(ms, N), sent)
    for c in ms:
        c.disconnect()


def spread_qos2(port):
    topic = unique("sh/q2")
    group = unique("g")
    ms = members(port, f"$share/{group}/{topic}", qos=2)
    sent = publish_all(port, topic, N, qos=2)
    got = gather(ms, N)
    check_split("QoS 2 group", got, sent)
    for c in ms:
        c.disconnect()


def with_plain_subscriber(port):
    topic = unique("sh/mixed")
    group = unique("g")
    ms = members(port, f"$share/{group}/{topic}")
    plain = Client(port, V5)
    plain.connect()
    plain.subscribe(topic, 1)
    sent = publish_all(port, topic, N)
    check_split("shared members", gather(ms, N), sent)
    got = plain.expect_n(N, what="messages at the non-shared subscriber")
    check_eq("non-shared subscriber gets everything in order", [m.payload for m in got], sent)
    for c in ms + [plain]:
        c.disconnect()


def two_groups(port):
    topic = unique("sh/groups")
    g1 = members(port, f"$share/{unique('a')}/{topic}")
    g2 = members(port, f"$share/{unique('b')}/{topic}")
    sent = publish_all(port, topic, N)
    check_split("group a", gather(g1, N), sent)
    check_split("group b", gather(g2, N), sent)
    for c in g1 + g2:
        c.disconnect()


def wildcard_share(port):
    base = unique("sh/w")
    group = unique("g")
    ms = members(port, f"$share/{group}/{base}/+")
    pub = Client(port, V5)
    pub.connect()
    sent = []
    for i in range(N):
        p = f"w-{i:03}".encode()
        pub.publish(f"{base}/{i % 4}", p, qos=1)
        sent.append(p)
    pub.disconnect()
    check_split("wildcard group", gather(ms, N), sent)
    for c in ms:
        c.disconnect()


def member_leaves(port):
    topic = unique("sh/leave")
    group = unique("g")
    stays, leaves = members(port, f"$share/{group}/{topic}")
    leaves.unsubscribe(f"$share/{group}/{topic}")
    sent = publish_all(port, topic, 10)
    got = stays.expect_n(10, what="messages at the remaining member")
    check_eq("remaining member gets all", [m.payload for m in got], sent)
    leaves.expect_none(what="message after unsubscribing")
    leaves.disconnect()
    # After the other member disconnects too, a new member gets new messages.
    stays.disconnect()
    (late,) = members(port, f"$share/{group}/{topic}", count=1)
    sent = publish_all(port, topic, 3, prefix="late")
    check_eq("new member", [m.payload for m in late.expect_n(3)], sent)
    late.disconnect()


def main():
    checks = Checks(__doc__)
    checks.run("v5 shared subscription spreads without duplicates", spread)
    checks.run("v5 shared subscription qos2", spread_qos2)
    checks.run("v5 shared and non-shared subscribers", with_plain_subscriber)
    checks.run("v5 two share groups each get all", two_groups)
    checks.run("v5 shared wildcard filter", wildcard_share)
    checks.run("v5 remaining member gets all after unsubscribe", member_leaves)
    checks.finish()


if __name__ == "__main__":
    main()
