#!/usr/bin/env python3
"""QoS 0/1/2 delivery through the broker with paho-mqtt, for MQTT 3.1.1 and 5.0."""

from midgecheck import QUIET, VERSIONS, Checks, Client, check, check_eq, unique


def round_trip(port, version, qos):
    topic = unique(f"qos/rt{qos}")
    sub = Client(port, version)
    sub.connect()
    check_eq("granted QoS", sub.subscribe(topic, 2), 2)
    pub = Client(port, version)
    pub.connect()
    payload = f"hello at qos {qos}".encode()
    pub.publish(topic, payload, qos=qos)
    m = sub.expect()
    check_eq("topic", m.topic, topic)
    check_eq("payload", m.payload, payload)
    check_eq("qos", m.qos, qos)
    check_eq("retain", m.retain, False)
    sub.expect_none()
    pub.disconnect()
    sub.disconnect()


def downgrade(port, version):
    # The delivered QoS is the minimum of the published QoS and the granted QoS.
    topic = unique("qos/down")
    subs = []
    for granted in (0, 1):
        s = Client(port, version)
        s.connect()
        check_eq("granted QoS", s.subscribe(topic, granted), granted)
        subs.append((granted, s))
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"downgraded", qos=2)
    for granted, s in subs:
        m = s.expect()
        check_eq(f"payload (sub QoS {granted})", m.payload, b"downgraded")
        check_eq(f"qos (sub QoS {granted})", m.qos, granted)
        s.disconnect()
    pub.disconnect()


def exactly_once(port, version):
    topic = unique("qos/once")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(topic, 2)
    pub = Client(port, version)
    pub.connect()
    n = 20
    sent = [f"once-{i}".encode() for i in range(n)]
    for p in sent:
        pub.publish(topic, p, qos=2)
    got = sub.expect_n(n, what="QoS 2 messages")
    extra = sub.collect(QUIET)
    payloads = [m.payload for m in got + extra]
    for p in sent:
        check_eq(f"copies of {p!r}", payloads.count(p), 1)
    check_eq("total received", len(payloads), n)
    check_eq("order", [m.payload for m in got], sent)
    check_eq("qos of all", {m.qos for m in got}, {2})
    pub.disconnect()
    sub.disconnect()


def at_least_once_ordered(port, version):
    topic = unique("qos/order1")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(topic, 1)
    pub = Client(port, version)
    pub.connect()
    sent = [f"m{i:02}".encode() for i in range(30)]
    for p in sent:
        pub.publish(topic, p, qos=1)
    got = sub.expect_n(len(sent), what="QoS 1 messages")
    check_eq("order", [m.payload for m in got], sent)
    check_eq("qos of all", {m.qos for m in got}, {1})
    pub.disconnect()
    sub.disconnect()


def binary_payload(port, version):
    topic = unique("qos/bin")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(topic, 1)
    pub = Client(port, version)
    pub.connect()
    payload = bytes(range(256)) * 256  # 64 KiB with every byte value, including 0
    pub.publish(topic, payload, qos=1)
    m = sub.expect()
    check_eq("payload length", len(m.payload), len(payload))
    check_eq("payload equal", m.payload == payload, True)
    pub.publish(topic, b"", qos=1)
    check_eq("empty payload", sub.expect().payload, b"")
    pub.disconnect()
    sub.disconnect()


def wildcards(port, version):
    base = unique("qos/wild")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(f"{base}/+/x", 1)
    sub.subscribe(f"{base}/multi/#", 1)
    pub = Client(port, version)
    pub.connect()
    pub.publish(f"{base}/a/x", b"plus", qos=1)
    pub.publish(f"{base}/a/y", b"no-match", qos=1)
    pub.publish(f"{base}/multi", b"hash-parent", qos=1)
    pub.publish(f"{base}/multi/1/2", b"hash-deep", qos=1)
    got = sub.expect_n(3)
    check_eq("matched", sorted((m.topic, m.payload) for m in got), sorted([
        (f"{base}/a/x", b"plus"),
        (f"{base}/multi", b"hash-parent"),
        (f"{base}/multi/1/2", b"hash-deep"),
    ]))
    sub.expect_none()
    pub.disconnect()
    sub.disconnect()


def unsubscribe_stops(port, version):
    topic = unique("qos/unsub")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(topic, 1)
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"before", qos=1)
    check_eq("before unsubscribe", sub.expect().payload, b"before")
    sub.unsubscribe(topic)
    pub.publish(topic, b"after", qos=1)
    sub.expect_none(what="message after UNSUBACK")
    pub.disconnect()
    sub.disconnect()


def overlapping_max_qos(port, version):
    # [MQTT-3.3.5-1]: with overlapping subscriptions the message is delivered respecting
    # the maximum QoS of all matching subscriptions (one copy, or one per subscription).
    base = unique("qos/overlap")
    sub = Client(port, version)
    sub.connect()
    sub.subscribe(f"{base}/+", 0)
    sub.subscribe(f"{base}/#", 2)
    pub = Client(port, version)
    pub.connect()
    pub.publish(f"{base}/x", b"overlap", qos=2)
    got = [sub.expect()] + sub.collect(QUIET)
    check(len(got) in (1, 2), f"{len(got)} copies delivered")
    check_eq("payloads", {m.payload for m in got}, {b"overlap"})
    check_eq("highest delivered qos", max(m.qos for m in got), 2)
    pub.disconnect()
    sub.disconnect()


def main():
    checks = Checks(__doc__)
    for name, version in VERSIONS:
        for qos in (0, 1, 2):
            checks.run(f"{name} qos{qos} round trip", round_trip, version, qos)
        checks.run(f"{name} qos downgraded to granted qos", downgrade, version)
        checks.run(f"{name} qos2 exactly once", exactly_once, version)
        checks.run(f"{name} qos1 all delivered in order", at_least_once_ordered, version)
        checks.run(f"{name} binary 64k and empty payloads", binary_payload, version)
        checks.run(f"{name} wildcard filters", wildcards, version)
        checks.run(f"{name} unsubscribe stops delivery", unsubscribe_stops, version)
        checks.run(f"{name} overlapping subscriptions use max qos", overlapping_max_qos,
                   version)
    checks.finish()


if __name__ == "__main__":
    main()
