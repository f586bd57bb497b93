#!/usr/bin/env python3
"""Will messages with paho-mqtt: sent on abrupt close, not after DISCONNECT (3.1.1 and 5.0)."""

import time

from midgecheck import (
    QUIET, V5, VERSIONS, WAIT, Checks, Client, PacketTypes, ReasonCode, check, check_eq, props,
    unique,
)


def observer(port, version, topic_filter):
    o = Client(port, version)
    o.connect()
    o.subscribe(topic_filter, 1)
    return o


def will_on_abrupt_close(port, version):
    topic = unique("will/abrupt")
    o = observer(port, version, topic)
    w = Client(port, version, will=dict(topic=topic, payload=b"gone", qos=1, retain=False))
    w.connect()
    o.expect_none(QUIET, what="will before the close")
    w.kill()
    m = o.expect(what="will message")
    check_eq("will topic", m.topic, topic)
    check_eq("will payload", m.payload, b"gone")
    check_eq("will qos", m.qos, 1)
    check_eq("will retain", m.retain, False)
    o.expect_none(what="second will")
    o.disconnect()


def no_will_after_disconnect(port, version):
    topic = unique("will/clean")
    o = observer(port, version, topic)
    w = Client(port, version, will=dict(topic=topic, payload=b"should not", qos=1))
    w.connect()
    w.disconnect()
    o.expect_none(2 * QUIET, what="will after a normal DISCONNECT")
    o.disconnect()


def will_on_keepalive_timeout(port, version):
    # A client silent for 1.5 x its keep alive is disconnected ([MQTT-3.1.2-24] 3.1.1 /
    # [MQTT-3.1.2-22] 5.0) and, not having sent DISCONNECT, its will is published.
    topic = unique("will/ka")
    o = observer(port, version, topic)
    w = Client(port, version, keepalive=1,
               will=dict(topic=topic, payload=b"timed out", qos=1))
    w.connect()
    w.freeze()
    frozen = time.monotonic()
    # 1.5 s is the deadline; allow slack for a loaded machine.
    m = o.expect(WAIT + 3, what="will after keep alive timeout")
    elapsed = time.monotonic() - frozen
    check_eq("will payload", m.payload, b"timed out")
    check(elapsed >= 0.9, f"will after {elapsed:.2f}s: before the keep alive ran out")
    o.disconnect()


def retained_will(port, version):
    topic = unique("will/ret")
    w = Client(port, version, will=dict(topic=topic, payload=b"offline", qos=1, retain=True))
    w.connect()
    w.kill()
    # A later subscriber finds the will as the retained message once it has been published.
    deadline = time.monotonic() + WAIT
    while True:
        o = observer(port, version, topic)
        got = o.collect(0.2)
        o.disconnect()
        if got:
            break
        check(time.monotonic() < deadline, "retained will never appeared")
    check_eq("retained will count", len(got), 1)
    check_eq("retained will payload", got[0].payload, b"offline")
    check_eq("retained will retain", got[0].retain, True)
    cleaner = Client(port, version)
    cleaner.connect()
    cleaner.publish(topic, b"", qos=1, retain=True)
    cleaner.disconnect()


def v5_disconnect_with_will(port):
    # 5.0 reason code 0x04 "Disconnect with Will Message": the will is published.
    topic = unique("will/rc4")
    o = observer(port, V5, topic)
    w = Client(port, V5, will=dict(topic=topic, payload=b"asked for", qos=1))
    w.connect()
    w.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    check_eq("will payload", o.expect(what="will after DISCONNECT 0x04").payload, b"asked for")
    o.disconnect()


def v5_will_properties(port):
    # Will properties are forwarded with the will message (5.0 3.1.3.2).
    topic = unique("will/props")
    o = observer(port, V5, topic)
    wp = props(PacketTypes.WILLMESSAGE, ContentType="text/plain",
               UserProperty=[("why", "crash")], ResponseTopic="will/reply",
               CorrelationData=b"\x01\x02")
    w = Client(port, V5, will=dict(topic=topic, payload=b"p", qos=1, properties=wp))
    w.connect()
    w.kill()
    m = o.expect(what="will message")
    p = m.properties
    check_eq("content type", getattr(p, "ContentType", None), "text/plain")
    check_eq("user property", getattr(p, "UserProperty", None), [("why", "crash")])
    check_eq("response topic", getattr(p, "ResponseTopic", None), "will/reply")
    check_eq("correlation data", getattr(p, "CorrelationData", None), b"\x01\x02")
    o.disconnect()


def v5_will_delay(port):
    # With a Will Delay Interval of 1 s (and a longer session) the will waits ~1 s.
    topic = unique("will/delay")
    o = observer(port, V5, topic)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    w = Client(port, V5, session_expiry=30,
               will=dict(topic=topic, payload=b"late", qos=1, properties=wp))
    w.connect()
    w.kill()
    killed = time.monotonic()
    o.expect_none(QUIET, what="will before its delay")
    m = o.expect(what="delayed will")
    elapsed = time.monotonic() - killed
    check_eq("delayed will payload", m.payload, b"late")
    check(elapsed >= 0.9, f"will arrived after {elapsed:.2f}s, before its 1 s delay")
    o.disconnect()


def v5_will_delay_cancelled_by_reconnect(port):
    # [MQTT-3.1.3-9]: a reconnect to the session before the delay passes means no will.
    topic = unique("will/cancel")
    cid = unique("will-cancel")
    o = observer(port, V5, topic)
    wp = props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    w = Client(port, V5, client_id=cid, session_expiry=30,
               will=dict(topic=topic, payload=b"must not", qos=1, properties=wp))
    w.connect()
    w.kill()
    again = Client(port, V5, client_id=cid, clean=False, session_expiry=30)
    check_eq("session present on reconnect", again.connect(), True)
    o.expect_none(1.5, what="will after the session was resumed")
    again.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    o.disconnect()


def main():
    checks = Checks(__doc__)
    for name, version in VERSIONS:
        checks.run(f"{name} will on abrupt close", will_on_abrupt_close, version)
        checks.run(f"{name} no will after disconnect", no_will_after_disconnect, version)
        checks.run(f"{name} retained will", retained_will, version)
        checks.run(f"{name} will on keep alive timeout", will_on_keepalive_timeout, version)
    checks.run("v5 disconnect 0x04 publishes will", v5_disconnect_with_will)
    checks.run("v5 will properties forwarded", v5_will_properties)
    checks.run("v5 will delay interval", v5_will_delay)
    checks.run("v5 will delay cancelled by reconnect", v5_will_delay_cancelled_by_reconnect)
    checks.finish()


if __name__ == "__main__":
    main()
