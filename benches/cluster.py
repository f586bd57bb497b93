#!/usr/bin/env python3
"""Cluster measurements: what forwarding a publish to another node costs, cross-node latency,
and failover time after `kill -9` of the Raft leader.

Every run starts fresh `midge` nodes as processes on 127.0.0.1 (ephemeral ports, scratch data
directories) and drives them with `midge-bench` (throughput, latency) or paho-mqtt (failover).

    cargo build --release -p midge -p midge-bench
    python3 benches/cluster.py --runs 3 --duration 10

- forwarding: QoS 1, 4 publishers -> 4 subscribers, 64 B, closed loop. `local`: everyone on
  node 1 of a two-node cluster; `forwarded`: publishers on node 1, subscribers on node 2. The
  CPU of both nodes (from /proc) divided by the messages delivered gives microseconds of broker
  CPU per message; the ratio forwarded / local is the cost of crossing nodes.
- same load: the same at a fixed rate both reach (--same-load, 100,000 msgs/s), so the CPU
  per message is compared under one load, not at two different maximum rates.
- latency: QoS 1 at a fixed 10,000 msgs/s, p50 and p99, local and forwarded.
- --forward-batch-ms sets the nodes' `cluster.forward_batch_ms` (how long a link gathers
  forwarded publishes; 0 sends each at once), to compare the CPU and latency it trades.
- failover: three nodes; a persistent session on the leader with one queued QoS 1 message;
  `kill -9` of the leader; time until the survivors agree on a new leader, until a retained
  QoS 1 publish (which needs a Raft commit) is acknowledged again, and until the session
  resumes on a survivor with its queued message.

Nothing here asserts a number: it measures and reports (see docs/benchmarks.md).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from compare import ROOT, free_port


def http_get(port, path, timeout=0.5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cluster:
    """n `midge` nodes on loopback, node 1 bootstrapping and the others joining it."""

    def __init__(self, binary, n, env=None):
        self.scratch = Path(tempfile.mkdtemp(prefix="midge-cluster-bench-"))
        self.nodes = {}
        seed = None
        for node_id in range(1, n + 1):
            mqtt, admin, raft = free_port(), free_port(), free_port()
            node_env = dict(os.environ, **(env or {}))
            node_env.update(MIDGE__LOG__LEVEL="warn",
                       MIDGE__CLUSTER__NODE_ID=str(node_id),
                       MIDGE__CLUSTER__BIND=f"127.0.0.1:{raft}",
                       MIDGE__ADMIN__PORT=str(admin))
            if seed:
                node_env["MIDGE__CLUSTER__SEEDS"] = seed
            data = self.scratch / f"node{node_id}"
            proc = subprocess.Popen([str(binary), "-p", str(mqtt), "--data-dir", str(data)],
                                    env=node_env, stdout=subprocess.DEVNULL,
                                    stderr=open(self.scratch / f"node{node_id}.log", "wb"))
            self.nodes[node_id] = {"proc": proc, "mqtt": mqtt, "admin": admin}
            seed = seed or f"127.0.0.1:{raft}"
            self.wait(lambda: self.metric(node_id, 'midge_cluster_peers{state="up"}') is not None)
        self.wait(lambda: all(self.metric(i, 'midge_cluster_peers{state="up"}') == n - 1
                              for i in self.nodes))

    def metric(self, node_id, name):
        try:
            body = http_get(self.nodes[node_id]["admin"], "/metrics")
        except OSError:
            return None
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def view(self, node_id):
        try:
            return json.loads(http_get(self.nodes[node_id]["admin"], "/api/v1/cluster"))
        except (OSError, ValueError):
            return None

    @staticmethod
    def wait(pred, timeout=60.0, step=0.02):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(step)
        raise RuntimeError("timed out")

    def cpu(self):
        return sum(cpu_seconds(n["proc"].pid) for n in self.nodes.values()
                   if n["proc"].poll() is None)

    def kill(self, node_id):
        self.nodes[node_id]["proc"].send_signal(signal.SIGKILL)
        self.nodes[node_id]["proc"].wait()

    def stop(self):
        for n in self.nodes.values():
            if n["proc"].poll() is None:
                n["proc"].terminate()
        for n in self.nodes.values():
            try:
                n["proc"].wait(timeout=30)
            except subprocess.TimeoutExpired:
                n["proc"].kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


def bench(args, cluster, extra, forwarded):
    out = cluster.scratch / "summary.json"
    cmd = [str(args.bench), "pubsub", "--pubs", "4", "--subs", "4", "--sub-topic", "bench/%i",
           "-t", "bench/%i", "-q", "1", "-s", "64", *extra,
           "-p", str(cluster.nodes[1]["mqtt"]), "--duration", str(args.duration),
           "--quiet", "--json", str(out)]
    if forwarded:
        cmd += ["--sub-port", str(cluster.nodes[2]["mqtt"])]
    fwd_name = 'midge_cluster_forwarded_total{direction="out"}'
    batches_name = "midge_cluster_link_batches_total"
    fwd_before = cluster.metric(1, fwd_name) or 0
    batches_before = cluster.metric(1, batches_name) or 0
    before = cluster.cpu()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=args.duration + 120)
    cpu = cluster.cpu() - before
    fwd = (cluster.metric(1, fwd_name) or 0) - fwd_before
    batches = (cluster.metric(1, batches_name) or 0) - batches_before
    summary = json.loads(out.read_text())
    received = summary["messages"]["received"]
    return {
        "rate": summary["messages"]["received_per_s"],
        "cpu_us_per_msg": cpu / received * 1e6 if received else None,
        "p50": summary["latency_us"]["p50"],
        "p99": summary["latency_us"]["p99"],
        # Publishes per batch on node 1's link (heartbeats included).
        "batch": fwd / batches if batches else 0,
    }


def forwarding(args):
    same = f"{args.same_load // 1000}k"
    scenarios = [("local", [], False), ("forwarded", [], True),
                 (f"same-load-local ({same}/s)", ["--rate", str(args.same_load)], False),
                 (f"same-load-forwarded ({same}/s)", ["--rate", str(args.same_load)], True),
                 ("latency-local (10k/s)", ["--rate", "10000"], False),
                 ("latency-forwarded (10k/s)", ["--rate", "10000"], True)]
    results = {key: [] for key, _, _ in scenarios}
    for _ in range(args.runs):
        env = {}
        if args.forward_batch_ms is not None:
            env["MIDGE__CLUSTER__FORWARD_BATCH_MS"] = str(args.forward_batch_ms)
        cluster = Cluster(args.midge, 2, env)
        try:
            for key, extra, fwd in scenarios:
                results[key].append(bench(args, cluster, extra, fwd))
        finally:
            cluster.stop()
    med = lambda key, field: statistics.median(r[field] for r in results[key])
    print("| scenario | msgs/s (median) | broker CPU µs/msg (both nodes) | p50 µs | p99 µs "
          "| publishes per link batch |")
    print("|---|---|---|---|---|---|")
    for key in results:
        print(f"| {key} | {med(key, 'rate'):,.0f} | {med(key, 'cpu_us_per_msg'):.2f} | "
              f"{med(key, 'p50'):.0f} | {med(key, 'p99'):.0f} | {med(key, 'batch'):.1f} |")
    print()
    for at in (0, 2, 4):
        local, fwd = scenarios[at][0], scenarios[at + 1][0]
        ratio = med(fwd, "cpu_us_per_msg") / med(local, "cpu_us_per_msg")
        print(f"{fwd} / {local} broker CPU per message: {ratio:.2f}x")
    return results


def failover(args):
    import paho.mqtt.client as mqtt

    def client(port, client_id, clean):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=clean)
        c.connect("127.0.0.1", port)
        c.loop_start()
        return c

    rows = []
    for _ in range(args.runs):
        cluster = Cluster(args.midge, 3)
        try:
            cluster.wait(lambda: all((cluster.view(i) or {}).get("leader") for i in (1, 2, 3)))
            leader = cluster.view(1)["leader"]
            survivors = [i for i in (1, 2, 3) if i != leader]
            # A persistent session on the leader with one queued QoS 1 message.
            sub = client(cluster.nodes[leader]["mqtt"], "failover-sub", False)
            sub.subscribe("fo/#", qos=1)[1]
            time.sleep(0.3)
            sub.disconnect()
            sub.loop_stop()
            pub = client(cluster.nodes[survivors[0]]["mqtt"], "failover-pub", True)
            pub.publish("fo/x", b"queued", qos=1).wait_for_publish(10)
            pub.disconnect()
            pub.loop_stop()

            t0 = time.monotonic()
            cluster.kill(leader)
            cluster.wait(lambda: all((cluster.view(i) or {}).get("leader") in survivors
                                     and cluster.view(i)["leader"] == cluster.view(survivors[0])["leader"]
                                     for i in survivors), step=0.005)
            t_leader = time.monotonic() - t0
            # The session resumes on a survivor with its queued message.
            got = []
            resumed = None
            while resumed is None and time.monotonic() - t0 < 30:
                try:
                    resumed = client(cluster.nodes[survivors[1]]["mqtt"], "failover-sub", False)
                except (OSError, RuntimeError, ValueError):
                    time.sleep(0.01)
            resumed.on_message = lambda c, u, m: got.append(time.monotonic())
            cluster.wait(lambda: got, timeout=30, step=0.005)
            t_resume = got[0] - t0
            resumed.disconnect()
            resumed.loop_stop()

            def acked_after(topic, retain):
                """Retries a QoS 1 publish until acknowledged; seconds since the kill."""
                while time.monotonic() - t0 < 30:
                    try:
                        p = client(cluster.nodes[survivors[1]]["mqtt"], "failover-pub2", True)
                        info = p.publish(topic, b"r", qos=1, retain=retain)
                        info.wait_for_publish(2)
                        done = info.is_published()
                        p.disconnect()
                        p.loop_stop()
                        if done:
                            return time.monotonic() - t0
                    except (OSError, RuntimeError, ValueError):
                        time.sleep(0.01)
                return None
            # A retained QoS 1 publish is acknowledged once the new leader commits it.
            acked = acked_after("other/retained", True)
            # A publish matching the dead node's routes is refused (0x89) until the new
            # leader has adopted its sessions and the cluster released it.
            released = acked_after("fo/after", False)
            rows.append((t_leader, t_resume, acked, released))
        finally:
            cluster.stop()
    print("| kill -9 of the leader -> | median s | runs |")
    print("|---|---|---|")
    names = ["new leader agreed by both survivors",
             "persistent session resumed on a survivor, queued message delivered",
             "retained QoS 1 publish acknowledged (committed by the new leader)",
             "QoS 1 publish matching the dead node's routes acknowledged (node released)"]
    for i, name in enumerate(names):
        values = [r[i] for r in rows if r[i] is not None]
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {statistics.median(values):.2f} | {runs} |")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--only", choices=["forwarding", "failover"])
    p.add_argument("--same-load", type=int, default=100_000, metavar="MSGS_PER_S",
                   help="the fixed rate at which local and forwarded are also compared")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    p.add_argument("--forward-batch-ms", type=int, metavar="MS",
                   help="the nodes' cluster.forward_batch_ms (default: theirs, 2)")
    p.add_argument("--midge", type=Path, default=target / "midge")
    p.add_argument("--bench", type=Path, default=target / "midge-bench")
    args = p.parse_args()
    if args.only in (None, "forwarding"):
        forwarding(args)
        print()
    if args.only in (None, "failover"):
        failover(args)


if __name__ == "__main__":
    main()
