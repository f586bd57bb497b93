#!/usr/bin/env python3
"""MQTT 5.0 features with paho-mqtt: properties pass through, request/response, expiry,
subscription identifiers, subscription options, topic aliases, assigned client ids."""

import time

from midgecheck import (
    QUIET, V5, Checks, Client, PacketTypes, SubscribeOptions, check, check_eq, prop, props,
    unique,
)


def pair(port, topic_filter, qos=1, options=None, properties=None):
    """A connected subscriber on topic_filter and a connected publisher."""
    sub = Client(port, V5)
    sub.connect()
    sub.subscribe(topic_filter, qos, options=options, properties=properties)
    pub = Client(port, V5)
    pub.connect()
    return sub, pub


def user_properties(port):
    topic = unique("v5/up")
    sub, pub = pair(port, topic)
    # Order must be kept and duplicate names allowed ([MQTT-3.3.2-18], 3.3.2.3.7).
    ups = [("k", "v"), ("name", "midge"), ("k", "v2"), ("unicode", "\u00e9\u6f22")]
    pub.publish(topic, b"with props", qos=1, properties=props(PacketTypes.PUBLISH,
                                                              UserProperty=ups))
    m = sub.expect()
    check_eq("payload", m.payload, b"with props")
    check_eq("user properties", prop(m, "UserProperty"), ups)
    pub.disconnect()
    sub.disconnect()


def request_response(port):
    requests = unique("v5/req")
    responder = Client(port, V5)
    responder.connect()
    responder.subscribe(requests, 1)
    requester = Client(port, V5)
    requester.connect()
    reply_to = unique("v5/resp")
    requester.subscribe(reply_to, 1)

    for i in range(3):
        corr = bytes([0, i, 255]) + f"corr-{i}".encode()
        requester.publish(requests, f"question {i}".encode(), qos=1, properties=props(
            PacketTypes.PUBLISH, ResponseTopic=reply_to, CorrelationData=corr))
        req = responder.expect(what="request")
        check_eq("request payload", req.payload, f"question {i}".encode())
        check_eq("request response topic", prop(req, "ResponseTopic"), reply_to)
        check_eq("request correlation data", prop(req, "CorrelationData"), corr)
        responder.publish(prop(req, "ResponseTopic"), f"answer {i}".encode(), qos=1,
                          properties=props(PacketTypes.PUBLISH,
                                           CorrelationData=prop(req, "CorrelationData")))
        resp = requester.expect(what="response")
        check_eq("response topic", resp.topic, reply_to)
        check_eq("response payload", resp.payload, f"answer {i}".encode())
        check_eq("response correlation data", prop(resp, "CorrelationData"), corr)
    responder.disconnect()
    requester.disconnect()


def content_type_and_format(port):
    topic = unique("v5/ct")
    sub, pub = pair(port, topic)
    pub.publish(topic, "{\"t\": 21.5}".encode(), qos=1, properties=props(
        PacketTypes.PUBLISH, ContentType="application/json", PayloadFormatIndicator=1))
    m = sub.expect()
    check_eq("content type", prop(m, "ContentType"), "application/json")
    check_eq("payload format indicator", prop(m, "PayloadFormatIndicator"), 1)
    pub.publish(topic, b"\xff\xfe raw", qos=1)
    m = sub.expect()
    check_eq("no content type when none sent", prop(m, "ContentType"), None)
    pub.disconnect()
    sub.disconnect()


def message_expiry_forwarded(port):
    topic = unique("v5/exp")
    sub, pub = pair(port, topic)
    pub.publish(topic, b"expiring", qos=1, properties=props(PacketTypes.PUBLISH,
                                                            MessageExpiryInterval=60))
    m = sub.expect()
    e = prop(m, "MessageExpiryInterval")
    check(e is not None, "Message Expiry Interval missing on delivery")
    check(0 < e <= 60, f"Message Expiry Interval {e} not in 1..=60")
    pub.publish(topic, b"forever", qos=1)
    m = sub.expect()
    check_eq("no expiry when none sent", prop(m, "MessageExpiryInterval"), None)

    # A retained message keeps its (decremented) expiry for later subscribers.
    rtopic = unique("v5/exp-ret")
    pub.publish(rtopic, b"kept", qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
    late = Client(port, V5)
    late.connect()
    late.subscribe(rtopic, 1)
    m = late.expect(what="retained message with expiry")
    e = prop(m, "MessageExpiryInterval")
    check(e is not None and 0 < e <= 60, f"retained Message Expiry Interval {e!r}")
    pub.publish(rtopic, b"", qos=1, retain=True)
    late.disconnect()
    pub.disconnect()
    sub.disconnect()


def message_expiry_discards(port):
    # Expired messages are not delivered: neither a retained one nor one queued offline
    # ([MQTT-3.3.2-5]).
    rtopic = unique("v5/gone-ret")
    qtopic = unique("v5/gone-q")
    cid = unique("v5-exp-sess")
    s = Client(port, V5, client_id=cid, clean=True, session_expiry=60)
    s.connect()
    s.subscribe(qtopic, 1)
    s.disconnect()
    pub = Client(port, V5)
    pub.connect()
    one_second = props(PacketTypes.PUBLISH, MessageExpiryInterval=1)
    pub.publish(rtopic, b"short-lived", qos=1, retain=True, properties=one_second)
    pub.publish(qtopic, b"expires", qos=1, properties=one_second)
    pub.publish(qtopic, b"stays", qos=1,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
    pub.publish(qtopic, b"no expiry", qos=1)
    time.sleep(2.1)
    s = Client(port, V5, client_id=cid, clean=False, session_expiry=60)
    check_eq("session present", s.connect(), True)
    got = s.expect_n(2, what="unexpired queued messages")
    check_eq("queued after expiry", [m.payload for m in got], [b"stays", b"no expiry"])
    s.expect_none(what="expired queued message")
    s.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    late = Client(port, V5)
    late.connect()
    late.subscribe(rtopic, 1)
    late.expect_none(what="expired retained message")
    late.disconnect()
    pub.disconnect()


def subscription_identifier(port):
    base = unique("v5/sid")
    sub = Client(port, V5)
    sub.connect()
    sub.subscribe(f"{base}/one", 1,
                  properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe(f"{base}/none", 1)
    pub = Client(port, V5)
    pub.connect()
    pub.publish(f"{base}/one", b"a", qos=1)
    m = sub.expect()
    check_eq("subscription identifiers", prop(m, "SubscriptionIdentifier"), [7])
    pub.publish(f"{base}/none", b"b", qos=1)
    m = sub.expect()
    check_eq("no identifier for a subscription without one",
             prop(m, "SubscriptionIdentifier"), None)

    # Re-subscribing replaces the identifier; a retained message sent because of the
    # SUBSCRIBE carries the new one too.
    pub.publish(f"{base}/one", b"kept", qos=1, retain=True)
    check_eq("live retained copy", sub.expect().payload, b"kept")
    sub.subscribe(f"{base}/one", 1,
                  properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=12345))
    m = sub.expect(what="retained message on re-subscribe")
    check_eq("retained flag", m.retain, True)
    check_eq("identifier on retained delivery", prop(m, "SubscriptionIdentifier"), [12345])
    pub.publish(f"{base}/one", b"c", qos=1)
    check_eq("replaced identifier", prop(sub.expect(), "SubscriptionIdentifier"), [12345])
    pub.publish(f"{base}/one", b"", qos=1, retain=True)
    sub.expect()
    pub.disconnect()
    sub.disconnect()


def overlapping_identifiers(port):
    # One copy carrying both identifiers, or one copy per subscription with its own
    # identifier: both are allowed (3.3.4); together they must name both subscriptions.
    base = unique("v5/sido")
    sub = Client(port, V5)
    sub.connect()
    sub.subscribe(f"{base}/+", 1,
                  properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe(f"{base}/#", 1,
                  properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=268435455))
    pub = Client(port, V5)
    pub.connect()
    pub.publish(f"{base}/x", b"overlap", qos=1)
    got = [sub.expect()] + sub.collect(QUIET)
    check(len(got) in (1, 2), f"{len(got)} copies delivered")
    seen = []
    for m in got:
        check_eq("payload", m.payload, b"overlap")
        ids = prop(m, "SubscriptionIdentifier") or []
        if len(got) == 2:
            check_eq("identifiers per copy", len(ids), 1)
        seen.extend(ids)
    check_eq("identifiers", sorted(seen), [7, 268435455])
    pub.disconnect()
    sub.disconnect()


def no_local(port):
    topic = unique("v5/nolocal")
    me = Client(port, V5)
    me.connect()
    me.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
    me.publish(topic, b"from me", qos=1)
    me.expect_none(what="own message despite No Local")
    other = Client(port, V5)
    other.connect()
    other.publish(topic, b"from other", qos=1)
    check_eq("other's message", me.expect().payload, b"from other")
    other.disconnect()
    me.disconnect()


def retain_as_published(port):
    topic = unique("v5/rap")
    keep, pub = pair(port, topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
    plain = Client(port, V5)
    plain.connect()
    plain.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=False))
    pub.publish(topic, b"r", qos=1, retain=True)
    check_eq("retain flag with Retain As Published", keep.expect().retain, True)
    check_eq("retain flag without Retain As Published", plain.expect().retain, False)
    pub.publish(topic, b"n", qos=1, retain=False)
    check_eq("non-retained with Retain As Published", keep.expect().retain, False)
    pub.publish(topic, b"", qos=1, retain=True)
    for c in (keep, plain, pub):
        c.disconnect()


def retain_handling(port):
    topic = unique("v5/rh")
    pub = Client(port, V5)
    pub.connect()
    pub.publish(topic, b"stored", qos=1, retain=True)

    never = Client(port, V5)
    never.connect()
    never.subscribe(topic, options=SubscribeOptions(
        qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
    never.expect_none(what="retained message with Retain Handling 2")

    if_new = Client(port, V5)
    if_new.connect()
    opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    if_new.subscribe(topic, options=opts)
    check_eq("Retain Handling 1, new subscription", if_new.expect().payload, b"stored")
    if_new.subscribe(topic, options=opts)
    if_new.expect_none(what="retained message for an existing subscription (Retain Handling 1)")

    pub.publish(topic, b"", qos=1, retain=True)
    for c in (never, if_new, pub):
        c.disconnect()


def topic_alias(port):
    topic = unique("v5/alias")
    sub, pub = pair(port, topic)
    maximum = getattr(pub.connack_properties, "TopicAliasMaximum", 0)
    check(maximum >= 1, f"broker advertises Topic Alias Maximum {maximum}")
    pub.publish(topic, b"sets alias", qos=1,
                properties=props(PacketTypes.PUBLISH, TopicAlias=1))
    pub.publish("", b"uses alias", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=1))
    got = sub.expect_n(2)
    check_eq("payloads", [m.payload for m in got], [b"sets alias", b"uses alias"])
    check_eq("topics resolved", [m.topic for m in got], [topic, topic])
    for m in got:
        # The subscriber sent no Topic Alias Maximum, so the broker must not use aliases.
        check_eq("alias towards subscriber", prop(m, "TopicAlias"), None)
    pub.disconnect()
    sub.disconnect()


def assigned_client_id(port):
    c = Client(port, V5, client_id="")
    c.connect()
    assigned = getattr(c.connack_properties, "AssignedClientIdentifier", None)
    check(assigned, f"no Assigned Client Identifier for an empty client id: {assigned!r}")
    c.disconnect()


def receive_maximum(port):
    # [MQTT-3.3.4-9]: no more unacknowledged QoS 1/2 PUBLISHes than the client's Receive
    # Maximum; the rest follow as acknowledgements free the window.
    topic = unique("v5/rm")
    sub = Client(port, V5, manual_ack=True, connect_properties={"ReceiveMaximum": 2})
    sub.connect()
    sub.subscribe(topic, 1)
    pub = Client(port, V5)
    pub.connect()
    sent = [f"rm-{i}".encode() for i in range(5)]
    for p in sent:
        pub.publish(topic, p, qos=1)
    got = sub.expect_n(2, what="first window")
    sub.expect_none(what="message beyond Receive Maximum 2")
    for m in got:
        sub.ack(m)
    while len(got) < len(sent):
        m = sub.expect(what="message after an acknowledgement")
        sub.ack(m)
        got.append(m)
    check_eq("all in order", [m.payload for m in got], sent)
    sub.expect_none()
    pub.disconnect()
    sub.disconnect()


def client_maximum_packet_size(port):
    # [MQTT-3.1.2-24/25]: a message too large for the client's Maximum Packet Size is
    # discarded for that client, which stays connected and gets later messages.
    topic = unique("v5/mps")
    sub = Client(port, V5, connect_properties={"MaximumPacketSize": 256})
    sub.connect()
    sub.subscribe(topic, 1)
    pub = Client(port, V5)
    pub.connect()
    pub.publish(topic, b"x" * 1000, qos=1)
    pub.publish(topic, b"small", qos=1)
    m = sub.expect()
    check_eq("only the message that fits", m.payload, b"small")
    sub.expect_none()
    check(not sub.disconnected.is_set(), "subscriber was disconnected")
    pub.disconnect()
    sub.disconnect()


def main():
    checks = Checks(__doc__)
    checks.run("user properties pass through in order", user_properties)
    checks.run("response topic and correlation data round trip", request_response)
    checks.run("content type and payload format indicator", content_type_and_format)
    checks.run("message expiry interval forwarded", message_expiry_forwarded)
    checks.run("expired messages discarded", message_expiry_discards)
    checks.run("subscription identifier", subscription_identifier)
    checks.run("overlapping subscription identifiers", overlapping_identifiers)
    checks.run("no local", no_local)
    checks.run("retain as published", retain_as_published)
    checks.run("retain handling", retain_handling)
    checks.run("topic alias from client", topic_alias)
    checks.run("assigned client identifier", assigned_client_id)
    checks.run("receive maximum respected", receive_maximum)
    checks.run("client maximum packet size respected", client_maximum_packet_size)
    checks.finish()


if __name__ == "__main__":
    main()
