"""Small helpers shared by the paho-mqtt end-to-end scripts in this directory.

Each script builds a `Checks`, registers named checks with `checks.run(name, fn)` and ends
with `checks.finish()`, which exits non-zero if any check failed. Every wait is bounded:
positive waits use WAIT, "nothing must arrive" waits use QUIET, and a watchdog ends the
whole script after DEADLINE seconds.
"""

import argparse
import os
import queue
import socket
import sys
import threading
import time
import traceback
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

HOST = "127.0.0.1"
# How long to wait for something that must happen.
WAIT = 5.0
# How long to wait to be sure something does NOT happen.
QUIET = 0.5
# Hard limit for a whole script.
DEADLINE = 90.0

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = [("v311", V311), ("v5", V5)]

__all__ = [
    "HOST", "WAIT", "QUIET", "V311", "V5", "VERSIONS", "Checks", "CheckFailed", "Client",
    "Properties", "PacketTypes", "ReasonCode", "SubscribeOptions", "check", "check_eq",
    "prop", "props", "unique",
]


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def check(cond, message):
    if not cond:
        raise CheckFailed(message)


def check_eq(what, got, want):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def unique(prefix):
    """A client id / topic component unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def props(packet_type, **values):
    """Builds a paho Properties object, e.g. props(PacketTypes.PUBLISH, ContentType="x")."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def prop(message, name, default=None):
    """A property of a received message (None if absent or not v5)."""
    p = getattr(message, "properties", None)
    if p is None:
        return default
    return getattr(p, name, default)


_live_clients = []
_live_lock = threading.Lock()


class Client:
    """A paho client with a background network loop and queues for what it receives."""

    def __init__(self, port, version=V311, client_id=None, clean=True, session_expiry=None,
                 will=None, connect_properties=None, keepalive=30, manual_ack=False):
        self.port = port
        self.version = version
        self.v5 = version == V5
        self.client_id = unique("paho") if client_id is None else client_id
        self.clean = clean
        self.session_expiry = session_expiry
        self.connect_properties = connect_properties
        self.keepalive = keepalive
        kwargs = {}
        if not self.v5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
            **kwargs,
        )
        if will is not None:
            self.c.will_set(**will)
        self.messages = queue.Queue()
        self._connacks = queue.Queue()
        self._cond = threading.Condition()
        self._subacks = {}
        self._unsubacks = {}
        self._puback_codes = {}
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.connack_properties = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect
        self._looping = False
        with _live_lock:
            _live_clients.append(self)

    # --- paho callbacks (network thread) ---

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self._connacks.put((flags, reason_code, properties))

    def _on_message(self, client, userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._subacks[mid] = reason_codes
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._unsubacks[mid] = reason_codes
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._cond:
            self._puback_codes[mid] = reason_code
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = reason_code
        self.disconnected.set()

    # --- operations (test thread) ---

    def connect(self):
        """Connects, waits for CONNACK and returns its session-present flag."""
        if self.v5:
            p = Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                p.SessionExpiryInterval = self.session_expiry
            if self.connect_properties:
                for k, v in self.connect_properties.items():
                    setattr(p, k, v)
            self.c.connect(HOST, self.port, keepalive=self.keepalive, clean_start=self.clean,
                           properties=p if not p.isEmpty() else None)
        else:
            self.c.connect(HOST, self.port, keepalive=self.keepalive)
        self.c.loop_start()
        self._looping = True
        try:
            flags, rc, properties = self._connacks.get(timeout=WAIT)
        except queue.Empty:
            raise CheckFailed(f"{self.client_id}: no CONNACK within {WAIT}s") from None
        check(not rc.is_failure, f"{self.client_id}: CONNACK refused: {rc}")
        self.connack_properties = properties
        return flags.session_present

    def _wait_ack(self, table, mid, what):
        deadline = time.monotonic() + WAIT
        with self._cond:
            while mid not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CheckFailed(f"{self.client_id}: no {what} for mid {mid} within {WAIT}s")
                self._cond.wait(left)
            return table.pop(mid)

    def subscribe(self, topic_filter, qos=0, options=None, properties=None):
        """Subscribes (one filter), waits for SUBACK, asserts success, returns the code value."""
        if self.v5:
            opts = options if options is not None else SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic_filter, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic_filter, qos)
        check_eq(f"subscribe({topic_filter}) rc", rc, mqtt.MQTT_ERR_SUCCESS)
        codes = self._wait_ack(self._subacks, mid, "SUBACK")
        check_eq(f"SUBACK({topic_filter}) code count", len(codes), 1)
        value = codes[0].value
        check(value < 0x80, f"SUBACK({topic_filter}) refused: {codes[0]} (0x{value:02x})")
        return value

    def unsubscribe(self, topic_filter):
        rc, mid = self.c.unsubscribe(topic_filter)
        check_eq(f"unsubscribe({topic_filter}) rc", rc, mqtt.MQTT_ERR_SUCCESS)
        self._wait_ack(self._unsubacks, mid, "UNSUBACK")

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None):
        """Publishes and waits until the QoS flow completes (sent / PUBACK / PUBCOMP)."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        check_eq(f"publish({topic}) rc", info.rc, mqtt.MQTT_ERR_SUCCESS)
        info.wait_for_publish(WAIT)
        check(info.is_published(), f"{self.client_id}: publish to {topic} (QoS {qos}) not "
                                   f"completed within {WAIT}s")
        if self.v5 and qos > 0:
            code = self._wait_ack(self._puback_codes, info.mid, "publish completion")
            check(code is None or code.value < 0x80,
                  f"publish to {topic} refused: {code}")
        return info

    def expect(self, timeout=WAIT, what="a message"):
        """The next received message."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed(f"{self.client_id}: no {what} within {timeout}s") from None

    def expect_n(self, n, timeout=WAIT, what="messages"):
        """Exactly the next n messages (fails if fewer arrive within timeout)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                got.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise CheckFailed(f"{self.client_id}: got {len(got)} of {n} {what} within "
                                  f"{timeout}s: {[m.payload for m in got]!r}") from None
        return got

    def expect_none(self, timeout=QUIET, what="message"):
        """Asserts nothing arrives within timeout."""
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise CheckFailed(f"{self.client_id}: unexpected {what}: topic={m.topic!r} "
                          f"payload={m.payload[:60]!r} retain={m.retain}")

    def collect(self, duration):
        """Everything that arrives within duration."""
        got = []
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                return got

    def disconnect(self, reasoncode=None, properties=None):
        """Sends DISCONNECT and waits for the connection to close."""
        self.c.disconnect(reasoncode=reasoncode, properties=properties)
        check(self.disconnected.wait(WAIT), f"{self.client_id}: disconnect did not complete")
        self._stop()

    def kill(self):
        """Closes the TCP connection without DISCONNECT, like a crashed client."""
        sock = self.c.socket()
        check(sock is not None, f"{self.client_id}: not connected")
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.disconnected.wait(WAIT)
        self._stop()

    def ack(self, message):
        """Acknowledges a message received with manual_ack=True."""
        self.c.ack(message.mid, message.qos)

    def freeze(self):
        """Stops the network loop but keeps the TCP connection open: no more PINGREQs or
        acknowledgements, like a hung client. The socket is closed at the end of the check."""
        if self._looping:
            self._looping = False
            self.c.loop_stop()

    def _stop(self):
        if self._looping:
            self._looping = False
            self.c.loop_stop()
        with _live_lock:
            if self in _live_clients:
                _live_clients.remove(self)

    def close_quietly(self):
        """Best-effort teardown after a failed check."""
        try:
            sock = self.c.socket()
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - teardown must not raise
            pass
        try:
            self.disconnected.wait(1.0)
            self._stop()
        except Exception:  # noqa: BLE001
            pass


class Checks:
    """Runs named checks against the broker given by --port and reports PASS/FAIL."""

    def __init__(self, description):
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--port", type=int, required=True, help="broker port on 127.0.0.1")
        parser.add_argument("-k", dest="only", default=None,
                            help="only run checks whose name contains this")
        args = parser.parse_args()
        self.port = args.port
        self.only = args.only
        self.passed = []
        self.failed = []
        self.started = time.monotonic()
        watchdog = threading.Timer(DEADLINE, self._timeout)
        watchdog.daemon = True
        watchdog.start()

    def _timeout(self):
        print(f"FAIL script exceeded {DEADLINE}s; passed so far: {len(self.passed)}, "
              f"failed: {self.failed}", flush=True)
        os._exit(3)

    def run(self, name, fn, *args):
        if self.only and self.only not in name:
            return
        start = time.monotonic()
        try:
            fn(self.port, *args)
        except CheckFailed as e:
            self.failed.append(name)
            print(f"FAIL {name}: {e} ({time.monotonic() - start:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - any error fails the check
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
        else:
            self.passed.append(name)
            print(f"PASS {name} ({time.monotonic() - start:.2f}s)", flush=True)
        finally:
            with _live_lock:
                leftover = list(_live_clients)
            for c in leftover:
                c.close_quietly()

    def finish(self):
        total = len(self.passed) + len(self.failed)
        print(f"{len(self.passed)}/{total} checks passed in "
              f"{time.monotonic() - self.started:.1f}s", flush=True)
        if self.failed:
            print("failed: " + ", ".join(self.failed), flush=True)
        sys.exit(1 if self.failed or total == 0 else 0)
