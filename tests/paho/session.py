#!/usr/bin/env python3
"""Persistent sessions with paho-mqtt: offline queueing, session present, clean start/expiry."""

import time

from midgecheck import (
    V5, VERSIONS, WAIT, Checks, Client, PacketTypes, check, check_eq, props, unique,
)

# Session expiry granted to v5 persistent sessions in these checks (seconds).
EXPIRY = 300


def persistent(port, version, cid, clean):
    """A client of a persistent session (v5: Session Expiry Interval EXPIRY)."""
    return Client(port, version, client_id=cid, clean=clean,
                  session_expiry=EXPIRY if version == V5 else None)


def end_session(port, version, cid):
    c = Client(port, version, client_id=cid, clean=True)
    c.connect()
    c.disconnect()


def offline_queue(port, version):
    cid = unique("sess")
    topic = unique("sess/q")
    s = persistent(port, version, cid, clean=False)
    check_eq("session present on first connect", s.connect(), False)
    check_eq("granted QoS", s.subscribe(topic, 1), 1)
    s.disconnect()

    pub = Client(port, version)
    pub.connect()
    sent = [f"offline-{i}".encode() for i in range(10)]
    for p in sent:
        pub.publish(topic, p, qos=1)

    s = persistent(port, version, cid, clean=False)
    check_eq("session present on resume", s.connect(), True)
    got = s.expect_n(len(sent), what="queued messages")
    check_eq("queued payloads in order", [m.payload for m in got], sent)
    check_eq("queued qos", {m.qos for m in got}, {1})
    check_eq("queued topic", {m.topic for m in got}, {topic})
    s.expect_none(what="duplicate of a queued message")

    # The subscription survived: live messages flow without subscribing again.
    pub.publish(topic, b"live-after-resume", qos=1)
    check_eq("live after resume", s.expect().payload, b"live-after-resume")
    s.disconnect()
    pub.disconnect()
    end_session(port, version, cid)


def clean_discards(port, version):
    cid = unique("sess-clean")
    topic = unique("sess/clean")
    s = persistent(port, version, cid, clean=False)
    s.connect()
    s.subscribe(topic, 1)
    s.disconnect()
    pub = Client(port, version)
    pub.connect()
    pub.publish(topic, b"queued", qos=1)

    s = Client(port, version, client_id=cid, clean=True)
    check_eq("session present with clean start", s.connect(), False)
    s.expect_none(what="message from a discarded session")
    pub.publish(topic, b"after clean", qos=1)
    s.expect_none(what="message for a discarded subscription")
    s.disconnect()
    pub.disconnect()


def v5_expiry_zero(port):
    # No Session Expiry Interval: the session ends when the connection closes.
    cid = unique("sess-zero")
    topic = unique("sess/zero")
    s = Client(port, V5, client_id=cid, clean=True)
    s.connect()
    s.subscribe(topic, 1)
    s.disconnect()
    pub = Client(port, V5)
    pub.connect()
    pub.publish(topic, b"nobody home", qos=1)
    s = Client(port, V5, client_id=cid, clean=False)
    check_eq("session present", s.connect(), False)
    s.expect_none()
    s.disconnect()
    pub.disconnect()


def v5_expiry_elapses(port):
    cid = unique("sess-exp")
    topic = unique("sess/exp")
    s = Client(port, V5, client_id=cid, clean=True, session_expiry=1)
    s.connect()
    s.subscribe(topic, 1)
    s.disconnect()
    time.sleep(2.2)
    s = Client(port, V5, client_id=cid, clean=False, session_expiry=1)
    check_eq("session present after expiry", s.connect(), False)
    s.disconnect()


def v5_disconnect_sets_expiry_zero(port):
    # A DISCONNECT carrying Session Expiry Interval 0 ends a persistent session at once.
    cid = unique("sess-dz")
    s = Client(port, V5, client_id=cid, clean=True, session_expiry=EXPIRY)
    s.connect()
    s.subscribe(unique("sess/dz"), 1)
    s.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    s = Client(port, V5, client_id=cid, clean=False, session_expiry=EXPIRY)
    check_eq("session present", s.connect(), False)
    s.disconnect()
    end_session(port, V5, cid)


def takeover(port, version):
    # [MQTT-3.1.4-2] (3.1.1) / [MQTT-3.1.4-3] (5.0): a second connection with the same
    # client id closes the first.
    cid = unique("sess-take")
    first = Client(port, version, client_id=cid)
    first.connect()
    second = Client(port, version, client_id=cid)
    second.connect()
    check(first.disconnected.wait(WAIT), "first connection was not closed by the takeover")
    topic = unique("sess/take")
    second.subscribe(topic, 1)
    second.publish(topic, b"still alive", qos=1)
    check_eq("second connection works", second.expect().payload, b"still alive")
    second.disconnect()


def qos2_inflight_resumed(port, version):
    # QoS 2 messages queued for an offline session arrive once each after resuming.
    cid = unique("sess-q2")
    topic = unique("sess/q2")
    s = persistent(port, version, cid, clean=False)
    s.connect()
    check_eq("granted QoS", s.subscribe(topic, 2), 2)
    s.disconnect()
    pub = Client(port, version)
    pub.connect()
    sent = [f"q2-{i}".encode() for i in range(5)]
    for p in sent:
        pub.publish(topic, p, qos=2)
    s = persistent(port, version, cid, clean=False)
    check_eq("session present", s.connect(), True)
    got = s.expect_n(len(sent), what="queued QoS 2 messages")
    check_eq("payloads", [m.payload for m in got], sent)
    check_eq("qos", {m.qos for m in got}, {2})
    s.expect_none(what="duplicate QoS 2 message")
    s.disconnect()
    pub.disconnect()
    end_session(port, version, cid)


def unacked_redelivered(port, version):
    # [MQTT-4.4.0-1]: on resuming a session the server resends unacknowledged QoS 1
    # PUBLISH packets, with DUP set ([MQTT-3.3.1-1]).
    cid = unique("sess-unacked")
    topic = unique("sess/unacked")
    s = Client(port, version, client_id=cid, clean=False, manual_ack=True,
               session_expiry=EXPIRY if version == V5 else None)
    s.connect()
    s.subscribe(topic, 1)
    pub = Client(port, version)
    pub.connect()
    sent = [f"unacked-{i}".encode() for i in range(3)]
    for p in sent:
        pub.publish(topic, p, qos=1)
    first = s.expect_n(len(sent), what="messages before the crash")
    check_eq("first delivery", [m.payload for m in first], sent)
    check_eq("first delivery dup", [m.dup for m in first], [False] * len(sent))
    s.kill()  # never acknowledged

    s = persistent(port, version, cid, clean=False)
    check_eq("session present", s.connect(), True)
    again = s.expect_n(len(sent), what="redelivered messages")
    check_eq("redelivered payloads", [m.payload for m in again], sent)
    check_eq("redelivered dup", [m.dup for m in again], [True] * len(sent))
    check_eq("redelivered qos", {m.qos for m in again}, {1})
    s.expect_none(what="extra copy")
    s.disconnect()
    pub.disconnect()
    end_session(port, version, cid)


def main():
    checks = Checks(__doc__)
    for name, version in VERSIONS:
        checks.run(f"{name} persistent session queues 10 qos1 messages", offline_queue, version)
        checks.run(f"{name} queued qos2 delivered once each", qos2_inflight_resumed, version)
        checks.run(f"{name} unacknowledged qos1 redelivered with dup", unacked_redelivered,
                   version)
        checks.run(f"{name} clean start discards session", clean_discards, version)
        checks.run(f"{name} client id takeover", takeover, version)
    checks.run("v5 session expiry 0 ends session on disconnect", v5_expiry_zero)
    checks.run("v5 session expiry interval elapses", v5_expiry_elapses)
    checks.run("v5 disconnect with session expiry 0", v5_disconnect_sets_expiry_zero)
    checks.finish()


if __name__ == "__main__":
    main()
