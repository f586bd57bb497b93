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


def midge(name, binary, **settings):
    env = {"MIDGE__LOG__LEVEL": "warn"}
    env.update({f"MIDGE__{k.upper().replace('.', '__')}": str(v) for k, v in settings.items()})
    return Broker(name, binary, ["-p", "{port}", "--data-dir", "{dir}/data"], env=env)


def mosquitto(name, binary, persistence):
    config = "listener {port} 127.0.0.1\nallow_anonymous true\n"
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
        "max_connections = 10010\n"
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
        "midge": midge("midge", midge_bin),
        "midge-fsync-always": midge("midge (fsync always)", midge_bin, **{"storage.fsync": "always"}),
        "midge-fsync-interval": midge(
            "midge (fsync interval 100 ms)", midge_bin, **{"storage.fsync": "interval"}
        ),
        "nats-server": nats("nats-server", shutil.which("nats-server")),
        "rumqttd": rumqttd("rumqttd", shutil.which("rumqttd")),
        "mosquitto": mosquitto("mosquitto", mosq, persistence=False),
        "mosquitto-persistent": mosquitto("mosquitto (persistence true)", mosq, persistence=True),
    }


# name -> (description, midge-bench arguments, metric, broker keys; the last is the baseline)
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
    "fanout-100-qos0": (
        "QoS 0, 1 publisher -> 100 subscribers, 64 B, copies received per second",
        ["pubsub", "--pubs", "1", "--subs", "100", "-q", "0", "-s", "64"],
        "received_per_s",
        ["midge", "nats-server", "rumqttd", "mosquitto"],
    ),
}


def run_once(args, broker, bench_args, metric):
    scratch = Path(tempfile.mkdtemp(prefix="midge-compare-"))
    port = free_port()
    proc = broker.start(port, scratch)
    try:
        out = scratch / "summary.json"
        cmd = [str(args.bench), *bench_args, *broker.bench_args, "-p", str(port),
               "--duration", str(args.duration),
               "--quiet", "--json", str(out), "--broker-pid", str(proc.pid)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=args.duration + 120)
        summary = json.loads(out.read_text())
        messages = summary["messages"]
        # "messages" metrics are rates; "latency_us.p99" and the like name a latency.
        section, _, key = metric.rpartition(".")
        value = summary[section][key] if section else messages[metric]
        return {
            "rate": value,
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
    args = p.parse_args()
    table = brokers(args)
    results = {}
    print(f"| scenario | broker | median rate | runs | ratio to baseline | broker CPU (cores) | tool CPU (cores) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenario or list(SCENARIOS):
        description, bench_args, metric, keys = SCENARIOS[name]
        present = [k for k in keys if table[k].available()]
        samples = {k: [] for k in present}
        for _ in range(args.runs):
            for k in present:
                samples[k].append(run_once(args, table[k], bench_args, metric))
        base = statistics.median(s["rate"] for s in samples[keys[-1]]) if keys[-1] in samples else None
        for k in present:
            rates = [s["rate"] for s in samples[k]]
            med = statistics.median(rates)
            cpu = statistics.median(s["broker_cpu"] or 0 for s in samples[k])
            tool = statistics.median(s["tool_cpu"] or 0 for s in samples[k])
            # A latency ratio reads like a rate ratio: above 1x is better than the baseline.
            lower_is_better = metric.startswith("latency")
            ratio = "-" if not base or not med else (
                f"{base / med:.2f}x" if lower_is_better else f"{med / base:.2f}x")
            runs = ", ".join(f"{r:.0f}" for r in rates)
            unit = "µs p99" if lower_is_better else metric.replace("_per_s", "/s")
            print(f"| {name} | {table[k].name} | {med:,.0f} {unit} | {runs} | {ratio} | {cpu:.2f} | {tool:.2f} |")
            sys.stdout.flush()
        results[name] = {"description": description, "args": bench_args, "metric": metric,
                         "samples": {k: samples[k] for k in present}}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
