"""MQTT over TLS (plain TCP transport, no WebSocket) with paho-mqtt.

Usage: tls.py HOST PORT CAFILE (3|5) [OTHER_CAFILE]
A subscriber and a publisher connect with tls_set(ca_certs=CAFILE), so the server certificate
is verified against CAFILE and its name against HOST; a 100 kB QoS 1 message and a small QoS 2
one must arrive intact and in order, and the session must really be TLS 1.2 or 1.3. With
OTHER_CAFILE, a client trusting only that (unrelated) CA must fail to connect. Prints PASS or
FAIL lines and exits non-zero on the first failure.
"""
import ssl
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion

host, port, cafile, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
other_cafile = sys.argv[5] if len(sys.argv) > 5 else ""
version = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311
WAIT = 10


def make(client_id, ca):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    transport="tcp", protocol=version)
    c.tls_set(ca_certs=ca)
    return c


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + (" (%s)" % detail if detail else ""),
          flush=True)
    if not ok:
        sys.exit(1)


received = []
got_all = threading.Event()
subscribed = threading.Event()
connected = threading.Event()
connect_rc = []

sub = make("tls-sub-v" + proto, cafile)


def on_connect(c, u, flags, rc, props):
    connect_rc.append(rc)
    connected.set()


def on_message(c, u, m):
    received.append((m.topic, bytes(m.payload), m.qos))
    if len(received) == 2:
        got_all.set()


sub.on_connect = on_connect
sub.on_subscribe = lambda c, u, mid, rcs, props: subscribed.set()
sub.on_message = on_message
sub.connect(host, port)
sub.loop_start()
check("connect over tls", connected.wait(WAIT))
check("CONNACK success", not connect_rc[0].is_failure, str(connect_rc[0]))
sock = sub.socket()
tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
check("TLS 1.2 or 1.3 negotiated", tls_version in ("TLSv1.2", "TLSv1.3"), str(tls_version))
sub.subscribe("tls/t", qos=2)
check("subscribe", subscribed.wait(WAIT))

pub = make("tls-pub-v" + proto, cafile)
pub.connect(host, port)
pub.loop_start()
big = bytes(range(256)) * 400
for payload, qos in ((big, 1), (b"small", 2)):
    info = pub.publish("tls/t", payload, qos=qos)
    info.wait_for_publish(WAIT)
    check("published %d bytes at QoS %d" % (len(payload), qos), info.is_published())
check("both messages arrive", got_all.wait(WAIT))
check("payloads intact and in order",
      received == [("tls/t", big, 1), ("tls/t", b"small", 2)],
      repr([(t, len(p), q) for t, p, q in received]))
pub.disconnect()
sub.disconnect()
pub.loop_stop()
sub.loop_stop()

if other_cafile:
    stranger = make("tls-stranger-v" + proto, other_cafile)
    try:
        stranger.connect(host, port)
        refused = False
        detail = "connected"
    except ssl.SSLError as e:
        refused = True
        detail = str(e)
    check("a client trusting another CA is refused", refused, detail)
