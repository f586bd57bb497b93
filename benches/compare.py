#!/usr/bin/env python3
"""Side-by-side broker benchmarks: Midge against Mosquitto (and other brokers found on PATH).

Every scenario runs `midge-bench` against each broker in turn, RUNS times interleaved
(broker A, B, C, A, B, C, ...) so drift on a shared machine hits all alike, and reports the
median rate of each broker and its ratio to Mosquitto's. Each run gets a fresh broker process
and data directory. Results go to stdout as a Markdown table and, with --json, to a file.

    cargo build --release -p midge -p midge-bench
    python3 benches/compare.py --runs 5 --duration 10              # every scenario
    python3 benches/compare.py --scenario durable-qos1 --runs 3    # one

Nothing here asserts a number: it measures and reports (see docs/benchmarks.md).
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port} within {timeout} s")


class Broker:
    """One broker configuration: how to start it on a port in a scratch directory."""

    def __init__(self, name, binary, argv, env=None, config=None, bench_args=(),
                 config_name="broker.conf"):
        self.name, self.binary, self.argv, self.env, self.config = name, binary, argv, env, config
        self.config_name = config_name
        # Extra midge-bench arguments this broker needs (e.g. an older MQTT version).
        self.bench_args = list(bench_args)

    def available(self):
        return self.binary is not None and Path(self.binary).exists()

    def start(self, port, scratch):
        config_path = None
        if self.config:
            config_path = scratch / self.config_name
            config_path.write_text(self.config.format(port=port, dir=scratch))
        argv = [a.format(port=port, dir=scratch, config=config_path) for a in self.argv]
        env = dict(os.environ, **(self.env or {}))
        proc = subprocess.Popen(
            [self.binary, *argv],
            cwd=scratch,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(scratch / "broker.log", "wb"),
        )
        wait_port(port, proc)
        return proc


# Midge's settings in every scenario: its defaults, but room for the 19,000-connection ones.
MIDGE_SETTINGS = {"limits.max_connections": 20000}

# Source addresses the connection scenarios spread their clients over. From one address, the
# kernel's search for a free ephemeral port slows once most of its 28k ports are in use or in
# TIME_WAIT from the previous run: connects then stall for seconds (SYN retries), whatever the
# broker, and the stall shows up as connect latency and as a burst's memory peak.
SOURCES = "127.0.0.2,127.0.0.3,127.0.0.4"


def midge(name, binary, **settings):
    env = {"MIDGE__LOG__LEVEL": "warn"}
    env.update({f"MIDGE__{k.upper().replace('.', '__')}": str(v) for k, v in settings.items()})
    return Broker(name, binary, ["-p", "{port}", "--data-dir", "{dir}/data"], env=env)


def mosquitto(name, binary, persistence):
    config = "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"
    if persistence:
        # Mosquitto's own durability: an in-memory database written out every
        # autosave_interval seconds (default 1800) and at shutdown.
        config += "persistence true\npersistence_location {dir}/\n"
    else:
        config += "persistence false\n"
    return Broker(name, binary, ["-c", "{config}"], config=config)


def nats(name, binary):
    # nats-server serves MQTT 3.1.1 only, through JetStream (which needs a server name).
    config = (
        "listen: 127.0.0.1:-1\n"
        "server_name: midge_bench\n"
        "jetstream {{ store_dir: \"{dir}/jetstream\" }}\n"
        "mqtt {{ listen: 127.0.0.1:{port} }}\n"
    )
    return Broker(name, binary, ["-c", "{config}"], config=config, bench_args=["-V", "4"])


def rumqttd(name, binary):
    # rumqttd 0.20 (`cargo install rumqttd`), its MQTT 3.1.1 server; v5 is experimental there.
    config = (
        "id = 0\n"
        "[router]\n"
        "id = 0\n"
        "max_connections = 20000\n"
        "max_outgoing_packet_count = 200\n"
        "max_segment_size = 104857600\n"
        "max_segment_count = 10\n"
        "[v4.1]\n"
        "name = \"v4-1\"\n"
        "listen = \"127.0.0.1:{port}\"\n"
        "next_connection_delay_ms = 1\n"
        "[v4.1.connections]\n"
        "connection_timeout_ms = 60000\n"
        "max_payload_size = 20480\n"
        "max_inflight_count = 100\n"
        "dynamic_filters = true\n"
    )
    return Broker(name, binary, ["-q", "-c", "{config}"], config=config, bench_args=["-V", "4"],
                  config_name="rumqttd.toml")


def brokers(args):
    midge_bin = str(args.midge)
    mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return {
        # The default cap of 10,000 connections is raised for idle-19k (the other brokers'
        # defaults, or the configs here, allow more).
        "midge": midge("midge", midge_bin, **MIDGE_SETTINGS),
        "midge-fsync-always": midge("midge (fsync always)", midge_bin, **{"storage.fsync": "always"}),
        "midge-fsync-interval": midge(
            "midge (fsync interval 100 ms)", midge_bin, **{"storage.fsync": "interval"}
        ),
        "nats-server": nats("nats-server", shutil.which("nats-server")),
        "rumqttd": rumqttd("rumqttd", shutil.which("rumqttd")),
        "mosquitto": mosquitto("mosquitto", mosq, persistence=False),
        "mosquitto-persistent": mosquitto("mosquitto (persistence true)", mosq, persistence=True),
    }


def RETAIN_10K(start):
    """midge-bench arguments that retain one 64 B QoS 1 message on each of r/START ..
    r/START+9999, from 10,000 clients at once (the open-files limit allows no more)."""
    return ["pub", "-c", "10000", "-n", str(start), "--count", "1", "-r", "-q", "1", "-s", "64",
            "-t", "r/%i", "--connect-rate", "0"]


ALL_FOUR = ["midge", "nats-server", "rumqttd", "mosquitto"]


def FANOUT(subs, qos):
    """1 publisher -> `subs` subscribers of one topic at `qos`, counting copies received."""
    return (
        f"QoS {qos}, 1 publisher -> {subs:,} subscribers, 64 B, copies received per second",
        ["pubsub", "--pubs", "1", "--subs", str(subs), "-q", str(qos), "-s", "64"],
        "received_per_s",
        ALL_FOUR,
    )


def FANIN_SHARED(qos):
    """1,000 publishers, each on its own topic, -> one $share group of 10 members."""
    return (
        f"QoS {qos}, 1,000 publishers (bench/0 .. bench/999) -> one $share group of 10 "
        "subscribers on bench/+, 64 B",
        ["pubsub", "--pubs", "1000", "--subs", "10", "--shared", "-t", "bench/%i",
         "--sub-topic", "bench/+", "-q", str(qos), "-s", "64"],
        "received_per_s",
        ALL_FOUR,
    )


# name -> (description, midge-bench arguments, metric, broker keys; the last is the baseline,
# and optionally a dict of: "lower" (the metric is better when lower), "unit", "duration"
# (seconds, overriding --duration), "setup" (midge-bench argument lists run first, against the
# same broker), "expect" (messages a run must receive to count as complete))
SCENARIOS = {
    "durable-qos1": (
        "QoS 1, 4 publishers -> 4 persistent-session subscribers (1:1), 64 B",
        ["pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i", "-t", "bench/%i",
         "-q", "1", "-s", "64", "--persistent"],
        "received_per_s",
        ["midge-fsync-always", "midge-fsync-interval", "mosquitto-persistent"],
    ),
    "durable-retained": (
        "retained QoS 1 publishes, 4 publishers each replacing its own topic, 64 B",
        ["pub", "-c", "4", "-t", "retained/%i", "-q", "1", "-s", "64", "-r"],
        "acked_per_s",
        ["midge-fsync-always", "midge-fsync-interval", "mosquitto-persistent"],
    ),
    "p2p-qos0": (
        "QoS 0, 4 publishers -> 4 subscribers (1:1), 64 B, clean sessions",
        ["pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i", "-t", "bench/%i",
         "-q", "0", "-s", "64"],
        "received_per_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
    ),
    "p2p-qos1": (
        "QoS 1, 4 publishers -> 4 subscribers (1:1), 64 B, clean sessions",
        ["pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i", "-t", "bench/%i",
         "-q", "1", "-s", "64"],
        "received_per_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
    ),
    "p2p-qos2": (
        "QoS 2, 4 publishers -> 4 subscribers (1:1), 64 B, clean sessions",
        ["pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i", "-t", "bench/%i",
         "-q", "2", "-s", "64"],
        "received_per_s",
        ["midge", "rumqttd", "mosquitto"],
    ),
    "latency-qos1-10k": (
        "QoS 1 end-to-end latency at a fixed 10,000 msgs/s, 4 publishers -> 4 subscribers, "
        "64 B; p99 in microseconds (lower is better)",
        ["pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i", "-t", "bench/%i",
         "-q", "1", "-s", "64", "--rate", "10000"],
        "latency_us.p99",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
    ),
    **{f"fanout-{subs}-qos{qos}": FANOUT(subs, qos) for subs in (100, 1000) for qos in (0, 1)},
    **{f"fanin-1000-shared-qos{qos}": FANIN_SHARED(qos) for qos in (0, 1)},
    "sparse-fanout-2000": (
        "QoS 1, 1 publisher -> 2,000 subscribers, one 64 B message every 250 ms, so every "
        "subscriber's connection goes quiet between messages: the broker's CPU while publishing, "
        "in per cent of one core (lower is better)",
        ["pubsub", "--pubs", "1", "--subs", "2000", "-q", "1", "-s", "64", "-I", "250",
         "--ifaddr", SOURCES],
        "broker_cpu_running.percent_of_one_core",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
        {"lower": True, "unit": "% of a core", "decimals": 1},
    ),
    "connect-5k": (
        "5,000 connections opened as fast as possible, connections per second",
        ["conn", "-c", "5000", "--connect-rate", "0", "--ifaddr", SOURCES],
        "connections.connect_rate_per_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
        {"unit": "connects/s", "duration": 8},
    ),
    "idle-19k": (
        "19,000 idle connections (5,000/s), the broker's RSS growth per connection in KiB "
        "(lower is better)",
        ["conn", "-c", "19000", "--connect-rate", "5000", "--ifaddr", SOURCES],
        "broker_memory.per_connection_kib",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
        {"lower": True, "unit": "KiB/conn", "duration": 10, "decimals": 2},
    ),
    "retained-10k": (
        "10,000 retained messages (64 B, r/0 .. r/9999), then one new subscriber to r/#: "
        "seconds from its connect to the last message (lower is better)",
        ["sub", "-t", "r/#", "--count", "10000"],
        "messages.last_receive_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
        {"lower": True, "unit": "s", "duration": 20, "decimals": 3, "expect": 10000,
         "setup": [RETAIN_10K(0)]},
    ),
    "retained-100k": (
        "100,000 retained messages (64 B), then one new subscriber to r/#: seconds from its "
        "connect to the last message (lower is better)",
        ["sub", "-t", "r/#", "--count", "100000"],
        "messages.last_receive_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
        {"lower": True, "unit": "s", "duration": 30, "decimals": 3, "expect": 100000,
         "setup": [RETAIN_10K(r * 10000) for r in range(10)]},
    ),
}


def bench(args, broker, port, bench_args, duration, out, pid):
    cmd = [str(args.bench), *bench_args, *broker.bench_args, "-p", str(port),
           "--duration", str(duration), "--quiet", "--json", str(out), "--broker-pid", str(pid)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=duration + 120)
    return json.loads(out.read_text())


def setup_acks(setup):
    """The acknowledgements a `pub -c C --count N` setup must get (C x N), or None."""
    if not setup or setup[0] != "pub" or "--count" not in setup:
        return None
    clients = int(setup[setup.index("-c") + 1]) if "-c" in setup else 1
    return clients * int(setup[setup.index("--count") + 1])


def run_once(args, broker, bench_args, metric, options):
    scratch = Path(tempfile.mkdtemp(prefix="midge-compare-"))
    port = free_port()
    proc = broker.start(port, scratch)
    duration = options.get("duration", args.duration)
    try:
        for i, setup in enumerate(options.get("setup", [])):
            done = bench(args, broker, port, setup, 60, scratch / f"setup-{i}.json", proc.pid)
            want = setup_acks(setup)
            acked = done["messages"].get("acked") or 0
            if want is not None and acked < want:
                # E.g. loopback ports used up by sockets in TIME_WAIT after many runs: the
                # measured command would then time a smaller replay than it expects.
                failed = done["connections"].get("failed")
                raise RuntimeError(f"setup stored {acked:,} of {want:,} ({failed} connects failed)")
        summary = bench(args, broker, port, bench_args, duration, scratch / "summary.json",
                        proc.pid)
        messages = summary["messages"]
        # A bare name is a "messages" field; "latency_us.p99" and the like name another section.
        section, _, key = metric.rpartition(".")
        value = (summary[section] or {}).get(key) if section else messages[metric]
        return {
            "rate": value if value is not None else float("nan"),
            "received": messages.get("received"),
            # The broker's memory when the measured command started (after any setup).
            "broker_rss_kib": (summary.get("broker_memory") or {}).get("rss_before_kib"),
            "lost": messages.get("lost"),
            "errors": summary["errors"],
            "broker_cpu": ((summary.get("broker_cpu_running") or {}).get("percent_of_one_core") or 0) / 100,
            "tool_cpu": ((summary.get("tool_cpu_running") or {}).get("percent_of_one_core") or 0) / 100,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    p.add_argument("--midge", type=Path, default=target / "midge")
    p.add_argument("--bench", type=Path, default=target / "midge-bench")
    p.add_argument("--json", type=Path)
    p.add_argument("--skip", action="append", default=[], metavar="BROKER",
                   help="leave out a broker (e.g. rumqttd, whose retained replay stops at 200)")
    p.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                   help="another midge binary (an older build, say), measured as NAME right "
                        "after midge in every scenario midge is in, runs interleaved")
    p.add_argument("--baseline", metavar="BROKER",
                   help="the broker ratios are to (default: each scenario's last, Mosquitto)")
    args = p.parse_args()
    # The connection scenarios hold 19,000 sockets in the tool and as many in the broker.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    table = brokers(args)
    extra = []
    for spec in args.also:
        name, _, path = spec.partition("=")
        if not path:
            p.error(f"--also takes NAME=PATH, not {spec!r}")
        table[name] = midge(name, path, **MIDGE_SETTINGS)
        extra.append(name)
    results = {}
    print(f"| scenario | broker | median rate | runs | ratio to baseline | broker CPU (cores) | tool CPU (cores) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenario or list(SCENARIOS):
        description, bench_args, metric, keys, *rest = SCENARIOS[name]
        options = rest[0] if rest else {}
        if "midge" in keys:
            at = keys.index("midge") + 1
            keys = keys[:at] + extra + keys[at:]
        present = [k for k in keys if table[k].available() and k not in args.skip]
        samples = {k: [] for k in present}
        for _ in range(args.runs):
            for k in present:
                try:
                    samples[k].append(run_once(args, table[k], bench_args, metric, options))
                except (subprocess.SubprocessError, RuntimeError, OSError, KeyError) as err:
                    print(f"<!-- {name} {k}: {err} -->", file=sys.stderr)
                    samples[k].append({"rate": float("nan"), "failed": str(err)})
        # A latency or a size reads like a rate in the ratio: above 1x is better than baseline.
        lower_is_better = options.get("lower", metric.startswith("latency"))
        unit = options.get("unit", "µs p99" if metric.startswith("latency")
                           else metric.replace("_per_s", "/s"))
        decimals = options.get("decimals", 0)
        expect = options.get("expect")

        def usable(sample):
            # A run that failed, or did not receive everything it had to, has no number.
            ok = sample["rate"] == sample["rate"]
            return ok and (expect is None or (sample.get("received") or 0) >= expect)

        def median_of(key):
            vals = [s["rate"] for s in samples.get(key, []) if usable(s)]
            return statistics.median(vals) if vals else None

        base = median_of(args.baseline if args.baseline in present else keys[-1])
        for k in present:
            med = median_of(k)
            cpu = statistics.median(s.get("broker_cpu") or 0 for s in samples[k])
            tool = statistics.median(s.get("tool_cpu") or 0 for s in samples[k])
            ratio = "-" if not base or not med else (
                f"{base / med:.2f}x" if lower_is_better else f"{med / base:.2f}x")

            def show(sample):
                if "failed" in sample:
                    return "failed"
                text = f"{sample['rate']:,.{decimals}f}"
                if expect is not None and (sample.get("received") or 0) < expect:
                    text += f" ({sample.get('received') or 0:,} of {expect:,} received)"
                return text

            runs = ", ".join(show(s) for s in samples[k])
            shown = "-" if med is None else f"{med:,.{decimals}f} {unit}"
            print(f"| {name} | {table[k].name} | {shown} | {runs} | {ratio} | {cpu:.2f} | {tool:.2f} |")
            sys.stdout.flush()
        results[name] = {"description": description, "args": bench_args, "metric": metric,
                         "samples": {k: samples[k] for k in present}}
        # Written after every scenario, so a long run stopped midway keeps what it measured.
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
