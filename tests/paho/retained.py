#!/usr/bin/env python3
"""Retained messages with paho-mqtt: set, replace, clear, flags, for MQTT 3.1.1 and 5.0."""

from midgecheck import VERSIONS, Checks, Client, check_eq, unique


def fresh_subscriber(port, version, topic_filter, qos=1):
    s = Client(port, version)
    s.connect()
    s.subscribe(topic_filter, qos)
    return s


def set_replace_clear(port, version):
    topic = unique("ret/a")
    pub = Client(port, version)
    pub.connect()

    # set
    pub.publish(topic, b"first", qos=1, retain=True)
    s = fresh_subscriber(port, version, topic)
    m = s.expect(what="retained message")
    check_eq("set: payload", m.payload, b"first")
    check_eq("set: retain flag", m.retain, True)
    check_eq("set: qos", m.qos, 1)
    s.expect_none()
    s.disconnect()

    # replace
    pub.publish(topic, b"second", qos=1, retain=True)
    s = fresh_subscriber(port, version, topic)
    m = s.expect(what="retained message")
    check_eq("replace: payload", m.payload, b"second")
    check_eq("replace: retain flag", m.retain, True)
    s.expect_none(what="second retained message")
    s.disconnect()

    # clear: a zero-length retained publish removes it
    pub.publish(topic, b"", qos=1, retain=True)
    s = fresh_subscriber(port, version, topic)
    s.expect_none(what="retained message after clear")
    s.disconnect()
    pub.disconnect()


def live_delivery(port, version):
    # A retained publish matching an established subscription is delivered with RETAIN 0
    # (3.1.1 [MQTT-3.3.1-9]; 5.0 [MQTT-3.3.1-12] with Retain As Published 0), and a
    # zero-length retained publish (the clear) is still delivered to current subscribers.
    topic = unique("ret/live")
    s = fresh_subscriber(port, version, topic)
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"live", qos=1, retain=True)
    m = s.expect()
    check_eq("payload", m.payload, b"live")
    check_eq("retain flag on live delivery", m.retain, False)
    pub.publish(topic, b"", qos=1, retain=True)
    m = s.expect(what="the zero-length clear message")
    check_eq("clear payload", m.payload, b"")
    check_eq("clear retain flag", m.retain, False)
    pub.disconnect()
    s.disconnect()


def wildcard_retained(port, version):
    base = unique("ret/w")
    pub = Client(port, version)
    pub.connect()
    want = {}
    for i in range(3):
        t = f"{base}/{i}"
        want[t] = f"value-{i}".encode()
        pub.publish(t, want[t], qos=1, retain=True)
    pub.publish(f"{base}/1/deeper", b"not matched by +", qos=1, retain=True)
    s = fresh_subscriber(port, version, f"{base}/+")
    got = s.expect_n(3, what="retained messages")
    check_eq("retained set", {m.topic: m.payload for m in got}, want)
    check_eq("retain flags", {m.retain for m in got}, {True})
    s.expect_none()
    s.disconnect()
    pub.disconnect()


def retained_qos_downgrade(port, version):
    # A retained message is delivered at min(its QoS, the subscription's QoS).
    topic = unique("ret/q")
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"q2", qos=2, retain=True)
    for granted in (0, 1, 2):
        s = fresh_subscriber(port, version, topic, granted)
        m = s.expect(what="retained message")
        check_eq("payload", m.payload, b"q2")
        check_eq(f"qos for subscription QoS {granted}", m.qos, granted)
        s.disconnect()
    pub.publish(topic, b"", qos=1, retain=True)
    pub.disconnect()


def resubscribe_resends(port, version):
    # 3.1.1 [MQTT-3.8.4-3] / 5.0 Retain Handling 0: re-subscribing sends retained again.
    topic = unique("ret/resub")
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"again", qos=1, retain=True)
    s = fresh_subscriber(port, version, topic)
    check_eq("first subscribe", s.expect().payload, b"again")
    s.subscribe(topic, 1)
    m = s.expect(what="retained message on re-subscribe")
    check_eq("re-subscribe payload", m.payload, b"again")
    check_eq("re-subscribe retain flag", m.retain, True)
    s.disconnect()
    pub.disconnect()


def main():
    checks = Checks(__doc__)
    for name, version in VERSIONS:
        checks.run(f"{name} retained set/replace/clear", set_replace_clear, version)
        checks.run(f"{name} live delivery has retain 0, clear delivered", live_delivery, version)
        checks.run(f"{name} wildcard subscribe gets matching retained", wildcard_retained,
                   version)
        checks.run(f"{name} retained qos is min with subscription", retained_qos_downgrade,
                   version)
        checks.run(f"{name} re-subscribe resends retained", resubscribe_resends, version)
    checks.finish()


if __name__ == "__main__":
    main()
