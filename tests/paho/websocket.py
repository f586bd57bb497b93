"""MQTT over WebSocket (and secure WebSocket) with paho-mqtt's websockets transport.

Usage: websocket.py HOST PORT (ws|wss) CAFILE (3|5)
A subscriber and a publisher connect over the transport; a 100 kB QoS 1 message (larger than
one WebSocket frame of paho's) and a small one must arrive intact. Prints PASS or FAIL lines.
"""
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion

host, port, scheme, cafile, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
version = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311
WAIT = 10


def make(client_id):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    transport="websockets", protocol=version)
    c.ws_set_options(path="/mqtt")
    if scheme == "wss":
        c.tls_set(ca_certs=cafile)
    return c


def check(name, ok):
    print(("PASS " if ok else "FAIL ") + name, flush=True)
    if not ok:
        sys.exit(1)


received = []
got_all = threading.Event()
subscribed = threading.Event()
connected = threading.Event()

sub = make("ws-sub-" + scheme + proto)
sub.on_connect = lambda c, u, flags, rc, props: connected.set()
sub.on_subscribe = lambda c, u, mid, rcs, props: subscribed.set()


def on_message(c, u, m):
    received.append(bytes(m.payload))
    if len(received) == 2:
        got_all.set()


sub.on_message = on_message
sub.connect(host, port)
sub.loop_start()
check("connect over " + scheme, connected.wait(WAIT))
sub.subscribe("ws/t", qos=1)
check("subscribe", subscribed.wait(WAIT))

pub = make("ws-pub-" + scheme + proto)
pub.connect(host, port)
pub.loop_start()
big = bytes(range(256)) * 400
for payload in (big, b"small"):
    info = pub.publish("ws/t", payload, qos=1)
    info.wait_for_publish(WAIT)
    check("published %d bytes" % len(payload), info.is_published())
check("both messages arrive", got_all.wait(WAIT))
check("payloads intact and in order", received == [big, b"small"])
pub.disconnect()
sub.disconnect()
pub.loop_stop()
sub.loop_stop()
